"""ChatGPT sign-in for Codex over loopback: browser flow through the callback server, device code, credential files, refresh."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import queue
import socket
import stat
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

import llm_sync.providers.codex._oauth as codex
from llm_sync import OAuthError
from llm_sync.providers.codex._oauth import (
    CLIENT_ID,
    CodexCredentials,
    CredentialStore,
    OAuthEndpoints,
    TokenManager,
    account_id_from_token,
    decode_jwt_claims,
    default_store,
    has_credentials,
    login,
)
from tests.support.server import LoopbackServer, RecordedRequest, Reply

ACCOUNT = "acct-login-42"


def jwt(exp_in: float = 3600.0, tag: str = "a", account: Optional[str] = ACCOUNT) -> str:
    def part(obj: Dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    claims: Dict[str, Any] = {"exp": int(time.time() + exp_in), "tag": tag}
    if account:
        claims["https://api.openai.com/auth"] = {"chatgpt_account_id": account}
    return f"{part({'alg': 'RS256'})}.{part(claims)}.signature-{tag}-0123456789"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "codex-home"))
    yield tmp_path
    codex._forget_managers()


class FakeAuthServer:
    """An authorization server on loopback: authorize redirect, code exchange, refresh, device code."""

    def __init__(
        self, server: LoopbackServer, *, pending_polls: int = 1, refresh_delay: float = 0.0
    ) -> None:
        self.server = server
        self.endpoints = OAuthEndpoints.for_issuer(server.url)
        self.code = "code-" + "x" * 8
        self.challenges: Dict[str, str] = {}  # code -> the challenge the authorize request carried
        self.exchanges: List[Dict[str, List[str]]] = []
        self.refreshes: List[Dict[str, Any]] = []
        self.polls = 0
        self.pending_polls = pending_polls
        self.refresh_delay = refresh_delay
        self.issued: List[str] = []
        self._lock = threading.Lock()
        for _ in range(40):
            server.reply(self)

    def tokens(self, tag: str) -> Dict[str, Any]:
        token = jwt(tag=tag)
        self.issued.append(token)
        return {
            "access_token": token,
            "refresh_token": f"rt-{tag}",
            "id_token": jwt(tag=f"id-{tag}"),
            "expires_in": 3600,
        }

    def __call__(self, req: RecordedRequest) -> Reply:
        path = req.path_only
        if path == "/oauth/authorize":
            q = {k: v[0] for k, v in req.query.items()}
            assert q["response_type"] == "code" and q["client_id"] == CLIENT_ID
            assert q["code_challenge_method"] == "S256"
            assert q["scope"] == "openid profile email offline_access"
            self.challenges[self.code] = q["code_challenge"]
            target = q["redirect_uri"] + "?" + urlencode({"code": self.code, "state": q["state"]})
            return Reply(status=302, headers={"location": target}, body=b"")
        if path == "/oauth/token":
            if req.headers.get("content-type", "").startswith("application/json"):
                with self._lock:
                    self.refreshes.append(req.json())
                    n = len(self.refreshes)
                time.sleep(self.refresh_delay)
                return Reply.json(self.tokens(f"refreshed{n}"))
            form = parse_qs(req.text)
            self.exchanges.append(form)
            return Reply.json(self.tokens("login"))
        if path == "/api/accounts/deviceauth/usercode":
            assert req.json() == {"client_id": CLIENT_ID}
            return Reply.json(
                {"device_auth_id": "dev-1", "user_code": "ABCD-1234", "interval": "0"}
            )
        if path == "/api/accounts/deviceauth/token":
            assert req.json() == {"device_auth_id": "dev-1", "user_code": "ABCD-1234"}
            self.polls += 1
            if self.polls <= self.pending_polls:
                return Reply.json({"error": "authorization_pending"}, status=403)
            verifier = "device-verifier-" + "v" * 40
            challenge = (
                base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
                .rstrip(b"=")
                .decode()
            )
            self.challenges["dev-code"] = challenge
            return Reply.json(
                {
                    "authorization_code": "dev-code",
                    "code_verifier": verifier,
                    "code_challenge": challenge,
                }
            )
        return Reply(status=404, body=b"not found")


def s256(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


def run_login(auth: FakeAuthServer, **kw: Any) -> Any:
    """Start login() in a thread; return (thread, url queue, result holder, output)."""
    urls: queue.Queue[str] = queue.Queue()
    holder: Dict[str, Any] = {}
    out = io.StringIO()

    def opener(url: str) -> bool:
        urls.put(url)
        return False  # "no browser": the URL must be printed

    def target() -> None:
        try:
            holder["creds"] = login(
                endpoints=auth.endpoints,
                port=0,
                opener=opener,
                output=out,
                timeout=kw.pop("timeout", 10.0),
                **kw,
            )
        except BaseException as exc:
            holder["error"] = exc

    t = threading.Thread(target=target, name="test-login")
    t.start()
    return t, urls, holder, out


def test_browser_login_through_the_callback_server(server: LoopbackServer, tmp_path: Path) -> None:
    auth = FakeAuthServer(server)
    t, urls, holder, out = run_login(auth)
    url = urls.get(timeout=5)
    q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    callback = urlsplit(q["redirect_uri"])
    assert callback.hostname == "localhost" and callback.path == "/auth/callback"
    assert q["originator"] == "codex_cli_rs" and q["codex_cli_simplified_flow"] == "true"
    local = f"http://127.0.0.1:{callback.port}"
    with requests.Session() as s:
        # Stray requests are answered and skipped: the login keeps waiting.
        assert s.get(f"{local}/favicon.ico", timeout=5).status_code == 404
        assert s.get(f"{local}/auth/callback", timeout=5).status_code == 404
        # The browser: the authorization server redirects to the callback.
        page = s.get(url, timeout=5)
    assert page.status_code == 200 and "Sign-in received" in page.text
    t.join(10)
    assert "error" not in holder, holder.get("error")
    creds: CodexCredentials = holder["creds"]
    assert creds.access_token == auth.issued[0] and creds.account_id == ACCOUNT
    # The exchange carried the verifier of the challenge sent to /authorize.
    form = {k: v[0] for k, v in auth.exchanges[0].items()}
    assert form["grant_type"] == "authorization_code" and form["code"] == auth.code
    assert form["client_id"] == CLIENT_ID and form["redirect_uri"] == q["redirect_uri"]
    assert s256(form["code_verifier"]) == q["code_challenge"] == auth.challenges[auth.code]
    assert url in out.getvalue()
    assert creds.access_token not in out.getvalue()
    stored = tmp_path / "config" / "llm-sync" / "codex.json"
    assert stat.S_IMODE(os.stat(stored).st_mode) == 0o600
    assert json.loads(stored.read_text())["tokens"]["refresh_token"] == "rt-login"
    assert has_credentials() and default_store() == CredentialStore(stored)
    assert creds.access_token not in repr(creds) and creds.access_token not in str(creds)


def test_wrong_state_is_rejected_and_the_login_keeps_waiting(server: LoopbackServer) -> None:
    auth = FakeAuthServer(server)
    t, urls, holder, _ = run_login(auth)
    url = urls.get(timeout=5)
    q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    local = f"http://127.0.0.1:{urlsplit(q['redirect_uri']).port}/auth/callback"
    with requests.Session() as s:
        bad = s.get(local, params={"code": "forged", "state": "not-the-state"}, timeout=5)
        assert bad.status_code == 400 and "State mismatch" in bad.text
        assert t.is_alive() and auth.exchanges == []
        good = s.get(local, params={"code": "real-code", "state": q["state"]}, timeout=5)
        assert good.status_code == 200
    t.join(10)
    assert "creds" in holder
    assert parse_qs(auth.server.requests[-1].text)["code"] == ["real-code"]


def test_error_callback_fails_the_login(server: LoopbackServer) -> None:
    auth = FakeAuthServer(server)
    t, urls, holder, _ = run_login(auth)
    q = {k: v[0] for k, v in parse_qs(urlsplit(urls.get(timeout=5)).query).items()}
    local = f"http://127.0.0.1:{urlsplit(q['redirect_uri']).port}/auth/callback"
    with requests.Session() as s:
        r = s.get(
            local,
            params={"error": "access_denied", "error_description": "User cancelled"},
            timeout=5,
        )
    assert r.status_code == 400
    t.join(10)
    assert isinstance(holder["error"], OAuthError) and "User cancelled" in str(holder["error"])
    assert not has_credentials()


def test_login_times_out_and_a_busy_port_is_reported(server: LoopbackServer) -> None:
    auth = FakeAuthServer(server)
    with pytest.raises(OAuthError, match="no sign-in arrived"):
        login(
            endpoints=auth.endpoints, port=0, open_browser=False, output=io.StringIO(), timeout=0.3
        )
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        with pytest.raises(OAuthError, match=r"cannot listen on 127\.0\.0\.1"):
            login(
                endpoints=auth.endpoints,
                port=busy.getsockname()[1],
                open_browser=False,
                output=io.StringIO(),
            )


def test_device_code_login(server: LoopbackServer, tmp_path: Path) -> None:
    auth = FakeAuthServer(server, pending_polls=2)
    out = io.StringIO()
    store = CredentialStore(tmp_path / "device.json")
    creds = login(device_code=True, endpoints=auth.endpoints, store=store, output=out, timeout=10)
    assert auth.polls == 3
    assert "ABCD-1234" in out.getvalue() and f"{server.url}/codex/device" in out.getvalue()
    form = {k: v[0] for k, v in auth.exchanges[0].items()}
    assert (
        form["code"] == "dev-code" and form["redirect_uri"] == f"{server.url}/deviceauth/callback"
    )
    assert s256(form["code_verifier"]) == auth.challenges["dev-code"]
    loaded = store.load()
    assert loaded is not None and loaded.access_token == creds.access_token


# --- credential files -----------------------------------------------------------------------


def test_save_is_atomic_with_mode_0600(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "store" / "codex.json"
    store = CredentialStore(path)
    first = CodexCredentials(jwt(tag="one"), "rt-one")
    store.save(first)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    before = path.read_bytes()
    replaced: List[Any] = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (replaced.append((a, b)), real_replace(a, b)))
    store.save(CodexCredentials(jwt(tag="two"), "rt-two"))
    assert replaced and Path(replaced[0][1]) == path and Path(replaced[0][0]).parent == path.parent
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    # A crash in the middle of writing the new file leaves the old one whole.
    current = path.read_bytes()
    assert current != before

    def crash(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError):
        store.save(CodexCredentials(jwt(tag="three"), "rt-three"))
    assert path.read_bytes() == current
    assert sorted(p.name for p in path.parent.iterdir()) == ["codex.json"]  # no temp file left


def test_codex_home_auth_json_is_reused(tmp_path: Path) -> None:
    auth = tmp_path / "codex-home" / "auth.json"
    auth.parent.mkdir()
    token = jwt(tag="cli")
    auth.write_text(
        json.dumps(
            {
                "OPENAI_API_KEY": None,
                "tokens": {
                    "id_token": jwt(tag="id"),
                    "access_token": token,
                    "refresh_token": "rt",
                    "account_id": "acct-cli",
                },
                "last_refresh": "2025-06-01T00:00:00Z",
            }
        )
    )
    store = default_store()
    assert store == CredentialStore(auth)
    creds = store.load()
    assert creds is not None and creds.access_token == token and creds.account_id == "acct-cli"
    assert creds.header_account_id() == ACCOUNT  # the access token's own claim wins
    # Once llm_sync has its own sign-in, that one is used.
    CredentialStore(tmp_path / "config" / "llm-sync" / "codex.json").save(
        CodexCredentials(jwt(tag="own"))
    )
    assert default_store().path == tmp_path / "config" / "llm-sync" / "codex.json"


def test_missing_or_empty_credentials(tmp_path: Path) -> None:
    assert not has_credentials()
    manager = TokenManager(
        CredentialStore(tmp_path / "none.json"), OAuthEndpoints.for_issuer("http://127.0.0.1:9")
    )
    with pytest.raises(OAuthError, match="llm-sync login codex"):
        manager.credentials()
    (tmp_path / "api-key-only.json").write_text(
        json.dumps({"OPENAI_API_KEY": "sk-x", "tokens": None})
    )
    assert CredentialStore(tmp_path / "api-key-only.json").load() is None
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(OAuthError, match="not valid JSON"):
        CredentialStore(tmp_path / "bad.json").load()


def test_jwt_claims_without_verification() -> None:
    token = jwt(tag="claims")
    assert decode_jwt_claims(token)["tag"] == "claims"
    assert account_id_from_token(token) == ACCOUNT
    assert account_id_from_token(jwt(account=None)) is None
    assert account_id_from_token("not-a-jwt") is None
    with pytest.raises(OAuthError, match="3 dot-separated parts"):
        decode_jwt_claims("a.b")


# --- refresh --------------------------------------------------------------------------------


def test_concurrent_refresh_is_done_once(server: LoopbackServer, tmp_path: Path) -> None:
    auth = FakeAuthServer(server, refresh_delay=0.2)
    store = CredentialStore(tmp_path / "creds.json")
    store.save(CodexCredentials(jwt(exp_in=-30, tag="old"), "rt-old"))
    manager = codex.token_manager(store, auth.endpoints)
    assert codex.token_manager(CredentialStore(tmp_path / "creds.json"), auth.endpoints) is manager
    barrier = threading.Barrier(6)
    got: List[str] = []

    def worker() -> None:
        barrier.wait(5)
        got.append(manager.credentials().access_token)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(auth.refreshes) == 1 and auth.refreshes[0]["refresh_token"] == "rt-old"
    assert got == [auth.issued[0]] * 6
    loaded = store.load()
    assert loaded is not None and loaded.refresh_token == "rt-refreshed1"
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600


def test_rejected_token_refresh_is_shared(server: LoopbackServer, tmp_path: Path) -> None:
    auth = FakeAuthServer(server, refresh_delay=0.1)
    store = CredentialStore(tmp_path / "creds.json")
    old = jwt(tag="old")
    store.save(CodexCredentials(old, "rt-old"))
    manager = codex.token_manager(store, auth.endpoints)
    assert manager.credentials().access_token == old
    barrier = threading.Barrier(4)
    got: List[str] = []

    def worker() -> None:
        barrier.wait(5)
        got.append(manager.refresh_rejected(old).access_token)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(auth.refreshes) == 1 and got == [auth.issued[0]] * 4
    # A token refreshed by another process is picked up from the file, without a refresh.
    newer = jwt(tag="elsewhere")
    CredentialStore(store.path).save(CodexCredentials(newer, "rt-elsewhere"))
    assert manager.refresh_rejected(auth.issued[0]).access_token == newer
    assert len(auth.refreshes) == 1
