"""The Responses dialect (``POST .../responses``): request mapping and event dispatch, for OpenAI and Codex."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Mapping, Optional, Set, Tuple

from .._content import Document, Image
from .._content import Text as TextBlock
from .._errors import (
    ApiError,
    ContextOverflowError,
    InvalidApiKeyError,
    LlmError,
    RateLimitedError,
    ServerError,
    error_for_status,
    overflow_error,
)
from .._inputs import unsupported
from .._messages import Assistant, Error, Summary, System, ToolCallResultMessage, User
from .._response import EncryptedReasoning, LlmResponse, StopReason, Usage, reasoning, text
from .._retry import parse_retry_after
from .._structured import CHOICE_WORDS
from .._tools import ToolCallError
from .._transport._http import error_summary
from ._turn import HANDOFF_PREFIX, OVERFLOW_HINT, Turn, count, decode_event

if TYPE_CHECKING:
    from .._context import Context
    from .._transport._frame import Frame

__all__ = [
    "COUNT_FIELDS",
    "build_request",
    "classify_error",
    "error_from_event",
    "file_name",
    "is_reasoning_model",
    "parse_events",
    "responses_input",
    "usage_from",
]

ENCRYPTED_INCLUDE = "reasoning.encrypted_content"


# ---------------------------------------------------------------------------
# Request building.


def is_reasoning_model(model: str) -> bool:
    """True for the model families that reason and accept ``include: reasoning.encrypted_content``.

    Non-reasoning models (gpt-4.1, gpt-4o, gpt-5-chat) answer that include with
    "Encrypted content is not supported with this model", so it is asked only of these.
    """
    name = model.lower().rsplit("/", 1)[-1]
    if name.startswith(("o1", "o3", "o4", "codex", "gpt-oss")):
        return True
    if name.startswith("gpt-5"):
        return "-chat" not in name
    return False


def _user_content(blocks: Any, label: str) -> List[Dict[str, Any]]:
    parts: List[Dict[str, Any]] = []
    for b in blocks:
        if isinstance(b, TextBlock):
            parts.append({"type": "input_text", "text": b.text})
        elif isinstance(b, Image):
            parts.append({"type": "input_image", "detail": "auto", "image_url": b.as_data_uri()})
        elif isinstance(b, Document):
            parts.append({"type": "input_file", "filename": file_name(b), "file_data": b.as_data_uri()})
        else:
            raise unsupported(label, b)
    return parts


def file_name(doc: Document) -> str:
    """The file name sent with a document: its ``name``, else ``document`` plus its type's extension."""
    if doc.name:
        return doc.name
    import mimetypes  # only for unnamed documents

    ext = mimetypes.guess_extension(doc.mime_type.split(";")[0].strip()) or ""
    return f"document{ext}"


def _replayed_reasoning(enc: Any) -> List[Dict[str, Any]]:
    """The reasoning input items stored in an ``EncryptedReasoningContent``.

    Its content is the JSON list this module writes; a bare encrypted string (as
    other clients store it) is taken as one item with ``enc.id``.
    """
    try:
        stored = json.loads(enc.content)
    except ValueError:
        stored = None
    if not isinstance(stored, list):
        return [
            {"type": "reasoning", "id": enc.id, "summary": [], "encrypted_content": enc.content}
        ]
    items: List[Dict[str, Any]] = []
    for it in stored:
        if isinstance(it, dict) and it.get("encrypted_content"):
            item: Dict[str, Any] = {"type": "reasoning"}
            if it.get("id"):
                item["id"] = it["id"]
            item["summary"] = it.get("summary") or []
            item["encrypted_content"] = it["encrypted_content"]
            items.append(item)
    return items


def responses_input(
    context: Context,
    *,
    reasoning_model: Optional[str] = None,
    label: str = "OpenAI",
) -> Tuple[Optional[str], List[Dict[str, Any]]]:
    """``(instructions, input items)`` for ``context``.

    Every System message goes into ``instructions`` (joined, in order), so none is
    lost. Encrypted reasoning is replayed only when it came from ``reasoning_model``
    (``"openai:gpt-5"``) and the turn has an item after it: the API rejects a
    reasoning item "provided without its required following item".
    """
    systems: List[str] = []
    items: List[Dict[str, Any]] = []
    for m in context.messages:
        if isinstance(m, User):
            items.append(
                {"type": "message", "role": "user", "content": _user_content(m.content, label)}
            )
        elif isinstance(m, Assistant):
            enc = m.reasoning.encrypted_content
            if (
                enc is not None
                and reasoning_model is not None
                and enc.is_for(reasoning_model)
                and (m.content or m.tool_calls)
            ):
                items.extend(_replayed_reasoning(enc))
            if m.content:
                items.append({"type": "message", "role": "assistant", "content": m.content})
            for call in m.tool_calls:
                items.append(
                    {
                        "type": "function_call",
                        "call_id": call.id,
                        "name": call.name,
                        "arguments": call.arguments,
                    }
                )
        elif isinstance(m, ToolCallResultMessage):
            r = m.result
            # The API has no error flag on a function output; the prefix tells the model.
            output = f"Error: {r.error}" if isinstance(r, ToolCallError) else r.result
            items.append({"type": "function_call_output", "call_id": r.id, "output": output})
        elif isinstance(m, System):
            systems.append(m.content)
        elif isinstance(m, Summary):
            items.append(
                {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": HANDOFF_PREFIX + m.content}],
                }
            )
        elif isinstance(m, Error):
            continue  # an error note is for the user, not the model
    return ("\n\n".join(systems) if systems else None), items


