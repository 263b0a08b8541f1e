"""Google Vertex AI: the Gemini and Claude models of a Google Cloud project (``VertexGeminiProvider``, ``VertexAnthropicProvider``).

Both speak their vendor's own wire format (``gemini`` and ``anthropic`` build the
bodies and read the streams); this module adds the Vertex URL, the project and
location, and Google credentials. ``VertexProvider`` is the registry's ``vertex``
entry: building it picks the class from the model name, so ``vertex:gemini-2.5-flash``
is a ``VertexGeminiProvider`` and ``vertex:claude-sonnet-4-5@20250929`` a
``VertexAnthropicProvider``.
"""

from __future__ import annotations

import importlib.util
import json
import os
from typing import TYPE_CHECKING, Any, ClassVar, Dict, Mapping, Optional, Tuple, Type, TypeVar
from urllib.parse import quote

from .._call import Parser
from .._errors import LlmError, MissingApiKeyError, OAuthError, stamp
from .._keys import missing_settings, setting
from .._redact import SecretText, mask
from .._structured import StructuredSupport
from .._transport._request import HttpCall
from . import anthropic, gemini
from ._base import HttpProvider, json_body
from ._bearer import BearerToken, describe_source

if TYPE_CHECKING:
    from .._context import Context
    from .._timeouts import TimeoutSpec

__all__ = [
    "ANTHROPIC_VERSION",
    "DEFAULT_LOCATION",
    "LOCATION_VARIABLES",
    "PROJECT_VARIABLES",
    "SCOPE",
    "VertexAnthropicProvider",
    "VertexGeminiProvider",
    "VertexProvider",
    "vertex_host",
]

#: Where the project id is read from, in order (Google's SDKs, the AI SDK's, Anthropic's).
PROJECT_VARIABLES = ("GOOGLE_CLOUD_PROJECT", "GOOGLE_VERTEX_PROJECT", "ANTHROPIC_VERTEX_PROJECT_ID")
#: Where the location is read from, in order; none set means ``global``, as google-genai does.
LOCATION_VARIABLES = ("GOOGLE_CLOUD_LOCATION", "GOOGLE_VERTEX_LOCATION", "CLOUD_ML_REGION")
DEFAULT_LOCATION = "global"
#: The OAuth scope asked of application default credentials.
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
#: Claude on Vertex takes the API version in the body, not as a header.
ANTHROPIC_VERSION = "vertex-2023-10-16"

_AUTH_HINT = (
    "check the Google credentials (`gcloud auth application-default login`, "
    "GOOGLE_APPLICATION_CREDENTIALS, or token_provider= / api_key=) and that the account may use "
    "Vertex AI in this project"
)

V = TypeVar("V", bound="VertexProvider")


def vertex_host(location: str) -> str:
    """The Vertex AI host for ``location``: ``global`` has no region prefix."""
    if location == "global":
        return "https://aiplatform.googleapis.com"
    return f"https://{location}-aiplatform.googleapis.com"


def _is_claude(model: str) -> bool:
    return model.rsplit("/", 1)[-1].lower().startswith("claude")


def _class_for(model: str) -> Type[VertexProvider]:
    """The class ``vertex:<model>`` builds: by the model's family, gemini-* or claude-*."""
    if _is_claude(model):
        return VertexAnthropicProvider
    if model.rsplit("/", 1)[-1].lower().startswith("gemini"):
        return VertexGeminiProvider
    raise ValueError(
        f"vertex cannot tell which API the model {model!r} speaks (it knows gemini-* and claude-*); "
        "build VertexGeminiProvider or VertexAnthropicProvider directly"
    )


def _has_google_auth() -> bool:
    try:
        return importlib.util.find_spec("google.auth") is not None
    except ImportError:  # no "google" package at all
        return False


def _adc() -> Any:
    """Application default credentials with the cloud-platform scope (google-auth)."""
    try:
        import google.auth
        from google.auth import exceptions as google_errors
    except ImportError:
        raise MissingApiKeyError(
            "Vertex AI needs google-auth for application default credentials: "
            'pip install "llm-sync[vertex]", or pass api_key= (an access token) or token_provider=',
            provider="Vertex AI",
        ) from None
    try:
        creds, _project = google.auth.default(scopes=[SCOPE])
    except google_errors.GoogleAuthError as exc:
        raise OAuthError(
            f"no Google application default credentials ({exc}); run `gcloud auth "
            "application-default login`, set GOOGLE_APPLICATION_CREDENTIALS to a key file, or pass "
            "token_provider= / api_key=",
            provider="Vertex AI",
        ) from None
    return creds


