"""Secrets never leak: planted keys stay out of errors, reprs, debug logs and the CLI's output.

Keys come in every way a user gives them (argument, environment, ``.env``, Codex credentials);
every error path is driven with a server that echoes the key back, as real APIs do ("Incorrect
API key provided: sk-..."). Also: no credentials after a cross-host redirect, TLS verification
and proxies from the environment, and ``.env`` loading that never overrides and never runs at import.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import socket
import stat
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from llm_sync import (
    ApiRequestError,
    ChatMessage,
    Context,
    LlmError,
    RetryPolicy,
    Timeouts,
    ToolCallRequest,
)
from tests.support.faults import FLAVORS, Flavor, fast_retries, flavor_params, in_band_error, run
from tests.support.paths import REPO
from tests.support.server import LoopbackServer, Reply, Reset

ALL = flavor_params()

# Distinct keys per source; none of them may show up anywhere.
ARG_KEYS = {name: f"sk-argkey-{name}-Zq81xNp4Lw0Tt7Vb" for name in FLAVORS}
ENV_KEYS = {name: f"envkey-{name}-Hy62mRc9Qe3Ka5Ud" for name in FLAVORS}
DOTENV_KEY = "dotenvkey-anthropic-Ws47jGf2Xo8Pn1Ys"

_ENV_VARS = {f.name: f.key_variable for f in FLAVORS.values() if f.key_variable is not None}


def leaks(text: str, key: str) -> bool:
    """True if ``text`` shows ``key`` or a recognisable slice of it (beyond a 3-char mask)."""
    return key in text or key[4:-4] in text


def error_texts(err: BaseException) -> str:
    """Everything a user could print of an error: str, repr, body, the whole chained traceback."""
    parts = [str(err), repr(err), "".join(traceback.format_exception(type(err), err, err.__traceback__))]
    for name in ("body", "message"):
        value = getattr(err, name, None)
        if value:
            parts.append(str(value))
    partial = getattr(err, "partial", None)
    if partial is not None:
        parts.append(repr(partial))
    return "\n".join(parts)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for var in (*_ENV_VARS.values(), "GOOGLE_API_KEY", "ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", "GEMINI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env from the working tree
    yield


def echo_key_body(flavor: Flavor, status: int, key: str) -> Any:
    body = flavor.error_json(status)
    return json.loads(json.dumps(body).replace("the field max_tokens", f"Incorrect API key provided: {key}; the field"))


def bad_event_with(flavor: Flavor, key: str) -> bytes:
    """An event that fails to parse and carries the key (its text ends up in the error)."""
    raw = '{"type": "content_block_delta", "leak": "' + key
    if flavor.name == "bedrock":
        from llm_sync._transport._eventstream import event_frame

        return event_frame("contentBlockDelta", raw.encode())
    if flavor.name == "ollama":
        return raw.encode() + b"\n"
    return b"data: " + raw.encode() + b"\n\n"


def _error_replies(flavor: Flavor, key: str) -> List[Reply]:
    html = f"<html><head><title>Denied</title></head><body>key={key}</body></html>".encode()
    return [
        Reply.json(echo_key_body(flavor, 401, key), status=401),
        Reply.json(echo_key_body(flavor, 400, key), status=400),
        Reply.json(echo_key_body(flavor, 429, key), status=429, headers={"retry-after": "9999"}),
        Reply.json(echo_key_body(flavor, 500, key), status=500),
        Reply(status=403, headers={"content-type": "text/html"}, body=[html]),
        flavor.reply(steps=[*flavor.start, flavor.text("x"), bad_event_with(flavor, key), *flavor.end]),
        flavor.reply(steps=[*flavor.start, in_band_error(flavor, f"bad key {key}")]),
        Reply.json({"error": {"message": f"gateway says {key}", "code": 400}}, status=200),
    ]


def _drive_errors(server: LoopbackServer, flavor: Flavor, key: str, **kw: Any) -> List[str]:
    """Run every error path against ``server``; the texts of the errors raised."""
    out = []
    for reply in _error_replies(flavor, key):
        server.reply(reply)
        provider = flavor.provider(server, api_key=kw.get("api_key"), max_retries=0)
        try:
            run(provider)
        except LlmError as err:
            out.append(error_texts(err))
        except Exception as err:  # an untyped error is a failure too; it must not leak either
            out.append(error_texts(err))
            out.append(f"UNTYPED {type(err).__name__}")
    return out


@pytest.mark.parametrize("flavor", ALL)
def test_an_argument_key_never_appears_in_errors(server: LoopbackServer, flavor: Flavor) -> None:
    key = ARG_KEYS[flavor.name]
    texts = _drive_errors(server, flavor, key, api_key=key)
    assert len(texts) == len(_error_replies(flavor, key))
    for text in texts:
        assert not leaks(text, key), text
    # The request did carry it: the test is not vacuous.
    sent = json.dumps(dict(server.requests[0].headers))
    assert key in sent


@pytest.mark.parametrize("flavor", ALL)
def test_an_environment_key_never_appears_in_errors(
    server: LoopbackServer, flavor: Flavor, monkeypatch: pytest.MonkeyPatch
) -> None:
    if flavor.key_variable is None:
        pytest.skip(f"{flavor.name} takes its key only as an argument")
    key = ENV_KEYS[flavor.name]
    monkeypatch.setenv(flavor.key_variable, key)
    out = []
    for reply in _error_replies(flavor, key)[:3]:
        server.reply(reply)
        provider = flavor.build(server.url, None, Timeouts(connect=2.0, first_event=4.0, idle=4.0), 0)
        with pytest.raises(LlmError) as info:
            run(provider)
        out.append(error_texts(info.value))
        assert not leaks(repr(provider), key)
    for text in out:
        assert not leaks(text, key), text
    assert key in json.dumps(dict(server.requests[0].headers))


def test_a_dotenv_key_never_appears_in_errors(server: LoopbackServer, tmp_path: Path) -> None:
    from llm_sync.providers.anthropic import AnthropicProvider

    (tmp_path / ".env").write_text(f"ANTHROPIC_API_KEY={DOTENV_KEY}\n")
    flavor = FLAVORS["anthropic"]
    server.reply(Reply.json(echo_key_body(flavor, 401, DOTENV_KEY), status=401))
    provider = AnthropicProvider.from_env(base_url=server.url, max_retries=0)
    with pytest.raises(LlmError) as info:
        run(provider)
    assert server.requests[0].headers["x-api-key"] == DOTENV_KEY
    assert not leaks(error_texts(info.value), DOTENV_KEY)
    assert not leaks(repr(provider), DOTENV_KEY)


# ---------------------------------------------------------------------------
# repr() of public objects


@pytest.mark.parametrize("flavor", ALL)
def test_reprs_of_public_objects_hide_the_key(server: LoopbackServer, flavor: Flavor) -> None:
    key = ARG_KEYS[flavor.name]
    provider = flavor.provider(server, api_key=key)
    copies = [provider, provider.with_model("other"), fast_retries(provider), pickle.loads(pickle.dumps(provider))]
    server.reply(flavor.reply("hi"))
    objects: List[Any] = [*copies, provider.timeouts, provider.retry_policy, RetryPolicy()]
    ctx = Context(messages=[ChatMessage.User(f"my key is not {key[:3]}")])
    call, _ = provider.build_call(ctx)
    objects += [call, provider._transport(), ctx]
    with provider.stream_response(ctx) as stream:
        objects.append(stream)
        collected = stream.collect()
    objects += [collected, collected.to_message(), ToolCallRequest("id", "name", "{}")]
    for obj in objects:
        for text in (repr(obj), str(obj)):
            assert not leaks(text, key), f"{type(obj).__name__}: {text}"
    for copy in copies:
        assert not leaks(copy.display_name(), key)


def test_codex_credentials_hide_tokens_and_are_stored_0600_atomically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    codex = pytest.importorskip("llm_sync.providers.codex._oauth")
    access = "codex-access-token-Ab12Cd34Ef56Gh78"
    refresh = "codex-refresh-token-Ij90Kl12Mn34Op56"
    creds = codex.CodexCredentials(access_token=access, refresh_token=refresh, account_id="acct")
    for text in (repr(creds), str(creds)):
        assert not leaks(text, access) and not leaks(text, refresh), text
    path = tmp_path / "store" / "auth.json"
    store = codex.CredentialStore(path)
    assert not leaks(repr(store), access)
    store.save(creds)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.read_bytes()
    assert json.loads(before)["tokens"]["access_token"] == access

    # A crash in the middle of the next save leaves the old file, whole, and no temporary file.
    def crash(*args: Any, **kwargs: Any) -> None:
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(os, "replace", crash)
    newer = codex.CodexCredentials(access_token=access + "-new", refresh_token=refresh, account_id="acct")
    with pytest.raises(OSError):
        store.save(newer)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["auth.json"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# ---------------------------------------------------------------------------
# Debug logging


@pytest.mark.parametrize("flavor", ALL)
def test_debug_logging_never_shows_the_key(server: LoopbackServer, flavor: Flavor) -> None:
    key = ARG_KEYS[flavor.name]
    records: List[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(level=logging.DEBUG)
    root = logging.getLogger()
    loggers = [root, logging.getLogger("urllib3"), logging.getLogger("llm_sync")]
    saved = [lg.level for lg in loggers]
    root.addHandler(handler)
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    try:
        server.reply(flavor.reply("fine"))
        run(flavor.provider(server, api_key=key))
        _drive_errors(server, flavor, key, api_key=key)
    finally:
        root.removeHandler(handler)
        for lg, level in zip(loggers, saved):
            lg.setLevel(level)
    assert records, "nothing was logged at DEBUG: the check would be vacuous"
    formatter = logging.Formatter("%(name)s %(message)s")
    for record in records:
        text = formatter.format(record) + repr(record.args)
        assert not leaks(text, key), text


# ---------------------------------------------------------------------------
# The CLI


def _cli(args: List[str], env_extra: Dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.endswith("_BASE_URL")}
    env.update(env_extra)
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "llm_sync", *args],
        cwd=str(cwd),
        env=env,
        capture_output=True,
        text=True,
        timeout=20,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("case", ["http_401", "in_band_error"])
def test_cli_error_output_never_shows_the_key(server: LoopbackServer, tmp_path: Path, case: str) -> None:
    pytest.importorskip("llm_sync.cli")
    flavor = FLAVORS["anthropic"]
    key = ENV_KEYS["anthropic"]
    if case == "http_401":
        server.reply(Reply.json(echo_key_body(flavor, 401, key), status=401))
    else:
        server.reply(flavor.reply(steps=[*flavor.start, flavor.text("x"), in_band_error(flavor, f"bad key {key}")]))
    done = _cli(
        ["chat", "-m", "anthropic:claude-sonnet-4-5", "say hi"],
        {"ANTHROPIC_API_KEY": key, "ANTHROPIC_BASE_URL": server.url},
        tmp_path,
    )
    assert done.returncode != 0
    assert done.stderr.strip(), "the CLI said nothing about the failure"
    assert len(server.requests) >= 1  # the request did reach the server with the key
    assert server.requests[0].headers["x-api-key"] == key
    assert not leaks(done.stdout + done.stderr, key), done.stdout + done.stderr


def test_cli_refuses_a_key_with_a_line_break_without_showing_it(server: LoopbackServer, tmp_path: Path) -> None:
    # It used to go out as a header, fail in requests with the whole key in the
    # message, and come back as a retryable NetworkError that the CLI printed.
    pytest.importorskip("llm_sync.cli")
    key = ENV_KEYS["anthropic"]
    broken = key[:12] + "\n" + key[12:]
    done = _cli(
        ["chat", "-m", "anthropic:claude-sonnet-4-5", "say hi"],
        {"ANTHROPIC_API_KEY": broken, "ANTHROPIC_BASE_URL": server.url},
        tmp_path,
    )
    assert done.returncode != 0
    assert "line break" in done.stderr and "ANTHROPIC_API_KEY" in done.stderr, done.stderr
    assert not leaks(done.stdout + done.stderr, key) and key[12:] not in done.stdout + done.stderr
    assert server.requests == []  # refused before anything was sent


# ---------------------------------------------------------------------------
# Traceback locals: what Sentry, Django's debug page and pytest --showlocals print


def _shown(value: Any, depth: int = 3) -> str:
    """A local as an error reporter shows it: mappings and sequences walked, repr elsewhere."""
    if depth and isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_shown(v, depth - 1)}" for k, v in value.items()) + "}"
    if depth and isinstance(value, (list, tuple)):
        return "[" + ", ".join(_shown(v, depth - 1) for v in value) + "]"
    try:
        return repr(value)
    except Exception:
        return "<repr failed>"


def locals_under(err: BaseException) -> str:
    """Every local of every frame in the tracebacks of ``err`` and the errors chained to it."""
    out, seen = [], set()
    e: Any = err
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        tb = e.__traceback__
        while tb is not None:
            out += [f"{tb.tb_frame.f_code.co_name}.{name} = {_shown(v)}" for name, v in tb.tb_frame.f_locals.items()]
            tb = tb.tb_next
        e = e.__cause__ or e.__context__
    return "\n".join(out)


def _failure(provider: Any) -> BaseException:
    # The frame that catches is part of the traceback too: it holds nothing but these.
    try:
        run(provider)
    except Exception as exc:
        return exc
    raise AssertionError("no error")


@pytest.mark.parametrize("flavor", ALL)
def test_the_key_is_in_no_traceback_locals(server: LoopbackServer, flavor: Flavor) -> None:
    key = ARG_KEYS[flavor.name]
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))  # bound, never listening: connection refused
    port = refused.getsockname()[1]
    try:
        errors = [_failure(flavor.build(f"http://127.0.0.1:{port}", key, 5.0, 0))]
    finally:
        refused.close()
    server.reply(
        Reply.json(echo_key_body(flavor, 401, key), status=401),  # the body is no local of send()
        Reply(status=302, headers={"location": "http://elsewhere.invalid/"}, body=[b""]),
        flavor.reply(steps=[*flavor.start, flavor.text("x"), Reset()]),
    )
    for _ in range(3):
        errors.append(_failure(flavor.provider(server, api_key=key)))
    assert [type(e).__name__ for e in errors][:2] == ["NetworkError", "InvalidApiKeyError"]
    for err in errors:
        shown = locals_under(err)
        assert "send.hidden = <hidden: " in shown or type(err).__name__ == "StreamInterruptedError", shown[:2000]
        assert not leaks(shown, key), [line for line in shown.splitlines() if key[4:-4] in line][:5]


BAD_HEADER_SECRET = "tok-0123456789abcdefXYZ"


def _send_failure(url: str) -> BaseException:
    """What ``send`` raises for a header value with a line break (built inline: no local holds it)."""
    from llm_sync._transport._http import Transport, default_classifier, send

    transport = Transport()
    try:
        send(transport, "POST", url, {"x-custom-token": BAD_HEADER_SECRET + "\n"}, b"{}", connect_timeout=2.0,
             read_timeout=2.0, classify=default_classifier)  # fmt: skip
    except Exception as exc:
        return exc
    finally:
        transport.close()
    raise AssertionError("no error")


def test_a_bad_header_value_is_named_without_its_value(server: LoopbackServer) -> None:
    err = _send_failure(server.url + "/v1")
    assert isinstance(err, ApiRequestError) and not err.retryable and "header" in str(err)
    assert err.__cause__ is None and err.__context__ is None
    assert BAD_HEADER_SECRET not in error_texts(err) and BAD_HEADER_SECRET not in locals_under(err)
    assert server.requests == []


# ---------------------------------------------------------------------------
# Transport rules around credentials


@pytest.mark.parametrize("flavor", ALL)
@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_no_credentials_follow_a_redirect_to_another_host(server: LoopbackServer, flavor: Flavor, status: int) -> None:
    with LoopbackServer() as elsewhere:
        elsewhere.reply(flavor.reply("stolen"))
        server.reply(Reply(status=status, headers={"location": f"{elsewhere.url}/steal"}, body=[b""]))
        with pytest.raises(ApiRequestError) as info:
            run(fast_retries(flavor.provider(server), max_retries=2))
        assert elsewhere.requests == []
        assert elsewhere.url in str(info.value)
    assert len(server.requests) == 1


def test_tls_verification_is_on_and_the_ca_bundle_variable_is_honoured(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from llm_sync.providers.anthropic import AnthropicProvider

    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    provider = AnthropicProvider(ARG_KEYS["anthropic"], base_url="https://api.anthropic.com")
    session = provider._transport().session()
    assert session.verify is True and session.trust_env is True
    settings = session.merge_environment_settings("https://api.anthropic.com/v1/messages", {}, None, None, None)
    assert settings["verify"] == str(bundle)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    settings = session.merge_environment_settings("https://api.anthropic.com/v1/messages", {}, None, None, None)
    assert settings["verify"] is True
    provider._transport().close()


def only_http_proxy(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """Send plain-HTTP requests through ``url`` and nothing else through any proxy."""
    for var in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HTTP_PROXY", url)
    monkeypatch.setenv("http_proxy", url)


PLAIN_HTTP = r"ignore:llm_sync is sending an API key over plain http"


@pytest.mark.filterwarnings(PLAIN_HTTP)
@pytest.mark.parametrize("flavor", ALL)
def test_a_proxy_from_the_environment_is_used(
    server: LoopbackServer, flavor: Flavor, monkeypatch: pytest.MonkeyPatch
) -> None:
    only_http_proxy(monkeypatch, server.url)
    server.reply(flavor.reply("via ", "proxy"))
    # .invalid never resolves: the answer can only come through the proxy (the loopback server).
    provider = flavor.build("http://llm-sync-proxy-test.invalid", ARG_KEYS[flavor.name], 5.0, 0)
    assert run(provider).text == "via proxy"
    assert server.requests[0].path.startswith("http://llm-sync-proxy-test.invalid")


@pytest.mark.filterwarnings(PLAIN_HTTP)
def test_proxy_settings_are_read_once_per_origin(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # Read when an origin is first used (like httpx), not on every request.
    only_http_proxy(monkeypatch, server.url)
    flavor = FLAVORS["openai"]
    server.reply(flavor.reply("one"), flavor.reply("two"))
    provider = flavor.build("http://llm-sync-proxy-test.invalid", ARG_KEYS["openai"], 5.0, 0)
    assert run(provider).text == "one"
    monkeypatch.delenv("HTTP_PROXY")
    monkeypatch.delenv("http_proxy")
    assert run(provider).text == "two"  # still through the proxy: .invalid never resolves
    assert [r.path.startswith("http://llm-sync-proxy-test.invalid") for r in server.requests] == [True, True]
    # A new provider (a new transport) reads the environment again.
    fresh = flavor.build("http://llm-sync-proxy-test.invalid", ARG_KEYS["openai"], 5.0, 0)
    with pytest.raises(LlmError, match=r"llm-sync-proxy-test\.invalid"):
        run(fresh)
    assert len(server.requests) == 2


@pytest.fixture
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget which origins were warned about, so this test sees the first warning."""
    from llm_sync._transport import _http

    monkeypatch.setattr(_http, "_checked_origins", set())


