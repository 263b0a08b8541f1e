"""OllamaProvider: real /api/chat recordings and hand-written NDJSON over loopback, requests, errors, hosts."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from llm_sync import (
    ApiError,
    AssistantReasoning,
    ChatMessage,
    ContentBlock,
    Context,
    ContextOverflowError,
    InvalidApiKeyError,
    JsonParsingError,
    LlmResponse,
    RateLimitedError,
    ReasoningEffort,
    ServerError,
    StopReason,
    StreamInterruptedError,
    ToolCallError,
    ToolCallRequest,
    ToolCallResult,
    UnsupportedContentError,
)
from llm_sync.providers.ollama import (
    DEFAULT_HOST,
    OllamaProvider,
    build_request,
    ollama_host_url,
    think_value,
)
from tests.support.replay import kinds, only, split_every, stream_body
from tests.support.server import LoopbackServer, Reply, ndjson
from tests.support.tools import weather

WEATHER = weather("Weather for a city")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OLLAMA_HOST", "OLLAMA_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def provider(server: LoopbackServer, **kw: Any) -> OllamaProvider:
    kw.setdefault("model", "qwen3:8b")
    kw.setdefault("max_retries", 0)
    return OllamaProvider(base_url=server.url, **kw)


def line(
    content: str = "", *, thinking: str = "", tool_calls: Optional[List[Any]] = None, **extra: Any
) -> Dict[str, Any]:
    msg: Dict[str, Any] = {"role": "assistant", "content": content}
    if thinking:
        msg["thinking"] = thinking
    if tool_calls is not None:
        msg["tool_calls"] = tool_calls
    out: Dict[str, Any] = {"model": "qwen3:8b", "created_at": "2026-01-01T00:00:00Z", "message": msg, "done": False}
    out.update(extra)
    return out


def final(reason: str = "stop", prompt: int = 12, output: int = 7, **msg: Any) -> Dict[str, Any]:
    return {
        "model": "qwen3:8b",
        "created_at": "2026-01-01T00:00:01Z",
        "message": {"role": "assistant", "content": "", **msg},
        "done": True,
        "done_reason": reason,
        "total_duration": 1000,
        "prompt_eval_count": prompt,
        "eval_count": output,
    }


def user(text: str = "hi") -> Context:
    return Context([ChatMessage.User(text)])


# ---------------------------------------------------------------------------
# (1) Conformance: every /api/chat recording, replayed through the provider.

CHAT_RECORDINGS = [
    "lcgo_chat_stream_gemma3.ndjson",
    "lcgo_chat_stream_num_predict.ndjson",
    "lcgo_chat_think_gemma3.ndjson",
    "lcgo_cloud_chat_tool_call_nonstream.json",
]
# Recorded from other endpoints (/api/generate, /api/pull): not what this provider reads.
OTHER_ENDPOINTS = {"lcgo_generate_stream.ndjson", "lcgo_pull_stream.ndjson"}


def expected_from(path: Path) -> Dict[str, Any]:
    """What a recording says, read line by line without the provider's parser."""
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    text = "".join(e.get("message", {}).get("content", "") for e in lines)
    thinking = "".join(e.get("message", {}).get("thinking", "") or "" for e in lines)
    calls = [c for e in lines for c in e.get("message", {}).get("tool_calls", []) or []]
    last = lines[-1]
    assert last["done"] is True
    return {
        "text": text,
        "reasoning": thinking,
        "calls": calls,
        "usage": (last["prompt_eval_count"], last["eval_count"]),
        "raw": last["done_reason"],
    }


def test_every_recording_is_accounted_for(wire: Path) -> None:
    names = {p.name for p in (wire / "ollama").iterdir() if not p.name.endswith(".meta.json")}
    errors = {n for n in names if n.startswith("err_")}
    assert names == set(CHAT_RECORDINGS) | OTHER_ENDPOINTS | errors


