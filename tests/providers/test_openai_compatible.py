"""The compatible chat engine: hand-written streams, the tool-call collector, requests, HTTP errors."""

from __future__ import annotations

import json
import time
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
from llm_sync._transport._frame import Frame
from llm_sync.providers._chat import ToolCallCollector, build_request, parse_events, usage_from
from llm_sync.providers.openai_compatible import OpenAiCompatibleProvider
from tests.support.replay import kinds, only, split_every, stream_body
from tests.support.server import LoopbackServer, Reply, sse
from tests.support.tools import weather

# ---------------------------------------------------------------------------
# Hand-written chunks.


def chunk(delta: Optional[Dict[str, Any]] = None, finish: Optional[str] = None, **extra: Any) -> Dict[str, Any]:
    c: Dict[str, Any] = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    c["choices"] = [] if delta is None and finish is None else [
        {"index": 0, "delta": delta or {}, "finish_reason": finish}
    ]
    c.update(extra)
    return c


def call(index: Any, id: Optional[str] = None, name: Optional[str] = None, args: Optional[str] = None) -> Dict[str, Any]:
    tc: Dict[str, Any] = {"index": index}
    if id is not None:
        tc["id"] = id
        tc["type"] = "function"
    fn: Dict[str, Any] = {}
    if name is not None:
        fn["name"] = name
    if args is not None:
        fn["arguments"] = args
    tc["function"] = fn
    return tc


def usage(prompt: int, completion: int, **extra: Any) -> Dict[str, Any]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion, **extra}


def run(*events: Any) -> List[LlmResponse]:
    """Parse events (dicts, or raw strings) as frames, without HTTP."""
    frames = [Frame("message", e if isinstance(e, str) else json.dumps(e)) for e in events]
    return list(parse_events(iter(frames)))


def calls_of(chunks: List[LlmResponse]) -> List[ToolCallRequest]:
    return [c.tool_call for c in chunks if isinstance(c, LlmResponse.ToolRequestComplete)]


def test_a_text_turn_yields_start_text_usage_done_in_order() -> None:
    got = run(
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo"}),
        chunk({}, "stop"),
        chunk(usage=usage(10, 2, prompt_tokens_details={"cached_tokens": 4})),
        "[DONE]",
    )
    assert got == [
        LlmResponse.Start("chatcmpl-1"),
        LlmResponse.Text("Hel"),
        LlmResponse.Text("lo"),
        LlmResponse.Usage(10, 2, cached_input_tokens=4),
        LlmResponse.Done(StopReason.END_TURN, "stop"),
    ]


def test_reasoning_content_and_reasoning_deltas_become_reasoning() -> None:
    got = run(
        chunk({"reasoning_content": "think "}),
        chunk({"reasoning": "more"}),
        chunk({"content": "ok"}, "stop"),
        "[DONE]",
    )
    assert kinds(got) == ["Start", "Reasoning", "Reasoning", "Text", "Done"]
    assert "".join(c.chunk for c in only(got, LlmResponse.Reasoning)) == "think more"


def test_usage_after_finish_on_a_chunk_with_choices_and_inside_the_choice() -> None:
    # OpenRouter repeats the finish chunk with usage; Moonshot puts usage inside the choice.
    got = run(chunk({"content": "a"}), chunk({}, "stop"), chunk({}, "stop", usage=usage(5, 1)), "[DONE]")
    assert got[-2:] == [LlmResponse.Usage(5, 1), LlmResponse.Done(StopReason.END_TURN, "stop")]
    inside = chunk({}, "stop")
    inside["choices"][0]["usage"] = usage(7, 3, cached_tokens=2)
    got = run(chunk({"content": "a"}), inside, "[DONE]")
    assert got[-2] == LlmResponse.Usage(7, 3, cached_input_tokens=2)


def test_usage_only_chunk_first_does_not_end_the_stream() -> None:
    # The reference crate stops at an empty-choices chunk; content after it must still arrive.
    got = run(chunk(usage=usage(1, 0)), chunk({"content": "late"}, "stop"), chunk(usage=usage(3, 4)), "[DONE]")
    assert [c.chunk for c in only(got, LlmResponse.Text)] == ["late"]
    assert only(got, LlmResponse.Usage) == [LlmResponse.Usage(3, 4)]


