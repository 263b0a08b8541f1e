"""Anthropic's Messages API (``POST /v1/messages``, streamed as server-sent events)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Mapping, Optional, Tuple

from .._call import Parser
from .._content import Document, Image
from .._content import Text as TextBlock
from .._errors import (
    ApiError,
    ApiRequestError,
    InvalidApiKeyError,
    JsonParsingError,
    LlmError,
    RateLimitedError,
    ServerError,
    error_for_status,
    overflow_error,
    stamp,
)
from .._inputs import unsupported
from .._messages import Assistant, Error, Summary, System, ToolCallResultMessage, User
from .._response import EncryptedReasoning, LlmResponse, StopReason, Usage, reasoning, text
from .._retry import parse_retry_after
from .._structured import StructuredSupport
from .._tokens import read_count
from .._tools import ToolCallError
from .._transport._http import error_summary
from .._transport._request import HttpCall
from ._base import Fetch, HttpProvider, count_call, json_body, request_json
from ._turn import (
    ANSWER_ROOM,
    CLAUDE_STRUCTURED,
    HANDOFF_PREFIX,
    OVERFLOW_HINT,
    THINKING_BUDGETS,
    Turn,
    claude_version,
    count,
    decode_event,
    stop_reason,
)

if TYPE_CHECKING:
    from .._context import Context
    from .._reasoning import ReasoningEffort
    from .._transport._frame import Frame

__all__ = [
    "API_VERSION",
    "SUPPORT",
    "THINKING_BUDGETS",
    "AnthropicProvider",
    "build_request",
    "classify_error",
    "error_from_event",
    "parse_events",
    "replay_blocks",
    "support_for",
    "usage_from",
]

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 16384

STOP_REASONS: Dict[str, StopReason] = {
    "end_turn": StopReason.END_TURN,
    "stop_sequence": StopReason.END_TURN,
    "tool_use": StopReason.TOOL_CALLS,
    "max_tokens": StopReason.LENGTH,
    "model_context_window_exceeded": StopReason.LENGTH,
    "refusal": StopReason.CONTENT_FILTER,
}


# ---------------------------------------------------------------------------
# Request


def build_request(
    context: Context,
    *,
    model: str,
    max_tokens: Optional[int] = None,
    temperature: Optional[float] = None,
    replay_for: Optional[str] = None,
) -> Dict[str, Any]:
    """The JSON body of a streamed Messages request for ``context``.

    Thinking is replayed from turns written by ``replay_for`` (``"provider:model"``,
    default ``"anthropic:<model>"``; Vertex passes its own). Raises
    ``UnsupportedContentError`` for audio, which the API does not take.
    A document goes out as a ``document`` block: a PDF as base64, plain text as text.
    The output schema goes in ``output_config.format`` (``json_schema``), the tool
    choice in ``tool_choice`` (``auto``, ``none``, ``any``, ``tool``), a strict tool's
    ``strict`` in its definition; a forced tool choice while thinking raises
    ``ApiRequestError`` (the API refuses that pairing).
    """
    system, messages = map_messages(context, model, replay_for)
    if max_tokens is None:
        max_tokens = DEFAULT_MAX_TOKENS  # the API requires one
    body: Dict[str, Any] = {"model": model, "messages": messages, "max_tokens": max_tokens}
    effort = context.reasoning_effort
    if effort is not None:
        budget = thinking_budget(effort)
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
        # The API refuses a temperature with thinking on, and max_tokens must
        # exceed the budget (it counts the thinking too).
        if max_tokens <= budget:
            body["max_tokens"] = budget + ANSWER_ROOM
    elif temperature is not None:
        body["temperature"] = temperature
    if system:
        body["system"] = [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}]
    if context.tools:
        tools = []
        for t in context.tools:
            spec: Dict[str, Any] = {"name": t.name, "description": t.description, "input_schema": t.schema}
            if t.strict:
                spec["strict"] = True
            tools.append(spec)
        body["tools"] = tools
        choice = context.tool_choice
        if choice is not None:
            body["tool_choice"] = _tool_choice(choice, thinking=effort is not None)
    schema = context.output_schema
    if schema is not None:
        body["output_config"] = {"format": {"type": "json_schema", "schema": schema.schema}}
    body["stream"] = True
    # Automatic prompt caching of the whole prefix; the system block is marked too.
    body["cache_control"] = {"type": "ephemeral"}
    return body


#: What Claude 4.5 and later take: output_config.format, every tool choice, strict tools.
SUPPORT = StructuredSupport("native", frozenset({"auto", "none", "required", "tool"}), strict=True)


def support_for(model: str) -> StructuredSupport:
    """Claude 4.5 and later: ``output_config.format`` and strict tools; older models: a forced tool.

    Model names that are not Claude version numbers (an alias behind a proxy) are
    taken as current models.
    """
    version = claude_version(model)
    if version is not None and version < CLAUDE_STRUCTURED:
        return StructuredSupport("tool", SUPPORT.choices, strict=False)
    return SUPPORT


def _tool_choice(choice: str, *, thinking: bool) -> Dict[str, Any]:
    if choice in ("auto", "none"):
        return {"type": choice}
    if thinking:
        raise ApiRequestError(
            f"Anthropic does not allow forcing a tool call (tool_choice {choice!r}) while thinking "
            "is on; drop the reasoning effort or choose 'auto' (an output schema on a model before "
            "Claude 4.5 travels as a forced tool, so it cannot be combined with thinking there)"
        )
    if choice == "required":
        return {"type": "any"}
    return {"type": "tool", "name": choice}


def thinking_budget(effort: ReasoningEffort) -> int:
    return THINKING_BUDGETS[effort.value]


def map_messages(
    context: Context, model: str, replay_for: Optional[str] = None
) -> Tuple[Optional[str], List[Dict[str, Any]]]:
    """``(system, messages)``: the last System message, and the rest in the API's shape."""
    replay_for = replay_for or f"anthropic:{model}"
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
                elif isinstance(b, Document):
                    blocks.append(document_block(b))
                else:
                    raise unsupported("Anthropic", b)
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
            out.append({"role": "user", "content": HANDOFF_PREFIX + m.content})
    return system, out