def build_request(
    context: Context,
    model: str,
    *,
    reasoning_model: Optional[str] = None,
    include_encrypted: Optional[bool] = None,
    tool_strict: Optional[bool] = False,
    default_effort: Optional[str] = None,
    max_tokens: Optional[int] = None,
    temperature: Optional[float] = None,
    label: str = "OpenAI",
) -> Dict[str, Any]:
    """The JSON body of a streaming Responses request for ``context``.

    ``reasoning_model`` (``"provider:model"``) selects which encrypted reasoning is
    replayed; ``include_encrypted`` asks for encrypted reasoning back (None: when
    the model reasons or an effort is set); ``tool_strict`` None leaves ``strict``
    out of tool definitions that are not strict; ``default_effort`` is sent when the
    context sets none; ``max_tokens`` goes out as ``max_output_tokens``. The output
    schema goes in ``text.format`` (``json_schema``), the tool choice in
    ``tool_choice``.
    Nothing is stored server-side (``store: false``): the conversation travels in
    ``input`` every turn.
    """
    instructions, items = responses_input(context, reasoning_model=reasoning_model, label=label)
    body: Dict[str, Any] = {"model": model, "input": items}
    if instructions is not None:
        body["instructions"] = instructions
    if context.tools:
        tools = []
        for t in context.tools:
            spec: Dict[str, Any] = {
                "type": "function",
                "name": t.name,
                "description": t.description,
                "parameters": t.schema,
            }
            if tool_strict is not None or t.strict:
                spec["strict"] = t.strict
            tools.append(spec)
        body["tools"] = tools
        choice = context.tool_choice
        if choice is not None:
            body["tool_choice"] = choice if choice in CHOICE_WORDS else {"type": "function", "name": choice}
    schema = context.output_schema
    if schema is not None:
        body["text"] = {
            "format": {"type": "json_schema", "name": schema.name, "schema": schema.schema, "strict": schema.strict}
        }
    effort = context.reasoning_effort
    effort_text = effort.value if effort is not None else default_effort
    if effort_text is not None:
        body["reasoning"] = {"effort": effort_text, "summary": "auto"}
    if include_encrypted is None:
        include_encrypted = effort_text is not None or is_reasoning_model(model)
    if include_encrypted:
        body["include"] = [ENCRYPTED_INCLUDE]
    if context.prompt_cache_key:
        body["prompt_cache_key"] = context.prompt_cache_key
    if max_tokens is not None:
        body["max_output_tokens"] = max_tokens
    if temperature is not None:
        body["temperature"] = temperature
    body["store"] = False
    body["stream"] = True
    return body


#: The request fields ``POST /responses/input_tokens`` takes (the others, such as
#: ``stream``, ``store``, ``include``, ``max_output_tokens``, only steer generation).
COUNT_FIELDS = frozenset(
    {
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "reasoning",
        "text",
        "truncation",
        "conversation",
        "previous_response_id",
    }
)


# ---------------------------------------------------------------------------
# Event parsing.

_INCOMPLETE_REASONS = {
    "max_output_tokens": StopReason.LENGTH,
    "content_filter": StopReason.CONTENT_FILTER,
}


def usage_from(response: Mapping[str, Any]) -> Optional[Usage]:
    """The ``Usage`` of a final ``response`` object, None when it reports none."""
    u = response.get("usage")
    if not isinstance(u, dict):
        return None
    inp = u.get("input_tokens_details")
    out = u.get("output_tokens_details")
    return Usage(
        input_tokens=count(u.get("input_tokens")) or 0,
        output_tokens=count(u.get("output_tokens")) or 0,
        cached_input_tokens=count(inp.get("cached_tokens")) if isinstance(inp, dict) else None,
        reasoning_tokens=count(out.get("reasoning_tokens")) if isinstance(out, dict) else None,
    )


