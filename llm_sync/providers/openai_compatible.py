"""The OpenAI-compatible chat-completions engine and ``OpenAiCompatibleProvider`` for any such server."""

from __future__ import annotations

import json
import uuid
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    ClassVar,
    Dict,
    Iterator,
    List,
    Mapping,
    Optional,
    Tuple,
    TypeVar,
)

from .._call import Parser
from .._errors import (
    ApiError,
    ContextOverflowError,
    InvalidApiKeyError,
    JsonParsingError,
    LlmError,
    RateLimitedError,
    ServerError,
    StreamInterruptedError,
    UnsupportedContentError,
    error_for_status,
    overflow_error,
)
from .._json import loads_event
from .._response import (
    Done,
    EncryptedReasoning,
    LlmResponse,
    Start,
    StopReason,
    ToolRequestComplete,
    ToolRequestStart,
    Usage,
    reasoning,
    text,
    tool_arg,
)
from .._timeouts import TimeoutSpec
from ._base import HttpProvider

if TYPE_CHECKING:
    from .._context import Context
    from .._model import LlmModel
    from .._transport._frame import Frame
    from .._transport._request import HttpCall

__all__ = [
    "FINISH_REASONS",
    "OpenAiCompatibleProvider",
    "ToolCallCollector",
    "build_request",
    "chat_messages",
    "classify_error",
    "parse_events",
    "stream_error",
    "usage_from",
]

HANDOFF_PREFIX = "[Previous conversation handoff]\n\n"

#: The chat-completions ``finish_reason`` words; anything else is ``UNKNOWN`` (raw kept).
FINISH_REASONS: Dict[str, StopReason] = {
    "stop": StopReason.END_TURN,
    # Not OpenAI's words, but sent by some compatible servers for the same thing.
    "end_turn": StopReason.END_TURN,
    "eos": StopReason.END_TURN,
    "eos_token": StopReason.END_TURN,
    "stop_sequence": StopReason.END_TURN,
    "length": StopReason.LENGTH,
    "max_tokens": StopReason.LENGTH,
    "model_context_window_exceeded": StopReason.LENGTH,
    "tool_calls": StopReason.TOOL_CALLS,
    "tool_use": StopReason.TOOL_CALLS,
    "content_filter": StopReason.CONTENT_FILTER,
    "function_call": StopReason.FUNCTION_CALL,
    "error": StopReason.ERROR,
    "network_error": StopReason.ERROR,
}

SchemaTransform = Callable[[Dict[str, Any]], Dict[str, Any]]
C = TypeVar("C", bound="OpenAiCompatibleProvider")


# ---------------------------------------------------------------------------
# Request building.


def _user_content(blocks: Any, audio: bool) -> Any:
    from .._content import Audio, Image
    from .._content import Text as TextBlock

    if all(isinstance(b, TextBlock) for b in blocks):
        # A plain string is what every server takes; some reject arrays of parts.
        return "\n".join(b.text for b in blocks)
    parts: List[Dict[str, Any]] = []
    for b in blocks:
        if isinstance(b, TextBlock):
            parts.append({"type": "text", "text": b.text})
        elif isinstance(b, Image):
            parts.append({"type": "image_url", "image_url": {"url": b.as_data_uri()}})
        elif isinstance(b, Audio):
            fmt = _AUDIO_FORMATS.get(b.mime_type.lower()) if audio else None
            if fmt is None:
                if audio:
                    raise UnsupportedContentError(
                        f"chat completions take wav or mp3 audio, not {b.mime_type}; convert the "
                        "audio first"
                    )
                raise UnsupportedContentError(
                    "This provider does not support audio input; remove the audio block or "
                    "transcribe it to text first"
                )
            parts.append({"type": "input_audio", "input_audio": {"data": b.data, "format": fmt}})
        else:  # pragma: no cover - ContentBlock has exactly these variants
            raise UnsupportedContentError(f"unknown content block {type(b).__name__}")
    return parts


_AUDIO_FORMATS = {"audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav", "audio/mpeg": "mp3", "audio/mp3": "mp3"}


