"""Vertex AI over loopback: Gemini and Claude URLs and bodies, Google's and Anthropic's errors, Google credentials.

Credentials are real google-auth objects: a service account (an RSA key made here)
whose ``token_uri`` is a second loopback server, found as application default
credentials through ``GOOGLE_APPLICATION_CREDENTIALS``, so refreshing before expiry
and after a 401 go through google-auth's own code. Error bodies follow what Vertex
sends (google.rpc.Status, wrapped in a one-element list; Anthropic's own shape for
the model's errors).
"""

from __future__ import annotations

import functools
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

from llm_sync import (
    ApiError,
    AssistantReasoning,
    ChatMessage,
    Context,
    ContextOverflowError,
    InvalidApiKeyError,
    LlmError,
    LlmResponse,
    MissingApiKeyError,
    OAuthError,
    RateLimitedError,
    ServerError,
    StopReason,
    ToolCallRequest,
    VertexAnthropicProvider,
    VertexGeminiProvider,
    VertexProvider,
    parse_model,
)
from llm_sync._messages import EncryptedReasoningContent
from llm_sync.providers.vertex import ANTHROPIC_VERSION, SCOPE, vertex_host
from tests.support.invariants import turn_problems
from tests.support.paths import REPO
from tests.support.replay import kinds, split_every, stream_body
from tests.support.secrets import CaptureLogs, error_texts, leaks, traceback_locals_text
from tests.support.server import LoopbackServer, RecordedRequest, Reply, sse_chunks, sse_event

PROJECT = "acme-ml-prod"
TOKEN = "ya29.c.vertex-access-token-Xq17Lp02Rt83Wm"
CLAUDE = "claude-sonnet-4-5@20250929"

_ENV = (
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_VERTEX_PROJECT",
    "ANTHROPIC_VERTEX_PROJECT_ID",
    "GOOGLE_CLOUD_LOCATION",
    "GOOGLE_VERTEX_LOCATION",
    "CLOUD_ML_REGION",
    "GOOGLE_VERTEX_BASE_URL",
    "ANTHROPIC_VERTEX_BASE_URL",
    "GOOGLE_APPLICATION_CREDENTIALS",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    saved = dict(os.environ)
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    # google-auth must never look for a metadata server or gcloud's own file here.
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.chdir(tmp_path)
    yield
    os.environ.clear()
    os.environ.update(saved)


def claude(server: LoopbackServer, **kw: Any) -> VertexAnthropicProvider:
    kw.setdefault("max_retries", 0)
    if "token_provider" not in kw:
        kw.setdefault("api_key", TOKEN)
    return VertexAnthropicProvider(model=kw.pop("model", CLAUDE), project=PROJECT, base_url=server.url, **kw)


def gemini(server: LoopbackServer, **kw: Any) -> VertexGeminiProvider:
    kw.setdefault("max_retries", 0)
    if "token_provider" not in kw:
        kw.setdefault("api_key", TOKEN)
    return VertexGeminiProvider(model=kw.pop("model", "gemini-2.5-flash"), project=PROJECT, base_url=server.url, **kw)


def chunks_of(provider: VertexProvider, ctx: Optional[Context] = None) -> List[LlmResponse]:
    with provider.stream_response(ctx or Context([ChatMessage.User("hi")])) as stream:
        return list(stream)


def failure(provider: VertexProvider) -> LlmError:
    with pytest.raises(LlmError) as info:
        chunks_of(provider)
    return info.value


def claude_events(text: str = "Hello from Vertex") -> List[Any]:
    return [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_vrtx_01Kq3Lm5Np7Rs9Tu",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-sonnet-4-5-20250929",
                    "content": [],
                    "stop_reason": None,
                    "usage": {"input_tokens": 14, "cache_read_input_tokens": 0, "output_tokens": 1},
                },
            },
        ),
        ("ping", {"type": "ping"}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 6}}),
        ("message_stop", {"type": "message_stop"}),
    ]


def claude_reply(text: str = "Hello from Vertex") -> Reply:
    return Reply(status=200, headers={"content-type": "text/event-stream"}, body=sse_chunks(*claude_events(text)), chunked=True)


