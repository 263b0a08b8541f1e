"""A minimal Django project that streams an LLM's answer with llm_sync."""
