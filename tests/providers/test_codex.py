"""CodexProvider over loopback: recordings served without an SSE content type, request bodies, headers, token refresh on 401, errors."""

from __future__ import annotations

import base64
import json
import os
import pickle
import stat
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

import llm_sync.providers.codex._oauth as codex
from llm_sync import (
    ApiError,
    AssistantReasoning,
    ChatMessage,
    ContentBlock,
    Context,
    ContextOverflowError,
    InvalidApiKeyError,
    LlmResponse,
    OAuthError,
    RateLimitedError,
    ReasoningEffort,
    ServerError,
    StopReason,
    ToolCallError,
    ToolCallRequest,
    ToolCallResult,
    UnsupportedContentError,
)
from llm_sync._messages import EncryptedReasoningContent
from llm_sync.providers.codex import (
    DEFAULT_INSTRUCTIONS,
    CodexProvider,
    CredentialStore,
    build_request,
)
from tests.support.replay import kinds, split_every
from tests.support.server import LoopbackServer, RecordedRequest, Reply
from tests.support.tools import WEATHER

SSE_FILES = [
    "aether_01_minimal.sse",
    "aether_02_reasoning.sse",
    "llm_gpt55_tool_use_stream.sse",
    "pyd_function_call_gpt4o.sse",
    "pyd_reasoning_summary_code_interpreter.sse",
    "pyd_reasoning_summary_o3mini.sse",
    "pyd_text_after_tool_gpt4o.sse",
    "pyd_web_search_cached.sse",
]
# What the Codex backend sends instead of text/event-stream (or nothing at all).
NOT_SSE = {"content-type": "application/json"}
ACCOUNT = "acct-0a1b2c3d"


