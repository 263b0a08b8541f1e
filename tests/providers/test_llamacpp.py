"""LlamaCppProvider over loopback: the real llama.cpp recordings, hand-written streams, requests, errors, hosts."""

from __future__ import annotations

import base64
import json
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
    LlmResponse,
    RateLimitedError,
    ServerError,
    StopReason,
    ToolCallError,
    ToolCallRequest,
    ToolCallResult,
    ToolDefinition,
    UnsupportedContentError,
)
from llm_sync.providers.llamacpp import DEFAULT_HOST, LlamaCppProvider, llama_cpp_host_url
from tests.providers.test_openai_compatible_wire import check_against_recording, recordings
from tests.support.replay import kinds, only, split_every, stream_body
from tests.support.server import LoopbackServer, Reply, sse

KEY = "llama-test-key-5d1c0a9e7f"


def provider(server: LoopbackServer, **kw: Any) -> LlamaCppProvider:
    kw.setdefault("max_retries", 0)
    return LlamaCppProvider(base_url=server.url, **kw)


def ctx(text: str = "hi") -> Context:
    return Context([ChatMessage.User(text)])


def chunk(delta: Optional[Dict[str, Any]] = None, finish: Optional[str] = None, **extra: Any) -> Dict[str, Any]:
    # The shape llama.cpp sends: no "object" needed, "timings" beside "usage".
    c: Dict[str, Any] = {"id": "chatcmpl-L1", "created": 1, "model": "tiny.gguf", "system_fingerprint": "b0-unknown"}
    c["choices"] = [] if delta is None and finish is None else [
        {"index": 0, "delta": delta or {}, "finish_reason": finish}
    ]
    c.update(extra)
    return c


def llama_usage(prompt: int, completion: int, cached: int) -> Dict[str, Any]:
    return {
        "usage": {
            "completion_tokens": completion,
            "prompt_tokens": prompt,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached},
        },
        "timings": {"cache_n": cached, "prompt_n": prompt - cached, "predicted_n": completion},
    }


# ---------------------------------------------------------------------------
# (1) The real recordings.


def test_every_llamacpp_chat_recording_replays_exactly(server: LoopbackServer, wire: Path) -> None:
    paths = recordings(wire, "llamacpp", "chat_*.sse", "tiny_forced_tool_call.sse")
    assert len(paths) >= 5
    for path in paths:
        # Split at an awkward size so events straddle HTTP chunks.
        chunks = stream_body(server, provider(server), split_every(path.read_bytes(), 61))
        check_against_recording(chunks, path)
    for r in server.requests:
        assert r.path == "/v1/chat/completions"


def test_recorded_values_pinned(server: LoopbackServer, wire: Path) -> None:
    folder = wire / "llamacpp"
    p = provider(server)

    got = stream_body(server, p, (folder / "chat_text_stop.sse").read_bytes())
    assert got[0] == LlmResponse.Start("chatcmpl-j8ORnRbkpHhnHMxbVdVXiq8RdGCKvVvh")
    assert got[-2] == LlmResponse.Usage(24, 10, cached_input_tokens=19)
    assert got[-1] == LlmResponse.Done(StopReason.END_TURN, "stop")
    assert "".join(c.chunk for c in only(got, LlmResponse.Text)).startswith("What is the capital")

    got = stream_body(server, p, (folder / "chat_text_length.sse").read_bytes())
    assert got[-1] == LlmResponse.Done(StopReason.LENGTH, "length")

    got = stream_body(server, p, (folder / "chat_tool_single.sse").read_bytes())
    (call,) = [c.tool_call for c in only(got, LlmResponse.ToolRequestComplete)]  # type: ignore[attr-defined]
    assert (call.id, call.name, call.parsed_arguments()) == ("XLbb0mDqXSHjcPIyTTq8lnqXYJpZzYAa", "get_weather", {"city": "Paris"})
    assert got[-2] == LlmResponse.Usage(291, 30, cached_input_tokens=286)
    assert got[-1] == LlmResponse.Done(StopReason.TOOL_CALLS, "tool_calls")
    assert only(got, LlmResponse.Text) == []

    got = stream_body(server, p, (folder / "tiny_forced_tool_call.sse").read_bytes())
    (call,) = [c.tool_call for c in only(got, LlmResponse.ToolRequestComplete)]  # type: ignore[attr-defined]
    assert (call.id, call.parsed_arguments()) == ("ajU0ichJwSledyZPENnQeJ7TI6LqWm5n", {"city": "Paris"})
    # One character per delta: 16 argument deltas, all under the one id.
    args = only(got, LlmResponse.ToolRequestArg)
    assert len(args) == 16 and {a.id for a in args} == {call.id}  # type: ignore[attr-defined]
    assert got[-2] == LlmResponse.Usage(465, 52, cached_input_tokens=303)

    got = stream_body(server, p, (folder / "chat_reasoning.sse").read_bytes())
    k = kinds(got)
    assert "Reasoning" in k and "Text" in k
    assert k.index("Reasoning") < k.index("Text")  # reasoning_content first, then content
    assert got[-1] == LlmResponse.Done(StopReason.LENGTH, "length")