def document_block(doc: Document) -> Dict[str, Any]:
    """A ``document`` content block: base64 for a PDF, a text source for plain text."""
    if doc.mime_type.lower().split(";")[0].strip() == "text/plain":
        source: Dict[str, Any] = {"type": "text", "media_type": "text/plain", "data": doc.to_bytes().decode("utf-8", "replace")}
    else:
        source = {"type": "base64", "media_type": doc.mime_type, "data": doc.data}
    block: Dict[str, Any] = {"type": "document", "source": source}
    if doc.name:
        block["title"] = doc.name
    return block


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


def parse_events(frames: Iterator[Frame]) -> Iterator[LlmResponse]:
    """Map the Messages API's server-sent events to ``LlmResponse`` chunks.

    The turn ends at ``message_stop`` (or at the end of the body once
    ``message_delta`` gave the stop reason); a body that ends before that yields no
    ``Done``, which the engine reports as ``StreamInterruptedError``. An ``error``
    event is raised as its typed error. A ``tool_use`` block whose input arrives
    whole in ``content_block_start`` (programmatic tool calling) streams it as one
    ``ToolRequestArg``.
    """
    turn = Turn()
    calls = turn.calls
    whole: Dict[int, str] = {}  # tool_use blocks whose input came whole, by block index
    thinking: Dict[int, Dict[str, Any]] = {}  # open thinking blocks by index
    thinking_parts: Dict[int, List[str]] = {}
    kept: List[Dict[str, Any]] = []  # finished thinking / redacted_thinking blocks, to replay
    usage: Dict[str, Any] = {}
    # message_start reports the prompt's tokens: a cancelled turn keeps them (partial()).
    turn.so_far = lambda: usage_from(usage) if usage else None
    stop_word: Optional[str] = None
    stopped = False  # message_delta said why the turn ended
    for frame in frames:
        event = decode_event(frame)
        kind = event.get("type")
        try:
            if not turn.started:
                if kind == "ping":
                    continue
                if kind == "error":
                    raise error_from_event(event)
                message = event["message"] if kind == "message_start" else {}
                yield turn.start(message.get("id"), "msg_llm_sync_", message.get("model"))
            if kind == "content_block_delta":
                delta = event["delta"]
                dtype = delta["type"]
                if dtype == "text_delta":
                    t = delta["text"]
                    if t:
                        yield text(t)
                elif dtype == "input_json_delta":
                    # A server tool's input (server_tool_use) has no open call: not ours to run.
                    piece = calls.add(event["index"], delta["partial_json"])
                    if piece is not None:
                        yield piece
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
                    raw_input = block.get("input")
                    if raw_input:
                        whole[index] = json.dumps(raw_input, ensure_ascii=False)
                    yield from calls.open(index, block["id"], block["name"])
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
                if index in calls:
                    yield from calls.close(index, whole.pop(index, None))
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
                    stop_word = reason
                    stopped = True
                u = event.get("usage")
                if u:
                    usage.update((k, v) for k, v in u.items() if v is not None)
            elif kind == "message_stop":
                yield from _end(turn, whole, kept, usage, stop_word)
                return
            elif kind == "error":
                raise error_from_event(event)
            # Unknown event types are ignored: the API adds new ones over time.
        except (KeyError, TypeError, AttributeError, IndexError) as exc:
            raise JsonParsingError(
                f"the {kind!r} event lacks the fields it should have "
                f"({type(exc).__name__}: {exc}): {frame.data[:200]!r}"
            ) from None
    if stopped:
        # The body ended without message_stop, but the turn said how it ended.
        yield from _end(turn, whole, kept, usage, stop_word)


