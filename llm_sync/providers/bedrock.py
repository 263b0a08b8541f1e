"""Amazon Bedrock through the ConverseStream API: Converse JSON out, the AWS binary event stream back."""

from __future__ import annotations

import json
import os
import threading
from typing import (
    TYPE_CHECKING,
    Any,
    Dict,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
)
from urllib.parse import quote

from .._call import Parser
from .._errors import (
    ApiError,
    ApiRequestError,
    InvalidApiKeyError,
    JsonParsingError,
    LlmError,
    MissingApiKeyError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
    UnsupportedContentError,
    error_for_status,
    overflow_error,
)
from .._json import loads_event
from .._keys import setting
from .._redact import mask, register_secret
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
    from .._messages import ChatMessage
    from .._reasoning import ReasoningEffort
    from .._tools import ToolDefinition
    from .._transport._frame import Frame
    from .._transport._request import HttpCall

__all__ = [
    "AwsCredentials",
    "BedrockProvider",
    "build_request",
    "classify_error",
    "parse_events",
    "stream_exception",
]

_INSTALL_HINT = (
    "signing Bedrock requests with AWS credentials needs botocore: "
    "pip install 'llm-sync[bedrock]', or use a Bedrock API key instead "
    "(api_key= or AWS_BEARER_TOKEN_BEDROCK), which needs no extra"
)
_SERVICE = "bedrock"  # the SigV4 signing name of bedrock-runtime

# Claude's thinking budget per effort, as the Anthropic provider maps it.
_THINKING_BUDGET = {"low": 1024, "medium": 4096, "high": 10240, "xhigh": 10240}
# Room left for the visible answer when a thinking budget raises max tokens.
_ANSWER_ROOM = 1024

_HANDOFF = "[Previous conversation handoff]\n\n"

# MIME type -> Converse image format; anything else is sent as png (the reference's rule).
_IMAGE_FORMATS = {
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
}


# ---------------------------------------------------------------------------
# Credentials


class AwsCredentials:
    """Static AWS credentials: an access key id, its secret, and a session token for temporary keys.

    The secret and the token are registered for redaction and never shown in ``repr``.
    """

    __slots__ = ("access_key_id", "secret_access_key", "session_token")

    def __init__(
        self, access_key_id: str, secret_access_key: str, session_token: Optional[str] = None
    ) -> None:
        if not access_key_id or not secret_access_key:
            raise ValueError("AwsCredentials needs both access_key_id and secret_access_key")
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.session_token = session_token or None
        register_secret(secret_access_key)
        register_secret(self.session_token)

    @classmethod
    def coerce(cls, value: Any) -> Any:
        """``AwsCredentials`` from a tuple ``(key, secret[, token])`` or a mapping; botocore objects pass."""
        if value is None or isinstance(value, AwsCredentials):
            return value
        if hasattr(value, "get_frozen_credentials"):
            return value  # a botocore Credentials object: it refreshes itself
        if isinstance(value, Mapping):
            def pick(*names: str) -> Optional[str]:
                for n in names:
                    if value.get(n):
                        return str(value[n])
                return None

            key = pick("access_key_id", "aws_access_key_id", "AccessKeyId", "access_key")
            secret = pick("secret_access_key", "aws_secret_access_key", "SecretAccessKey", "secret_key")
            token = pick("session_token", "aws_session_token", "SessionToken", "token")
            if key is None or secret is None:
                raise ValueError(
                    "credentials= mapping needs access_key_id and secret_access_key "
                    "(and optionally session_token)"
                )
            return cls(key, secret, token)
        if isinstance(value, (tuple, list)) and len(value) in (2, 3):
            return cls(*value)
        raise TypeError(
            "credentials= takes AwsCredentials, a (access_key_id, secret_access_key[, "
            f"session_token]) tuple, a mapping or a botocore Credentials object, not {type(value).__name__}"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AwsCredentials):
            return NotImplemented
        return (self.access_key_id, self.secret_access_key, self.session_token) == (
            other.access_key_id,
            other.secret_access_key,
            other.session_token,
        )

    __hash__ = None  # type: ignore[assignment]

    def __getstate__(self) -> Tuple[str, str, Optional[str]]:
        return (self.access_key_id, self.secret_access_key, self.session_token)

    def __setstate__(self, state: Tuple[str, str, Optional[str]]) -> None:
        self.__init__(*state)  # type: ignore[misc]

    def __repr__(self) -> str:
        token = ", session_token=***" if self.session_token else ""
        return f"AwsCredentials({self.access_key_id!r}, secret_access_key={mask(self.secret_access_key)!r}{token})"