def test_usage_details_negative_counts_and_deepseek_cache_fields() -> None:
    u = usage_from(
        {
            "prompt_tokens": 100,
            "completion_tokens": -5,
            "prompt_tokens_details": {"cached_tokens": 60, "cache_write_tokens": 30, "audio_tokens": 2},
            "completion_tokens_details": {"reasoning_tokens": 7, "audio_tokens": 1},
        }
    )
    assert (u.input_tokens, u.output_tokens, u.cached_input_tokens, u.cache_creation_tokens) == (100, 0, 60, 30)
    assert (u.reasoning_tokens, u.input_audio_tokens, u.output_audio_tokens) == (7, 2, 1)
    assert usage_from({"prompt_tokens": -3, "completion_tokens": 2}).input_tokens == 0
    ds = usage_from({"prompt_tokens": 50, "completion_tokens": 2, "prompt_cache_hit_tokens": 40, "prompt_cache_miss_tokens": 10})
    assert ds.cached_input_tokens == 40


@pytest.mark.parametrize(
    "word, stop",
    [
        ("stop", StopReason.END_TURN),
        ("length", StopReason.LENGTH),
        ("model_context_window_exceeded", StopReason.LENGTH),
        ("tool_calls", StopReason.TOOL_CALLS),
        ("content_filter", StopReason.CONTENT_FILTER),
        ("function_call", StopReason.FUNCTION_CALL),
        ("error", StopReason.ERROR),
        ("network_error", StopReason.ERROR),
        ("something_new", StopReason.UNKNOWN),
    ],
)
def test_finish_reason_table_keeps_the_raw_word(word: str, stop: StopReason) -> None:
    got = run(chunk({"content": "x"}), chunk({}, word), "[DONE]")
    assert got[-1] == LlmResponse.Done(stop, word)


def test_stop_after_tool_calls_reports_tool_calls() -> None:
    got = run(chunk({"tool_calls": [call(0, "c1", "f", "{}")]}), chunk({}, "stop"), "[DONE]")
    assert got[-1] == LlmResponse.Done(StopReason.TOOL_CALLS, "stop")


def test_empty_stream_and_done_only_are_interrupted() -> None:
    with pytest.raises(StreamInterruptedError, match="empty stream"):
        run()
    with pytest.raises(StreamInterruptedError, match="empty stream"):
        run("[DONE]")


def test_a_cut_off_stream_yields_no_done() -> None:
    # The engine turns the missing Done into StreamInterruptedError (tested over HTTP below).
    got = run(chunk({"content": "partial"}), chunk({"tool_calls": [call(0, "c", "f", '{"a"')]}))
    assert kinds(got) == ["Start", "Text", "ToolRequestStart", "ToolRequestArg"]


def test_a_finish_reason_without_done_marker_still_finishes() -> None:
    got = run(chunk({"content": "x"}), chunk({}, "stop"))
    assert got[-1] == LlmResponse.Done(StopReason.END_TURN, "stop")


def test_invalid_json_names_the_event() -> None:
    with pytest.raises(JsonParsingError, match="not valid JSON"):
        run(chunk({"content": "x"}), '{"choices": [')


def test_unknown_fields_and_missing_object_are_ignored() -> None:
    c = chunk({"content": "x", "refusal": None, "annotations": []}, "stop", obfuscation="zz", timings={"a": 1})
    del c["object"]
    got = run(c, "[DONE]")
    assert [x.chunk for x in only(got, LlmResponse.Text)] == ["x"]


@pytest.mark.parametrize(
    "error, cls",
    [
        ({"code": "server_error", "message": "Provider disconnected"}, ServerError),
        ({"code": 502, "message": "upstream failed"}, ServerError),
        ({"code": 429, "message": "slow down"}, RateLimitedError),
        ({"type": "rate_limit_exceeded", "message": "slow down"}, RateLimitedError),
        ({"code": 401, "message": "bad key"}, InvalidApiKeyError),
        ({"code": "invalid_request", "message": "nope"}, ApiError),
    ],
)
def test_error_chunks_are_raised_typed(error: Dict[str, Any], cls: type) -> None:
    with pytest.raises(cls) as info:
        run(chunk({"content": "x"}), chunk({}, "error", error=error))
    assert error["message"] in str(info.value)
    assert type(info.value) is cls


def test_an_overflow_error_chunk_carries_its_numbers() -> None:
    err = {
        "code": 400,
        "message": "This endpoint's maximum context length is 131072 tokens. However, you requested about 141607 tokens",
    }
    with pytest.raises(ContextOverflowError) as info:
        run(chunk(error=err))
    assert (info.value.requested_tokens, info.value.max_tokens) == (141607, 131072)
    llama = {"code": 400, "type": "exceed_context_size_error", "message": "too big", "n_prompt_tokens": 9, "n_ctx": 8}
    with pytest.raises(ContextOverflowError) as info2:
        run(chunk(error=llama))
    assert (info2.value.requested_tokens, info2.value.max_tokens) == (9, 8)


