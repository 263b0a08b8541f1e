"""The chat-completions dialect (``POST .../chat/completions``): request mapping and event dispatch.

Spoken by OpenAiCompatibleProvider and everything built on it: OpenRouter,
llama.cpp, and the DeepSeek, Moonshot and Z.ai presets.
"""

from __future__ import annotations

import json
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Hashable,
    Iterator,
    List,
    Mapping,
    Optional,
    Set,
    Tuple,
)

from .._content import Audio, Document, Image
from .._content import Text as TextBlock
from .._errors import (
    ApiError,
    ContextOverflowError,
    InvalidApiKeyError,
    LlmError,
    RateLimitedError,
    ServerError,
    StreamInterruptedError,
    UnsupportedContentError,
    error_for_status,
    overflow_error,
)
from .._inputs import unsupported
from .._messages import Assistant, Error, Summary, System, ToolCallResultMessage, User
from .._response import EncryptedReasoning, LlmResponse, StopReason, Usage, reasoning, text
from .._retry import parse_retry_after
from .._structured import CHOICE_WORDS, json_instruction
from .._transport._http import error_summary
from ._responses import file_name
from ._turn import HANDOFF_PREFIX, OVERFLOW_HINT, ToolCalls, Turn, count, decode_event, stop_reason

if TYPE_CHECKING:
    from .._context import Context
    from .._transport._frame import Frame

__all__ = [
    "AUDIO_TYPES",
    "FINISH_REASONS",
    "ToolCallCollector",
    "build_request",
    "chat_messages",
    "chat_tool_choice",
    "chat_tools",
    "classify_error",
    "error_from_event",
    "parse_events",
    "usage_from",
]

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


# ---------------------------------------------------------------------------
# Request building.


def _user_content(blocks: Any, audio: bool) -> Any:
    if all(isinstance(b, TextBlock) for b in blocks):
        # A plain string is what every server takes; some reject arrays of parts.
        return "\n".join(b.text for b in blocks)
    parts: List[Dict[str, Any]] = []
    for b in blocks:
        if isinstance(b, TextBlock):
            parts.append({"type": "text", "text": b.text})
        elif isinstance(b, Image):
            parts.append({"type": "image_url", "image_url": {"url": b.as_data_uri()}})
        elif isinstance(b, Audio) and audio:
            fmt = _AUDIO_FORMATS.get(b.mime_type.lower())
            if fmt is None:
                raise UnsupportedContentError(
                    f"chat completions take wav or mp3 audio, not {b.mime_type}; convert the "
                    "audio first"
                )
            parts.append({"type": "input_audio", "input_audio": {"data": b.data, "format": fmt}})
        elif isinstance(b, Document):
            # Chat completions take PDFs as "file" parts:
            # https://developers.openai.com/api/docs/guides/file-inputs
            parts.append({"type": "file", "file": {"filename": file_name(b), "file_data": b.as_data_uri()}})
        else:
            raise unsupported("This provider", b)
    return parts


_AUDIO_FORMATS = {"audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav", "audio/mpeg": "mp3", "audio/mp3": "mp3"}
#: The audio MIME types an ``input_audio`` part takes (wav or mp3).
AUDIO_TYPES = frozenset(_AUDIO_FORMATS)


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
            if len(msg) == 2 and not m.content:
                # Nothing said (a turn cancelled before its text): some servers refuse an
                # assistant message without content or tool calls (Mistral), none needs it.
                continue
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
                    "strict": t.strict,
                },
            }
        )
    return out


def chat_tool_choice(choice: str) -> Any:
    """``tool_choice`` for a ``Context.tool_choice``: the word, or ``{"type": "function", ...}`` for a name."""
    if choice in CHOICE_WORDS:
        return choice
    return {"type": "function", "function": {"name": choice}}


def _output_format(context: Context, body: Dict[str, Any], json_mode: bool) -> None:
    schema = context.output_schema
    if schema is None:
        return
    if not json_mode:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": schema.name, "schema": schema.schema, "strict": schema.strict},
        }
        return
    # JSON mode knows no schema: it goes to the model as an instruction, after the
    # leading system messages (some chat templates want those first).
    body["response_format"] = {"type": "json_object"}
    messages = body["messages"]
    at = 0
    while at < len(messages) and messages[at].get("role") == "system":
        at += 1
    messages.insert(at, {"role": "system", "content": json_instruction(schema)})


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
    json_mode: bool = False,
) -> Dict[str, Any]:
    """The chat-completions body for ``context`` (always streaming).

    The output schema goes in ``response_format`` (``json_schema``; with
    ``json_mode``, ``json_object`` and the schema as a system instruction), the tool
    choice in ``tool_choice``, each tool's ``strict`` in its function.
    """
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
        if context.tool_choice is not None:
            body["tool_choice"] = chat_tool_choice(context.tool_choice)
    _output_format(context, body, json_mode)
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
# Tool calls: streamed ``tool_calls`` deltas, keyed by index and id.