@pytest.mark.parametrize("name", CHAT_RECORDINGS)
@pytest.mark.parametrize("piece", [7, 4096])
def test_recording_replays_exactly(wire: Path, server: LoopbackServer, name: str, piece: int) -> None:
    path = wire / "ollama" / name
    expected = expected_from(path)
    chunks = stream_body(
        server, provider(server, model="gemma3:1b"), split_every(path.read_bytes(), piece), framing="ndjson"
    )
    assert isinstance(chunks[0], LlmResponse.Start) and chunks[0].message_id.startswith("ollama-")
    assert isinstance(chunks[-1], LlmResponse.Done)
    assert "".join(c.chunk for c in only(chunks, LlmResponse.Text)) == expected["text"]
    assert "".join(c.chunk for c in only(chunks, LlmResponse.Reasoning)) == expected["reasoning"]
    usage = only(chunks, LlmResponse.Usage)
    assert len(usage) == 1 and chunks[-2] is usage[0]
    assert (usage[0].input_tokens, usage[0].output_tokens) == expected["usage"]
    calls = [c.tool_call for c in only(chunks, LlmResponse.ToolRequestComplete)]
    assert [(c.id, c.name, c.parsed_arguments()) for c in calls] == [
        (c["id"], c["function"]["name"], c["function"]["arguments"]) for c in expected["calls"]
    ]
    done = chunks[-1]
    assert done.raw_stop_reason == expected["raw"] == "stop"
    assert done.stop_reason == (StopReason.TOOL_CALLS if calls else StopReason.END_TURN)


def test_recorded_values_verified_by_hand(wire: Path, server: LoopbackServer) -> None:
    body = (wire / "ollama" / "lcgo_chat_stream_num_predict.ndjson").read_bytes()
    got = _collect(server, provider(server), body)
    assert got.text == "Okay, here we go!\n\n1, 2, 3, 4, 5\n"
    assert (got.usage.input_tokens, got.usage.output_tokens) == (16, 22)
    assert got.stop_reason == StopReason.END_TURN

    body = (wire / "ollama" / "lcgo_cloud_chat_tool_call_nonstream.json").read_bytes()
    got = _collect(server, provider(server, model="gpt-oss:120b"), body)
    assert got.reasoning == "User asks about weather in San Francisco. Use function getWeather."
    assert got.text == ""
    [call] = got.tool_calls
    assert (call.id, call.name, call.parsed_arguments()) == (
        "call_mo1wm122",
        "getWeather",
        {"location": "San Francisco, CA"},
    )
    assert (got.usage.input_tokens, got.usage.output_tokens) == (145, 44)
    assert (got.stop_reason, got.raw_stop_reason) == (StopReason.TOOL_CALLS, "stop")


def test_recorded_overflow_body(wire: Path, server: LoopbackServer) -> None:
    body = (wire / "ollama" / "err_400_input_exceeds_context_truncate_false.json").read_bytes()
    server.reply(Reply(status=400, headers={"content-type": "application/json"}, body=body))
    with pytest.raises(ContextOverflowError) as info:
        list(provider(server, model="gemma3:1b").stream_response(user()))
    err = info.value
    assert err.status == 400 and err.provider == "ollama" and not err.retryable
    # Ollama's text carries no numbers, so none are made up.
    assert (err.requested_tokens, err.max_tokens) == (None, None)
    assert "the input length exceeds the context length" in str(err) and "num_ctx" in str(err)
    assert len(server.requests) == 1


def test_recorded_no_tools_body(wire: Path, server: LoopbackServer) -> None:
    body = (wire / "ollama" / "err_400_model_does_not_support_tools.json").read_bytes()
    server.reply(Reply(status=400, headers={"content-type": "application/json; charset=utf-8"}, body=body))
    with pytest.raises(ApiError) as info:
        list(provider(server, model="gemma3:1b", max_retries=2).stream_response(Context([ChatMessage.User("x")], [WEATHER])))
    assert type(info.value) is ApiError and info.value.status == 400
    assert "gemma3:1b does not support tools" in str(info.value) and "tool support" in str(info.value)
    assert len(server.requests) == 1


def _collect(server: LoopbackServer, p: OllamaProvider, body: bytes, ctx: Optional[Context] = None) -> Any:
    server.reply(Reply(status=200, headers={"content-type": "application/x-ndjson"}, body=[body], chunked=True))
    return p.stream_response(ctx or user()).collect()


# ---------------------------------------------------------------------------
# (2) Hand-written streams of the same shapes.


def test_thinking_then_answer(server: LoopbackServer) -> None:
    body = ndjson(
        line(thinking="Two plus "),
        line(thinking="two is four."),
        line("The answer"),
        line(" is 4."),
        final("stop", 20, 11),
    )
    chunks = stream_body(server, provider(server), split_every(body, 5), framing="ndjson")
    assert kinds(chunks) == ["Start", "Reasoning", "Reasoning", "Text", "Text", "Usage", "Done"]
    assert [c.chunk for c in only(chunks, LlmResponse.Reasoning)] == ["Two plus ", "two is four."]
    assert chunks[-2] == LlmResponse.Usage(20, 11)
    assert chunks[-1] == LlmResponse.Done(StopReason.END_TURN, "stop")


