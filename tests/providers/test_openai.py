"""OpenAiProvider (Responses API): request bodies, headers, hand-written streams, errors and retries."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any, Dict, Iterator, List

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
    MissingApiKeyError,
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
from llm_sync._transport._frame import Frame
from llm_sync.providers._responses import build_request as build_responses_body
from llm_sync.providers._responses import is_reasoning_model
from llm_sync.providers._responses import parse_events as parse_responses_events
from llm_sync.providers.openai import OpenAiProvider
from tests.support.replay import kinds, stream_body
from tests.support.server import LoopbackServer, Reply
from tests.support.tools import WEATHER

KEY = "sk-test-openai-abcdef123456"
SSE = {"content-type": "text/event-stream"}


def provider(server: LoopbackServer, model: str = "gpt-5", **kw: Any) -> OpenAiProvider:
    return OpenAiProvider(KEY, model=model, base_url=f"{server.url}/v1", **kw)


# --- hand-written events -------------------------------------------------------------------


def created(rid: str = "resp_1") -> Dict[str, Any]:
    return {
        "type": "response.created",
        "response": {"id": rid, "status": "in_progress", "output": []},
    }


def text_delta(t: str) -> Dict[str, Any]:
    return {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 1, "delta": t}


def summary_part(i: int) -> Dict[str, Any]:
    return {"type": "response.reasoning_summary_part.added", "item_id": "rs_1", "summary_index": i}


def summary_delta(t: str) -> Dict[str, Any]:
    return {"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "delta": t}


def call_added(item_id: str, call_id: str, name: str, index: int = 1) -> Dict[str, Any]:
    item = {
        "id": item_id,
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": "",
    }
    return {"type": "response.output_item.added", "output_index": index, "item": item}


def args_delta(item_id: str, d: str) -> Dict[str, Any]:
    return {"type": "response.function_call_arguments.delta", "item_id": item_id, "delta": d}


def args_done(item_id: str, args: str) -> Dict[str, Any]:
    return {"type": "response.function_call_arguments.done", "item_id": item_id, "arguments": args}


def reasoning_done(item_id: str, secret: str, summary: str = "") -> Dict[str, Any]:
    item = {
        "id": item_id,
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": summary}] if summary else [],
        "encrypted_content": secret,
        "status": "completed",
    }
    return {"type": "response.output_item.done", "output_index": 0, "item": item}


USAGE = {
    "input_tokens": 120,
    "input_tokens_details": {"cached_tokens": 100},
    "output_tokens": 30,
    "output_tokens_details": {"reasoning_tokens": 12},
    "total_tokens": 150,
}


def completed(status: str = "completed", **extra: Any) -> Dict[str, Any]:
    response = {"id": "resp_1", "status": status, "usage": USAGE, **extra}
    kind = "response.completed" if status == "completed" else f"response.{status}"
    return {"type": kind, "response": response}


def body(*events: Dict[str, Any]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def frames(*events: Any) -> Iterator[Frame]:
    for e in events:
        yield Frame("message", e if isinstance(e, str) else json.dumps(e))


TOOL_TURN = body(
    created(),
    summary_part(0),
    summary_delta("Need the weather."),
    reasoning_done("rs_1", "ENC-1", "Need the weather."),
    call_added("fc_1", "call_1", "get_weather"),
    args_delta("fc_1", '{"city":'),
    args_delta("fc_1", '"Paris"}'),
    args_done("fc_1", '{"city":"Paris"}'),
    completed(),
)


# --- request building ----------------------------------------------------------------------


def test_body_for_a_plain_conversation() -> None:
    ctx = Context(
        [
            ChatMessage.System("Be brief."),
            ChatMessage.User("Hello"),
            ChatMessage.Assistant("Hi!"),
            ChatMessage.System("Answer in French."),
            ChatMessage.User("How are you?"),
        ]
    )
    got = build_responses_body(ctx, "gpt-4.1")
    assert got == {
        "model": "gpt-4.1",
        "input": [
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Hello"}],
            },
            {"type": "message", "role": "assistant", "content": "Hi!"},
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "How are you?"}],
            },
        ],
        # No System message is lost: they are joined in order.
        "instructions": "Be brief.\n\nAnswer in French.",
        "store": False,
        "stream": True,
    }


def test_body_image_summary_error_and_tool_results() -> None:
    ctx = Context(
        [
            ChatMessage.Summary("We talked about Paris.", messages_compacted=4),
            ChatMessage.User(
                [ContentBlock.Text("What is this?"), ContentBlock.Image("iVBORw0", "image/png")]
            ),
            ChatMessage.Error("the network failed"),
            ChatMessage.Assistant(
                "",
                tool_calls=[
                    ToolCallRequest("call_a", "get_weather", '{"city":"Paris"}'),
                    ToolCallRequest("call_b", "get_weather", '{"city":"Oslo"}'),
                ],
            ),
            ChatMessage.ToolCallResult(
                ToolCallResult("call_a", "get_weather", '{"city":"Paris"}', "sunny")
            ),
            ChatMessage.ToolCallResult(
                ToolCallError("call_b", "get_weather", None, "city unknown")
            ),
        ]
    )
    got = build_responses_body(ctx, "gpt-4.1")["input"]
    assert got == [
        {
            "type": "message",
            "role": "user",
            "content": [
                {
                    "type": "input_text",
                    "text": "[Previous conversation handoff]\n\nWe talked about Paris.",
                }
            ],
        },
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What is this?"},
                {
                    "type": "input_image",
                    "detail": "auto",
                    "image_url": "data:image/png;base64,iVBORw0",
                },
            ],
        },
        # The Error message is not sent; an empty assistant text is not sent either.
        {
            "type": "function_call",
            "call_id": "call_a",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
        },
        {
            "type": "function_call",
            "call_id": "call_b",
            "name": "get_weather",
            "arguments": '{"city":"Oslo"}',
        },
        {"type": "function_call_output", "call_id": "call_a", "output": "sunny"},
        {"type": "function_call_output", "call_id": "call_b", "output": "Error: city unknown"},
    ]


def test_audio_is_refused_before_anything_is_sent(server: LoopbackServer) -> None:
    ctx = Context([ChatMessage.User([ContentBlock.Audio("UklGRg==", "audio/wav")])])
    with pytest.raises(UnsupportedContentError, match="audio"):
        build_responses_body(ctx, "gpt-5")
    with pytest.raises(UnsupportedContentError):
        list(provider(server).stream_response(ctx))
    assert server.requests == []


def test_tools_effort_cache_key_and_encrypted_include() -> None:
    ctx = Context([ChatMessage.User("weather?")], tools=[WEATHER])
    ctx.set_reasoning_effort(ReasoningEffort.HIGH)
    ctx.set_prompt_cache_key("session-42")
    got = build_responses_body(ctx, "gpt-5")
    assert got["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
            "strict": False,
        }
    ]
    assert got["reasoning"] == {"effort": "high", "summary": "auto"}
    assert got["prompt_cache_key"] == "session-42"
    assert got["include"] == ["reasoning.encrypted_content"]
    assert got["store"] is False and got["stream"] is True
    # Codex-style options: no "strict", a default effort.
    plain = Context([ChatMessage.User("x")], tools=[WEATHER])
    codex = build_responses_body(plain, "gpt-5", tool_strict=None, default_effort="medium")
    assert "strict" not in codex["tools"][0]
    assert codex["reasoning"] == {"effort": "medium", "summary": "auto"}


def test_encrypted_include_only_for_models_that_reason() -> None:
    ctx = Context([ChatMessage.User("x")])
    # gpt-4.1 / gpt-4o answer the include with "Encrypted content is not supported".
    assert "include" not in build_responses_body(ctx, "gpt-4.1")
    assert "include" not in build_responses_body(ctx, "gpt-5-chat-latest")
    assert "reasoning" not in build_responses_body(ctx, "gpt-5")
    for model in ("gpt-5", "gpt-5.1-codex-max", "o3-mini", "o4-mini", "gpt-oss-120b"):
        assert is_reasoning_model(model), model
        assert build_responses_body(ctx, model)["include"] == ["reasoning.encrypted_content"]
    assert not is_reasoning_model("gpt-4o-mini")
    assert "include" in build_responses_body(ctx, "gpt-4.1", include_encrypted=True)
    assert "include" not in build_responses_body(ctx, "gpt-5", include_encrypted=False)


def _assistant_with_reasoning(model: str, content: str = "", calls: Any = ()) -> ChatMessage:
    items = [{"type": "reasoning", "id": "rs_9", "summary": [], "encrypted_content": "ENC-9"}]
    enc = EncryptedReasoningContent("rs_9", model, json.dumps(items))
    return ChatMessage.Assistant(content, AssistantReasoning("thought", enc), tool_calls=calls)


def test_encrypted_reasoning_is_replayed_only_to_its_model_and_only_before_an_item() -> None:
    call = ToolCallRequest("call_1", "get_weather", "{}")
    ctx = Context(
        [ChatMessage.User("x"), _assistant_with_reasoning("openai:gpt-5", "Answer", [call])]
    )
    same = build_responses_body(ctx, "gpt-5", reasoning_model="openai:gpt-5")["input"]
    assert same[1:] == [
        {"type": "reasoning", "id": "rs_9", "summary": [], "encrypted_content": "ENC-9"},
        {"type": "message", "role": "assistant", "content": "Answer"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
    ]
    other = build_responses_body(ctx, "gpt-5-mini", reasoning_model="openai:gpt-5-mini")["input"]
    assert [i["type"] for i in other] == ["message", "message", "function_call"]
    # No following item: the API would refuse a lone reasoning item, so it stays out.
    lone = Context([ChatMessage.User("x"), _assistant_with_reasoning("openai:gpt-5")])
    assert build_responses_body(lone, "gpt-5", reasoning_model="openai:gpt-5")["input"] == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x"}]}
    ]
    # A bare encrypted string (another client's storage) still replays as one item.
    enc = EncryptedReasoningContent("rs_raw", "openai:gpt-5", "gAAAA-raw")
    raw = Context([ChatMessage.Assistant("ok", AssistantReasoning(None, enc))])
    assert build_responses_body(raw, "gpt-5", reasoning_model="openai:gpt-5")["input"][0] == {
        "type": "reasoning",
        "id": "rs_raw",
        "summary": [],
        "encrypted_content": "gAAAA-raw",
    }


# --- headers, configuration ------------------------------------------------------------------


def test_headers_url_and_key_never_shown(server: LoopbackServer) -> None:
    server.reply(Reply.event_stream(created(), text_delta("ok"), completed()))
    p = provider(server, organization="org-1", project="proj-1")
    assert p.stream_response(Context([ChatMessage.User("hi")])).collect().text == "ok"
    req = server.requests[0]
    assert req.path == "/v1/responses"
    assert req.headers["authorization"] == f"Bearer {KEY}"
    assert req.headers["content-type"] == "application/json"
    # Organization and project go to api.openai.com only, not to another server.
    assert "openai-organization" not in req.headers and "openai-project" not in req.headers
    assert KEY not in repr(p) and KEY not in p.display_name()
    assert p.display_name() == "OpenAI (gpt-5)"


def test_org_and_project_headers_for_openai_host(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("OPENAI_ORG_ID", "org-env")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-env")
    p = OpenAiProvider(KEY)
    assert p.base_url == "https://api.openai.com/v1"
    assert p.model_name == "gpt-4.1"
    h = p.request_headers()
    assert (h["openai-organization"], h["openai-project"]) == ("org-env", "proj-env")
    assert "openai-organization" not in p.with_base_url("https://example.test/v1").request_headers()


def test_from_env_and_missing_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, server: LoopbackServer
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MissingApiKeyError, match="OPENAI_API_KEY") as info:
        OpenAiProvider.from_env()
    assert info.value.variable == "OPENAI_API_KEY"
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1/")
    p = OpenAiProvider.from_env(model="gpt-5-mini")
    server.reply(Reply.event_stream(created(), text_delta("env"), completed()))
    assert p.stream_response(Context([ChatMessage.User("x")])).collect().text == "env"
    assert server.requests[0].path == "/v1/responses"
    assert server.requests[0].json()["model"] == "gpt-5-mini"
    copy = pickle.loads(pickle.dumps(p.with_model("o3")))
    assert (copy.model_name, p.model_name) == ("o3", "gpt-5-mini")


# --- hand-written streams ------------------------------------------------------------------


def test_tool_turn_then_round_trip_with_result_and_reasoning(server: LoopbackServer) -> None:
    p = provider(server)
    ctx = Context(
        [ChatMessage.System("sys"), ChatMessage.User("Weather in Paris?")], tools=[WEATHER]
    )
    server.reply(Reply(headers=SSE, body=[TOOL_TURN], chunked=True))
    with p.stream_response(ctx) as stream:
        chunks = list(stream)
    assert kinds(chunks) == [
        "Start",
        "Reasoning",
        "ToolRequestStart",
        "ToolRequestArg",
        "ToolRequestArg",
        "ToolRequestComplete",
        "EncryptedReasoning",
        "Usage",
        "Done",
    ]
    assert chunks[-1] == LlmResponse.Done(StopReason.TOOL_CALLS, "completed")
    assert chunks[-2] == LlmResponse.Usage(120, 30, cached_input_tokens=100, reasoning_tokens=12)
    call = chunks[5].tool_call
    assert (call.id, call.name, call.arguments) == ("call_1", "get_weather", '{"city":"Paris"}')

    server.reply(Reply(headers=SSE, body=[TOOL_TURN], chunked=True))
    turn = p.stream_response(ctx).collect()
    ctx.add_message(turn.to_message())
    ctx.add_message(
        ChatMessage.ToolCallResult(ToolCallResult.from_request(turn.tool_calls[0], "18°C"))
    )
    server.reply(Reply.event_stream(created("resp_2"), text_delta("It is 18°C."), completed()))
    final = p.stream_response(ctx).collect()
    assert final.text == "It is 18°C." and final.stop_reason is StopReason.END_TURN

    second = server.requests[2].json()
    assert second["instructions"] == "sys"
    assert second["input"][1:] == [
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [{"type": "summary_text", "text": "Need the weather."}],
            "encrypted_content": "ENC-1",
        },
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
        },
        {"type": "function_call_output", "call_id": "call_1", "output": "18°C"},
    ]
    # The same history sent to another model leaves the reasoning out.
    server.reply(Reply.event_stream(created(), text_delta("x"), completed()))
    p.with_model("gpt-5-mini").stream_response(ctx).collect()
    assert [i["type"] for i in server.requests[3].json()["input"]] == [
        "message",
        "function_call",
        "function_call_output",
    ]


def test_summary_parts_are_separated_and_unknown_events_ignored() -> None:
    got = list(
        parse_responses_events(
            frames(
                created(),
                {"type": "response.in_progress", "response": {"id": "resp_1"}},
                summary_part(0),
                summary_delta("One."),
                summary_part(1),
                summary_delta("Two."),
                {"type": "response.brand_new_event", "whatever": [1, 2]},
                {"type": "response.web_search_call.searching", "item_id": "ws_1"},
                text_delta("Answer"),
                {"type": "response.output_text.done", "text": "Answer"},
                completed(),
            )
        )
    )
    assert got == [
        LlmResponse.Start("resp_1"),
        LlmResponse.Reasoning("One."),
        LlmResponse.Reasoning("\n\n"),
        LlmResponse.Reasoning("Two."),
        LlmResponse.Text("Answer"),
        LlmResponse.Usage(120, 30, cached_input_tokens=100, reasoning_tokens=12),
        LlmResponse.Done(StopReason.END_TURN, "completed"),
    ]


def test_incomplete_is_length_and_other_reasons_are_kept() -> None:
    got = list(
        parse_responses_events(
            frames(
                created(),
                text_delta("cut"),
                completed("incomplete", incomplete_details={"reason": "max_output_tokens"}),
            )
        )
    )
    assert got[-1] == LlmResponse.Done(StopReason.LENGTH, "max_output_tokens")
    assert isinstance(got[-2], LlmResponse.Usage)
    got = list(
        parse_responses_events(
            frames(
                created(), completed("incomplete", incomplete_details={"reason": "content_filter"})
            )
        )
    )
    assert got[-1] == LlmResponse.Done(StopReason.CONTENT_FILTER, "content_filter")
    got = list(
        parse_responses_events(
            frames(created(), completed("incomplete", incomplete_details={"reason": "new_one"}))
        )
    )
    assert got[-1] == LlmResponse.Done(StopReason.UNKNOWN, "new_one")


def test_parallel_calls_whole_calls_and_unfinished_calls() -> None:
    whole = {
        "type": "response.output_item.done",
        "output_index": 3,
        "item": {
            "id": "fc_3",
            "type": "function_call",
            "call_id": "call_3",
            "name": "b",
            "arguments": '{"x":3}',
        },
    }
    got = list(
        parse_responses_events(
            frames(
                created(),
                call_added("fc_1", "call_1", "a", 1),
                call_added("fc_2", "call_2", "a", 2),
                args_delta("fc_2", '{"n":'),
                args_delta("fc_1", '{"n":1}'),
                args_delta("fc_2", "2}"),
                args_delta("fc_unknown", "ignored"),
                args_done("fc_1", '{"n":1}'),
                whole,
                completed(),
            )
        )
    )
    done = [c.tool_call for c in got if isinstance(c, LlmResponse.ToolRequestComplete)]
    # fc_2 never got its "done": it is completed from its pieces, not dropped.
    assert [(t.id, t.name, t.arguments) for t in done] == [
        ("call_1", "a", '{"n":1}'),
        ("call_3", "b", '{"x":3}'),
        ("call_2", "a", '{"n":2}'),
    ]
    assert LlmResponse.ToolRequestArg("call_3", '{"x":3}') in got
    assert got[-1] == LlmResponse.Done(StopReason.TOOL_CALLS, "completed")


def test_refusal_is_text_with_content_filter_stop() -> None:
    got = list(
        parse_responses_events(
            frames(
                created(), {"type": "response.refusal.delta", "delta": "I can't help."}, completed()
            )
        )
    )
    assert LlmResponse.Text("I can't help.") in got
    assert got[-1] == LlmResponse.Done(StopReason.CONTENT_FILTER, "refusal")


def test_invalid_json_names_the_event() -> None:
    with pytest.raises(JsonParsingError, match="not valid JSON"):
        list(parse_responses_events(frames(created(), "{not json")))


@pytest.mark.parametrize(
    ("error", "cls"),
    [
        (
            {
                "code": "context_length_exceeded",
                "message": "Your input exceeds the context window of this model.",
            },
            ContextOverflowError,
        ),
        ({"code": "rate_limit_exceeded", "message": "Slow down."}, RateLimitedError),
        ({"code": "server_error", "message": "The server had an error."}, ServerError),
        ({"code": "invalid_prompt", "message": "Your prompt was flagged."}, ApiError),
        ({"code": "invalid_api_key", "message": "bad key"}, InvalidApiKeyError),
    ],
)
def test_in_stream_errors_are_typed(error: Dict[str, Any], cls: type) -> None:
    # Both the nested shape and the older top-level shape of the "error" event.
    for event in ({"type": "error", "error": error}, {"type": "error", **error}):
        with pytest.raises(cls) as info:
            list(parse_responses_events(frames(created(), event)))
        assert type(info.value) is cls
        assert error["message"] in str(info.value)
    failed = {
        "type": "response.failed",
        "response": {"id": "resp_1", "status": "failed", "error": error},
    }
    with pytest.raises(cls):
        list(parse_responses_events(frames(created(), failed)))


def test_quota_exhausted_is_not_retryable() -> None:
    event = {
        "type": "error",
        "error": {"code": "insufficient_quota", "message": "You exceeded your quota."},
    }
    with pytest.raises(RateLimitedError) as info:
        list(parse_responses_events(frames(created(), event)))
    assert info.value.retryable is False


# --- HTTP errors and retries ---------------------------------------------------------------


def _ctx() -> Context:
    return Context([ChatMessage.User("hi")])


def test_401_is_not_retried_and_hides_the_key(server: LoopbackServer) -> None:
    err_body = {
        "error": {
            "message": f"Incorrect API key provided: {KEY}.",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
        }
    }
    server.reply(Reply.json(err_body, status=401), Reply.json(err_body, status=401))
    with pytest.raises(InvalidApiKeyError) as info:
        list(provider(server, max_retries=2).stream_response(_ctx()))
    assert len(server.requests) == 1
    assert "OPENAI_API_KEY" in str(info.value)
    assert KEY not in str(info.value) and KEY not in (info.value.body or "")
    assert info.value.status == 401


def test_400_overflow_with_numbers(server: LoopbackServer) -> None:
    msg = "This model's maximum context length is 128000 tokens. However, your messages resulted in 204308 tokens."
    server.reply(
        Reply.json({"error": {"message": msg, "code": "context_length_exceeded"}}, status=400)
    )
    with pytest.raises(ContextOverflowError) as info:
        list(provider(server).stream_response(_ctx()))
    assert (info.value.requested_tokens, info.value.max_tokens) == (204308, 128000)
    assert info.value.retryable is False


def test_429_with_retry_after_is_retried(server: LoopbackServer) -> None:
    limited = {"error": {"message": "Rate limit reached", "code": "rate_limit_exceeded"}}
    server.reply(
        Reply.json(limited, status=429, headers={"retry-after-ms": "20"}),
        Reply.event_stream(created(), text_delta("after wait"), completed()),
    )
    got = provider(server, max_retries=2).stream_response(_ctx()).collect()
    assert got.text == "after wait"
    assert len(server.requests) == 2
    server.reply(Reply.json(limited, status=429, headers={"retry-after": "0"}))
    with pytest.raises(RateLimitedError) as info:
        list(provider(server, max_retries=0).stream_response(_ctx()))
    assert info.value.retry_after == 0


def test_5xx_and_in_stream_server_error_before_content_are_retried(server: LoopbackServer) -> None:
    server.reply(
        Reply(
            status=503,
            headers={"content-type": "text/html", "retry-after-ms": "10"},
            body=[b"<html><title>Unavailable</title></html>"],
        ),
        Reply.event_stream(
            created("resp_a"),
            {"type": "error", "error": {"code": "server_error", "message": "oops"}},
        ),
        Reply.event_stream(created("resp_b"), text_delta("third time"), completed()),
    )
    with provider(server, max_retries=2, timeout=10).stream_response(_ctx()) as stream:
        chunks = list(stream)
    assert len(server.requests) == 3
    # One Start only, though two attempts began a response.
    assert kinds(chunks).count("Start") == 1
    assert "".join(c.chunk for c in chunks if isinstance(c, LlmResponse.Text)) == "third time"
    server.reply(Reply(status=500, body=[b"boom"]))
    with pytest.raises(ServerError, match="500"):
        list(provider(server, max_retries=0).stream_response(_ctx()))


def test_model_not_found_names_the_model(server: LoopbackServer) -> None:
    server.reply(
        Reply.json(
            {
                "error": {
                    "code": "model_not_found",
                    "message": "The requested model 'gpt-9' does not exist.",
                }
            },
            status=400,
        )
    )
    with pytest.raises(ApiError) as info:
        list(provider(server, "gpt-9").stream_response(_ctx()))
    assert "'gpt-9'" in str(info.value) and "model=" in str(info.value)


def test_stream_cut_before_completed_is_interrupted(server: LoopbackServer) -> None:
    from llm_sync import StreamInterruptedError

    chunks: List[LlmResponse] = []
    with pytest.raises(StreamInterruptedError):
        chunks.extend(stream_body(server, provider(server), body(created(), text_delta("half"))))