# ---------------------------------------------------------------------------
# The tool-call collector.


def feed_all(*deltas: Dict[str, Any]) -> List[LlmResponse]:
    col = ToolCallCollector()
    out: List[LlmResponse] = []
    for d in deltas:
        out.extend(col.feed(d))
    out.extend(col.complete_all())
    return out


def test_openai_style_streamed_call() -> None:
    out = feed_all(call(0, "c1", "get", ""), call(0, args='{"a"'), call(0, args=":1}"))
    assert out == [
        LlmResponse.ToolRequestStart("c1", "get"),
        LlmResponse.ToolRequestArg("c1", '{"a"'),
        LlmResponse.ToolRequestArg("c1", ":1}"),
        LlmResponse.ToolRequestComplete(ToolCallRequest("c1", "get", '{"a":1}')),
    ]


def test_parallel_calls_interleaved_by_index() -> None:
    out = feed_all(
        call(0, "a", "f", ""), call(1, "b", "g", ""),
        call(0, args='{"x":'), call(1, args='{"y":'), call(0, args="1}"), call(1, args="2}"),
    )
    assert calls_of(out) == [ToolCallRequest("a", "f", '{"x":1}'), ToolCallRequest("b", "g", '{"y":2}')]


def test_index_zero_reused_for_whole_calls_with_distinct_ids() -> None:
    out = feed_all(call(0, "a", "f", '{"x":1}'), call(0, "b", "f", '{"x":2}'), call(0, "c", "g", "{}"))
    assert calls_of(out) == [
        ToolCallRequest("a", "f", '{"x":1}'),
        ToolCallRequest("b", "f", '{"x":2}'),
        ToolCallRequest("c", "g", "{}"),
    ]
    assert kinds(out).count("ToolRequestStart") == 3
    # The first call completes as soon as the second begins, before its Start.
    assert kinds(out)[:4] == ["ToolRequestStart", "ToolRequestArg", "ToolRequestComplete", "ToolRequestStart"]


def test_streamed_calls_reusing_index_zero_without_ids() -> None:
    out = feed_all(call(0, name="f", args=""), call(0, args='{"x":1}'), call(0, name="f", args=""), call(0, args="{}"))
    assert [(c.name, c.arguments) for c in calls_of(out)] == [("f", '{"x":1}'), ("f", "{}")]


def test_index_zero_reused_without_ids() -> None:
    out = feed_all(call(0, name="f", args='{"x":1}'), call(0, name="f", args='{"x":2}'), call(0, name="g", args="{}"))
    got = calls_of(out)
    assert [(c.name, c.arguments) for c in got] == [("f", '{"x":1}'), ("f", '{"x":2}'), ("g", "{}")]
    assert len({c.id for c in got}) == 3  # made-up ids stay unique


def test_a_name_repeated_on_every_delta_of_one_call_is_one_call() -> None:
    out = feed_all(call(0, "a", "f", '{"x"'), call(0, "a", "f", ":1}"), call(0, "a", "f", ""))
    assert calls_of(out) == [ToolCallRequest("a", "f", '{"x":1}')]


def test_arguments_before_the_name_are_held_and_missing_index_continues() -> None:
    out = feed_all({"index": 0, "function": {"arguments": '{"q"'}}, call(0, "id9", "s"), {"function": {"arguments": ":2}"}})
    assert out[0] == LlmResponse.ToolRequestStart("id9", "s")
    assert calls_of(out) == [ToolCallRequest("id9", "s", '{"q":2}')]


def test_arguments_sent_as_an_object_are_serialised() -> None:
    out = feed_all({"index": 0, "id": "a", "function": {"name": "f", "arguments": {"x": 1}}})
    assert calls_of(out) == [ToolCallRequest("a", "f", '{"x":1}')]


def test_text_after_a_call_completes_it_first() -> None:
    got = run(chunk({"tool_calls": [call(0, "a", "f", "{}")]}), chunk({"content": "done"}), chunk({}, "stop"), "[DONE]")
    assert kinds(got) == ["Start", "ToolRequestStart", "ToolRequestArg", "ToolRequestComplete", "Text", "Done"]


