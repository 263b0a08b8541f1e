"""ChatGPT sign-in for the Codex backend: login (browser with PKCE, or device code), credential storage and token refresh."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Dict, Mapping, Optional, Tuple, Union
from urllib.parse import parse_qs, urlencode, urlsplit

from ..._errors import OAuthError
from ..._redact import mask, register_secret

__all__ = [
    "CLIENT_ID",
    "DEFAULT_ISSUER",
    "CodexCredentials",
    "CredentialStore",
    "OAuthEndpoints",
    "TokenManager",
    "account_id_from_token",
    "codex_auth_path",
    "decode_jwt_claims",
    "default_store",
    "has_credentials",
    "login",
    "own_store_path",
    "token_manager",
]

_log = logging.getLogger(__name__)

#: The Codex CLI's public OAuth client id (a public client: no secret).
CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
DEFAULT_ISSUER = "https://auth.openai.com"
SCOPE = "openid profile email offline_access"
#: The scope the Codex CLI asks for when refreshing.
REFRESH_SCOPE = "openid profile email"
#: The port of the registered redirect URI ``http://localhost:1455/auth/callback``.
CALLBACK_PORT = 1455
CALLBACK_PATH = "/auth/callback"
ORIGINATOR = "codex_cli_rs"
#: The JWT claim holding the ChatGPT account.
AUTH_CLAIM = "https://api.openai.com/auth"
#: A token this close to its expiry is refreshed first, so it does not expire in flight.
EXPIRY_SKEW = 60.0
_HTTP_TIMEOUT = 30.0
_LOGIN_HINT = "run `llm-sync login codex` (or `codex login`) to sign in with ChatGPT"


@dataclass(frozen=True)
class OAuthEndpoints:
    """Where the sign-in talks to; ``for_issuer`` derives them all from one origin (tests use loopback)."""

    authorize_url: str
    token_url: str
    device_code_url: str
    device_token_url: str
    device_verification_url: str
    device_redirect_uri: str

    @classmethod
    def for_issuer(cls, issuer: str = DEFAULT_ISSUER) -> OAuthEndpoints:
        base = issuer.rstrip("/")
        return cls(
            authorize_url=f"{base}/oauth/authorize",
            token_url=f"{base}/oauth/token",
            device_code_url=f"{base}/api/accounts/deviceauth/usercode",
            device_token_url=f"{base}/api/accounts/deviceauth/token",
            device_verification_url=f"{base}/codex/device",
            device_redirect_uri=f"{base}/deviceauth/callback",
        )


# ---------------------------------------------------------------------------
# Tokens.


def decode_jwt_claims(token: str) -> Dict[str, Any]:
    """The payload of a JWT, decoded without verifying the signature (the server verifies it)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise OAuthError(
            "the Codex access token is not a JWT (expected 3 dot-separated parts); " + _LOGIN_HINT
        )
    payload = parts[1]
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims = json.loads(raw)
    except ValueError as exc:
        raise OAuthError(
            f"the Codex access token's payload cannot be decoded ({exc}); " + _LOGIN_HINT
        ) from None
    if not isinstance(claims, dict):
        raise OAuthError("the Codex access token's payload is not a JSON object; " + _LOGIN_HINT)
    return claims


def account_id_from_token(token: str) -> Optional[str]:
    """The ``chatgpt_account_id`` claim of an access or id token, if it has one."""
    try:
        auth = decode_jwt_claims(token).get(AUTH_CLAIM)
    except OAuthError:
        return None
    got = auth.get("chatgpt_account_id") if isinstance(auth, dict) else None
    return got if isinstance(got, str) and got else None


def _expiry_of(token: str) -> Optional[float]:
    try:
        exp = decode_jwt_claims(token).get("exp")
    except OAuthError:
        return None
    return float(exp) if isinstance(exp, (int, float)) else None


