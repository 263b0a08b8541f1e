"""The providers, the one registry of them, and the kit for writing one.

Importing this package loads no provider module until one is used. A new provider is
one module here, one line in :data:`REGISTRY`, and its tests; ``llm_sync``'s exports,
``parse_model`` and the CLI follow from the registry. ``docs/adding-a-provider.rst``
walks through writing one with the public names below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Dict

from .._call import Parser
from .._transport._frame import Frame
from .._transport._http import ErrorClassifier, default_classifier, error_summary
from .._transport._request import Framing, HttpCall
from ._base import HttpProvider, StreamingModelProvider, json_body

if TYPE_CHECKING:  # what the lazy names resolve to, for type checkers and IDEs
    from ._turn import ToolCalls as ToolCalls
    from ._turn import Turn as Turn
    from ._turn import decode_event as decode_event
    from ._turn import new_id as new_id
    from .anthropic import AnthropicProvider as AnthropicProvider
    from .azure import AzureOpenAiProvider as AzureOpenAiProvider
    from .bedrock import BedrockProvider as BedrockProvider
    from .codex import CodexProvider as CodexProvider
    from .gemini import GeminiProvider as GeminiProvider
    from .llamacpp import LlamaCppProvider as LlamaCppProvider
    from .ollama import OllamaProvider as OllamaProvider
    from .openai import OpenAiProvider as OpenAiProvider
    from .openai_compatible import OpenAiCompatibleProvider as OpenAiCompatibleProvider
    from .openrouter import OpenRouterProvider as OpenRouterProvider
    from .presets import DeepSeekProvider as DeepSeekProvider
    from .presets import MoonshotProvider as MoonshotProvider
    from .presets import ZaiProvider as ZaiProvider
    from .vertex import VertexAnthropicProvider as VertexAnthropicProvider
    from .vertex import VertexGeminiProvider as VertexGeminiProvider
    from .vertex import VertexProvider as VertexProvider

#: The one registry: model-string key -> ``"module:ClassName"``, imported on first use.
REGISTRY: Dict[str, str] = {
    "anthropic": "llm_sync.providers.anthropic:AnthropicProvider",
    "azure": "llm_sync.providers.azure:AzureOpenAiProvider",
    "bedrock": "llm_sync.providers.bedrock:BedrockProvider",
    "codex": "llm_sync.providers.codex:CodexProvider",
    "deepseek": "llm_sync.providers.presets:DeepSeekProvider",
    "gemini": "llm_sync.providers.gemini:GeminiProvider",
    "llamacpp": "llm_sync.providers.llamacpp:LlamaCppProvider",
    "moonshot": "llm_sync.providers.presets:MoonshotProvider",
    "ollama": "llm_sync.providers.ollama:OllamaProvider",
    "openai": "llm_sync.providers.openai:OpenAiProvider",
    "openai-compatible": "llm_sync.providers.openai_compatible:OpenAiCompatibleProvider",
    "openrouter": "llm_sync.providers.openrouter:OpenRouterProvider",
    # VertexProvider picks VertexGeminiProvider or VertexAnthropicProvider by the model name.
    "vertex": "llm_sync.providers.vertex:VertexProvider",
    "zai": "llm_sync.providers.presets:ZaiProvider",
}

#: The optional extra a provider's dependencies come with, for install hints.
EXTRAS: Dict[str, str] = {"azure": "azure", "bedrock": "bedrock", "codex": "codex", "vertex": "vertex"}

# Provider classes a registry entry builds for some of its models (vertex:claude-...),
# exported beside the registry's own: class name -> module.
_VARIANTS: Dict[str, str] = {
    "VertexAnthropicProvider": "llm_sync.providers.vertex",
    "VertexGeminiProvider": "llm_sync.providers.vertex",
}

# Class name -> module, for the lazy attributes of this package and of llm_sync.
_LAZY: Dict[str, str] = {
    **{target.partition(":")[2]: target.partition(":")[0] for target in REGISTRY.values()},
    **_VARIANTS,
}
# The turn kit loads with the first provider that uses it, or when asked for.
_KIT = {name: "llm_sync.providers._turn" for name in ("ToolCalls", "Turn", "decode_event", "new_id")}

# The kit for writing a provider, and the registry's classes (tests/test_exports.py
# checks these, and the TYPE_CHECKING imports above, against REGISTRY).
__all__ = [
    "EXTRAS",
    "REGISTRY",
    "AnthropicProvider",
    "AzureOpenAiProvider",
    "BedrockProvider",
    "CodexProvider",
    "DeepSeekProvider",
    "ErrorClassifier",
    "Frame",
    "Framing",
    "GeminiProvider",
    "HttpCall",
    "HttpProvider",
    "LlamaCppProvider",
    "MoonshotProvider",
    "OllamaProvider",
    "OpenAiCompatibleProvider",
    "OpenAiProvider",
    "OpenRouterProvider",
    "Parser",
    "StreamingModelProvider",
    "ToolCalls",
    "Turn",
    "VertexAnthropicProvider",
    "VertexGeminiProvider",
    "VertexProvider",
    "ZaiProvider",
    "decode_event",
    "default_classifier",
    "error_summary",
    "json_body",
    "new_id",
]


def __getattr__(name: str) -> object:
    module = _LAZY.get(name) or _KIT.get(name)
    if module is None:
        raise AttributeError(f"module 'llm_sync.providers' has no attribute {name!r}")
    found = getattr(importlib.import_module(module), name)
    globals()[name] = found
    return found


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_KIT))