# ---------------------------------------------------------------------------
# Over HTTP.


def provider(server: LoopbackServer, **kw: Any) -> OpenAiCompatibleProvider:
    kw.setdefault("max_retries", 0)
    return OpenAiCompatibleProvider(base_url=server.url + "/v1", model="qwen3", **kw)


def ok_body(*texts: str) -> bytes:
    return sse(*(chunk({"content": t}) for t in texts), chunk({}, "stop"), chunk(usage=usage(3, 2)), "[DONE]")


def test_request_line_headers_and_body(server: LoopbackServer) -> None:
    key = "sk-compat-secret-123456789"
    p = provider(server, api_key=key, headers={"X-Extra": "1"}, extra_body={"top_p": 0.5})
    chunks = stream_body(server, p, split_every(ok_body("Hi", " there"), 5), context=Context([ChatMessage.User("hi")]))
    assert "".join(c.chunk for c in only(chunks, LlmResponse.Text)) == "Hi there"
    req = server.requests[0]
    assert (req.method, req.path) == ("POST", "/v1/chat/completions")
    assert req.headers["authorization"] == f"Bearer {key}"
    assert req.headers["x-extra"] == "1"
    assert req.json() == {
        "model": "qwen3",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "top_p": 0.5,
    }
    assert key not in repr(p)


