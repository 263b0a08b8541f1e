"""Fault injection on top of the loopback server: one ``Flavor`` per provider framing, and faults.

A :class:`Flavor` knows how one provider frames a turn on the wire (its start, text, end, in-band
overload, unknown, invalid-JSON and keep-alive events, and a JSON error body), and builds that
provider pointed at a :class:`LoopbackServer`. The fault helpers add what the server's body steps
cannot express: a reset or a silence *before* the status line, gzip, a slow trickle, a huge event.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from dataclasses import dataclass, field, replace
from email.utils import formatdate
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import pytest

from llm_sync import Context, RetryPolicy, Timeouts
from llm_sync.providers._base import HttpProvider
from tests.support.server import LoopbackServer, RecordedRequest, Reply, Sleep, sse_event

__all__ = [
    "FLAVORS",
    "Flavor",
    "Gate",
    "fast_retries",
    "flavor_params",
    "gzip_steps",
    "http_date",
    "in_band_error",
    "reset_before_headers",
    "silent_before_headers",
    "trickle",
]

# Keys planted in every provider these helpers build: tests/test_secrets.py looks for them.
KEYS: Dict[str, str] = {
    "anthropic": "sk-ant-FAULTKEY-anthropic-0123456789abcdef",
    "openai": "sk-proj-FAULTKEY-openai-0123456789abcdef",
    "gemini": "AIzaFAULTKEY-gemini-0123456789abcdef",
    "bedrock": "bedrock-api-key-FAULTKEY-0123456789abcdef",
    "ollama": "ollama-FAULTKEY-0123456789abcdef",
    "openai_compatible": "sk-chat-FAULTKEY-compatible-0123456789abcdef",
    "codex": "codex-access-FAULTKEY-0123456789abcdef",
}

SSE_TYPE = "text/event-stream"


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class Flavor:
    """How one provider frames a turn, and how to build that provider against a server."""

    name: str
    framing: str
    content_type: str
    build: Callable[..., HttpProvider]
    start: Sequence[bytes]  # opens the turn: the provider yields Start and no content
    text: Callable[[str], bytes]  # one event carrying a text delta
    end: Sequence[bytes]  # usage and the stop reason: the provider yields Usage then Done
    overload: bytes  # an in-band "overloaded" error event (a retryable ServerError)
    unknown: bytes  # an event type the provider does not know (ignored)
    bad_json: bytes  # an event whose payload is not valid JSON
    keepalive: Optional[bytes]  # bytes that make no chunk (None: the framing has no such thing)
    error_json: Callable[[int], Any]  # the provider's JSON error body for a status, message ERROR_MESSAGE
    big: Callable[[int], bytes] = field(repr=False, default=lambda n: b"")  # a text event of ~n bytes
    # The variable the provider reads its key from (None: it takes keys only as arguments).
    key_variable: Optional[str] = None

    def provider(
        self,
        server: LoopbackServer,
        *,
        timeout: Any = None,
        max_retries: int = 0,
        api_key: Optional[str] = None,
    ) -> HttpProvider:
        return self.build(
            server.url,
            api_key if api_key is not None else KEYS[self.name],
            timeout if timeout is not None else Timeouts(connect=2.0, first_event=4.0, idle=4.0),
            max_retries,
        )

    def turn(self, *texts: str) -> List[bytes]:
        """A whole turn: start, one text event per text, end."""
        return [*self.start, *(self.text(t) for t in texts), *self.end]

    def reply(self, *texts: str, steps: Optional[Sequence[Any]] = None, **kw: Any) -> Reply:
        """A chunked 200 reply of ``steps`` (default: a whole turn of ``texts``)."""
        headers = {"content-type": self.content_type}
        headers.update(kw.pop("headers", {}))
        body = list(steps) if steps is not None else self.turn(*texts)
        return Reply(status=kw.pop("status", 200), headers=headers, body=body, chunked=kw.pop("chunked", True), **kw)


ERROR_MESSAGE = "the field max_tokens is out of range for this model"

# What each provider calls the error of a status in its JSON error bodies.
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_OPENAI_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 429: "requests"}
_GOOGLE_STATUS = {
    200: "INVALID_ARGUMENT",
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


# -- Anthropic (SSE) -------------------------------------------------------------------------


def _anthropic(url: str, key: str, timeout: Any, retries: int) -> HttpProvider:
    from llm_sync.providers.anthropic import AnthropicProvider

    return AnthropicProvider(key, model="claude-test", base_url=url, timeout=timeout, max_retries=retries)


def _anthropic_text(t: str) -> bytes:
    return sse_event(
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}},
    )


ANTHROPIC = Flavor(
    name="anthropic",
    framing="sse",
    content_type=SSE_TYPE,
    build=_anthropic,
    start=[
        sse_event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_fault_1",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-test",
                    "content": [],
                    "usage": {"input_tokens": 5, "output_tokens": 1},
                },
            },
        ),
        sse_event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
    ],
    text=_anthropic_text,
    end=[
        sse_event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        sse_event(
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 7}},
        ),
        sse_event("message_stop", {"type": "message_stop"}),
    ],
    overload=sse_event(
        "error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    ),
    unknown=sse_event("future_event", {"type": "future_event", "detail": {"x": 1}}),
    bad_json=b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0,\n\n',
    keepalive=b": keep-alive\n\n",
    error_json=lambda status: {
        "type": "error",
        "error": {"type": _ANTHROPIC_TYPES.get(status, "api_error"), "message": ERROR_MESSAGE},
        "request_id": "req_fault",
    },
    big=lambda n: _anthropic_text("x" * n),
    key_variable="ANTHROPIC_API_KEY",
)


# -- OpenAI Responses (SSE) ------------------------------------------------------------------


def _openai(url: str, key: str, timeout: Any, retries: int) -> HttpProvider:
    from llm_sync.providers.openai import OpenAiProvider

    return OpenAiProvider(key, model="gpt-test", base_url=url, timeout=timeout, max_retries=retries)


def _openai_event(obj: Dict[str, Any]) -> bytes:
    return sse_event(obj["type"], obj)


def _openai_text(t: str) -> bytes:
    return _openai_event(
        {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": t}
    )


OPENAI = Flavor(
    name="openai",
    framing="sse",
    content_type=SSE_TYPE,
    build=_openai,
    start=[
        _openai_event({"type": "response.created", "response": {"id": "resp_fault_1", "status": "in_progress"}}),
    ],
    text=_openai_text,
    end=[
        _openai_event(
            {
                "type": "response.completed",
                "response": {
                    "id": "resp_fault_1",
                    "status": "completed",
                    "usage": {"input_tokens": 5, "output_tokens": 7, "total_tokens": 12},
                },
            }
        ),
    ],
    overload=_openai_event(
        {"type": "error", "code": "server_is_overloaded", "message": "The server is overloaded", "param": None}
    ),
    unknown=_openai_event({"type": "response.future_thing.delta", "item_id": "x", "delta": "?"}),
    bad_json=b"event: response.output_text.delta\ndata: {\"type\": \"response.output_text.delta\", \n\n",
    keepalive=b": keep-alive\n\n",
    error_json=lambda status: {
        "error": {"message": ERROR_MESSAGE, "type": _OPENAI_TYPES.get(status, "server_error"), "param": None, "code": None}
    },
    big=lambda n: _openai_text("x" * n),
    key_variable="OPENAI_API_KEY",
)


# -- Gemini (SSE body read line by line) -----------------------------------------------------


def _gemini(url: str, key: str, timeout: Any, retries: int) -> HttpProvider:
    from llm_sync.providers.gemini import GeminiProvider

    return GeminiProvider(key, model="gemini-test", base_url=url, timeout=timeout, max_retries=retries)


def _gemini_text(t: str) -> bytes:
    return sse_event(
        None,
        {"candidates": [{"content": {"role": "model", "parts": [{"text": t}]}}], "responseId": "r_fault_1"},
    )


GEMINI = Flavor(
    name="gemini",
    framing="ndjson",
    content_type=SSE_TYPE,
    build=_gemini,
    start=[sse_event(None, {"candidates": [{"content": {"role": "model", "parts": []}}], "responseId": "r_fault_1"})],
    text=_gemini_text,
    end=[
        sse_event(
            None,
            {
                "candidates": [{"content": {"role": "model", "parts": [{"text": ""}]}, "finishReason": "STOP"}],
                "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 7, "totalTokenCount": 12},
                "responseId": "r_fault_1",
            },
        )
    ],
    overload=sse_event(None, {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}),
    unknown=sse_event(None, {"futureField": {"x": 1}, "responseId": "r_fault_1"}),
    bad_json=b'data: {"candidates": [\n\n',
    keepalive=b": keep-alive\n\n",
    error_json=lambda status: {
        "error": {"code": status, "message": ERROR_MESSAGE, "status": _GOOGLE_STATUS.get(status, "UNKNOWN")}
    },
    big=lambda n: _gemini_text("x" * n),
    key_variable="GEMINI_API_KEY",
)


# -- Bedrock (AWS event stream) --------------------------------------------------------------


def _bedrock(url: str, key: str, timeout: Any, retries: int) -> HttpProvider:
    from llm_sync.providers.bedrock import BedrockProvider

    return BedrockProvider(key, model="amazon.nova-test", base_url=url, timeout=timeout, max_retries=retries)


def _aws_event(name: str, obj: Any) -> bytes:
    from llm_sync._transport._eventstream import event_frame

    return event_frame(name, _json(obj))


def _bedrock_text(t: str) -> bytes:
    return _aws_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": t}})


def _bedrock_bad_json() -> bytes:
    from llm_sync._transport._eventstream import event_frame

    return event_frame("contentBlockDelta", b'{"contentBlockIndex": 0, "delta": {')


def _bedrock_overload() -> bytes:
    from llm_sync._transport._eventstream import exception_frame

    return exception_frame("serviceUnavailableException", _json({"message": "Bedrock is unable to process your request."}))


BEDROCK = Flavor(
    name="bedrock",
    framing="eventstream",
    content_type="application/vnd.amazon.eventstream",
    build=_bedrock,
    start=[_aws_event("messageStart", {"role": "assistant"})],
    text=_bedrock_text,
    end=[
        _aws_event("contentBlockStop", {"contentBlockIndex": 0}),
        _aws_event("messageStop", {"stopReason": "end_turn"}),
        _aws_event("metadata", {"usage": {"inputTokens": 5, "outputTokens": 7, "totalTokens": 12}, "metrics": {"latencyMs": 3}}),
    ],
    overload=_bedrock_overload(),
    unknown=_aws_event("futureEvent", {"x": 1}),
    bad_json=_bedrock_bad_json(),
    # The event stream has no keep-alive of its own; an event type yet to come makes no
    # chunk either, and before the turn's first event it must not count as its start.
    keepalive=_aws_event("futureEvent", {"x": 1}),
    error_json=lambda status: {"message": ERROR_MESSAGE},
    big=lambda n: _bedrock_text("x" * n),
    key_variable="AWS_BEARER_TOKEN_BEDROCK",
)


# -- Ollama (NDJSON) -------------------------------------------------------------------------


def _ollama(url: str, key: str, timeout: Any, retries: int) -> HttpProvider:
    ollama = pytest.importorskip("llm_sync.providers.ollama")
    return ollama.OllamaProvider(key, model="llama-test", base_url=url, timeout=timeout, max_retries=retries)  # type: ignore[no-any-return]


def _ollama_line(obj: Any) -> bytes:
    return _json(obj) + b"\n"


def _ollama_text(t: str) -> bytes:
    return _ollama_line({"model": "llama-test", "message": {"role": "assistant", "content": t}, "done": False})


OLLAMA = Flavor(
    name="ollama",
    framing="ndjson",
    content_type="application/x-ndjson",
    build=_ollama,
    start=[_ollama_text("")],
    text=_ollama_text,
    end=[
        _ollama_line(
            {
                "model": "llama-test",
                "message": {"role": "assistant", "content": ""},
                "done": True,
                "done_reason": "stop",
                "prompt_eval_count": 5,
                "eval_count": 7,
            }
        )
    ],
    overload=_ollama_line({"error": "server busy, please try again.  maximum pending requests exceeded"}),
    unknown=_ollama_line({"model": "llama-test", "future_field": {"x": 1}, "done": False}),
    bad_json=b'{"model": "llama-test", "message": {\n',
    keepalive=b"\n",
    error_json=lambda status: {"error": ERROR_MESSAGE},
    big=lambda n: _ollama_text("x" * n),
    key_variable="OLLAMA_API_KEY",
)

# -- Chat completions (SSE): OpenAiCompatibleProvider, and through it OpenRouter, llama.cpp, presets


def _chat(url: str, key: str, timeout: Any, retries: int) -> HttpProvider:
    from llm_sync.providers.openai_compatible import OpenAiCompatibleProvider

    return OpenAiCompatibleProvider(key, model="chat-test", base_url=f"{url}/v1", timeout=timeout, max_retries=retries)


def _chat_chunk(delta: Dict[str, Any], finish: Optional[str] = None, **extra: Any) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return sse_event(None, {"id": "chatcmpl-fault-1", "object": "chat.completion.chunk", "choices": [choice], **extra})


CHAT = Flavor(
    name="openai_compatible",
    framing="sse",
    content_type=SSE_TYPE,
    build=_chat,
    start=[_chat_chunk({"role": "assistant", "content": ""})],
    text=lambda t: _chat_chunk({"content": t}),
    end=[
        _chat_chunk({}, "stop"),
        sse_event(None, {"id": "chatcmpl-fault-1", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 7}}),
        b"data: [DONE]\n\n",
    ],
    overload=sse_event(None, {"error": {"message": "The server is overloaded", "type": "server_error", "code": 503}}),
    unknown=sse_event(None, {"id": "chatcmpl-fault-1", "object": "future.thing", "choices": [], "future": {"x": 1}}),
    bad_json=b'data: {"id": "chatcmpl-fault-1", "choices": [\n\n',
    keepalive=b": OPENROUTER PROCESSING\n\n",
    error_json=lambda status: {
        "error": {"message": ERROR_MESSAGE, "type": _OPENAI_TYPES.get(status, "server_error"), "param": None, "code": None}
    },
    big=lambda n: _chat_chunk({"content": "x" * n}),
    key_variable="OPENAI_COMPATIBLE_API_KEY",
)


# -- Codex (Responses events, a ChatGPT access token) -----------------------------------------


def _codex(url: str, key: str, timeout: Any, retries: int) -> HttpProvider:
    from llm_sync.providers.codex import CodexProvider

    return CodexProvider(key, model="gpt-test", base_url=url, timeout=timeout, max_retries=retries)


# The same events as OpenAI's Responses API; the key is a fixed access token (no variable).
CODEX = replace(OPENAI, name="codex", build=_codex, key_variable=None)

FLAVORS: Dict[str, Flavor] = {f.name: f for f in (ANTHROPIC, OPENAI, GEMINI, BEDROCK, OLLAMA, CHAT, CODEX)}


def flavor_params(*, keepalive: bool = False) -> List[Any]:
    """``pytest.param`` per flavor (Ollama skips itself when its module is absent)."""
    out = []
    for f in FLAVORS.values():
        if keepalive and f.keepalive is None:
            continue
        out.append(pytest.param(f, id=f.name))
    return out


def fast_retries(provider: HttpProvider, max_retries: int = 3, **kw: Any) -> HttpProvider:
    """A copy whose backoff is a few milliseconds, so retry tests stay fast."""
    policy = RetryPolicy(max_retries=max_retries, backoff_base=0.01, backoff_max=0.02, **kw)
    return provider._replace(_retry=policy)


# -- faults the body steps cannot express ----------------------------------------------------


def reset_before_headers(server: LoopbackServer) -> Callable[[RecordedRequest], Reply]:
    """A reply function that aborts the connection (RST) before any byte of the response."""

    def fn(req: RecordedRequest) -> Reply:
        with server._lock:
            conn = server._connections.get(req.connection_id)
        if conn is not None:
            conn.close(reset=True)  # the server's own write then fails and it moves on
        return Reply(status=200, body=[b""])

    return fn


class Gate:
    """An event a reply function waits on; ``open()`` lets every waiter go (tests call it on teardown)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def open(self) -> None:
        self._event.set()

    def wait(self, limit: float) -> None:
        self._event.wait(limit)


