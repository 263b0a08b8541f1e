"""``llm_sync.testing``: the fake provider runs the real engine over scripted turns."""

from __future__ import annotations

import threading
import time

import pytest

from llm_sync import ChatMessage, Context, LlmResponse, ServerError, StopReason
from llm_sync.testing import FakeLlmProvider, llm_response


def test_the_builder_makes_a_whole_turn() -> None:
    turn = llm_response("m1").text("Hel", "lo").tool_call("c1", "add", ['{"a":', " 1}"]).build(StopReason.TOOL_CALLS)
    assert [type(c).__name__ for c in turn] == [
        "Start", "Text", "Text", "ToolRequestStart", "ToolRequestArg", "ToolRequestArg", "ToolRequestComplete", "Done",
    ]
    complete = turn[6]
    assert isinstance(complete, LlmResponse.ToolRequestComplete)
    assert complete.tool_call.arguments == '{"a": 1}'
    assert complete.tool_call.parsed_arguments() == {"a": 1}
    assert turn[-1] == LlmResponse.Done(StopReason.TOOL_CALLS, "tool_calls")


def test_invalid_json_tool_call() -> None:
    turn = llm_response().tool_call_with_invalid_json("c1", "f").build()
    complete = turn[2]
    assert isinstance(complete, LlmResponse.ToolRequestComplete)
    assert complete.tool_call.arguments == "invalid json"


def test_turns_play_in_order_then_done_only() -> None:
    fake = FakeLlmProvider([llm_response("a").text("one").build(), llm_response("b").text("two").build()])
    assert fake.stream_response(Context()).collect().text == "one"
    assert fake.stream_response(Context()).collect().text == "two"
    assert list(fake.stream_response(Context())) == [LlmResponse.Done()]
    assert fake.call_count == 3


def test_contexts_are_captured_as_snapshots() -> None:
    fake = FakeLlmProvider()
    ctx = Context([ChatMessage.User("hi")])
    fake.stream_response(ctx).collect()
    ctx.add_message(ChatMessage.User("later"))
    (captured,) = fake.captured_contexts
    assert len(captured.messages) == 1


def test_an_injected_error_is_raised_where_scripted() -> None:
    fake = FakeLlmProvider.from_results([[LlmResponse.Start("m"), LlmResponse.Text("x"), ServerError("boom")]])
    seen = []
    with pytest.raises(ServerError, match="boom"):
        for chunk in fake.stream_response(Context()):
            seen.append(chunk)
    assert seen == [LlmResponse.Start("m"), LlmResponse.Text("x")]


def test_pause_after_a_chunk_until_the_event_fires() -> None:
    release = threading.Event()
    fake = FakeLlmProvider([llm_response().text("a", "b").build()]).pause_turn_after(0, 1, release)
    stream = fake.stream_response(Context())
    assert next(stream) == LlmResponse.Start("msg_fake")
    assert next(stream) == LlmResponse.Text("a")
    time.sleep(0.1)
    assert stream._state.queue.qsize() == 0  # held after chunk 1
    release.set()
    assert [c for c in stream] == [LlmResponse.Text("b"), LlmResponse.Done()]


def test_a_paused_stream_can_be_closed() -> None:
    fake = FakeLlmProvider([llm_response().text("a", "b").build()]).pause_turn_after(0, 0, threading.Event())
    stream = fake.stream_response(Context())
    next(stream)
    stream.close()
    assert stream.closed


def test_display_name_and_window_overrides() -> None:
    fake = FakeLlmProvider().with_display_name("Mock").with_context_window(1000)
    assert (fake.display_name(), fake.context_window(), fake.model()) == ("Mock", 1000, None)
    assert FakeLlmProvider().display_name() == "Fake LLM"
