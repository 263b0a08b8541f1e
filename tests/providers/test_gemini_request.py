"""GeminiProvider requests: URL, headers, keys, body per message kind, thinking, signature replay."""

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
    EncryptedReasoningContent,
    LlmResponse,
    MissingApiKeyError,
    ReasoningEffort,
    StopReason,
    ToolCallError,
    ToolCallRequest,
    ToolCallResult,
    ToolDefinition,
)
from llm_sync.providers.gemini import SKIP_SIGNATURE, GeminiProvider, build_request, thinking_config
from tests.support.replay import stream_body
from tests.support.server import LoopbackServer, Reply

KEY = "gm-req-key-abcdef012345"


def provider(server: LoopbackServer, model: str = "gemini-2.5-flash") -> GeminiProvider:
    return GeminiProvider(KEY, model=model, base_url=server.url + "/v1beta")


def data(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\r\n\r\n"


def answer(parts: List[Dict[str, Any]], finish: str = "STOP", rid: str = "r1") -> bytes:
    return data({"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish}], "responseId": rid})


def sent(server: LoopbackServer, context: Context, model: str = "gemini-2.5-flash") -> Dict[str, Any]:
    stream_body(server, provider(server, model), answer([{"text": "ok"}]), context=context)
    return server.requests[-1].json()  # type: ignore[no-any-return]


WEATHER = ToolDefinition(
    "get_weather",
    "Weather for a city.",
    {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
        "required": ["city"],
        "additionalProperties": False,
    },
)


# ---------------------------------------------------------------------------
# Configuration, URL, headers, keys.


def test_url_headers_and_minimal_body(server: LoopbackServer) -> None:
    body = sent(server, Context([ChatMessage.User("hi")], prompt_cache_key="k1"))
    req = server.requests[0]
    assert req.method == "POST"
    assert req.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    assert req.headers["x-goog-api-key"] == KEY
    assert "authorization" not in req.headers and "key=" not in req.path
    # prompt_cache_key has no Gemini field, and Gemini rejects unknown ones.
    assert body == {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "generationConfig": {"thinkingConfig": {"includeThoughts": True}},
    }


def test_models_prefix_is_accepted(server: LoopbackServer) -> None:
    stream_body(server, provider(server, "models/gemini-2.0-flash"), answer([{"text": "ok"}]))
    assert server.requests[0].path_only == "/v1beta/models/gemini-2.0-flash:streamGenerateContent"


def test_key_never_in_repr_and_display_name() -> None:
    p = GeminiProvider(KEY)
    assert KEY not in repr(p) and p.display_name() == "Gemini (gemini-2.5-flash)"
    assert p.base_url == "https://generativelanguage.googleapis.com/v1beta"
    q = pickle.loads(pickle.dumps(p.with_model("gemini-2.5-pro")))
    assert q.model_name == "gemini-2.5-pro" and p.model_name == "gemini-2.5-flash"


def test_env_keys_and_base_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env from the repository
    for v in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GEMINI_BASE_URL"):
        monkeypatch.delenv(v, raising=False)
    with pytest.raises(MissingApiKeyError) as info:
        GeminiProvider.from_env()
    assert "GEMINI_API_KEY" in str(info.value) and "GOOGLE_API_KEY" in str(info.value)
    assert info.value.variable == "GEMINI_API_KEY"
    monkeypatch.setenv("GOOGLE_API_KEY", "google-alias-key-123")
    assert GeminiProvider()._api_key == "google-alias-key-123"
    monkeypatch.setenv("GEMINI_API_KEY", "gemini-main-key-456")
    monkeypatch.setenv("GEMINI_BASE_URL", "http://127.0.0.1:9/v1beta/")
    p = GeminiProvider.from_env()
    assert p._api_key == "gemini-main-key-456" and p.base_url == "http://127.0.0.1:9/v1beta"


# ---------------------------------------------------------------------------
# Message kinds.


def test_system_messages_become_system_instruction(server: LoopbackServer) -> None:
    ctx = Context([ChatMessage.System("Be brief."), ChatMessage.User("hi"), ChatMessage.System("Use French.")])
    body = sent(server, ctx)
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}, {"text": "Use French."}]}
    assert body["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]


def test_image_and_audio_go_inline(server: LoopbackServer) -> None:
    ctx = Context(
        [
            ChatMessage.User(
                [
                    ContentBlock.Text("what is this?"),
                    ContentBlock.Image.from_bytes(b"\x89PNG", "image/png"),
                    ContentBlock.Audio.from_bytes(b"RIFF", "audio/wav"),
                ]
            )
        ]
    )
    parts = sent(server, ctx)["contents"][0]["parts"]
    assert parts == [
        {"text": "what is this?"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw=="}},
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
    ]


def test_assistant_tool_calls_and_results(server: LoopbackServer) -> None:
    call1 = ToolCallRequest("c1", "get_weather", '{"city": "Paris"}')
    call2 = ToolCallRequest("c2", "get_weather", "")
    ctx = Context([ChatMessage.User("weather?")], [WEATHER])
    ctx.push_assistant_turn(
        "Let me check.",
        None,
        [ToolCallResult.from_request(call1, "18C"), ToolCallError.from_request(call2, "no city")],
    )
    body = sent(server, ctx)
    assert body["contents"][1:] == [
        {
            "role": "model",
            "parts": [
                {"text": "Let me check."},
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": "c1"}},
                {"functionCall": {"name": "get_weather", "args": {}, "id": "c2"}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"output": "18C"}, "id": "c1"}},
                {"functionResponse": {"name": "get_weather", "response": {"error": "no city"}, "id": "c2"}},
            ],
        },
    ]