def _scoped(creds: Any) -> Any:
    """google-auth credentials given by the caller, with the cloud-platform scope where they need one."""
    try:
        from google.auth.credentials import with_scopes_if_required
    except ImportError:  # an object shaped like Credentials without google-auth: used as it is
        return creds
    return with_scopes_if_required(creds, [SCOPE])  # type: ignore[no-untyped-call]


class VertexProvider(HttpProvider):
    """A model of a Google Cloud project on Vertex AI; ``VertexProvider(...)`` picks the class by model.

    ``VertexProvider(api_key=None, *, model="gemini-2.5-flash", project=None,
    location=None, token_provider=None, base_url=None, timeout=None,
    max_retries=None, max_tokens=None, temperature=None)``:

    - ``project``: ``GOOGLE_CLOUD_PROJECT`` (or ``GOOGLE_VERTEX_PROJECT``,
      ``ANTHROPIC_VERTEX_PROJECT_ID``) when None; required.
    - ``location``: ``GOOGLE_CLOUD_LOCATION`` (or ``GOOGLE_VERTEX_LOCATION``,
      ``CLOUD_ML_REGION``), else ``global``, whose host is
      ``aiplatform.googleapis.com``; a region such as ``us-east5`` is served by
      ``us-east5-aiplatform.googleapis.com``.
    - credentials, first found wins: ``api_key``, an OAuth access token used as it is;
      ``token_provider``, a callable returning a token or a google-auth
      ``Credentials`` object (a service account, say); else application default
      credentials through google-auth (the optional extra ``vertex``). Credentials
      are refreshed before they expire and once more after a 401.
    - ``base_url``: the host root (``GOOGLE_VERTEX_BASE_URL``, as google-genai reads it;
      a trailing ``/v1`` is accepted); ``/v1/projects/{project}/locations/{location}/
      publishers/...`` is appended.

    Instances are picklable when the token source is (a token, ADC, a picklable
    credentials object); the credentials are reloaded per process.
    """

    provider_id = "vertex"
    genai_provider_name = "gcp.vertex_ai"
    label = "Vertex AI"
    default_model = "gemini-2.5-flash"
    default_base_url = "https://{location}-aiplatform.googleapis.com"
    key_variable = None
    key_required = False
    base_url_variable = "GOOGLE_VERTEX_BASE_URL"
    #: The Vertex publisher of the models this class serves.
    publisher: ClassVar[str] = ""
    #: Other variables read for ``base_url``, after ``base_url_variable``.
    base_url_aliases: ClassVar[Tuple[str, ...]] = ()

    @classmethod
    def has_credentials(cls) -> bool:
        """True when a project is set and application default credentials exist (a key file, or gcloud's)."""
        if not setting(None, *PROJECT_VARIABLES):
            return False
        if setting(None, "GOOGLE_APPLICATION_CREDENTIALS"):
            return True
        gcloud = os.environ.get("CLOUDSDK_CONFIG") or os.path.join(os.path.expanduser("~"), ".config", "gcloud")
        return os.path.isfile(os.path.join(gcloud, "application_default_credentials.json"))

    def __new__(cls, *args: Any, **kwargs: Any) -> VertexProvider:
        if cls is VertexProvider:
            cls = _class_for(kwargs.get("model") or cls.default_model)
        return super().__new__(cls)

    def __init__(
        self,
        api_key: Optional[str] = None,
        *,
        model: Optional[str] = None,
        project: Optional[str] = None,
        location: Optional[str] = None,
        token_provider: Any = None,
        base_url: Optional[str] = None,
        timeout: TimeoutSpec = None,
        max_retries: Optional[int] = None,
        max_tokens: Optional[int] = None,
        temperature: Optional[float] = None,
    ) -> None:
        if api_key is not None and token_provider is not None:
            raise ValueError("pass api_key (an access token) or token_provider to Vertex AI, not both")
        if token_provider is not None:
            describe_source(token_provider)
        found_project = setting(project, *PROJECT_VARIABLES)
        found_location = (setting(location, *LOCATION_VARIABLES) or DEFAULT_LOCATION).strip()
        missing = []
        if not found_project:
            missing.append((PROJECT_VARIABLES[0], "the Google Cloud project id, or project="))
        if api_key is None and token_provider is None and not _has_google_auth():
            missing.append(
                ("credentials", 'pip install "llm-sync[vertex]" for application default credentials, '
                 "or pass api_key= (an access token) or token_provider=")
            )
        if missing:
            raise stamp(missing_settings("Vertex AI", missing), "vertex", None)
        _check_location(found_location)
        assert found_project is not None
        url = setting(base_url, "GOOGLE_VERTEX_BASE_URL", *self.base_url_aliases) or vertex_host(found_location)
        super().__init__(
            api_key,
            model=model,
            base_url=_host_root(url),
            timeout=timeout,
            max_retries=max_retries,
            max_tokens=max_tokens,
            temperature=temperature,
        )
        claude = _is_claude(self._model)
        if claude != (self.publisher == "anthropic"):
            raise ValueError(
                f"{self._model!r} is {'a Claude' if claude else 'not a Claude'} model: use "
                f"{'VertexAnthropicProvider' if claude else 'VertexGeminiProvider'} (or VertexProvider, which picks)"
            )
        self._project = found_project.strip()
        self._location = found_location
        self._token_source: Any = api_key.strip() if api_key is not None else token_provider
        self._bearer_ref: Optional[BearerToken] = None

    # -- configuration -----------------------------------------------------------

    @property
    def project(self) -> str:
        return self._project

    @property
    def location(self) -> str:
        return self._location

    def with_model(self: V, model: str) -> V:
        """A copy for ``model``; a Claude model gives a ``VertexAnthropicProvider``, a Gemini one a ``VertexGeminiProvider``."""
        new = super().with_model(model)
        target = VertexAnthropicProvider if _is_claude(model) else VertexGeminiProvider
        if type(new) is not target:
            # The two classes share every attribute: only the wire format differs.
            if new._max_tokens == type(self).default_max_tokens:
                object.__setattr__(new, "_max_tokens", target.default_max_tokens)  # the class default, not a choice
            object.__setattr__(new, "__class__", target)
            new._check_temperature(new._temperature)  # Claude takes at most 1.0
        return new

    def with_base_url(self: V, base_url: str) -> V:
        """A copy that talks to another host root (a trailing ``/v1`` is accepted)."""
        return super().with_base_url(_host_root(base_url))

    def with_location(self: V, location: str) -> V:
        """A copy in another location (the host follows, unless ``base_url`` was set to another one)."""
        _check_location(location)
        host = self._base_url
        if host == vertex_host(self._location):
            host = vertex_host(location)
        return self._replace(_location=location, _base_url=host)

    def __repr__(self) -> str:
        if self._token_source is None:
            who = "credentials=ADC"
        elif isinstance(self._token_source, str):
            who = f"api_key={mask(self._token_source)!r}"
        else:
            who = f"token_provider={type(self._token_source).__name__}"
        return (
            f"{type(self).__name__}(model={self._model!r}, project={self._project!r}, "
            f"location={self._location!r}, base_url={self._base_url!r}, {who})"
        )

    def __getstate__(self) -> Dict[str, Any]:
        state = super().__getstate__()
        state["_bearer_ref"] = None  # credentials are loaded again in the process that uses them
        return state

    # -- credentials ---------------------------------------------------------------

    def _bearer(self) -> BearerToken:
        found = self._bearer_ref
        if found is None:
            source = self._token_source
            if source is None:
                source = _adc()
            elif not isinstance(source, str) and describe_source(source) == "google":
                source = _scoped(source)
            label = "Google application default credentials" if self._token_source is None else "the Vertex AI token_provider"
            # Shared with copies made before this point is fine: BearerToken is thread-safe.
            found = self._bearer_ref = BearerToken(source, label=label, hint=_AUTH_HINT)
        return found

    def _quota_project(self) -> Optional[str]:
        bearer = self._bearer_ref
        quota = getattr(bearer.source, "quota_project_id", None) if bearer is not None else None
        return quota if isinstance(quota, str) and quota else None

    def request_headers(self, token: str) -> Dict[str, str]:
        """The request headers for ``token`` (secret: never log them)."""
        headers = {
            "authorization": SecretText(f"Bearer {token}"),
            "content-type": "application/json",
            "accept": "text/event-stream",
        }
        quota = self._quota_project()
        if quota:
            # Set by user credentials: bills the quota of this project rather than gcloud's.
            headers["x-goog-user-project"] = quota
        return headers

    def model_url(self, method: str) -> str:
        """``{base}/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{model}:{method}``."""
        return (
            f"{self._base_url}/v1/projects/{quote(self._project, safe='')}/locations/"
            f"{quote(self._location, safe='')}/publishers/{self.publisher}/models/"
            f"{quote(self._model, safe='@.')}:{method}"
        )

    def _call(self, url: str, body: bytes, framing: Any) -> HttpCall:
        def prepare(call: HttpCall) -> HttpCall:
            # Per attempt: the token is refreshed when it is about to expire, even
            # between a retry's attempts.
            return call.replace(headers=self.request_headers(self._bearer().get()))

        def on_unauthorized(sent: HttpCall) -> bool:
            return self._bearer().renew(sent.headers["authorization"][len("Bearer ") :])

        return HttpCall(url, {}, body, framing=framing, prepare=prepare, on_unauthorized=on_unauthorized)

    def _google_error(self, status: int, headers: Mapping[str, str], body: str) -> LlmError:
        return gemini._read_error(
            status,
            headers,
            body,
            self._model,
            label="Vertex AI",
            key_hint=_AUTH_HINT,
            models_hint=f"and that location {self._location!r} serves it in project {self._project!r}",
        )