@dataclass(frozen=True)
class CodexCredentials:
    """One ChatGPT sign-in: tokens, account and expiry (unix seconds). The repr hides the tokens."""

    access_token: str = field(repr=False)
    refresh_token: Optional[str] = field(default=None, repr=False)
    id_token: Optional[str] = field(default=None, repr=False)
    account_id: Optional[str] = None
    expires_at: Optional[float] = None

    def __post_init__(self) -> None:
        for secret in (self.access_token, self.refresh_token, self.id_token):
            register_secret(secret)

    @classmethod
    def from_token_response(
        cls, data: Mapping[str, Any], previous: Optional[CodexCredentials] = None
    ) -> CodexCredentials:
        """Credentials from a token endpoint answer; fields it leaves out are kept from ``previous``."""
        access = data.get("access_token")
        if not isinstance(access, str) or not access:
            raise OAuthError("the token endpoint answered without an access_token; " + _LOGIN_HINT)
        refresh = data.get("refresh_token") or (previous.refresh_token if previous else None)
        id_token = data.get("id_token") or (previous.id_token if previous else None)
        expires_at = _expiry_of(access)
        expires_in = data.get("expires_in")
        if expires_at is None and isinstance(expires_in, (int, float)):
            expires_at = time.time() + float(expires_in)
        account = (
            account_id_from_token(access)
            or (account_id_from_token(id_token) if id_token else None)
            or (previous.account_id if previous else None)
        )
        return cls(access, refresh, id_token, account, expires_at)

    def expired(self, now: Optional[float] = None, skew: float = EXPIRY_SKEW) -> bool:
        """True when the access token has expired or will within ``skew`` seconds."""
        if self.expires_at is None:
            return False
        return (time.time() if now is None else now) >= self.expires_at - skew

    def header_account_id(self) -> Optional[str]:
        """The ``chatgpt-account-id`` to send: the access token's claim, else the stored one."""
        return account_id_from_token(self.access_token) or self.account_id

    def __str__(self) -> str:
        return f"CodexCredentials(access_token={mask(self.access_token)!r}, account_id={self.account_id!r})"


# ---------------------------------------------------------------------------
# Storage.


def codex_auth_path() -> Path:
    """The Codex CLI's credential file: ``$CODEX_HOME/auth.json``, else ``~/.codex/auth.json``."""
    home = os.environ.get("CODEX_HOME")
    return (Path(home) if home else Path.home() / ".codex") / "auth.json"


def own_store_path() -> Path:
    """llm_sync's own credential file under the user's config directory."""
    base = os.environ.get("XDG_CONFIG_HOME")
    return (Path(base) if base else Path.home() / ".config") / "llm-sync" / "codex.json"


