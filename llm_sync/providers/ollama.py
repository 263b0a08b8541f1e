"""Ollama over its native ``/api/chat`` NDJSON stream: ``OllamaProvider`` and the plain functions behind it."""

from __future__ import annotations

import ipaddress
import json
import uuid
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Mapping, Optional, Tuple, Union

from .._call import Parser
from .._content import Image
from .._content import Text as TextBlock
from .._errors import (
    ApiError,
    InvalidApiKeyError,
    JsonParsingError,
    LlmError,
    RateLimitedError,
    ServerError,
    StreamInterruptedError,
    error_for_status,
    overflow_error,
    stamp,
)
from .._inputs import unsupported
from .._keys import setting
from .._messages import Assistant, Summary, System, ToolCallResultMessage, User
from .._model import LlmModel
from .._response import LlmResponse, StopReason, Usage, reasoning, text
from .._retry import parse_retry_after
from .._structured import StructuredSupport
from .._timeouts import TimeoutSpec
from .._transport._http import error_summary
from .._transport._ndjson import UNTERMINATED
from .._transport._request import HttpCall
from ._base import Fetch, HttpProvider, json_body
from ._turn import HANDOFF_PREFIX, Turn, count, decode_event, stop_reason
from .openai_compatible import OpenAiCompatibleProvider

if TYPE_CHECKING:
    from .._context import Context
    from .._transport._frame import Frame

__all__ = [
    "DEFAULT_HOST",
    "OllamaProvider",
    "build_request",
    "classify_error",
    "error_from_event",
    "ollama_host_url",
    "parse_events",
    "show_window",
    "think_value",
]

DEFAULT_HOST = "http://localhost:11434"
_DEFAULT_PORT = "11434"

Think = Union[bool, str]


# ---------------------------------------------------------------------------
# OLLAMA_HOST, read the way Ollama's own envconfig.Host() reads it.


def ollama_host_url(value: str) -> str:
    """The base URL for an ``OLLAMA_HOST``-style value, parsed as Ollama itself parses it.

    Surrounding spaces and quotes are dropped; without a scheme ``http`` is used and
    the port defaults to 11434; an explicit ``http://`` / ``https://`` without a
    port means 80 / 443; a path after the host is kept (for reverse proxies); an
    empty value is ``127.0.0.1:11434``. One client-side difference: the bind-all
    addresses ``0.0.0.0`` and ``::`` (common in ``OLLAMA_HOST`` because the
    server reads the same variable) are reached as loopback, which works on every OS.
    """
    s = value.strip().strip("\"'").strip()
    default_port = _DEFAULT_PORT
    scheme, sep, hostport = s.partition("://")
    if not sep:
        scheme, hostport = "http", s
    elif scheme == "http":
        default_port = "80"
    elif scheme == "https":
        default_port = "443"
    hostport, slash, path = hostport.partition("/")
    host, port = _split_host_port(hostport)
    if host is None:
        host, port = "127.0.0.1", default_port
        bare = hostport.strip("[]")
        if _is_ip(bare):
            host = bare
        elif hostport:
            host = hostport
    if not port.isdigit() or int(port) > 65535:
        port = default_port
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1" if host != "::" else "::1"
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    url = f"{scheme}://{netloc}"
    if slash and path.strip("/"):
        url += "/" + path.strip("/")
    return url


def _split_host_port(hostport: str) -> Tuple[Optional[str], str]:
    # Go's net.SplitHostPort: "[v6]:port" or "host:port" with exactly one colon.
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0 or hostport[end + 1 : end + 2] != ":":
            return None, ""
        return hostport[1:end], hostport[end + 2 :]
    if hostport.count(":") != 1:
        return None, ""
    host, _, port = hostport.partition(":")
    return host, port


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def show_window(shown: Any) -> Optional[int]:
    """The context window in an ``/api/show`` answer: ``num_ctx`` in ``parameters``, else ``<arch>.context_length``."""
    if not isinstance(shown, dict):
        return None
    params = shown.get("parameters")
    if isinstance(params, str):
        for line in params.splitlines():
            name, _, rest = line.strip().partition(" ")
            if name == "num_ctx" and rest.strip().isdigit():
                return int(rest.strip())
    info = shown.get("model_info")
    if isinstance(info, dict):
        for key, v in info.items():
            if key.endswith(".context_length") and isinstance(v, int) and not isinstance(v, bool) and v > 0:
                return v
    return None