def chat_messages(
    context: Context,
    *,
    reasoning_field: Optional[str] = "reasoning_content",
    reasoning_placeholder: bool = False,
    audio: bool = False,
    replay_for: Optional[str] = None,
) -> List[Dict[str, Any]]:
    """The ``messages`` array for ``context``.

    ``reasoning_field`` names the assistant-message field that carries an earlier turn's
    reasoning text back (None: not sent); ``reasoning_placeholder`` sends ``"."`` there
    for a turn with tool calls but no reasoning (thinking models such as Kimi and
    DeepSeek reject tool-call turns without it). ``replay_for`` (``"provider:model"``)
    sends encrypted reasoning written by that model back as ``reasoning_details``.
    """
    from .._messages import Assistant, Error, Summary, System, ToolCallResultMessage, User

    out: List[Dict[str, Any]] = []
    for m in context.messages:
        if isinstance(m, User):
            out.append({"role": "user", "content": _user_content(m.content, audio)})
        elif isinstance(m, Assistant):
            msg: Dict[str, Any] = {"role": "assistant", "content": m.content}
            if reasoning_field is not None:
                summary = m.reasoning.summary_text
                if summary:
                    msg[reasoning_field] = summary
                elif m.tool_calls and reasoning_placeholder:
                    msg[reasoning_field] = "."
            enc = m.reasoning.encrypted_content
            if replay_for is not None and enc is not None and enc.is_for(replay_for):
                details = _details_from(enc.content)
                if details:
                    msg["reasoning_details"] = details
                    if reasoning_field is not None:
                        # The details carry the same text, signed: sending both repeats it.
                        msg.pop(reasoning_field, None)
            if m.tool_calls:
                msg["tool_calls"] = [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments},
                    }
                    for c in m.tool_calls
                ]
            out.append(msg)
        elif isinstance(m, ToolCallResultMessage):
            r = m.result
            content = r.error if m.is_error else r.result  # type: ignore[union-attr]
            out.append({"role": "tool", "content": content, "tool_call_id": r.id})
        elif isinstance(m, System):
            out.append({"role": "system", "content": m.content})
        elif isinstance(m, Summary):
            out.append({"role": "user", "content": HANDOFF_PREFIX + m.content})
        elif isinstance(m, Error):
            continue  # an error note is for the user, not the model
    return out


def _details_from(content: str) -> Optional[List[Any]]:
    # What parse_events wrote into EncryptedReasoning: {"reasoning_details": [...]}.
    try:
        parsed = json.loads(content)
    except ValueError:
        return None
    if isinstance(parsed, dict) and isinstance(parsed.get("reasoning_details"), list):
        return parsed["reasoning_details"]  # type: ignore[no-any-return]
    return None


def chat_tools(context: Context, transform: Optional[SchemaTransform] = None) -> List[Dict[str, Any]]:
    """The ``tools`` array: one function per tool, its schema optionally transformed."""
    out = []
    for t in context.tools:
        schema = t.schema
        if transform is not None:
            schema = transform(json.loads(t.parameters))  # a private copy: transforms may mutate
        out.append(
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": schema,
                    "strict": False,
                },
            }
        )
    return out


def build_request(
    context: Context,
    model: str,
    *,
    include_usage: bool = True,
    reasoning_effort: bool = True,
    prompt_cache_key: bool = False,
    reasoning_field: Optional[str] = "reasoning_content",
    reasoning_placeholder: bool = False,
    audio: bool = False,
    schema_transform: Optional[SchemaTransform] = None,
    replay_for: Optional[str] = None,
    max_tokens: Optional[int] = None,
    temperature: Optional[float] = None,
    extra: Optional[Mapping[str, Any]] = None,
) -> Dict[str, Any]:
    """The chat-completions body for ``context`` (always streaming)."""
    body: Dict[str, Any] = {
        "model": model,
        "messages": chat_messages(
            context,
            reasoning_field=reasoning_field,
            reasoning_placeholder=reasoning_placeholder,
            audio=audio,
            replay_for=replay_for,
        ),
        "stream": True,
    }
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    if context.tools:
        body["tools"] = chat_tools(context, schema_transform)
    effort = context.reasoning_effort
    if reasoning_effort and effort is not None:
        body["reasoning_effort"] = effort.value
    if prompt_cache_key and context.prompt_cache_key is not None:
        body["prompt_cache_key"] = context.prompt_cache_key
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if temperature is not None:
        body["temperature"] = temperature
    if extra:
        body.update(extra)
    return body


