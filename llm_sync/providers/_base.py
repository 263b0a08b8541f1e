"""The provider interface (``StreamingModelProvider``) and the base every HTTP provider shares."""

from __future__ import annotations

import copy
import json
from abc import ABC, abstractmethod
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    ClassVar,
    FrozenSet,
    Mapping,
    Optional,
    Tuple,
    TypeVar,
)

from .._call import Parser, http_source
from .._catalog import lookup
from .._errors import ApiRequestError, LlmError, MissingApiKeyError, stamp
from .._exchange import fetch_json
from .._inputs import InputTypes, check_content
from .._keys import load_dotenv_from_cwd, optional_key, require_key, setting
from .._observe import StreamInfo, watcher
from .._redact import mask, register_secret
from .._retry import RetryPolicy
from .._stream import LlmResponseStream
from .._structured import StructuredSupport, plan, read_answer
from .._timeouts import Timeouts, TimeoutSpec, as_timeouts
from .._tokens import TokenCount, overflow
from .._transport._frame import DEFAULT_MAX_EVENT_BYTES
from .._transport._http import Transport, default_classifier

if TYPE_CHECKING:
    import threading

    from .._context import Context
    from .._model import LlmModel
    from .._transport._request import HttpCall

__all__ = ["Fetch", "HttpProvider", "StreamingModelProvider", "count_call", "json_body", "request_json"]

P = TypeVar("P", bound="HttpProvider")

#: Sends one request that is not streamed and returns its decoded JSON answer, with
#: the provider's retries, timeouts, typed errors and the caller's cancel event.
Fetch = Callable[["HttpCall"], Any]


class StreamingModelProvider(ABC):
    """Anything that turns a ``Context`` into a stream of ``LlmResponse`` chunks."""

    @abstractmethod
    def stream_response(self, context: Context) -> LlmResponseStream:
        """Start the request now and return the stream of its answer."""

    @abstractmethod
    def display_name(self) -> str:
        """A human label such as ``"Anthropic (claude-sonnet-4-5)"``."""

    def context_window(self) -> Optional[int]:
        """The model's context window in tokens, when known."""
        return None

    def model(self) -> Optional[LlmModel]:
        """The catalog entry of the model, when known."""
        return None

    # -- token counts and fit checks -----------------------------------------------

    def count_tokens(self, context: Context, *, cancel: Optional[threading.Event] = None) -> TokenCount:
        """How many input tokens ``context`` makes for this provider's model.

        Here the estimate (``exact=False``); HTTP providers with a count endpoint ask
        it (``exact=True``). Synchronous: it returns when the count is known;
        ``cancel`` (a ``threading.Event``) set from another thread stops the request
        and raises ``concurrent.futures.CancelledError``.
        """
        return TokenCount(context.estimated_token_count(), exact=False)

    def effective_context_window(self, *, cancel: Optional[threading.Event] = None) -> Optional[int]:
        """The window :meth:`check_fits` compares with: :meth:`context_window` here.

        Local servers that know their own window (llama.cpp's ``n_ctx``, an Ollama
        model's context length) are asked when ``context_window()`` is unknown.
        """
        return self.context_window()

    def check_fits(
        self,
        context: Context,
        *,
        max_output: Optional[int] = None,
        cancel: Optional[threading.Event] = None,
    ) -> TokenCount:
        """Raise ``ContextOverflowError`` if ``context`` does not fit the model's window; else its count.

        Nothing is sent to the model: the count is :meth:`count_tokens` (exact where
        the provider has a count endpoint), the window :meth:`effective_context_window`.
        ``max_output`` reserves that many tokens for the answer. With no known window
        there is nothing to check and the count is returned.
        """
        count = self.count_tokens(context, cancel=cancel)
        window = self.effective_context_window(cancel=cancel)
        err = overflow(count, window, max_output=max_output, who=self.display_name())
        if err is not None:
            found = self.model()
            raise stamp(err, found.provider if found else None, found.model_id if found else None)
        return count