# ---------------------------------------------------------------------------
# The request body.


def think_value(model: str, effort: Optional[Any]) -> Optional[Think]:
    """Ollama's ``think`` for a ``ReasoningEffort`` (None: leave ``think`` out).

    Ollama documents named levels ``"low"``/``"medium"``/``"high"`` for gpt-oss
    (which ignores a bare ``true`` beyond its medium default) and a boolean for
    every other thinking model, so gpt-oss gets the level (XHIGH as ``"high"``)
    and the rest get ``true``.
    """
    if effort is None:
        return None
    level = str(getattr(effort, "value", effort))
    if model.split("/")[-1].startswith("gpt-oss"):
        return "high" if level == "xhigh" else level
    return True


def build_request(
    context: Context,
    model: str,
    *,
    options: Optional[Mapping[str, Any]] = None,
    think: Optional[Think] = None,
) -> Dict[str, Any]:
    """The ``/api/chat`` body for ``context`` (``stream`` is always true).

    An explicit ``think`` wins over the context's reasoning effort. The output schema
    goes in ``format`` (Ollama constrains the reply to it); ``tool_choice`` ``"none"``
    is sent by leaving the tools out, as ``/api/chat`` has no field for it.
    """
    messages: List[Dict[str, Any]] = []
    for m in context.messages:
        if isinstance(m, User):
            messages.append(_user_message(m))
        elif isinstance(m, Assistant):
            messages.append(_assistant_message(m))
        elif isinstance(m, ToolCallResultMessage):
            r = m.result
            content = r.error if m.is_error else r.result  # type: ignore[union-attr]
            messages.append(
                {"role": "tool", "content": content, "tool_name": r.name, "tool_call_id": r.id}
            )
        elif isinstance(m, System):
            messages.append({"role": "system", "content": m.content})
        elif isinstance(m, Summary):
            messages.append({"role": "user", "content": HANDOFF_PREFIX + m.content})
        # ChatMessage.Error is a note for the user, not for the model: it is left out.
    body: Dict[str, Any] = {"model": model, "messages": messages, "stream": True}
    if context.tools and context.tool_choice != "none":
        body["tools"] = [
            {
                "type": "function",
                "function": {"name": t.name, "description": t.description, "parameters": t.schema},
            }
            for t in context.tools
        ]
    if context.output_schema is not None:
        body["format"] = context.output_schema.schema
    chosen = think if think is not None else think_value(model, context.reasoning_effort)
    if chosen is not None:
        body["think"] = chosen
    if options:
        body["options"] = dict(options)
    return body


def _user_message(m: Any) -> Dict[str, Any]:
    texts: List[str] = []
    images: List[str] = []
    for block in m.content:
        if isinstance(block, TextBlock):
            texts.append(block.text)
        elif isinstance(block, Image):
            images.append(block.data)  # Ollama takes bare base64, no data: URI
        else:
            raise unsupported("Ollama", block)
    out: Dict[str, Any] = {"role": "user", "content": "\n".join(texts)}
    if images:
        out["images"] = images
    return out


def _assistant_message(m: Any) -> Dict[str, Any]:
    out: Dict[str, Any] = {"role": "assistant", "content": m.content}
    if m.reasoning.summary_text:
        # Ollama takes the trace back as "thinking"; gpt-oss needs it to continue
        # after its own tool calls.
        out["thinking"] = m.reasoning.summary_text
    if m.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "function": {"name": c.name, "arguments": c.parsed_arguments()}}
            for c in m.tool_calls
        ]
    return out


# ---------------------------------------------------------------------------
# The stream.

_STOP_REASONS = {"stop": StopReason.END_TURN, "length": StopReason.LENGTH}