def _import_botocore() -> Any:
    try:
        import botocore.auth
        import botocore.awsrequest
        import botocore.credentials
        import botocore.exceptions
        import botocore.session
    except ImportError:
        raise ApiRequestError(_INSTALL_HINT) from None
    return botocore


def _botocore_available() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("botocore") is not None
    except (ImportError, ValueError):
        return False


class _Signer:
    """Resolves AWS credentials once per process (the botocore chain, or static keys) and signs.

    Shared by copies of a provider; pickling keeps only the configuration, and a
    forked child resolves its own credentials (a refresh lock held at fork time
    would otherwise never be released in the child).
    """

    def __init__(self, static: Any, profile: Optional[str]) -> None:
        self.static = static
        self.profile = profile
        self._lock = threading.Lock()
        self._source: Any = None
        self._pid = 0

    def __getstate__(self) -> Dict[str, Any]:
        return {"static": self.static, "profile": self.profile}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__init__(state["static"], state["profile"])  # type: ignore[misc]

    def _credentials(self, botocore: Any) -> Any:
        """Frozen (access key, secret, token) credentials, refreshed by botocore when due."""
        static = self.static
        if isinstance(static, AwsCredentials):
            return botocore.credentials.ReadOnlyCredentials(
                static.access_key_id, static.secret_access_key, static.session_token
            )
        source = self._source
        if source is None or self._pid != os.getpid():
            with self._lock:
                if self._source is None or self._pid != os.getpid():
                    self._source = static if static is not None else self._resolve(botocore)
                    self._pid = os.getpid()
                source = self._source
        try:
            frozen = source.get_frozen_credentials()
        except botocore.exceptions.BotoCoreError as exc:
            raise InvalidApiKeyError(
                f"refreshing the AWS credentials for Bedrock failed: {exc}; sign in again "
                "(aws sso login) or check the credential source"
            ) from exc
        register_secret(frozen.secret_key)
        register_secret(frozen.token)
        return frozen

    def _resolve(self, botocore: Any) -> Any:
        try:
            session = botocore.session.Session(profile=self.profile)
            found = session.get_credentials()
        except botocore.exceptions.ProfileNotFound as exc:
            raise MissingApiKeyError(
                f"the AWS profile for Bedrock does not exist: {exc}; check profile= or AWS_PROFILE",
                variable="AWS_PROFILE",
            ) from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise ApiRequestError(f"loading AWS credentials for Bedrock failed: {exc}") from exc
        if found is None:
            raise MissingApiKeyError(
                "no AWS credentials for Bedrock: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "or AWS_PROFILE (or pass profile= / credentials=), or use a Bedrock API key "
                "(AWS_BEARER_TOKEN_BEDROCK or api_key=)",
                variable="AWS_ACCESS_KEY_ID",
            )
        return found

    def sign(self, region: str, method: str, url: str, headers: Mapping[str, str], body: bytes) -> Dict[str, str]:
        """``headers`` plus the SigV4 ``Authorization``, ``X-Amz-Date`` (and session token) for this moment."""
        botocore = _import_botocore()
        creds = self._credentials(botocore)
        request = botocore.awsrequest.AWSRequest(method=method, url=url, data=body, headers=dict(headers))
        botocore.auth.SigV4Auth(creds, _SERVICE, region).add_auth(request)
        return dict(request.headers.items())


def _profile_region(profile: Optional[str]) -> Optional[str]:
    """The region of the AWS profile (``~/.aws/config``), when botocore is there to read it."""
    if not _botocore_available():
        return None
    try:
        import botocore.session

        region = botocore.session.Session(profile=profile).get_config_variable("region")
    except Exception:  # a broken config file must not stop an explicit endpoint
        return None
    return str(region) if region else None


def _region_from_url(url: str) -> Optional[str]:
    import re

    m = re.search(r"bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.", url)
    return m.group(1) if m else None


# ---------------------------------------------------------------------------
# Request


def _is_claude(model: str) -> bool:
    # Plain ids ("anthropic.claude-..."), inference profiles ("us.anthropic.claude-...")
    # and ARNs naming either.
    return "claude" in model.lower()