class HttpProvider(StreamingModelProvider):
    """Configuration shared by the HTTP providers: key, model, base URL, limits, timeouts, retries.

    A subclass sets the class attributes below and implements :meth:`build_call`,
    which turns a ``Context`` into an :class:`~llm_sync.providers.HttpCall` and the
    parser of its answer; it may override :meth:`classify_error` to read its
    provider's error bodies. Everything else (the reader thread, retries before
    content, timeouts, closing, errors named after the provider and model) is shared.

    Instances are immutable (the ``with_*`` methods return copies), thread-safe,
    picklable (configuration only) and safe across ``fork``: the requests Session
    is created on first use, per process, and shared by copies.
    """

    #: The provider id used in model strings and thread names: ``"anthropic"``.
    provider_id: ClassVar[str] = ""
    #: The human name in ``display_name()`` and error messages.
    label: ClassVar[str] = ""
    default_model: ClassVar[str] = ""
    default_base_url: ClassVar[str] = ""
    #: The variable holding the key; None for servers that need none.
    key_variable: ClassVar[Optional[str]] = None
    #: Other variables read for the key, in order, when ``key_variable`` is unset.
    key_aliases: ClassVar[Tuple[str, ...]] = ()
    key_required: ClassVar[bool] = True
    base_url_variable: ClassVar[Optional[str]] = None
    #: The catalog provider whose entries describe this provider's models, when it
    #: differs from ``provider_id``; providers with no catalog entries get None answers.
    catalog_provider: ClassVar[Optional[str]] = None
    #: ``max_tokens`` when none is given (None: the server's own default).
    default_max_tokens: ClassVar[Optional[int]] = None
    #: The highest temperature the API takes.
    max_temperature: ClassVar[float] = 2.0
    #: How an output schema (``Context.set_output_schema``) travels: ``"native"`` (the
    #: provider's own structured-output field, mapped by :meth:`build_call`), ``"tool"``
    #: (a forced single tool, read back as the answer text), ``"json"`` (JSON mode and the
    #: schema in the instructions), or None: refused with ``ApiRequestError``.
    output_schema_route: ClassVar[Optional[str]] = None
    #: The ``Context.tool_choice`` values :meth:`build_call` can send: from ``"auto"``,
    #: ``"none"``, ``"required"`` and ``"tool"`` (a named tool). Others are refused.
    tool_choices: ClassVar[FrozenSet[str]] = frozenset({"auto"})
    #: Whether :meth:`build_call` sends ``ToolDefinition.strict`` (else strict tools are refused).
    strict_tools: ClassVar[bool] = False
    #: What a user message may carry besides text: content kind (``"image"``,
    #: ``"audio"``, ``"document"``) -> the MIME types taken (None: any). Other kinds,
    #: and kinds the model's catalog entry does not list, are refused with
    #: ``UnsupportedContentError`` before anything is sent (:meth:`check_content`).
    inputs: ClassVar[Mapping[str, Optional[FrozenSet[str]]]] = {"image": None}
    #: The OpenTelemetry GenAI names of this provider's streams (``llm_sync.otel``):
    #: ``gen_ai.provider.name`` (None: the provider id), ``gen_ai.operation.name``,
    #: and the wire API (``"chat_completions"`` or ``"responses"``) when it is OpenAI's.
    genai_provider_name: ClassVar[Optional[str]] = None
    genai_operation: ClassVar[str] = "chat"
    genai_api: ClassVar[Optional[str]] = None

    def __init__(
        self,
        api_key: Optional[str] = None,
        *,
        model: Optional[str] = None,
        base_url: Optional[str] = None,
        timeout: TimeoutSpec = None,
        max_retries: Optional[int] = None,
        max_tokens: Optional[int] = None,
        temperature: Optional[float] = None,
    ) -> None:
        if self.key_variable is not None and self.key_required:
            try:
                key: Optional[str] = require_key(api_key, self.key_variable, self.label, *self.key_aliases)
            except MissingApiKeyError as err:
                raise stamp(err, self.provider_id, None) from None
        else:
            key = optional_key(api_key, self.key_variable, self.label, *self.key_aliases)
        if api_key is not None and not api_key.strip():
            raise ValueError(f"api_key for {self.label} is empty; pass a key or leave it None")
        self._api_key = key
        self._model = model or self.default_model
        if not self._model:
            raise ValueError(f"{self.label} needs a model name: pass model=")
        url = setting(base_url, self.base_url_variable) if self.base_url_variable else base_url
        self._base_url = _check_url(url or self.default_base_url, self.label)
        self._timeouts = as_timeouts(timeout)
        self._retry = RetryPolicy() if max_retries is None else RetryPolicy(max_retries=max_retries)
        self._max_tokens = self._check_max_tokens(
            max_tokens if max_tokens is not None else self.default_max_tokens
        )
        self._temperature = self._check_temperature(temperature)
        self._transport_ref: Optional[Transport] = None
        self._max_event_bytes = DEFAULT_MAX_EVENT_BYTES

    # -- configuration -----------------------------------------------------------

    @classmethod
    def has_credentials(cls) -> bool:
        """Whether this provider looks callable now without arguments: its key is set (or none is needed).

        Reads the environment and a ``.env``, sends nothing; providers with sign-ins or
        credential chains of their own (Codex, Bedrock, Vertex) look for those instead.
        """
        if cls.key_variable is None or not cls.key_required:
            return True
        return setting(None, cls.key_variable, *cls.key_aliases) is not None

    @classmethod
    def from_env(cls: type[P], **kwargs: Any) -> P:
        """Build from the environment, after loading a ``.env`` that never overrides set variables."""
        load_dotenv_from_cwd()
        return cls(**kwargs)

    @property
    def model_name(self) -> str:
        return self._model

    @property
    def api_key(self) -> Optional[str]:
        """The key this provider sends, None when it has none (a secret: never log it)."""
        return self._api_key

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def timeouts(self) -> Timeouts:
        return self._timeouts

    @property
    def retry_policy(self) -> RetryPolicy:
        return self._retry

    @property
    def max_tokens(self) -> Optional[int]:
        """The cap on the answer's length in tokens (None: the server's default)."""
        return self._max_tokens

    @property
    def temperature(self) -> Optional[float]:
        """The sampling temperature (None: the server's default)."""
        return self._temperature

    def _replace(self: P, **changes: Any) -> P:
        new = copy.copy(self)
        for name, v in changes.items():
            object.__setattr__(new, name, v)
        return new

    def with_model(self: P, model: str) -> P:
        if not model:
            raise ValueError("with_model needs a model name")
        return self._replace(_model=model)

    def with_base_url(self: P, base_url: str) -> P:
        return self._replace(_base_url=_check_url(base_url, self.label))

    def with_timeout(self: P, timeout: TimeoutSpec) -> P:
        return self._replace(_timeouts=as_timeouts(timeout))

    def with_max_retries(self: P, max_retries: int) -> P:
        return self._replace(_retry=RetryPolicy(max_retries=max_retries))

    def with_max_tokens(self: P, max_tokens: Optional[int]) -> P:
        """A copy that caps answers at ``max_tokens`` (None: the provider's default)."""
        return self._replace(
            _max_tokens=self._check_max_tokens(
                max_tokens if max_tokens is not None else self.default_max_tokens
            )
        )

    def with_temperature(self: P, temperature: Optional[float]) -> P:
        """A copy with ``temperature`` (None: the API's default)."""
        return self._replace(_temperature=self._check_temperature(temperature))

    def with_max_event_bytes(self: P, limit: int) -> P:
        """Refuse (with ``StreamReadError``) any single event larger than ``limit`` bytes.

        The default, 16 MiB, bounds the memory one runaway event can take; raise it
        only for a server that really sends events that large.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"max_event_bytes must be a positive int, got {limit!r}")
        return self._replace(_max_event_bytes=limit)

    def _check_max_tokens(self, v: Optional[int]) -> Optional[int]:
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"max_tokens for {self.label} must be a positive int or None, got {v!r}")
        return v

    def _check_temperature(self, v: Optional[float]) -> Optional[float]:
        if v is None:
            return None
        top = self.max_temperature
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= top:
            raise ValueError(
                f"temperature for {self.label} must be a number between 0 and {top:g} or None, got {v!r}"
            )
        return float(v)

    def display_name(self) -> str:
        return f"{self.label} ({self._model})"

    def model(self) -> Optional[LlmModel]:
        """The catalog entry of this provider's model; None when the catalog lacks it."""
        return lookup(self.catalog_provider or self.provider_id, self._model)

    def context_window(self) -> Optional[int]:
        """The catalog's context window for this provider's model, when known."""
        # Straight from the catalog, so a subclass's own model() does not hide it.
        found = lookup(self.catalog_provider or self.provider_id, self._model)
        return found.context_window if found is not None else None

    def __repr__(self) -> str:
        key = f", api_key={mask(self._api_key)!r}" if self._api_key else ""
        return f"{type(self).__name__}(model={self._model!r}, base_url={self._base_url!r}{key})"

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_transport_ref"] = None  # sockets do not travel
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self._api_key:
            register_secret(self._api_key)

    def _transport(self) -> Transport:
        t = self._transport_ref
        if t is None:
            # Shared with copies made before this point is fine: a Session is thread-safe.
            t = self._transport_ref = Transport()
        return t

    # -- streaming ---------------------------------------------------------------

    @abstractmethod
    def build_call(self, context: Context) -> Tuple[HttpCall, Parser]:
        """The HTTP request for ``context`` and the parser of its frames (nothing is sent)."""

    def classify_error(self, status: int, headers: Mapping[str, str], body: str) -> LlmError:
        """The typed error for a non-2xx answer; the default reads the status and common JSON shapes."""
        return default_classifier(status, headers, body, provider=self.label or None)

    def structured_support(self, context: Context) -> StructuredSupport:
        """What this provider (for its model and ``context``) can send: output schema route, tool choices, strict tools.

        The class attributes :attr:`output_schema_route`, :attr:`tool_choices` and
        :attr:`strict_tools`; a provider whose models differ overrides this.
        """
        return StructuredSupport(self.output_schema_route, self.tool_choices, self.strict_tools)

    def prepare_call(self, context: Context) -> Tuple[HttpCall, Parser]:
        """:meth:`build_call` after the shared structured-output and tool-choice rules: what is sent.

        The output schema, tool choice and strict tools are fitted to
        :meth:`structured_support` (the forced-tool route adds the tool and reads its
        call back as text); what the provider cannot express raises ``ApiRequestError``.
        """
        planned, answer = plan(context, self.structured_support(context), self.label or type(self).__name__)
        call, parse = self.build_call(planned)
        if answer is not None:
            parse = read_answer(parse, answer)
        return call, parse

    def stream_response(self, context: Context) -> LlmResponseStream:
        """Send the request for a snapshot of ``context`` and return the stream of its answer."""
        snapshot = context.copy()
        schema = snapshot.output_schema
        try:
            self.check_content(snapshot)
            call, parse = self.prepare_call(snapshot)
            if call.classify is None:
                call = call.replace(classify=self.classify_error)
        except LlmError as err:
            # Raised on first iteration, like every other failure; nothing was sent.
            return LlmResponseStream(
                None,
                provider=self.provider_id,
                model=self._model,
                timeouts=self._timeouts,
                error=err,
                output_schema=schema,
                info=self._stream_info(None, snapshot),
            )
        source = http_source(
            call,
            parse,
            transport=self._transport(),
            timeouts=self._timeouts,
            retry=self._retry,
            max_event_bytes=self._max_event_bytes,
        )
        return LlmResponseStream(
            source,
            provider=self.provider_id,
            model=self._model,
            timeouts=self._timeouts,
            output_schema=schema,
            info=self._stream_info(call.url, snapshot),
        )

    def _stream_info(self, url: Optional[str], snapshot: Context) -> Optional[StreamInfo]:
        """What instrumentation is told of a stream; None (not even built) while none is on."""
        if watcher() is None:
            return None
        return StreamInfo(
            self.provider_id,
            self._model,
            url=url,
            genai_provider=self.genai_provider_name,
            operation=self.genai_operation,
            api=self._genai_api(),
            max_tokens=self._max_tokens,
            temperature=self._temperature,
            context=snapshot,
        )

    def _genai_api(self) -> Optional[str]:
        return self.genai_api

    # -- content checks, token counts, fit checks -----------------------------------

    def input_types(self) -> InputTypes:
        """What this provider takes besides text (see :attr:`inputs`)."""
        return self.inputs

    def check_content(self, context: Context) -> None:
        """Raise ``UnsupportedContentError`` for user content this provider or its catalog model cannot take.

        Run by :meth:`stream_response` and :meth:`count_tokens` before anything is
        built or sent; the error names the provider, the model and the block.
        """
        check_content(
            context,
            self.input_types(),
            label=self.label or self.provider_id,
            provider=self.provider_id,
            model=self._model,
            entry=lookup(self.catalog_provider or self.provider_id, self._model),
        )

    def fetch_json(self, call: HttpCall, *, cancel: Optional[threading.Event] = None) -> Any:
        """Send ``call`` (not streamed) and return its decoded JSON answer.

        The provider's transport, timeouts, retries and typed errors apply (the
        call's ``classify``, else :meth:`classify_error`); see :meth:`count_tokens`
        for ``cancel``.
        """
        if call.classify is None:
            call = call.replace(classify=self.classify_error)
        return fetch_json(
            call,
            transport=self._transport(),
            timeouts=self._timeouts,
            retry=self._retry,
            max_bytes=self._max_event_bytes,
            provider=self.provider_id,
            model=self._model,
            cancel=cancel,
        )

    def _fetcher(self, cancel: Optional[threading.Event]) -> Fetch:
        return lambda call: self.fetch_json(call, cancel=cancel)

    def count_tokens(self, context: Context, *, cancel: Optional[threading.Event] = None) -> TokenCount:
        """How many input tokens ``context`` makes for this provider's model.

        Exact (``exact=True``) from the provider's count endpoint where it has one
        (:meth:`exact_token_count`), sent with the same key, retries, timeouts and
        typed errors as a stream; otherwise ``Context.estimated_token_count()`` with
        ``exact=False``. Content the provider cannot take raises
        ``UnsupportedContentError`` first, as a stream would.

        Synchronous and cancellable: the request runs on a reader thread while the
        caller waits; setting ``cancel`` (a ``threading.Event``) from any thread
        stops it within 50 ms, shuts its socket down and raises
        ``concurrent.futures.CancelledError``; ``Timeouts.first_event`` (or ``total``)
        bounds the wait with ``RequestTimeoutError``; Ctrl-C interrupts it.
        """
        snapshot = context.copy()
        self.check_content(snapshot)
        exact = self.exact_token_count(snapshot, self._fetcher(cancel))
        if exact is None:
            return TokenCount(snapshot.estimated_token_count(), exact=False)
        return TokenCount(exact, exact=True)

    def exact_token_count(self, context: Context, fetch: Fetch) -> Optional[int]:
        """The exact input-token count of ``context`` from the provider's count endpoint; None when it has none.

        Providers with one override this: build the count request (usually from
        :meth:`build_call`'s body, via :func:`count_call`) and send it with ``fetch``.
        """
        return None

    def effective_context_window(self, *, cancel: Optional[threading.Event] = None) -> Optional[int]:
        """:meth:`context_window`, or when that is unknown, what the server says (:meth:`server_context_window`)."""
        window = self.context_window()
        if window is None:
            window = self.server_context_window(self._fetcher(cancel))
        return window

    def server_context_window(self, fetch: Fetch) -> Optional[int]:
        """The window the server reports for the model (local servers override this); None here."""
        return None

    def check_fits(
        self,
        context: Context,
        *,
        max_output: Optional[int] = None,
        cancel: Optional[threading.Event] = None,
    ) -> TokenCount:
        """Raise ``ContextOverflowError(requested_tokens, max_tokens)`` if ``context`` does not fit; else its count.

        Nothing is sent to the model: the count is :meth:`count_tokens` (exact where
        the provider has a count endpoint), the window the catalog's, or the server's
        for llama.cpp (``/props`` ``n_ctx``) and Ollama (``/api/show``) when
        ``context_window()`` does not know it. ``max_output`` reserves that many
        tokens for the answer. With no known window the count is returned unchecked.
        """
        count = self.count_tokens(context, cancel=cancel)
        window = self.effective_context_window(cancel=cancel)
        err = overflow(count, window, max_output=max_output, who=self.display_name())
        if err is not None:
            raise stamp(err, self.provider_id, self._model or None)
        return count