def parse_events(frames: Iterator[Frame]) -> Iterator[LlmResponse]:
    """Chunks from ``/api/chat`` NDJSON lines.

    Each line carries ``message.thinking`` / ``message.content`` deltas and, whole,
    ``message.tool_calls`` (arguments as a JSON object); the line with ``done: true``
    has ``done_reason`` and the token counts. ``{"error": "..."}`` lines raise.
    """
    turn = Turn()
    calls = turn.calls
    made = 0
    stream_id = uuid.uuid4().hex[:12]  # Ollama gives a response no id of its own
    for frame in frames:
        try:
            event = decode_event(frame)
        except JsonParsingError:
            if frame.message_type != UNTERMINATED:
                raise
            # The body ended in the middle of its last line: a cut connection.
            raise StreamInterruptedError(
                "the Ollama stream ended in the middle of a line (the connection was cut)"
            ) from None
        err = event.get("error")
        if err is not None:
            message = err if isinstance(err, str) else json.dumps(err)
            raise error_from_event(message, body=frame.data, in_stream=True)
        if not turn.started:
            yield turn.start(f"ollama-{stream_id}", "ollama-", event.get("model"))
        msg = event.get("message")
        if msg:
            thinking = msg.get("thinking")
            if thinking:
                yield reasoning(thinking)
            content = msg.get("content")
            if content:
                yield text(content)
            for call in msg.get("tool_calls") or ():
                made += 1
                fn = call.get("function") or {}
                args = fn.get("arguments")
                if not isinstance(args, str):  # a str: an OpenAI-style server in front of Ollama
                    args = json.dumps(args if args is not None else {}, ensure_ascii=False)
                call_id = call.get("id") or f"call_{stream_id}_{made}"
                yield from calls.open(call_id, call_id, fn.get("name") or "")
                yield from calls.close(call_id, args)
        if event.get("done"):
            prompt = count(event.get("prompt_eval_count"))
            output = count(event.get("eval_count"))
            if prompt is not None or output is not None:
                turn.usage = Usage(prompt or 0, output or 0)
            raw = event.get("done_reason")
            # Servers before done_reason existed give no word, so no claim of a clean end.
            yield from turn.end(stop_reason(raw, _STOP_REASONS), raw)
            return


# ---------------------------------------------------------------------------
# Errors: Ollama's bodies and in-stream lines are {"error": "<text>"}.


def error_from_event(
    message: str,
    *,
    model: str = "",
    status: Optional[int] = None,
    body: Optional[str] = None,
    retry_after: Optional[float] = None,
    in_stream: bool = False,
) -> LlmError:
    """The typed error for an Ollama error text (a body's or an NDJSON line's)."""
    kw: Dict[str, Any] = {"status": status, "body": body}
    where = f"Ollama answered HTTP {status}" if status is not None else "Ollama reported an error"
    lower = message.lower()
    overflow = overflow_error(
        message,
        f"{where}: {message}; the prompt does not fit the context window (options num_ctx); "
        "raise num_ctx or compact the conversation",
        **kw,
    )
    if overflow is not None:
        return overflow
    if "not found" in lower and "model" in lower and (status in (None, 404) or "pull" in lower):
        name = f"the model {model!r}" if model else "the model"
        return ApiError(
            f"{where}: {message}; {name} is not on this Ollama server: run "
            f"`ollama pull {model or '<model>'}` or pick one that `ollama list` shows",
            **kw,
        )
    if "does not support tools" in lower:
        return ApiError(
            f"{where}: {message}; send no tools to this model or pick one with tool support",
            **kw,
        )
    if "does not support thinking" in lower:
        return ApiError(
            f"{where}: {message}; leave think= and the reasoning effort unset for this model",
            **kw,
        )
    if status is not None:
        if status in (401, 403):
            return InvalidApiKeyError(
                f"{where}: {message}; check OLLAMA_API_KEY (needed for ollama.com, not for a "
                "local server)",
                **kw,
            )
        return error_for_status(status, f"{where}: {message}", body=body, retry_after=retry_after)
    if "unauthorized" in lower or "api key" in lower:
        return InvalidApiKeyError(f"{where}: {message}; check OLLAMA_API_KEY", **kw)
    if "rate limit" in lower or "too many requests" in lower:
        return RateLimitedError(f"{where}: {message}", retry_after=retry_after, **kw)
    if in_stream:
        # A request Ollama accepted failed while it ran: the runner crashed, ran out
        # of memory or timed out. That is the server's failure, not the request's.
        return ServerError(f"{where} while streaming: {message}", **kw)
    return ApiError(f"{where}: {message}", **kw)