# ---------------------------------------------------------------------------
# Tool-call assembly.


class _Call:
    __slots__ = ("id", "name", "args", "given_id", "started")

    def __init__(self, id: str, name: Optional[str], given_id: bool) -> None:
        self.id = id
        self.name = name
        self.args: List[str] = []
        self.given_id = given_id
        self.started = False


class ToolCallCollector:
    """Assembles streamed ``tool_calls`` deltas into calls, keyed by index and id.

    Unlike the reference crate's collector (keyed by index alone), a delta that
    reuses an index for a new call (a different id, or a new name after complete
    arguments) completes the earlier call and starts another, so providers that
    put every call at index 0, or send each call whole in one delta, still yield
    separate, correct calls. Arguments that arrive before the name are held until
    it comes. Completion order is the order the calls started.
    """

    __slots__ = ("_open", "_by_index", "_seq", "completed")

    def __init__(self) -> None:
        self._open: Dict[int, _Call] = {}  # insertion order = start order; keyed by serial
        self._by_index: Dict[Any, int] = {}  # provider index (or id) -> serial of its open call
        self._seq = 0
        #: How many calls this turn completed (for the stop reason).
        self.completed = 0

    @property
    def pending(self) -> bool:
        return bool(self._open)

    def _new(self, key: Any, id: Optional[str], name: Optional[str]) -> _Call:
        self._seq += 1
        call = _Call(id or f"tool_call_{self._seq}", name or None, bool(id))
        self._open[self._seq] = call
        self._by_index[key] = self._seq
        return call

    def feed(self, delta: Mapping[str, Any]) -> List[LlmResponse]:
        """The chunks one ``tool_calls`` entry produces."""
        out: List[LlmResponse] = []
        fn = delta.get("function")
        if not isinstance(fn, Mapping):
            fn = {}
        id = delta.get("id") or None
        name = fn.get("name") or None
        args = fn.get("arguments")
        if args is not None and not isinstance(args, str):
            # Some servers send the arguments as an object rather than JSON text.
            args = json.dumps(args, ensure_ascii=False, separators=(",", ":"))
        index = delta.get("index")
        key: Any = index if index is not None else ("id", id) if id else ("last",)
        serial = self._by_index.get(key)
        if serial is None and index is None and not id and self._open:
            serial = next(reversed(self._open))  # no index, no id: continues the latest call
        call = self._open.get(serial) if serial is not None else None
        if call is not None and self._is_new_call(call, id, name):
            out.extend(self._complete(serial))  # type: ignore[arg-type]
            call = None
        if call is None:
            call = self._new(key, id, name)
        else:
            if name and call.name is None:
                call.name = name
            if id and not call.given_id and not call.started:
                call.id, call.given_id = id, True  # nothing went out under the made-up id
        if not call.started and call.name is not None:
            call.started = True
            out.append(ToolRequestStart(call.id, call.name))
            if call.args:
                out.append(tool_arg(call.id, "".join(call.args)))
        if args:
            call.args.append(args)
            if call.started:
                out.append(tool_arg(call.id, args))
        return out

    @staticmethod
    def _is_new_call(call: _Call, id: Optional[str], name: Optional[str]) -> bool:
        if id and call.given_id and id != call.id:
            return True
        if name and call.name is not None and not (id and id == call.id):
            # The same index named again: a new call unless the provider repeats the
            # name on every delta of one call, which leaves the arguments unfinished.
            if name != call.name:
                return True
            return _complete_json("".join(call.args))
        return False

    def _complete(self, serial: int) -> List[LlmResponse]:
        call = self._open.pop(serial)
        for k in [k for k, s in self._by_index.items() if s == serial]:
            del self._by_index[k]
        if call.name is None:
            return []  # arguments without a function name cannot be called
        out: List[LlmResponse] = []
        if not call.started:
            out.append(ToolRequestStart(call.id, call.name))
        from .._tools import ToolCallRequest

        self.completed += 1
        out.append(ToolRequestComplete(ToolCallRequest(call.id, call.name, "".join(call.args))))
        return out

    def complete_all(self) -> List[LlmResponse]:
        """Complete every open call, in the order they started."""
        out: List[LlmResponse] = []
        for serial in list(self._open):
            out.extend(self._complete(serial))
        return out