@pytest.mark.parametrize("flavor", ALL)
def test_a_key_over_plain_http_to_another_host_warns_once_per_origin(
    server: LoopbackServer, flavor: Flavor, monkeypatch: pytest.MonkeyPatch, fresh_warnings: None
) -> None:
    only_http_proxy(monkeypatch, server.url)  # the proxy stands in for a remote host
    server.reply(flavor.reply("one"), flavor.reply("two"), flavor.reply("three"))
    provider = flavor.build("http://llm-sync-proxy-test.invalid", ARG_KEYS[flavor.name], 5.0, 0)
    with pytest.warns(UserWarning, match=r"API key over plain http:// to llm-sync-proxy-test\.invalid") as caught:
        assert run(provider).text == "one"
        assert run(provider).text == "two"
        assert run(provider.with_model("another-model")).text == "three"
    assert len(caught) == 1
    assert not leaks(str(caught[0].message), ARG_KEYS[flavor.name])


def test_a_key_over_plain_http_is_not_sent_when_warnings_are_errors(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch, fresh_warnings: None
) -> None:
    # This suite runs with warnings as errors: the stream fails with the reason instead.
    only_http_proxy(monkeypatch, server.url)
    provider = FLAVORS["anthropic"].build("http://llm-sync-proxy-test.invalid", ARG_KEYS["anthropic"], 5.0, 0)
    with pytest.raises(ApiRequestError, match="API key over plain http://") as info:
        run(provider)
    assert not info.value.retryable and server.requests == []


