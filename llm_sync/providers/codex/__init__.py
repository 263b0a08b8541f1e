"""The Codex backend of a ChatGPT subscription (``POST {base}/responses``, Responses events): ``CodexProvider``.

Sign-in (``login``), the credential store and token refresh live in ``_oauth``; the
names a caller needs are exported here.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Tuple, Union

from ..._call import Parser
from ..._errors import (
    ApiError,
    InvalidApiKeyError,
    LlmError,
    OAuthError,
    RateLimitedError,
    overflow_error,
)
from ..._redact import mask
from ..._transport._http import error_summary
from ..._transport._request import HttpCall
from .._base import HttpProvider, json_body
from .._responses import build_request as build_responses_request
from .._responses import classify_error as responses_classify_error
from .._responses import parse_events
from .._turn import OVERFLOW_HINT
from ._oauth import (
    CodexCredentials,
    CredentialStore,
    OAuthEndpoints,
    TokenManager,
    account_id_from_token,
    codex_auth_path,
    default_store,
    has_credentials,
    login,
    own_store_path,
    token_manager,
)

if TYPE_CHECKING:
    import os

    from ..._context import Context
    from ..._timeouts import TimeoutSpec

__all__ = [
    "DEFAULT_INSTRUCTIONS",
    "CodexCredentials",
    "CodexProvider",
    "CredentialStore",
    "OAuthEndpoints",
    "TokenManager",
    "build_request",
    "classify_error",
    "default_store",
    "has_credentials",
    "login",
    "token_manager",
]

#: Sent when the context has no System message: the backend refuses a request without
#: instructions ("Instructions are required").
DEFAULT_INSTRUCTIONS = "You are a helpful assistant."
LOGIN_HINT = "run `llm-sync login codex` to sign in with ChatGPT again"


def build_request(
    context: Context,
    model: str,
    *,
    instructions: str = DEFAULT_INSTRUCTIONS,
    default_effort: str = "medium",
) -> Dict[str, Any]:
    """The JSON body for ``context``: the Responses body as the Codex backend wants it.

    ``store: false`` (the backend keeps nothing, so encrypted reasoning is asked for
    and replayed to the same ``codex:<model>``), ``instructions`` always present,
    reasoning effort ``medium`` unless the context sets one, tools without
    ``strict`` (unless a tool is strict), text verbosity ``medium`` with the output
    schema in ``text.format`` (``json_schema``, as the Codex CLI's ``--output-schema``
    sends it), ``prompt_cache_key`` from the context.
    """
    body = build_responses_request(
        context,
        model,
        reasoning_model=f"codex:{model}",
        include_encrypted=True,
        tool_strict=None,
        default_effort=default_effort,
        label="Codex",
    )
    if not body.get("instructions"):
        body["instructions"] = instructions
    fmt = body.get("text", {}).get("format", {"type": "text"})
    body["text"] = {"format": fmt, "verbosity": "medium"}
    return body


def _duration(seconds: float) -> str:
    s = int(seconds)
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min" if minutes else f"{s} s"


def classify_error(
    status: int,
    headers: Mapping[str, str],
    body: str,
    *,
    model: Optional[str] = None,
    token_hint: str = LOGIN_HINT,
) -> LlmError:
    """The typed error for a non-2xx answer from the Codex backend.

    Besides the OpenAI ``{"error": {...}}`` shape it reads FastAPI's ``{"detail": ...}``
    (400 "Instructions are required") and the ChatGPT plan's ``usage_limit_reached``
    429, whose ``resets_in_seconds`` becomes ``RateLimitedError.resets_in_seconds``
    (and ``retry_after``, so the engine waits only when the reset is near).
    ``token_hint`` is the fix named in a 401/403 message.
    """
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    err = parsed.get("error") if isinstance(parsed, dict) else None
    kw: Dict[str, Any] = {"status": status, "body": body}
    if isinstance(err, dict) and err.get("type") in ("usage_limit_reached", "usage_not_included"):
        message = str(err.get("message") or "The usage limit has been reached")
        plan = err.get("plan_type")
        resets = err.get("resets_in_seconds")
        resets_at = err.get("resets_at")
        if not isinstance(resets, (int, float)) and isinstance(resets_at, (int, float)):
            resets = max(0.0, resets_at - time.time())
        text = f"Codex refused the request (HTTP {status}): {message}"
        if plan:
            text += f" on the {plan} plan"
        if isinstance(resets, (int, float)):
            text += f"; it resets in {_duration(resets)}"
            if isinstance(resets_at, (int, float)):
                text += time.strftime(" (at %Y-%m-%d %H:%M UTC)", time.gmtime(resets_at))
        if err.get("type") == "usage_not_included":
            return ApiError(text + "; the ChatGPT plan does not include Codex", **kw)
        return RateLimitedError(
            text,
            retry_after=float(resets) if isinstance(resets, (int, float)) else None,
            resets_in_seconds=float(resets) if isinstance(resets, (int, float)) else None,
            **kw,
        )
    if status in (401, 403):
        return InvalidApiKeyError(
            f"Codex rejected the ChatGPT token (HTTP {status}): {error_summary(headers, body)}; {token_hint}",
            **kw,
        )
    if isinstance(parsed, dict) and "detail" in parsed and not isinstance(err, dict):
        detail = parsed["detail"]
        text = detail if isinstance(detail, str) else json.dumps(detail)
        if status < 500 and status != 429:
            over = overflow_error(
                text, f"the prompt does not fit the model's context window: {text}; {OVERFLOW_HINT}", **kw
            )
            if over is not None:
                return over
            return ApiError(f"Codex refused the request (HTTP {status}): {text}", **kw)
    return responses_classify_error(
        status, headers, body, model=model, label="Codex", key_variable="the ChatGPT sign-in"
    )


class CodexProvider(HttpProvider):
    """GPT models through a ChatGPT subscription's Codex backend.

    Credentials come from ``api_key`` (an access token used as is, never
    refreshed), else ``credentials`` (a ``CredentialStore`` or the path of a
    credential file), else :func:`default_store`: llm_sync's own
    sign-in, or the Codex CLI's ``$CODEX_HOME/auth.json``. Stored tokens are
    refreshed when expired and once after a 401. ``issuer`` (or ``endpoints``)
    points the refresh at another authorization server. ``account_id`` overrides
    the ``chatgpt-account-id`` taken from the token; ``instructions`` is sent when
    the context has no System message.
    """

    provider_id = "codex"
    genai_provider_name = "openai"
    genai_api = "responses"
    label = "Codex"
    default_model = "gpt-5.5"
    default_base_url = "https://chatgpt.com/backend-api/codex"
    key_variable = None
    key_required = False
    base_url_variable = "CODEX_BASE_URL"
    # The Responses dialect: input_image and input_file parts. No token count: the
    # subscription backend does not serve responses/input_tokens, so count_tokens
    # gives the estimate.
    inputs = {"image": None, "document": None}
    output_schema_route = "native"
    tool_choices = frozenset({"auto", "none", "required", "tool"})
    strict_tools = True

    def __init__(
        self,
        api_key: Optional[str] = None,
        *,
        model: Optional[str] = None,
        credentials: Union[CredentialStore, str, os.PathLike[str], None] = None,
        base_url: Optional[str] = None,
        timeout: TimeoutSpec = None,
        max_retries: Optional[int] = None,
        issuer: Optional[str] = None,
        endpoints: Optional[OAuthEndpoints] = None,
        account_id: Optional[str] = None,
        instructions: str = DEFAULT_INSTRUCTIONS,
        originator: str = "codex_cli_rs",
    ) -> None:
        super().__init__(
            api_key, model=model, base_url=base_url, timeout=timeout, max_retries=max_retries
        )
        self._endpoints = endpoints or OAuthEndpoints.for_issuer(
            issuer or "https://auth.openai.com"
        )
        self._account_id = account_id
        self._instructions = instructions or DEFAULT_INSTRUCTIONS
        self._originator = originator
        # Resolved at each request when not given, so a sign-in made after the provider
        # was built is used.
        self._store: Optional[CredentialStore] = None
        if credentials is not None:
            self._store = (
                credentials
                if isinstance(credentials, CredentialStore)
                else CredentialStore(credentials)
            )

    @classmethod
    def has_credentials(cls) -> bool:
        """True when a ChatGPT sign-in is stored, or a sign-in file exists (llm_sync's own, the Codex CLI's)."""
        return has_credentials() or any(path.is_file() for path in (codex_auth_path(), own_store_path()))

    def __repr__(self) -> str:
        who = (
            f"api_key={mask(self._api_key)!r}"
            if self._api_key
            else f"credentials={str(self._store.path) if self._store else 'default'!r}"
        )
        return f"CodexProvider(model={self._model!r}, base_url={self._base_url!r}, {who})"

    @property
    def credential_store(self) -> Optional[CredentialStore]:
        """Where the tokens come from now; None when an access token was passed as ``api_key``."""
        if self._api_key is not None:
            return None
        if self._store is not None:
            return self._store
        return default_store()

    def _manager(self) -> Optional[TokenManager]:
        """The shared token manager, or None for a fixed ``api_key``; OAuthError without a sign-in."""
        store = self.credential_store
        if store is None:
            return None
        if not store.exists():
            raise OAuthError(
                f"no Codex (ChatGPT) credentials found (looked in {store.path}"
                + ("" if self._store is not None else " and the Codex CLI's auth.json")
                + "); run `llm-sync login codex` to sign in with ChatGPT, or pass api_key=",
                provider="codex",
                model=self._model,
            )
        return token_manager(store, self._endpoints)

    def _check_max_tokens(self, v: Optional[int]) -> Optional[int]:
        if v is not None:
            raise ValueError(
                "the Codex backend takes no max_tokens (it refuses max_output_tokens with a 400); "
                "leave it unset"
            )
        return None

    def _check_temperature(self, v: Optional[float]) -> Optional[float]:
        if v is not None:
            raise ValueError(
                "the Codex backend serves reasoning models, which take no temperature; leave it unset"
            )
        return None

    def request_headers(self, access_token: str, account_id: Optional[str]) -> Dict[str, str]:
        """The request headers for ``access_token`` (secret: never log them)."""
        h = {
            "authorization": f"Bearer {access_token}",
            "content-type": "application/json",
            "accept": "text/event-stream",
            "openai-beta": "responses=experimental",
            "originator": self._originator,
        }
        account = self._account_id or account_id
        if account:
            h["chatgpt-account-id"] = account
        return h

    def request_body(self, context: Context) -> Dict[str, Any]:
        """The request body for ``context`` (what ``stream_response`` sends)."""
        return build_request(context, self._model, instructions=self._instructions)

    def classify_error(self, status: int, headers: Mapping[str, str], body: str) -> LlmError:
        hint = LOGIN_HINT if self._api_key is None else "pass a current ChatGPT access token as api_key="
        return classify_error(status, headers, body, model=self._model, token_hint=hint)

    def build_call(self, context: Context) -> Tuple[HttpCall, Parser]:
        body = json_body(self.request_body(context))
        manager = self._manager()
        url = f"{self._base_url}/responses"
        if manager is None:
            assert self._api_key is not None  # no manager means a fixed access token
            headers = self.request_headers(self._api_key, account_id_from_token(self._api_key))
            return HttpCall(url, headers, body, framing="sse"), parse_events

        def prepare(call: HttpCall) -> HttpCall:
            # Per attempt: a retry after a long backoff may need a refreshed token.
            creds = manager.credentials()
            return call.replace(headers=self.request_headers(creds.access_token, creds.header_account_id()))

        def on_unauthorized(sent: HttpCall) -> bool:
            # The server refused a token we believed valid (revoked, or refreshed
            # elsewhere): refresh exactly that one, unless another thread already has.
            manager.refresh_rejected(sent.headers["authorization"][len("Bearer ") :])
            return True

        # The backend may answer without an SSE content type; the framing says SSE regardless.
        call = HttpCall(url, {}, body, framing="sse", prepare=prepare, on_unauthorized=on_unauthorized)
        return call, parse_events