def silent_before_headers(gate: Gate, reply: Reply, limit: float = 5.0) -> Callable[[RecordedRequest], Reply]:
    """A reply function that says nothing (not even a status line) until ``gate`` opens."""

    def fn(req: RecordedRequest) -> Reply:
        gate.wait(limit)
        return reply

    return fn


def gzip_steps(body: bytes, pieces: int = 7) -> List[bytes]:
    """``body`` gzip-compressed, cut into ``pieces`` parts (so the client decodes incrementally)."""
    packed = gzip.compress(body)
    size = max(1, -(-len(packed) // pieces))
    return [packed[i : i + size] for i in range(0, len(packed), size)]


def trickle(data: bytes, every: float, seconds: float) -> List[Any]:
    """``data`` repeated every ``every`` seconds for about ``seconds``: a bounded keep-alive trickle."""
    steps: List[Any] = []
    for _ in range(max(1, int(seconds / every))):
        steps += [Sleep(every), data]
    return steps


def http_date(seconds_from_now: float) -> str:
    """An RFC 9110 HTTP date ``seconds_from_now`` seconds ahead (negative: in the past)."""
    return formatdate(time.time() + seconds_from_now, usegmt=True)


def in_band_error(flavor: Flavor, message: str) -> bytes:
    """The flavor's in-band error event (an auth or validation error) saying ``message``."""
    if flavor.name == "bedrock":
        from llm_sync._transport._eventstream import exception_frame

        return exception_frame("validationException", json.dumps({"message": message}).encode())
    if flavor.name == "ollama":
        return json.dumps({"error": message}).encode() + b"\n"
    if flavor.name == "gemini":
        return sse_event(None, {"error": {"code": 401, "message": message, "status": "UNAUTHENTICATED"}})
    if flavor.name in ("openai", "codex"):
        return sse_event("error", {"type": "error", "code": "invalid_api_key", "message": message})
    if flavor.name == "openai_compatible":
        return sse_event(None, {"error": {"message": message, "type": "invalid_request_error", "code": 401}})
    return sse_event("error", {"type": "error", "error": {"type": "authentication_error", "message": message}})


def run(provider: HttpProvider) -> Any:
    """``collect()`` the provider's answer to an empty context."""
    with provider.stream_response(Context()) as stream:
        return stream.collect()


def headers_lower(headers: Mapping[str, str]) -> Dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def assert_clean_turn(chunks: Sequence[Any], text: str) -> None:
    """One Start first, ``text`` exactly once, one Usage right before one Done at the end."""
    from llm_sync import StopReason
    from llm_sync._response import Done, Start, Usage

    kinds = [type(c) for c in chunks]
    assert kinds.count(Start) == 1 and kinds[0] is Start, kinds
    assert kinds.count(Done) == 1 and kinds[-1] is Done, kinds
    assert kinds.count(Usage) == 1 and kinds[-2] is Usage, kinds
    assert joined_text(chunks) == text
    assert chunks[-1].stop_reason is StopReason.END_TURN


def joined_text(chunks: Sequence[Any]) -> str:
    from llm_sync._response import Text

    return "".join(c.chunk for c in chunks if isinstance(c, Text))


def chunks_of(provider: HttpProvider) -> List[Any]:
    """Every chunk of the provider's answer to an empty context."""
    with provider.stream_response(Context()) as stream:
        return list(stream)


def error_of(provider: HttpProvider) -> BaseException:
    """The exception ``collect()`` raised, with its tracebacks dropped.

    A traceback keeps the reader's frames (and so a pooled socket) alive for as long as pytest
    keeps the report of a failing or xfailing test; dropping it lets ``no_leaks`` see the socket go.
    """
    try:
        run(provider)
    except BaseException as exc:
        seen = set()
        e: Optional[BaseException] = exc
        while e is not None and id(e) not in seen:
            seen.add(id(e))
            e.__traceback__ = None
            e = e.__cause__ or e.__context__
        return exc
    raise AssertionError("the stream ended without an error")
