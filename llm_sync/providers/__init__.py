"""The providers, one module each; importing this package loads none of them until used."""

from __future__ import annotations

from ._base import HttpProvider, StreamingModelProvider

# The one registry of provider classes: name -> module, imported on first use so that
# `import llm_sync` loads no provider (and botocore only when Bedrock is used).
_LAZY: dict[str, str] = {
    "AnthropicProvider": "llm_sync.providers.anthropic",
    "BedrockProvider": "llm_sync.providers.bedrock",
    "CodexProvider": "llm_sync.providers.codex",
    "DeepSeekProvider": "llm_sync.providers.presets",
    "GeminiProvider": "llm_sync.providers.gemini",
    "LlamaCppProvider": "llm_sync.providers.llamacpp",
    "MoonshotProvider": "llm_sync.providers.presets",
    "OllamaProvider": "llm_sync.providers.ollama",
    "OpenAiCompatibleProvider": "llm_sync.providers.openai_compatible",
    "OpenAiProvider": "llm_sync.providers.openai",
    "OpenRouterProvider": "llm_sync.providers.openrouter",
    "ZaiProvider": "llm_sync.providers.presets",
}

__all__ = [
    "AnthropicProvider",
    "BedrockProvider",
    "CodexProvider",
    "DeepSeekProvider",
    "GeminiProvider",
    "HttpProvider",
    "LlamaCppProvider",
    "MoonshotProvider",
    "OllamaProvider",
    "OpenAiCompatibleProvider",
    "OpenAiProvider",
    "OpenRouterProvider",
    "StreamingModelProvider",
    "ZaiProvider",
]


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'llm_sync.providers' has no attribute {name!r}")
    import importlib

    found = getattr(importlib.import_module(module), name)
    globals()[name] = found
    return found


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