def test_no_key_no_authorization_header(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.delenv("OPENAI_COMPATIBLE_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    stream_body(server, provider(server), ok_body("x"))
    assert "authorization" not in server.requests[0].headers


def test_base_url_is_required_and_may_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPENAI_COMPATIBLE_BASE_URL", raising=False)
    with pytest.raises(ValueError, match="OPENAI_COMPATIBLE_BASE_URL"):
        OpenAiCompatibleProvider(model="m")
    monkeypatch.setenv("OPENAI_COMPATIBLE_BASE_URL", "http://127.0.0.1:9/v1/")
    assert OpenAiCompatibleProvider(model="m").base_url == "http://127.0.0.1:9/v1"
    # An address given positionally is taken as base_url, not as a key.
    p = OpenAiCompatibleProvider("http://127.0.0.1:8/v1", model="m")
    assert (p.base_url, p._api_key) == ("http://127.0.0.1:8/v1", None)
    with pytest.raises(ValueError, match="model"):
        OpenAiCompatibleProvider(base_url="http://127.0.0.1:8/v1")


def test_with_methods_and_options(server: LoopbackServer) -> None:
    p = provider(server)
    q = p.with_max_tokens(64).with_temperature(0.2)
    assert (p.max_tokens, q.max_tokens, q.temperature) == (None, 64, 0.2)
    assert isinstance(q, OpenAiCompatibleProvider) and q.display_name() == "OpenAI-compatible (qwen3)"
    assert (q.model(), q.context_window()) == (None, None)  # not a catalog provider
    with pytest.raises(ValueError):
        p.with_max_tokens(0)
    with pytest.raises(ValueError):
        p.with_temperature(3)
    stream_body(server, q, ok_body("x"))
    body = server.requests[0].json()
    assert (body["max_tokens"], body["temperature"]) == (64, 0.2)


def test_a_cut_off_body_is_stream_interrupted(server: LoopbackServer) -> None:
    with pytest.raises(StreamInterruptedError):
        stream_body(server, provider(server), sse(chunk({"content": "part"})))


def test_an_empty_200_body_is_stream_interrupted(server: LoopbackServer) -> None:
    with pytest.raises(StreamInterruptedError, match="empty stream"):
        stream_body(server, provider(server), b": keep-alive\n\n")


def test_an_error_chunk_mid_stream_is_raised_after_the_text(server: LoopbackServer) -> None:
    p = provider(server)
    body = sse(chunk({"content": "a"}), chunk({}, "error", error={"code": "server_error", "message": "boom"}))
    server.reply(Reply(status=200, headers={"content-type": "text/event-stream"}, body=[body], chunked=True))
    seen: List[LlmResponse] = []
    with pytest.raises(ServerError, match="boom"):
        with p.stream_response(Context()) as stream:
            for c in stream:
                seen.append(c)
    assert kinds(seen) == ["Start", "Text"]
    assert len(server.requests) == 1  # content had arrived: never re-sent


# ---------------------------------------------------------------------------
# HTTP errors.


def test_400_overflow_with_numbers_not_retried(server: LoopbackServer) -> None:
    body = {"error": {"message": "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.", "code": "context_length_exceeded"}}
    server.reply(Reply.json(body, status=400))
    with pytest.raises(ContextOverflowError) as info:
        list(provider(server, max_retries=2).stream_response(Context()))
    assert (info.value.requested_tokens, info.value.max_tokens) == (9000, 8192)
    assert len(server.requests) == 1


def test_401_is_not_retried_and_hides_the_key(server: LoopbackServer) -> None:
    key = "sk-compat-refused-987654321"
    server.reply(Reply.json({"error": {"message": f"Incorrect API key provided: {key}", "code": "invalid_api_key"}}, status=401))
    with pytest.raises(InvalidApiKeyError) as info:
        list(provider(server, api_key=key, max_retries=3).stream_response(Context()))
    assert len(server.requests) == 1
    assert key not in str(info.value) and key not in (info.value.body or "")
    assert "OPENAI_COMPATIBLE_API_KEY" in str(info.value)


def test_429_with_retry_after_is_retried(server: LoopbackServer) -> None:
    server.reply(Reply.json({"error": {"message": "slow down"}}, status=429, headers={"retry-after": "0.05"}))
    server.reply(Reply(status=200, headers={"content-type": "text/event-stream"}, body=[ok_body("ok")], chunked=True))
    t0 = time.monotonic()
    got = provider(server, max_retries=1).stream_response(Context()).collect()
    assert got.text == "ok" and len(server.requests) == 2
    assert time.monotonic() - t0 >= 0.04


def test_429_gives_up_as_rate_limited(server: LoopbackServer) -> None:
    server.reply(Reply.json({"error": {"message": "slow down"}}, status=429, headers={"retry-after": "7"}))
    with pytest.raises(RateLimitedError) as info:
        list(provider(server).stream_response(Context()))
    assert info.value.retry_after == 7.0


def test_5xx_is_retried(server: LoopbackServer) -> None:
    server.reply(Reply(status=503, headers={"content-type": "text/html"}, body=b"<html><title>Bad gateway</title></html>"))
    server.reply(Reply(status=200, headers={"content-type": "text/event-stream"}, body=[ok_body("ok")], chunked=True))
    p = provider(server, max_retries=1)
    assert p.stream_response(Context()).collect().text == "ok"
    assert len(server.requests) == 2


def test_5xx_error_names_the_page(server: LoopbackServer) -> None:
    server.reply(Reply(status=502, headers={"content-type": "text/html"}, body=b"<html><title>Bad gateway</title></html>"))
    with pytest.raises(ServerError, match="Bad gateway"):
        list(provider(server).stream_response(Context()))


def test_404_names_the_model(server: LoopbackServer) -> None:
    server.reply(Reply.json({"error": {"message": "model 'qwen3' not found"}}, status=404))
    with pytest.raises(ApiError) as info:
        list(provider(server).stream_response(Context()))
    assert "qwen3" in str(info.value) and info.value.status == 404 and not info.value.retryable


# ---------------------------------------------------------------------------
# Request building.

WEATHER = weather("Weather for a city", required=False)
PNG = "iVBORw0KGgo="


def test_every_message_kind_maps_to_chat_messages() -> None:
    calls = [ToolCallRequest("c1", "get_weather", '{"city":"Paris"}'), ToolCallRequest("c2", "get_weather", '{"city":"Rome"}')]
    ctx = Context(
        [
            ChatMessage.System("be brief"),
            ChatMessage.User("one"),
            ChatMessage.User([ContentBlock.Text("a"), ContentBlock.Text("b")]),
            ChatMessage.User([ContentBlock.Text("see"), ContentBlock.Image(PNG, "image/png")]),
            ChatMessage.Assistant("", AssistantReasoning("I should call"), tool_calls=calls),
            ChatMessage.ToolCallResult(ToolCallResult("c1", "get_weather", '{"city":"Paris"}', "sunny")),
            ChatMessage.ToolCallResult(ToolCallError("c2", "get_weather", '{"city":"Rome"}', "timeout")),
            ChatMessage.Error("the tool crashed"),
            ChatMessage.Summary("we talked"),
            ChatMessage.System("second system"),
        ],
        [WEATHER],
    )
    body = build_request(ctx, "m")
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "one"},
        {"role": "user", "content": "a\nb"},
        {"role": "user", "content": [
            {"type": "text", "text": "see"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        ]},
        {"role": "assistant", "content": "", "reasoning_content": "I should call", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
            {"id": "c2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}},
        ]},
        {"role": "tool", "content": "sunny", "tool_call_id": "c1"},
        {"role": "tool", "content": "timeout", "tool_call_id": "c2"},
        {"role": "user", "content": "[Previous conversation handoff]\n\nwe talked"},
        {"role": "system", "content": "second system"},
    ]
    assert body["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": False,
    }}]
    assert "reasoning_effort" not in body and "prompt_cache_key" not in body


