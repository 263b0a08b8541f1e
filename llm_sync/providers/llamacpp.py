"""``LlamaCppProvider``: llama.cpp's own HTTP server (``llama-server``) through its chat-completions API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, FrozenSet, Mapping, Optional, TypeVar
from urllib.parse import urlsplit

from .._content import Text
from .._errors import JsonParsingError
from .._keys import setting
from .._messages import User
from .._transport._request import HttpCall
from ._base import Fetch, count_call, request_json
from .openai_compatible import OpenAiCompatibleProvider

if TYPE_CHECKING:
    from .._context import Context

__all__ = ["DEFAULT_HOST", "LlamaCppProvider", "llama_cpp_host_url"]

#: Where ``llama-server`` listens when started with no ``--host`` / ``--port``.
DEFAULT_HOST = "http://localhost:8080"
_DEFAULT_PORT = 8080
# HttpProvider insists on a model name; llama.cpp serving one model ignores the field,
# so the provider holds this placeholder internally and sends "" (see __init__).
_NO_MODEL = "\x00"
L = TypeVar("L", bound="LlamaCppProvider")


def llama_cpp_host_url(value: str) -> str:
    """The base URL for a ``LLAMA_CPP_HOST``-style value (host root, no API path).

    Accepts ``host``, ``host:port``, ``http(s)://host[:port]`` and a trailing ``/v1``
    (the OpenAI-style base many tools print), which is dropped because the provider
    appends ``/v1/chat/completions`` itself. Without a scheme ``http`` and port 8080
    (llama-server's default) are used; with a scheme the port is the scheme's own
    unless given. The bind-all addresses ``0.0.0.0`` and ``::`` (what the server is
    often started with) are reached as loopback. A path before ``/v1`` is kept for
    reverse proxies.
    """
    s = value.strip().strip("\"'").strip()
    if not s:
        return DEFAULT_HOST
    has_scheme = "://" in s
    parts = urlsplit(s if has_scheme else "http://" + s)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(
            f"LLAMA_CPP_HOST / base_url {value!r} needs an http:// or https:// address "
            "(or host:port)"
        )
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"LLAMA_CPP_HOST / base_url {value!r} has an invalid port") from None
    host = parts.hostname or "localhost"
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if port is None and not has_scheme:
        port = _DEFAULT_PORT
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    return f"{scheme}://{netloc}{path}"


class LlamaCppProvider(OpenAiCompatibleProvider):
    """A model served by llama.cpp's ``llama-server`` (or anything embedding it, such as xllamacpp).

    ``base_url`` (or ``LLAMA_CPP_HOST``) is the host root, written as
    ``localhost:8080``, ``http://host:port`` or with a trailing ``/v1``; the default
    is ``http://localhost:8080``. ``model`` may stay empty: a server with one model
    loaded answers with it whatever the name (a router-mode server with several
    models needs the name). ``api_key`` (or ``LLAMA_API_KEY``, the variable
    ``llama-server`` itself reads for ``--api-key``) is sent as a bearer token when
    given. ``context_window`` lets a caller that knows the server's ``n_ctx`` report it.

    On the wire: ``delta.reasoning_content`` becomes ``Reasoning`` (and earlier
    reasoning goes back as ``reasoning_content`` for templates that render it), the
    ``exceed_context_size_error`` body becomes ``ContextOverflowError`` with its
    ``n_prompt_tokens`` / ``n_ctx``, a 503 "Loading model" is a retryable
    ``ServerError``, and an ``{"error": ...}`` event inside the stream (the server
    sends one when the model's output breaks the tool-call grammar) is raised.
    ``Context.reasoning_effort`` is not sent: llama.cpp controls thinking through the
    chat template, not a request field. An output schema goes in ``response_format``
    (``json_schema``), which the server turns into a grammar: the reply is
    constrained to the schema token by token.
    """

    provider_id: ClassVar[str] = "llamacpp"
    label: ClassVar[str] = "llama.cpp"
    default_model: ClassVar[str] = ""
    default_base_url: ClassVar[str] = DEFAULT_HOST
    key_variable: ClassVar[Optional[str]] = "LLAMA_API_KEY"
    key_required: ClassVar[bool] = False
    base_url_variable: ClassVar[Optional[str]] = "LLAMA_CPP_HOST"
    chat_path: ClassVar[str] = "/v1/chat/completions"
    send_reasoning_effort: ClassVar[bool] = False
    # llama.cpp takes wav/mp3 input_audio parts for models loaded with an audio projector,
    # images with a vision projector, and no documents.
    accepts_audio: ClassVar[bool] = True
    inputs: ClassVar[Mapping[str, Optional[FrozenSet[str]]]] = {"image": None}
    # tool_choice is a word only (the server refuses an object); a named tool is sent
    # as that one tool with "required". Tool calls and response_format's json_schema are
    # grammar-constrained, so strict holds whatever the flag says.
    tool_choices: ClassVar[FrozenSet[str]] = frozenset({"auto", "none", "required"})

    def __init__(
        self,
        api_key: Optional[str] = None,
        *,
        model: Optional[str] = None,
        base_url: Optional[str] = None,
        context_window: Optional[int] = None,
        **options: Any,
    ) -> None:
        """``options`` are OpenAiCompatibleProvider's (``timeout``, ``max_tokens``, ``headers``, ...)."""
        if base_url is None and isinstance(api_key, str) and "://" in api_key:
            # LlamaCppProvider("http://localhost:8080"): an address is never a key.
            base_url, api_key = api_key, None
        raw = setting(base_url, "LLAMA_CPP_HOST")
        host = llama_cpp_host_url(raw) if raw else DEFAULT_HOST
        window = _check_window(context_window)
        super().__init__(api_key, model=model or _NO_MODEL, base_url=host, **options)
        self._model = model or ""
        self._context_window = window

    @property
    def model_name(self) -> str:
        return self._model

    def with_model(self: L, model: str) -> L:
        # Unlike hosted providers, "" is meaningful here: whatever the server has loaded.
        return self._replace(_model=model or "")

    def with_base_url(self: L, base_url: str) -> L:
        return self._replace(_base_url=llama_cpp_host_url(base_url))

    def with_context_window(self: L, context_window: Optional[int]) -> L:
        return self._replace(_context_window=_check_window(context_window))

    def display_name(self) -> str:
        return f"{self.label} ({self._model})" if self._model else self.label

    def context_window(self) -> Optional[int]:
        """The ``context_window`` given (llama.cpp models are not in the catalog)."""
        return self._context_window

    def exact_token_count(self, context: Context, fetch: Fetch) -> Optional[int]:
        """The server's own count: ``POST /apply-template`` with the chat request, then ``POST /tokenize``.

        The template is the one the server applies to ``/v1/chat/completions`` (tools
        and template options included, the generation prompt added), and the
        prompt is tokenized with special tokens parsed and BOS added as the server
        does for a completion, so the count equals the ``Usage.input_tokens`` the
        same server reports for the same context. Images and audio are turned into
        embeddings the tokenizer does not see: with those the estimate is given.
        """
        if any(
            not isinstance(b, Text) for m in context.messages if isinstance(m, User) for b in m.content
        ):
            return None
        call, _ = self.build_call(context)
        body = request_json(call)
        for generation_only in ("stream", "stream_options", "max_tokens", "temperature"):
            body.pop(generation_only, None)
        answer = fetch(count_call(call, f"{self._base_url}/apply-template", body))
        prompt = _field(answer, "prompt", str, "/apply-template")
        tokenize = {"content": prompt, "add_special": True, "parse_special": True}
        tokens = _field(fetch(count_call(call, f"{self._base_url}/tokenize", tokenize)), "tokens", list, "/tokenize")
        return len(tokens)

    def server_context_window(self, fetch: Fetch) -> Optional[int]:
        """The server's context size per request: ``GET /props`` ``default_generation_settings.n_ctx``."""
        headers = {"accept": "application/json"}
        if self._api_key:
            headers["authorization"] = f"Bearer {self._api_key}"
        props = fetch(HttpCall(f"{self._base_url}/props", headers, None, method="GET"))
        n = props.get("default_generation_settings", {}).get("n_ctx") if isinstance(props, dict) else None
        return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else None


def _field(answer: Any, key: str, kind: type, endpoint: str) -> Any:
    found = answer.get(key) if isinstance(answer, dict) else None
    if not isinstance(found, kind):
        raise JsonParsingError(f"llama.cpp's {endpoint} answered without {key!r}: {str(answer)[:200]!r}")
    return found


def _check_window(n: Optional[int]) -> Optional[int]:
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n <= 0):
        raise ValueError(f"context_window must be a positive int or None, got {n!r}")
    return n