def _complete_json(s: str) -> bool:
    if not s.strip():
        return False
    try:
        json.loads(s)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------
# Stream parsing.


def _count(v: Any) -> Optional[int]:
    if v is None or isinstance(v, bool):
        return None
    try:
        n = int(v)
    except (TypeError, ValueError):
        return None
    return n if n > 0 else 0  # OpenRouter has sent negative counts


def usage_from(u: Mapping[str, Any]) -> Usage:
    """A ``Usage`` from a chat-completions ``usage`` object (negative counts clamped to 0).

    ``prompt_tokens`` already includes cached tokens on every server seen; DeepSeek's
    ``prompt_cache_hit_tokens`` and Moonshot's top-level ``cached_tokens`` stand in
    for ``prompt_tokens_details.cached_tokens`` when that is absent.
    """
    ptd = u.get("prompt_tokens_details")
    if not isinstance(ptd, Mapping):
        ptd = {}
    ctd = u.get("completion_tokens_details")
    if not isinstance(ctd, Mapping):
        ctd = {}
    cached = _count(ptd.get("cached_tokens"))
    if cached is None:
        cached = _count(u.get("prompt_cache_hit_tokens"))
    if cached is None:
        cached = _count(u.get("cached_tokens"))
    return Usage(
        input_tokens=_count(u.get("prompt_tokens")) or 0,
        output_tokens=_count(u.get("completion_tokens")) or 0,
        cached_input_tokens=cached,
        cache_creation_tokens=_count(ptd.get("cache_write_tokens")),
        reasoning_tokens=_count(ctd.get("reasoning_tokens")),
        input_audio_tokens=_count(ptd.get("audio_tokens")),
        input_video_tokens=_count(ptd.get("video_tokens")),
        output_audio_tokens=_count(ctd.get("audio_tokens")),
        accepted_prediction_tokens=_count(ctd.get("accepted_prediction_tokens")),
        rejected_prediction_tokens=_count(ctd.get("rejected_prediction_tokens")),
    )


def _merge_details(acc: List[Dict[str, Any]], details: List[Any]) -> None:
    # OpenRouter streams reasoning_details piecewise: text fragments of one block
    # share (type, index); the signature and encrypted data arrive whole.
    for d in details:
        if not isinstance(d, dict):
            continue
        kind, idx = d.get("type"), d.get("index")
        last = acc[-1] if acc else None
        if last is not None and last.get("type") == kind and last.get("index") == idx and kind != "reasoning.encrypted":
            for field in ("text", "summary"):
                piece = d.get(field)
                if isinstance(piece, str) and piece:
                    last[field] = (last.get(field) or "") + piece
            for k, v in d.items():
                if k not in ("text", "summary") and v not in (None, "") and not last.get(k):
                    last[k] = v
        else:
            acc.append(dict(d))


def _detail_text(details: List[Any]) -> str:
    parts = []
    for d in details:
        if isinstance(d, dict):
            piece = d.get("text") if d.get("type") == "reasoning.text" else d.get("summary")
            if isinstance(piece, str):
                parts.append(piece)
    return "".join(parts)