def test_summary_and_error_messages(server: LoopbackServer) -> None:
    ctx = Context([ChatMessage.Summary("We talked about cats.", messages_compacted=4), ChatMessage.Error("boom"), ChatMessage.User("go on")])
    body = sent(server, ctx)
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "[Previous conversation handoff]\n\nWe talked about cats."}]},
        {"role": "user", "parts": [{"text": "go on"}]},
    ]


def test_empty_assistant_turn_is_left_out(server: LoopbackServer) -> None:
    body = sent(server, Context([ChatMessage.User("a"), ChatMessage.Assistant(""), ChatMessage.User("b")]))
    assert [c["role"] for c in body["contents"]] == ["user", "user"]


def test_tools_use_parameters_json_schema(server: LoopbackServer) -> None:
    body = sent(server, Context([ChatMessage.User("hi")], [WEATHER]))
    (decl,) = body["tools"][0]["functionDeclarations"]
    assert decl["name"] == "get_weather" and decl["description"] == "Weather for a city."
    schema = decl["parametersJsonSchema"]
    assert "$schema" not in schema and "parameters" not in decl
    assert schema["additionalProperties"] is False  # full JSON Schema is accepted here
    assert schema["properties"]["unit"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}


# ---------------------------------------------------------------------------
# Reasoning effort.


@pytest.mark.parametrize(
    "model, effort, config",
    [
        ("gemini-2.5-flash", None, {"includeThoughts": True}),
        ("gemini-2.0-flash", None, None),
        ("gemma-3-27b-it", None, None),
        ("gemini-flash-latest", None, {"includeThoughts": True}),
        ("gemini-2.5-flash", ReasoningEffort.LOW, {"includeThoughts": True, "thinkingBudget": 1024}),
        ("gemini-2.5-flash", ReasoningEffort.XHIGH, {"includeThoughts": True, "thinkingBudget": 24576}),
        ("gemini-2.5-pro", ReasoningEffort.XHIGH, {"includeThoughts": True, "thinkingBudget": 32768}),
        ("gemini-3-pro-preview", ReasoningEffort.LOW, {"includeThoughts": True, "thinkingLevel": "low"}),
        ("gemini-3-pro-preview", ReasoningEffort.MEDIUM, {"includeThoughts": True, "thinkingLevel": "high"}),
        ("gemini-3-flash-preview", ReasoningEffort.MEDIUM, {"includeThoughts": True, "thinkingLevel": "medium"}),
        ("gemini-3.1-pro-preview", ReasoningEffort.XHIGH, {"includeThoughts": True, "thinkingLevel": "high"}),
    ],
)
def test_thinking_config(model: str, effort: Any, config: Any) -> None:
    assert thinking_config(model, effort) == config