def _end(
    turn: Turn, whole: Dict[int, str], kept: List[Dict[str, Any]], usage: Dict[str, Any], stop_word: Optional[str]
) -> List[LlmResponse]:
    out: List[LlmResponse] = []
    for index in sorted(whole):
        out.extend(turn.calls.close(index, whole[index]))  # blocks the stream never stopped
    if kept:
        turn.encrypted = EncryptedReasoning(turn.message_id, json.dumps(kept, ensure_ascii=False))
    if usage:
        turn.usage = usage_from(usage)
    out.extend(turn.end(stop_reason(stop_word, STOP_REASONS), stop_word))
    return out


def usage_from(u: Mapping[str, Any]) -> Usage:
    """The ``Usage`` for Anthropic's usage object, with cached tokens counted as input.

    Anthropic's ``input_tokens`` leaves out cache reads and writes; here
    ``input_tokens`` counts them, and they are reported as its parts.
    """
    cache_read = count(u.get("cache_read_input_tokens"))
    cache_write = count(u.get("cache_creation_input_tokens"))
    details = u.get("output_tokens_details")
    thinking_tokens = count(details.get("thinking_tokens")) if isinstance(details, dict) else None
    return Usage(
        (count(u.get("input_tokens")) or 0) + (cache_read or 0) + (cache_write or 0),
        count(u.get("output_tokens")) or 0,
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


def classify_error(status: int, headers: Mapping[str, str], body: str, model: Optional[str] = None) -> LlmError:
    """The typed error for a non-2xx answer from the Messages API, naming the provider and ``model``."""
    return stamp(_read_error(status, headers, body, model), "anthropic", model or None)


def _read_error(
    status: int, headers: Mapping[str, str], body: str, model: Optional[str] = None, label: str = "Anthropic"
) -> LlmError:
    """The typed error for a non-2xx answer from the Messages API (``label`` names who answered)."""
    try:
        parsed = json.loads(body) if body.strip() else None
    except ValueError:
        parsed = None
    etype, text_, request_id = _error_fields(parsed)
    if not text_:
        text_ = error_summary(headers, body)
    kind = f"{status} {etype}" if etype else str(status)
    where = f" (request {request_id})" if request_id else ""
    message = f"{label} answered HTTP {kind}: {text_}{where}"
    if status in (400, 413):
        over = overflow_error(text_, f"{message}; {OVERFLOW_HINT}", status=status, body=body)
        if over is not None:
            return over
    hint = _HINTS.get(etype, "")
    if not hint and status in (401, 403):
        hint = _HINTS["authentication_error"]
    return error_for_status(status, message + hint, body=body, retry_after=parse_retry_after(headers))


def error_from_event(event: Mapping[str, Any]) -> LlmError:
    """The typed error for an in-stream ``error`` event."""
    etype, text_, request_id = _error_fields(event)
    where = f" (request {request_id})" if request_id else ""
    message = f"Anthropic stream error {etype or '(no type)'}: {text_ or '(no message)'}{where}"
    body = json.dumps(event, ensure_ascii=False)
    over = overflow_error(text_, f"{message}; {OVERFLOW_HINT}", body=body)
    if over is not None:
        return over
    message += _HINTS.get(etype, "")
    if etype in ("overloaded_error", "api_error", "internal_server_error", "timeout_error"):
        return ServerError(message, body=body)
    if etype == "rate_limit_error":
        return RateLimitedError(message, body=body)
    if etype in ("authentication_error", "permission_error"):
        return InvalidApiKeyError(message, body=body)
    return ApiError(message, body=body)


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
    genai_provider_name = "anthropic"
    label = "Anthropic"
    default_model = "claude-sonnet-4-5"
    default_base_url = "https://api.anthropic.com"
    key_variable = "ANTHROPIC_API_KEY"
    base_url_variable = "ANTHROPIC_BASE_URL"

    max_temperature = 1.0
    default_max_tokens = DEFAULT_MAX_TOKENS
    # PDF support: https://platform.claude.com/docs/en/build-with-claude/pdf-support
    inputs = {"image": None, "document": frozenset({"application/pdf", "text/plain"})}
    output_schema_route = "native"
    tool_choices = frozenset({"auto", "none", "required", "tool"})
    strict_tools = True

    def structured_support(self, context: Context) -> StructuredSupport:
        """See :func:`support_for`."""
        return support_for(self._model)

    def classify_error(self, status: int, headers: Mapping[str, str], body: str) -> LlmError:
        return classify_error(status, headers, body, self._model)

    def build_call(self, context: Context) -> Tuple[HttpCall, Parser]:
        body = build_request(
            context, model=self._model, max_tokens=self._max_tokens, temperature=self._temperature
        )
        headers = {
            "x-api-key": self._api_key or "",
            "anthropic-version": API_VERSION,
            "content-type": "application/json",
            "accept": "text/event-stream",
        }
        call = HttpCall(
            f"{self._base_url}/v1/messages", headers, json_body(body), framing="sse"
        )
        return call, parse_events

    def exact_token_count(self, context: Context, fetch: Fetch) -> Optional[int]:
        """``POST /v1/messages/count_tokens`` with the request's model, system, messages, tools and thinking."""
        call, _ = self.build_call(context)
        request = count_call(
            call, f"{self._base_url}/v1/messages/count_tokens", request_json(call), keep=COUNT_FIELDS
        )
        return read_count(fetch(request), "input_tokens", where="Anthropic's count_tokens")


#: The Messages request fields that ``messages/count_tokens`` takes; the others
#: (``max_tokens``, ``stream``, ``temperature``, top-level ``cache_control``) only
#: steer generation.
COUNT_FIELDS = frozenset({"model", "system", "messages", "tools", "tool_choice", "thinking", "output_config"})