def parse_events(
    frames: Iterator[Frame],
    *,
    provider: Optional[str] = None,
    model: Optional[str] = None,
    keep_reasoning_details: bool = False,
) -> Iterator[LlmResponse]:
    """Chat-completions SSE frames to chunks: Start, deltas, tool calls, one Usage, Done.

    Lenient: unknown fields (``obfuscation``, ``provider``, llama.cpp's ``timings``,
    ``native_finish_reason``) are ignored, ``object`` is optional, usage may come on a
    chunk with or without choices (or inside the choice), and reading goes on after
    ``finish_reason`` and after an empty-choices chunk until ``[DONE]`` or the end of
    the body. An ``{"error": ...}`` chunk is raised as a typed error.
    """
    started = False
    collector = ToolCallCollector()
    raw_stop: Optional[str] = None
    usage: Optional[Mapping[str, Any]] = None
    details: List[Dict[str, Any]] = []
    message_id = ""
    done = False
    loads = loads_event
    # The collector's own dict of open calls: testing it is cheaper than the property,
    # and the fast path below tests it on every chunk.
    open_calls = collector._open
    for frame in frames:
        data = frame.data
        if data == "[DONE]":
            done = True
            break
        try:
            obj = loads(data)
        except ValueError as exc:
            raise JsonParsingError(
                f"a chat-completions event ({frame.event!r}) is not valid JSON: {exc}: {data[:200]!r}",
                provider=provider,
                model=model,
            ) from None
        if not isinstance(obj, dict):
            raise JsonParsingError(
                f"a chat-completions event is JSON but not an object: {data[:200]!r}",
                provider=provider,
                model=model,
            )
        err = obj.get("error")
        if err is not None or frame.event == "error":
            raise stream_error(err if err is not None else obj, provider=provider, model=model)
        if not started:
            started = True
            message_id = obj.get("id") or f"chatcmpl-{uuid.uuid4().hex}"
            yield Start(message_id)
        u = obj.get("usage")
        if u:
            usage = u
        choices = obj.get("choices")
        if not choices:
            continue  # a usage-only chunk; more may follow
        choice = choices[0] if len(choices) == 1 else _first_choice(choices)
        delta = choice.get("delta")
        if delta and len(delta) == 1 and not open_calls:
            # Nearly every chunk of an answer: {"content": "..."} and nothing else.
            content = delta.get("content")
            if content and isinstance(content, str):
                yield text(content)
                delta = None
        if delta:
            rc = delta.get("reasoning_content") or delta.get("reasoning")
            rd = delta.get("reasoning_details")
            if rc and isinstance(rc, str):
                yield reasoning(rc)
            elif rd and isinstance(rd, list):
                # Only when no plain reasoning text came with it: OpenRouter sends both.
                piece = _detail_text(rd)
                if piece:
                    yield reasoning(piece)
            if rd and keep_reasoning_details and isinstance(rd, list):
                _merge_details(details, rd)
            content = delta.get("content")
            if content and isinstance(content, str):
                if collector.pending:
                    yield from collector.complete_all()
                yield text(content)
            calls = delta.get("tool_calls")
            if calls:
                for tc in calls:
                    if isinstance(tc, Mapping):
                        yield from collector.feed(tc)
        cu = choice.get("usage")
        if cu:
            usage = cu  # Moonshot puts the usage inside the final choice
        fr = choice.get("finish_reason")
        if fr:
            raw_stop = fr
            if collector.pending:
                yield from collector.complete_all()
    if not started:
        if done:
            raise StreamInterruptedError(
                "the provider returned an empty stream ([DONE] with no chunk before it)",
                provider=provider,
                model=model,
            )
        raise StreamInterruptedError(
            "the provider returned an empty stream: no chat-completions chunk arrived (a "
            "non-streaming reply or an error body sent with status 200 looks like this; check "
            "base_url points at a chat-completions API)",
            provider=provider,
            model=model,
        )
    if not done and raw_stop is None:
        return  # cut off: the engine raises StreamInterruptedError
    yield from collector.complete_all()
    if details:
        first_id = next((d.get("id") for d in details if d.get("id")), None)
        yield EncryptedReasoning(
            str(first_id or message_id),
            json.dumps({"reasoning_details": details}, ensure_ascii=False, separators=(",", ":")),
        )
    if usage is not None:
        yield usage_from(usage)
    if raw_stop is None:
        stop = StopReason.TOOL_CALLS if collector.completed else StopReason.UNKNOWN
    else:
        stop = FINISH_REASONS.get(raw_stop, StopReason.UNKNOWN)
        if stop is StopReason.END_TURN and collector.completed:
            # Several servers say "stop" after tool calls; the turn still needs tool results.
            stop = StopReason.TOOL_CALLS
    yield Done(stop, raw_stop)


