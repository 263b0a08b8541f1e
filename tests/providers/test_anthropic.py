"""AnthropicProvider: configuration, the request it sends for each message kind, thinking replay
over several turns, and HTTP errors, against the loopback server."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any, Dict, List

import pytest

from llm_sync import (
    AssistantReasoning,
    ChatMessage,
    ContentBlock,
    Context,
    ContextOverflowError,
    EncryptedReasoningContent,
    InvalidApiKeyError,
    MissingApiKeyError,
    RateLimitedError,
    ReasoningEffort,
    ServerError,
    StopReason,
    ToolCallError,
    ToolCallRequest,
    ToolCallResult,
    ToolDefinition,
    UnsupportedContentError,
)
from llm_sync.providers.anthropic import AnthropicProvider, build_request
from tests.support.server import LoopbackServer, Reply, sse

KEY = "sk-ant-api03-request-test-key-0123456789"
MODEL = "claude-sonnet-4-5"


def provider(server: LoopbackServer, **kw: Any) -> AnthropicProvider:
    kw.setdefault("max_retries", 0)
    return AnthropicProvider(KEY, base_url=server.url, **kw)


def ok_body(text: str = "ok", id: str = "msg_ok") -> bytes:
    return sse(
        ("message_start", {"type": "message_start", "message": {"id": id, "usage": {"input_tokens": 3, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}}),
        ("message_stop", {"type": "message_stop"}),
    )


def ok() -> Reply:
    return Reply(status=200, headers={"content-type": "text/event-stream"}, body=[ok_body()], chunked=True)


def sent(server: LoopbackServer, p: AnthropicProvider, ctx: Context) -> Dict[str, Any]:
    """Stream ``ctx`` and return the JSON body the server received."""
    server.reply(ok())
    assert p.stream_response(ctx).collect().text == "ok"
    return server.requests[-1].json()  # type: ignore[no-any-return]


def body_for(ctx: Context, **kw: Any) -> Dict[str, Any]:
    return build_request(ctx, model=MODEL, **kw)


# ---------------------------------------------------------------------------
# Configuration


def test_defaults_and_identity() -> None:
    p = AnthropicProvider(KEY)
    assert (p.provider_id, p.model_name, p.base_url) == ("anthropic", "claude-sonnet-4-5", "https://api.anthropic.com")
    assert (p.max_tokens, p.temperature) == (16384, None)
    assert p.display_name() == "Anthropic (claude-sonnet-4-5)"
    # From the shipped catalog (when it lists the model): the same entry both ways.
    entry = p.model()
    if entry is not None:
        assert (entry.provider, entry.model_id) == ("anthropic", "claude-sonnet-4-5")
        assert p.context_window() == entry.context_window
    else:
        assert p.context_window() is None


def test_with_methods_return_new_providers() -> None:
    p = AnthropicProvider(KEY)
    q = p.with_model("claude-haiku-4-5").with_max_tokens(512).with_temperature(0.2).with_base_url("http://127.0.0.1:9/")
    assert (q.model_name, q.max_tokens, q.temperature, q.base_url) == ("claude-haiku-4-5", 512, 0.2, "http://127.0.0.1:9")
    assert (p.model_name, p.max_tokens, p.temperature, p.base_url) == ("claude-sonnet-4-5", 16384, None, "https://api.anthropic.com")
    assert q.with_temperature(None).temperature is None
    with pytest.raises(ValueError, match="max_tokens"):
        p.with_max_tokens(0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        p.with_temperature(1.5)
    with pytest.raises(ValueError, match="max_tokens"):
        AnthropicProvider(KEY, max_tokens=True)  # type: ignore[arg-type]


def test_from_env_reads_key_and_base_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:7/")
    p = AnthropicProvider.from_env(model="claude-opus-4-1")
    assert (p.base_url, p.model_name) == ("http://127.0.0.1:7", "claude-opus-4-1")
    assert KEY not in repr(p)
    clone = pickle.loads(pickle.dumps(p))
    assert (clone.model_name, clone.max_tokens) == ("claude-opus-4-1", 16384)


def test_a_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env above an empty temporary folder
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(MissingApiKeyError, match="ANTHROPIC_API_KEY") as info:
        AnthropicProvider()
    assert info.value.variable == "ANTHROPIC_API_KEY"


def test_url_and_headers(server: LoopbackServer) -> None:
    sent(server, provider(server), Context([ChatMessage.User("hi")]))
    req = server.requests[0]
    assert (req.method, req.path) == ("POST", "/v1/messages")
    assert req.headers["x-api-key"] == KEY
    assert req.headers["anthropic-version"] == "2023-06-01"
    assert req.headers["content-type"] == "application/json"
    assert "authorization" not in req.headers


# ---------------------------------------------------------------------------
# Request body per message kind


def test_minimal_body_with_caching_markers() -> None:
    body = body_for(Context([ChatMessage.System("old"), ChatMessage.System("Be brief."), ChatMessage.User("hi")]))
    assert body == {
        "model": MODEL,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "max_tokens": 16384,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "stream": True,
        "cache_control": {"type": "ephemeral"},
    }


def test_no_system_no_tools_no_temperature_keys_when_unset() -> None:
    body = body_for(Context([ChatMessage.User("hi")]))
    assert not {"system", "tools", "temperature", "thinking"} & set(body)


def test_user_image_and_text_blocks() -> None:
    image = ContentBlock.Image("iVBORw0KGgo=", "image/png")
    body = body_for(Context([ChatMessage.User([ContentBlock.Text("What is this?"), image])]))
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
    ]


def test_audio_is_refused_before_anything_is_sent(server: LoopbackServer) -> None:
    ctx = Context([ChatMessage.User([ContentBlock.Audio("UklGRg==", "audio/wav")])])
    with pytest.raises(UnsupportedContentError, match="audio"):
        list(provider(server).stream_response(ctx))
    assert server.requests == []


def test_assistant_turns_tool_calls_and_results() -> None:
    calls = [ToolCallRequest("toolu_1", "get_weather", '{"city": "Oslo"}'), ToolCallRequest("toolu_2", "now", "")]
    ctx = Context(
        [
            ChatMessage.User("weather and time?"),
            ChatMessage.Assistant("Let me check.", tool_calls=calls),
            ChatMessage.ToolCallResult(ToolCallResult("toolu_1", "get_weather", '{"city": "Oslo"}', "5 C")),
            ChatMessage.ToolCallResult(ToolCallError("toolu_2", "now", "", "clock broken")),
            ChatMessage.Assistant("It is 5 C; the clock failed."),
            ChatMessage.Assistant(""),  # nothing to send: left out
            ChatMessage.Error("the tool server went away"),
            ChatMessage.Summary("We talked about Oslo.", messages_compacted=4),
        ]
    )
    assert body_for(ctx)["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "weather and time?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}},
                {"type": "tool_use", "id": "toolu_2", "name": "now", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "5 C", "is_error": False},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "clock broken", "is_error": True},
            ],
        },
        {"role": "assistant", "content": "It is 5 C; the clock failed."},
        {"role": "user", "content": "Error: the tool server went away"},
        {"role": "user", "content": "[Previous conversation handoff]\n\nWe talked about Oslo."},
    ]


def test_assistant_with_tool_calls_and_no_text_has_no_text_block() -> None:
    ctx = Context([ChatMessage.User("x"), ChatMessage.Assistant("", tool_calls=[ToolCallRequest("t", "f", "[1]")])])
    assert body_for(ctx)["messages"][1]["content"] == [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]


def test_tools_are_sent_with_input_schema() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    ctx = Context([ChatMessage.User("x")], [ToolDefinition("get_weather", "Weather for a city", json.dumps(schema))])
    assert body_for(ctx)["tools"] == [{"name": "get_weather", "description": "Weather for a city", "input_schema": schema}]


@pytest.mark.parametrize(
    ("effort", "budget"),
    [(ReasoningEffort.LOW, 1024), (ReasoningEffort.MEDIUM, 4096), (ReasoningEffort.HIGH, 10240), (ReasoningEffort.XHIGH, 10240)],
)
def test_reasoning_effort_sets_the_thinking_budget(effort: ReasoningEffort, budget: int) -> None:
    ctx = Context([ChatMessage.User("x")], reasoning_effort=effort)
    body = body_for(ctx, temperature=0.5)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert "temperature" not in body  # the API refuses a temperature while thinking
    assert body["max_tokens"] == 16384
    # max_tokens must exceed the budget: bumped when it does not.
    assert body_for(ctx, max_tokens=budget)["max_tokens"] == budget + 1024
    assert body_for(ctx, max_tokens=budget + 1)["max_tokens"] == budget + 1


def test_temperature_and_max_tokens_without_thinking(server: LoopbackServer) -> None:
    body = sent(server, provider(server, max_tokens=300, temperature=0.7), Context([ChatMessage.User("x")]))
    assert (body["max_tokens"], body["temperature"]) == (300, 0.7)


def test_prompt_cache_key_is_not_sent() -> None:
    body = body_for(Context([ChatMessage.User("x")], prompt_cache_key="k1"))
    assert "k1" not in json.dumps(body)


# ---------------------------------------------------------------------------
# Thinking + tool use over two turns


def thinking_tool_turn() -> bytes:
    return sse(
        ("message_start", {"type": "message_start", "message": {"id": "msg_turn1", "usage": {"input_tokens": 50, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Need the weather "}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "tool."}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBCkgIARABGAIiQL+sig=="}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/redacted"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ("content_block_start", {"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_w", "name": "get_weather", "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": '{"city": "Oslo"}'}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 2}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 40}}),
        ("message_stop", {"type": "message_stop"}),
    )


def test_thinking_and_signature_are_replayed_on_the_next_turn(server: LoopbackServer) -> None:
    p = provider(server)
    ctx = Context([ChatMessage.User("Weather in Oslo?")], reasoning_effort="medium")
    server.reply(Reply(status=200, headers={"content-type": "text/event-stream"}, body=[thinking_tool_turn()], chunked=True))
    turn = p.stream_response(ctx).collect()
    assert turn.stop_reason == StopReason.TOOL_CALLS and turn.reasoning == "Need the weather tool."
    message = turn.to_message()
    ctx.add_message(message)
    call = turn.tool_calls[0]
    ctx.add_message(ChatMessage.ToolCallResult(ToolCallResult.from_request(call, "4 C, rain")))

    second = sent(server, p, ctx)
    assert second["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    assert second["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Need the weather tool.", "signature": "EqQBCkgIARABGAIiQL+sig=="},
                {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/redacted"},
                {"type": "tool_use", "id": "toolu_w", "name": "get_weather", "input": {"city": "Oslo"}},
            ],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_w", "content": "4 C, rain", "is_error": False}]},
    ]

    # The same history to another model: its signatures would be refused, so no thinking.
    other = sent(server, p.with_model("claude-haiku-4-5"), ctx)
    assert [b["type"] for b in other["messages"][1]["content"]] == ["tool_use"]


def test_replay_survives_persistence_and_skips_foreign_content() -> None:
    blocks = [{"type": "thinking", "thinking": "t", "signature": "s"}]
    mine = EncryptedReasoningContent("msg_1", f"anthropic:{MODEL}", json.dumps(blocks))
    ctx = Context(
        [
            ChatMessage.User("x"),
            ChatMessage.Assistant("answer", AssistantReasoning("t", mine)),
            ChatMessage.User("y"),
            ChatMessage.Assistant("other", AssistantReasoning(None, EncryptedReasoningContent("r", f"anthropic:{MODEL}", "not json"))),
        ]
    )
    restored = Context.from_dict(json.loads(json.dumps(ctx.to_dict())))
    messages = body_for(restored)["messages"]
    assert messages[1] == {"role": "assistant", "content": [*blocks, {"type": "text", "text": "answer"}]}
    assert messages[3] == {"role": "assistant", "content": "other"}


def test_recorded_thinking_tool_turn_round_trip(wire: Path, server: LoopbackServer) -> None:
    body = (wire / "anthropic" / "llma_thinking_then_tool_use.sse").read_bytes()
    p = provider(server, model="claude-haiku-4-5")
    ctx = Context([ChatMessage.User("Use fixed_version")], reasoning_effort="low")
    server.reply(Reply(status=200, headers={"content-type": "text/event-stream"}, body=[body], chunked=True))
    turn = p.stream_response(ctx).collect()
    ctx.add_message(turn.to_message())
    ctx.add_message(ChatMessage.ToolCallResult(ToolCallResult.from_request(turn.tool_calls[0], "1.2.3")))
    second = sent(server, p, ctx)
    first_block = second["messages"][1]["content"][0]
    assert first_block["type"] == "thinking"
    assert first_block["signature"].startswith("EoQDCm0IDhgCKkCDzGs2kL2PgnDCZU")
    assert first_block["thinking"] == turn.reasoning
    assert second["messages"][1]["content"][1] == {"type": "tool_use", "id": "toolu_01825dXWLSoJwCst1qTsiWdb", "name": "fixed_version", "input": {}}


# ---------------------------------------------------------------------------
# HTTP errors


def error_reply(status: int, etype: str, message: str, headers: Dict[str, str] | None = None) -> Reply:
    return Reply.json({"type": "error", "error": {"type": etype, "message": message}, "request_id": "req_1"}, status=status, headers=headers)


@pytest.mark.parametrize(
    ("message", "requested", "maximum"),
    [
        ("prompt is too long: 200251 tokens > 200000 maximum", 200251, 200000),
        ("input length and `max_tokens` exceed context limit: 189136 + 20000 > 204648, decrease input length or `max_tokens` and try again", 209136, 204648),
    ],
)
def test_400_overflow_carries_the_numbers(server: LoopbackServer, message: str, requested: int, maximum: int) -> None:
    server.reply(error_reply(400, "invalid_request_error", message))
    with pytest.raises(ContextOverflowError) as info:
        list(provider(server, max_retries=2).stream_response(Context([ChatMessage.User("x")])))
    err = info.value
    assert (err.requested_tokens, err.max_tokens, err.status, err.retryable) == (requested, maximum, 400, False)
    assert "with_compacted_summary" in str(err) and "req_1" in str(err)
    assert len(server.requests) == 1


def test_401_is_not_retried_and_never_shows_the_key(server: LoopbackServer) -> None:
    server.reply(error_reply(401, "authentication_error", f"invalid x-api-key {KEY}"))
    with pytest.raises(InvalidApiKeyError) as info:
        list(provider(server, max_retries=2).stream_response(Context([ChatMessage.User("x")])))
    err = info.value
    assert "ANTHROPIC_API_KEY" in str(err)
    assert KEY not in str(err) and KEY not in repr(err) and KEY not in (err.body or "")
    assert len(server.requests) == 1


def test_429_with_retry_after_is_retried(server: LoopbackServer) -> None:
    server.reply(error_reply(429, "rate_limit_error", "slow down", {"retry-after": "0"}))
    server.reply(ok())
    got = provider(server, max_retries=1).stream_response(Context([ChatMessage.User("x")])).collect()
    assert got.text == "ok" and len(server.requests) == 2


def test_429_when_retries_run_out_keeps_retry_after(server: LoopbackServer) -> None:
    server.reply(error_reply(429, "rate_limit_error", "slow down", {"retry-after": "7"}))
    with pytest.raises(RateLimitedError) as info:
        list(provider(server, max_retries=0).stream_response(Context([ChatMessage.User("x")])))
    assert info.value.retry_after == 7.0 and info.value.retryable


@pytest.mark.parametrize(("status", "etype"), [(529, "overloaded_error"), (500, "api_error")])
def test_5xx_and_529_are_retried(server: LoopbackServer, status: int, etype: str) -> None:
    server.reply(error_reply(status, etype, "busy", {"retry-after-ms": "5"}))
    server.reply(ok())
    got = provider(server, max_retries=2).stream_response(Context([ChatMessage.User("x")])).collect()
    assert got.text == "ok" and len(server.requests) == 2


def test_529_when_retries_run_out_is_a_server_error(server: LoopbackServer) -> None:
    replies: List[Reply] = [error_reply(529, "overloaded_error", "Overloaded", {"retry-after-ms": "1"}) for _ in range(2)]
    for r in replies:
        server.reply(r)
    with pytest.raises(ServerError, match="overloaded_error") as info:
        list(provider(server, max_retries=1).stream_response(Context([ChatMessage.User("x")])))
    assert info.value.status == 529 and len(server.requests) == 2


def test_an_html_error_page_is_summarised(server: LoopbackServer) -> None:
    server.reply(Reply(status=502, headers={"content-type": "text/html"}, body=b"<html><title>Bad gateway</title></html>"))
    with pytest.raises(ServerError, match="Bad gateway"):
        list(provider(server).stream_response(Context([ChatMessage.User("x")])))
