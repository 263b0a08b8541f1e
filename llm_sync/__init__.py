"""llm_sync: one synchronous, thread-based streaming interface over many LLM providers."""

from __future__ import annotations

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
from ._reasoning import ReasoningEffort
from ._response import LlmResponse, StopReason, TokenUsage
from ._version import __version__

__all__ = [
    "ApiError",
    "ApiRequestError",
    "ContextOverflowError",
    "InvalidApiKeyError",
    "JsonParsingError",
    "LlmError",
    "LlmResponse",
    "MissingApiKeyError",
    "NetworkError",
    "OAuthError",
    "RateLimitedError",
    "ReasoningEffort",
    "RequestTimeoutError",
    "ServerError",
    "StopReason",
    "StreamInterruptedError",
    "StreamReadError",
    "TokenUsage",
    "ToolArgumentsError",
    "ToolParameterParsingError",
    "UnsupportedContentError",
    "__version__",
]