class VertexGeminiProvider(VertexProvider):
    """Gemini on Vertex AI: ``:streamGenerateContent?alt=sse`` under ``publishers/google/models/{model}``.

    The request and the stream are Gemini's own (``llm_sync.providers.gemini``):
    thought signatures are kept and replayed, tool calls stream, and Vertex's
    streamed function-call arguments (``partialArgs``) are assembled.
    """

    publisher = "google"
    genai_operation = "generate_content"
    default_model = "gemini-2.5-flash"
    inputs = gemini.GeminiProvider.inputs  # Gemini's parts: inlineData images, audio, documents
    output_schema_route = "native"
    tool_choices = gemini.SUPPORT.choices
    strict_tools = True

    def structured_support(self, context: Context) -> StructuredSupport:
        """As Gemini's (:func:`llm_sync.providers.gemini.support_for`): the body is Gemini's."""
        return gemini.support_for(self._model, context)

    def classify_error(self, status: int, headers: Mapping[str, str], body: str) -> LlmError:
        return self._google_error(status, headers, body)

    def request_body(self, context: Context) -> Dict[str, Any]:
        """The JSON body for ``context`` (what ``stream_response`` sends)."""
        return gemini.build_request(
            context,
            self._model,
            max_tokens=self._max_tokens,
            temperature=self._temperature,
            replay_for=f"{self.provider_id}:{self._model}",
        )

    def build_call(self, context: Context) -> Tuple[HttpCall, Parser]:
        body = json_body(self.request_body(context))
        # Lines, not SSE events, as for Gemini: see the note above gemini.parse_events.
        return self._call(self.model_url("streamGenerateContent") + "?alt=sse", body, "ndjson"), gemini.parse_events


