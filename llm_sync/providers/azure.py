"""Azure OpenAI: a resource's deployments over chat completions or the Responses API (``AzureOpenAiProvider``)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Dict, FrozenSet, List, Mapping, Optional, Tuple
from urllib.parse import quote

from .._call import Parser
from .._errors import ApiError, InvalidApiKeyError, LlmError, RateLimitedError, stamp
from .._keys import missing_settings, setting
from .._redact import SecretText, mask
from .._retry import parse_retry_after
from .._transport._http import error_summary
from .._transport._request import HttpCall
from . import _chat, _responses
from ._base import HttpProvider, json_body
from ._bearer import BearerToken, describe_source

if TYPE_CHECKING:
    from .._context import Context
    from .._timeouts import TimeoutSpec

__all__ = [
    "API_VERSION_VARIABLE",
    "DEPLOYMENT_VARIABLE",
    "ENDPOINT_VARIABLE",
    "ENTRA_SCOPE",
    "KEY_VARIABLE",
    "TOKEN_VARIABLE",
    "AzureOpenAiProvider",
    "classify_error",
    "filtered_categories",
]

#: The variable the OpenAI SDK's ``AzureOpenAI`` reads for ``api-version``.
API_VERSION_VARIABLE = "OPENAI_API_VERSION"
#: The Entra ID scope of Azure OpenAI (Cognitive Services) tokens.
ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"
#: A static Entra ID token, as the OpenAI SDK reads it.
TOKEN_VARIABLE = "AZURE_OPENAI_AD_TOKEN"
KEY_VARIABLE = "AZURE_OPENAI_API_KEY"
ENDPOINT_VARIABLE = "AZURE_OPENAI_ENDPOINT"
DEPLOYMENT_VARIABLE = "AZURE_OPENAI_DEPLOYMENT"

# The first api-version with stream_options.include_usage and max_completion_tokens.
_USAGE_VERSION = "2024-09-01"
_V1 = "v1"
_APIS = ("chat", "responses")
_RETRY_SECONDS = re.compile(r"retry after (\d{1,7}) second")


def filtered_categories(result: Any) -> List[str]:
    """``["sexual (high)", "jailbreak"]``: the categories a ``content_filter_result(s)`` object filtered."""
    out: List[str] = []
    if not isinstance(result, Mapping):
        return out
    for name, verdict in result.items():
        if isinstance(verdict, Mapping) and verdict.get("filtered") is True:
            severity = verdict.get("severity")
            out.append(f"{name} ({severity})" if isinstance(severity, str) and severity != "safe" else str(name))
    return out


def _reset_seconds(headers: Mapping[str, str], message: str) -> Optional[float]:
    """The wait Azure asked for: ``retry-after-ms``/``Retry-After``, its token-reset header, or the message."""
    found = parse_retry_after(headers)
    if found is not None:
        return found
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in ("x-ratelimit-reset-tokens", "x-rate-limit-reset-tokens", "x-ratelimit-reset-requests"):
        value = lowered.get(name)
        if value is not None:
            try:
                return max(0.0, float(value))
            except ValueError:
                pass
    m = _RETRY_SECONDS.search(message[:2000].lower())
    return float(m.group(1)) if m else None


def classify_error(
    status: int,
    headers: Mapping[str, str],
    body: str,
    *,
    deployment: Optional[str] = None,
    api: str = "chat",
    api_version: str = _V1,
    auth_hint: str = "check AZURE_OPENAI_API_KEY or api_key=",
) -> LlmError:
    """The typed error for a non-2xx answer from Azure OpenAI.

    Azure's own cases first: a prompt its content filter refused (400 ``content_filter``
    with ``innererror.content_filter_result``), a deployment that does not exist, a
    refused key or token, and a 429 whose wait is in ``retry-after-ms``/``Retry-After``,
    its token-reset header or the message ("Please retry after 6 seconds"). The rest
    (context overflow, other 4xx, 5xx) is read as the dialect's error body.
    """
    try:
        parsed = json.loads(body) if body.strip() else None
    except ValueError:
        parsed = None
    err: Mapping[str, Any] = {}
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        err = parsed["error"]
    code = str(err.get("code") or "")
    message = str(err.get("message") or "") or error_summary(headers, body)
    inner = err.get("innererror") or err.get("inner_error")
    inner = inner if isinstance(inner, Mapping) else {}
    kw: Dict[str, Any] = {"status": status, "body": body}
    if code == "content_filter" or inner.get("code") == "ResponsibleAIPolicyViolation":
        categories = filtered_categories(inner.get("content_filter_result") or inner.get("content_filter_results"))
        which = f"; filtered: {', '.join(categories)}" if categories else ""
        return ApiError(
            f"Azure OpenAI's content filter refused the prompt (HTTP {status}): {message}{which}; rephrase "
            "the prompt, or change the content filter configuration of the deployment",
            **kw,
        )
    if status in (401, 403):
        return InvalidApiKeyError(f"Azure OpenAI refused the credentials (HTTP {status}): {message}; {auth_hint}", **kw)
    if status == 404 and code == "DeploymentNotFound":
        return ApiError(
            f"Azure OpenAI has no deployment {deployment!r} on this resource (HTTP 404): {message}; check "
            f"the deployment name (model= or {DEPLOYMENT_VARIABLE}) and AZURE_OPENAI_ENDPOINT",
            **kw,
        )
    if status == 404:
        form = "the v1 API" if api_version in (_V1, "preview", "latest") else f"api-version {api_version}"
        return ApiError(
            f"Azure OpenAI answered HTTP 404: {message}; check AZURE_OPENAI_ENDPOINT and that {form} "
            f"offers the {'Responses' if api == 'responses' else 'chat completions'} API for this resource",
            **kw,
        )
    if status == 429:
        return RateLimitedError(
            f"Azure OpenAI is rate limiting this deployment (HTTP 429): {message}",
            retry_after=_reset_seconds(headers, message),
            **kw,
        )
    if api == "responses":
        return _responses.classify_error(
            status, headers, body, model=deployment, label="Azure OpenAI", key_variable="AZURE_OPENAI_API_KEY"
        )
    return _chat.classify_error(
        status, headers, body, model=deployment, label="Azure OpenAI", key_variable="AZURE_OPENAI_API_KEY"
    )


def _endpoint(url: str) -> Tuple[str, bool]:
    """``(resource endpoint, whether it named the v1 API)`` from what the caller gave."""
    if "?" in url or "/deployments/" in url:
        raise ValueError(
            f"base_url {url!r} for Azure OpenAI should be the resource endpoint "
            "(https://<resource>.openai.azure.com), not a request URL: pass the deployment as "
            "model= and the version as api_version="
        )
    url = url.rstrip("/")
    if url.endswith("/openai/v1"):
        return url[: -len("/openai/v1")], True
    if url.endswith("/openai"):
        return url[: -len("/openai")], False
    return url, False


class AzureOpenAiProvider(HttpProvider):
    """A deployment of an Azure OpenAI (or Azure AI Foundry) resource.

    ``model`` is the **deployment name** (``AZURE_OPENAI_DEPLOYMENT`` when left None),
    ``base_url`` the resource endpoint ``https://<resource>.openai.azure.com``
    (``AZURE_OPENAI_ENDPOINT``). Credentials, first found wins: ``api_key`` sent as the
    ``api-key`` header (``AZURE_OPENAI_API_KEY``); ``token_provider`` for Microsoft Entra
    ID, sent as a bearer token: a callable returning a token (azure-identity's
    ``get_bearer_token_provider(...)``) or a ``TokenCredential`` such as
    ``DefaultAzureCredential()`` (asked for the Cognitive Services scope, reused until
    shortly before it expires, renewed once after a 401); else a static token in
    ``AZURE_OPENAI_AD_TOKEN``.

    ``api`` picks ``"chat"`` (chat completions, the default: every deployment has it)
    or ``"responses"`` (the Responses API, with reasoning replay). ``api_version``
    (``OPENAI_API_VERSION``) picks the URL form: left unset, or ``"v1"``, the v1 API
    (``/openai/v1/chat/completions``, ``/openai/v1/responses``; the deployment goes in
    the body's ``model``); ``"preview"`` the v1 API with ``?api-version=preview``; a
    dated version (``"2024-10-21"``, ``"2025-04-01-preview"``) the deployment URL
    ``/openai/deployments/{deployment}/chat/completions?api-version=...`` (and
    ``/openai/responses?api-version=...``). ``encrypted_reasoning`` as for
    ``OpenAiProvider`` (None: decided by the deployment name, which Azure lets you
    choose freely, so set it for a reasoning model deployed under another name).

    Azure's content filters: an answer the filter stopped ends with
    ``Done(StopReason.CONTENT_FILTER, "content_filter")``; a prompt it refused is an
    ``ApiError`` naming the filtered categories. Azure's annotation chunks
    (``prompt_filter_results``, asynchronous-filter ``content_filter_results``) are
    read past.
    """

    provider_id = "azure"
    # Both APIs are the OpenAI dialects: text.format / response_format json_schema,
    # tool_choice, strict tools.
    output_schema_route = "native"
    tool_choices = frozenset({"auto", "none", "required", "tool"})
    strict_tools = True
    genai_provider_name = "azure.ai.openai"
    label = "Azure OpenAI"
    default_model = ""
    default_base_url = ""
    key_variable = KEY_VARIABLE
    key_required = False
    base_url_variable = ENDPOINT_VARIABLE

    def input_types(self) -> Mapping[str, Optional[FrozenSet[str]]]:
        """Images and documents: any file type over the Responses API, PDFs over chat completions."""
        if self._api == "responses":
            return {"image": None, "document": None}
        return {"image": None, "document": frozenset({"application/pdf"})}

    def __init__(
        self,
        api_key: Optional[str] = None,
        *,
        model: Optional[str] = None,
        base_url: Optional[str] = None,
        api_version: Optional[str] = None,
        api: str = "chat",
        token_provider: Any = None,
        timeout: TimeoutSpec = None,
        max_retries: Optional[int] = None,
        max_tokens: Optional[int] = None,
        temperature: Optional[float] = None,
        encrypted_reasoning: Optional[bool] = None,
    ) -> None:
        if api not in _APIS:
            raise ValueError(f"api for Azure OpenAI must be 'chat' or 'responses', not {api!r}")
        if api_key is not None and token_provider is not None:
            raise ValueError("pass api_key or token_provider to AzureOpenAiProvider, not both")
        if token_provider is not None:
            describe_source(token_provider)  # a bad kind is a TypeError now, not at the first request
        endpoint = setting(base_url, ENDPOINT_VARIABLE)
        deployment = setting(model, DEPLOYMENT_VARIABLE)
        key = setting(api_key, KEY_VARIABLE) if token_provider is None else None
        static_token = setting(None, TOKEN_VARIABLE) if token_provider is None and not key else None
        missing = []
        if not endpoint:
            missing.append((ENDPOINT_VARIABLE, "the resource endpoint, or base_url="))
        if not deployment:
            missing.append((DEPLOYMENT_VARIABLE, "the deployment name, or model= / 'azure:<deployment>'"))
        if not key and token_provider is None and not static_token:
            missing.append(
                (KEY_VARIABLE, f"the key, or api_key=; for Entra ID token_provider= or {TOKEN_VARIABLE}")
            )
        if missing:
            raise stamp(missing_settings("Azure OpenAI", missing), "azure", None)
        assert endpoint is not None and deployment is not None
        root, named_v1 = _endpoint(endpoint)
        version = setting(api_version, API_VERSION_VARIABLE) or _V1
        if named_v1 and not self._is_v1(version):
            raise ValueError(
                f"base_url {endpoint!r} names the v1 API but api_version is {version!r}: pass the resource "
                "endpoint alone for a dated api-version, or leave api_version unset for v1"
            )
        super().__init__(
            key or None,
            model=deployment,
            base_url=root,
            timeout=timeout,
            max_retries=max_retries,
            max_tokens=max_tokens,
            temperature=temperature,
        )
        if token_provider is not None:
            self._api_key = None  # an AZURE_OPENAI_API_KEY in the environment does not win over it
        source = token_provider if token_provider is not None else (None if key else static_token)
        self._bearer: Optional[BearerToken] = (
            BearerToken(
                source,
                scopes=(ENTRA_SCOPE,),
                label="the Azure OpenAI token_provider" if token_provider is not None else TOKEN_VARIABLE,
                hint="check the Entra ID sign-in (az login, a managed identity) and its role on the resource",
            )
            if source is not None
            else None
        )
        self._api_version = version
        self._api = api
        self._encrypted_reasoning = encrypted_reasoning

    @staticmethod
    def _is_v1(version: str) -> bool:
        return version in (_V1, "preview", "latest")

    # -- configuration -----------------------------------------------------------

    @property
    def deployment(self) -> str:
        """The deployment name (the same as ``model_name``)."""
        return self._model

    @property
    def api(self) -> str:
        """``"chat"`` or ``"responses"``."""
        return self._api

    def _genai_api(self) -> Optional[str]:
        return "responses" if self._api == "responses" else "chat_completions"

    @property
    def api_version(self) -> str:
        """``"v1"``, ``"preview"`` or a dated api-version."""
        return self._api_version

    def with_api(self, api: str) -> AzureOpenAiProvider:
        """A copy that talks to the other API (``"chat"`` or ``"responses"``) of the same deployment."""
        if api not in _APIS:
            raise ValueError(f"api for Azure OpenAI must be 'chat' or 'responses', not {api!r}")
        return self._replace(_api=api)

    def with_base_url(self, base_url: str) -> AzureOpenAiProvider:
        """A copy for another resource endpoint (``https://<resource>.openai.azure.com``)."""
        root, named_v1 = _endpoint(base_url)
        if named_v1 and not self._is_v1(self._api_version):
            raise ValueError(f"base_url {base_url!r} names the v1 API but api_version is {self._api_version!r}")
        return super().with_base_url(root)

    def __repr__(self) -> str:
        who = f", api_key={mask(self._api_key)!r}" if self._api_key else ", token_provider=..."
        return (
            f"AzureOpenAiProvider(deployment={self._model!r}, base_url={self._base_url!r}, "
            f"api={self._api!r}, api_version={self._api_version!r}{who})"
        )

    # -- the request -------------------------------------------------------------

    def request_url(self) -> str:
        """The URL the request goes to (no secret in it)."""
        root = f"{self._base_url}/openai"
        version = self._api_version
        path = "responses" if self._api == "responses" else "chat/completions"
        if version == _V1:
            return f"{root}/v1/{path}"
        if self._is_v1(version):
            return f"{root}/v1/{path}?api-version={quote(version)}"
        if self._api == "responses":
            return f"{root}/responses?api-version={quote(version)}"
        return f"{root}/deployments/{quote(self._model, safe='')}/chat/completions?api-version={quote(version)}"

    def _modern(self) -> bool:
        # Dated versions sort as text; the v1 API has everything.
        return self._is_v1(self._api_version) or self._api_version[:10] >= _USAGE_VERSION

    def request_body(self, context: Context) -> Dict[str, Any]:
        """The JSON body for ``context`` (what ``stream_response`` sends)."""
        if self._api == "responses":
            return _responses.build_request(
                context,
                self._model,
                reasoning_model=f"{self.provider_id}:{self._model}",
                include_encrypted=self._encrypted_reasoning,
                max_tokens=self._max_tokens,
                temperature=self._temperature,
                label=self.label,
            )
        modern = self._modern()
        body = _chat.build_request(
            context,
            self._model,
            include_usage=modern,  # older api-versions refuse stream_options
            prompt_cache_key=False,  # not a chat-completions field every api-version takes
            reasoning_field=None,  # Azure takes no reasoning text back
            max_tokens=self._max_tokens,
            temperature=self._temperature,
        )
        if modern and "max_tokens" in body:
            # Reasoning deployments refuse max_tokens; every model takes max_completion_tokens.
            body["max_completion_tokens"] = body.pop("max_tokens")
        return body

    def request_headers(self, token: Optional[str] = None) -> Dict[str, str]:
        """The request headers (the credential included: never log them)."""
        headers = {"content-type": "application/json", "accept": "text/event-stream"}
        if token is not None:
            headers["authorization"] = SecretText(f"Bearer {token}")
        elif self._api_key:
            headers["api-key"] = SecretText(self._api_key)
        return headers

    def classify_error(self, status: int, headers: Mapping[str, str], body: str) -> LlmError:
        hint = (
            "check the Entra ID token (token_provider=, AZURE_OPENAI_AD_TOKEN) and its role on the resource"
            if self._bearer is not None
            else "check AZURE_OPENAI_API_KEY or api_key= (a key of this resource)"
        )
        return classify_error(
            status,
            headers,
            body,
            deployment=self._model,
            api=self._api,
            api_version=self._api_version,
            auth_hint=hint,
        )

    def build_call(self, context: Context) -> Tuple[HttpCall, Parser]:
        body = json_body(self.request_body(context))
        parse: Parser = _responses.parse_events if self._api == "responses" else _chat.parse_events
        bearer = self._bearer
        if bearer is None:
            return HttpCall(self.request_url(), self.request_headers(), body, framing="sse"), parse

        def prepare(call: HttpCall) -> HttpCall:
            # Per attempt, so a retry after a long wait carries a token that is still valid.
            return call.replace(headers=self.request_headers(bearer.get()))

        def on_unauthorized(sent: HttpCall) -> bool:
            return bearer.renew(sent.headers["authorization"][len("Bearer ") :])

        call = HttpCall(
            self.request_url(), {}, body, framing="sse", prepare=prepare, on_unauthorized=on_unauthorized
        )
        return call, parse
