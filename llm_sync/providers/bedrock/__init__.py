"""Amazon Bedrock through the ConverseStream API: Converse JSON out, the AWS binary event stream back."""

from __future__ import annotations

import base64
import binascii
import json
import os
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import quote

from ..._call import Parser
from ..._content import Document, Image
from ..._content import Text as TextBlock
from ..._errors import (
    ApiError,
    ApiRequestError,
    InvalidApiKeyError,
    LlmError,
    MissingApiKeyError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
    UnsupportedContentError,
    error_for_status,
    overflow_error,
    stamp,
)
from ..._inputs import BEDROCK_DOCUMENTS, unsupported
from ..._keys import setting
from ..._messages import Assistant, Error, Summary, System, ToolCallResultMessage, User
from ..._redact import mask, register_secret
from ..._response import EncryptedReasoning, LlmResponse, StopReason, Usage, reasoning, text
from ..._retry import parse_retry_after
from ..._structured import StructuredSupport
from ..._timeouts import TimeoutSpec
from ..._tokens import read_count
from ..._tools import ToolCallError
from ..._transport._http import error_summary
from ..._transport._request import HttpCall
from .._base import Fetch, HttpProvider, count_call, json_body, request_json
from .._turn import (
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
from ._auth import (
    INSTALL_HINT,
    AwsCredentials,
    Signer,
    botocore_available,
    import_botocore,
    profile_region,
    region_from_url,
)

if TYPE_CHECKING:
    from ..._context import Context
    from ..._messages import ChatMessage
    from ..._reasoning import ReasoningEffort
    from ..._structured import OutputSchema
    from ..._tools import ToolDefinition
    from ..._transport._frame import Frame

__all__ = [
    "AwsCredentials",
    "BedrockProvider",
    "DocumentNames",
    "build_request",
    "classify_error",
    "error_from_event",
    "parse_events",
    "usage_from",
]

DEFAULT_MAX_TOKENS = 16384
# Variables any one of which means AWS credentials (or a Bedrock API key) are configured.
_AWS_VARIABLES = (
    "AWS_BEARER_TOKEN_BEDROCK",
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
)

# MIME type -> Converse image format; anything else is sent as png (the reference's rule).
_IMAGE_FORMATS = {
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
}


# ---------------------------------------------------------------------------
# Request


def _is_claude(model: str) -> bool:
    # Plain ids ("anthropic.claude-..."), inference profiles ("us.anthropic.claude-...")
    # and ARNs naming either.
    return "claude" in model.lower()


def _image_block(data: str, mime_type: str) -> Dict[str, Any]:
    try:
        # Converse JSON carries blobs as base64 text, which the block already holds;
        # decoding here only catches bad data before Bedrock does, with a clearer message.
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiRequestError(f"Invalid base64 image data ({mime_type}): {exc}") from None
    fmt = _IMAGE_FORMATS.get(mime_type.lower().split(";")[0].strip(), "png")
    return {"image": {"format": fmt, "source": {"bytes": data}}}


def _tool_input(arguments: str) -> Any:
    if not arguments.strip():
        return {}
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return {}  # the model streamed broken JSON; Bedrock takes only an object
    return parsed if isinstance(parsed, dict) else {}


def _reasoning_blocks(content: str) -> List[Dict[str, Any]]:
    """Converse ``reasoningContent`` blocks back from our EncryptedReasoning content."""
    try:
        saved = json.loads(content)
    except ValueError:
        return []
    blocks = saved.get("blocks") if isinstance(saved, dict) else None
    out: List[Dict[str, Any]] = []
    for b in blocks or ():
        if not isinstance(b, dict):
            continue
        if b.get("redactedContent"):
            out.append({"reasoningContent": {"redactedContent": b["redactedContent"]}})
        elif b.get("signature"):
            out.append(
                {"reasoningContent": {"reasoningText": {"text": b.get("text", ""), "signature": b["signature"]}}}
            )
    return out


class DocumentNames:
    """Names for the ``document`` blocks of one request, following Converse's rules.

    A ``DocumentBlock.name`` may hold only letters, digits, single spaces, hyphens,
    parentheses and square brackets, 1 to 200 characters, and must be unique within
    the request (Converse refuses "duplicate document names"); see
    https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_DocumentBlock.html.
    A document's own name is kept as far as the rules allow: its extension goes,
    other characters become spaces, and a repeat (ignoring case) gets " (2)", " (3)",
    ...; an unnamed document is "document". The names follow from the conversation in
    order, so a replayed turn gets the same name every time.
    """

    __slots__ = ("_used",)

    def __init__(self) -> None:
        self._used: set[str] = set()

    def name(self, doc: Document) -> str:
        base = _clean_name(doc.name or "") or "document"
        candidate, n = base, 1
        while candidate.lower() in self._used:
            n += 1
            suffix = f" ({n})"
            candidate = base[: 200 - len(suffix)].rstrip() + suffix
        self._used.add(candidate.lower())
        return candidate


def _clean_name(name: str) -> str:
    stem, dot, ext = name.rpartition(".")
    if dot and stem and ext and " " not in ext and len(ext) <= 5:
        name = stem  # "report.pdf" -> "report": a period is not an allowed character
    kept = "".join(c if c.isalnum() or c in "-()[]" else " " for c in name)
    return " ".join(kept.split())[:200].rstrip()


def _document_block(doc: Document, names: DocumentNames) -> Dict[str, Any]:
    fmt = BEDROCK_DOCUMENTS.get(doc.mime_type.lower().split(";")[0].strip())
    if fmt is None:  # the shared content check refuses these before a request is built
        raise UnsupportedContentError(
            f"Bedrock takes documents only as {', '.join(sorted(BEDROCK_DOCUMENTS))}, not {doc.mime_type}"
        )
    try:
        base64.b64decode(doc.data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiRequestError(f"Invalid base64 document data ({doc.mime_type}): {exc}") from None
    return {"document": {"format": fmt, "name": names.name(doc), "source": {"bytes": doc.data}}}


def _user_blocks(content: Sequence[Any], names: DocumentNames) -> List[Dict[str, Any]]:
    blocks: List[Dict[str, Any]] = []
    for block in content:
        if isinstance(block, TextBlock):
            if block.text:  # Bedrock rejects blank text blocks
                blocks.append({"text": block.text})
        elif isinstance(block, Image):
            blocks.append(_image_block(block.data, block.mime_type))
        elif isinstance(block, Document):
            blocks.append(_document_block(block, names))
        else:
            raise unsupported("Bedrock", block)
    return blocks


def build_request(
    messages: Sequence[ChatMessage],
    tools: Sequence[ToolDefinition] = (),
    *,
    model: str,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    temperature: Optional[float] = None,
    reasoning_effort: Optional[ReasoningEffort] = None,
    tool_choice: Optional[str] = None,
    output_schema: Optional[OutputSchema] = None,
) -> Dict[str, Any]:
    """The ConverseStream JSON body for a conversation.

    ``tool_choice`` goes in ``toolConfig.toolChoice`` (``auto``, ``any``, ``tool``;
    Converse has no "none"), a strict tool's ``strict`` in its ``toolSpec``, and
    ``output_schema`` in ``outputConfig.textFormat`` (``json_schema``, the schema as
    JSON text, as Converse wants it).

    Every System message becomes a system block. Consecutive messages of the same
    role are merged into one message (Bedrock wants the roles to alternate), which
    also puts the results of parallel tool calls into one user message as Bedrock
    requires. Reasoning saved by this provider for ``model`` is replayed with its
    signature; reasoning from another model is left out.
    """
    identity = f"bedrock:{model}"
    system: List[Dict[str, Any]] = []
    out: List[Dict[str, Any]] = []
    names = DocumentNames()

    def add(role: str, blocks: List[Dict[str, Any]]) -> None:
        if not blocks:
            return
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})

    for m in messages:
        if isinstance(m, System):
            if m.content:
                system.append({"text": m.content})
        elif isinstance(m, User):
            add("user", _user_blocks(m.content, names))
        elif isinstance(m, Assistant):
            blocks: List[Dict[str, Any]] = []
            enc = m.reasoning.encrypted_content
            if enc is not None and enc.model == identity:
                blocks.extend(_reasoning_blocks(enc.content))
            if m.content:
                blocks.append({"text": m.content})
            for call in m.tool_calls:
                blocks.append(
                    {"toolUse": {"toolUseId": call.id, "name": call.name, "input": _tool_input(call.arguments)}}
                )
            add("assistant", blocks)
        elif isinstance(m, ToolCallResultMessage):
            r = m.result
            if isinstance(r, ToolCallError):
                output, status = r.error, "error"
            else:
                output, status = r.result, "success"
            # Bedrock rejects a blank text block, and an empty output is still an answer.
            add(
                "user",
                [{"toolResult": {"toolUseId": r.id, "content": [{"text": output or "(empty)"}], "status": status}}],
            )
        elif isinstance(m, Error):
            add("user", [{"text": f"Error: {m.message}"}])
        elif isinstance(m, Summary):
            add("user", [{"text": HANDOFF_PREFIX + m.content}])
        else:
            raise UnsupportedContentError(f"Bedrock cannot send a {type(m).__name__} message")

    inference: Dict[str, Any] = {"maxTokens": max_tokens}
    body: Dict[str, Any] = {"messages": out}
    if system:
        body["system"] = system
    thinking = reasoning_effort is not None and _is_claude(model)
    if thinking:
        assert reasoning_effort is not None
        budget = THINKING_BUDGETS[reasoning_effort.value]
        if max_tokens <= budget:
            inference["maxTokens"] = budget + ANSWER_ROOM
        # Claude refuses a temperature other than 1 with thinking on, so none is sent.
        body["additionalModelRequestFields"] = {"thinking": {"type": "enabled", "budget_tokens": budget}}
    elif temperature is not None:
        inference["temperature"] = temperature
    body["inferenceConfig"] = inference
    if tools:
        specs = []
        for t in tools:
            spec: Dict[str, Any] = {"name": t.name, "inputSchema": {"json": t.schema}}
            if t.description:
                spec["description"] = t.description
            if t.strict:
                spec["strict"] = True
            specs.append({"toolSpec": spec})
        config: Dict[str, Any] = {"tools": specs}
        if tool_choice is not None:
            config["toolChoice"] = _tool_choice(tool_choice, thinking=thinking)
        body["toolConfig"] = config
    if output_schema is not None:
        structure = {"schema": output_schema.text, "name": output_schema.name}
        body["outputConfig"] = {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": structure}}}
    return body


def _tool_choice(choice: str, *, thinking: bool) -> Dict[str, Any]:
    if choice == "auto":
        return {"auto": {}}
    if choice == "none":
        # The plan refuses "none" before this (Converse has no such choice); kept total.
        raise ApiRequestError("Bedrock's Converse API has no tool_choice 'none'; choose 'auto'")
    if thinking:
        raise ApiRequestError(
            f"Claude does not allow forcing a tool call (tool_choice {choice!r}) while thinking is "
            "on; drop the reasoning effort or choose 'auto' (an output schema on a Claude before "
            "4.5 travels as a forced tool, so it cannot be combined with thinking there)"
        )
    if choice == "required":
        return {"any": {}}
    return {"tool": {"name": choice}}

#: The Converse fields a CountTokens ``converse`` input takes (not ``inferenceConfig``).
_COUNT_FIELDS = ("messages", "system", "toolConfig", "additionalModelRequestFields")


# ---------------------------------------------------------------------------
# Errors

_HTTP_HINTS = {
    "AccessDeniedException": (
        "; check the credentials, the IAM permission bedrock:InvokeModelWithResponseStream, "
        "and that the model is enabled for the account in this region"
    ),
    "UnrecognizedClientException": "; the AWS credentials or Bedrock API key are not valid",
    "InvalidSignatureException": "; the secret access key does not match the access key id",
    "ExpiredTokenException": "; the session token expired, refresh the credentials",
    "ResourceNotFoundException": "; check model= (and the region: models differ per region)",
}
_AUTH_TYPES = frozenset(
    {
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "IncompleteSignatureException",
        "MissingAuthenticationTokenException",
    }
)


def _header(headers: Mapping[str, str], name: str) -> Optional[str]:
    got = headers.get(name)
    if got is not None:
        return got
    lname = name.lower()
    for k, v in headers.items():
        if k.lower() == lname:
            return v
    return None


def _json_message(body: str) -> Tuple[Optional[str], Optional[str]]:
    """``(message, __type)`` from an AWS JSON error body."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(parsed, dict):
        return None, None
    message = parsed.get("message") or parsed.get("Message")
    kind = parsed.get("__type")
    return (
        str(message) if message is not None else None,
        str(kind).rsplit("#", 1)[-1] if kind else None,
    )


def classify_error(status: int, headers: Mapping[str, str], body: str, model: Optional[str] = None) -> LlmError:
    """The typed error for a non-2xx Bedrock answer, naming the provider and ``model``."""
    return stamp(_read_error(status, headers, body, model), "bedrock", model or None)


def _read_error(status: int, headers: Mapping[str, str], body: str, model: Optional[str] = None) -> LlmError:
    """The typed error for a non-2xx Bedrock answer (body ``{"message"}``, type in ``x-amzn-ErrorType``)."""
    message, body_type = _json_message(body)
    kind = (_header(headers, "x-amzn-ErrorType") or body_type or "").split(":", 1)[0].strip()
    if message is None:
        message = error_summary(headers, body)
    what = f"Bedrock answered HTTP {status}" + (f" {kind}" if kind else "")
    kw: Dict[str, Any] = {"status": status, "body": body}
    found = overflow_error(
        message, f"{what}: {message}; the prompt does not fit the model's context window: {OVERFLOW_HINT}", **kw
    )
    if found is not None:
        return found
    text_ = f"{what}: {message}{_HTTP_HINTS.get(kind, '')}"
    if "model identifier is invalid" in message:
        text_ += "; check model= (an inference profile such as 'us.' + the model id may be needed)"
    retry_after = parse_retry_after(headers)
    if kind == "ThrottlingException":
        return RateLimitedError(text_, retry_after=retry_after, **kw)
    if kind in _AUTH_TYPES:
        return InvalidApiKeyError(text_, **kw)
    if kind in ("ServiceUnavailableException", "InternalServerException", "ModelNotReadyException"):
        return ServerError(text_, retry_after=retry_after, **kw)
    return error_for_status(status, text_, body=body, retry_after=retry_after)


def error_from_event(frame: Frame) -> LlmError:
    """The typed error for an event-stream ``exception`` (or ``error``) message."""
    name = frame.event or "unknown"
    message: Optional[str] = None
    original: Optional[str] = None
    if frame.message_type == "error":
        got = frame.headers.get(":error-message")
        message = got if isinstance(got, str) else None
    else:
        try:
            payload = json.loads(frame.data) if frame.data else {}
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            m = payload.get("message") or payload.get("Message")
            message = str(m) if m is not None else None
            o = payload.get("originalMessage")
            original = str(o) if o is not None else None
        elif frame.data:
            message = frame.data[:300]
    message = message or "(no message)"
    if original:
        message = f"{message} ({original})"
    what = f"Bedrock stream {name}: {message}"
    kw: Dict[str, Any] = {"body": frame.data or None}
    key = name[:1].lower() + name[1:]  # the HTTP names are capitalised; the stream's are not
    if key == "throttlingException":
        return RateLimitedError(what, **kw)
    if key in ("serviceUnavailableException", "internalServerException", "modelNotReadyException"):
        return ServerError(what, **kw)
    if key == "modelTimeoutException":
        return RequestTimeoutError(what, phase="server", **kw)
    found = overflow_error(message, f"{what}; the prompt does not fit the model's context window: {OVERFLOW_HINT}", **kw)
    if found is not None:
        return found
    if key == "modelStreamErrorException":
        return ServerError(what, **kw)
    if key in ("accessDeniedException", "unrecognizedClientException", "expiredTokenException"):
        return InvalidApiKeyError(what, **kw)
    return ApiError(what, **kw)


# ---------------------------------------------------------------------------
# Response


_STOP_REASONS = {
    "end_turn": StopReason.END_TURN,
    "stop_sequence": StopReason.END_TURN,
    "tool_use": StopReason.TOOL_CALLS,
    "max_tokens": StopReason.LENGTH,
    "model_context_window_exceeded": StopReason.LENGTH,
    "guardrail_intervened": StopReason.CONTENT_FILTER,
    "content_filtered": StopReason.CONTENT_FILTER,
}


# The events that open a turn: anything else before them (a ping, an event type
# yet to come) is not a sign of life for the first-event timeout.
_TURN_EVENTS = frozenset(
    {"messageStart", "contentBlockStart", "contentBlockDelta", "contentBlockStop", "messageStop", "metadata"}
)


def usage_from(usage: Any) -> Optional[Usage]:
    """The ``Usage`` of a ``metadata`` event's usage, with cache reads and writes counted as input."""
    if not isinstance(usage, dict):
        return None
    prompt = count(usage.get("inputTokens")) or 0
    output = count(usage.get("outputTokens")) or 0
    read = count(usage.get("cacheReadInputTokens"))
    write = count(usage.get("cacheWriteInputTokens"))
    cached = (read or 0) + (write or 0)
    total = count(usage.get("totalTokens"))
    # Bedrock reports cache reads and writes apart from inputTokens (totalTokens adds
    # all four). Should a model ever count them inside inputTokens, the total shows it.
    if cached and not (total is not None and total == prompt + output):
        prompt += cached
    return Usage(prompt, output, read, write)


def _end(turn: Turn, thinking: Dict[int, Dict[str, Any]], stop: Tuple[StopReason, str]) -> List[LlmResponse]:
    saved = []
    for index in sorted(thinking):
        block = thinking[index]
        if block["redacted"]:
            # Pieces of one block are pieces of one blob: join the bytes, not the base64 texts.
            blob = b"".join(base64.b64decode(piece) for piece in block["redacted"])
            saved.append({"redactedContent": base64.b64encode(blob).decode("ascii")})
        elif block["signature"]:
            saved.append({"text": "".join(block["text"]), "signature": block["signature"]})
    if saved:
        turn.encrypted = EncryptedReasoning(turn.message_id, json.dumps({"blocks": saved}, separators=(",", ":")))
    return turn.end(*stop)


def parse_events(frames: Iterator[Frame]) -> Iterator[LlmResponse]:
    """ConverseStream frames to chunks.

    Usage and Done wait until both ``messageStop`` and ``metadata`` arrived (their
    order varies), or the stream ended after ``messageStop``. Reasoning blocks that
    carry a signature or redacted content are saved as one ``EncryptedReasoning``
    (JSON ``{"blocks": [...]}``) that :func:`build_request` replays.
    """
    turn = Turn()
    calls = turn.calls
    thinking: Dict[int, Dict[str, Any]] = {}  # block index -> text parts, signature, redacted parts
    have_usage = False
    stop: Optional[Tuple[StopReason, str]] = None
    for frame in frames:
        if frame.message_type != "event":
            raise error_from_event(frame)
        name = frame.event
        event = decode_event(frame)
        if not turn.started:
            if name not in _TURN_EVENTS:
                continue
            # ConverseStream carries no message id; the request id is only in the HTTP headers.
            yield turn.start(None, "bedrock-")
        if name == "contentBlockDelta":
            delta = event.get("delta") or {}
            chunk = delta.get("text")
            if chunk is not None:
                if chunk:
                    yield text(chunk)
                continue
            tool = delta.get("toolUse")
            if tool is not None:
                piece = calls.add(event.get("contentBlockIndex", -1), tool.get("input") or "")
                if piece is not None:
                    yield piece
                continue
            thought = delta.get("reasoningContent")
            if thought is not None:
                index = event.get("contentBlockIndex", -1)
                block = thinking.get(index)
                if block is None:
                    block = thinking[index] = {"text": [], "signature": "", "redacted": []}
                chunk = thought.get("text")
                if chunk:
                    block["text"].append(chunk)
                    yield reasoning(chunk)
                if thought.get("signature"):
                    block["signature"] += thought["signature"]
                if thought.get("redactedContent"):
                    block["redacted"].append(thought["redactedContent"])
            # Other deltas (citations, empty ones from gpt-oss) carry nothing to show.
        elif name == "contentBlockStart":
            start = (event.get("start") or {}).get("toolUse")
            if start is not None:
                index = event.get("contentBlockIndex", -1)
                call_id = str(start.get("toolUseId") or f"tool_call_{event.get('contentBlockIndex', 0)}")
                yield from calls.open(index, call_id, start.get("name") or "")
        elif name == "contentBlockStop":
            yield from calls.close(event.get("contentBlockIndex", -1))
        elif name == "messageStop":
            raw = str(event.get("stopReason") or "")
            stop = (stop_reason(raw, _STOP_REASONS), raw)
            if have_usage:
                yield from _end(turn, thinking, stop)
                return
        elif name == "metadata":
            turn.usage = usage_from(event.get("usage"))
            have_usage = True
            if stop is not None:
                yield from _end(turn, thinking, stop)
                return
        # messageStart and unknown events carry nothing to yield.
    if stop is not None:
        yield from _end(turn, thinking, stop)


# ---------------------------------------------------------------------------
# Provider


class BedrockProvider(HttpProvider):
    """Amazon Bedrock's ConverseStream API (extra ``bedrock`` for AWS credentials).

    Authentication: a Bedrock API key (``api_key=`` or ``AWS_BEARER_TOKEN_BEDROCK``)
    is sent as a bearer token and needs nothing beyond the base install. Otherwise
    requests are SigV4-signed with botocore, before every attempt, using
    ``credentials=`` (static keys), or the standard AWS chain (environment,
    ``profile=`` / ``AWS_PROFILE``, SSO, web identity, container and instance
    metadata). The region comes from ``region=``, ``AWS_REGION``,
    ``AWS_DEFAULT_REGION`` or the profile; the endpoint from ``base_url=``,
    ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME`` (then ``AWS_ENDPOINT_URL``) or the region.

    A reasoning effort turns on Claude's extended thinking (budget 1024 / 4096 /
    10240 / 10240 tokens; the temperature is then not sent, as Claude requires);
    other models ignore it. Signed reasoning comes back as one
    ``EncryptedReasoning`` and is replayed to the same model on the next turn.
    """

    provider_id = "bedrock"
    genai_provider_name = "aws.bedrock"
    label = "Bedrock"
    default_model = "anthropic.claude-sonnet-4-5-20250929-v1:0"
    key_variable = "AWS_BEARER_TOKEN_BEDROCK"
    key_required = False
    base_url_variable = "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"
    inputs = {"image": None, "document": frozenset(BEDROCK_DOCUMENTS)}
    default_max_tokens = DEFAULT_MAX_TOKENS
    output_schema_route = "native"
    tool_choices = frozenset({"auto", "required", "tool"})
    strict_tools = True

    def structured_support(self, context: Context) -> StructuredSupport:
        """``outputConfig.textFormat`` and strict tools; for a Claude before 4.5, a forced tool via ``toolChoice``.

        Other models are sent the native field; Bedrock refuses it (an ``ApiError``)
        for a model without structured outputs.
        """
        version = claude_version(self._model)
        if version is not None and version < CLAUDE_STRUCTURED:
            return StructuredSupport("tool", self.tool_choices, strict=False)
        return super().structured_support(context)

    def __init__(
        self,
        api_key: Optional[str] = None,
        *,
        model: Optional[str] = None,
        region: Optional[str] = None,
        credentials: Any = None,
        profile: Optional[str] = None,
        base_url: Optional[str] = None,
        timeout: TimeoutSpec = None,
        max_retries: Optional[int] = None,
        max_tokens: Optional[int] = None,
        temperature: Optional[float] = None,
    ) -> None:
        static = AwsCredentials.coerce(credentials)
        # The service-specific variable first, then the SDKs' global one (LocalStack and the like).
        endpoint = setting(base_url, "AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "AWS_ENDPOINT_URL")
        resolved = setting(region, "AWS_REGION", "AWS_DEFAULT_REGION")
        if not resolved and endpoint:
            resolved = region_from_url(endpoint)
        if not resolved:
            resolved = profile_region(profile)
        if not resolved and not endpoint:
            raise MissingApiKeyError(
                "no AWS region for Bedrock: pass region=, or set AWS_REGION (or AWS_DEFAULT_REGION, "
                "or a region in your AWS profile), or give the endpoint with base_url= / "
                "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
                variable="AWS_REGION",
            )
        super().__init__(
            api_key,
            model=model,
            base_url=endpoint or f"https://bedrock-runtime.{resolved}.amazonaws.com",
            timeout=timeout,
            max_retries=max_retries,
            max_tokens=max_tokens,
            temperature=temperature,
        )
        if api_key is None and (static is not None or profile is not None):
            # Credentials given here win over a bearer token left in the environment.
            self._api_key = None
        if self._api_key is None and not botocore_available():
            raise ApiRequestError(INSTALL_HINT)
        self._region: Optional[str] = resolved or None
        self._endpoint_given = bool(endpoint)
        self._signer = Signer(static, profile)

    # -- configuration -----------------------------------------------------------

    @property
    def region(self) -> Optional[str]:
        return self._region

    @property
    def uses_api_key(self) -> bool:
        """True when requests carry a Bedrock API key (bearer token) instead of a SigV4 signature."""
        return self._api_key is not None

    def with_region(self, region: str) -> BedrockProvider:
        """A copy in ``region`` (the endpoint follows unless it was given explicitly)."""
        if not region:
            raise ValueError("with_region needs a region name")
        changes: Dict[str, Any] = {"_region": region}
        if not self._endpoint_given:
            changes["_base_url"] = f"https://bedrock-runtime.{region}.amazonaws.com"
        return self._replace(**changes)

    def with_base_url(self, base_url: str) -> BedrockProvider:
        return super().with_base_url(base_url)._replace(_endpoint_given=True)

    @classmethod
    def has_credentials(cls) -> bool:
        """True when a Bedrock API key or AWS credentials look configured (variables, or files in ``~/.aws``)."""
        if setting(None, *_AWS_VARIABLES):
            return True
        files = (os.environ.get("AWS_SHARED_CREDENTIALS_FILE"), os.environ.get("AWS_CONFIG_FILE"))
        aws = os.path.join(os.path.expanduser("~"), ".aws")
        paths = [f for f in files if f] + [os.path.join(aws, "credentials"), os.path.join(aws, "config")]
        return any(os.path.isfile(p) for p in paths)

    def __repr__(self) -> str:
        auth = f", api_key={mask(self._api_key)!r}" if self._api_key else ""
        if self._signer.static is not None:
            auth += f", credentials={self._signer.static!r}"
        return (
            f"BedrockProvider(model={self._model!r}, region={self._region!r}, "
            f"base_url={self._base_url!r}{auth})"
        )

    # -- streaming ---------------------------------------------------------------

    def endpoint(self) -> str:
        """The ConverseStream URL of the model (ids hold ':' and ARNs '/': both are escaped)."""
        return f"{self._base_url}/model/{quote(self._model, safe='')}/converse-stream"

    def classify_error(self, status: int, headers: Mapping[str, str], body: str) -> LlmError:
        return classify_error(status, headers, body, self._model)

    def build_call(self, context: Context) -> Tuple[HttpCall, Parser]:
        body = build_request(
            context.messages,
            context.tools,
            model=self._model,
            max_tokens=self._max_tokens or DEFAULT_MAX_TOKENS,
            temperature=self._temperature,
            reasoning_effort=context.reasoning_effort,
            tool_choice=context.tool_choice,
            output_schema=context.output_schema,
        )
        headers = {"content-type": "application/json"}
        prepare = None
        if self._api_key is not None:
            headers["authorization"] = f"Bearer {self._api_key}"
        else:
            region = self._region
            if region is None:
                raise MissingApiKeyError(
                    f"no AWS region to sign Bedrock requests to {self._base_url}: pass region= "
                    "or set AWS_REGION",
                    variable="AWS_REGION",
                )
            import_botocore()  # fail here, before a thread starts, if the extra is missing
            signer = self._signer

            def prepare(call: HttpCall) -> HttpCall:
                # Per attempt: a retry gets a fresh timestamp and refreshed credentials.
                return call.replace(headers=signer.sign(region, call.method, call.url, call.headers, call.body or b""))

        call = HttpCall(
            self.endpoint(), headers, json_body(body), framing="eventstream", prepare=prepare
        )
        return call, parse_events

    def exact_token_count(self, context: Context, fetch: Fetch) -> Optional[int]:
        """``POST /model/{id}/count-tokens`` with the Converse request (messages, system, tools, model fields).

        Signed (or sent with the API key) as the stream would be. Bedrock counts for
        some models only; for others it answers a ``ValidationException`` (an
        ``ApiError``).
        """
        call, _ = self.build_call(context)
        body = request_json(call)
        converse = {k: body[k] for k in _COUNT_FIELDS if k in body}
        url = f"{self._base_url}/model/{quote(self._model, safe='')}/count-tokens"
        request = count_call(call, url, {"input": {"converse": converse}})
        return read_count(fetch(request), "inputTokens", where="Bedrock's CountTokens")

    def __setstate__(self, state: Dict[str, Any]) -> None:
        super().__setstate__(state)
        static = self._signer.static
        if isinstance(static, AwsCredentials):
            register_secret(static.secret_access_key)
            register_secret(static.session_token)