def gemini_reply(text: str = "Hi") -> Reply:
    events = [
        {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}}], "modelVersion": "gemini-2.5-flash",
         "responseId": "r-vertex-1", "usageMetadata": {"trafficType": "ON_DEMAND"}},
        {"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]}, "finishReason": "STOP"}],
         "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1, "totalTokenCount": 4, "trafficType": "ON_DEMAND"},
         "modelVersion": "gemini-2.5-flash", "responseId": "r-vertex-1"},
    ]
    return Reply(status=200, headers={"content-type": "text/event-stream"}, body=sse_chunks(*events), chunked=True)


# ---------------------------------------------------------------------------
# URLs, hosts, bodies.


def test_hosts_follow_the_location() -> None:
    assert vertex_host("global") == "https://aiplatform.googleapis.com"
    assert vertex_host("us-east5") == "https://us-east5-aiplatform.googleapis.com"
    g = VertexGeminiProvider(TOKEN, project=PROJECT)  # location: global unless set
    assert g.location == "global" and g.base_url == "https://aiplatform.googleapis.com"
    assert g.model_url("streamGenerateContent") == (
        f"https://aiplatform.googleapis.com/v1/projects/{PROJECT}/locations/global/publishers/google/models/"
        "gemini-2.5-flash:streamGenerateContent"
    )
    c = VertexAnthropicProvider(TOKEN, project=PROJECT, location="us-east5", model=CLAUDE)
    assert c.model_url("streamRawPredict") == (
        f"https://us-east5-aiplatform.googleapis.com/v1/projects/{PROJECT}/locations/us-east5/publishers/"
        f"anthropic/models/{CLAUDE}:streamRawPredict"
    )
    assert c.with_location("global").base_url == "https://aiplatform.googleapis.com"
    with pytest.raises(ValueError, match="region name"):
        VertexGeminiProvider(TOKEN, project=PROJECT, location="us-east5/../x")
    with pytest.raises(ValueError, match="region name"):
        c.with_location("evil.example.com#")
    assert c.with_base_url("http://127.0.0.1:9/v1/").base_url == "http://127.0.0.1:9"


def test_location_and_project_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_VERTEX_PROJECT_ID", "from-anthropic-var")
    monkeypatch.setenv("CLOUD_ML_REGION", "europe-west1")
    p = VertexAnthropicProvider.from_env(api_key=TOKEN, model=CLAUDE)
    assert (p.project, p.location) == ("from-anthropic-var", "europe-west1")
    assert p.base_url == "https://europe-west1-aiplatform.googleapis.com"
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "from-google-var")  # Google's own name comes first
    assert VertexAnthropicProvider.from_env(api_key=TOKEN, model=CLAUDE).project == "from-google-var"
    monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", "http://127.0.0.1:9/v1")
    assert VertexGeminiProvider.from_env(api_key=TOKEN).base_url == "http://127.0.0.1:9"


def test_claude_goes_to_stream_raw_predict_with_the_version_in_the_body(server: LoopbackServer) -> None:
    server.reply(claude_reply())
    ctx = Context([ChatMessage.System("Be brief."), ChatMessage.User("hi")])
    chunks = chunks_of(claude(server, temperature=0.2), ctx)
    assert kinds(chunks) == ["Start", "Text", "Usage", "Done"]
    assert chunks[0] == LlmResponse.Start("msg_vrtx_01Kq3Lm5Np7Rs9Tu")
    req = server.requests[0]
    assert req.path == f"/v1/projects/{PROJECT}/locations/global/publishers/anthropic/models/{CLAUDE}:streamRawPredict"
    assert req.headers["authorization"] == f"Bearer {TOKEN}"
    assert "x-api-key" not in req.headers and "anthropic-version" not in req.headers
    body = req.json()
    assert body["anthropic_version"] == ANTHROPIC_VERSION == "vertex-2023-10-16"
    assert "model" not in body  # it is in the URL
    assert "cache_control" not in body  # the request-level marker; the system block keeps its own
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert body["stream"] is True and body["max_tokens"] == 16384 and body["temperature"] == 0.2


