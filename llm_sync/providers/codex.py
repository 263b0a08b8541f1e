"""The Codex backend of a ChatGPT subscription (``POST {base}/responses``, Responses events): ``CodexProvider``."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Dict, Iterator, Mapping, Optional, Tuple, Union

from .._call import Parser
from .._errors import ApiError, InvalidApiKeyError, LlmError, OAuthError, RateLimitedError
from .._redact import mask, register_secret
from ._base import HttpProvider
from .openai import build_responses_body, parse_responses_events
from .openai import classify_error as responses_classify_error

if TYPE_CHECKING:
    import os

    from .._context import Context
    from .._response import LlmResponse
    from .._timeouts import TimeoutSpec
    from .._transport._frame import Frame
    from .._transport._request import HttpCall
    from ..codex import CodexCredentials, CredentialStore, OAuthEndpoints, TokenManager

__all__ = [
    "DEFAULT_INSTRUCTIONS",
    "CodexProvider",
    "build_request",
    "classify_error",
    "has_credentials",
    "login",
    "parse_events",
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
    ``strict``, text verbosity ``medium``, ``prompt_cache_key`` from the context.
    """
    body = build_responses_body(
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
    body["text"] = {"format": {"type": "text"}, "verbosity": "medium"}
    return body


def parse_events(frames: Iterator[Frame], model: Optional[str] = None) -> Iterator[LlmResponse]:
    """Codex stream events are Responses events: the OpenAI parser, labelled Codex."""
    return parse_responses_events(frames, provider="codex", model=model, label="Codex")


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
    model: Optional[str],
    *,
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
    kw: Dict[str, Any] = {"provider": "codex", "model": model, "status": status, "body": body}
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
        from .._transport._http import error_summary

        return InvalidApiKeyError(
            f"Codex rejected the ChatGPT token (HTTP {status}): {error_summary(headers, body)}; {token_hint}",
            **kw,
        )
    if isinstance(parsed, dict) and "detail" in parsed and not isinstance(err, dict):
        detail = parsed["detail"]
        text = detail if isinstance(detail, str) else json.dumps(detail)
        if status < 500 and status != 429:
            from .._errors import overflow_error

            over = overflow_error(
                text,
                f"the prompt does not fit the model's context window: {text}; shorten the "
                "conversation (Context.with_compacted_summary) or use a model with a larger window",
                **kw,
            )
            if over is not None:
                return over
            return ApiError(f"Codex refused the request (HTTP {status}): {text}", **kw)
    return responses_classify_error(
        status,
        headers,
        body,
        model,
        provider="codex",
        label="Codex",
        key_variable="the ChatGPT sign-in",
    )


def login(open_browser: bool = True, device_code: bool = False, **kwargs: Any) -> CodexCredentials:
    """``llm_sync.codex.login`` (kept here too: the CLI looks for it next to the provider)."""
    from ..codex import login as _login

    return _login(open_browser, device_code, **kwargs)


def has_credentials() -> bool:
    """True when a ChatGPT sign-in is stored (llm_sync's own or the Codex CLI's)."""
    from ..codex import has_credentials as _has

    return _has()


class CodexProvider(HttpProvider):
    """GPT models through a ChatGPT subscription's Codex backend.

    Credentials come from ``api_key`` (an access token used as is, never
    refreshed), else ``credentials`` (a ``CredentialStore`` or the path of a
    credential file), else ``llm_sync.codex.default_store()``: llm_sync's own
    sign-in, or the Codex CLI's ``$CODEX_HOME/auth.json``. Stored tokens are
    refreshed when expired and once after a 401. ``issuer`` (or ``endpoints``)
    points the refresh at another authorization server. ``account_id`` overrides
    the ``chatgpt-account-id`` taken from the token; ``instructions`` is sent when
    the context has no System message.
    """

    provider_id = "codex"
    label = "Codex"
    default_model = "gpt-5.5"
    default_base_url = "https://chatgpt.com/backend-api/codex"
    key_variable = None
    key_required = False
    base_url_variable = "CODEX_BASE_URL"

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
        from ..codex import CredentialStore, OAuthEndpoints

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
        from ..codex import default_store

        return default_store()

    def _manager(self) -> Optional[TokenManager]:
        """The shared token manager, or None for a fixed ``api_key``; OAuthError without a sign-in."""
        from ..codex import token_manager

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

    def headers(self, access_token: str, account_id: Optional[str]) -> Dict[str, str]:
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

    def build_body(self, context: Context) -> Dict[str, Any]:
        """The request body for ``context`` (what ``stream_response`` sends)."""
        return build_request(context, self._model, instructions=self._instructions)

    def build_call(self, context: Context) -> Tuple[HttpCall, Parser]:
        from .._transport._request import HttpCall
        from ..codex import account_id_from_token

        body = json.dumps(self.build_body(context), ensure_ascii=False).encode("utf-8")
        model = self._model
        manager = self._manager()
        hint = LOGIN_HINT if manager is not None else "pass a current ChatGPT access token as api_key="

        def classify(status: int, headers: Mapping[str, str], text: str) -> LlmError:
            return classify_error(status, headers, text, model, token_hint=hint)

        def parse(frames: Iterator[Frame]) -> Iterator[LlmResponse]:
            return parse_events(frames, model)

        url = f"{self._base_url}/responses"
        if manager is None:
            assert self._api_key is not None  # no manager means a fixed access token
            register_secret(self._api_key)
            headers = self.headers(self._api_key, account_id_from_token(self._api_key))
            return HttpCall(url, headers, body, framing="sse", classify=classify), parse

        def prepare(call: HttpCall) -> HttpCall:
            # Per attempt: a retry after a long backoff may need a refreshed token.
            creds = manager.credentials()
            return call.replace(headers=self.headers(creds.access_token, creds.header_account_id()))

        def on_unauthorized(sent: HttpCall) -> bool:
            # The server refused a token we believed valid (revoked, or refreshed
            # elsewhere): refresh exactly that one, unless another thread already has.
            manager.refresh_rejected(sent.headers["authorization"][len("Bearer ") :])
            return True

        # The backend may answer without an SSE content type; the framing says SSE regardless.
        call = HttpCall(
            url,
            {},
            body,
            framing="sse",
            classify=classify,
            prepare=prepare,
            on_unauthorized=on_unauthorized,
        )
        return call, parse