def test_tool_calls_without_ids_get_unique_made_up_ids(server: LoopbackServer) -> None:
    calls = [
        {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
        {"function": {"index": 1, "name": "get_weather", "arguments": {"city": "Zürich"}}},
    ]
    body = ndjson(line(thinking="two cities"), line("", tool_calls=calls), final("stop"))
    p = provider(server)
    first = stream_body(server, p, body, framing="ndjson", context=Context([ChatMessage.User("x")], [WEATHER]))
    assert kinds(first) == [
        "Start", "Reasoning",
        "ToolRequestStart", "ToolRequestArg", "ToolRequestComplete",
        "ToolRequestStart", "ToolRequestArg", "ToolRequestComplete",
        "Usage", "Done",
    ]
    done = [c.tool_call for c in only(first, LlmResponse.ToolRequestComplete)]
    assert [c.parsed_arguments() for c in done] == [{"city": "Paris"}, {"city": "Zürich"}]
    assert "Zürich" in done[1].arguments  # kept readable, not \\u-escaped
    ids = [c.id for c in done]
    assert len(set(ids)) == 2 and all(ids)
    starts = only(first, LlmResponse.ToolRequestStart)
    args = only(first, LlmResponse.ToolRequestArg)
    assert [s.id for s in starts] == [a.id for a in args] == ids
    assert first[-1] == LlmResponse.Done(StopReason.TOOL_CALLS, "stop")
    # Another stream makes other ids: they must not collide across turns.
    again = stream_body(server, p, body, framing="ndjson")
    assert not {c.tool_call.id for c in only(again, LlmResponse.ToolRequestComplete)} & set(ids)


def test_arguments_given_as_text_are_kept(server: LoopbackServer) -> None:
    calls = [{"id": "c1", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}]
    got = _collect(server, provider(server), ndjson(line("", tool_calls=calls), final("stop")))
    assert list(got.tool_calls) == [ToolCallRequest("c1", "get_weather", '{"city":"Oslo"}')]


@pytest.mark.parametrize(
    "reason, stop",
    [("length", StopReason.LENGTH), ("load", StopReason.UNKNOWN), ("unload", StopReason.UNKNOWN), ("weird", StopReason.UNKNOWN)],
)
def test_done_reasons(server: LoopbackServer, reason: str, stop: StopReason) -> None:
    chunks = stream_body(server, provider(server), ndjson(line("a"), final(reason)), framing="ndjson")
    assert chunks[-1] == LlmResponse.Done(stop, reason)


def test_a_final_line_without_done_reason_or_counts(server: LoopbackServer) -> None:
    body = ndjson(line("a"), {"model": "m", "message": {"role": "assistant", "content": "b"}, "done": True})
    chunks = stream_body(server, provider(server), body, framing="ndjson")
    assert kinds(chunks) == ["Start", "Text", "Text", "Done"]
    assert chunks[-1] == LlmResponse.Done(StopReason.UNKNOWN, None)


def test_error_line_after_content_raises_typed_error_and_is_not_retried(server: LoopbackServer) -> None:
    body = ndjson(line("partial"), {"error": "llama runner process has terminated: signal: killed"})
    server.reply(Reply(status=200, headers={"content-type": "application/x-ndjson"}, body=[body], chunked=True))
    got: List[LlmResponse] = []
    with pytest.raises(ServerError) as info:
        for c in provider(server, max_retries=2).stream_response(user()):
            got.append(c)
    assert "runner process has terminated" in str(info.value)
    assert kinds(got) == ["Start", "Text"]
    assert len(server.requests) == 1


def test_error_line_before_content(server: LoopbackServer) -> None:
    body = ndjson({"error": "the input length exceeds the context length"})
    server.reply(Reply(status=200, headers={"content-type": "application/x-ndjson"}, body=[body], chunked=True))
    with pytest.raises(ContextOverflowError):
        list(provider(server, max_retries=2).stream_response(user()))
    assert len(server.requests) == 1


def test_invalid_json_line(server: LoopbackServer) -> None:
    body = ndjson(line("a")) + b'{"message": {"content": "b"\n'
    server.reply(Reply(status=200, headers={"content-type": "application/x-ndjson"}, body=[body], chunked=True))
    with pytest.raises(JsonParsingError, match="not valid JSON"):
        list(provider(server).stream_response(user()))


def test_stream_cut_before_done(server: LoopbackServer) -> None:
    server.reply(Reply(status=200, headers={"content-type": "application/x-ndjson"}, body=[ndjson(line("a"))], chunked=True))
    with pytest.raises(StreamInterruptedError):
        list(provider(server).stream_response(user()))


# ---------------------------------------------------------------------------
# (3) Requests.


def test_request_shape_per_message_kind(server: LoopbackServer) -> None:
    png = ContentBlock.Image.from_bytes(b"\x89PNG fake", "image/png")
    call = ToolCallRequest("call_1", "get_weather", '{"city": "Paris"}')
    ctx = Context(
        [
            ChatMessage.System("be brief"),
            ChatMessage.User([ContentBlock.Text("what is"), ContentBlock.Text("this?"), png]),
            ChatMessage.Assistant("let me look", AssistantReasoning("need weather"), tool_calls=[call]),
            ChatMessage.ToolCallResult(ToolCallResult.from_request(call, "sunny")),
            ChatMessage.ToolCallResult(ToolCallError("call_2", "get_weather", None, "city unknown")),
            ChatMessage.Error("the network failed"),
            ChatMessage.Summary("we talked about weather", messages_compacted=4),
        ],
        [WEATHER],
    )
    stream_body(server, provider(server, options={"num_ctx": 8192, "temperature": 0}), ndjson(final()), framing="ndjson", context=ctx)
    req = server.requests[0]
    assert req.method == "POST" and req.path == "/api/chat"
    body = req.json()
    assert body["model"] == "qwen3:8b" and body["stream"] is True
    assert body["options"] == {"num_ctx": 8192, "temperature": 0}
    assert "think" not in body
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "what is\nthis?", "images": [png.data]},
        {
            "role": "assistant",
            "content": "let me look",
            "thinking": "need weather",
            "tool_calls": [{"id": "call_1", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
        },
        {"role": "tool", "content": "sunny", "tool_name": "get_weather", "tool_call_id": "call_1"},
        {"role": "tool", "content": "city unknown", "tool_name": "get_weather", "tool_call_id": "call_2"},
        {"role": "user", "content": "[Previous conversation handoff]\n\nwe talked about weather"},
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {"name": "get_weather", "description": "Weather for a city", "parameters": WEATHER.schema},
        }
    ]


