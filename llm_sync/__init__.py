"""llm_sync: one synchronous, thread-based streaming interface over many LLM providers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import providers
from ._alloyed import AlloyedModelProvider
from ._batch import BatchResult, BatchRun, run_many
from ._catalog import all_models, available_models, estimate_cost, get_local_models
from ._content import ContentBlock
from ._context import Context
from ._errors import (
    AllProvidersFailedError,
    ApiError,
    ApiRequestError,
    ContextOverflowError,
    InvalidApiKeyError,
    JsonParsingError,
    LlmError,
    MissingApiKeyError,
    NetworkError,
    OAuthError,
    OutputSchemaError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
    StreamInterruptedError,
    StreamReadError,
    StructuredOutputError,
    ToolArgumentsError,
    ToolParameterParsingError,
    UnsupportedContentError,
)
from ._fallback import FallbackProvider
from ._messages import AssistantReasoning, ChatMessage, EncryptedReasoningContent
from ._model import LlmModel, ModelPrices
from ._parse import UnknownModelError, UnknownModelWarning, parse_model
from ._reasoning import ReasoningEffort
from ._response import LlmResponse, StopReason, TokenUsage
from ._retry import RetryPolicy
from ._stream import CollectedResponse, LlmResponseStream
from ._structured import OutputSchema
from ._timeouts import Timeouts
from ._tokens import TokenCount
from ._tools import ToolCallError, ToolCallRequest, ToolCallResult, ToolDefinition
from ._version import __version__
from .providers._base import StreamingModelProvider

if TYPE_CHECKING:  # what the lazy names below resolve to, for type checkers and IDEs
    from . import otel as otel
    from . import testing as testing
    from .providers import AnthropicProvider as AnthropicProvider
    from .providers import AzureOpenAiProvider as AzureOpenAiProvider
    from .providers import BedrockProvider as BedrockProvider
    from .providers import CodexProvider as CodexProvider
    from .providers import DeepSeekProvider as DeepSeekProvider
    from .providers import GeminiProvider as GeminiProvider
    from .providers import LlamaCppProvider as LlamaCppProvider
    from .providers import MoonshotProvider as MoonshotProvider
    from .providers import OllamaProvider as OllamaProvider
    from .providers import OpenAiCompatibleProvider as OpenAiCompatibleProvider
    from .providers import OpenAiProvider as OpenAiProvider
    from .providers import OpenRouterProvider as OpenRouterProvider
    from .providers import VertexAnthropicProvider as VertexAnthropicProvider
    from .providers import VertexGeminiProvider as VertexGeminiProvider
    from .providers import VertexProvider as VertexProvider
    from .providers import ZaiProvider as ZaiProvider

# Provider classes load on first use (their one registry is llm_sync.providers.REGISTRY),
# and so does llm_sync.testing: `import llm_sync` stays cheap and an extra's dependency
# (botocore) is needed only by its own provider.
_PROVIDERS = providers._LAZY

__all__ = [
    "AllProvidersFailedError",
    "AlloyedModelProvider",
    "AnthropicProvider",
    "ApiError",
    "ApiRequestError",
    "AssistantReasoning",
    "AzureOpenAiProvider",
    "BatchResult",
    "BatchRun",
    "BedrockProvider",
    "ChatMessage",
    "CodexProvider",
    "CollectedResponse",
    "ContentBlock",
    "Context",
    "ContextOverflowError",
    "DeepSeekProvider",
    "EncryptedReasoningContent",
    "FallbackProvider",
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
    "OutputSchema",
    "OutputSchemaError",
    "RateLimitedError",
    "ReasoningEffort",
    "RequestTimeoutError",
    "RetryPolicy",
    "ServerError",
    "StopReason",
    "StreamInterruptedError",
    "StreamReadError",
    "StreamingModelProvider",
    "StructuredOutputError",
    "Timeouts",
    "TokenCount",
    "TokenUsage",
    "ToolArgumentsError",
    "ToolCallError",
    "ToolCallRequest",
    "ToolCallResult",
    "ToolDefinition",
    "ToolParameterParsingError",
    "UnknownModelError",
    "UnknownModelWarning",
    "UnsupportedContentError",
    "VertexAnthropicProvider",
    "VertexGeminiProvider",
    "VertexProvider",
    "ZaiProvider",
    "__version__",
    "all_models",
    "available_models",
    "estimate_cost",
    "get_local_models",
    "parse_model",
    "run_many",
]


def __getattr__(name: str) -> object:
    if name in _PROVIDERS:
        found: object = getattr(providers, name)
    elif name in ("testing", "otel"):
        import importlib

        found = importlib.import_module(f"llm_sync.{name}")
    else:
        raise AttributeError(f"module 'llm_sync' has no attribute {name!r}")
    globals()[name] = found
    return found


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PROVIDERS) | {"testing", "otel"})