def jwt(exp_in: float = 3600.0, account: Optional[str] = ACCOUNT, tag: str = "a") -> str:
    def part(obj: Dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    claims: Dict[str, Any] = {"exp": int(time.time() + exp_in), "tag": tag}
    if account:
        claims["https://api.openai.com/auth"] = {"chatgpt_account_id": account}
    return f"{part({'alg': 'RS256'})}.{part(claims)}.signature-{tag}-0123456789"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No test reads or writes the real ~/.codex or ~/.config."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "codex-home"))
    monkeypatch.delenv("CODEX_BASE_URL", raising=False)
    yield tmp_path
    codex._forget_managers()


def write_creds(path: Path, access: str, refresh: str = "rt-1", **extra: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"OPENAI_API_KEY": None, "tokens": {"access_token": access, "refresh_token": refresh}}
    data.update(extra)
    path.write_text(json.dumps(data))
    return path


def provider(server: LoopbackServer, creds: Optional[Path] = None, **kw: Any) -> CodexProvider:
    if creds is None and "api_key" not in kw:
        kw["api_key"] = jwt()
    return CodexProvider(
        model=kw.pop("model", "gpt-5.5"),
        base_url=f"{server.url}/backend-api/codex",
        credentials=str(creds) if creds else None,
        issuer=server.url,
        **kw,
    )


def events_body(*events: Dict[str, Any]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def created(rid: str = "resp_1") -> Dict[str, Any]:
    return {"type": "response.created", "response": {"id": rid, "status": "in_progress"}}


def text_delta(t: str) -> Dict[str, Any]:
    return {"type": "response.output_text.delta", "item_id": "msg_1", "delta": t}


USAGE = {
    "input_tokens": 50,
    "input_tokens_details": {"cached_tokens": 40},
    "output_tokens": 9,
    "output_tokens_details": {"reasoning_tokens": 4},
}


def completed() -> Dict[str, Any]:
    return {
        "type": "response.completed",
        "response": {"id": "resp_1", "status": "completed", "usage": USAGE},
    }


HELLO = events_body(created(), text_delta("Hel"), text_delta("lo"), completed())
TOOL_TURN = events_body(
    created(),
    {"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "delta": "Need weather."},
    {
        "type": "response.output_item.done",
        "item": {"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": "ENC-1"},
    },
    {
        "type": "response.output_item.added",
        "item": {
            "id": "fc_1",
            "type": "function_call",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": "",
        },
    },
    {
        "type": "response.function_call_arguments.delta",
        "item_id": "fc_1",
        "delta": '{"city":"Paris"}',
    },
    {
        "type": "response.function_call_arguments.done",
        "item_id": "fc_1",
        "arguments": '{"city":"Paris"}',
    },
    completed(),
)


def backend_reply(body: bytes, headers: Optional[Dict[str, str]] = None) -> Reply:
    return Reply(
        headers=NOT_SSE if headers is None else headers, body=split_every(body, 512), chunked=True
    )


# --- conformance: real recordings, served as the Codex backend serves them -------------------


def sse_events(body: bytes) -> List[Dict[str, Any]]:
    return [
        json.loads(line[5:])
        for line in body.decode("utf-8").splitlines()
        if line.startswith("data:") and line[5:].strip() not in ("", "[DONE]")
    ]


def expected(events: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Read independently of the parser: the final response object and the *.done events."""
    final = next(e for e in events if e["type"] == "response.completed")["response"]
    u = final["usage"]
    return {
        "id": next(e for e in events if e["type"] == "response.created")["response"]["id"],
        "text": "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta"),
        "calls": [
            (e["item"]["call_id"], e["item"]["name"], json.loads(e["item"]["arguments"]))
            for e in events
            if e["type"] == "response.output_item.done" and e["item"]["type"] == "function_call"
        ],
        "encrypted": [
            e["item"]["encrypted_content"]
            for e in events
            if e["type"] == "response.output_item.done"
            and e["item"]["type"] == "reasoning"
            and e["item"].get("encrypted_content")
        ],
        "usage": LlmResponse.Usage(
            u["input_tokens"],
            u["output_tokens"],
            cached_input_tokens=u["input_tokens_details"]["cached_tokens"],
            reasoning_tokens=u["output_tokens_details"]["reasoning_tokens"],
        ),
        "stop": StopReason.TOOL_CALLS
        if any(o["type"] == "function_call" for o in final["output"])
        else StopReason.END_TURN,
    }


@pytest.mark.parametrize("name", SSE_FILES)
@pytest.mark.parametrize("ctype", [NOT_SSE, {}], ids=["json-content-type", "no-content-type"])
def test_recording_served_without_sse_content_type(
    server: LoopbackServer, wire: Path, name: str, ctype: Dict[str, str]
) -> None:
    raw = (wire / "openai_responses" / name).read_bytes()
    want = expected(sse_events(raw))
    server.reply(backend_reply(raw, ctype))
    with provider(server).stream_response(Context([ChatMessage.User("hi")])) as stream:
        chunks = list(stream)
    assert chunks[0] == LlmResponse.Start(want["id"])
    assert chunks[-1] == LlmResponse.Done(want["stop"], "completed")
    assert chunks[-2] == want["usage"] and kinds(chunks).count("Usage") == 1
    assert "".join(c.chunk for c in chunks if isinstance(c, LlmResponse.Text)) == want["text"]
    done = [c.tool_call for c in chunks if isinstance(c, LlmResponse.ToolRequestComplete)]
    assert [(t.id, t.name, t.parsed_arguments()) for t in done] == want["calls"]
    enc = [c for c in chunks if isinstance(c, LlmResponse.EncryptedReasoning)]
    if want["encrypted"]:
        assert [i["encrypted_content"] for i in json.loads(enc[0].content)] == want["encrypted"]
    else:
        assert enc == []
    assert server.requests[0].path == "/backend-api/codex/responses"


def test_tool_use_recording_literal_values(server: LoopbackServer, wire: Path) -> None:
    raw = (wire / "openai_responses" / "llm_gpt55_tool_use_stream.sse").read_bytes()
    server.reply(backend_reply(raw))
    result = provider(server).stream_response(Context([ChatMessage.User("hi")])).collect()
    assert [(t.id, t.name, t.parsed_arguments()) for t in result.tool_calls] == [
        ("call_sVidsfFJ6zlzRpelrPkTPlpd", "multiply", {"a": 1231, "b": 2331})
    ]
    assert result.stop_reason is StopReason.TOOL_CALLS
    assert result.usage == LlmResponse.Usage(58, 23, cached_input_tokens=0, reasoning_tokens=0)


@pytest.mark.parametrize(
    ("name", "detail"),
    [
        ("err_400_instructions_required.json", "Instructions are required"),
        ("err_400_stream_required.json", "Stream must be set to true"),
    ],
)
def test_detail_error_bodies(server: LoopbackServer, wire: Path, name: str, detail: str) -> None:
    server.reply(Reply.json(json.loads((wire / "codex" / name).read_text()), status=400))
    with pytest.raises(ApiError) as info:
        list(provider(server, max_retries=2).stream_response(Context([ChatMessage.User("hi")])))
    assert type(info.value) is ApiError
    assert detail in str(info.value) and info.value.status == 400
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("name", "resets", "plan"),
    [
        ("issue_err_429_usage_limit_reached_free.json", 602705, "free"),
        ("issue_err_429_usage_limit_reached_plus.json", 13872, "plus"),
    ],
)
def test_usage_limit_bodies(
    server: LoopbackServer, wire: Path, name: str, resets: int, plan: str
) -> None:
    server.reply(Reply.json(json.loads((wire / "codex" / name).read_text()), status=429))
    with pytest.raises(RateLimitedError) as info:
        list(provider(server, max_retries=2).stream_response(Context([ChatMessage.User("hi")])))
    err = info.value
    assert err.resets_in_seconds == resets and err.retry_after == resets
    assert f"on the {plan} plan" in str(err) and "resets in" in str(err)
    # A reset hours or days away is not waited for: one request, raised at once.
    assert len(server.requests) == 1


def test_usage_limit_that_resets_soon_is_retried(server: LoopbackServer) -> None:
    limit = {"error": {"type": "usage_limit_reached", "message": "limit", "resets_in_seconds": 0}}
    server.reply(Reply.json(limit, status=429), backend_reply(HELLO))
    result = provider(server).stream_response(Context([ChatMessage.User("hi")])).collect()
    assert result.text == "Hello" and len(server.requests) == 2


# --- request building ----------------------------------------------------------------------


def test_body_defaults_instructions_effort_include_and_text() -> None:
    body = build_request(Context([ChatMessage.User("hi")]), "gpt-5.5")
    assert body == {
        "model": "gpt-5.5",
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
        ],
        "instructions": DEFAULT_INSTRUCTIONS,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "include": ["reasoning.encrypted_content"],
        "store": False,
        "stream": True,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
    }


def test_body_system_tools_effort_cache_key_image_and_results() -> None:
    call = ToolCallRequest("call_9", "get_weather", '{"city":"Oslo"}')
    ctx = Context(
        [
            ChatMessage.System("Be brief."),
            ChatMessage.User(
                [ContentBlock.Text("look"), ContentBlock.Image("iVBORw0KGgo=", "image/png")]
            ),
            ChatMessage.Assistant("checking", tool_calls=[call]),
            ChatMessage.ToolCallResult(ToolCallResult.from_request(call, "3°C")),
            ChatMessage.ToolCallResult(ToolCallError.from_request(call, "timeout")),
            ChatMessage.Summary("earlier talk"),
            ChatMessage.Error("network hiccup"),
        ],
        tools=[WEATHER],
    )
    ctx.set_reasoning_effort(ReasoningEffort.HIGH)
    ctx.set_prompt_cache_key("conv-42")
    body = build_request(ctx, "gpt-5.5")
    assert body["instructions"] == "Be brief."
    assert body["reasoning"] == {"effort": "high", "summary": "auto"}
    assert body["prompt_cache_key"] == "conv-42"
    assert body["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather for a city.",
            "parameters": WEATHER.schema,
        }
    ]
    items = body["input"]
    assert items[0]["content"][1] == {
        "type": "input_image",
        "detail": "auto",
        "image_url": "data:image/png;base64,iVBORw0KGgo=",
    }
    assert items[1] == {"type": "message", "role": "assistant", "content": "checking"}
    assert items[2] == {
        "type": "function_call",
        "call_id": "call_9",
        "name": "get_weather",
        "arguments": '{"city":"Oslo"}',
    }
    assert items[3] == {"type": "function_call_output", "call_id": "call_9", "output": "3°C"}
    assert items[4] == {
        "type": "function_call_output",
        "call_id": "call_9",
        "output": "Error: timeout",
    }
    assert items[5]["role"] == "user" and "earlier talk" in items[5]["content"][0]["text"]
    assert len(items) == 6  # the Error note is for the user, not the model


def test_audio_is_refused_before_sending(server: LoopbackServer) -> None:
    ctx = Context([ChatMessage.User([ContentBlock.Audio("UklGRg==", "audio/wav")])])
    with pytest.raises(UnsupportedContentError, match="Codex does not take audio input"):
        list(provider(server).stream_response(ctx))
    assert server.requests == []


def test_custom_instructions_when_no_system_message() -> None:
    p = CodexProvider(jwt(), instructions="You write code.")
    assert p.request_body(Context([ChatMessage.User("x")]))["instructions"] == "You write code."


# --- headers, identity, configuration -------------------------------------------------------


def test_headers_url_and_token_never_shown(server: LoopbackServer) -> None:
    token = jwt(tag="hdr")
    p = provider(server, api_key=token)
    server.reply(backend_reply(HELLO))
    assert p.stream_response(Context([ChatMessage.User("hi")])).collect().text == "Hello"
    h = server.requests[0].headers
    assert h["authorization"] == f"Bearer {token}"
    assert h["chatgpt-account-id"] == ACCOUNT
    assert h["openai-beta"] == "responses=experimental"
    assert h["originator"] == "codex_cli_rs"
    assert token not in repr(p)
    server.reply(Reply.json({"detail": f"bad token {token}"}, status=401))
    with pytest.raises(InvalidApiKeyError) as info:
        list(p.stream_response(Context([ChatMessage.User("hi")])))
    assert token not in str(info.value) and token not in (info.value.body or "")
    assert "api_key=" in str(info.value)
    assert len(server.requests) == 2  # the 401 of a fixed token: no refresh, no re-send


def test_identity_env_base_url_and_pickling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_BASE_URL", "http://127.0.0.1:9/backend-api/codex/")
    p = CodexProvider.from_env(api_key=jwt())
    assert p.base_url == "http://127.0.0.1:9/backend-api/codex"
    assert p.display_name() == "Codex (gpt-5.5)"
    q = pickle.loads(pickle.dumps(p.with_model("gpt-5.2-codex")))
    assert q.model_name == "gpt-5.2-codex" and q.base_url == p.base_url
    assert CodexProvider(jwt()).base_url == "http://127.0.0.1:9/backend-api/codex"
    monkeypatch.delenv("CODEX_BASE_URL")
    assert CodexProvider(jwt()).base_url == "https://chatgpt.com/backend-api/codex"


def test_missing_credentials_tell_how_to_sign_in(server: LoopbackServer, tmp_path: Path) -> None:
    # Building the provider needs no sign-in (the catalog and model strings use it) ...
    p = CodexProvider(base_url=f"{server.url}/backend-api/codex", issuer=server.url)
    assert p.context_window() is not None
    with pytest.raises(OAuthError, match="llm-sync login codex"):
        list(p.stream_response(Context([ChatMessage.User("hi")])))
    assert server.requests == []
    # ... and a sign-in made afterwards is used by the same provider.
    late = jwt(tag="late")
    write_creds(tmp_path / "config" / "llm-sync" / "codex.json", late)
    server.reply(backend_reply(HELLO))
    assert p.stream_response(Context([ChatMessage.User("hi")])).collect().text == "Hello"
    assert server.requests[0].headers["authorization"] == f"Bearer {late}"


# --- round trip with replayed reasoning -----------------------------------------------------


def test_tool_turn_round_trip_replays_reasoning_to_the_same_model(server: LoopbackServer) -> None:
    p = provider(server)
    ctx = Context([ChatMessage.User("Weather in Paris?")], tools=[WEATHER])
    server.reply(backend_reply(TOOL_TURN))
    turn = p.stream_response(ctx).collect()
    assert turn.stop_reason is StopReason.TOOL_CALLS
    msg = turn.to_message()
    assert msg.reasoning.encrypted_content is not None
    assert msg.reasoning.encrypted_content.model == "codex:gpt-5.5"
    ctx.add_message(msg)
    ctx.add_message(
        ChatMessage.ToolCallResult(ToolCallResult.from_request(turn.tool_calls[0], "18°C"))
    )
    server.reply(backend_reply(HELLO))
    assert p.stream_response(ctx).collect().text == "Hello"
    second = server.requests[1].json()
    assert second["input"][1:] == [
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "ENC-1"},
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
        },
        {"type": "function_call_output", "call_id": "call_1", "output": "18°C"},
    ]
    # Another model, or the same model through the OpenAI API, does not get it.
    server.reply(backend_reply(HELLO))
    p.with_model("gpt-5.2-codex").stream_response(ctx).collect()
    assert "reasoning" not in [i["type"] for i in server.requests[2].json()["input"]]
    foreign = Context(
        [
            ChatMessage.User("q"),
            ChatMessage.Assistant(
                "a",
                reasoning=AssistantReasoning(
                    None, EncryptedReasoningContent("rs_x", "openai:gpt-5.5", "E")
                ),
            ),
        ]
    )
    assert [i["type"] for i in build_request(foreign, "gpt-5.5")["input"]] == ["message", "message"]


# --- stored credentials: refresh when expired, and once after a 401 -------------------------


class FakeChatGpt:
    """The Codex backend and the token endpoint on one loopback server."""

    def __init__(
        self, server: LoopbackServer, backend: List[Callable[[RecordedRequest], Reply]]
    ) -> None:
        self.server = server
        self.backend = list(backend)
        self.refreshes: List[Dict[str, Any]] = []
        self.tokens: List[str] = []
        for _ in range(len(backend) + 4):
            server.reply(self)

    def __call__(self, req: RecordedRequest) -> Reply:
        if req.path_only == "/oauth/token":
            self.refreshes.append(req.json())
            token = jwt(tag=f"r{len(self.refreshes)}")
            self.tokens.append(token)
            return Reply.json(
                {"access_token": token, "refresh_token": f"rt-{len(self.refreshes) + 1}"}
            )
        assert req.path_only == "/backend-api/codex/responses"
        return self.backend.pop(0)(req)


def ok(_: RecordedRequest) -> Reply:
    return backend_reply(HELLO)


def unauthorized(_: RecordedRequest) -> Reply:
    return Reply.json({"detail": "Could not parse your authentication token."}, status=401)


def test_401_refreshes_once_then_succeeds(server: LoopbackServer, tmp_path: Path) -> None:
    old = jwt(tag="old")
    path = write_creds(tmp_path / "config" / "llm-sync" / "codex.json", old)
    fake = FakeChatGpt(server, [unauthorized, ok])
    p = provider(server, creds=path, max_retries=0)
    chunks = list(p.stream_response(Context([ChatMessage.User("hi")])))
    assert kinds(chunks) == ["Start", "Text", "Text", "Usage", "Done"]
    assert [r.path_only for r in server.requests] == [
        "/backend-api/codex/responses",
        "/oauth/token",
        "/backend-api/codex/responses",
    ]
    assert fake.refreshes == [
        {
            "client_id": codex.CLIENT_ID,
            "grant_type": "refresh_token",
            "refresh_token": "rt-1",
            "scope": "openid profile email",
        }
    ]
    assert server.requests[0].headers["authorization"] == f"Bearer {old}"
    assert server.requests[2].headers["authorization"] == f"Bearer {fake.tokens[0]}"
    assert server.requests[2].headers["chatgpt-account-id"] == ACCOUNT
    saved = json.loads(path.read_text())["tokens"]
    assert (saved["access_token"], saved["refresh_token"]) == (fake.tokens[0], "rt-2")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_second_401_is_raised_after_one_refresh(server: LoopbackServer, tmp_path: Path) -> None:
    path = write_creds(tmp_path / "creds.json", jwt(tag="old"))
    fake = FakeChatGpt(server, [unauthorized, unauthorized])
    with pytest.raises(InvalidApiKeyError, match="even after refreshing") as info:
        list(
            provider(server, creds=path, max_retries=3).stream_response(
                Context([ChatMessage.User("hi")])
            )
        )
    assert "llm-sync login codex" in str(info.value)
    assert len(fake.refreshes) == 1 and len(server.requests) == 3


def test_expired_token_is_refreshed_before_sending(server: LoopbackServer, tmp_path: Path) -> None:
    path = write_creds(tmp_path / "creds.json", jwt(exp_in=-10, tag="old"))
    fake = FakeChatGpt(server, [ok, ok])
    p = provider(server, creds=path)
    for _ in range(2):
        assert p.stream_response(Context([ChatMessage.User("hi")])).collect().text == "Hello"
    assert len(fake.refreshes) == 1  # the second stream reuses the refreshed token
    assert [r.path_only for r in server.requests] == [
        "/oauth/token",
        "/backend-api/codex/responses",
        "/backend-api/codex/responses",
    ]
    assert {r.headers["authorization"] for r in server.requests[1:]} == {f"Bearer {fake.tokens[0]}"}


def test_failed_refresh_is_an_oauth_error(server: LoopbackServer, tmp_path: Path) -> None:
    path = write_creds(tmp_path / "creds.json", jwt(exp_in=-10), refresh="rt-used")
    server.reply(
        Reply.json(
            {"error": {"message": "refresh token already used", "code": "refresh_token_reused"}},
            status=401,
        )
    )
    with pytest.raises(OAuthError) as info:
        list(provider(server, creds=path).stream_response(Context([ChatMessage.User("hi")])))
    assert "refresh token already used" in str(info.value)
    assert "llm-sync login codex" in str(info.value)
    assert "rt-used" not in str(info.value)
    assert [r.path_only for r in server.requests] == ["/oauth/token"]


def test_codex_cli_auth_json_is_reused_and_updated(server: LoopbackServer, tmp_path: Path) -> None:
    auth = write_creds(
        tmp_path / "codex-home" / "auth.json",
        jwt(exp_in=-5, tag="cli"),
        auth_mode="chatgpt",
        last_refresh="2025-01-01T00:00:00Z",
    )
    p = CodexProvider(base_url=f"{server.url}/backend-api/codex", issuer=server.url)
    assert p.credential_store == CredentialStore(auth)
    fake = FakeChatGpt(server, [ok])
    assert p.stream_response(Context([ChatMessage.User("hi")])).collect().text == "Hello"
    data = json.loads(auth.read_text())
    assert data["tokens"]["access_token"] == fake.tokens[0]
    # The Codex CLI's own fields survive the rewrite.
    assert data["auth_mode"] == "chatgpt" and data["OPENAI_API_KEY"] is None
    assert data["last_refresh"] != "2025-01-01T00:00:00Z"


# --- HTTP and in-stream errors --------------------------------------------------------------


def test_400_overflow_with_numbers(server: LoopbackServer) -> None:
    msg = "This model's maximum context length is 272000 tokens. However, your messages resulted in 300123 tokens."
    server.reply(
        Reply.json({"error": {"message": msg, "code": "context_length_exceeded"}}, status=400)
    )
    with pytest.raises(ContextOverflowError) as info:
        list(provider(server).stream_response(Context([ChatMessage.User("hi")])))
    assert (info.value.requested_tokens, info.value.max_tokens) == (300123, 272000)
    assert len(server.requests) == 1


def test_429_with_retry_after_and_5xx_are_retried(server: LoopbackServer) -> None:
    server.reply(
        Reply.json({"error": {"message": "slow down"}}, status=429, headers={"retry-after": "0"}),
        Reply.json({"detail": "upstream failed"}, status=502),
        backend_reply(HELLO),
    )
    p = provider(server, max_retries=2).with_max_retries(2)
    assert p.stream_response(Context([ChatMessage.User("hi")])).collect().text == "Hello"
    assert len(server.requests) == 3


def test_5xx_gives_up_after_max_retries(server: LoopbackServer) -> None:
    server.reply(*[Reply.json({"detail": "down"}, status=503, headers={"retry-after": "0"})] * 2)
    with pytest.raises(ServerError):
        list(provider(server, max_retries=1).stream_response(Context([ChatMessage.User("hi")])))
    assert len(server.requests) == 2


def test_in_stream_failures_are_typed(server: LoopbackServer) -> None:
    failed = {
        "type": "response.failed",
        "response": {
            "id": "resp_1",
            "status": "failed",
            "error": {"code": "server_error", "message": "boom"},
        },
    }
    overflow = {
        "type": "error",
        "code": "context_length_exceeded",
        "message": "Your input exceeds the context window of this model.",
    }
    server.reply(backend_reply(events_body(created(), failed)), backend_reply(HELLO))
    # A server_error before content is retried; the second answer succeeds.
    assert (
        provider(server).stream_response(Context([ChatMessage.User("hi")])).collect().text
        == "Hello"
    )
    server.reply(backend_reply(events_body(created(), overflow)))
    with pytest.raises(ContextOverflowError):
        list(provider(server).stream_response(Context([ChatMessage.User("hi")])))


def test_an_in_stream_usage_limit_is_a_rate_limit_that_is_not_retried() -> None:
    from llm_sync import RateLimitedError
    from llm_sync.providers._responses import error_from_event

    err = error_from_event(
        {"type": "usage_limit_reached", "message": "The usage limit has been reached", "resets_in_seconds": 13872}
    )
    assert isinstance(err, RateLimitedError)
    assert (err.retryable, err.resets_in_seconds) == (False, 13872.0)
