"""Anthropic's Messages API (``POST /v1/messages``, streamed as server-sent events)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Mapping, Optional, Tuple

from .._call import Parser
from .._errors import (
    ApiError,
    ApiRequestError,
    InvalidApiKeyError,
    JsonParsingError,
    LlmError,
    RateLimitedError,
    ServerError,
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
from ._base import HttpProvider

if TYPE_CHECKING:
    from .._context import Context
    from .._messages import Assistant
    from .._reasoning import ReasoningEffort
    from .._timeouts import TimeoutSpec
    from .._transport._frame import Frame
    from .._transport._request import HttpCall

__all__ = [
    "API_VERSION",
    "THINKING_BUDGETS",
    "AnthropicProvider",
    "build_request",
    "classify_error",
    "parse_events",
    "replay_blocks",
]

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 16384

#: ``thinking.budget_tokens`` per reasoning effort (the reference crate's numbers).
THINKING_BUDGETS: Dict[str, int] = {"low": 1024, "medium": 4096, "high": 10240, "xhigh": 10240}
# Room for the answer itself when max_tokens would not exceed the thinking budget.
_ANSWER_ROOM = 1024

STOP_REASONS: Dict[str, StopReason] = {
    "end_turn": StopReason.END_TURN,
    "stop_sequence": StopReason.END_TURN,
    "tool_use": StopReason.TOOL_CALLS,
    "max_tokens": StopReason.LENGTH,
    "model_context_window_exceeded": StopReason.LENGTH,
    "refusal": StopReason.CONTENT_FILTER,
}

_HANDOFF = "[Previous conversation handoff]\n\n"


# ---------------------------------------------------------------------------
# Request


def build_request(
    context: Context,
    *,
    model: str,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    temperature: Optional[float] = None,
) -> Dict[str, Any]:
    """The JSON body of a streamed Messages request for ``context``.

    Raises ``UnsupportedContentError`` for audio, which the API does not take.
    """
    system, messages = map_messages(context, model)
    body: Dict[str, Any] = {"model": model, "messages": messages, "max_tokens": max_tokens}
    effort = context.reasoning_effort
    if effort is not None:
        budget = thinking_budget(effort)
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
        # The API refuses a temperature with thinking on, and max_tokens must
        # exceed the budget (it counts the thinking too).
        if max_tokens <= budget:
            body["max_tokens"] = budget + _ANSWER_ROOM
    elif temperature is not None:
        body["temperature"] = temperature
    if system:
        body["system"] = [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}]
    if context.tools:
        body["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.schema}
            for t in context.tools
        ]
    body["stream"] = True
    # Automatic prompt caching of the whole prefix; the system block is marked too.
    body["cache_control"] = {"type": "ephemeral"}
    return body


def thinking_budget(effort: ReasoningEffort) -> int:
    return THINKING_BUDGETS[effort.value]


def map_messages(context: Context, model: str) -> Tuple[Optional[str], List[Dict[str, Any]]]:
    """``(system, messages)``: the last System message, and the rest in the API's shape."""
    from .._content import Audio, Image
    from .._content import Text as TextBlock
    from .._messages import Assistant, Error, Summary, System, ToolCallResultMessage, User
    from .._tools import ToolCallError

    replay_for = f"anthropic:{model}"
    system: Optional[str] = None
    out: List[Dict[str, Any]] = []
    for m in context.messages:
        if isinstance(m, System):
            # Several system messages: the last wins, as in the reference crate.
            system = m.content
        elif isinstance(m, User):
            blocks: List[Dict[str, Any]] = []
            for b in m.content:
                if isinstance(b, TextBlock):
                    blocks.append({"type": "text", "text": b.text})
                elif isinstance(b, Image):
                    blocks.append(
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": b.mime_type, "data": b.data},
                        }
                    )
                elif isinstance(b, Audio):
                    raise UnsupportedContentError(
                        "Anthropic does not support audio input; transcribe the audio to text "
                        "first, or use a provider that takes audio (Ollama, llama.cpp)"
                    )
            out.append({"role": "user", "content": blocks})
        elif isinstance(m, Assistant):
            msg = _assistant(m, replay_for)
            if msg is not None:
                out.append(msg)
        elif isinstance(m, ToolCallResultMessage):
            r = m.result
            is_error = isinstance(r, ToolCallError)
            block = {
                "type": "tool_result",
                "tool_use_id": r.id,
                "content": r.error if isinstance(r, ToolCallError) else r.result,
                "is_error": is_error,
            }
            last = out[-1] if out else None
            if last is not None and last["role"] == "user" and _all_tool_results(last["content"]):
                # Results of parallel calls go back in one user message, as the API
                # expects them right after the assistant turn that made the calls.
                last["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
        elif isinstance(m, Error):
            out.append({"role": "user", "content": f"Error: {m.message}"})
        elif isinstance(m, Summary):
            out.append({"role": "user", "content": _HANDOFF + m.content})
    return system, out


def _all_tool_results(content: Any) -> bool:
    return isinstance(content, list) and all(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content
    )


def _assistant(m: Assistant, replay_for: str) -> Optional[Dict[str, Any]]:
    thinking: List[Dict[str, Any]] = []
    enc = m.reasoning.encrypted_content
    if enc is not None and enc.model == replay_for:
        thinking = replay_blocks(enc.content)
    if not m.tool_calls and not m.content:
        # Nothing to say (a turn of thinking only, or an empty one): the API refuses
        # empty assistant content, and thinking alone cannot be replayed.
        return None
    if not m.tool_calls and not thinking:
        return {"role": "assistant", "content": m.content}
    blocks: List[Dict[str, Any]] = list(thinking)
    if m.content:
        blocks.append({"type": "text", "text": m.content})
    for call in m.tool_calls:
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": _input(call.arguments)})
    return {"role": "assistant", "content": blocks}


def _input(arguments: str) -> Dict[str, Any]:
    # The API wants an object; "" (a call without arguments) and anything that is
    # not a JSON object become {} as in the reference crate.
    try:
        parsed = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def replay_blocks(content: str) -> List[Dict[str, Any]]:
    """The thinking blocks stored in an ``EncryptedReasoning`` content, ready to send back.

    Content this module did not write (not a JSON list of thinking blocks) gives
    ``[]``: the turn is then sent without its thinking rather than not at all.
    """
    try:
        blocks = json.loads(content)
    except ValueError:
        return []
    if not isinstance(blocks, list):
        return []
    return [
        b
        for b in blocks
        if isinstance(b, dict) and b.get("type") in ("thinking", "redacted_thinking")
    ]


# ---------------------------------------------------------------------------
# Stream


class _Call:
    __slots__ = ("id", "name", "parts", "prefilled")

    def __init__(self, id: str, name: str, prefilled: str) -> None:
        self.id = id
        self.name = name
        self.parts: List[str] = []
        # Programmatic tool calling sends the whole input in content_block_start
        # and no input_json_delta at all.
        self.prefilled = prefilled

    def arguments(self) -> str:
        return "".join(self.parts) if self.parts else self.prefilled


def _parses(arguments: str) -> bool:
    if not arguments.strip():
        return True  # a call without arguments
    try:
        json.loads(arguments)
    except ValueError:
        return False
    return True


def parse_events(frames: Iterator[Frame]) -> Iterator[LlmResponse]:
    """Map the Messages API's server-sent events to ``LlmResponse`` chunks.

    The turn ends at ``message_stop`` (or at the end of the body once
    ``message_delta`` gave the stop reason); a body that ends before that yields no
    ``Done``, which the engine reports as ``StreamInterruptedError``. An ``error``
    event is raised as its typed error.
    """
    loads = loads_event
    started = False
    message_id = ""
    calls: Dict[int, _Call] = {}  # open tool_use blocks by block index
    held: List[_Call] = []  # closed calls whose arguments do not parse
    thinking: Dict[int, Dict[str, Any]] = {}  # open thinking blocks by index
    thinking_parts: Dict[int, List[str]] = {}
    kept: List[Dict[str, Any]] = []  # finished thinking / redacted_thinking blocks
    usage: Dict[str, Any] = {}
    stop_reason: Optional[str] = None
    stopped = False  # message_delta said why the turn ended
    for frame in frames:
        data = frame.data
        try:
            event = loads(data)
            kind = event["type"]
        except (ValueError, TypeError, KeyError) as exc:
            raise JsonParsingError(
                f"Anthropic sent a {frame.event!r} event that is not a JSON object with a "
                f"'type' ({type(exc).__name__}: {exc}): {data[:200]!r}"
            ) from None
        try:
            if not started:
                if kind == "ping":
                    continue
                if kind == "error":
                    raise stream_error(event)
                started = True
                if kind == "message_start":
                    message_id = event["message"].get("id") or ""
                if not message_id:
                    import uuid

                    message_id = f"msg_llm_sync_{uuid.uuid4().hex}"
                yield Start(message_id)
            if kind == "content_block_delta":
                delta = event["delta"]
                dtype = delta["type"]
                if dtype == "text_delta":
                    t = delta["text"]
                    if t:
                        yield text(t)
                elif dtype == "input_json_delta":
                    call = calls.get(event["index"])
                    chunk = delta["partial_json"]
                    if call is not None and chunk:
                        call.parts.append(chunk)
                        yield tool_arg(call.id, chunk)
                    # else: a server tool's input (server_tool_use) is not ours to run.
                elif dtype == "thinking_delta":
                    t = delta["thinking"]
                    if t:
                        parts = thinking_parts.get(event["index"])
                        if parts is not None:
                            parts.append(t)
                        yield reasoning(t)
                elif dtype == "signature_delta":
                    block = thinking.get(event["index"])
                    if block is not None:
                        block["signature"] += delta["signature"]
                # citations_delta and delta types yet to come carry nothing we map.
                continue
            if kind == "message_start":
                u = event["message"].get("usage")
                if u:
                    usage.update(u)
            elif kind == "content_block_start":
                index = event["index"]
                block = event["content_block"]
                btype = block.get("type")
                if btype == "tool_use":
                    if index in calls:
                        yield from _close(calls.pop(index), held)
                    raw_input = block.get("input")
                    prefilled = json.dumps(raw_input, ensure_ascii=False) if raw_input else ""
                    call = calls[index] = _Call(block["id"], block["name"], prefilled)
                    yield ToolRequestStart(call.id, call.name)
                elif btype == "thinking":
                    thinking[index] = {"type": "thinking", "thinking": "", "signature": block.get("signature") or ""}
                    thinking_parts[index] = [block["thinking"]] if block.get("thinking") else []
                    if block.get("thinking"):
                        yield reasoning(block["thinking"])
                elif btype == "redacted_thinking":
                    kept.append({"type": "redacted_thinking", "data": block.get("data", "")})
                elif btype == "text" and block.get("text"):
                    yield text(block["text"])
                # server_tool_use, *_tool_result and unknown block types: nothing to map.
            elif kind == "content_block_stop":
                index = event["index"]
                call = calls.pop(index, None)
                if call is not None:
                    yield from _close(call, held)
                else:
                    tblock = thinking.pop(index, None)
                    if tblock is not None:
                        tblock["thinking"] = "".join(thinking_parts.pop(index, ()))
                        # Without its signature a thinking block cannot be sent back.
                        if tblock["signature"]:
                            kept.append(tblock)
            elif kind == "message_delta":
                reason = event.get("delta", {}).get("stop_reason")
                if reason is not None:
                    stop_reason = reason
                    stopped = True
                u = event.get("usage")
                if u:
                    usage.update((k, v) for k, v in u.items() if v is not None)
            elif kind == "message_stop":
                yield from _finish(message_id, calls, held, kept, usage, stop_reason)
                # Drain anything after the end so the connection can be reused; nothing
                # after message_stop belongs to this turn.
                for _ in frames:
                    pass
                return
            elif kind == "error":
                raise stream_error(event)
            # Unknown event types are ignored: the API adds new ones over time.
        except (KeyError, TypeError, AttributeError, IndexError) as exc:
            raise JsonParsingError(
                f"Anthropic sent a {kind!r} event without the fields it should have "
                f"({type(exc).__name__}: {exc}): {data[:200]!r}"
            ) from None
    if stopped:
        # The body ended without message_stop, but the turn said how it ended.
        yield from _finish(message_id, calls, held, kept, usage, stop_reason)


def _close(call: _Call, held: List[_Call]) -> Iterator[LlmResponse]:
    from .._tools import ToolCallRequest

    args = call.arguments()
    if _parses(args):
        yield ToolRequestComplete(ToolCallRequest(call.id, call.name, args))
    else:
        # Cut off (max_tokens) or malformed: decided once the stop reason is known.
        held.append(call)


def _finish(
    message_id: str,
    calls: Dict[int, _Call],
    held: List[_Call],
    kept: List[Dict[str, Any]],
    usage: Dict[str, Any],
    stop_reason: Optional[str],
) -> Iterator[LlmResponse]:
    from .._tools import ToolCallRequest

    for index in sorted(calls):
        yield from _close(calls[index], held)
    calls.clear()
    if stop_reason != "max_tokens":
        # Not cut off: the model's own (unparseable) text, passed on as it came.
        for call in held:
            yield ToolRequestComplete(ToolCallRequest(call.id, call.name, call.arguments()))
    if kept:
        yield EncryptedReasoning(message_id, json.dumps(kept, ensure_ascii=False))
    if usage:
        yield usage_chunk(usage)
    mapped = STOP_REASONS.get(stop_reason, StopReason.UNKNOWN) if stop_reason else StopReason.UNKNOWN
    yield Done(mapped, stop_reason)


def usage_chunk(u: Mapping[str, Any]) -> Usage:
    """The ``Usage`` for Anthropic's usage object, with cached tokens counted as input.

    Anthropic's ``input_tokens`` leaves out cache reads and writes; here
    ``input_tokens`` counts them, and they are reported as its parts.
    """
    cache_read = u.get("cache_read_input_tokens")
    cache_write = u.get("cache_creation_input_tokens")
    details = u.get("output_tokens_details")
    thinking_tokens = details.get("thinking_tokens") if isinstance(details, dict) else None
    return Usage(
        int(u.get("input_tokens") or 0) + int(cache_read or 0) + int(cache_write or 0),
        int(u.get("output_tokens") or 0),
        cached_input_tokens=cache_read,
        cache_creation_tokens=cache_write,
        reasoning_tokens=thinking_tokens,
    )


# ---------------------------------------------------------------------------
# Errors

_HINTS: Dict[str, str] = {
    "authentication_error": "; check ANTHROPIC_API_KEY or the api_key argument",
    "permission_error": "; the key is not allowed to use this model or feature",
    "not_found_error": "; check the model name and base_url",
    "rate_limit_error": "; slow down or wait for the limit to reset",
    "overloaded_error": "; Anthropic is overloaded, try again shortly",
    "request_too_large": "; the request body is too large, send less (smaller images, fewer messages)",
    "billing_error": "; check the account's billing at console.anthropic.com",
}

_OVERFLOW_HINT = (
    "; shorten the conversation (Context.with_compacted_summary) or lower max_tokens"
)


def _error_fields(body: Any) -> Tuple[str, str, str]:
    """``(type, message, request_id)`` from an Anthropic error body or event."""
    if not isinstance(body, dict):
        return "", "", ""
    err = body.get("error")
    request_id = body.get("request_id") or ""
    if isinstance(err, dict):
        return str(err.get("type") or ""), str(err.get("message") or ""), str(request_id)
    if isinstance(err, str):
        return "", err, str(request_id)
    return "", str(body.get("message") or ""), str(request_id)


def classify_error(
    status: int, headers: Mapping[str, str], body: str, model: Optional[str] = None
) -> LlmError:
    """The typed error for a non-2xx answer from the Messages API."""
    from .._retry import parse_retry_after
    from .._transport._http import error_summary

    try:
        parsed = json.loads(body) if body.strip() else None
    except ValueError:
        parsed = None
    etype, text_, request_id = _error_fields(parsed)
    if not text_:
        text_ = error_summary(headers, body)
    label = f"{status} {etype}" if etype else str(status)
    where = f" (request {request_id})" if request_id else ""
    message = f"Anthropic answered HTTP {label}: {text_}{where}"
    kw: Dict[str, Any] = {"provider": "anthropic", "model": model, "status": status, "body": body}
    if status in (400, 413):
        over = overflow_error(text_, message + _OVERFLOW_HINT, **kw)
        if over is not None:
            return over
    hint = _HINTS.get(etype, "")
    if not hint and status in (401, 403):
        hint = _HINTS["authentication_error"]
    return error_for_status(
        status,
        message + hint,
        provider="anthropic",
        model=model,
        body=body,
        retry_after=parse_retry_after(headers),
    )


def stream_error(event: Mapping[str, Any]) -> LlmError:
    """The typed error for an in-stream ``error`` event."""
    etype, text_, request_id = _error_fields(event)
    where = f" (request {request_id})" if request_id else ""
    message = f"Anthropic stream error {etype or '(no type)'}: {text_ or '(no message)'}{where}"
    body = json.dumps(event, ensure_ascii=False)
    kw: Dict[str, Any] = {"provider": "anthropic", "body": body}
    over = overflow_error(text_, message + _OVERFLOW_HINT, **kw)
    if over is not None:
        return over
    message += _HINTS.get(etype, "")
    if etype in ("overloaded_error", "api_error", "internal_server_error", "timeout_error"):
        return ServerError(message, **kw)
    if etype == "rate_limit_error":
        return RateLimitedError(message, **kw)
    if etype in ("authentication_error", "permission_error"):
        return InvalidApiKeyError(message, **kw)
    return ApiError(message, **kw)


# ---------------------------------------------------------------------------
# Provider


class AnthropicProvider(HttpProvider):
    """Claude through Anthropic's Messages API.

    ``AnthropicProvider(api_key=None, *, model="claude-sonnet-4-5", base_url=None,
    max_tokens=16384, temperature=None, timeout=None, max_retries=None)``; the key
    falls back to ``ANTHROPIC_API_KEY`` and the base URL to ``ANTHROPIC_BASE_URL``
    (``/v1/messages`` is appended). A reasoning effort on the context turns
    thinking on (``budget_tokens`` 1024 / 4096 / 10240 / 10240, no temperature).

    Thinking is kept and replayed: each turn's ``thinking`` / ``redacted_thinking``
    blocks (with their signatures) arrive as one ``EncryptedReasoning`` chunk whose
    content is the JSON text of that list, and the next request puts them back,
    verbatim, as the first blocks of that assistant message when it goes to the
    same model. That is what lets thinking and tool use run over several turns.

    A ``tool_use`` block cut off by ``max_tokens`` never yields a
    ``ToolRequestComplete``: its ``ToolRequestStart`` and argument chunks arrive,
    then ``Done(StopReason.LENGTH, raw_stop_reason="max_tokens")`` says how the turn
    ended, and ``collect()`` lists no such call. Arguments that do not parse for any
    other stop reason are the model's own output and are passed on as streamed
    (validating them raises ``ToolArgumentsError``).
    """

    provider_id = "anthropic"
    label = "Anthropic"
    default_model = "claude-sonnet-4-5"
    default_base_url = "https://api.anthropic.com"
    key_variable = "ANTHROPIC_API_KEY"
    base_url_variable = "ANTHROPIC_BASE_URL"

    def __init__(
        self,
        api_key: Optional[str] = None,
        *,
        model: Optional[str] = None,
        base_url: Optional[str] = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: Optional[float] = None,
        timeout: TimeoutSpec = None,
        max_retries: Optional[int] = None,
    ) -> None:
        super().__init__(
            api_key, model=model, base_url=base_url, timeout=timeout, max_retries=max_retries
        )
        self._max_tokens = _check_max_tokens(max_tokens)
        self._temperature = _check_temperature(temperature)

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    @property
    def temperature(self) -> Optional[float]:
        return self._temperature

    def with_max_tokens(self, max_tokens: int) -> AnthropicProvider:
        return self._replace(_max_tokens=_check_max_tokens(max_tokens))

    def with_temperature(self, temperature: Optional[float]) -> AnthropicProvider:
        """A copy with ``temperature`` (None: the API's default); ignored while thinking."""
        return self._replace(_temperature=_check_temperature(temperature))

    def build_call(self, context: Context) -> Tuple[HttpCall, Parser]:
        from .._transport._request import HttpCall

        body = build_request(
            context, model=self._model, max_tokens=self._max_tokens, temperature=self._temperature
        )
        try:
            payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise ApiRequestError(f"the Anthropic request could not be encoded as JSON: {exc}") from exc
        headers = {
            "x-api-key": self._api_key or "",
            "anthropic-version": API_VERSION,
            "content-type": "application/json",
            "accept": "text/event-stream",
        }
        model = self._model

        def classify(status: int, hdrs: Mapping[str, str], text_: str) -> LlmError:
            return classify_error(status, hdrs, text_, model)

        call = HttpCall(
            f"{self._base_url}/v1/messages", headers, payload, framing="sse", classify=classify
        )
        return call, parse_events


def _check_max_tokens(max_tokens: int) -> int:
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValueError(f"max_tokens must be a positive int, got {max_tokens!r}")
    return max_tokens


def _check_temperature(temperature: Optional[float]) -> Optional[float]:
    if temperature is None:
        return None
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise ValueError(f"temperature must be a number between 0 and 1, got {temperature!r}")
    if not 0.0 <= temperature <= 1.0:
        raise ValueError(f"temperature for Anthropic must be between 0 and 1, got {temperature}")
    return float(temperature)