def _reasoning_item(item: Mapping[str, Any]) -> Dict[str, Any]:
    # Only what an input reasoning item takes: status and the rest would be refused.
    return {
        "type": "reasoning",
        "id": item.get("id", ""),
        "summary": item.get("summary") or [],
        "encrypted_content": item["encrypted_content"],
    }


def parse_events(frames: Iterator[Frame]) -> Iterator[LlmResponse]:
    """Turn Responses API stream events into ``LlmResponse`` chunks.

    Text and reasoning-summary deltas pass through; function calls are keyed by
    item id and yield their ``call_id``; reasoning items carrying encrypted content
    become one ``EncryptedReasoning`` (a JSON list of input items) before ``Usage``
    and ``Done``. Unknown event types are ignored. ``error`` events and failed
    responses are raised as typed errors.
    """
    turn = Turn()
    calls = turn.calls
    closed: Set[str] = set()  # item ids of calls already completed
    summary_seen = False
    refused = False
    encrypted: List[Dict[str, Any]] = []
    for frame in frames:
        data = frame.data
        if not data or data == "[DONE]":
            continue
        event = decode_event(frame)
        kind = event.get("type")
        # The hot path first: deltas are nearly every event of a long answer.
        if kind == "response.output_text.delta":
            d = event.get("delta")
            if d:
                if not turn.started:
                    yield turn.start(None, "resp_")
                yield text(d)
            continue
        if kind == "response.function_call_arguments.delta":
            piece = calls.add(event.get("item_id", ""), event.get("delta") or "")
            if piece is not None:
                yield piece
            continue
        if kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            d = event.get("delta")
            if d:
                summary_seen = True
                yield reasoning(d)
            continue
        if kind == "error":
            # Two shapes exist: the fields at top level, or nested under "error".
            nested = event.get("error")
            raise error_from_event(nested if isinstance(nested, dict) else event)
        if not turn.started:
            resp = event.get("response")
            if isinstance(resp, dict):
                yield turn.start(resp.get("id"), "resp_", resp.get("model"))
            else:
                yield turn.start(None, "resp_")
        if kind == "response.output_item.added":
            item = event.get("item") or {}
            if item.get("type") == "function_call":
                call_id = item.get("call_id") or item.get("id") or f"call_{event.get('output_index', 0)}"
                yield from calls.open(item.get("id") or call_id, call_id, item.get("name"))
        elif kind == "response.function_call_arguments.done":
            key = event.get("item_id", "")
            if key in calls:
                args = event.get("arguments")
                closed.add(key)
                yield from calls.close(key, args if isinstance(args, str) else None, name=event.get("name"))
        elif kind == "response.output_item.done":
            item = event.get("item") or {}
            itype = item.get("type")
            if itype == "reasoning":
                if item.get("encrypted_content"):
                    encrypted.append(_reasoning_item(item))
            elif itype == "function_call":
                key = item.get("id") or item.get("call_id") or ""
                if key not in closed:
                    if key not in calls:
                        # A call that arrived whole, with no "added" event before it.
                        call_id = item.get("call_id") or key or f"call_{event.get('output_index', 0)}"
                        yield from calls.open(key, call_id, item.get("name"))
                    args = item.get("arguments")
                    closed.add(key)
                    yield from calls.close(key, args if isinstance(args, str) else None, name=item.get("name"))
        elif kind == "response.reasoning_summary_part.added":
            # Summary parts are separate paragraphs; keep them apart in the joined text.
            if summary_seen:
                yield reasoning("\n\n")
        elif kind == "response.refusal.delta":
            d = event.get("delta")
            if d:
                refused = True
                yield text(d)
        elif kind in ("response.completed", "response.incomplete"):
            response = event.get("response") or {}
            status = response.get("status") or kind.rpartition(".")[2]
            if encrypted:
                turn.encrypted = EncryptedReasoning(
                    encrypted[0]["id"], json.dumps(encrypted, separators=(",", ":"), ensure_ascii=False)
                )
            turn.usage = usage_from(response)
            if status == "incomplete":
                details = response.get("incomplete_details") or {}
                raw = details.get("reason") if isinstance(details, dict) else None
                yield from turn.end(_INCOMPLETE_REASONS.get(raw or "", StopReason.UNKNOWN), raw or "incomplete")
            elif status == "completed":
                if refused:
                    yield from turn.end(StopReason.CONTENT_FILTER, "refusal")
                else:
                    yield from turn.end(StopReason.END_TURN, status)
            elif status == "failed":
                raise _failed(response)
            else:
                yield from turn.end(StopReason.UNKNOWN, str(status))
            return
        elif kind == "response.failed":
            raise _failed(event.get("response") or {})
        # Everything else (in_progress, content_part.*, *.done, hosted tool progress) carries
        # nothing the chunks need.


