"""OpenRouter: its recordings, its body fields, attribution headers, reasoning details, errors."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, List

import pytest

from llm_sync import (
    ChatMessage,
    Context,
    ContextOverflowError,
    InvalidApiKeyError,
    LlmResponse,
    MissingApiKeyError,
    RateLimitedError,
    ReasoningEffort,
    RequestTimeoutError,
    ServerError,
    StopReason,
    Timeouts,
    ToolCallResult,
    ToolDefinition,
)
from llm_sync.providers.openrouter import OpenRouterProvider
from tests.providers.test_openai_compatible_wire import (
    check_against_recording,
    recordings,
    wire_events,
)
from tests.support.replay import kinds, only, split_every, stream_body
from tests.support.server import LoopbackServer, Reply, Sleep, sse, sse_chunks

KEY = "sk-or-v1-test-0123456789abcdef"
SSE = {"content-type": "text/event-stream"}


def router(server: LoopbackServer, **kw: Any) -> OpenRouterProvider:
    kw.setdefault("max_retries", 0)
    kw.setdefault("model", "anthropic/claude-sonnet-4.5")
    return OpenRouterProvider(KEY, base_url=server.url + "/api/v1", **kw)


def chunk(delta: Any = None, finish: Any = None, **extra: Any) -> Any:
    c = {"id": "gen-1", "provider": "X", "model": "m", "object": "chat.completion.chunk", "created": 1}
    c["choices"] = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish, "native_finish_reason": finish}]
    c.update(extra)
    return c


def test_every_openrouter_recording_replays_exactly(server: LoopbackServer, wire: Path) -> None:
    paths = recordings(wire, "openrouter", "*.sse")
    assert len(paths) >= 9
    for path in paths:
        chunks = stream_body(server, router(server), split_every(path.read_bytes(), 61))
        check_against_recording(chunks, path)
        enc = only(chunks, LlmResponse.EncryptedReasoning)
        has_details = any(
            (ch.get("delta") or {}).get("reasoning_details") for e in wire_events(path) for ch in e.get("choices") or []
        )
        assert len(enc) == (1 if has_details else 0), path.name


def test_recorded_reasoning_details_are_kept_whole_and_replayed(server: LoopbackServer, wire: Path) -> None:
    p = router(server)
    chunks = stream_body(server, p, (wire / "openrouter" / "pyd_reasoning_anthropic.sse").read_bytes())
    (enc,) = only(chunks, LlmResponse.EncryptedReasoning)
    details = json.loads(enc.content)["reasoning_details"]
    assert len(details) == 1
    assert details[0]["type"] == "reasoning.text" and details[0]["format"] == "anthropic-claude-v1"
    assert details[0]["text"] == "This is a simple arithmetic question. 2+2 equals 4."
    assert details[0]["signature"].startswith("Et0BCkgIChACGAIqQA2s7h7tA7IG35fbwVkou9PM2hANVJNUwcEM4q12fTRDK6y3v6YoEvJ")
    assert chunks[-2] == LlmResponse.Usage(43, 36, 0, None, 13, 0, 0, None, None, None)

    # The next turn sends the details back, to the same model only.
    ctx = Context([ChatMessage.User("What is 2+2?")])
    server.reply(Reply(status=200, headers=SSE, body=[(wire / "openrouter" / "pyd_reasoning_anthropic.sse").read_bytes()], chunked=True))
    collected = p.stream_response(ctx).collect()
    ctx.add_message(collected.to_message())
    ctx.add_message(ChatMessage.User("and 3+3?"))
    stream_body(server, p, sse(chunk({"content": "6"}, "stop"), "[DONE]"), context=ctx)
    sent = server.requests[-1].json()["messages"][1]
    assert sent["role"] == "assistant" and sent["content"] == "2 + 2 = 4"
    assert sent["reasoning_details"] == details
    assert "reasoning" not in sent  # the details already carry the text
    stream_body(server, p.with_model("openai/o3"), sse(chunk({"content": "6"}, "stop"), "[DONE]"), context=ctx)
    other = server.requests[-1].json()["messages"][1]
    assert "reasoning_details" not in other
    assert other["reasoning"] == "This is a simple arithmetic question. 2+2 equals 4."


def test_encrypted_details_and_cached_tokens(server: LoopbackServer, wire: Path) -> None:
    chunks = stream_body(server, router(server), (wire / "openrouter" / "pyd_gemini_native_options_cached.sse").read_bytes())
    (enc,) = only(chunks, LlmResponse.EncryptedReasoning)
    assert enc.id == "rs_619f3702-e30e-6ba5-7b57-466db8036365_us-east-1"
    assert json.loads(enc.content)["reasoning_details"][0]["type"] == "reasoning.encrypted"
    u = chunks[-2]
    assert isinstance(u, LlmResponse.Usage)
    assert (u.input_tokens, u.output_tokens, u.cached_input_tokens, u.reasoning_tokens) == (687, 187, 679, 118)


def test_recorded_error_bodies(server: LoopbackServer, wire: Path) -> None:
    folder = wire / "openrouter"
    p = router(server)
    server.reply(Reply(status=400, headers={"content-type": "application/json"}, body=(folder / "issue_err_400_context_length_middle_out.json").read_bytes()))
    with pytest.raises(ContextOverflowError) as over:
        list(p.stream_response(Context()))
    assert (over.value.requested_tokens, over.value.max_tokens) == (141607, 131072)

    server.reply(Reply(status=429, headers={"content-type": "application/json"}, body=(folder / "err_429_upstream_rate_limited.json").read_bytes()))
    with pytest.raises(RateLimitedError) as limited:
        list(p.stream_response(Context()))
    assert "temporarily rate-limited upstream" in str(limited.value)  # metadata.raw surfaced
    assert len(server.requests) == 2


def test_request_body_and_headers(server: LoopbackServer) -> None:
    p = router(server, app_url="https://example.app", app_title="Example")
    tool = ToolDefinition("f", "d", {"type": "object", "properties": {}})
    ctx = Context([ChatMessage.User("hi")], [tool], reasoning_effort=ReasoningEffort.HIGH, prompt_cache_key="ignored")
    stream_body(server, p, sse(chunk({"content": "x"}, "stop"), "[DONE]"), context=ctx)
    req = server.requests[0]
    assert req.path == "/api/v1/chat/completions"
    assert req.headers["authorization"] == f"Bearer {KEY}"
    assert (req.headers["HTTP-Referer"], req.headers["X-Title"]) == ("https://example.app", "Example")
    body = req.json()
    assert body["usage"] == {"include": True}
    assert body["cache_control"] == {"type": "ephemeral"}
    assert body["stream_options"] == {"include_usage": True} and body["stream"] is True
    assert body["reasoning"] == {"effort": "high"} and "reasoning_effort" not in body
    assert "prompt_cache_key" not in body
    assert body["tools"][0]["function"]["name"] == "f"
    assert KEY not in repr(p)

    plain = router(server).with_attribution(app_title="Only title")
    stream_body(server, plain, sse(chunk({"content": "x"}, "stop"), "[DONE]"))
    assert "HTTP-Referer" not in server.requests[1].headers
    assert server.requests[1].headers["X-Title"] == "Only title"


def test_configuration_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    monkeypatch.delenv("OPENROUTER_BASE_URL", raising=False)
    with pytest.raises(MissingApiKeyError) as info:
        OpenRouterProvider.from_env()
    assert info.value.variable == "OPENROUTER_API_KEY"
    monkeypatch.setenv("OPENROUTER_API_KEY", KEY)
    p = OpenRouterProvider.from_env()
    assert p.base_url == "https://openrouter.ai/api/v1" and p.model_name == "openrouter/auto"
    monkeypatch.setenv("OPENROUTER_BASE_URL", "http://127.0.0.1:5/api/v1")
    q = OpenRouterProvider(model="x/y")
    assert q.base_url == "http://127.0.0.1:5/api/v1" and q.display_name() == "OpenRouter (x/y)"
    assert q.model() is None  # not in the catalog
    known = q.with_model("anthropic/claude-sonnet-4.5").model()
    assert known is not None and str(known) == "openrouter:anthropic/claude-sonnet-4.5"


def test_processing_comments_are_ignored_and_do_not_reset_idle(server: LoopbackServer) -> None:
    body = [b": OPENROUTER PROCESSING\n\n", *sse_chunks(chunk({"content": "a"}))]
    for _ in range(30):
        body += [Sleep(0.05), b": OPENROUTER PROCESSING\n\n"]
    server.reply(Reply(status=200, headers=SSE, body=body, chunked=True))
    stream = router(server, timeout=Timeouts(idle=0.4)).stream_response(Context())
    try:
        assert kinds([next(stream), next(stream)]) == ["Start", "Text"]
        t0 = time.monotonic()
        with pytest.raises(RequestTimeoutError) as info:
            next(stream)
        assert info.value.phase == "idle" and time.monotonic() - t0 < 1.4
    finally:
        stream.close()


def test_mid_stream_error_chunk_is_raised_typed(server: LoopbackServer) -> None:
    err = {"code": "server_error", "message": "Provider disconnected unexpectedly"}
    body = sse(chunk({"content": "partial"}), chunk({"content": ""}, "error", error=err))
    server.reply(Reply(status=200, headers=SSE, body=[body], chunked=True))
    seen: List[LlmResponse] = []
    with pytest.raises(ServerError, match="Provider disconnected unexpectedly"):
        for c in router(server).stream_response(Context()):
            seen.append(c)
    assert kinds(seen) == ["Start", "Text"]


def test_error_chunk_before_content_is_retried(server: LoopbackServer) -> None:
    err = {"code": 502, "message": "upstream overloaded"}
    server.reply(Reply(status=200, headers=SSE, body=[b": OPENROUTER PROCESSING\n\n", sse(chunk(error=err))], chunked=True))
    server.reply(Reply(status=200, headers=SSE, body=[sse(chunk({"content": "ok"}, "stop"), "[DONE]")], chunked=True))
    got = router(server, max_retries=1).stream_response(Context()).collect()
    assert (got.text, got.stop_reason, len(server.requests)) == ("ok", StopReason.END_TURN, 2)


def test_401_is_not_retried(server: LoopbackServer) -> None:
    server.reply(Reply.json({"error": {"message": "No auth credentials found", "code": 401}}, status=401))
    with pytest.raises(InvalidApiKeyError, match="OPENROUTER_API_KEY"):
        list(router(server, max_retries=2).stream_response(Context()))
    assert len(server.requests) == 1


def test_tool_round_trip_carries_the_result(server: LoopbackServer) -> None:
    p = router(server)
    first = sse(
        chunk({"role": "assistant", "content": None, "tool_calls": [{"index": 0, "id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Tokyo"}'}}]}),
        chunk({"content": ""}, "tool_calls"),
        chunk({"content": ""}, "tool_calls", usage={"prompt_tokens": 5, "completion_tokens": 3, "cost": 0.1}),
        "[DONE]",
    )
    server.reply(Reply(status=200, headers=SSE, body=[first], chunked=True))
    ctx = Context([ChatMessage.User("weather?")])
    turn = p.stream_response(ctx).collect()
    (tc,) = turn.tool_calls
    ctx.add_message(turn.to_message())
    ctx.add_message(ChatMessage.ToolCallResult(ToolCallResult.from_request(tc, "rainy")))
    stream_body(server, p, sse(chunk({"content": "Rainy."}, "stop"), "[DONE]"), context=ctx)
    msgs = server.requests[1].json()["messages"]
    assert msgs[1]["tool_calls"] == [{"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Tokyo"}'}}]
    assert msgs[2] == {"role": "tool", "content": "rainy", "tool_call_id": "toolu_1"}