def _first_choice(choices: List[Any]) -> Mapping[str, Any]:
    for c in choices:
        if isinstance(c, Mapping) and c.get("index", 0) == 0:
            return c
    return choices[0]  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------
# Errors.

_RATE_WORDS = ("rate_limit", "rate-limit", "ratelimit", "too_many_requests", "quota")
_SERVER_WORDS = ("server_error", "overloaded", "internal", "unavailable", "timeout", "bad_gateway")
_AUTH_WORDS = ("invalid_api_key", "authentication", "unauthorized", "permission")
_OVERFLOW_WORDS = ("context_length_exceeded", "exceed_context_size_error", "context_window_exceeded")


def _error_parts(err: Any) -> Tuple[str, str, Optional[int], Dict[str, Any]]:
    """(message, code/type words, numeric code, the error object) of an error payload."""
    if isinstance(err, list) and err:
        err = err[0]
    if isinstance(err, dict) and "error" in err and not ("message" in err and "code" in err):
        inner = err["error"]
        err = inner if isinstance(inner, (dict, str)) else err
    if isinstance(err, str):
        return err, "", None, {}
    if not isinstance(err, dict):
        return str(err), "", None, {}
    message = err.get("message") or err.get("detail") or ""
    if not isinstance(message, str):
        message = json.dumps(message)
    meta = err.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("raw"), str) and meta["raw"] not in message:
        # OpenRouter's "Provider returned error" hides the upstream text here.
        message = f"{message}: {meta['raw']}" if message else meta["raw"]
    code = err.get("code")
    numeric = code if isinstance(code, int) and not isinstance(code, bool) else None
    if numeric is None and isinstance(code, str) and code.isdigit():
        numeric = int(code)
    words = " ".join(str(x) for x in (err.get("type"), code, err.get("status")) if x is not None).lower()
    return message, words, numeric, err


def _overflow(
    message: str, words: str, err: Mapping[str, Any], said: str, **kw: Any
) -> Optional[ContextOverflowError]:
    # llama.cpp gives the numbers as fields (n_prompt_tokens, n_ctx); they win over the text.
    requested = _count(err.get("n_prompt_tokens"))
    maximum = _count(err.get("n_ctx"))
    said += "; shorten the conversation (Context.with_compacted_summary) or use a larger model"
    found = overflow_error(
        f"{message} {words}", said, requested_tokens=requested, max_tokens=maximum, **kw
    )
    if found is None and any(w in words for w in _OVERFLOW_WORDS):
        found = ContextOverflowError(said, requested_tokens=requested, max_tokens=maximum, **kw)
    return found


def stream_error(err: Any, *, provider: Optional[str] = None, model: Optional[str] = None) -> LlmError:
    """The typed error for an ``{"error": ...}`` object that arrived inside the stream."""
    message, words, numeric, obj = _error_parts(err)
    message = message or "the provider reported an error in the stream"
    text_ = f"{provider or 'the provider'} reported an error mid-stream: {message}"
    body = json.dumps(err, ensure_ascii=False) if not isinstance(err, str) else err
    kw: Dict[str, Any] = {"provider": provider, "model": model, "body": body}
    over = _overflow(message, words, obj, text_, **kw)
    if over is not None:
        return over
    if numeric is not None and 400 <= numeric < 600:
        if numeric == 404 and model:
            return ApiError(f"{text_}; check the model name {model!r}", **kw)
        return error_for_status(numeric, text_, **kw)
    if any(w in words for w in _RATE_WORDS):
        return RateLimitedError(text_, **kw)
    if any(w in words for w in _AUTH_WORDS):
        return InvalidApiKeyError(text_, **kw)
    if any(w in words for w in _SERVER_WORDS) or "overloaded" in message.lower():
        return ServerError(text_, **kw)
    return ApiError(text_, **kw)