class ToolCallCollector:
    """Assembles streamed ``tool_calls`` deltas into calls on a turn's :class:`ToolCalls`.

    Unlike the reference crate's collector (keyed by index alone), a delta that
    reuses an index for a new call (a different id, or a new name after complete
    arguments) completes the earlier call and starts another, so providers that
    put every call at index 0, or send each call whole in one delta, still yield
    separate, correct calls. Arguments that arrive before the name are held until
    it comes. Completion order is the order the calls started.
    """

    __slots__ = ("calls", "_by_index", "_given", "_seq")

    def __init__(self, calls: Optional[ToolCalls] = None) -> None:
        self.calls = calls if calls is not None else ToolCalls()
        self._by_index: Dict[Hashable, int] = {}  # provider index (or id) -> serial of its open call
        self._given: Set[int] = set()  # serials whose id came from the provider
        self._seq = 0

    @property
    def completed(self) -> int:
        """How many calls this turn completed."""
        return self.calls.completed

    @property
    def pending(self) -> bool:
        return self.calls.pending

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
        key: Hashable = index if index is not None else ("id", id) if id else ("last",)
        calls = self.calls
        serial: Any = self._by_index.get(key)
        if serial is None and index is None and not id:
            serial = calls.last_key()  # no index, no id: continues the latest call
        call = calls.get(serial) if serial is not None else None
        if call is not None and self._is_new_call(serial, call.id, call.name, call.arguments(), id, name):
            out.extend(self._close(serial))
            call = None
        if call is None:
            self._seq += 1
            serial = self._seq
            self._by_index[key] = serial
            if id:
                self._given.add(serial)
            out.extend(calls.open(serial, id or f"tool_call_{serial}", name))
        else:
            if id and serial not in self._given and not call.started:
                calls.rename(serial, id)  # nothing went out under the made-up id
                self._given.add(serial)
            if name and call.name is None:
                out.extend(calls.name(serial, name))
        if args:
            piece = calls.add(serial, args)
            if piece is not None:
                out.append(piece)
        return out

    def _is_new_call(
        self, serial: Any, call_id: str, call_name: Optional[str], arguments: str, id: Optional[str], name: Optional[str]
    ) -> bool:
        if id and serial in self._given and id != call_id:
            return True
        if name and call_name is not None and not (id and id == call_id):
            # The same index named again: a new call unless the provider repeats the
            # name on every delta of one call, which leaves the arguments unfinished.
            if name != call_name:
                return True
            return _complete_json(arguments)
        return False

    def _close(self, serial: Any) -> List[LlmResponse]:
        for k in [k for k, s in self._by_index.items() if s == serial]:
            del self._by_index[k]
        return self.calls.close(serial)

    def close_all(self) -> List[LlmResponse]:
        """Close every open call, in the order they started (the turn decides on unparseable ones)."""
        self._by_index.clear()
        return self.calls.close_all()

    def complete_all(self) -> List[LlmResponse]:
        """End the calls of a turn that was not cut off: every call gets its Complete."""
        self._by_index.clear()
        return self.calls.end(cut=False)


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
    cached = count(ptd.get("cached_tokens"))
    if cached is None:
        cached = count(u.get("prompt_cache_hit_tokens"))
    if cached is None:
        cached = count(u.get("cached_tokens"))
    return Usage(
        input_tokens=count(u.get("prompt_tokens")) or 0,
        output_tokens=count(u.get("completion_tokens")) or 0,
        cached_input_tokens=cached,
        cache_creation_tokens=count(ptd.get("cache_write_tokens")),
        reasoning_tokens=count(ctd.get("reasoning_tokens")),
        input_audio_tokens=count(ptd.get("audio_tokens")),
        input_video_tokens=count(ptd.get("video_tokens")),
        output_audio_tokens=count(ctd.get("audio_tokens")),
        accepted_prediction_tokens=count(ctd.get("accepted_prediction_tokens")),
        rejected_prediction_tokens=count(ctd.get("rejected_prediction_tokens")),
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


def parse_events(frames: Iterator[Frame], *, keep_reasoning_details: bool = False) -> Iterator[LlmResponse]:
    """Chat-completions SSE frames to chunks: Start, deltas, tool calls, one Usage, Done.

    Lenient: unknown fields (``obfuscation``, ``provider``, llama.cpp's ``timings``,
    ``native_finish_reason``) are ignored, ``object`` is optional, usage may come on a
    chunk with or without choices (or inside the choice), and reading goes on after
    ``finish_reason`` and after an empty-choices chunk until ``[DONE]`` or the end of
    the body. An ``{"error": ...}`` chunk is raised as a typed error. Chunks with no
    id, choices or usage before the answer (Azure's prompt annotations) do not start
    the turn, so ``Start`` carries the response's own id. A structured-output refusal
    (``delta.refusal``) streams as text and ends the turn ``CONTENT_FILTER`` with
    ``raw_stop_reason`` ``"refusal"``, as the Responses dialect does.
    """
    turn = Turn()
    collector = ToolCallCollector(turn.calls)
    raw_stop: Optional[str] = None
    usage: Optional[Mapping[str, Any]] = None
    # Servers that report usage on every chunk (vLLM's continuous usage stats) give a
    # cancelled turn its counts so far.
    turn.so_far = lambda: usage_from(usage) if usage else None
    details: List[Dict[str, Any]] = []
    done = False
    refused = False
    pending = turn.calls.pending
    for frame in frames:
        if frame.data == "[DONE]":
            done = True
            break
        obj = decode_event(frame)
        err = obj.get("error")
        if err is not None or frame.event == "error":
            raise error_from_event(err if err is not None else obj)
        if not turn.started:
            if not obj.get("id") and not obj.get("choices") and not obj.get("usage"):
                # An annotation ahead of the answer (Azure's prompt_filter_results, id ""):
                # the turn starts with the first chunk that has the response id.
                continue
            yield turn.start(obj.get("id"), "chatcmpl-", obj.get("model"))
        u = obj.get("usage")
        if u:
            usage = u
        choices = obj.get("choices")
        if not choices:
            continue  # a usage-only chunk; more may follow
        choice = choices[0] if len(choices) == 1 else _first_choice(choices)
        delta = choice.get("delta")
        if delta and len(delta) == 1:
            # Nearly every chunk of an answer: {"content": "..."} and nothing else.
            content = delta.get("content")
            if content and isinstance(content, str) and not pending:
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
                if pending:
                    yield from collector.close_all()
                    pending = False
                yield text(content)
            refusal = delta.get("refusal")
            if refusal and isinstance(refusal, str):
                refused = True
                yield text(refusal)
            tool_calls = delta.get("tool_calls")
            if tool_calls:
                for tc in tool_calls:
                    if isinstance(tc, Mapping):
                        yield from collector.feed(tc)
                pending = turn.calls.pending
        cu = choice.get("usage")
        if cu:
            usage = cu  # Moonshot puts the usage inside the final choice
        fr = choice.get("finish_reason")
        if fr:
            raw_stop = fr
            if pending:
                yield from collector.close_all()
                pending = False
    if not turn.started:
        if done:
            raise StreamInterruptedError(
                "the provider returned an empty stream ([DONE] with no chunk before it)"
            )
        raise StreamInterruptedError(
            "the provider returned an empty stream: no chat-completions chunk arrived (a "
            "non-streaming reply or an error body sent with status 200 looks like this; check "
            "base_url points at a chat-completions API)"
        )
    if not done and raw_stop is None:
        return  # cut off: the engine raises StreamInterruptedError
    if details:
        first_id = next((d.get("id") for d in details if d.get("id")), None)
        turn.encrypted = EncryptedReasoning(
            str(first_id or turn.message_id),
            json.dumps({"reasoning_details": details}, ensure_ascii=False, separators=(",", ":")),
        )
    if usage is not None:
        turn.usage = usage_from(usage)
    stop = stop_reason(raw_stop, FINISH_REASONS)
    if refused and stop in (StopReason.END_TURN, StopReason.UNKNOWN):
        stop, raw_stop = StopReason.CONTENT_FILTER, "refusal"
    yield from turn.end(stop, raw_stop)


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
    requested = count(err.get("n_prompt_tokens"))
    maximum = count(err.get("n_ctx"))
    said += "; " + OVERFLOW_HINT
    found = overflow_error(
        f"{message} {words}", said, requested_tokens=requested, max_tokens=maximum, **kw
    )
    if found is None and any(w in words for w in _OVERFLOW_WORDS):
        found = ContextOverflowError(said, requested_tokens=requested, max_tokens=maximum, **kw)
    return found


def error_from_event(err: Any, *, model: Optional[str] = None) -> LlmError:
    """The typed error for an ``{"error": ...}`` object that arrived inside the stream."""
    message, words, numeric, obj = _error_parts(err)
    message = message or "the provider reported an error in the stream"
    text_ = f"the provider reported an error mid-stream: {message}"
    body = json.dumps(err, ensure_ascii=False) if not isinstance(err, str) else err
    kw: Dict[str, Any] = {"body": body}
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
    model: Optional[str] = None,
    label: str = "the server",
    key_variable: Optional[str] = None,
) -> LlmError:
    """The typed error for a non-2xx chat-completions answer."""
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
    kw: Dict[str, Any] = {"status": status, "body": body}
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