def test_reasoning_effort_cache_key_and_placeholder_options() -> None:
    ctx = Context(
        [ChatMessage.Assistant("", tool_calls=[ToolCallRequest("c", "f", "{}")])],
        reasoning_effort=ReasoningEffort.XHIGH,
        prompt_cache_key="k1",
    )
    body = build_request(ctx, "m", prompt_cache_key=True, reasoning_placeholder=True)
    assert (body["reasoning_effort"], body["prompt_cache_key"]) == ("xhigh", "k1")
    assert body["messages"][0]["reasoning_content"] == "."
    plain = build_request(ctx, "m", reasoning_effort=False, include_usage=False)
    assert "reasoning_effort" not in plain and "stream_options" not in plain
    assert "reasoning_content" not in plain["messages"][0]


def test_audio_is_refused_unless_the_server_takes_it() -> None:
    ctx = Context([ChatMessage.User([ContentBlock.Audio("UklGRg==", "audio/wav")])])
    with pytest.raises(UnsupportedContentError, match="audio"):
        build_request(ctx, "m")
    body = build_request(ctx, "m", audio=True)
    assert body["messages"][0]["content"] == [{"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}]
    with pytest.raises(UnsupportedContentError, match="wav or mp3"):
        build_request(Context([ChatMessage.User([ContentBlock.Audio("AAAA", "audio/ogg")])]), "m", audio=True)


def test_audio_refusal_is_raised_from_the_stream_without_a_request(server: LoopbackServer) -> None:
    ctx = Context([ChatMessage.User([ContentBlock.Audio("UklGRg==", "audio/wav")])])
    with pytest.raises(UnsupportedContentError):
        list(provider(server).stream_response(ctx))
    assert server.requests == []


def test_two_turn_tool_round_trip(server: LoopbackServer) -> None:
    p = provider(server)
    ctx = Context([ChatMessage.User("Weather in Paris?")], [WEATHER])
    first = sse(
        chunk({"role": "assistant", "reasoning_content": "use the tool"}),
        chunk({"tool_calls": [call(0, "call_1", "get_weather", "")]}),
        chunk({"tool_calls": [call(0, args='{"city":')]}),
        chunk({"tool_calls": [call(0, args='"Paris"}')]}),
        chunk({}, "tool_calls"),
        chunk(usage=usage(20, 9)),
        "[DONE]",
    )
    server.reply(Reply(status=200, headers={"content-type": "text/event-stream"}, body=[first], chunked=True))
    turn = p.stream_response(ctx).collect()
    assert turn.stop_reason == StopReason.TOOL_CALLS
    (tc,) = turn.tool_calls
    assert (tc.id, tc.name, tc.parsed_arguments()) == ("call_1", "get_weather", {"city": "Paris"})
    ctx.add_message(turn.to_message())
    ctx.add_message(ChatMessage.ToolCallResult(ToolCallResult.from_request(tc, "18C, clear")))
    stream_body(server, p, ok_body("It is 18C."), context=ctx)
    second = server.requests[1].json()["messages"]
    assert second[1] == {
        "role": "assistant",
        "content": "",
        "reasoning_content": "use the tool",
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}],
    }
    assert second[2] == {"role": "tool", "content": "18C, clear", "tool_call_id": "call_1"}


def test_subclassing_changes_path_and_knobs(server: LoopbackServer) -> None:
    class Local(OpenAiCompatibleProvider):
        provider_id = "local"
        label = "Local"
        default_model = "any"
        default_base_url = "http://127.0.0.1:1"
        key_variable = None
        base_url_variable = None
        chat_path = "/v1/chat/completions"
        include_usage = False
        send_prompt_cache_key = True
        accepts_audio = True

    p = Local(base_url=server.url, max_retries=0)
    ctx = Context([ChatMessage.User("x")], prompt_cache_key="pk")
    stream_body(server, p, ok_body("y"), context=ctx)
    req = server.requests[0]
    assert req.path == "/v1/chat/completions"
    assert req.json()["prompt_cache_key"] == "pk" and "stream_options" not in req.json()
    assert p.display_name() == "Local (any)"