@pytest.mark.parametrize(
    ("name", "status", "numbers"),
    [
        ("chat_overflow_400.json", 400, (6010, 2048)),
        ("messages_overflow_400.json", 400, (6010, 2048)),
        ("issue_err_context_size_old_wording.json", 400, (14429, 8192)),
        # That wording came with code 500 before llama.cpp moved it to 400: still an
        # overflow, and not retried as a server error would be.
        ("issue_err_context_size_old_wording.json", 500, (14429, 8192)),
    ],
)
def test_recorded_overflow_bodies_raise_with_the_servers_numbers(
    server: LoopbackServer, wire: Path, name: str, status: int, numbers: Any
) -> None:
    body = (wire / "llamacpp" / name).read_bytes()
    server.reply(Reply(status=status, headers={"content-type": "application/json"}, body=body))
    with pytest.raises(ContextOverflowError) as info:
        list(provider(server, max_retries=2).stream_response(ctx()))
    err = info.value
    assert (err.requested_tokens, err.max_tokens) == numbers
    assert err.status == status and err.provider == "llamacpp" and not err.retryable
    assert "Context.with_compacted_summary" in str(err)
    assert len(server.requests) == 1


# ---------------------------------------------------------------------------
# (2) Hand-written streams of the same shapes.


def test_text_stream_with_role_chunk_timings_and_usage(server: LoopbackServer) -> None:
    body = sse(
        chunk({"role": "assistant", "content": None}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo"}),
        chunk({}, "stop"),
        chunk(**llama_usage(12, 2, 7)),
        "[DONE]",
    )
    got = stream_body(server, provider(server), split_every(body, 7))
    assert got == [
        LlmResponse.Start("chatcmpl-L1"),
        LlmResponse.Text("Hel"),
        LlmResponse.Text("lo"),
        LlmResponse.Usage(12, 2, cached_input_tokens=7),
        LlmResponse.Done(StopReason.END_TURN, "stop"),
    ]


def test_reasoning_content_then_content(server: LoopbackServer) -> None:
    body = sse(
        chunk({"role": "assistant", "content": None}),
        chunk({"reasoning_content": "Two and"}),
        chunk({"reasoning_content": " two."}),
        chunk({"content": "Four"}),
        chunk({}, "stop"),
        chunk(**llama_usage(30, 5, 0)),
        "[DONE]",
    )
    got = stream_body(server, provider(server), body)
    assert kinds(got) == ["Start", "Reasoning", "Reasoning", "Text", "Usage", "Done"]
    assert "".join(c.chunk for c in only(got, LlmResponse.Reasoning)) == "Two and two."  # type: ignore[attr-defined]


def test_tool_call_streamed_in_pieces(server: LoopbackServer) -> None:
    pieces = ['{"', "city", '": "', "Tok", 'yo"}']
    events: List[Any] = [chunk({"role": "assistant", "content": None})]
    events.append(chunk({"tool_calls": [{"index": 0, "id": "tcA", "type": "function", "function": {"name": "get_weather", "arguments": pieces[0]}}]}))
    events += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": a}}]}) for a in pieces[1:]]
    events += [chunk({}, "tool_calls"), chunk(**llama_usage(50, 9, 0)), "[DONE]"]
    got = stream_body(server, provider(server), sse(*events))
    assert kinds(got) == ["Start", "ToolRequestStart"] + ["ToolRequestArg"] * 5 + ["ToolRequestComplete", "Usage", "Done"]
    complete = only(got, LlmResponse.ToolRequestComplete)[0]
    assert complete.tool_call == ToolCallRequest("tcA", "get_weather", '{"city": "Tokyo"}')  # type: ignore[attr-defined]
    assert got[-1] == LlmResponse.Done(StopReason.TOOL_CALLS, "tool_calls")


PEG_ERROR = {
    "error": {
        "code": 500,
        "message": "The model produced output that does not match the expected peg-native format",
        "type": "server_error",
    }
}


def test_midstream_error_after_content_is_raised_not_retried(server: LoopbackServer) -> None:
    # What llama.cpp sends inside a 200 stream when the model's output breaks the
    # tool-call grammar: an error event and no [DONE].
    body = sse(chunk({"role": "assistant", "content": None}), chunk({"content": "Hi"}), PEG_ERROR)
    server.reply(Reply(status=200, headers={"content-type": "text/event-stream"}, body=[body], chunked=True))
    seen: List[LlmResponse] = []
    with pytest.raises(ServerError) as info:
        with provider(server, max_retries=3).stream_response(ctx()) as stream:
            for c in stream:
                seen.append(c)
    assert kinds(seen) == ["Start", "Text"]
    assert "peg-native format" in str(info.value) and "mid-stream" in str(info.value)
    assert len(server.requests) == 1  # content had reached the caller: never re-sent


def test_midstream_error_with_an_overflow_type_is_an_overflow(server: LoopbackServer) -> None:
    err = {"error": {"code": 400, "message": "request (900 tokens) exceeds the available context size (512 tokens), try increasing it", "type": "exceed_context_size_error", "n_prompt_tokens": 900, "n_ctx": 512}}
    with pytest.raises(ContextOverflowError) as info:
        stream_body(server, provider(server), sse(chunk({"content": "x"}), err))
    assert (info.value.requested_tokens, info.value.max_tokens) == (900, 512)


# ---------------------------------------------------------------------------
# (3) Requests.

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake").decode()
WAV = base64.b64encode(b"RIFF....WAVEfmt ").decode()
OK = sse(chunk({"content": "ok"}), chunk({}, "stop"), chunk(**llama_usage(1, 1, 0)), "[DONE]")


def sent(server: LoopbackServer, p: LlamaCppProvider, context: Context) -> Dict[str, Any]:
    stream_body(server, p, OK, context=context)
    body: Dict[str, Any] = server.requests[-1].json()
    return body


def test_request_shape_defaults(server: LoopbackServer) -> None:
    p = provider(server)
    body = sent(server, p, Context([ChatMessage.System("be brief"), ChatMessage.User("hi")], reasoning_effort="high", prompt_cache_key="k1"))
    req = server.requests[-1]
    assert req.method == "POST" and req.path == "/v1/chat/completions"
    assert body["model"] == ""  # a one-model server answers with what it has loaded
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    # llama.cpp steers thinking with the template, not these fields.
    assert "reasoning_effort" not in body and "prompt_cache_key" not in body
    assert "tools" not in body and "max_tokens" not in body
    assert "authorization" not in req.headers
    assert req.headers["content-type"] == "application/json"


def test_message_kinds_and_tools(server: LoopbackServer) -> None:
    tool = ToolDefinition("get_weather", "Weather for a city", {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
    call = ToolCallRequest("c1", "get_weather", '{"city":"Paris"}')
    context = Context(
        [
            ChatMessage.User([ContentBlock.Text("what is this"), ContentBlock.Image(PNG, "image/png")]),
            ChatMessage.User([ContentBlock.Audio(WAV, "audio/wav")]),
            ChatMessage.Assistant("", AssistantReasoning("I should look it up"), tool_calls=[call]),
            ChatMessage.ToolCallResult(ToolCallResult("c1", "get_weather", '{"city":"Paris"}', "sunny")),
            ChatMessage.ToolCallResult(ToolCallError("c2", "get_weather", '{"city":"Rome"}', "timeout")),
            ChatMessage.Error("shown to the user only"),
            ChatMessage.Summary("we talked about weather"),
        ],
        [tool],
    )
    body = sent(server, provider(server, model="qwen3-0.6b", max_tokens=64, temperature=0.0), context)
    m = body["messages"]
    assert body["model"] == "qwen3-0.6b" and body["max_tokens"] == 64 and body["temperature"] == 0.0
    assert m[0]["content"][1] == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    assert m[1]["content"] == [{"type": "input_audio", "input_audio": {"data": WAV, "format": "wav"}}]
    assert m[2] == {
        "role": "assistant",
        "content": "",
        "reasoning_content": "I should look it up",
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}],
    }
    assert m[3] == {"role": "tool", "content": "sunny", "tool_call_id": "c1"}
    assert m[4] == {"role": "tool", "content": "timeout", "tool_call_id": "c2"}
    assert m[5] == {"role": "user", "content": "[Previous conversation handoff]\n\nwe talked about weather"}
    assert len(m) == 6
    assert body["tools"][0]["function"]["name"] == "get_weather"
    assert body["tools"][0]["function"]["parameters"]["required"] == ["city"]


def test_unsupported_audio_is_rejected_before_sending(server: LoopbackServer) -> None:
    context = Context([ChatMessage.User([ContentBlock.Audio(WAV, "audio/ogg")])])
    with pytest.raises(UnsupportedContentError) as info:
        list(provider(server).stream_response(context))
    assert "audio/wav" in str(info.value) and "not audio/ogg" in str(info.value)
    assert server.requests == []


def test_two_turn_round_trip_carries_tool_result_and_reasoning(server: LoopbackServer) -> None:
    p = provider(server)
    first = sse(
        chunk({"reasoning_content": "need weather"}),
        chunk({"tool_calls": [{"index": 0, "id": "call_9", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}]}),
        chunk({}, "tool_calls"),
        "[DONE]",
    )
    context = Context([ChatMessage.User("weather in Oslo?")])
    server.reply(Reply(status=200, headers={"content-type": "text/event-stream"}, body=[first], chunked=True))
    with p.stream_response(context) as stream:
        turn = stream.collect()
    assert turn.stop_reason is StopReason.TOOL_CALLS
    context.add_message(ChatMessage.Assistant(turn.text, AssistantReasoning(turn.reasoning), tool_calls=turn.tool_calls))
    context.add_message(ChatMessage.ToolCallResult(ToolCallResult.from_request(turn.tool_calls[0], "rain")))
    body = sent(server, p, context)
    assert body["messages"][1] == {
        "role": "assistant",
        "content": "",
        "reasoning_content": "need weather",
        "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}],
    }
    assert body["messages"][2] == {"role": "tool", "content": "rain", "tool_call_id": "call_9"}


def test_api_key_is_a_bearer_token_and_never_shown(server: LoopbackServer) -> None:
    p = provider(server, api_key=KEY)
    sent(server, p, ctx())
    assert server.requests[-1].headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in repr(p)
    server.reply(Reply.json({"error": {"message": f"Invalid API Key {KEY}", "type": "authentication_error", "code": 401}}, status=401))
    with pytest.raises(InvalidApiKeyError) as info:
        list(provider(server, api_key=KEY, max_retries=2).stream_response(ctx()))
    assert KEY not in str(info.value) and KEY not in (info.value.body or "")
    assert "LLAMA_API_KEY" in str(info.value)
    assert len(server.requests) == 2  # the 401 was not retried


def test_api_key_from_llama_api_key(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLAMA_API_KEY", KEY)
    sent(server, provider(server), ctx())
    assert server.requests[-1].headers["authorization"] == f"Bearer {KEY}"


# ---------------------------------------------------------------------------
# (4) HTTP errors.

LOADING = {"error": {"message": "Loading model", "type": "unavailable_error", "code": 503}}


def test_503_loading_model_is_retried(server: LoopbackServer) -> None:
    server.reply(Reply.json(LOADING, status=503))
    server.reply(Reply(status=200, headers={"content-type": "text/event-stream"}, body=[OK], chunked=True))
    with provider(server, max_retries=1).stream_response(ctx()) as stream:
        got = list(stream)
    assert kinds(got) == ["Start", "Text", "Usage", "Done"]
    assert len(server.requests) == 2


def test_503_loading_model_that_persists_is_a_retryable_server_error(server: LoopbackServer) -> None:
    server.reply(Reply.json(LOADING, status=503, headers={"retry-after": "0"}))
    server.reply(Reply.json(LOADING, status=503, headers={"retry-after": "0"}))
    with pytest.raises(ServerError) as info:
        list(provider(server, max_retries=1).stream_response(ctx()))
    assert info.value.retryable and info.value.status == 503 and "Loading model" in str(info.value)
    assert len(server.requests) == 2


def test_429_with_retry_after_is_retried(server: LoopbackServer) -> None:
    server.reply(Reply.json({"error": {"message": "slow down", "type": "rate_limit_error", "code": 429}}, status=429, headers={"retry-after": "0"}))
    server.reply(Reply(status=200, headers={"content-type": "text/event-stream"}, body=[OK], chunked=True))
    with provider(server, max_retries=1).stream_response(ctx()) as stream:
        assert only(list(stream), LlmResponse.Done)
    assert len(server.requests) == 2
    server.reply(Reply.json({"error": {"message": "slow down", "code": 429}}, status=429, headers={"retry-after": "0"}))
    with pytest.raises(RateLimitedError):
        list(provider(server).stream_response(ctx()))


def test_400_without_overflow_is_a_plain_api_error(server: LoopbackServer) -> None:
    server.reply(Reply.json({"error": {"code": 400, "message": "Cannot determine type of 'item'", "type": "invalid_request_error"}}, status=400))
    with pytest.raises(ApiError) as info:
        list(provider(server, max_retries=2).stream_response(ctx()))
    assert type(info.value) is ApiError and "Cannot determine type" in str(info.value)
    assert len(server.requests) == 1


# ---------------------------------------------------------------------------
# Configuration: hosts, models, names.


@pytest.mark.parametrize(
    ("value", "url"),
    [
        ("localhost:8080", "http://localhost:8080"),
        ("gpu-box", "http://gpu-box:8080"),
        ("gpu-box:9000", "http://gpu-box:9000"),
        ("http://gpu-box", "http://gpu-box"),
        ("https://llm.example.com/", "https://llm.example.com"),
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080"),
        ("http://proxy:80/llama/v1/", "http://proxy:80/llama"),
        ("0.0.0.0:8080", "http://127.0.0.1:8080"),
        ("[::]:8081", "http://[::1]:8081"),
        ("[::1]:8081", "http://[::1]:8081"),
        ('  "127.0.0.1:5000"  ', "http://127.0.0.1:5000"),
        ("", DEFAULT_HOST),
    ],
)
def test_llama_cpp_host_url(value: str, url: str) -> None:
    assert llama_cpp_host_url(value) == url


def test_bad_hosts_are_refused() -> None:
    with pytest.raises(ValueError, match="http"):
        llama_cpp_host_url("ftp://host")
    with pytest.raises(ValueError, match="port"):
        llama_cpp_host_url("host:99999")


def test_base_url_from_env_default_and_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLAMA_CPP_HOST", raising=False)
    monkeypatch.chdir(Path(__file__).parent)  # no .env here
    assert LlamaCppProvider().base_url == "http://localhost:8080"
    monkeypatch.setenv("LLAMA_CPP_HOST", "box:8099")
    assert LlamaCppProvider().base_url == "http://box:8099"
    assert LlamaCppProvider.from_env().base_url == "http://box:8099"
    assert LlamaCppProvider(base_url="http://other:1/v1").base_url == "http://other:1"
    assert LlamaCppProvider("http://addr:2").base_url == "http://addr:2"  # an address is never a key


def test_names_models_and_windows() -> None:
    p = LlamaCppProvider(base_url="http://h:1")
    assert p.model_name == "" and p.display_name() == "llama.cpp"
    assert p.context_window() is None and p.model() is None
    q = p.with_model("qwen3")
    assert q.model_name == "qwen3" and q.display_name() == "llama.cpp (qwen3)" and p.model_name == ""
    assert q.with_model("").model_name == ""
    assert p.with_base_url("h2:5").base_url == "http://h2:5"
    assert LlamaCppProvider(base_url="http://h:1", context_window=2048).context_window() == 2048
    assert p.with_context_window(4096).context_window() == 4096
    with pytest.raises(ValueError):
        LlamaCppProvider(base_url="http://h:1", context_window=0)
    assert LlamaCppProvider.provider_id == "llamacpp"


def test_round_trips_through_pickle() -> None:
    import pickle

    p = LlamaCppProvider(KEY, base_url="http://h:1", model="m", context_window=512)
    q = pickle.loads(pickle.dumps(p))
    assert (q.base_url, q.model_name, q.context_window()) == ("http://h:1", "m", 512)
    assert json.dumps(q.request_body(ctx()))  # still builds requests