def count_call(call: HttpCall, url: str, body: Mapping[str, Any], *, keep: Optional[FrozenSet[str]] = None) -> HttpCall:
    """``call`` (a streaming request from ``build_call``) turned into a JSON request to ``url``.

    The headers (credentials included) and ``prepare`` (signing) stay; ``body``
    goes out instead, reduced to the fields in ``keep`` when given (count endpoints
    refuse the generation-only ones: ``stream``, ``max_tokens``, ...); ``accept``
    asks for JSON.
    """
    if keep is not None:
        body = {k: v for k, v in body.items() if k in keep}
    headers = {k: v for k, v in call.headers.items() if k.lower() != "accept"}
    headers["accept"] = "application/json"
    return call.replace(url=url, headers=headers, body=json_body(body), method="POST")


def request_json(call: HttpCall) -> Any:
    """The JSON body of ``call`` as built (to derive a count request from a streaming one)."""
    return json.loads(call.body or b"{}")


def json_body(body: Mapping[str, Any]) -> bytes:
    """``body`` as compact UTF-8 JSON, or ``ApiRequestError`` naming what could not be encoded."""
    try:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ApiRequestError(f"the request could not be encoded as JSON: {exc}") from exc


def _check_url(url: str, label: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"base_url {url!r} for {label} needs an http:// or https:// prefix")
    return url.rstrip("/")
