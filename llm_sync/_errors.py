"""Every error llm_sync raises, and the one table that maps HTTP statuses to them.

::

    LlmError                           .retryable .provider .model .status .body
    ├── MissingApiKeyError             a required key is absent (.variable)
    ├── ApiRequestError                the request could not be built or sent
    ├── ApiError                       the provider refused: 4xx, or an error event
    │   ├── InvalidApiKeyError         401 / 403, or a malformed key
    │   ├── ContextOverflowError       the prompt exceeds the window (.requested_tokens, .max_tokens)
    │   ├── RateLimitedError     [r]   429, or a rate-limit event (.retry_after)
    │   └── ServerError          [r]   5xx, 529, overloaded / internal error events
    ├── RequestTimeoutError      [r]   connect / first_event / idle / total (.phase)
    ├── NetworkError             [r]   connection refused or reset before any content
    ├── StreamInterruptedError   [r]   the stream broke after content began (.partial)
    ├── StreamReadError                malformed framing: bad CRC, oversized event
    ├── JsonParsingError               an event that is not valid JSON
    ├── ToolParameterParsingError      a tool whose parameters are not a JSON Schema (.tool_name)
    ├── ToolArgumentsError             tool-call arguments that do not match the schema
    ├── OutputSchemaError              an output schema that is not a JSON Schema (.path)
    ├── StructuredOutputError          a reply that is not the JSON asked for (.reason, .path, .text)
    ├── OAuthError                     sign-in or token refresh failed
    ├── UnsupportedContentError        content the provider cannot take (audio, say)
    └── AllProvidersFailedError  [r]   every provider of a FallbackProvider failed (.errors, .retry_after)

``[r]`` marks the classes whose ``retryable`` is true by default. The library itself
retries only before the first content chunk reached the caller; ``StreamInterruptedError``
is retryable for the caller's own policy, and the library never re-sends after content.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Optional, Sequence

from ._redact import redact
from ._retry import clamp_retry_after

if TYPE_CHECKING:
    from ._stream import CollectedResponse

__all__ = [
    "AllProvidersFailedError",
    "ApiError",
    "ApiRequestError",
    "ContextOverflowError",
    "InvalidApiKeyError",
    "JsonParsingError",
    "LlmError",
    "MissingApiKeyError",
    "NetworkError",
    "OAuthError",
    "OutputSchemaError",
    "RateLimitedError",
    "RequestTimeoutError",
    "ServerError",
    "StreamInterruptedError",
    "StreamReadError",
    "StructuredOutputError",
    "ToolArgumentsError",
    "ToolParameterParsingError",
    "UnsupportedContentError",
]

# Bodies are kept for debugging but bounded: an HTML error page can be large.
_MAX_BODY = 4000


class LlmError(Exception):
    """Base of every error raised by llm_sync.

    ``str(err)`` is a sentence that names what went wrong and, where there is one,
    the fix. ``body`` is the provider's response body (truncated, secrets masked).
    """

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        provider: Optional[str] = None,
        model: Optional[str] = None,
        status: Optional[int] = None,
        body: Optional[str] = None,
        retryable: Optional[bool] = None,
    ) -> None:
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.model = model
        self.status = status
        if body is not None and len(body) > _MAX_BODY:
            body = body[:_MAX_BODY] + f"... [{len(body) - _MAX_BODY} more characters]"
        self.body = redact(body) if body is not None else None
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        where = [f"provider={self.provider}"] if self.provider else []
        if self.model:
            where.append(f"model={self.model}")
        if self.status is not None:
            where.append(f"status={self.status}")
        return f"{self.message} ({', '.join(where)})" if where else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    def __reduce__(self) -> Any:
        # Keyword-only constructors do not survive the default exception pickling,
        # and errors do cross process boundaries (multiprocessing pools).
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))


def _rebuild(cls: type[LlmError], message: str, state: dict[str, Any]) -> LlmError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class MissingApiKeyError(LlmError):
    """A required key or setting is absent; ``variable`` names the environment variable.

    ``variables`` lists every variable that was missing when several were (a cloud
    provider's endpoint and key, say); ``variable`` is the first of them.
    """

    def __init__(
        self, message: str, *, variable: Optional[str] = None, variables: Sequence[str] = (), **kw: Any
    ) -> None:
        super().__init__(message, **kw)
        self.variables = tuple(variables) or ((variable,) if variable else ())
        self.variable = variable if variable is not None else (self.variables[0] if self.variables else None)


class ApiRequestError(LlmError):
    """The request could not be built or sent, for a reason other than the network."""


class ApiError(LlmError):
    """The provider refused the request (a 4xx, or an error event in the stream)."""


class InvalidApiKeyError(ApiError):
    """The key was rejected (401/403) or is malformed."""


class ContextOverflowError(ApiError):
    """The prompt does not fit the model's context window.

    ``requested_tokens`` and ``max_tokens`` carry the numbers when the provider gave
    them; compact the conversation (``Context.with_compacted_summary``) and retry.
    """

    def __init__(
        self,
        message: str,
        *,
        requested_tokens: Optional[int] = None,
        max_tokens: Optional[int] = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.requested_tokens = requested_tokens
        self.max_tokens = max_tokens

    def __str__(self) -> str:
        base = super().__str__()
        if self.requested_tokens is not None and self.max_tokens is not None:
            return f"{base} [requested={self.requested_tokens}, max={self.max_tokens}]"
        return base


class RateLimitedError(ApiError):
    """Too many requests; ``retry_after`` is the wait in seconds when the provider said (at most a week)."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        retry_after: Optional[float] = None,
        resets_in_seconds: Optional[float] = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.retry_after = clamp_retry_after(retry_after)
        self.resets_in_seconds = resets_in_seconds


class ServerError(ApiError):
    """The provider failed or is overloaded (5xx, 529, an overloaded event)."""

    retryable = True

    def __init__(self, message: str, *, retry_after: Optional[float] = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = clamp_retry_after(retry_after)


class RequestTimeoutError(LlmError):
    """A deadline passed; ``phase`` is ``connect``, ``first_event``, ``idle``, ``total`` or ``server``."""

    retryable = True

    def __init__(self, message: str, *, phase: str = "total", **kw: Any) -> None:
        super().__init__(message, **kw)
        self.phase = phase


class NetworkError(LlmError):
    """The connection failed (refused, reset, DNS) before any content arrived."""

    retryable = True


class StreamInterruptedError(LlmError):
    """The stream ended early or broke after content began.

    ``partial`` holds what arrived (a ``CollectedResponse`` with ``complete=False``)
    when the error came out of :meth:`LlmResponseStream.collect`.
    """

    retryable = True

    def __init__(self, message: str, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.partial: Optional[CollectedResponse] = None


class StreamReadError(LlmError):
    """The response framing is malformed (bad CRC, an event larger than the limit)."""


class JsonParsingError(LlmError):
    """An event's payload is not valid JSON."""


class ToolParameterParsingError(LlmError, ValueError):
    """A tool's ``parameters`` is not valid JSON or not a valid JSON Schema."""

    def __init__(self, message: str, *, tool_name: str = "", path: str = "", **kw: Any) -> None:
        super().__init__(message, **kw)
        self.tool_name = tool_name
        self.path = path


class ToolArgumentsError(LlmError, ValueError):
    """A tool call's arguments are not JSON or do not match the tool's schema."""

    def __init__(self, message: str, *, tool_name: str = "", path: str = "", **kw: Any) -> None:
        super().__init__(message, **kw)
        self.tool_name = tool_name
        self.path = path


class OutputSchemaError(LlmError, ValueError):
    """An output schema (``Context.set_output_schema``) that is not a valid JSON Schema.

    Raised at once, before any request; ``path`` is the JSON Pointer of the fault in
    the schema (``/properties/age/type``), ``schema_name`` the schema's name. A
    ``ValueError`` too, like :class:`ToolParameterParsingError`: it is bad input.
    """

    def __init__(self, message: str, *, schema_name: str = "", path: Optional[str] = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.schema_name = schema_name
        self.path = path


class StructuredOutputError(LlmError, ValueError):
    """A reply that is not the JSON its output schema asked for (``CollectedResponse.parsed``).

    ``reason`` says why: ``"truncated"`` (the token limit, or the stream, cut the reply
    short of a whole JSON value), ``"refused"`` (the model or the provider's filter declined),
    ``"invalid_json"`` (the text is not one JSON value) or ``"schema_mismatch"`` (valid
    JSON that the schema rejects; ``path`` is the JSON Pointer of the first failing
    place in the reply, ``"/"`` for the whole of it). ``text`` is the reply as it came.
    A fresh sample may pass where the JSON was invalid or mismatched, so those two are
    ``retryable``; the same request would be cut or refused again, so those are not.
    """

    def __init__(
        self, message: str, *, reason: str, text: str = "", path: Optional[str] = None, **kw: Any
    ) -> None:
        kw.setdefault("retryable", reason in ("invalid_json", "schema_mismatch"))
        super().__init__(message, **kw)
        self.reason = reason
        self.path = path
        self.text = text


class OAuthError(LlmError):
    """Sign-in or token refresh failed, or no credentials are stored."""


class UnsupportedContentError(LlmError, ValueError):
    """The provider cannot take this content (audio for most providers)."""


class AllProvidersFailedError(LlmError):
    """Every provider of a ``FallbackProvider`` failed before answering, or was skipped.

    ``errors`` holds one error per provider, in the fallback's order: the error it
    raised, or, for a provider that was not tried, a copy of the error that started its
    cooldown (a message saying so, ``retry_after`` the time left) or a
    ``ContextOverflowError`` saying its window is too small. The message names each.
    ``retryable`` is true when any of them is; ``retry_after`` is the time until the
    first provider's cooldown ends (None when none cools down).
    """

    def __init__(
        self,
        message: str,
        *,
        errors: Sequence[LlmError] = (),
        retry_after: Optional[float] = None,
        **kw: Any,
    ) -> None:
        kw.setdefault("retryable", any(e.retryable for e in errors))
        super().__init__(message, **kw)
        self.errors = tuple(errors)
        self.retry_after = retry_after


def internal_error(exc: BaseException) -> LlmError:
    """The error for an exception no layer expected while a stream was read: a bug, or an odd answer.

    Named plainly so that it is not mistaken for a network problem; the original is
    its cause, with its traceback.
    """
    if isinstance(exc, json.JSONDecodeError):
        err: LlmError = JsonParsingError(f"an event is not valid JSON: {exc}")
    else:
        err = StreamReadError(
            f"llm_sync failed while handling the stream ({type(exc).__name__}: {exc}); the "
            "traceback's cause shows where; please report it with the provider and model"
        )
    err.__cause__ = exc
    err.__traceback__ = exc.__traceback__
    return err


def stamp(err: LlmError, provider: Optional[str], model: Optional[str]) -> LlmError:
    """Fill in the provider and model an error does not name yet: the one place errors get them."""
    if err.provider is None:
        err.provider = provider
    if err.model is None:
        err.model = model
    return err


# ---------------------------------------------------------------------------
# HTTP status -> error class: the one table.


def error_for_status(
    status: int,
    message: str,
    *,
    provider: Optional[str] = None,
    model: Optional[str] = None,
    body: Optional[str] = None,
    retry_after: Optional[float] = None,
) -> LlmError:
    """The typed error for an HTTP ``status`` (overflow detection is the caller's)."""
    kw: dict[str, Any] = {"provider": provider, "model": model, "status": status, "body": body}
    if status in (401, 403):
        return InvalidApiKeyError(message, **kw)
    if status == 408:
        return RequestTimeoutError(message, phase="server", **kw)
    if status == 409:
        # A conflict (a concurrent request on the same resource) clears on its own.
        return ApiError(message, retryable=True, **kw)
    if status == 429:
        return RateLimitedError(message, retry_after=retry_after, **kw)
    if status >= 500:
        return ServerError(message, retry_after=retry_after, **kw)
    return ApiError(message, **kw)


# ---------------------------------------------------------------------------
# Context overflow: the provider texts differ, the numbers are always in them.
#
# The text comes from the server, so every pattern must be linear in it: each
# quantifier is bounded (token counts have at most 15 digits, a gap between the two
# numbers at most 100 characters), so one attempt costs a bounded number of steps
# wherever it starts. An unbounded ``.*?`` cost a scan to the end of the text per
# occurrence of its prefix: a 256 KiB message repeating it blocked every thread
# (the regex engine holds the GIL) for a minute.

_N = r"\d{1,15}"  # a token count
_S = r"\s{0,16}"  # the spaces between words
_GAP = r".{0,100}?"  # the words between two numbers of one sentence
# What one overflow message is looked for in: the texts are short (under 500
# characters, the numbers near the start), but an error event can carry any amount
# of text, and each search holds the GIL while it runs.
_MAX_OVERFLOW_TEXT = 8 * 1024

_OVERFLOW_SOURCES: tuple[tuple[str, Optional[tuple[str, str]]], ...] = (
        # Anthropic, Bedrock-Claude: "prompt is too long: 200251 tokens > 200000 maximum"
        (rf"prompt is too long:{_S}(?P<req>{_N}){_S}tokens?{_S}>{_S}(?P<max>{_N})", ("req", "max")),
        # Anthropic: "input length and `max_tokens` exceed context limit: 189136 + 20000 > 204648"
        (
            rf"input length and `?max_tokens`? exceed context limit:{_S}(?P<a>{_N}){_S}\+{_S}(?P<b>{_N}){_S}>{_S}(?P<max>{_N})",
            ("a+b", "max"),
        ),
        # OpenAI chat, OpenRouter, DeepInfra: "maximum context length is 4097 tokens. However,
        # your messages resulted in 6988 tokens" / "you requested about 141607 tokens"
        (
            rf"maximum context length is{_S}(?P<max>{_N}){_S}tokens{_GAP}(?:resulted in|requested(?: about)?){_S}(?P<req>{_N}){_S}tokens",
            ("req", "max"),
        ),
        # Gemini: "The input token count (3475108) exceeds the maximum number of tokens allowed (1048576)"
        (rf"input token count \(?(?P<req>{_N})\)?{_S}exceeds the maximum number of tokens allowed \(?(?P<max>{_N})\)?", ("req", "max")),
        # llama.cpp: "request (6010 tokens) exceeds the available context size (2048 tokens)"
        (rf"request \((?P<req>{_N}) tokens\) exceeds the available context size \((?P<max>{_N}) tokens\)", ("req", "max")),
        # llama-cpp-python: "Requested tokens (2285) exceed context window of 2048"
        (rf"requested tokens \((?P<req>{_N})\) exceed context window of (?P<max>{_N})", ("req", "max")),
        # Azure: "Input tokens exceed the configured limit of 272000 tokens. Your messages resulted in 509178 tokens"
        (rf"exceed the configured limit of (?P<max>{_N}) tokens{_GAP}resulted in (?P<req>{_N}) tokens", ("req", "max")),
        # Texts without numbers.
        (r"exceeds the context window|context_length_exceeded|exceed_context_size_error", None),
        (r"input is too long for requested model|too many input tokens", None),
        (r"the input length exceeds the context length", None),
        (r"exceeds the available context size", None),
)
_overflow_patterns: list[tuple[re.Pattern[str], Optional[tuple[str, str]]]] = []


def _compiled_overflow_patterns() -> list[tuple[re.Pattern[str], Optional[tuple[str, str]]]]:
    # Compiled on first use: an error path should not cost every import.
    if not _overflow_patterns:
        _overflow_patterns.extend(
            (re.compile(p, re.IGNORECASE | re.DOTALL), g) for p, g in _OVERFLOW_SOURCES
        )
    return _overflow_patterns


def parse_overflow(text: str) -> Optional[tuple[Optional[int], Optional[int]]]:
    """``(requested_tokens, max_tokens)`` if ``text`` reports a context overflow, else None."""
    if not text:
        return None
    text = text[:_MAX_OVERFLOW_TEXT]
    for pattern, groups in _compiled_overflow_patterns():
        m = pattern.search(text)
        if m is None:
            continue
        if groups is None:
            return (None, None)
        req_key, max_key = groups
        if req_key == "a+b":
            requested = int(m.group("a")) + int(m.group("b"))
        else:
            requested = int(m.group(req_key))
        return (requested, int(m.group(max_key)))
    return None


def overflow_error(
    text: str,
    message: str,
    *,
    requested_tokens: Optional[int] = None,
    max_tokens: Optional[int] = None,
    **kw: Any,
) -> Optional[ContextOverflowError]:
    """A ``ContextOverflowError`` if ``text`` reports an overflow, else None.

    Numbers given explicitly (llama.cpp's ``n_prompt_tokens``/``n_ctx`` fields) win
    over the ones parsed from the text.
    """
    found = parse_overflow(text)
    if found is None and requested_tokens is None:
        return None
    req, mx = found or (None, None)
    return ContextOverflowError(
        message,
        requested_tokens=requested_tokens if requested_tokens is not None else req,
        max_tokens=max_tokens if max_tokens is not None else mx,
        **kw,
    )