def test_no_warning_for_loopback_or_without_a_key(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch, fresh_warnings: None
) -> None:
    # (Warnings are errors in this suite: any warning would fail the runs below.)
    from llm_sync.providers.ollama import OllamaProvider

    flavor = FLAVORS["anthropic"]
    for host in ("127.0.0.1", "localhost"):
        server.reply(flavor.reply("loopback"))
        assert run(flavor.build(f"http://{host}:{server.port}", ARG_KEYS["anthropic"], 5.0, 0)).text == "loopback"
    only_http_proxy(monkeypatch, server.url)
    server.reply(FLAVORS["ollama"].reply("no key"))
    keyless = OllamaProvider(model="llama-test", base_url="http://llm-sync-proxy-test.invalid")
    assert run(keyless).text == "no key"
    assert "authorization" not in server.requests[-1].headers


@pytest.mark.parametrize("flavor", ALL)
def test_a_netrc_entry_never_replaces_the_key(
    server: LoopbackServer, flavor: Flavor, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # requests lets a ~/.netrc password replace the Authorization header; our credentials win.
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login netrc-user password netrc-password\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HOME", str(tmp_path))
    server.reply(flavor.reply("ok"))
    assert run(flavor.build(server.url, ARG_KEYS[flavor.name], 5.0, 0)).text == "ok"
    sent = server.requests[0].headers
    assert not sent.get("authorization", "").startswith("Basic ")
    assert ARG_KEYS[flavor.name] in " ".join(str(v) for v in sent.values()) + server.requests[0].path


def test_cookies_the_server_sets_are_sent_back(server: LoopbackServer) -> None:
    # Gateways pin a client to a backend with a cookie; the session keeps it, as requests does.
    flavor = FLAVORS["anthropic"]
    server.reply(flavor.reply("one", headers={"set-cookie": "backend=b7; Path=/"}), flavor.reply("two"))
    provider = flavor.build(server.url, ARG_KEYS["anthropic"], 5.0, 0)
    assert run(provider).text == "one"
    assert run(provider).text == "two"
    assert "cookie" not in server.requests[0].headers
    assert server.requests[1].headers["cookie"] == "backend=b7"


# ---------------------------------------------------------------------------
# .env loading


def test_dotenv_never_overrides_a_set_variable(server: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from llm_sync.providers.anthropic import AnthropicProvider

    (tmp_path / ".env").write_text(f"ANTHROPIC_API_KEY={DOTENV_KEY}\nLLM_SYNC_TEST_DOTENV_ONLY=from-dotenv\n")
    monkeypatch.setenv("ANTHROPIC_API_KEY", ENV_KEYS["anthropic"])
    monkeypatch.delenv("LLM_SYNC_TEST_DOTENV_ONLY", raising=False)
    server.reply(FLAVORS["anthropic"].reply("ok"))
    provider = AnthropicProvider.from_env(base_url=server.url)
    run(provider)
    assert server.requests[0].headers["x-api-key"] == ENV_KEYS["anthropic"]
    assert os.environ["ANTHROPIC_API_KEY"] == ENV_KEYS["anthropic"]
    # from_env did apply the .env, for variables that were not set.
    assert os.environ.get("LLM_SYNC_TEST_DOTENV_ONLY") == "from-dotenv"
    monkeypatch.delenv("LLM_SYNC_TEST_DOTENV_ONLY")


def test_dotenv_is_not_loaded_at_import_or_by_a_constructor(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"LLM_SYNC_TEST_DOTENV_ONLY=from-dotenv\nANTHROPIC_API_KEY={DOTENV_KEY}\n")
    code = (
        "import os, llm_sync, llm_sync.providers.anthropic as a\n"
        "p = a.AnthropicProvider()\n"  # reads the key from .env without applying the file
        "print(os.environ.get('LLM_SYNC_TEST_DOTENV_ONLY'), os.environ.get('ANTHROPIC_API_KEY'))\n"
        "print(repr(p))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "LLM_SYNC_TEST"))}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=20
    )
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()[:2]
    assert first == "None None"
    assert not leaks(second, DOTENV_KEY)
