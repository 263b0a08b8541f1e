"""Google Gemini over its native streaming API (``models/{model}:streamGenerateContent?alt=sse``)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Mapping, Optional, Tuple, Union

from .._call import Parser
from .._content import Audio, Document, Image
from .._content import Text as TextBlock
from .._errors import (
    ApiError,
    InvalidApiKeyError,
    JsonParsingError,
    LlmError,
    RateLimitedError,
    ServerError,
    StreamReadError,
    error_for_status,
    overflow_error,
    stamp,
)
from .._inputs import unsupported
from .._json import loads_event
from .._messages import Assistant, Summary, System, ToolCallResultMessage, User
from .._response import EncryptedReasoning, LlmResponse, StopReason, Usage, reasoning, text
from .._retry import parse_retry_after
from .._structured import StructuredSupport
from .._tokens import read_count
from .._tools import ToolCallError
from .._transport._frame import DEFAULT_MAX_EVENT_BYTES
from .._transport._http import default_classifier
from .._transport._request import HttpCall
from ._base import Fetch, HttpProvider, count_call, json_body, request_json
from ._turn import HANDOFF_PREFIX, OVERFLOW_HINT, Turn, count, stop_reason

if TYPE_CHECKING:
    from .._context import Context
    from .._reasoning import ReasoningEffort
    from .._transport._frame import Frame

__all__ = [
    "SUPPORT",
    "GeminiProvider",
    "build_request",
    "classify_error",
    "error_from_event",
    "parse_events",
    "support_for",
    "thinking_config",
    "usage_from",
]

PROVIDER_ID = "gemini"

# What a model content's replayed signatures look like when none was kept: Gemini 3
# refuses a function call without one, and documents this value as the way to send
# history it did not write (another model's turn, a hand-written or compacted one).
SKIP_SIGNATURE = "skip_thought_signature_validator"

# finishReason -> StopReason. STOP becomes TOOL_CALLS when the turn made calls.
_FINISH: Dict[str, StopReason] = {
    "STOP": StopReason.END_TURN,
    "MAX_TOKENS": StopReason.LENGTH,
    "SAFETY": StopReason.CONTENT_FILTER,
    "RECITATION": StopReason.CONTENT_FILTER,
    "LANGUAGE": StopReason.CONTENT_FILTER,
    "BLOCKLIST": StopReason.CONTENT_FILTER,
    "PROHIBITED_CONTENT": StopReason.CONTENT_FILTER,
    "SPII": StopReason.CONTENT_FILTER,
    "IMAGE_SAFETY": StopReason.CONTENT_FILTER,
    "IMAGE_PROHIBITED_CONTENT": StopReason.CONTENT_FILTER,
    "IMAGE_RECITATION": StopReason.CONTENT_FILTER,
    "MALFORMED_FUNCTION_CALL": StopReason.ERROR,
    "UNEXPECTED_TOOL_CALL": StopReason.ERROR,
    "TOO_MANY_TOOL_CALLS": StopReason.ERROR,
    "MISSING_THOUGHT_SIGNATURE": StopReason.ERROR,
    "MALFORMED_RESPONSE": StopReason.ERROR,
}


# ---------------------------------------------------------------------------
# Request building.


def _model_path(model: str) -> str:
    # "models/gemini-2.5-flash" and "tunedModels/x" are accepted as the API spells them.
    if model.startswith(("models/", "tunedModels/")):
        return model
    return f"models/{model}"


def _version(model: str) -> Optional[Tuple[int, int]]:
    """``(major, minor)`` of a ``gemini-X.Y-...`` model name, else None."""
    name = model.rsplit("/", 1)[-1].lower()
    if not name.startswith("gemini-"):
        return None
    head = name[7:].split("-", 1)[0]
    major, _, minor = head.partition(".")
    if not major.isdigit():
        return None
    return int(major), int(minor) if minor.isdigit() else 0


def _is_gemini3_or_later(model: str) -> bool:
    v = _version(model)
    return v is not None and v[0] >= 3


def _thinks(model: str) -> bool:
    """True for models known to accept ``thinkingConfig`` (2.5 and later, the -latest aliases)."""
    v = _version(model)
    if v is not None:
        return v >= (2, 5)
    name = model.rsplit("/", 1)[-1].lower()
    return (name.startswith("gemini-") and name.endswith("-latest")) or "thinking" in name


def thinking_config(model: str, effort: Optional[ReasoningEffort]) -> Optional[Dict[str, Any]]:
    """``generationConfig.thinkingConfig`` for ``model`` at ``effort`` (None: send none).

    Gemini 3 and later take a ``thinkingLevel`` (Pro models only ``low``/``high``,
    Flash models also ``medium``); 2.5 and unknown names take a ``thinkingBudget``
    in tokens, which Gemini 3 also accepts. Thought summaries are always asked for,
    so thinking shows up as ``Reasoning``. Without an effort, models that cannot
    think get no ``thinkingConfig`` at all (Gemini rejects it there).
    """
    if effort is None:
        return {"includeThoughts": True} if _thinks(model) else None
    level = effort.value
    name = model.lower()
    if _is_gemini3_or_later(model):
        if level == "medium" and "flash" not in name:
            level = "high"
        elif level == "xhigh":
            level = "high"
        return {"includeThoughts": True, "thinkingLevel": level}
    budgets = {"low": 1024, "medium": 8192, "high": 24576, "xhigh": 32768 if "pro" in name else 24576}
    return {"includeThoughts": True, "thinkingBudget": budgets[level]}


def _schema(parameters: Mapping[str, Any]) -> Dict[str, Any]:
    # ``parametersJsonSchema`` takes JSON Schema as is (``$ref``, ``anyOf``,
    # ``additionalProperties``...), unlike the older OpenAPI-subset ``parameters``
    # field; only the ``$schema`` marker is dropped, as it says nothing to the model.
    out = dict(parameters)
    out.pop("$schema", None)
    return out


def _args_object(arguments: str) -> Dict[str, Any]:
    # functionCall.args must be an object; a call whose arguments were never valid
    # JSON is replayed with none (the text the model wrote is unusable anyway).
    if not arguments or not arguments.strip():
        return {}
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _read_signatures(content: str) -> Dict[str, Any]:
    try:
        parsed = json.loads(content)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _assistant_parts(message: Any, signatures: Mapping[str, Any], gemini3: bool) -> List[Dict[str, Any]]:
    parts: List[Dict[str, Any]] = []
    summary = message.reasoning.summary_text
    if signatures.get("thought"):
        # The signature came on a thought part: it goes back on one.
        parts.append({"text": summary or "", "thought": True, "thoughtSignature": signatures["thought"]})
    text_sig = signatures.get("text")
    if message.content or text_sig:
        part: Dict[str, Any] = {"text": message.content}
        if text_sig:
            part["thoughtSignature"] = text_sig
        parts.append(part)
    calls = signatures.get("calls") or {}
    first_call = True
    for call in message.tool_calls:
        fc: Dict[str, Any] = {"name": call.name, "args": _args_object(call.arguments)}
        if call.id:
            fc["id"] = call.id
        part = {"functionCall": fc}
        sig = calls.get(call.id) if isinstance(calls, dict) else None
        if sig:
            part["thoughtSignature"] = sig
        elif first_call and gemini3:
            part["thoughtSignature"] = SKIP_SIGNATURE
        first_call = False
        parts.append(part)
    return parts


def _user_parts(message: Any) -> List[Dict[str, Any]]:
    parts: List[Dict[str, Any]] = []
    for block in message.content:
        if isinstance(block, TextBlock):
            parts.append({"text": block.text})
        elif isinstance(block, (Image, Audio, Document)):
            # Gemini reads images, audio (wav, mp3, aiff, aac, ogg, flac) and documents
            # (PDF, text) inline: https://ai.google.dev/gemini-api/docs/document-processing
            parts.append({"inlineData": {"mimeType": block.mime_type, "data": block.data}})
        else:
            raise unsupported("Gemini", block)
    return parts


def build_request(
    context: Context,
    model: str,
    *,
    max_tokens: Optional[int] = None,
    temperature: Optional[float] = None,
    replay_for: Optional[str] = None,
) -> Dict[str, Any]:
    """The ``streamGenerateContent`` body for ``context`` sent to ``model``.

    Thought signatures are replayed from turns written by ``replay_for``
    (``"provider:model"``, default ``"gemini:<model>"``; Vertex passes its own).
    The output schema goes in ``generationConfig.responseJsonSchema`` (full JSON
    Schema, unlike the OpenAPI-subset ``responseSchema``) with ``responseMimeType``
    ``application/json``; the tool choice in ``toolConfig.functionCallingConfig``
    (``AUTO``, ``NONE``, ``ANY``, ``ANY`` with ``allowedFunctionNames``); strict tools
    turn ``AUTO`` into ``VALIDATED``, which holds calls to their schemas.
    """
    target = replay_for or f"{PROVIDER_ID}:{model}"
    gemini3 = _is_gemini3_or_later(model)
    system: List[Dict[str, Any]] = []
    contents: List[Dict[str, Any]] = []
    for m in context.messages:
        if isinstance(m, System):
            system.append({"text": m.content})
        elif isinstance(m, User):
            contents.append({"role": "user", "parts": _user_parts(m)})
        elif isinstance(m, Assistant):
            enc = m.reasoning.encrypted_content
            sigs = _read_signatures(enc.content) if enc is not None and enc.is_for(target) else {}
            parts = _assistant_parts(m, sigs, gemini3)
            if parts:  # Gemini refuses a content without parts
                contents.append({"role": "model", "parts": parts})
        elif isinstance(m, ToolCallResultMessage):
            r = m.result
            response = {"error": r.error} if isinstance(r, ToolCallError) else {"output": r.result}
            fr: Dict[str, Any] = {"name": r.name, "response": response}
            if r.id:
                fr["id"] = r.id
            part = {"functionResponse": fr}
            last = contents[-1] if contents else None
            # All responses to one turn's calls go in one content, as Gemini expects.
            if last is not None and last["role"] == "user" and "functionResponse" in last["parts"][-1]:
                last["parts"].append(part)
            else:
                contents.append({"role": "user", "parts": [part]})
        elif isinstance(m, Summary):
            contents.append({"role": "user", "parts": [{"text": HANDOFF_PREFIX + m.content}]})
        # ChatMessage.Error is left out, as for the other chat providers: it is a note
        # for the user, not something the model said or was told.
    body: Dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    if context.tools:
        decls = []
        for t in context.tools:
            decls.append({"name": t.name, "description": t.description, "parametersJsonSchema": _schema(t.schema)})
        body["tools"] = [{"functionDeclarations": decls}]
        calling = _calling_config(context)
        if calling is not None:
            body["toolConfig"] = {"functionCallingConfig": calling}
    config: Dict[str, Any] = {}
    schema = context.output_schema
    if schema is not None:
        config["responseMimeType"] = "application/json"
        config["responseJsonSchema"] = _schema(schema.schema)
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    if temperature is not None:
        config["temperature"] = temperature
    thinking = thinking_config(model, context.reasoning_effort)
    if thinking is not None:
        config["thinkingConfig"] = thinking
    if config:
        body["generationConfig"] = config
    # prompt_cache_key has no Gemini counterpart (caching is implicit, or an explicit
    # cachedContents resource), and Gemini rejects unknown fields: nothing is sent.
    return body


#: What Gemini takes: responseJsonSchema, every tool choice, strict tools as VALIDATED.
SUPPORT = StructuredSupport("native", frozenset({"auto", "none", "required", "tool"}), strict=True)


def support_for(model: str, context: Context) -> StructuredSupport:
    """``responseJsonSchema`` natively; before Gemini 3, a forced function when the context has tools.

    Gemini 2.x does not combine function calling with a JSON response format; the
    schema then travels as one more function, called with mode ``ANY``. Names that
    are not ``gemini-X.Y`` versions are taken as current models.
    """
    if context.tools and _version(model) is not None and not _is_gemini3_or_later(model):
        return StructuredSupport("tool", SUPPORT.choices, SUPPORT.strict)
    return SUPPORT


def _calling_config(context: Context) -> Optional[Dict[str, Any]]:
    choice = context.tool_choice
    strict = any(t.strict for t in context.tools)
    if choice == "none":
        return {"mode": "NONE"}
    if choice == "required":
        return {"mode": "ANY"}
    if choice is not None and choice != "auto":
        return {"mode": "ANY", "allowedFunctionNames": [choice]}
    if strict:
        return {"mode": "VALIDATED"}
    return {"mode": "AUTO"} if choice == "auto" else None


# ---------------------------------------------------------------------------
# Errors.


def _retry_delay(error: Mapping[str, Any]) -> Optional[float]:
    # RESOURCE_EXHAUSTED carries a google.rpc.RetryInfo detail: {"retryDelay": "37s"}.
    for d in error.get("details") or ():
        if isinstance(d, dict) and isinstance(d.get("retryDelay"), str):
            try:
                return float(d["retryDelay"].rstrip("s"))
            except ValueError:
                return None
    return None


def _has_reason(error: Mapping[str, Any], reason: str) -> bool:
    return any(isinstance(d, dict) and d.get("reason") == reason for d in error.get("details") or ())


def error_from_event(
    error: Mapping[str, Any],
    *,
    status: Optional[int] = None,
    model: Optional[str] = None,
    body: Optional[str] = None,
    retry_after: Optional[float] = None,
    where: str = "",
    label: str = "Gemini",
    key_hint: str = "check GEMINI_API_KEY",
    models_hint: str = "GET {base_url}/models lists them",
) -> LlmError:
    """The typed error for a Gemini ``error`` object (google.rpc.Status: code, message, status).

    ``label``, ``key_hint`` and ``models_hint`` name the service and the fixes (Vertex
    AI answers in the same shape with other credentials).
    """
    code = error.get("code")
    if status is None and isinstance(code, int):
        status = code
    word = str(error.get("status") or "")
    message = str(error.get("message") or "") or "(no message)"
    head = f"{label} answered{where} HTTP {status}" if status is not None else f"{label} reported{where} an error"
    text_ = f"{head} {word}: {message}" if word else f"{head}: {message}"
    kw: Dict[str, Any] = {"status": status, "body": body}
    over = overflow_error(message, f"{text_}; {OVERFLOW_HINT}", **kw)
    if over is not None:
        return over
    if retry_after is None:
        retry_after = _retry_delay(error)
    if word == "RESOURCE_EXHAUSTED" or status == 429:
        return RateLimitedError(text_, retry_after=retry_after, **kw)
    if word in ("UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED", "UNKNOWN") or (status or 0) >= 500:
        return ServerError(text_, retry_after=retry_after, **kw)
    if word in ("UNAUTHENTICATED", "PERMISSION_DENIED") or _has_reason(error, "API_KEY_INVALID"):
        return InvalidApiKeyError(f"{text_}; {key_hint}", **kw)
    if word == "NOT_FOUND" or status == 404:
        return ApiError(
            f"{text_}; check the model name {model!r} ({models_hint})"
            if model
            else text_,
            **kw,
        )
    if status is not None:
        # error_for_status takes the status as its first argument, not in **kw.
        rest = {k: v for k, v in kw.items() if k != "status"}
        return error_for_status(status, text_, retry_after=retry_after, **rest)
    return ApiError(text_, **kw)


def _error_object(parsed: Any) -> Optional[Mapping[str, Any]]:
    # Vertex and cloudcode-pa wrap the status in a one-element list.
    if isinstance(parsed, list) and parsed:
        parsed = parsed[0]
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        return parsed["error"]  # type: ignore[no-any-return]
    return None


def classify_error(status: int, headers: Mapping[str, str], body: str, model: Optional[str] = None) -> LlmError:
    """The typed error for a non-2xx answer from Gemini, naming the provider and ``model``."""
    return stamp(_read_error(status, headers, body, model), "gemini", model or None)


def _read_error(
    status: int, headers: Mapping[str, str], body: str, model: Optional[str] = None, **names: str
) -> LlmError:
    """The typed error for a non-2xx answer from Gemini (``names``: ``label`` and hints, see ``error_from_event``)."""
    retry_after = parse_retry_after(headers)
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    error = _error_object(parsed)
    if error is None:
        # Not Gemini's JSON (a proxy's HTML page, an empty body): the status decides,
        # though an overflow text is still recognised.
        err = default_classifier(status, headers, body, provider=names.get("label", "Gemini"))
        over = overflow_error(body, err.message, status=status, body=body)
        return over if over is not None else err
    return error_from_event(error, status=status, model=model, body=body, retry_after=retry_after, **names)


# ---------------------------------------------------------------------------
# Parsing. The body is read line by line (NDJSON framing) and the SSE fields are
# handled here: Gemini writes a failure that happens after the events have begun
# (a 503 "model is overloaded") as bare JSON without "data:", which an SSE framer
# drops, turning an overload into a silently truncated or even complete-looking turn.

# Streamed arrays may skip at most this many indexes ahead (see _grow).
_MAX_INDEX_GAP = 1024


def _json_path(path: str) -> List[Union[str, int]]:
    """``$.a.b[0]['c d']`` -> ``["a", "b", 0, "c d"]``."""
    out: List[Union[str, int]] = []
    i = 1 if path.startswith("$") else 0
    n = len(path)
    while i < n:
        c = path[i]
        if c == ".":
            j = i + 1
            while j < n and path[j] not in ".[":
                j += 1
            out.append(path[i + 1 : j])
            i = j
        elif c == "[":
            j = path.find("]", i)
            if j < 0:
                j = n
            inner = path[i + 1 : j].strip()
            if inner[:1] in ("'", '"'):
                out.append(inner[1:-1])
            else:
                out.append(int(inner) if inner.isdigit() else inner)
            i = j + 1
        else:
            j = i
            while j < n and path[j] not in ".[":
                j += 1
            out.append(path[i:j])
            i = j
    return out


def _set_path(root: Dict[str, Any], path: List[Union[str, int]], value: Any, append: bool) -> None:
    node: Any = root
    for k, nxt in zip(path, path[1:]):
        empty: Any = [] if isinstance(nxt, int) else {}
        if isinstance(node, list):
            assert isinstance(k, int)
            _grow(node, k)
            if node[k] is None:
                node[k] = empty
            node = node[k]
        else:
            node = node.setdefault(k, empty)
    last = path[-1] if path else ""
    if isinstance(node, list):
        idx = int(last)
        _grow(node, idx)
        node[idx] = node[idx] + value if append and isinstance(node[idx], str) else value
    else:
        old = node.get(last)
        node[last] = old + value if append and isinstance(old, str) else value


def _grow(node: List[Any], index: int) -> None:
    # Streamed arrays arrive in order; an index far past the end is a broken (or
    # hostile) path that would otherwise allocate without bound.
    if index > len(node) + _MAX_INDEX_GAP:
        raise JsonParsingError(
            f"a streamed function-call argument names index {index} of a {len(node)}-item array"
        )
    while len(node) <= index:
        node.append(None)


class _Stream:
    """What one Gemini turn accumulates beyond the shared turn kit: signatures, a streaming call."""

    def __init__(self) -> None:
        self.turn = Turn()
        self.response_id = ""  # Gemini's responseId, when it gives one
        self.calls_made = 0
        self.open: Optional[str] = None  # the id of a call whose arguments are still streaming
        self.open_args: Dict[str, Any] = {}
        self.open_string: Optional[str] = None  # the jsonPath of a string still arriving
        self.sig_calls: Dict[str, str] = {}
        self.sig_text: Optional[str] = None
        self.sig_thought: Optional[str] = None
        self.usage: Optional[Mapping[str, Any]] = None
        self.finish: Optional[str] = None
        self.block: Optional[str] = None
        # usageMetadata comes with running totals: a cancelled turn keeps the last (partial()).
        self.turn.so_far = self.usage_so_far

    def usage_so_far(self) -> Optional[Usage]:
        return usage_from(self.usage) if self.usage else None

    def new_id(self, given: Any) -> str:
        n = self.calls_made
        self.calls_made += 1
        if isinstance(given, str) and given:
            return given
        # Gemini's API gives no call ids; these are stable for a given response and
        # unique within (and, with the response id, across) turns.
        rid = self.response_id
        return f"call_{rid}_{n}" if rid else f"call_{n}"

    def finish_open(self) -> List[LlmResponse]:
        key = self.open
        if key is None:
            return []
        self.open = None
        return self.turn.calls.close(key, json.dumps(self.open_args, ensure_ascii=False))

    def function_call(self, fc: Mapping[str, Any], signature: Optional[str]) -> Iterator[LlmResponse]:
        calls = self.turn.calls
        name = fc.get("name")
        more = bool(fc.get("willContinue"))
        partial = fc.get("partialArgs")
        if name:
            yield from self.finish_open()
            call_id = self.new_id(fc.get("id"))
            if signature:
                self.sig_calls[call_id] = signature
            yield from calls.open(call_id, call_id, str(name))
            args = fc.get("args")
            self.open = call_id
            self.open_args = args if isinstance(args, dict) else {}
            self.open_string = None
            if not more and not partial:
                yield from self.finish_open()  # the common case: the whole call in one part
                return
        open_id = self.open
        if open_id is None:
            return  # a terminator or stray fragment with no call open
        if signature and open_id not in self.sig_calls:
            self.sig_calls[open_id] = signature
        if isinstance(partial, list):
            # Vertex's streamFunctionCallArguments: each piece sets one JSON path;
            # a string with willContinue goes on in the next piece for that path.
            for piece in partial:
                if not isinstance(piece, dict):
                    continue
                path_text = str(piece.get("jsonPath") or "$")
                path = _json_path(path_text)
                if "stringValue" in piece:
                    appending = self.open_string == path_text
                    _set_path(self.open_args, path, str(piece["stringValue"]), appending)
                    self.open_string = path_text if piece.get("willContinue") else None
                else:
                    for key in ("numberValue", "boolValue", "nullValue", "structValue", "listValue"):
                        if key in piece:
                            value = None if key == "nullValue" else piece[key]
                            _set_path(self.open_args, path, value, False)
                            break
                    self.open_string = None
        if not more:
            yield from self.finish_open()

    def event(self, event: Mapping[str, Any]) -> Iterator[LlmResponse]:
        if not self.turn.started:
            rid = event.get("responseId")
            self.response_id = rid if isinstance(rid, str) else ""
            yield self.turn.start(self.response_id, "gemini-", event.get("modelVersion"))
        err = event.get("error")
        if isinstance(err, dict):
            raise error_from_event(err, body=json.dumps(event)[:4000], where=" in the stream")
        usage = event.get("usageMetadata")
        if usage:
            # Repeated on many chunks with running totals; some Vertex chunks carry
            # only trafficType, which must not erase the counts seen so far.
            if "promptTokenCount" in usage or "candidatesTokenCount" in usage or self.usage is None:
                self.usage = usage
        candidates = event.get("candidates")
        if not candidates:
            feedback = event.get("promptFeedback")
            if isinstance(feedback, dict) and feedback.get("blockReason"):
                self.block = str(feedback["blockReason"])
            return
        cand = candidates[0]  # candidateCount is never raised, so there is one
        content = cand.get("content")
        parts = content.get("parts") if content else None
        if parts:
            for part in parts:
                sig = part.get("thoughtSignature")
                fc = part.get("functionCall")
                if fc is not None:
                    yield from self.function_call(fc, sig)
                    continue
                t = part.get("text")
                if t is None:
                    continue  # executableCode, inlineData...: nothing this API streams out
                if self.open is not None:
                    yield from self.finish_open()
                if part.get("thought"):
                    if sig:
                        self.sig_thought = sig
                    if t:
                        yield reasoning(t)
                else:
                    if sig:
                        # The last one wins: Gemini 3 puts the turn's signature on the
                        # final (often empty) text part.
                        self.sig_text = sig
                    if t:
                        yield text(t)
        finish = cand.get("finishReason")
        if finish:
            self.finish = str(finish)

    def end(self) -> Iterator[LlmResponse]:
        yield from self.finish_open()
        if self.finish is None and self.block is None:
            return  # no finishReason: the engine reports the truncated stream
        turn = self.turn
        if self.sig_calls or self.sig_text or self.sig_thought:
            keep: Dict[str, Any] = {}
            if self.sig_calls:
                keep["calls"] = self.sig_calls
            if self.sig_text:
                keep["text"] = self.sig_text
            if self.sig_thought:
                keep["thought"] = self.sig_thought
            turn.encrypted = EncryptedReasoning(turn.message_id, json.dumps(keep))
        if self.usage is not None:
            turn.usage = usage_from(self.usage)
        if self.finish is None:
            # The prompt itself was blocked (promptFeedback.blockReason, no candidates).
            yield from turn.end(StopReason.CONTENT_FILTER, self.block)
        else:
            yield from turn.end(stop_reason(self.finish, _FINISH), self.finish)


def _modality(details: Any, modality: str) -> Optional[int]:
    if not isinstance(details, list):
        return None
    found = [d.get("tokenCount", 0) for d in details if isinstance(d, dict) and d.get("modality") == modality]
    return sum((count(x) or 0) for x in found) if found else None


def usage_from(u: Mapping[str, Any]) -> Usage:
    """The ``Usage`` of a ``usageMetadata`` object.

    ``promptTokenCount`` already includes ``cachedContentTokenCount``;
    ``toolUsePromptTokenCount`` (server-side tools' results) is counted apart by
    Gemini and is input too; thoughts are output.
    """
    thoughts = count(u.get("thoughtsTokenCount"))
    return Usage(
        input_tokens=(count(u.get("promptTokenCount")) or 0) + (count(u.get("toolUsePromptTokenCount")) or 0),
        output_tokens=(count(u.get("candidatesTokenCount")) or 0) + (thoughts or 0),
        cached_input_tokens=count(u.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
        input_audio_tokens=_modality(u.get("promptTokensDetails"), "AUDIO"),
        input_video_tokens=_modality(u.get("promptTokensDetails"), "VIDEO"),
        output_audio_tokens=_modality(u.get("candidatesTokensDetails"), "AUDIO"),
    )


def _loose_text(stream: _Stream, stray: List[str]) -> Iterator[LlmResponse]:
    """Handle body text that was not an SSE field: an error, or a whole JSON answer."""
    raw = "\n".join(stray)
    stray.clear()
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise ServerError(
            "Gemini broke off the stream with text that is not an event: "
            f"{raw[:300]!r}; the request can be retried",
            body=raw,
        ) from None
    error = _error_object(parsed)
    if error is not None:
        raise error_from_event(error, body=raw, where=" in the middle of the stream")
    # A body without SSE framing (a proxy that dropped ?alt=sse answers with the JSON
    # array of chunks, generateContent with one object): the same chunks, all at once.
    items = parsed if isinstance(parsed, list) else [parsed]
    for item in items:
        if not isinstance(item, dict):
            raise JsonParsingError(f"a Gemini response element is not an object: {str(item)[:200]!r}")
        yield from stream.event(item)


def parse_events(frames: Iterator[Frame]) -> Iterator[LlmResponse]:
    """Gemini's body, one line per frame, to ``LlmResponse`` chunks.

    Lines that are not SSE fields are kept (an error or a whole JSON answer spans
    several) up to the event size limit, then refused with ``StreamReadError``.
    """
    stream = _Stream()
    stray: List[str] = []
    stray_size = 0
    bad: Optional[str] = None  # a data line that is not JSON, unless it is the last
    loads = loads_event
    for frame in frames:
        line = frame.data
        if bad is not None:
            raise JsonParsingError(f"a Gemini event is not valid JSON: {bad[:200]!r}")
        if line.startswith("data:"):
            if stray:
                stray_size = 0
                yield from _loose_text(stream, stray)
            payload = line[6:] if line[5:6] == " " else line[5:]
            try:
                event = loads(payload)
            except ValueError:
                bad = payload
                continue
            if not isinstance(event, dict):
                raise JsonParsingError(f"a Gemini event is not a JSON object: {payload[:200]!r}")
            yield from stream.event(event)
        elif line.startswith(":") or line.startswith(("event:", "id:", "retry:")) or line in (
            "data",
            "event",
            "id",
            "retry",
        ):
            continue  # comments and fields Gemini gives no meaning
        else:
            stray_size += len(line) + 1
            if stray_size > DEFAULT_MAX_EVENT_BYTES:
                raise StreamReadError(
                    f"Gemini sent more than {DEFAULT_MAX_EVENT_BYTES} bytes of lines that are not "
                    "server-sent event fields; the body is not a Gemini stream"
                )
            stray.append(line)
    if stray:
        yield from _loose_text(stream, stray)
    if bad is not None:
        return  # the body was cut inside the last event: reported as truncated
    yield from stream.end()


# ---------------------------------------------------------------------------
# The provider.


class GeminiProvider(HttpProvider):
    """Gemini (Google AI Studio) through ``streamGenerateContent`` with thought signatures kept.

    The key comes from ``api_key``, ``GEMINI_API_KEY`` or ``GOOGLE_API_KEY`` (the
    name Google's SDKs read), in that order; ``base_url`` ends in ``/v1beta``.
    """

    provider_id = PROVIDER_ID
    genai_provider_name = "gcp.gemini"
    genai_operation = "generate_content"
    label = "Gemini"
    default_model = "gemini-2.5-flash"
    default_base_url = "https://generativelanguage.googleapis.com/v1beta"
    key_variable = "GEMINI_API_KEY"
    key_aliases = ("GOOGLE_API_KEY",)
    base_url_variable = "GEMINI_BASE_URL"
    inputs = {"image": None, "audio": None, "document": None}
    output_schema_route = "native"
    tool_choices = frozenset({"auto", "none", "required", "tool"})
    strict_tools = True

    def structured_support(self, context: Context) -> StructuredSupport:
        """See :func:`support_for`."""
        return support_for(self._model, context)

    def classify_error(self, status: int, headers: Mapping[str, str], body: str) -> LlmError:
        return classify_error(status, headers, body, self._model)

    def build_call(self, context: Context) -> Tuple[HttpCall, Parser]:
        body = build_request(context, self._model, max_tokens=self._max_tokens, temperature=self._temperature)
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream",
            "x-goog-api-key": self._api_key or "",
        }
        call = HttpCall(
            f"{self._base_url}/{_model_path(self._model)}:streamGenerateContent?alt=sse",
            headers,
            json_body(body),
            # Lines, not SSE events: see the note above parse_events.
            framing="ndjson",
        )
        return call, parse_events

    def exact_token_count(self, context: Context, fetch: Fetch) -> Optional[int]:
        """``POST {base}/models/{model}:countTokens`` with the whole request as ``generateContentRequest``.

        That form counts the system instruction, tools and generation config too, as
        ``usageMetadata.promptTokenCount`` does for the same request.
        """
        call, _ = self.build_call(context)
        path = _model_path(self._model)
        body = {"generateContentRequest": {"model": path, **request_json(call)}}
        request = count_call(call, f"{self._base_url}/{path}:countTokens", body)
        return read_count(fetch(request), "totalTokens", where="Gemini's countTokens")
