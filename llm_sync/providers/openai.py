"""OpenAI's Responses API (``POST {base}/responses``): request building, event parsing and ``OpenAiProvider``."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Mapping, Optional, Tuple
from urllib.parse import urlsplit

from .._call import Parser
from .._errors import (
    ApiError,
    ContextOverflowError,
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
from .._tools import ToolCallRequest
from ._base import HttpProvider

if TYPE_CHECKING:
    from .._context import Context
    from .._timeouts import TimeoutSpec
    from .._transport._frame import Frame
    from .._transport._request import HttpCall

__all__ = [
    "OpenAiProvider",
    "build_responses_body",
    "classify_error",
    "error_from_event",
    "is_reasoning_model",
    "parse_responses_events",
    "responses_input",
]

OPENAI_HOST = "api.openai.com"
SUMMARY_PREFIX = "[Previous conversation handoff]\n\n"
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
    from .._content import Audio, Image
    from .._content import Text as TextBlock

    parts: List[Dict[str, Any]] = []
    for b in blocks:
        if isinstance(b, TextBlock):
            parts.append({"type": "input_text", "text": b.text})
        elif isinstance(b, Image):
            parts.append({"type": "input_image", "detail": "auto", "image_url": b.as_data_uri()})
        elif isinstance(b, Audio):
            raise UnsupportedContentError(
                f"{label} Responses does not support audio input ({b.mime_type}); send a "
                "transcript as text, or use a provider that takes audio"
            )
        else:
            raise UnsupportedContentError(
                f"{label} Responses cannot send a {type(b).__name__} content block"
            )
    return parts


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
    from .._messages import Assistant, Error, Summary, System, ToolCallResultMessage, User
    from .._tools import ToolCallError

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
                    "content": [{"type": "input_text", "text": SUMMARY_PREFIX + m.content}],
                }
            )
        elif isinstance(m, Error):
            continue  # an error note is for the user, not the model
    return ("\n\n".join(systems) if systems else None), items


def build_responses_body(
    context: Context,
    model: str,
    *,
    reasoning_model: Optional[str] = None,
    include_encrypted: Optional[bool] = None,
    tool_strict: Optional[bool] = False,
    default_effort: Optional[str] = None,
    label: str = "OpenAI",
) -> Dict[str, Any]:
    """The JSON body of a streaming Responses request for ``context``.

    ``reasoning_model`` (``"provider:model"``) selects which encrypted reasoning is
    replayed; ``include_encrypted`` asks for encrypted reasoning back (None: when
    the model reasons or an effort is set); ``tool_strict`` None leaves ``strict``
    out of tool definitions; ``default_effort`` is sent when the context sets none.
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
            if tool_strict is not None:
                spec["strict"] = tool_strict
            tools.append(spec)
        body["tools"] = tools
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
    body["store"] = False
    body["stream"] = True
    return body


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
    what = f"the prompt does not fit the model's context window: {shown}; shorten the conversation (Context.with_compacted_summary) or use a model with a larger window"
    over = overflow_error(message, what, **kw)
    if over is None and code == "context_length_exceeded":
        over = ContextOverflowError(what, **kw)
    return over


def error_from_event(
    err: Mapping[str, Any],
    *,
    provider: str = "openai",
    model: Optional[str] = None,
    label: str = "OpenAI",
    where: str = "an error event",
) -> LlmError:
    """The typed error for an in-stream ``error`` event or a failed response's ``error`` object."""
    code, etype, message = _error_fields(err)
    body = json.dumps(err)
    text_ = message or f"no message (code {code or etype or 'unknown'})"
    kw: Dict[str, Any] = {"provider": provider, "model": model, "body": body}
    over = _overflow(code, message, text_, kw)
    if over is not None:
        return over
    msg = f"{label} stopped the response with {where}: {text_}"
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
    model: Optional[str],
    *,
    provider: str = "openai",
    label: str = "OpenAI",
    key_variable: str = "OPENAI_API_KEY",
) -> LlmError:
    """The typed error for a non-2xx answer from a Responses endpoint."""
    from .._retry import parse_retry_after
    from .._transport._http import error_summary

    err: Mapping[str, Any] = {}
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        err = parsed["error"]
    code, etype, message = _error_fields(err)
    summary = message or error_summary(headers, body)
    kw: Dict[str, Any] = {"provider": provider, "model": model, "status": status, "body": body}
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
        provider=provider,
        model=model,
        body=body,
        retry_after=parse_retry_after(headers),
    )


# ---------------------------------------------------------------------------
# Event parsing.

_INCOMPLETE_REASONS = {
    "max_output_tokens": StopReason.LENGTH,
    "content_filter": StopReason.CONTENT_FILTER,
}


