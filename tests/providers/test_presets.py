"""DeepSeek, Moonshot and Z.ai presets: configuration, Z.ai recordings, Moonshot's schema rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Type

import pytest

from llm_sync import (
    AssistantReasoning,
    ChatMessage,
    Context,
    LlmResponse,
    MissingApiKeyError,
    ReasoningEffort,
    StopReason,
    ToolCallRequest,
    ToolCallResult,
    ToolDefinition,
)
from llm_sync.providers.openai_compatible import OpenAiCompatibleProvider
from llm_sync.providers.presets import (
    PRESETS,
    DeepSeekProvider,
    MoonshotProvider,
    ZaiProvider,
    normalize_for_moonshot,
    preset,
)
from tests.providers.test_openai_compatible_wire import check_against_recording, recordings
from tests.support.replay import only, split_every, stream_body
from tests.support.server import LoopbackServer, Reply, sse

KEY = "sk-preset-test-key-0123456789"
SSE = {"content-type": "text/event-stream"}

CASES = [
    (DeepSeekProvider, "deepseek", "DEEPSEEK_API_KEY", "deepseek-chat", "https://api.deepseek.com", "DeepSeek"),
    (MoonshotProvider, "moonshot", "MOONSHOT_API_KEY", "moonshot-v1-8k", "https://api.moonshot.ai/v1", "Moonshot"),
    (ZaiProvider, "zai", "ZAI_API_KEY", "glm-4.6", "https://api.z.ai/api/coding/paas/v4", "Z.ai"),
]


@pytest.mark.parametrize("cls, name, var, model, base, label", CASES)
def test_preset_configuration(
    cls: Type[OpenAiCompatibleProvider], name: str, var: str, model: str, base: str, label: str,
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(var, raising=False)
    with pytest.raises(MissingApiKeyError) as info:
        cls.from_env()
    assert info.value.variable == var and var in str(info.value)
    monkeypatch.setenv(var, KEY)
    p = preset(name)
    assert type(p) is cls and isinstance(p, OpenAiCompatibleProvider)
    assert (p.model_name, p.base_url, p.display_name()) == (model, base, f"{label} ({model})")
    found = p.model()
    if name == "moonshot":
        assert (found, p.context_window()) == (None, None)  # moonshot-v1-8k is not in the catalog
    else:
        assert found is not None and str(found).lower() == f"{name}:{model}".lower()
        assert p.context_window() == found.context_window and (found.context_window or 0) > 0
    assert PRESETS[name] is cls
    assert preset(name.upper(), model="other").model_name == "other"


def test_preset_aliases_and_unknown_names() -> None:
    assert type(preset("z.ai", api_key=KEY)) is ZaiProvider
    assert type(preset("kimi", KEY)) is MoonshotProvider
    with pytest.raises(ValueError, match="deepseek, moonshot, zai"):
        preset("nope")


@pytest.mark.parametrize("cls, name, var, model, base, label", CASES)
def test_preset_request_over_http(
    cls: Type[OpenAiCompatibleProvider], name: str, var: str, model: str, base: str, label: str, server: LoopbackServer
) -> None:
    p = cls(KEY, base_url=server.url, max_retries=0)
    ctx = Context(
        [ChatMessage.User("q"), ChatMessage.Assistant("", tool_calls=[ToolCallRequest("c1", "f", "{}")]),
         ChatMessage.ToolCallResult(ToolCallResult("c1", "f", "{}", "r"))],
        reasoning_effort=ReasoningEffort.LOW,
    )
    body = sse({"id": "x", "created": 1, "model": model, "choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}]}, "[DONE]")
    chunks = stream_body(server, p, body, context=ctx)
    assert chunks[-1] == LlmResponse.Done(StopReason.END_TURN, "stop")
    req = server.requests[0]
    assert req.path == "/chat/completions"
    assert req.headers["authorization"] == f"Bearer {KEY}"
    sent = req.json()
    assert sent["model"] == model and sent["reasoning_effort"] == "low"
    assert sent["stream_options"] == {"include_usage": True}
    # Thinking models reject a tool-call turn without reasoning_content: the placeholder.
    assert sent["messages"][1]["reasoning_content"] == "."
    assert sent["messages"][2] == {"role": "tool", "content": "r", "tool_call_id": "c1"}


def test_zai_recordings_replay_exactly(server: LoopbackServer, wire: Path) -> None:
    for path in recordings(wire, "zai", "*.sse"):
        p = ZaiProvider(KEY, base_url=server.url, max_retries=0)
        chunks = stream_body(server, p, split_every(path.read_bytes(), 113))
        exp = check_against_recording(chunks, path)
        assert exp.reasoning  # GLM streams reasoning_content first
        assert chunks[1].__class__ is LlmResponse.Reasoning


def test_zai_tool_call_values_pinned_and_round_trip(server: LoopbackServer, wire: Path) -> None:
    p = ZaiProvider(KEY, base_url=server.url, max_retries=0)
    ctx = Context([ChatMessage.User("What's the weather in Tokyo? Use the tool.")], [
        ToolDefinition("get_weather", "weather", {"type": "object", "properties": {"city": {"type": "string"}}})
    ])
    server.reply(Reply(status=200, headers=SSE, body=[(wire / "zai" / "aether_02_tool_call.sse").read_bytes()], chunked=True))
    turn = p.stream_response(ctx).collect()
    assert turn.text == "I'll check the weather in Tokyo for you."
    (tc,) = turn.tool_calls
    assert (tc.id, tc.name, tc.parsed_arguments()) == ("call_3a65c25147434ceb826707fc", "get_weather", {"city": "Tokyo"})
    assert turn.usage == LlmResponse.Usage(164, 79, cached_input_tokens=162, reasoning_tokens=56)
    assert turn.stop_reason == StopReason.TOOL_CALLS
    ctx.add_message(turn.to_message())
    ctx.add_message(ChatMessage.ToolCallResult(ToolCallResult.from_request(tc, "sunny")))
    stream_body(server, p, (wire / "zai" / "aether_01_minimal.sse").read_bytes(), context=ctx)
    msgs = server.requests[1].json()["messages"]
    assert msgs[1]["role"] == "assistant" and msgs[1]["content"] == turn.text
    assert msgs[1]["reasoning_content"] == turn.reasoning  # the thinking goes back with the call
    assert msgs[1]["tool_calls"][0]["id"] == "call_3a65c25147434ceb826707fc"
    assert msgs[2] == {"role": "tool", "content": "sunny", "tool_call_id": "call_3a65c25147434ceb826707fc"}


def test_reasoning_summary_is_sent_back_as_reasoning_content(server: LoopbackServer) -> None:
    p = DeepSeekProvider(KEY, base_url=server.url, max_retries=0)
    ctx = Context([ChatMessage.Assistant("hi", AssistantReasoning("thought"))])
    stream_body(server, p, sse({"id": "x", "choices": [{"index": 0, "delta": {"content": "k"}, "finish_reason": "stop"}]}, "[DONE]"), context=ctx)
    assert server.requests[0].json()["messages"][0] == {"role": "assistant", "content": "hi", "reasoning_content": "thought"}


def test_deepseek_cache_usage_fields(server: LoopbackServer) -> None:
    p = DeepSeekProvider(KEY, base_url=server.url, max_retries=0)
    body = sse(
        {"id": "x", "choices": [{"index": 0, "delta": {"content": "k"}, "finish_reason": "stop"}],
         "usage": {"prompt_tokens": 100, "completion_tokens": 4, "prompt_cache_hit_tokens": 64, "prompt_cache_miss_tokens": 36}},
        "[DONE]",
    )
    chunks = stream_body(server, p, body)
    assert only(chunks, LlmResponse.Usage) == [LlmResponse.Usage(100, 4, cached_input_tokens=64)]


# ---------------------------------------------------------------------------
# Moonshot's schema normalisation.


def test_ref_with_siblings_moves_into_all_of() -> None:
    got = normalize_for_moonshot({"$ref": "#/$defs/A", "description": "an A"})
    assert got == {"description": "an A", "allOf": [{"$ref": "#/$defs/A"}]}
    assert normalize_for_moonshot({"$ref": "#/$defs/A"}) == {"$ref": "#/$defs/A"}


def test_ref_siblings_are_moved_before_annotations_are_dropped() -> None:
    assert normalize_for_moonshot({"$ref": "#/$defs/A", "title": "A"}) == {"allOf": [{"$ref": "#/$defs/A"}]}


def test_annotations_dropped_everywhere_but_property_names_kept() -> None:
    schema: Dict[str, Any] = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Args",
        "$comment": "c",
        "type": "object",
        "properties": {
            "title": {"type": "string", "format": "date", "title": "T", "description": "kept"},
            "items": {"type": "array", "items": {"type": "string", "format": "uri"}},
        },
        "$defs": {"D": {"title": "D", "type": "integer"}},
    }
    assert normalize_for_moonshot(schema) == {
        "type": "object",
        "properties": {
            "title": {"type": "string", "description": "kept"},
            "items": {"type": "array", "items": {"type": "string"}},
        },
        "$defs": {"D": {"type": "integer"}},
    }


def test_type_arrays_become_any_of_recursively() -> None:
    got = normalize_for_moonshot(
        {"type": "object", "properties": {"v": {"type": ["string", "null"], "description": "d"}},
         "anyOf": [{"properties": {"w": {"type": ["integer", "number"]}}}]}
    )
    assert got["properties"]["v"] == {"description": "d", "anyOf": [{"type": "string"}, {"type": "null"}]}
    assert got["anyOf"][0]["properties"]["w"] == {"anyOf": [{"type": "integer"}, {"type": "number"}]}


def test_lsp_diagnostics_style_schema() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "GetDiagnosticsArgs",
        "type": "object",
        "properties": {
            "file": {"type": ["string", "null"], "description": "Path, or null for all files"},
            "severity": {"$ref": "#/$defs/Severity", "description": "Minimum severity"},
            "range": {"anyOf": [{"$ref": "#/$defs/Range"}, {"type": "null"}]},
        },
        "required": ["severity"],
        "$defs": {
            "Severity": {"title": "Severity", "type": "string", "enum": ["error", "warning"]},
            "Range": {"title": "Range", "type": "object", "properties": {"start": {"type": "integer", "format": "uint32", "minimum": 0}}},
        },
    }
    assert normalize_for_moonshot(schema) == {
        "type": "object",
        "properties": {
            "file": {"description": "Path, or null for all files", "anyOf": [{"type": "string"}, {"type": "null"}]},
            "severity": {"description": "Minimum severity", "allOf": [{"$ref": "#/$defs/Severity"}]},
            "range": {"anyOf": [{"$ref": "#/$defs/Range"}, {"type": "null"}]},
        },
        "required": ["severity"],
        "$defs": {
            "Severity": {"type": "string", "enum": ["error", "warning"]},
            "Range": {"type": "object", "properties": {"start": {"type": "integer", "minimum": 0}}},
        },
    }


def test_moonshot_sends_normalised_tools_and_leaves_the_definition_alone(server: LoopbackServer) -> None:
    tool = ToolDefinition("f", "d", {"type": "object", "title": "F", "properties": {"x": {"type": ["string", "null"], "format": "email"}}})
    p = MoonshotProvider(KEY, base_url=server.url, max_retries=0)
    stream_body(server, p, sse({"id": "x", "choices": [{"index": 0, "delta": {"content": "k"}, "finish_reason": "stop"}]}, "[DONE]"),
                context=Context([ChatMessage.User("q")], [tool]))
    params = server.requests[0].json()["tools"][0]["function"]["parameters"]
    assert params == {"type": "object", "properties": {"x": {"anyOf": [{"type": "string"}, {"type": "null"}]}}}
    assert tool.schema["title"] == "F"  # the caller's tool is untouched
    stream_body(server, DeepSeekProvider(KEY, base_url=server.url, max_retries=0),
                sse({"id": "x", "choices": [{"index": 0, "delta": {"content": "k"}, "finish_reason": "stop"}]}, "[DONE]"),
                context=Context([ChatMessage.User("q")], [tool]))
    assert server.requests[1].json()["tools"][0]["function"]["parameters"]["title"] == "F"