class CredentialStore:
    """A JSON credential file in the Codex CLI's ``auth.json`` shape.

    ``load`` returns None when the file is absent or holds no ChatGPT tokens;
    ``save`` replaces the file atomically (a temporary file in the same folder, then
    ``os.replace``) with mode 0600, keeping fields it does not manage (the Codex
    CLI's ``OPENAI_API_KEY``, ``auth_mode``...). Tokens never reach a log, a repr
    or an error message.
    """

    def __init__(self, path: Union[str, os.PathLike[str]]) -> None:
        self.path = Path(path).expanduser()

    def __repr__(self) -> str:
        return f"CredentialStore({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CredentialStore) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    def _read(self) -> Optional[Dict[str, Any]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise OAuthError(
                f"cannot read the Codex credentials in {self.path}: {exc.strerror}"
            ) from None
        try:
            data = json.loads(text)
        except ValueError:
            raise OAuthError(
                f"the Codex credential file {self.path} is not valid JSON; delete it and "
                + _LOGIN_HINT
            ) from None
        return data if isinstance(data, dict) else None

    def exists(self) -> bool:
        """True when the file holds ChatGPT tokens."""
        try:
            return self.load() is not None
        except OAuthError:
            return False

    def load(self) -> Optional[CodexCredentials]:
        data = self._read()
        if data is None:
            return None
        tokens = data.get("tokens")
        if not isinstance(tokens, dict) or not isinstance(tokens.get("access_token"), str):
            return None
        access = tokens["access_token"]
        if not access:
            return None
        id_token = tokens.get("id_token")
        expires_at = data.get("expires_at")
        return CodexCredentials(
            access_token=access,
            refresh_token=tokens.get("refresh_token") or None,
            id_token=id_token if isinstance(id_token, str) and id_token else None,
            account_id=tokens.get("account_id")
            or account_id_from_token(access)
            or (account_id_from_token(id_token) if isinstance(id_token, str) else None),
            expires_at=_expiry_of(access)
            or (float(expires_at) if isinstance(expires_at, (int, float)) else None),
        )

    def save(self, creds: CodexCredentials) -> None:
        try:
            data = self._read() or {}
        except OAuthError:
            data = {}  # a corrupt file is replaced by a good one
        data.setdefault("OPENAI_API_KEY", None)
        tokens: Dict[str, Any] = {"access_token": creds.access_token}
        if creds.id_token:
            tokens["id_token"] = creds.id_token
        if creds.refresh_token:
            tokens["refresh_token"] = creds.refresh_token
        if creds.account_id:
            tokens["account_id"] = creds.account_id
        data["tokens"] = tokens
        data["last_refresh"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if creds.expires_at is not None and _expiry_of(creds.access_token) is None:
            data["expires_at"] = creds.expires_at
        else:
            data.pop("expires_at", None)
        _atomic_write(self.path, (json.dumps(data, indent=2) + "\n").encode("utf-8"))


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new one, never half."""
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=f".{path.name}.", suffix=".tmp")
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)  # mkstemp makes 0600 already; say it, whatever the umask
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def default_store() -> CredentialStore:
    """The store credentials are read from.

    1. llm_sync's own, ``$XDG_CONFIG_HOME/llm-sync/codex.json`` (else
       ``~/.config/llm-sync/codex.json``), written by :func:`login`, when it holds a sign-in;
    2. else the Codex CLI's ``$CODEX_HOME/auth.json`` (else ``~/.codex/auth.json``) when
       that does, reused as is;
    3. else llm_sync's own (empty: requests then fail with ``OAuthError``).

    A refresh writes the new tokens back to the file they came from: the refresh
    token rotates, so the Codex CLI would be locked out if its file kept the old one.
    """
    own = CredentialStore(own_store_path())
    if own.exists():
        return own
    cli = CredentialStore(codex_auth_path())
    if cli.exists():
        return cli
    return own


def has_credentials() -> bool:
    """True when a ChatGPT sign-in is stored (llm_sync's own, or the Codex CLI's)."""
    return default_store().exists()


# ---------------------------------------------------------------------------
# Refresh.


class TokenManager:
    """Hands out valid tokens for one store, refreshing them at most once at a time.

    One manager exists per (store, token URL, client id) in a process (see
    ``token_manager``), so every provider and thread using the same file shares its
    lock: when several find the token expired (or rejected) together, the first
    refreshes and the others, re-checking under the lock, take its result.
    """

    def __init__(
        self, store: CredentialStore, endpoints: OAuthEndpoints, client_id: str = CLIENT_ID
    ) -> None:
        self.store = store
        self.endpoints = endpoints
        self.client_id = client_id
        self._lock = threading.Lock()
        self._creds: Optional[CodexCredentials] = None

    def credentials(self) -> CodexCredentials:
        """Valid credentials: the cached ones, else the stored ones, refreshed if expired."""
        creds = self._creds
        if creds is not None and not creds.expired():
            return creds
        with self._lock:
            creds = self._creds
            if creds is not None and not creds.expired():
                return creds  # another thread refreshed while this one waited
            # Re-read: another process (or the Codex CLI) may have refreshed the file.
            loaded = self._load()
            if loaded.expired():
                loaded = self._refresh_locked(loaded)
            self._creds = loaded
            return loaded

    def refresh_rejected(self, rejected_access_token: str) -> CodexCredentials:
        """New credentials after the server refused ``rejected_access_token`` (a 401).

        Refreshes unless another thread or process already replaced that token.
        """
        with self._lock:
            creds = self._creds
            if (
                creds is not None
                and creds.access_token != rejected_access_token
                and not creds.expired()
            ):
                return creds
            loaded = self._load()
            if loaded.access_token != rejected_access_token and not loaded.expired():
                self._creds = loaded
                return loaded
            fresh = self._refresh_locked(loaded)
            self._creds = fresh
            return fresh

    def _load(self) -> CodexCredentials:
        loaded = self.store.load()
        if loaded is None:
            raise OAuthError(
                f"no Codex (ChatGPT) credentials found in {self.store.path}; " + _LOGIN_HINT
            )
        return loaded

    def _refresh_locked(self, creds: CodexCredentials) -> CodexCredentials:
        import requests

        if not creds.refresh_token:
            raise OAuthError(
                "the Codex access token has expired and no refresh token is stored; " + _LOGIN_HINT
            )
        payload = {
            "client_id": self.client_id,
            "grant_type": "refresh_token",
            "refresh_token": creds.refresh_token,
            "scope": REFRESH_SCOPE,
        }
        try:
            resp = requests.post(self.endpoints.token_url, json=payload, timeout=_HTTP_TIMEOUT)
        except requests.RequestException as exc:
            raise OAuthError(
                f"could not reach {_origin(self.endpoints.token_url)} to refresh the Codex token "
                f"({type(exc).__name__}); check the network and try again"
            ) from None
        with resp:
            if resp.status_code != 200:
                raise OAuthError(
                    f"refreshing the Codex token failed (HTTP {resp.status_code}: "
                    f"{_oauth_error_text(resp.text)}); " + _LOGIN_HINT,
                    status=resp.status_code,
                )
            data = _json_object(resp.text, "the token refresh")
        fresh = CodexCredentials.from_token_response(data, previous=creds)
        try:
            self.store.save(fresh)
        except OSError as exc:
            # The new tokens still work in this process; say why the next one may not.
            _log.warning(
                "could not save the refreshed Codex tokens to %s: %s", self.store.path, exc.strerror
            )
        return fresh


_managers: Dict[Tuple[str, str, str], TokenManager] = {}
_managers_lock = threading.Lock()


def token_manager(
    store: Optional[CredentialStore] = None,
    endpoints: Optional[OAuthEndpoints] = None,
    client_id: str = CLIENT_ID,
) -> TokenManager:
    """The process-wide manager for ``store`` (default: ``default_store()``)."""
    store = store or default_store()
    endpoints = endpoints or OAuthEndpoints.for_issuer()
    key = (str(store.path), endpoints.token_url, client_id)
    with _managers_lock:
        found = _managers.get(key)
        if found is None:
            found = _managers[key] = TokenManager(store, endpoints, client_id)
        return found


def _forget_managers() -> None:
    # After fork a lock may be held by a thread that does not exist in the child.
    global _managers_lock
    _managers_lock = threading.Lock()
    _managers.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_managers)


# ---------------------------------------------------------------------------
# Login.


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _json_object(text: str, what: str) -> Dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise OAuthError(
            f"{what} answered with something other than a JSON object; try again later"
        )
    return data


def _oauth_error_text(body: str) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:200] or "(empty body)"
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict):
            return str(err.get("message") or err.get("code") or err)
        desc = data.get("error_description")
        if err or desc:
            return ": ".join(str(x) for x in (err, desc) if x)
        if data.get("detail"):
            return str(data["detail"])
    return body.strip()[:200]


def _pkce() -> Tuple[str, str]:
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest())
    return verifier, challenge.rstrip(b"=").decode("ascii")


def _exchange_code(
    endpoints: OAuthEndpoints, client_id: str, code: str, redirect_uri: str, verifier: str
) -> CodexCredentials:
    import requests

    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": client_id,
        "code_verifier": verifier,
    }
    try:
        resp = requests.post(
            endpoints.token_url, data=form, timeout=_HTTP_TIMEOUT, allow_redirects=False
        )
    except requests.RequestException as exc:
        raise OAuthError(
            f"could not reach {_origin(endpoints.token_url)} to finish the sign-in ({type(exc).__name__})"
        ) from None
    with resp:
        if resp.status_code != 200:
            raise OAuthError(
                f"the sign-in code was refused (HTTP {resp.status_code}: {_oauth_error_text(resp.text)}); "
                "run the login again",
                status=resp.status_code,
            )
        data = _json_object(resp.text, "the token exchange")
    return CodexCredentials.from_token_response(data)


_SUCCESS_PAGE = (
    "<!doctype html><html><head><meta charset=utf-8><title>Signed in</title></head>"
    "<body><h1>Sign-in received</h1><p>You can close this tab and return to the terminal.</p>"
    "</body></html>"
)


def _page(title: str, text: str) -> str:
    import html

    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>"
    )


class _Callback:
    """What the callback server learnt: the code, or why the sign-in failed."""

    def __init__(self, state: str) -> None:
        self.state = state
        self.code: Optional[str] = None
        self.error: Optional[str] = None


def _callback_server(port: int, result: _Callback) -> Any:
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Handler(BaseHTTPRequestHandler):
        # A connection that sends nothing (a browser preconnect) is dropped after this.
        timeout = 2.0

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path != CALLBACK_PATH or not parts.query:
                # favicon.ico, preconnects, anything else: not ours, keep waiting.
                self._reply(404, _page("Not found", "This server only takes the sign-in callback."))
                return
            query = parse_qs(parts.query, keep_blank_values=True)

            def one(name: str) -> Optional[str]:
                got = query.get(name)
                return got[0] if got else None

            error = one("error")
            if error is not None:
                result.error = one("error_description") or error
                self._reply(400, _page("Sign-in failed", result.error))
                return
            code, state = one("code"), one("state")
            if not code or not state:
                self._reply(
                    400, _page("Sign-in failed", "The callback lacks the code or the state.")
                )
                return
            if not secrets.compare_digest(state, result.state):
                # Not this login's answer (a stale tab, or a forged request): refuse it and
                # keep waiting for the right one.
                self._reply(
                    400,
                    _page("Sign-in failed", "State mismatch: this is not the sign-in in progress."),
                )
                return
            result.code = code
            self._reply(200, _SUCCESS_PAGE)

        def _reply(self, status: int, page: str) -> None:
            body = page.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the request line carries the authorization code: never log it

    try:
        return HTTPServer(("127.0.0.1", port), Handler)
    except OSError as exc:
        raise OAuthError(
            f"cannot listen on 127.0.0.1:{port} for the sign-in callback ({exc.strerror}); "
            "is another login running? Close it, or use login(device_code=True)"
        ) from None


def _default_opener(url: str) -> bool:
    import webbrowser

    try:
        return bool(webbrowser.open(url))
    except Exception:  # any browser failure just means: print the URL
        return False


def _browser_login(
    endpoints: OAuthEndpoints,
    client_id: str,
    port: int,
    timeout: float,
    opener: Optional[Callable[[str], bool]],
    out: IO[str],
) -> CodexCredentials:
    verifier, challenge = _pkce()
    result = _Callback(secrets.token_urlsafe(32))
    server = _callback_server(port, result)
    try:
        actual_port = server.server_address[1]
        redirect_uri = f"http://localhost:{actual_port}{CALLBACK_PATH}"
        query = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": SCOPE,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": result.state,
            "id_token_add_organizations": "true",
            "codex_cli_simplified_flow": "true",
            "originator": ORIGINATOR,
        }
        url = f"{endpoints.authorize_url}?{urlencode(query)}"
        opened = opener(url) if opener is not None else False
        if opened:
            print(
                f"A browser window opened to sign in with ChatGPT. If it did not, open:\n  {url}",
                file=out,
            )
        else:
            print(f"Open this URL in a browser to sign in with ChatGPT:\n  {url}", file=out)
        out.flush()
        deadline = time.monotonic() + timeout
        while result.code is None and result.error is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise OAuthError(
                    f"no sign-in arrived within {timeout:.0f} s; run the login again "
                    "(or use the device code flow on a machine without a browser)"
                )
            server.timeout = min(left, 0.5)
            server.handle_request()
    finally:
        server.server_close()
    if result.error is not None:
        raise OAuthError(f"the sign-in was refused: {result.error}")
    assert result.code is not None
    return _exchange_code(endpoints, client_id, result.code, redirect_uri, verifier)


def _device_login(
    endpoints: OAuthEndpoints, client_id: str, timeout: float, out: IO[str]
) -> CodexCredentials:
    import requests

    with requests.Session() as session:
        try:
            resp = session.post(
                endpoints.device_code_url, json={"client_id": client_id}, timeout=_HTTP_TIMEOUT
            )
        except requests.RequestException as exc:
            raise OAuthError(
                f"could not reach {_origin(endpoints.device_code_url)} for a device code ({type(exc).__name__})"
            ) from None
        with resp:
            if resp.status_code == 404:
                raise OAuthError(
                    "device code sign-in is not enabled for this server; use the browser login"
                )
            if resp.status_code != 200:
                raise OAuthError(
                    f"asking for a device code failed (HTTP {resp.status_code}: {_oauth_error_text(resp.text)})",
                    status=resp.status_code,
                )
            data = _json_object(resp.text, "the device code request")
        device_id = data.get("device_auth_id")
        user_code = data.get("user_code") or data.get("usercode")
        if not isinstance(device_id, str) or not isinstance(user_code, str):
            raise OAuthError(
                "the device code answer lacks device_auth_id or user_code; try again later"
            )
        try:
            interval = max(0.0, float(str(data.get("interval", 5)).strip() or 5))
        except ValueError:
            interval = 5.0
        print(
            "To sign in with ChatGPT, open this link in a browser on any device:\n"
            f"  {endpoints.device_verification_url}\n"
            f"and enter this one-time code (it expires in 15 minutes):\n  {user_code}\n"
            "Never share this code.",
            file=out,
        )
        out.flush()
        deadline = time.monotonic() + timeout
        while True:
            try:
                resp = session.post(
                    endpoints.device_token_url,
                    json={"device_auth_id": device_id, "user_code": user_code},
                    timeout=_HTTP_TIMEOUT,
                )
            except requests.RequestException as exc:
                raise OAuthError(
                    f"could not reach {_origin(endpoints.device_token_url)} while waiting for the sign-in "
                    f"({type(exc).__name__})"
                ) from None
            with resp:
                status, text = resp.status_code, resp.text
            if status == 200:
                answer = _json_object(text, "the device sign-in")
                break
            if status not in (403, 404):  # 403/404: the user has not finished yet
                raise OAuthError(
                    f"the device sign-in failed (HTTP {status}: {_oauth_error_text(text)})",
                    status=status,
                )
            left = deadline - time.monotonic()
            if left <= 0:
                raise OAuthError(
                    f"the device code was not used within {timeout:.0f} s; run the login again"
                )
            time.sleep(min(interval, left))
    code = answer.get("authorization_code")
    verifier = answer.get("code_verifier")
    if not isinstance(code, str) or not isinstance(verifier, str):
        raise OAuthError("the device sign-in answer lacks authorization_code or code_verifier")
    return _exchange_code(endpoints, client_id, code, endpoints.device_redirect_uri, verifier)


def login(
    open_browser: bool = True,
    device_code: bool = False,
    *,
    store: Optional[CredentialStore] = None,
    issuer: str = DEFAULT_ISSUER,
    endpoints: Optional[OAuthEndpoints] = None,
    client_id: str = CLIENT_ID,
    port: int = CALLBACK_PORT,
    timeout: float = 600.0,
    opener: Optional[Callable[[str], bool]] = None,
    output: Optional[IO[str]] = None,
) -> CodexCredentials:
    """Sign in with ChatGPT and save the tokens; returns the new credentials.

    The browser flow (default) opens the authorization page (``opener(url)``, by
    default the system browser when ``open_browser``), always prints the URL, and
    waits up to ``timeout`` seconds for the redirect to ``http://localhost:<port>/auth/callback``.
    ``device_code=True`` prints a link and a one-time code instead, for machines
    without a browser. The tokens go to ``store`` (default: llm_sync's own file,
    which is then preferred over the Codex CLI's ``auth.json``). Messages go to
    ``output`` (default stderr); tokens are never printed.
    """
    endpoints = endpoints or OAuthEndpoints.for_issuer(issuer)
    out = output if output is not None else sys.stderr
    if device_code:
        creds = _device_login(endpoints, client_id, timeout, out)
    else:
        chosen = opener if opener is not None else (_default_opener if open_browser else None)
        creds = _browser_login(endpoints, client_id, port, timeout, chosen, out)
    target = store or CredentialStore(own_store_path())
    try:
        target.save(creds)
    except OSError as exc:
        raise OAuthError(
            f"signed in, but saving the credentials to {target.path} failed: {exc.strerror}"
        ) from None
    # Providers already running pick the new sign-in up through their manager.
    with _managers_lock:
        for manager in _managers.values():
            if manager.store == target:
                with manager._lock:
                    manager._creds = creds
    print(f"Signed in to ChatGPT; credentials saved to {target.path}", file=out)
    return creds