def test_audio_is_refused_before_anything_is_sent(server: LoopbackServer) -> None:
    ctx = Context([ChatMessage.User([ContentBlock.Audio("AAAA", "audio/wav")])])
    with pytest.raises(UnsupportedContentError, match="audio"):
        list(provider(server).stream_response(ctx))
    assert server.requests == []


@pytest.mark.parametrize(
    "model, effort, think",
    [
        ("qwen3:8b", None, None),
        ("qwen3:8b", ReasoningEffort.LOW, True),
        ("deepseek-r1", ReasoningEffort.HIGH, True),
        ("gpt-oss:20b", ReasoningEffort.LOW, "low"),
        ("gpt-oss:120b", ReasoningEffort.MEDIUM, "medium"),
        ("gpt-oss", ReasoningEffort.HIGH, "high"),
        ("gpt-oss:20b", ReasoningEffort.XHIGH, "high"),
    ],
)
def test_reasoning_effort_to_think(model: str, effort: Any, think: Any) -> None:
    assert think_value(model, effort) == think
    body = build_request(Context([ChatMessage.User("x")], reasoning_effort=effort), model)
    assert body.get("think") == think


def test_explicit_think_wins_and_false_is_sent(server: LoopbackServer) -> None:
    ctx = Context([ChatMessage.User("x")], reasoning_effort="high")
    assert build_request(ctx, "qwen3", think=False)["think"] is False
    stream_body(server, provider(server, think="low"), ndjson(final()), framing="ndjson", context=ctx)
    assert server.requests[0].json()["think"] == "low"


def test_prompt_cache_key_is_not_sent() -> None:
    body = build_request(Context([ChatMessage.User("x")], prompt_cache_key="k"), "qwen3")
    assert "prompt_cache_key" not in body and "options" not in body