def classify_error(
    status: int,
    headers: Mapping[str, str],
    body: str,
    *,
    provider: Optional[str] = None,
    model: Optional[str] = None,
    label: str = "the server",
    key_variable: Optional[str] = None,
) -> LlmError:
    """The typed error for a non-2xx chat-completions answer."""
    from .._retry import parse_retry_after
    from .._transport._http import error_summary

    try:
        parsed: Any = json.loads(body) if body.strip() else None
    except ValueError:
        parsed = None
    if parsed is not None:
        message, words, _, obj = _error_parts(parsed)
    else:
        message, words, obj = "", "", {}
    if not message:
        message = error_summary(headers, body)
    kw: Dict[str, Any] = {"provider": provider, "model": model, "status": status, "body": body}
    text_ = f"{label} answered HTTP {status}: {message}"
    if status not in (401, 403, 429):
        over = _overflow(message, words, obj, text_, **kw)
        if over is not None:
            return over
    if status in (401, 403):
        fix = f"check {key_variable} or api_key=" if key_variable else "check api_key="
        return InvalidApiKeyError(f"{text_}; the key was refused: {fix}", **kw)
    if status == 404 or "model_not_found" in words:
        return ApiError(f"{text_}; check the model name {model!r} and base_url", **kw)
    del kw["status"]
    return error_for_status(status, text_, retry_after=parse_retry_after(headers), **kw)


# ---------------------------------------------------------------------------
# The provider.