def _image_block(data: str, mime_type: str) -> Dict[str, Any]:
    import base64
    import binascii

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


def _user_blocks(content: Sequence[Any]) -> List[Dict[str, Any]]:
    from .._content import Audio, Image
    from .._content import Text as TextBlock

    blocks: List[Dict[str, Any]] = []
    for block in content:
        if isinstance(block, TextBlock):
            if block.text:  # Bedrock rejects blank text blocks
                blocks.append({"text": block.text})
        elif isinstance(block, Image):
            blocks.append(_image_block(block.data, block.mime_type))
        elif isinstance(block, Audio):
            raise UnsupportedContentError(
                "Bedrock does not support audio input; transcribe it and send text instead"
            )
        else:
            raise UnsupportedContentError(f"Bedrock cannot take a {type(block).__name__} content block")
    return blocks


def build_request(
    messages: Sequence[ChatMessage],
    tools: Sequence[ToolDefinition] = (),
    *,
    model: str,
    max_tokens: int = 16384,
    temperature: Optional[float] = None,
    reasoning_effort: Optional[ReasoningEffort] = None,
) -> Dict[str, Any]:
    """The ConverseStream JSON body for a conversation.

    Every System message becomes a system block. Consecutive messages of the same
    role are merged into one message (Bedrock wants the roles to alternate), which
    also puts the results of parallel tool calls into one user message as Bedrock
    requires. Reasoning saved by this provider for ``model`` is replayed with its
    signature; reasoning from another model is left out.
    """
    from .._messages import Assistant, Error, Summary, System, ToolCallResultMessage, User
    from .._tools import ToolCallError

    identity = f"bedrock:{model}"
    system: List[Dict[str, Any]] = []
    out: List[Dict[str, Any]] = []

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
            add("user", _user_blocks(m.content))
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
            add("user", [{"text": _HANDOFF + m.content}])
        else:
            raise UnsupportedContentError(f"Bedrock cannot send a {type(m).__name__} message")

    inference: Dict[str, Any] = {"maxTokens": max_tokens}
    body: Dict[str, Any] = {"messages": out}
    if system:
        body["system"] = system
    thinking = reasoning_effort is not None and _is_claude(model)
    if thinking:
        assert reasoning_effort is not None
        budget = _THINKING_BUDGET[reasoning_effort.value]
        if max_tokens <= budget:
            inference["maxTokens"] = budget + _ANSWER_ROOM
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
            specs.append({"toolSpec": spec})
        body["toolConfig"] = {"tools": specs}
    return body


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
    """The typed error for a non-2xx Bedrock answer (body ``{"message"}``, type in ``x-amzn-ErrorType``)."""
    from .._retry import parse_retry_after
    from .._transport._http import error_summary

    message, body_type = _json_message(body)
    kind = (_header(headers, "x-amzn-ErrorType") or body_type or "").split(":", 1)[0].strip()
    if message is None:
        message = error_summary(headers, body)
    what = f"Bedrock answered HTTP {status}" + (f" {kind}" if kind else "")
    kw: Dict[str, Any] = {"provider": "bedrock", "model": model, "status": status, "body": body}
    found = overflow_error(
        message,
        f"{what}: {message}; the prompt does not fit the model's context window, compact the conversation",
        **kw,
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
    return error_for_status(
        status, text_, provider="bedrock", model=model, body=body, retry_after=retry_after
    )


def stream_exception(frame: Frame) -> LlmError:
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
    kw: Dict[str, Any] = {"provider": "bedrock", "body": frame.data or None}
    key = name[:1].lower() + name[1:]  # the HTTP names are capitalised; the stream's are not
    if key == "throttlingException":
        return RateLimitedError(what, **kw)
    if key in ("serviceUnavailableException", "internalServerException", "modelNotReadyException"):
        return ServerError(what, **kw)
    if key == "modelTimeoutException":
        return RequestTimeoutError(what, phase="server", **kw)
    found = overflow_error(
        message, f"{what}; the prompt does not fit the model's context window, compact the conversation", **kw
    )
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


def _count(usage: Mapping[str, Any], key: str) -> Optional[int]:
    v = usage.get(key)
    if isinstance(v, int) and not isinstance(v, bool):
        return max(v, 0)
    return None


def _usage(usage: Any) -> Optional[Usage]:
    if not isinstance(usage, dict):
        return None
    prompt = _count(usage, "inputTokens") or 0
    output = _count(usage, "outputTokens") or 0
    read = _count(usage, "cacheReadInputTokens")
    write = _count(usage, "cacheWriteInputTokens")
    cached = (read or 0) + (write or 0)
    total = _count(usage, "totalTokens")
    # Bedrock reports cache reads and writes apart from inputTokens (totalTokens adds
    # all four). Should a model ever count them inside inputTokens, the total shows it.
    if cached and not (total is not None and total == prompt + output):
        prompt += cached
    return Usage(prompt, output, read, write)


def _finish(
    tools: Dict[int, List[Any]],
    thinking: Dict[int, Dict[str, Any]],
    message_id: str,
    usage: Optional[Usage],
    stop: Tuple[StopReason, str],
) -> Iterator[LlmResponse]:
    from .._tools import ToolCallRequest

    for index in sorted(tools):
        call_id, name, parts = tools[index]
        yield ToolRequestComplete(ToolCallRequest(call_id, name, "".join(parts)))
    tools.clear()
    saved = []
    for index in sorted(thinking):
        block = thinking[index]
        if block["redacted"]:
            import base64

            # Pieces of one block are pieces of one blob: join the bytes, not the base64 texts.
            blob = b"".join(base64.b64decode(piece) for piece in block["redacted"])
            saved.append({"redactedContent": base64.b64encode(blob).decode("ascii")})
        elif block["signature"]:
            saved.append({"text": "".join(block["text"]), "signature": block["signature"]})
    if saved:
        yield EncryptedReasoning(message_id, json.dumps({"blocks": saved}, separators=(",", ":")))
    if usage is not None:
        yield usage
    yield Done(stop[0], stop[1])


def parse_events(frames: Iterator[Frame]) -> Iterator[LlmResponse]:
    """ConverseStream frames to chunks.

    Usage and Done wait until both ``messageStop`` and ``metadata`` arrived (their
    order varies), or the stream ended after ``messageStop``. Reasoning blocks that
    carry a signature or redacted content are saved as one ``EncryptedReasoning``
    (JSON ``{"blocks": [...]}``) that :func:`build_request` replays.
    """
    import uuid

    loads = loads_event
    message_id = ""
    tools: Dict[int, List[Any]] = {}  # block index -> [id, name, argument parts]
    thinking: Dict[int, Dict[str, Any]] = {}  # block index -> text parts, signature, redacted parts
    usage: Optional[Usage] = None
    have_usage = False
    stop: Optional[Tuple[StopReason, str]] = None
    for frame in frames:
        if frame.message_type != "event":
            raise stream_exception(frame)
        name = frame.event
        try:
            event = loads(frame.data)
        except ValueError as exc:
            raise JsonParsingError(f"Bedrock {name or 'unnamed'} event is not valid JSON: {exc}") from None
        if not message_id:
            # ConverseStream carries no message id; the request id is only in the HTTP headers.
            message_id = f"bedrock-{uuid.uuid4().hex}"
            yield Start(message_id)
        if name == "contentBlockDelta":
            delta = event.get("delta") or {}
            chunk = delta.get("text")
            if chunk is not None:
                if chunk:
                    yield text(chunk)
                continue
            tool = delta.get("toolUse")
            if tool is not None:
                chunk = tool.get("input")
                call = tools.get(event.get("contentBlockIndex", -1))
                if chunk and call is not None:
                    call[2].append(chunk)
                    yield tool_arg(call[0], chunk)
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
                call_id = str(start.get("toolUseId") or f"tool_call_{event.get('contentBlockIndex', 0)}")
                tools[event.get("contentBlockIndex", -1)] = [call_id, start.get("name", ""), []]
                yield ToolRequestStart(call_id, start.get("name", ""))
        elif name == "contentBlockStop":
            call = tools.pop(event.get("contentBlockIndex", -1), None)
            if call is not None:
                from .._tools import ToolCallRequest

                yield ToolRequestComplete(ToolCallRequest(call[0], call[1], "".join(call[2])))
        elif name == "messageStop":
            raw = str(event.get("stopReason") or "")
            stop = (_STOP_REASONS.get(raw, StopReason.UNKNOWN), raw)
            if have_usage:
                yield from _finish(tools, thinking, message_id, usage, stop)
                return
        elif name == "metadata":
            usage = _usage(event.get("usage"))
            have_usage = True
            if stop is not None:
                yield from _finish(tools, thinking, message_id, usage, stop)
                return
        # messageStart and unknown events carry nothing to yield.
    if stop is not None:
        yield from _finish(tools, thinking, message_id, usage, stop)


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
    label = "Bedrock"
    default_model = "anthropic.claude-sonnet-4-5-20250929-v1:0"
    key_variable = "AWS_BEARER_TOKEN_BEDROCK"
    key_required = False
    base_url_variable = "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"

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
        max_tokens: int = 16384,
        temperature: Optional[float] = None,
    ) -> None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ValueError(f"max_tokens must be a positive int, got {max_tokens!r}")
        static = AwsCredentials.coerce(credentials)
        # The service-specific variable first, then the SDKs' global one (LocalStack and the like).
        endpoint = setting(base_url, "AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "AWS_ENDPOINT_URL")
        resolved = setting(region, "AWS_REGION", "AWS_DEFAULT_REGION")
        if not resolved and endpoint:
            resolved = _region_from_url(endpoint)
        if not resolved:
            resolved = _profile_region(profile)
        if not resolved and not endpoint:
            raise MissingApiKeyError(
                "no AWS region for Bedrock: pass region=, or set AWS_REGION (or AWS_DEFAULT_REGION, "
                "or a region in your AWS profile), or give the endpoint with base_url= / "
                "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
                variable="AWS_REGION",
                provider=self.provider_id,
            )
        super().__init__(
            api_key,
            model=model,
            base_url=endpoint or f"https://bedrock-runtime.{resolved}.amazonaws.com",
            timeout=timeout,
            max_retries=max_retries,
        )
        if api_key is None and (static is not None or profile is not None):
            # Credentials given here win over a bearer token left in the environment.
            self._api_key = None
        if self._api_key is None and not _botocore_available():
            raise ApiRequestError(_INSTALL_HINT, provider=self.provider_id)
        self._region: Optional[str] = resolved or None
        self._endpoint_given = bool(endpoint)
        self._signer = _Signer(static, profile)
        self._max_tokens = max_tokens
        self._temperature = temperature

    # -- configuration -----------------------------------------------------------

    @property
    def region(self) -> Optional[str]:
        return self._region

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    @property
    def temperature(self) -> Optional[float]:
        return self._temperature

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

    def with_max_tokens(self, max_tokens: int) -> BedrockProvider:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ValueError(f"max_tokens must be a positive int, got {max_tokens!r}")
        return self._replace(_max_tokens=max_tokens)

    def with_temperature(self, temperature: Optional[float]) -> BedrockProvider:
        return self._replace(_temperature=temperature)

    def with_base_url(self, base_url: str) -> BedrockProvider:
        return super().with_base_url(base_url)._replace(_endpoint_given=True)

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

    def build_call(self, context: Context) -> Tuple[HttpCall, Parser]:
        from .._transport._request import HttpCall

        body = build_request(
            context.messages,
            context.tools,
            model=self._model,
            max_tokens=self._max_tokens,
            temperature=self._temperature,
            reasoning_effort=context.reasoning_effort,
        )
        data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        headers = {"content-type": "application/json"}
        model = self._model

        def classify(status: int, hdrs: Mapping[str, str], text_: str) -> LlmError:
            return classify_error(status, hdrs, text_, model)

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
            _import_botocore()  # fail here, before a thread starts, if the extra is missing
            signer = self._signer

            def prepare(call: HttpCall) -> HttpCall:
                # Per attempt: a retry gets a fresh timestamp and refreshed credentials.
                signed = signer.sign(region, call.method, call.url, call.headers, call.body or b"")
                return HttpCall(
                    call.url, signed, call.body, framing=call.framing, classify=call.classify, method=call.method
                )

        call = HttpCall(self.endpoint(), headers, data, framing="eventstream", classify=classify, prepare=prepare)
        return call, parse_events

    def __setstate__(self, state: Dict[str, Any]) -> None:
        super().__setstate__(state)
        static = self._signer.static
        if isinstance(static, AwsCredentials):
            register_secret(static.secret_access_key)
            register_secret(static.session_token)