def _failed(response: Mapping[str, Any]) -> LlmError:
    err = response.get("error")
    if not isinstance(err, dict):
        err = {"message": "the response failed without saying why"}
    return error_from_event(err, where="response.failed")


# ---------------------------------------------------------------------------
# Errors.

_SERVER_CODES = frozenset(
    {
        "server_error",
        "internal_error",
        "server_is_overloaded",
        "overloaded",
        "overloaded_error",
        "service_unavailable",
        "slow_down",
        "vector_store_timeout",
        "timeout",
    }
)
_RATE_CODES = frozenset(
    {"rate_limit_exceeded", "rate_limit_error", "rate_limited", "tokens", "requests"}
)
_KEY_CODES = frozenset({"invalid_api_key", "authentication_error", "invalid_authentication"})


def _error_fields(err: Mapping[str, Any]) -> Tuple[str, str, str]:
    code = err.get("code")
    etype = err.get("type")
    message = err.get("message")
    return (
        str(code) if code is not None else "",
        str(etype) if etype is not None else "",
        str(message) if message else "",
    )


def _overflow(
    code: str, message: str, shown: str, kw: Dict[str, Any]
) -> Optional[ContextOverflowError]:
    what = f"the prompt does not fit the model's context window: {shown}; {OVERFLOW_HINT}"
    over = overflow_error(message, what, **kw)
    if over is None and code == "context_length_exceeded":
        over = ContextOverflowError(what, **kw)
    return over


def error_from_event(err: Mapping[str, Any], *, where: str = "an error event") -> LlmError:
    """The typed error for an in-stream ``error`` event or a failed response's ``error`` object."""
    code, etype, message = _error_fields(err)
    body = json.dumps(err)
    text_ = message or f"no message (code {code or etype or 'unknown'})"
    kw: Dict[str, Any] = {"body": body}
    over = _overflow(code, message, text_, kw)
    if over is not None:
        return over
    msg = f"the provider stopped the response with {where}: {text_}"
    words = {code, etype}
    if code == "insufficient_quota" or etype == "insufficient_quota":
        return RateLimitedError(
            f"{msg}; the account is out of credit: add billing at platform.openai.com",
            retryable=False,
            **kw,
        )
    if "usage_limit_reached" in words:
        # The ChatGPT plan's usage window (Codex): it resets in hours or days, so a
        # retry now cannot help; the reset time rides along when the event gives it.
        resets = err.get("resets_in_seconds")
        return RateLimitedError(
            f"{msg}; the plan's usage limit is reached, wait for it to reset",
            retryable=False,
            resets_in_seconds=float(resets) if isinstance(resets, (int, float)) else None,
            **kw,
        )
    if words & _RATE_CODES:
        return RateLimitedError(msg, **kw)
    if words & _SERVER_CODES:
        return ServerError(msg, **kw)
    if words & _KEY_CODES:
        return InvalidApiKeyError(f"{msg}; check the API key", **kw)
    return ApiError(msg, **kw)


def classify_error(
    status: int,
    headers: Mapping[str, str],
    body: str,
    *,
    model: Optional[str] = None,
    label: str = "OpenAI",
    key_variable: str = "OPENAI_API_KEY",
) -> LlmError:
    """The typed error for a non-2xx answer from a Responses endpoint."""
    err: Mapping[str, Any] = {}
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        err = parsed["error"]
    code, etype, message = _error_fields(err)
    summary = message or error_summary(headers, body)
    kw: Dict[str, Any] = {"status": status, "body": body}
    if status < 500:
        over = _overflow(code, message, summary, kw)
        if over is not None:
            return over
    if status in (401, 403):
        return InvalidApiKeyError(
            f"{label} rejected the API key (HTTP {status}): {summary}; check {key_variable} or pass api_key=",
            **kw,
        )
    if code == "model_not_found" or (status == 404 and "model" in summary.lower()):
        return ApiError(
            f"{label} has no model {model!r} that this key can use (HTTP {status}): {summary}; "
            "pass model= with a model your account lists",
            **kw,
        )
    if status == 429 and (code == "insufficient_quota" or etype == "insufficient_quota"):
        return RateLimitedError(
            f"{label} refused the request: the account is out of credit (HTTP 429): {summary}; "
            "add billing at platform.openai.com",
            retryable=False,
            **kw,
        )
    return error_for_status(
        status,
        f"{label} answered HTTP {status}: {summary}",
        body=body,
        retry_after=parse_retry_after(headers),
    )