class OpenAiCompatibleProvider(HttpProvider):
    """Any server with an OpenAI-style ``POST {base_url}/chat/completions`` (vLLM, LM Studio, Groq, ...).

    ``base_url`` is the prefix up to and including ``/v1`` (or whatever the server
    uses); it is required unless ``OPENAI_COMPATIBLE_BASE_URL`` is set. ``api_key`` is
    optional (``OPENAI_COMPATIBLE_API_KEY``) and sent as a bearer token when given.
    ``headers`` are added to every request; ``extra_body`` is merged into every body
    (``{"top_p": 0.9}``, a server's own options).

    Subclasses (the DeepSeek / Moonshot / Z.ai presets, OpenRouter, llama.cpp) change
    the class attributes below and, for body changes, :meth:`request_body`.
    """

    provider_id: ClassVar[str] = "openai_compatible"
    label: ClassVar[str] = "OpenAI-compatible"
    default_model: ClassVar[str] = ""
    default_base_url: ClassVar[str] = ""
    key_variable: ClassVar[Optional[str]] = "OPENAI_COMPATIBLE_API_KEY"
    key_required: ClassVar[bool] = False
    base_url_variable: ClassVar[Optional[str]] = "OPENAI_COMPATIBLE_BASE_URL"
    #: Appended to ``base_url``.
    chat_path: ClassVar[str] = "/chat/completions"
    #: Ask for the usage chunk (``stream_options.include_usage``).
    include_usage: ClassVar[bool] = True
    #: Send ``Context.reasoning_effort`` as top-level ``reasoning_effort``.
    send_reasoning_effort: ClassVar[bool] = True
    #: Send ``Context.prompt_cache_key`` as ``prompt_cache_key``.
    send_prompt_cache_key: ClassVar[bool] = False
    #: The assistant-message field that carries reasoning text back (None: not sent).
    reasoning_field: ClassVar[Optional[str]] = "reasoning_content"
    #: Send ``"."`` as reasoning on tool-call turns that have none (thinking models need it).
    reasoning_placeholder: ClassVar[bool] = False
    #: Accept wav/mp3 audio as ``input_audio`` parts (else UnsupportedContentError).
    accepts_audio: ClassVar[bool] = False
    #: Collect ``reasoning_details`` into one EncryptedReasoning and replay it.
    keeps_reasoning_details: ClassVar[bool] = False
    #: Applied to each tool's parameter schema (a copy) before sending.
    schema_transform: ClassVar[Optional[SchemaTransform]] = None

    def __init__(
        self,
        api_key: Optional[str] = None,
        *,
        model: Optional[str] = None,
        base_url: Optional[str] = None,
        timeout: TimeoutSpec = None,
        max_retries: Optional[int] = None,
        max_tokens: Optional[int] = None,
        temperature: Optional[float] = None,
        headers: Optional[Mapping[str, str]] = None,
        extra_body: Optional[Mapping[str, Any]] = None,
    ) -> None:
        if (
            base_url is None
            and isinstance(api_key, str)
            and api_key.startswith(("http://", "https://"))
        ):
            # OpenAiCompatibleProvider("http://localhost:8000/v1"): an address is never a key.
            base_url, api_key = api_key, None
        if not self.default_base_url:
            from .._keys import setting

            found = setting(base_url, self.base_url_variable) if self.base_url_variable else base_url
            if not found:
                raise ValueError(
                    f"{self.label} needs the server address: pass "
                    "base_url='http://host:port/v1' (the prefix before /chat/completions)"
                    + (f" or set {self.base_url_variable}" if self.base_url_variable else "")
                )
        super().__init__(api_key, model=model, base_url=base_url, timeout=timeout, max_retries=max_retries)
        self._max_tokens = _check_max_tokens(max_tokens)
        self._temperature = _check_temperature(temperature)
        self._headers: Dict[str, str] = dict(headers or {})
        self._extra_body: Dict[str, Any] = dict(extra_body or {})

    # -- configuration ---------------------------------------------------------

    @property
    def max_tokens(self) -> Optional[int]:
        return self._max_tokens

    @property
    def temperature(self) -> Optional[float]:
        return self._temperature

    def with_max_tokens(self: C, max_tokens: Optional[int]) -> C:
        return self._replace(_max_tokens=_check_max_tokens(max_tokens))

    def with_temperature(self: C, temperature: Optional[float]) -> C:
        return self._replace(_temperature=_check_temperature(temperature))

    def with_headers(self: C, headers: Mapping[str, str]) -> C:
        """A copy that also sends ``headers`` (added to those already set)."""
        merged = dict(self._headers)
        merged.update(headers)
        return self._replace(_headers=merged)

    def model(self) -> Optional[LlmModel]:
        """The catalog entry for ``provider_id:model``; None for models the catalog lacks."""
        from .._catalog import lookup

        return lookup(self.provider_id, self._model)

    def context_window(self) -> Optional[int]:
        found = self.model()
        return found.context_window if found is not None else None

    # -- the request ---------------------------------------------------------

    def request_body(self, context: Context) -> Dict[str, Any]:
        """The JSON body for ``context``; override to add provider fields."""
        return build_request(
            context,
            self._model,
            include_usage=self.include_usage,
            reasoning_effort=self.send_reasoning_effort,
            prompt_cache_key=self.send_prompt_cache_key,
            reasoning_field=self.reasoning_field,
            reasoning_placeholder=self.reasoning_placeholder,
            audio=self.accepts_audio,
            schema_transform=type(self).schema_transform,
            replay_for=f"{self.provider_id}:{self._model}" if self.keeps_reasoning_details else None,
            max_tokens=self._max_tokens,
            temperature=self._temperature,
            extra=self._extra_body,
        )

    def request_headers(self) -> Dict[str, str]:
        headers = {"content-type": "application/json", "accept": "text/event-stream"}
        if self._api_key:
            headers["authorization"] = f"Bearer {self._api_key}"
        headers.update(self._headers)
        return headers

    def build_call(self, context: Context) -> Tuple[HttpCall, Parser]:
        from .._transport._request import HttpCall

        body = json.dumps(self.request_body(context), ensure_ascii=False, separators=(",", ":"))
        provider, model, label, key_var = self.provider_id, self._model, self.label, self.key_variable
        keep = self.keeps_reasoning_details

        def classify(status: int, headers: Mapping[str, str], text_: str) -> LlmError:
            return classify_error(
                status, headers, text_, provider=provider, model=model, label=label, key_variable=key_var
            )

        def parse(frames: Iterator[Frame]) -> Iterator[LlmResponse]:
            return parse_events(frames, provider=provider, model=model, keep_reasoning_details=keep)

        call = HttpCall(
            self._base_url + self.chat_path,
            self.request_headers(),
            body.encode("utf-8"),
            framing="sse",
            classify=classify,
        )
        return call, parse


def _check_max_tokens(v: Optional[int]) -> Optional[int]:
    if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v <= 0):
        raise ValueError(f"max_tokens must be a positive int or None, got {v!r}")
    return v


def _check_temperature(v: Optional[float]) -> Optional[float]:
    if v is not None:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 2.0:
            raise ValueError(f"temperature must be a number from 0 to 2 or None, got {v!r}")
        return float(v)
    return None