def _usage(response: Mapping[str, Any]) -> Optional[Usage]:
    u = response.get("usage")
    if not isinstance(u, dict):
        return None
    inp = u.get("input_tokens_details") or {}
    out = u.get("output_tokens_details") or {}
    return Usage(
        input_tokens=max(0, int(u.get("input_tokens") or 0)),
        output_tokens=max(0, int(u.get("output_tokens") or 0)),
        cached_input_tokens=inp.get("cached_tokens") if isinstance(inp, dict) else None,
        reasoning_tokens=out.get("reasoning_tokens") if isinstance(out, dict) else None,
    )


def _reasoning_item(item: Mapping[str, Any]) -> Dict[str, Any]:
    # Only what an input reasoning item takes: status and the rest would be refused.
    return {
        "type": "reasoning",
        "id": item.get("id", ""),
        "summary": item.get("summary") or [],
        "encrypted_content": item["encrypted_content"],
    }


def parse_responses_events(
    frames: Iterator[Frame],
    *,
    provider: str = "openai",
    model: Optional[str] = None,
    label: str = "OpenAI",
) -> Iterator[LlmResponse]:
    """Turn Responses API stream events into ``LlmResponse`` chunks.

    Text and reasoning-summary deltas pass through; function calls are keyed by
    item id and yield their ``call_id``; reasoning items carrying encrypted content
    become one ``EncryptedReasoning`` (a JSON list of input items) before ``Usage``
    and ``Done``. Unknown event types are ignored. ``error`` events and failed
    responses are raised as typed errors.
    """
    loads = loads_event
    started = False
    calls: Dict[str, List[Any]] = {}  # item id -> [call_id, name, arg parts, completed]
    called = False
    summary_seen = False
    refused = False
    encrypted: List[Dict[str, Any]] = []
    for frame in frames:
        data = frame.data
        if not data or data == "[DONE]":
            continue
        try:
            event = loads(data)
        except ValueError as exc:
            raise JsonParsingError(
                f"{label} sent an event that is not valid JSON (event {frame.event!r}): {exc}",
                provider=provider,
                model=model,
                body=data,
            ) from exc
        if not isinstance(event, dict):
            raise JsonParsingError(
                f"{label} sent an event that is not a JSON object (event {frame.event!r})",
                provider=provider,
                model=model,
                body=data,
            )
        kind = event.get("type")
        # The hot path first: deltas are nearly every event of a long answer.
        if kind == "response.output_text.delta":
            d = event.get("delta")
            if d:
                if not started:
                    started = True
                    yield Start(f"resp_{uuid.uuid4().hex}")
                yield text(d)
            continue
        if kind == "response.function_call_arguments.delta":
            call = calls.get(event.get("item_id", ""))
            d = event.get("delta")
            if call is not None and d and not call[3]:
                call[2].append(d)
                yield tool_arg(call[0], d)
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
            raise error_from_event(
                nested if isinstance(nested, dict) else event,
                provider=provider,
                model=model,
                label=label,
            )
        if not started:
            started = True
            resp = event.get("response")
            rid = resp.get("id") if isinstance(resp, dict) else None
            yield Start(rid if isinstance(rid, str) and rid else f"resp_{uuid.uuid4().hex}")
        if kind == "response.output_item.added":
            item = event.get("item") or {}
            if item.get("type") == "function_call":
                call_id = (
                    item.get("call_id") or item.get("id") or f"call_{event.get('output_index', 0)}"
                )
                name = item.get("name") or ""
                calls[item.get("id") or call_id] = [call_id, name, [], False]
                yield ToolRequestStart(call_id, name)
        elif kind == "response.function_call_arguments.done":
            call = calls.get(event.get("item_id", ""))
            if call is not None and not call[3]:
                call[3] = True
                called = True
                args = event.get("arguments")
                if not isinstance(args, str):
                    args = "".join(call[2])
                yield ToolRequestComplete(
                    ToolCallRequest(call[0], event.get("name") or call[1], args)
                )
        elif kind == "response.output_item.done":
            item = event.get("item") or {}
            itype = item.get("type")
            if itype == "reasoning":
                if item.get("encrypted_content"):
                    encrypted.append(_reasoning_item(item))
            elif itype == "function_call":
                key = item.get("id") or item.get("call_id") or ""
                call = calls.get(key)
                if call is None:
                    # A call that arrived whole, with no "added" event before it.
                    call_id = item.get("call_id") or key or f"call_{event.get('output_index', 0)}"
                    call = calls[key] = [call_id, item.get("name") or "", [], False]
                    yield ToolRequestStart(call_id, call[1])
                if not call[3]:
                    call[3] = True
                    called = True
                    args = item.get("arguments")
                    if not isinstance(args, str):
                        args = "".join(call[2])
                    elif args and not call[2]:
                        yield tool_arg(call[0], args)
                    yield ToolRequestComplete(
                        ToolCallRequest(call[0], item.get("name") or call[1], args)
                    )
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
            # Calls whose "done" never came: complete them rather than lose them.
            for call in calls.values():
                if not call[3]:
                    call[3] = True
                    called = True
                    yield ToolRequestComplete(ToolCallRequest(call[0], call[1], "".join(call[2])))
            if encrypted:
                yield EncryptedReasoning(
                    encrypted[0]["id"],
                    json.dumps(encrypted, separators=(",", ":"), ensure_ascii=False),
                )
            usage = _usage(response)
            if usage is not None:
                yield usage
            if status == "incomplete":
                details = response.get("incomplete_details") or {}
                raw = details.get("reason") if isinstance(details, dict) else None
                stop = _INCOMPLETE_REASONS.get(raw or "", StopReason.UNKNOWN)
                yield Done(stop, raw or "incomplete")
            elif status == "completed":
                if refused:
                    yield Done(StopReason.CONTENT_FILTER, "refusal")
                elif called:
                    yield Done(StopReason.TOOL_CALLS, status)
                else:
                    yield Done(StopReason.END_TURN, status)
            elif status == "failed":
                raise _failed(response, provider, model, label)
            else:
                yield Done(StopReason.UNKNOWN, str(status))
            for _ in frames:
                pass  # read to the end, so the connection can go back to the pool
            return
        elif kind == "response.failed":
            raise _failed(event.get("response") or {}, provider, model, label)
        # Everything else (in_progress, content_part.*, *.done, hosted tool progress) carries
        # nothing the chunks need.