class VertexAnthropicProvider(VertexProvider):
    """Claude on Vertex AI: ``:streamRawPredict`` under ``publishers/anthropic/models/{model}``.

    The body is the Messages API's (``llm_sync.providers.anthropic``) without
    ``model``, which is in the URL, and with ``anthropic_version:
    "vertex-2023-10-16"``; the stream is the Messages API's server-sent events.
    Model ids are Vertex's (``claude-sonnet-4-5@20250929``, ``claude-opus-4-6``).
    The system prompt carries a ``cache_control`` marker as with Anthropic; the
    request-level automatic-caching marker is not sent (Vertex documents the
    block markers only). Errors from Google's front end (quota, permissions, an
    unknown model) are read in Google's shape, the model's own in Anthropic's.
    """

    publisher = "anthropic"
    default_model = "claude-sonnet-4-5@20250929"
    inputs = anthropic.AnthropicProvider.inputs  # the Messages API's image and document blocks
    output_schema_route = "native"
    tool_choices = anthropic.SUPPORT.choices
    strict_tools = True
    default_max_tokens = anthropic.DEFAULT_MAX_TOKENS
    max_temperature = 1.0
    base_url_aliases = ("ANTHROPIC_VERTEX_BASE_URL",)

    def structured_support(self, context: Context) -> StructuredSupport:
        """As Anthropic's (:func:`llm_sync.providers.anthropic.support_for`): the body is the Messages API's."""
        return anthropic.support_for(self._model)

    def classify_error(self, status: int, headers: Mapping[str, str], body: str) -> LlmError:
        try:
            parsed = json.loads(body) if body.strip() else None
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and parsed.get("type") == "error":
            return anthropic._read_error(status, headers, body, self._model, label="Vertex AI (Claude)")
        if gemini._error_object(parsed) is not None:
            return self._google_error(status, headers, body)
        return anthropic._read_error(status, headers, body, self._model, label="Vertex AI (Claude)")

    def request_body(self, context: Context) -> Dict[str, Any]:
        """The JSON body for ``context`` (what ``stream_response`` sends)."""
        body = anthropic.build_request(
            context,
            model=self._model,
            max_tokens=self._max_tokens,
            temperature=self._temperature,
            replay_for=f"{self.provider_id}:{self._model}",
        )
        del body["model"]  # in the URL
        body.pop("cache_control", None)
        body["anthropic_version"] = ANTHROPIC_VERSION
        return body

    def build_call(self, context: Context) -> Tuple[HttpCall, Parser]:
        body = json_body(self.request_body(context))
        return self._call(self.model_url("streamRawPredict"), body, "sse"), anthropic.parse_events


def _check_location(location: str) -> None:
    # It goes into the host name and the path: a region name, nothing else.
    if not location or not location.replace("-", "").isalnum():
        raise ValueError(f"location {location!r} for Vertex AI is not a region name such as 'us-east5' or 'global'")


def _host_root(url: str) -> str:
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url