def test_gemini_goes_to_stream_generate_content(server: LoopbackServer) -> None:
    server.reply(gemini_reply())
    chunks = chunks_of(gemini(server, max_tokens=100))
    assert kinds(chunks) == ["Start", "Text", "Usage", "Done"]
    req = server.requests[0]
    assert req.path == (
        f"/v1/projects/{PROJECT}/locations/global/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    )
    assert req.headers["authorization"] == f"Bearer {TOKEN}" and "x-goog-api-key" not in req.headers
    body = req.json()
    assert body["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
    assert body["generationConfig"]["maxOutputTokens"] == 100


def test_thinking_and_signatures_written_on_vertex_are_replayed_there() -> None:
    thinking = json.dumps([{"type": "thinking", "thinking": "hmm", "signature": "sig-1"}])
    turn = ChatMessage.Assistant(
        "It is sunny.",
        reasoning=AssistantReasoning(encrypted_content=EncryptedReasoningContent("msg_1", f"vertex:{CLAUDE}", thinking)),
        tool_calls=[ToolCallRequest("toolu_1", "weather", "{}")],
    )
    body = VertexAnthropicProvider(TOKEN, project=PROJECT, model=CLAUDE).request_body(
        Context([ChatMessage.User("weather?"), turn])
    )
    assert body["messages"][1]["content"][0] == {"type": "thinking", "thinking": "hmm", "signature": "sig-1"}
    sigs = json.dumps({"calls": {"c1": "gsig"}})
    g_turn = ChatMessage.Assistant(
        "",
        reasoning=AssistantReasoning(encrypted_content=EncryptedReasoningContent("r1", "vertex:gemini-2.5-flash", sigs)),
        tool_calls=[ToolCallRequest("c1", "weather", "{}")],
    )
    g_body = VertexGeminiProvider(TOKEN, project=PROJECT).request_body(Context([ChatMessage.User("w?"), g_turn]))
    assert g_body["contents"][1]["parts"][0]["thoughtSignature"] == "gsig"


@pytest.mark.parametrize(
    "name, calls",
    [
        ("vercel_vertex_stream_fc_partial_args.ndjson", [("getWeather", {"location": "Boston"}), ("getWeather", {"location": "San Francisco"})]),
        ("vercel_vertex_stream_fc_array_args_missing_terminal.ndjson", None),
    ],
)
def test_recorded_vertex_gemini_streams_replay(server: LoopbackServer, wire: Path, name: str, calls: Any) -> None:
    lines = [json.loads(line) for line in (wire / "gemini" / name).read_text(encoding="utf-8").splitlines() if line.strip()]
    body = b"".join(sse_event(None, e) for e in lines)
    chunks = stream_body(server, gemini(server, model="gemini-3.1-pro-preview"), split_every(body, 97), framing="sse")
    assert turn_problems(chunks) == []
    done = [c for c in chunks if isinstance(c, LlmResponse.ToolRequestComplete)]
    if calls is not None:
        assert [(c.tool_call.name, json.loads(c.tool_call.arguments)) for c in done] == calls
    assert chunks[-1].stop_reason is StopReason.TOOL_CALLS  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------
# The registry entry picks the class.


def test_vertex_picks_the_class_by_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    c = VertexProvider(TOKEN, model=CLAUDE)
    g = VertexProvider(TOKEN)
    assert type(c) is VertexAnthropicProvider and type(g) is VertexGeminiProvider
    assert isinstance(c, VertexProvider) and c.provider_id == g.provider_id == "vertex"
    with pytest.raises(ValueError, match="gemini-\\* and claude-\\*"):
        VertexProvider(TOKEN, model="llama-4-maverick")
    with pytest.raises(ValueError, match="VertexAnthropicProvider"):
        VertexGeminiProvider(TOKEN, model=CLAUDE)
    # with_model crosses over, keeping project, location and credentials.
    crossed = g.with_model(CLAUDE)
    assert type(crossed) is VertexAnthropicProvider and crossed.project == PROJECT and crossed.max_tokens == 16384
    back = crossed.with_model("gemini-2.5-pro")
    assert type(back) is VertexGeminiProvider and back.max_tokens is None
    with pytest.raises(ValueError, match="temperature"):
        VertexGeminiProvider(TOKEN, temperature=1.5).with_model(CLAUDE)
    for p in (c, g, crossed):
        again = pickle.loads(pickle.dumps(p))
        assert type(again) is type(p) and repr(again) == repr(p)


def test_model_strings_dispatch_and_carry_the_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    p, m = parse_model(f"vertex:{CLAUDE}")
    assert type(p) is VertexAnthropicProvider and m.context_window == p.context_window() == 200_000
    p, m = parse_model("vertex:gemini-2.5-pro")
    assert type(p) is VertexGeminiProvider and m.context_window and m.context_window > 1_000_000
    p, _ = parse_model("vertex:claude-opus-4-6")  # Vertex's undated ids, as Vertex spells them
    assert p.model_name == "claude-opus-4-6"  # type: ignore[attr-defined]
    from llm_sync._parse import UnknownModelWarning

    # A model the catalog lacks is sent as written, with a warning naming the close ones.
    with pytest.warns(UnknownModelWarning, match=f"vertex:{CLAUDE}"):
        parse_model("vertex:claude-sonnet-4-5")


# ---------------------------------------------------------------------------
# Errors.


def _google(code: int, status: str, message: str) -> List[Dict[str, Any]]:
    return [{"error": {"code": code, "message": message, "status": status}}]


@pytest.mark.parametrize("which", ["claude", "gemini"])
def test_google_front_end_errors(server: LoopbackServer, which: str) -> None:
    build = claude if which == "claude" else gemini
    quota = _google(
        429,
        "RESOURCE_EXHAUSTED",
        "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model with base model: "
        "anthropic-claude-sonnet-4-5. Please submit a quota increase request.",
    )
    missing = _google(
        404,
        "NOT_FOUND",
        f"Publisher Model `projects/{PROJECT}/locations/global/publishers/anthropic/models/claude-x` was not found "
        "or your project does not have access to it.",
    )
    denied = _google(403, "PERMISSION_DENIED", "Permission 'aiplatform.endpoints.predict' denied on resource")
    server.reply(Reply.json(quota, status=429), Reply.json(missing, status=404), Reply.json(denied, status=403))
    err = failure(build(server))
    assert isinstance(err, RateLimitedError) and err.message.startswith("Vertex AI answered HTTP 429")
    err = failure(build(server))
    assert type(err) is ApiError and "location 'global'" in err.message and PROJECT in err.message
    err = failure(build(server))
    assert isinstance(err, InvalidApiKeyError) and "application-default login" in err.message


def test_the_models_own_errors_are_read_in_anthropics_shape(server: LoopbackServer) -> None:
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    too_long = {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "prompt is too long: 214732 tokens > 200000 maximum"},
    }
    server.reply(Reply.json(overloaded, status=529), claude_reply("after the overload"), Reply.json(too_long, status=400))
    chunks = chunks_of(claude(server, max_retries=1))
    assert "".join(c.chunk for c in chunks if isinstance(c, LlmResponse.Text)) == "after the overload"
    err = failure(claude(server))
    assert isinstance(err, ContextOverflowError) and (err.requested_tokens, err.max_tokens) == (214732, 200000)
    assert err.message.startswith("Vertex AI (Claude) answered HTTP 400")
    # In the stream, an overload before content is retried like Anthropic's.
    server.reply(
        Reply(status=200, headers={"content-type": "text/event-stream"},
              body=sse_chunks(("error", overloaded)), chunked=True),
        claude_reply("second try"),
    )
    assert kinds(chunks_of(claude(server, max_retries=1))) == ["Start", "Text", "Usage", "Done"]
    assert len(server.requests) == 5
    server.reply(Reply.json(overloaded, status=529))
    assert isinstance(failure(claude(server)), ServerError)


def test_a_gemini_overflow_in_vertexs_list_shape(server: LoopbackServer) -> None:
    body = [
        {
            "error": {
                "code": 400,
                "message": "The input token count (3475108) exceeds the maximum number of tokens allowed (1048576).",
                "errors": [{"message": "The input token count (3475108) exceeds the maximum number of tokens allowed (1048576).",
                            "domain": "global", "reason": "badRequest"}],
                "status": "INVALID_ARGUMENT",
            }
        }
    ]
    server.reply(Reply.json(body, status=400))
    err = failure(gemini(server))
    assert isinstance(err, ContextOverflowError) and (err.requested_tokens, err.max_tokens) == (3475108, 1048576)


# ---------------------------------------------------------------------------
# Google credentials: application default credentials through google-auth.


@functools.lru_cache(maxsize=1)
def _private_key_pem() -> str:
    """One RSA key for the module's service accounts (making one takes a good part of a second)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture
def service_account(tmp_path: Path) -> Iterator[Dict[str, Any]]:
    """A service-account key file whose token endpoint is a loopback server, as ADC."""
    pytest.importorskip("google.auth")
    pytest.importorskip("cryptography")  # to make the key here; google-auth signs with it or rsa
    pem = _private_key_pem()
    with LoopbackServer() as tokens:
        info = {
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": "0123456789abcdef",
            "private_key": pem,
            "client_email": f"llm-sync-test@{PROJECT}.iam.gserviceaccount.com",
            "client_id": "1234567890",
            "token_uri": f"{tokens.url}/token",
        }
        path = tmp_path / "sa.json"
        path.write_text(json.dumps(info))
        os.environ["GOOGLE_APPLICATION_CREDENTIALS"] = str(path)
        os.environ["GOOGLE_CLOUD_PROJECT"] = PROJECT
        yield {"server": tokens, "info": info, "path": path}


def token_reply(n: int, expires_in: int) -> Reply:
    return Reply.json({"access_token": f"{TOKEN}-{n}", "expires_in": expires_in, "token_type": "Bearer"})


def _assertion_scope(req: RecordedRequest) -> str:
    import base64
    from urllib.parse import parse_qs

    form = parse_qs(req.text)
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    payload = form["assertion"][0].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["scope"])


def test_adc_tokens_are_fetched_scoped_and_reused_until_near_expiry(
    server: LoopbackServer, service_account: Dict[str, Any]
) -> None:
    tokens: LoopbackServer = service_account["server"]
    tokens.reply(token_reply(1, 3600), token_reply(2, 60), token_reply(3, 60))
    server.reply(*(claude_reply() for _ in range(4)))
    lasting = VertexAnthropicProvider.from_env(model=CLAUDE, base_url=server.url, max_retries=0)
    chunks_of(lasting)
    chunks_of(lasting)  # the hour-long token is reused
    assert len(tokens.requests) == 1 and _assertion_scope(tokens.requests[0]) == SCOPE
    short = VertexAnthropicProvider.from_env(model=CLAUDE, base_url=server.url, max_retries=0)
    chunks_of(short)  # a token that lapses in 60 s is inside google-auth's refresh margin:
    chunks_of(short)  # it is renewed before each request
    assert len(tokens.requests) == 3
    assert [r.headers["authorization"] for r in server.requests] == [
        f"Bearer {TOKEN}-1", f"Bearer {TOKEN}-1", f"Bearer {TOKEN}-2", f"Bearer {TOKEN}-3"
    ]


def test_a_401_refreshes_the_adc_token_and_sends_once_more(
    server: LoopbackServer, service_account: Dict[str, Any]
) -> None:
    tokens: LoopbackServer = service_account["server"]
    tokens.reply(token_reply(1, 3600), token_reply(2, 3600))
    expired = _google(401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token.")
    server.reply(Reply.json(expired, status=401), gemini_reply("again"))
    chunks = chunks_of(VertexGeminiProvider.from_env(base_url=server.url, max_retries=0))
    assert "".join(c.chunk for c in chunks if isinstance(c, LlmResponse.Text)) == "again"
    assert [r.headers["authorization"] for r in server.requests] == [f"Bearer {TOKEN}-1", f"Bearer {TOKEN}-2"]
    assert len(tokens.requests) == 2


def test_credentials_objects_and_callables_as_token_provider(
    server: LoopbackServer, service_account: Dict[str, Any]
) -> None:
    from google.oauth2 import service_account as sa

    tokens: LoopbackServer = service_account["server"]
    tokens.reply(token_reply(1, 3600))
    creds = sa.Credentials.from_service_account_info(service_account["info"])  # unscoped: scoped here
    calls: List[int] = []

    def fn() -> str:
        calls.append(1)
        return f"{TOKEN}-fn"

    server.reply(claude_reply(), claude_reply())
    chunks_of(claude(server, token_provider=creds))
    chunks_of(claude(server, token_provider=fn))
    assert _assertion_scope(tokens.requests[0]) == SCOPE
    assert [r.headers["authorization"] for r in server.requests] == [f"Bearer {TOKEN}-1", f"Bearer {TOKEN}-fn"]
    assert calls == [1]


def test_adc_that_cannot_be_found_or_refreshed_is_an_oauth_error(
    server: LoopbackServer, service_account: Dict[str, Any]
) -> None:
    tokens: LoopbackServer = service_account["server"]
    tokens.reply(Reply.json({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}, status=400))
    err = failure(VertexGeminiProvider.from_env(base_url=server.url, max_retries=0))
    assert isinstance(err, OAuthError) and "invalid_grant" in err.message
    os.environ["GOOGLE_APPLICATION_CREDENTIALS"] = str(service_account["path"]) + ".missing"
    err = failure(VertexGeminiProvider.from_env(base_url=server.url, max_retries=0))
    assert isinstance(err, OAuthError) and "application-default login" in err.message
    assert server.requests == []


def test_from_env_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(MissingApiKeyError) as info:
        VertexProvider.from_env()
    assert info.value.variables == ("GOOGLE_CLOUD_PROJECT",)
    # Without google-auth (no extra) and without a token, both are named at once.
    shadow = tmp_path / "shadow"
    (shadow / "google").mkdir(parents=True)
    (shadow / "google" / "__init__.py").write_text("")
    code = (
        "from llm_sync import VertexProvider, MissingApiKeyError\n"
        "try:\n    VertexProvider.from_env(model='claude-opus-4-6')\n"
        "except MissingApiKeyError as e:\n    print(e.variables, '|', e.message)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in _ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(shadow), str(REPO)])
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True)
    assert "('GOOGLE_CLOUD_PROJECT',)" in out.stdout and 'llm-sync[vertex]' in out.stdout, out.stdout + out.stderr


# ---------------------------------------------------------------------------
# Secrets.


def test_the_token_never_shows(server: LoopbackServer, service_account: Dict[str, Any]) -> None:
    tokens: LoopbackServer = service_account["server"]
    tokens.reply(token_reply(1, 3600))
    secret = f"{TOKEN}-1"
    provider = VertexAnthropicProvider.from_env(model=CLAUDE, base_url=server.url, max_retries=0)
    echoed = [
        Reply.json(_google(403, "PERMISSION_DENIED", f"token {secret} may not"), status=403),
        Reply.json({"type": "error", "error": {"type": "invalid_request_error", "message": f"bad {secret}"}}, status=400),
        Reply.json(_google(429, "RESOURCE_EXHAUSTED", f"quota {secret}"), status=429),
        Reply(status=200, headers={"content-type": "text/event-stream"}, chunked=True,
              body=sse_chunks(*claude_events()[:3], ("error", {"type": "error", "error": {"type": "api_error", "message": secret}}))),
    ]
    texts: List[str] = []
    with CaptureLogs() as logs:
        for reply in echoed:
            server.reply(reply)
            texts.append(error_texts(failure(provider)))
        server.reply(Reply.json(_google(403, "PERMISSION_DENIED", "denied"), status=403))
        locals_text = traceback_locals_text(failure(provider))
    assert "authorization" in locals_text and not locals_text.startswith("0 frames")
    for text in [*texts, locals_text, logs.text(), repr(provider), provider.display_name()]:
        assert not leaks(text, secret), text
    assert server.requests[0].headers["authorization"] == f"Bearer {secret}"
    fixed = claude(server)
    assert not leaks(repr(fixed) + repr(pickle.loads(pickle.dumps(fixed))), TOKEN)


# ---------------------------------------------------------------------------
# Live (LLM_SYNC_LIVE=1, GOOGLE_CLOUD_PROJECT and application default credentials).


@pytest.mark.live
@pytest.mark.parametrize("model", ["gemini-2.5-flash", CLAUDE])
def test_live_vertex(model: str) -> None:
    if not os.environ.get("GOOGLE_CLOUD_PROJECT"):
        pytest.skip("set GOOGLE_CLOUD_PROJECT (and GOOGLE_CLOUD_LOCATION) and sign in with gcloud")
    provider = VertexProvider.from_env(model=model)
    with provider.stream_response(Context([ChatMessage.User("Reply with the single word: pong")])) as stream:
        reply = stream.collect()
    assert "pong" in reply.text.lower()
    assert reply.stop_reason is StopReason.END_TURN and reply.usage is not None