def _failed(
    response: Mapping[str, Any], provider: str, model: Optional[str], label: str
) -> LlmError:
    err = response.get("error")
    if not isinstance(err, dict):
        err = {"message": "the response failed without saying why"}
    return error_from_event(
        err, provider=provider, model=model, label=label, where="response.failed"
    )


# ---------------------------------------------------------------------------
# The provider.


class OpenAiProvider(HttpProvider):
    """OpenAI over the Responses API, streamed.

    ``organization`` / ``project`` (else ``OPENAI_ORG_ID`` / ``OPENAI_PROJECT_ID``)
    are sent as headers only to api.openai.com: another server behind
    ``OPENAI_BASE_URL`` has no use for them. ``encrypted_reasoning`` forces asking
    for encrypted reasoning on (True) or off (False); None decides by model name.
    """

    provider_id = "openai"
    label = "OpenAI"
    default_model = "gpt-4.1"
    default_base_url = "https://api.openai.com/v1"
    key_variable = "OPENAI_API_KEY"
    key_required = True
    base_url_variable = "OPENAI_BASE_URL"

    def __init__(
        self,
        api_key: Optional[str] = None,
        *,
        model: Optional[str] = None,
        base_url: Optional[str] = None,
        timeout: TimeoutSpec = None,
        max_retries: Optional[int] = None,
        organization: Optional[str] = None,
        project: Optional[str] = None,
        encrypted_reasoning: Optional[bool] = None,
    ) -> None:
        from .._keys import setting

        super().__init__(
            api_key, model=model, base_url=base_url, timeout=timeout, max_retries=max_retries
        )
        self._organization = setting(organization, "OPENAI_ORG_ID")
        self._project = setting(project, "OPENAI_PROJECT_ID")
        self._encrypted_reasoning = encrypted_reasoning

    def headers(self) -> Dict[str, str]:
        """The request headers (the key included: never log them)."""
        h = {
            "authorization": f"Bearer {self._api_key}",
            "content-type": "application/json",
            "accept": "text/event-stream",
        }
        if urlsplit(self._base_url).hostname == OPENAI_HOST:
            if self._organization:
                h["openai-organization"] = self._organization
            if self._project:
                h["openai-project"] = self._project
        return h

    def build_body(self, context: Context) -> Dict[str, Any]:
        """The request body for ``context`` (what ``stream_response`` sends)."""
        return build_responses_body(
            context,
            self._model,
            reasoning_model=f"{self.provider_id}:{self._model}",
            include_encrypted=self._encrypted_reasoning,
        )

    def build_call(self, context: Context) -> Tuple[HttpCall, Parser]:
        from .._transport._request import HttpCall

        body = self.build_body(context)
        model = self._model

        def classify(status: int, headers: Mapping[str, str], text_: str) -> LlmError:
            return classify_error(status, headers, text_, model)

        def parse(frames: Iterator[Frame]) -> Iterator[LlmResponse]:
            return parse_responses_events(frames, model=model)

        call = HttpCall(
            f"{self._base_url}/responses",
            self.headers(),
            json.dumps(body, ensure_ascii=False).encode("utf-8"),
            framing="sse",
            classify=classify,
        )
        return call, parse
