"""llm_sync: one synchronous, thread-based streaming interface over many LLM providers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._alloyed import AlloyedModelProvider
from ._catalog import all_models, available_models, estimate_cost, get_local_models
from ._content import ContentBlock
from ._context import Context
from ._errors import (
    ApiError,
    ApiRequestError,
    ContextOverflowError,
    InvalidApiKeyError,
    JsonParsingError,
    LlmError,
    MissingApiKeyError,
    NetworkError,
    OAuthError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
    StreamInterruptedError,
    StreamReadError,
    ToolArgumentsError,
    ToolParameterParsingError,
    UnsupportedContentError,
)
from ._messages import AssistantReasoning, ChatMessage, EncryptedReasoningContent
from ._model import LlmModel, ModelPrices
from ._parse import UnknownModelError, parse_model
from ._reasoning import ReasoningEffort
from ._response import LlmResponse, StopReason, TokenUsage
from ._retry import RetryPolicy
from ._stream import CollectedResponse, LlmResponseStream
from ._timeouts import Timeouts
from ._tools import ToolCallError, ToolCallRequest, ToolCallResult, ToolDefinition
from ._version import __version__
from .providers._base import StreamingModelProvider

if TYPE_CHECKING:  # what the lazy names below resolve to, for type checkers and IDEs
    from . import providers as providers
    from . import testing as testing
    from .providers.anthropic import AnthropicProvider
    from .providers.bedrock import BedrockProvider
    from .providers.codex import CodexProvider
    from .providers.gemini import GeminiProvider
    from .providers.llamacpp import LlamaCppProvider
    from .providers.ollama import OllamaProvider
    from .providers.openai import OpenAiProvider
    from .providers.openai_compatible import OpenAiCompatibleProvider
    from .providers.openrouter import OpenRouterProvider
    from .providers.presets import DeepSeekProvider, MoonshotProvider, ZaiProvider

# Provider classes and optional submodules load on first use, so `import llm_sync`
# stays cheap and an extra's dependency (botocore) is needed only by its provider.
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
    "providers": "llm_sync.providers",
    "testing": "llm_sync.testing",
}

__all__ = [
    "AlloyedModelProvider",
    "AnthropicProvider",
    "ApiError",
    "ApiRequestError",
    "AssistantReasoning",
    "BedrockProvider",
    "ChatMessage",
    "CodexProvider",
    "CollectedResponse",
    "ContentBlock",
    "Context",
    "ContextOverflowError",
    "DeepSeekProvider",
    "EncryptedReasoningContent",
    "GeminiProvider",
    "InvalidApiKeyError",
    "JsonParsingError",
    "LlamaCppProvider",
    "LlmError",
    "LlmModel",
    "LlmResponse",
    "LlmResponseStream",
    "MissingApiKeyError",
    "ModelPrices",
    "MoonshotProvider",
    "NetworkError",
    "OAuthError",
    "OllamaProvider",
    "OpenAiCompatibleProvider",
    "OpenAiProvider",
    "OpenRouterProvider",
    "RateLimitedError",
    "ReasoningEffort",
    "RequestTimeoutError",
    "RetryPolicy",
    "ServerError",
    "StopReason",
    "StreamInterruptedError",
    "StreamReadError",
    "StreamingModelProvider",
    "Timeouts",
    "TokenUsage",
    "ToolArgumentsError",
    "ToolCallError",
    "ToolCallRequest",
    "ToolCallResult",
    "ToolDefinition",
    "ToolParameterParsingError",
    "UnknownModelError",
    "UnsupportedContentError",
    "ZaiProvider",
    "__version__",
    "all_models",
    "available_models",
    "estimate_cost",
    "get_local_models",
    "parse_model",
]


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'llm_sync' has no attribute {name!r}")
    import importlib

    mod = importlib.import_module(module)
    found = mod if module.endswith("." + name) else getattr(mod, name)
    globals()[name] = found
    return found


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
