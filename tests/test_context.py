"""Tests for Context: mutation, token estimate, turns, compaction and persistence."""

from __future__ import annotations

import copy
import json
import pickle
from datetime import datetime, timezone
from typing import Any

import pytest

from llm_sync import (
    AssistantReasoning,
    ChatMessage,
    ContentBlock,
    Context,
    EncryptedReasoningContent,
    LlmModel,
    ReasoningEffort,
    ToolCallError,
    ToolCallRequest,
    ToolCallResult,
    ToolDefinition,
)

T0 = datetime(2026, 4, 28, 10, 21, 14, tzinfo=timezone.utc)


def seed_messages() -> list[ChatMessage]:
    # 28 + 29 + 30 = 87 UTF-8 bytes, the reference crate's worked example.
    return [
        ChatMessage.System("You are a helpful assistant.", T0),
        ChatMessage.User("What is the weather in Paris?", T0),
        ChatMessage.Assistant("It is sunny and 24 C in Paris.", timestamp=T0),
    ]


def test_seed_token_examples() -> None:
    ctx = Context(seed_messages())
    assert sum(m.estimated_bytes() for m in ctx.messages) == 87
    assert ctx.estimated_token_count() == 21
    ctx.set_tools([ToolDefinition("calculate", "Do some math", "{}")])  # 9 + 12 + 2 bytes
    assert ctx.estimated_token_count() == (87 + 23) // 4 == 27


def test_token_estimate_counts_utf8_bytes() -> None:
    ctx = Context([ChatMessage.User("日本語の文章", T0)])  # 6 characters, 18 bytes
    assert ctx.estimated_token_count() == 4
    assert Context().estimated_token_count() == 0


def test_messages_and_tools_are_tuples_and_mutation_goes_through_methods() -> None:
    ctx = Context()
    assert not ctx.messages and not ctx.tools
    ctx.add_message(ChatMessage.User("hi", T0))
    assert isinstance(ctx.messages, tuple) and ctx.message_count == 1
    tools = [ToolDefinition("t", "d", "{}")]
    ctx.set_tools(tools)
    tools.append(ToolDefinition("u", "d", "{}"))
    assert ctx.tools == (ToolDefinition("t", "d", "{}"),)


def test_settings() -> None:
    ctx = Context()
    assert ctx.reasoning_effort is None and ctx.prompt_cache_key is None
    ctx.set_reasoning_effort(ReasoningEffort.HIGH)
    ctx.set_prompt_cache_key("session-1")
    assert ctx.reasoning_effort is ReasoningEffort.HIGH
    assert ctx.prompt_cache_key == "session-1"
    ctx.set_reasoning_effort("low")
    assert ctx.reasoning_effort is ReasoningEffort.LOW
    ctx.set_reasoning_effort(None)
    ctx.set_prompt_cache_key(None)
    assert ctx.reasoning_effort is None and ctx.prompt_cache_key is None
    with pytest.raises(ValueError):
        ctx.set_reasoning_effort("extreme")


def test_wrong_types_are_refused() -> None:
    ctx = Context()
    with pytest.raises(TypeError, match="ChatMessage"):
        ctx.add_message({"role": "user", "content": "hi"})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ToolDefinition"):
        ctx.set_tools([{"name": "t"}])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        Context(["hi"])  # type: ignore[list-item]


def test_copy_is_an_independent_snapshot() -> None:
    ctx = Context(seed_messages(), reasoning_effort=ReasoningEffort.MEDIUM, prompt_cache_key="k")
    snap = ctx.copy()
    assert snap == ctx and snap is not ctx
    ctx.add_message(ChatMessage.User("more", T0))
    ctx.set_tools([ToolDefinition("t", "d", "{}")])
    ctx.set_reasoning_effort(None)
    assert snap.message_count == 3 and snap.tools == ()
    assert snap.reasoning_effort is ReasoningEffort.MEDIUM and snap.prompt_cache_key == "k"
    assert copy.copy(ctx) == ctx


def test_push_assistant_turn_appends_turn_and_results_in_order() -> None:
    ctx = Context([ChatMessage.User("weather?", T0)])
    ok = ToolCallResult("c1", "get_weather", '{"city": "Paris"}', "sunny")
    err = ToolCallError("c2", "get_time", None, "no clock")
    reasoning = AssistantReasoning("need both")
    ctx.push_assistant_turn("checking", reasoning, [ok, err])
    _, asst, r1, r2 = ctx.messages
    assert isinstance(asst, ChatMessage.Assistant)
    assert asst.content == "checking" and asst.reasoning == reasoning
    assert asst.tool_calls == (
        ToolCallRequest("c1", "get_weather", '{"city": "Paris"}'),
        ToolCallRequest("c2", "get_time", ""),
    )
    assert r1 == ChatMessage.ToolCallResult(ok) and r2 == ChatMessage.ToolCallResult(err)


def test_push_assistant_turn_without_tools() -> None:
    ctx = Context()
    ctx.push_assistant_turn("just text")
    (only,) = ctx.messages
    assert isinstance(only, ChatMessage.Assistant)
    assert only.tool_calls == () and only.reasoning.is_empty


def _assistant_with(model: str) -> ChatMessage:
    enc = EncryptedReasoningContent("rs", model, "blob")
    return ChatMessage.Assistant("a", AssistantReasoning("summary", enc), T0)