def classify_error(status: int, headers: Mapping[str, str], body: str, model: str = "") -> LlmError:
    """The typed error for a non-2xx answer from Ollama, naming the provider and ``model``."""
    return stamp(_read_error(status, headers, body, model), "ollama", model or None)


def _read_error(status: int, headers: Mapping[str, str], body: str, model: str = "") -> LlmError:
    """The error for a non-2xx answer from Ollama."""
    return error_from_event(
        error_summary(headers, body),
        model=model,
        status=status,
        body=body,
        retry_after=parse_retry_after(headers),
    )


# ---------------------------------------------------------------------------
# The provider.


class OllamaProvider(HttpProvider):
    """A model served by Ollama (local, or ollama.com with ``OLLAMA_API_KEY``).

    Speaks the native ``/api/chat`` NDJSON stream: thinking arrives as
    ``Reasoning``, tool calls whole. ``base_url`` (or ``OLLAMA_HOST``) is the host
    root, given as Ollama accepts it (``localhost``, ``host:port``,
    ``https://host``); ``options`` are Ollama's runtime options (``num_ctx``,
    ``temperature``, ``num_predict``, ...); ``think`` (``True``/``False`` or a
    level such as ``"high"``) overrides the mapping of the context's reasoning
    effort. ``use_openai_api=True`` talks to Ollama's OpenAI-compatible ``/v1``
    through :class:`OpenAiCompatibleProvider` instead.
    """

    provider_id = "ollama"
    label = "Ollama"
    default_model = "gemma3"
    default_base_url = DEFAULT_HOST
    key_variable = "OLLAMA_API_KEY"
    key_required = False
    base_url_variable = "OLLAMA_HOST"
    # format (a JSON Schema), tools left out for "none"; no strict, no forced choice.
    output_schema_route = "native"
    tool_choices = frozenset({"auto", "none"})

    def structured_support(self, context: Context) -> StructuredSupport:
        """``format`` on ``/api/chat``; through ``/v1`` (``use_openai_api``), ``response_format`` and ``auto`` only."""
        if self._openai is not None:
            return StructuredSupport("native", frozenset({"auto"}), strict=False)
        return super().structured_support(context)

    def __init__(
        self,
        api_key: Optional[str] = None,
        *,
        model: Optional[str] = None,
        base_url: Optional[str] = None,
        timeout: TimeoutSpec = None,
        max_retries: Optional[int] = None,
        options: Optional[Mapping[str, Any]] = None,
        think: Optional[Think] = None,
        use_openai_api: bool = False,
    ) -> None:
        raw = setting(base_url, "OLLAMA_HOST")
        host = ollama_host_url(raw) if raw and raw.strip().strip("\"'") else DEFAULT_HOST
        super().__init__(
            api_key,
            model=model,
            base_url=host,
            timeout=timeout,
            max_retries=max_retries,
        )
        if options is not None and not isinstance(options, Mapping):
            raise TypeError(f"options must be a dict of Ollama options, got {type(options).__name__}")
        if think is not None and not isinstance(think, (bool, str)):
            raise TypeError(f"think must be True, False or a level such as 'high', got {think!r}")
        self._options: Dict[str, Any] = dict(options or {})
        self._think = think
        self._openai: Optional[OpenAiCompatibleProvider] = None
        if use_openai_api:
            self._openai = self._openai_delegate()

    # -- configuration -----------------------------------------------------------

    @property
    def options(self) -> Dict[str, Any]:
        """A copy of the Ollama runtime options sent with every request."""
        return dict(self._options)

    @property
    def max_tokens(self) -> Optional[int]:
        """The ``num_predict`` option, when set."""
        n = self._options.get("num_predict")
        return n if isinstance(n, int) and not isinstance(n, bool) else None

    @property
    def temperature(self) -> Optional[float]:
        """The ``temperature`` option, when set."""
        t = self._options.get("temperature")
        return float(t) if isinstance(t, (int, float)) and not isinstance(t, bool) else None

    @property
    def think(self) -> Optional[Think]:
        return self._think

    @property
    def uses_openai_api(self) -> bool:
        return self._openai is not None

    def with_options(self, **options: Any) -> OllamaProvider:
        """A copy with these options added (a None value removes the option)."""
        merged = dict(self._options)
        for k, v in options.items():
            if v is None:
                merged.pop(k, None)
            else:
                merged[k] = v
        return self._rebuild(_options=merged)

    def with_think(self, think: Optional[Think]) -> OllamaProvider:
        return self._rebuild(_think=think)

    def with_temperature(self, temperature: Optional[float]) -> OllamaProvider:
        """A copy with the ``temperature`` option (None removes it)."""
        return self.with_options(temperature=self._check_temperature(temperature))

    def with_max_tokens(self, max_tokens: Optional[int]) -> OllamaProvider:
        """A copy with the ``num_predict`` option (None removes it)."""
        return self.with_options(num_predict=self._check_max_tokens(max_tokens))

    def with_model(self, model: str) -> OllamaProvider:
        if not model:
            raise ValueError("with_model needs a model name")
        return self._rebuild(_model=model)

    def with_base_url(self, base_url: str) -> OllamaProvider:
        return self._rebuild(_base_url=ollama_host_url(base_url))

    def _rebuild(self, **changes: Any) -> OllamaProvider:
        # The OpenAI-style delegate mirrors this configuration, so it is rebuilt too.
        new = self._replace(**changes)
        if new._openai is not None:
            new._openai = new._openai_delegate()
        return new

    def _openai_delegate(self) -> OpenAiCompatibleProvider:
        # /v1 takes no Ollama options; the two it has a field for are carried over.
        temperature = self._options.get("temperature")
        max_tokens = self._options.get("num_predict")
        return OpenAiCompatibleProvider(
            self._api_key,
            model=self._model,
            base_url=f"{self._base_url}/v1",
            timeout=self._timeouts,
            max_retries=self._retry.max_retries,
            temperature=temperature,
            max_tokens=max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else None,
        )

    def display_name(self) -> str:
        return f"{self.label} ({self._model})"

    def context_window(self) -> Optional[int]:
        # Ollama's window is whatever num_ctx the request sets; unknown otherwise.
        n = self._options.get("num_ctx")
        return int(n) if isinstance(n, int) and not isinstance(n, bool) else None

    def model(self) -> Optional[LlmModel]:
        return LlmModel(self.provider_id, self._model, display_name=f"Ollama {self._model}")

    def server_context_window(self, fetch: Fetch) -> Optional[int]:
        """What ``POST /api/show`` says of the model: its ``num_ctx`` parameter, else its context length.

        The ``num_ctx`` option (``with_options(num_ctx=...)``), when set, is
        :meth:`context_window` and wins. Without either, Ollama runs the model at
        the server's default ``num_ctx`` (``OLLAMA_CONTEXT_LENGTH``), which the API
        does not report and which may be smaller than the model's context length;
        Ollama then cuts the prompt rather than refusing it, so set ``num_ctx`` to
        make the check exact.
        """
        headers = {"content-type": "application/json", "accept": "application/json"}
        if self._api_key:
            headers["authorization"] = f"Bearer {self._api_key}"
        shown = fetch(HttpCall(f"{self._base_url}/api/show", headers, json_body({"model": self._model})))
        return show_window(shown)

    # -- streaming ---------------------------------------------------------------

    def classify_error(self, status: int, headers: Mapping[str, str], body: str) -> LlmError:
        if self._openai is not None:
            return self._openai.classify_error(status, headers, body)
        return classify_error(status, headers, body, self._model)

    def build_call(self, context: Context) -> Tuple[HttpCall, Parser]:
        if self._openai is not None:
            return self._openai.build_call(context)
        body = build_request(context, self._model, options=self._options, think=self._think)
        headers = {"content-type": "application/json", "accept": "application/x-ndjson"}
        if self._api_key:
            headers["authorization"] = f"Bearer {self._api_key}"
        call = HttpCall(
            f"{self._base_url}/api/chat", headers, json_body(body), framing="ndjson"
        )
        return call, parse_events