def test_reasoning_effort_is_sent(server: LoopbackServer) -> None:
    ctx = Context([ChatMessage.User("hi")], reasoning_effort="high")
    body = sent(server, ctx, "gemini-3-flash-preview")
    assert body["generationConfig"] == {"thinkingConfig": {"includeThoughts": True, "thinkingLevel": "high"}}


# ---------------------------------------------------------------------------
# Thought signatures and the two-turn round trip.


def signed_turn(model: str, calls: Dict[str, str], text_sig: str = "") -> ChatMessage:
    content: Dict[str, Any] = {"calls": calls}
    if text_sig:
        content["text"] = text_sig
    enc = EncryptedReasoningContent("r1", f"gemini:{model}", json.dumps(content))
    return ChatMessage.Assistant(
        "Checking.",
        AssistantReasoning("I should call it.", enc),
        tool_calls=[ToolCallRequest("c1", "get_weather", '{"city": "Oslo"}'), ToolCallRequest("c2", "get_weather", '{"city": "Rome"}')],
    )


def test_signatures_replayed_to_the_same_model_only() -> None:
    msg = signed_turn("gemini-3-pro-preview", {"c1": "SIG1"}, "SIGT")
    ctx = Context([ChatMessage.User("q"), msg])
    same = build_request(ctx, "gemini-3-pro-preview")["contents"][1]["parts"]
    assert same == [
        {"text": "Checking.", "thoughtSignature": "SIGT"},
        {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}, "id": "c1"}, "thoughtSignature": "SIG1"},
        {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}, "id": "c2"}},
    ]
    # Another Gemini 3 model must not see the signatures, yet needs a first-call marker.
    other3 = build_request(ctx, "gemini-3-flash-preview")["contents"][1]["parts"]
    assert other3[0] == {"text": "Checking."}
    assert other3[1]["thoughtSignature"] == SKIP_SIGNATURE and "thoughtSignature" not in other3[2]
    # Older models get no signatures at all.
    other25 = build_request(ctx, "gemini-2.5-flash")["contents"][1]["parts"]
    assert all("thoughtSignature" not in p for p in other25)


def test_two_turn_round_trip(server: LoopbackServer) -> None:
    p = provider(server, "gemini-3-flash-preview")
    ctx = Context([ChatMessage.System("You help."), ChatMessage.User("Weather in Oslo?")], [WEATHER])
    turn1 = [
        data({"candidates": [{"content": {"role": "model", "parts": [{"text": "Thinking about Oslo", "thought": True}]}}], "responseId": "T1"}),
        answer([{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}, "thoughtSignature": "SIG-OSLO"}], rid="T1"),
    ]
    server.reply(Reply(status=200, headers={"content-type": "text/event-stream"}, body=turn1, chunked=True))
    with p.stream_response(ctx) as stream:
        collected = stream.collect()
    assert collected.stop_reason == StopReason.TOOL_CALLS and collected.reasoning == "Thinking about Oslo"
    (call,) = collected.tool_calls
    assert (call.id, call.name, call.arguments) == ("call_T1_0", "get_weather", '{"city": "Oslo"}')
    ctx.add_message(collected.to_message())
    ctx.add_message(ChatMessage.ToolCallResult(ToolCallResult.from_request(call, "-3C")))
    chunks2 = stream_body(server, p, answer([{"text": "It is -3C."}], rid="T2"), context=ctx)
    assert "".join(c.chunk for c in chunks2 if isinstance(c, LlmResponse.Text)) == "It is -3C."
    first, second = (r.json() for r in server.requests)
    assert first["contents"] == [{"role": "user", "parts": [{"text": "Weather in Oslo?"}]}]
    assert second["systemInstruction"] == {"parts": [{"text": "You help."}]}
    assert second["contents"][1:] == [
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Oslo"}, "id": "call_T1_0"},
                    "thoughtSignature": "SIG-OSLO",
                }
            ],
        },
        {
            "role": "user",
            "parts": [{"functionResponse": {"name": "get_weather", "response": {"output": "-3C"}, "id": "call_T1_0"}}],
        },
    ]