def test_filter_encrypted_reasoning_keeps_only_the_same_model() -> None:
    ctx = Context(
        [ChatMessage.User("u", T0), _assistant_with("codex:gpt-5.5"), _assistant_with("openai:gpt-5")],
        [ToolDefinition("t", "d", "{}")],
        reasoning_effort=ReasoningEffort.HIGH,
        prompt_cache_key="k",
    )
    out = ctx.filter_encrypted_reasoning(LlmModel("codex", "gpt-5.5"))
    kept, dropped = out.messages[1], out.messages[2]
    assert isinstance(kept, ChatMessage.Assistant) and isinstance(dropped, ChatMessage.Assistant)
    assert kept.reasoning.encrypted_content is not None
    assert dropped.reasoning.encrypted_content is None
    assert dropped.reasoning.summary_text == "summary"
    assert dropped.timestamp == T0
    assert out.tools == ctx.tools
    assert out.reasoning_effort is ReasoningEffort.HIGH and out.prompt_cache_key == "k"
    # The original is untouched.
    orig = ctx.messages[2]
    assert isinstance(orig, ChatMessage.Assistant) and orig.reasoning.encrypted_content is not None
    assert ctx.filter_encrypted_reasoning("openai:gpt-5").messages[1] != ctx.messages[1]


def test_clear_conversation_keeps_system_prompts() -> None:
    ctx = Context([*seed_messages(), ChatMessage.System("second system", T0)])
    ctx.clear_conversation()
    assert [m.content for m in ctx.messages if isinstance(m, ChatMessage.System)] == [
        "You are a helpful assistant.",
        "second system",
    ]
    assert ctx.message_count == 2


def test_messages_for_summary_are_the_non_system_messages() -> None:
    ctx = Context(seed_messages())
    assert ctx.messages_for_summary() == ctx.messages[1:]


def test_with_compacted_summary() -> None:
    tools = [ToolDefinition("t", "d", "{}")]
    ctx = Context(seed_messages(), tools, reasoning_effort=ReasoningEffort.LOW, prompt_cache_key="k")
    before = datetime.now(timezone.utc)
    out = ctx.with_compacted_summary("talked about Paris weather")
    system, summary = out.messages
    assert system == ctx.messages[0]
    assert isinstance(summary, ChatMessage.Summary)
    assert summary.content == "talked about Paris weather"
    assert summary.messages_compacted == 2
    assert summary.timestamp >= before
    assert out.tools == tuple(tools)
    assert out.reasoning_effort is ReasoningEffort.LOW and out.prompt_cache_key == "k"
    assert ctx.message_count == 3  # a new context; the original is unchanged


def test_with_compacted_summary_without_anything_to_compact() -> None:
    ctx = Context([ChatMessage.System("s", T0)])
    assert ctx.with_compacted_summary("nothing").messages == ctx.messages


def test_json_round_trip_keeps_everything() -> None:
    ctx = Context(
        [
            *seed_messages(),
            ChatMessage.User([ContentBlock.Text("see"), ContentBlock.Image("QUJD", "image/png")], T0),
            _assistant_with("codex:gpt-5.5"),
        ],
        [ToolDefinition("get_weather", "Weather", {"type": "object"}, server="mcp")],
        reasoning_effort=ReasoningEffort.XHIGH,
        prompt_cache_key="k",
    )
    ctx.push_assistant_turn("x", None, [ToolCallError("c", "t", "{}", "e")])
    data = json.loads(json.dumps(ctx.to_dict()))
    assert data["reasoning_effort"] == "xhigh" and data["prompt_cache_key"] == "k"
    again = Context.from_dict(data)
    assert again == ctx


def test_to_dict_without_settings_is_the_crate_shape() -> None:
    ctx = Context([ChatMessage.User("hi", T0)], [ToolDefinition("t", "d", "{}")])
    assert ctx.to_dict() == {
        "messages": [
            {"type": "user", "content": [{"type": "text", "text": "hi"}], "timestamp": "2026-04-28T10:21:14+00:00"}
        ],
        "tools": [{"name": "t", "description": "d", "parameters": "{}", "server": None}],
    }


def test_from_dict_reads_crate_json() -> None:
    crate: dict[str, Any] = {
        "messages": [
            {"type": "system", "content": "s", "timestamp": "2026-04-28T10:21:14.123456789+00:00"},
            {"type": "toolCallResult", "Ok": {"id": "1", "name": "t", "arguments": "{}", "result": "r"}},
        ],
        "tools": [{"name": "t", "description": "d", "parameters": "{\"type\": \"object\"}"}],
    }
    ctx = Context.from_dict(crate)
    assert ctx.message_count == 2 and ctx.messages[0].is_system
    assert ctx.tools[0].schema == {"type": "object"} and ctx.tools[0].server is None
    assert ctx.reasoning_effort is None and ctx.prompt_cache_key is None


def test_pickle_and_equality() -> None:
    ctx = Context(seed_messages(), reasoning_effort=ReasoningEffort.HIGH)
    assert pickle.loads(pickle.dumps(ctx)) == ctx
    assert ctx != Context(seed_messages())
    with pytest.raises(TypeError):
        hash(ctx)
    assert "reasoning_effort='high'" in repr(ctx)