def test_headers_key_and_redaction(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    stream_body(server, provider(server), ndjson(final()), framing="ndjson")
    assert "authorization" not in server.requests[0].headers
    assert server.requests[0].headers["content-type"] == "application/json"

    key = "ollama-cloud-key-0123456789abcdef"
    monkeypatch.setenv("OLLAMA_API_KEY", key)
    p = provider(server)
    stream_body(server, p, ndjson(final()), framing="ndjson")
    assert server.requests[1].headers["authorization"] == f"Bearer {key}"
    assert key not in repr(p)
    server.reply(Reply.json({"error": f"unauthorized: key {key} revoked"}, status=401))
    with pytest.raises(InvalidApiKeyError) as info:
        list(p.stream_response(user()))
    assert key not in str(info.value) and key not in repr(info.value) and key not in (info.value.body or "")
    assert "OLLAMA_API_KEY" in str(info.value)


def test_two_turn_round_trip_carries_tool_result_and_thinking(server: LoopbackServer) -> None:
    p = provider(server, model="gpt-oss:20b")
    ctx = Context([ChatMessage.User("weather in Paris?")], [WEATHER], reasoning_effort="high")
    calls = [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]
    first = _collect(server, p, ndjson(line(thinking="call the tool"), line("", tool_calls=calls), final("stop")), ctx)
    assert first.stop_reason == StopReason.TOOL_CALLS
    [call] = first.tool_calls
    ctx.add_message(first.to_message())
    ctx.add_message(ChatMessage.ToolCallResult(ToolCallResult.from_request(call, "18 C, clear")))
    second = _collect(server, p, ndjson(line("It is 18 C."), final("stop", 40, 6)), ctx)
    assert second.text == "It is 18 C." and second.stop_reason == StopReason.END_TURN

    msgs = server.requests[1].json()["messages"]
    assert msgs[1] == {
        "role": "assistant",
        "content": "",
        "thinking": "call the tool",
        "tool_calls": [{"id": call.id, "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
    }
    assert msgs[2] == {"role": "tool", "content": "18 C, clear", "tool_name": "get_weather", "tool_call_id": call.id}
    assert server.requests[0].json()["think"] == server.requests[1].json()["think"] == "high"


# ---------------------------------------------------------------------------
# (4) HTTP errors and retries.


def test_model_not_found_names_the_model_and_the_pull(server: LoopbackServer) -> None:
    server.reply(Reply.json({"error": 'model "llama9:70b" not found, try pulling it first'}, status=404))
    with pytest.raises(ApiError) as info:
        list(provider(server, model="llama9:70b", max_retries=2).stream_response(user()))
    msg = str(info.value)
    assert "ollama pull llama9:70b" in msg and "llama9:70b" in msg and info.value.status == 404
    assert len(server.requests) == 1


def test_401_is_not_retried(server: LoopbackServer) -> None:
    server.reply(Reply.json({"error": "unauthorized"}, status=401))
    with pytest.raises(InvalidApiKeyError):
        list(provider(server, max_retries=3).stream_response(user()))
    assert len(server.requests) == 1


def test_429_with_retry_after_is_retried(server: LoopbackServer) -> None:
    server.reply(
        Reply.json({"error": "too many requests"}, status=429, headers={"retry-after": "0"}),
        Reply(status=200, headers={"content-type": "application/x-ndjson"}, body=[ndjson(line("ok"), final())], chunked=True),
    )
    got = provider(server, max_retries=2).stream_response(user()).collect()
    assert got.text == "ok" and len(server.requests) == 2


def test_429_gives_up_as_rate_limited(server: LoopbackServer) -> None:
    server.reply(Reply.json({"error": "too many requests"}, status=429, headers={"retry-after": "0"}))
    with pytest.raises(RateLimitedError) as info:
        list(provider(server, max_retries=0).stream_response(user()))
    assert info.value.retry_after == 0


@pytest.mark.parametrize("status, text", [(500, "llama runner process has terminated"), (503, "server busy, please try again")])
def test_5xx_is_retried(server: LoopbackServer, status: int, text: str) -> None:
    server.reply(
        Reply.json({"error": text}, status=status, headers={"retry-after": "0"}),
        Reply(status=200, headers={"content-type": "application/x-ndjson"}, body=[ndjson(line("ok"), final())], chunked=True),
    )
    got = provider(server, max_retries=1).stream_response(user()).collect()
    assert got.text == "ok" and len(server.requests) == 2


def test_5xx_exhausted_is_a_server_error(server: LoopbackServer) -> None:
    server.reply(Reply.json({"error": "server busy, please try again"}, status=503))
    with pytest.raises(ServerError, match="server busy"):
        list(provider(server, max_retries=0).stream_response(user()))


# ---------------------------------------------------------------------------
# Hosts and configuration.


@pytest.mark.parametrize(
    "value, url",
    [
        ("", "http://127.0.0.1:11434"),
        ("localhost", "http://localhost:11434"),
        ("  'localhost:1234'  ", "http://localhost:1234"),
        ('"example.com:99"', "http://example.com:99"),
        ("10.0.0.5", "http://10.0.0.5:11434"),
        ("http://example.com", "http://example.com:80"),
        ("https://example.com", "https://example.com:443"),
        ("https://example.com:8443/ollama/", "https://example.com:8443/ollama"),
        ("http://localhost:11434/", "http://localhost:11434"),
        ("0.0.0.0", "http://127.0.0.1:11434"),
        ("0.0.0.0:8000", "http://127.0.0.1:8000"),
        ("[::1]:9999", "http://[::1]:9999"),
        ("::1", "http://[::1]:11434"),
        ("host:notaport", "http://host:11434"),
        ("host:70000", "http://host:11434"),
    ],
)
def test_ollama_host_values(value: str, url: str) -> None:
    assert ollama_host_url(value) == url


def test_default_host_and_env(monkeypatch: pytest.MonkeyPatch, server: LoopbackServer) -> None:
    assert OllamaProvider().base_url == DEFAULT_HOST == "http://localhost:11434"
    assert OllamaProvider().model_name == "gemma3"
    monkeypatch.setenv("OLLAMA_HOST", "")
    assert OllamaProvider().base_url == DEFAULT_HOST
    port = server.url.rsplit(":", 1)[1]
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{port}")  # no scheme, as Ollama accepts it
    p = OllamaProvider.from_env(model="qwen3", max_retries=0)
    assert p.base_url == server.url
    assert stream_body(server, p, ndjson(line("hey"), final()), framing="ndjson")[1] == LlmResponse.Text("hey")
    assert OllamaProvider(base_url="localhost").base_url == "http://localhost:11434"
    assert p.with_base_url("example.com").base_url == "http://example.com:11434"


def test_configuration_copies_and_pickles() -> None:
    p = OllamaProvider(model="qwen3:8b", options={"num_ctx": 4096})
    q = p.with_options(temperature=0.2, num_ctx=None).with_model("llama3.2")
    assert p.options == {"num_ctx": 4096} and q.options == {"temperature": 0.2}
    assert p.context_window() == 4096 and q.context_window() is None
    assert p.with_max_tokens(100).options["num_predict"] == 100
    assert p.with_temperature(0.5).options["temperature"] == 0.5
    assert p.with_think("high").think == "high" and p.think is None
    assert p.display_name() == "Ollama (qwen3:8b)" and q.display_name() == "Ollama (llama3.2)"
    model = p.model()
    assert model is not None and str(model) == "ollama:qwen3:8b"
    clone = pickle.loads(pickle.dumps(p))
    assert clone.options == p.options and clone.base_url == p.base_url
    p.options["num_ctx"] = 1  # a copy: the provider is unchanged
    assert p.options == {"num_ctx": 4096}
    with pytest.raises(TypeError):
        OllamaProvider(options=[("num_ctx", 1)])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        OllamaProvider(think=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        p.with_model("")


def test_openai_api_option(server: LoopbackServer) -> None:
    import importlib.util

    if importlib.util.find_spec("llm_sync.providers.openai_compatible") is None:
        with pytest.raises(ValueError, match="openai_compatible"):
            OllamaProvider(use_openai_api=True)
        return
    p = provider(server, use_openai_api=True)
    assert p.uses_openai_api and not provider(server).uses_openai_api
    sse = b'data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"qwen3:8b",' \
        b'"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
    server.reply(Reply(status=200, headers={"content-type": "text/event-stream"}, body=[sse], chunked=True))
    assert p.stream_response(user()).collect().text == "hi"
    assert server.requests[0].path == "/v1/chat/completions"
    body = server.requests[0].json()
    assert body["model"] == "qwen3:8b" and body["stream"] is True
    server.reply(Reply(status=200, headers={"content-type": "text/event-stream"}, body=[sse], chunked=True))
    p.with_options(temperature=0.25).stream_response(user()).collect()
    assert server.requests[1].json()["temperature"] == 0.25
