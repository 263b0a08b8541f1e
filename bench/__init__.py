"""The llm_sync benchmark suite (``python -m bench`` or ``tox -e bench``); not part of the package or the default test run."""
