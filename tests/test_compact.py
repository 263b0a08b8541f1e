"""``Context.compact``: what is summarised, what is kept, what the summary request carries."""

from __future__ import annotations

from typing import Any, List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_sync import (
    ApiError,
    AssistantReasoning,
    ChatMessage,
    ContentBlock,
    Context,
    ContextOverflowError,
    EncryptedReasoningContent,
    LlmResponse,
    LlmResponseStream,
    ReasoningEffort,
    ServerError,
    StreamingModelProvider,
    ToolCallError,
    ToolCallRequest,
    ToolCallResult,
    ToolDefinition,
)
from llm_sync._compact import split_history
from llm_sync.testing import FakeLlmProvider, llm_response

SIGNATURE = "EqQBCkYIBxgCKkD-secret-signature"
TOOL = ToolDefinition("get_weather", "Weather", {"type": "object", "properties": {"city": {"type": "string"}}})


def summariser(text: str = "The user asked about Oslo; it is sunny there.") -> FakeLlmProvider:
    return FakeLlmProvider([llm_response("msg_sum").text(text).build()])


def history() -> Context:
    ctx = Context([ChatMessage.System("You are a weather bot.")], [TOOL], reasoning_effort=ReasoningEffort.HIGH)
    ctx.set_prompt_cache_key("cache-1")
    ctx.add_message(ChatMessage.User([ContentBlock.Text("Weather in Oslo?"), ContentBlock.Document("JVBERi0=", name="trip.pdf")]))
    thinking = AssistantReasoning("I should call the tool.", EncryptedReasoningContent("rs_1", SIGNATURE, "anthropic:claude-sonnet-4-5"))
    ctx.push_assistant_turn(
        "Let me check.",
        thinking,
        [ToolCallResult("call_1", "get_weather", '{"city": "Oslo"}', "sunny, 21 C")],
    )
    ctx.add_message(ChatMessage.Assistant("It is sunny and 21 C in Oslo."))
    ctx.add_message(ChatMessage.User("And tomorrow?"))
    ctx.push_assistant_turn("Checking.", None, [ToolCallError("call_2", "get_weather", '{"city": "Oslo"}', "no forecast")])
    return ctx


def test_older_turns_become_one_summary_and_the_last_are_kept() -> None:
    ctx = history()
    before = ctx.copy()
    model = summariser()
    out = ctx.compact(model, keep_last=1)
    assert ctx == before  # a new context; this one is untouched
    # keep_last=1 would start at the tool result: the turn that made the call is kept with it.
    assert [type(m).__name__ for m in out.messages] == ["System", "Summary", "Assistant", "ToolCallResult"]
    summary = out.messages[1]
    assert isinstance(summary, ChatMessage.Summary)
    assert summary.content == "The user asked about Oslo; it is sunny there."
    assert summary.messages_compacted == 5
    assert out.messages[2:] == ctx.messages[-2:]
    assert out.tools == ctx.tools and out.reasoning_effort == ReasoningEffort.HIGH
    assert out.prompt_cache_key == "cache-1"


def test_the_summary_request_is_a_transcript_without_reasoning() -> None:
    model = summariser()
    history().compact(model, keep_last=2)
    (request,) = model.captured_contexts
    assert request.tools == () and request.reasoning_effort is None
    system, user = request.messages
    assert isinstance(system, ChatMessage.System) and "summary" in system.content
    text = user.text  # type: ignore[attr-defined]
    assert SIGNATURE not in text and "rs_1" not in text and "I should call the tool" not in text
    assert "User: Weather in Oslo?" in text and "[a document block ('trip.pdf', application/pdf" in text
    assert 'Assistant called tool get_weather (call call_1) with arguments: {"city": "Oslo"}' in text
    assert "Tool get_weather (call call_1) returned: sunny, 21 C" in text
    assert "And tomorrow?" in text and "no forecast" not in text  # the kept turn is not summarised
    assert all(not isinstance(b, ContentBlock.Document) for b in user.content)  # type: ignore[attr-defined]


def test_an_earlier_summary_is_folded_in_and_counted() -> None:
    ctx = Context([ChatMessage.Summary("Earlier: the user likes short answers.", messages_compacted=7)])
    ctx.add_message(ChatMessage.User("q1"))
    ctx.add_message(ChatMessage.Assistant("a1"))
    ctx.add_message(ChatMessage.User("q2"))
    model = summariser("Short answers; q1 was answered.")
    out = ctx.compact(model, keep_last=1)
    assert [m.content for m in out.messages if isinstance(m, ChatMessage.Summary)] == ["Short answers; q1 was answered."]
    assert out.messages[0].messages_compacted == 9  # type: ignore[attr-defined]
    assert "Summary of the conversation before this point: Earlier" in model.captured_contexts[0].messages[1].text  # type: ignore[attr-defined]


def test_nothing_older_means_no_request() -> None:
    model = summariser()
    ctx = Context([ChatMessage.System("s"), ChatMessage.User("hi")])
    out = ctx.compact(model, keep_last=4)
    assert out == ctx and out is not ctx and model.call_count == 0
    assert Context().compact(model) == Context()


def test_keep_last_zero_summarises_everything_but_the_system_prompts() -> None:
    out = history().compact(summariser(), keep_last=0)
    assert [type(m).__name__ for m in out.messages] == ["System", "Summary"]
    assert out.messages[1].messages_compacted == 7  # type: ignore[attr-defined]


def test_bad_keep_last_and_failed_summaries() -> None:
    with pytest.raises(ValueError, match="keep_last"):
        history().compact(summariser(), keep_last=-1)
    with pytest.raises(ValueError, match="keep_last"):
        history().compact(summariser(), keep_last=True)
    with pytest.raises(ApiError, match="without any text"):
        history().compact(FakeLlmProvider([llm_response().text("  ").build()]), keep_last=1)
    with pytest.raises(ServerError):
        history().compact(FakeLlmProvider([[LlmResponse.Start("m"), ServerError("overloaded")]]), keep_last=1)


class Windowed(StreamingModelProvider):
    """A stand-in model with a window: a request over it fails as a real one does."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.sizes: List[int] = []

    def display_name(self) -> str:
        return "windowed"

    def stream_response(self, context: Context) -> LlmResponseStream:
        n = context.estimated_token_count()
        self.sizes.append(n)
        if n > self.window:
            turn: List[Any] = [ContextOverflowError("too long", requested_tokens=n, max_tokens=self.window)]
        else:
            turn = llm_response().text(f"summary of a {n}-token request").build()
        return FakeLlmProvider([turn]).stream_response(context)


def test_a_transcript_over_the_window_is_summarised_in_portions() -> None:
    ctx = Context([ChatMessage.System("s")])
    for i in range(20):
        ctx.add_message(ChatMessage.User(f"question {i} " + "about rivers " * 30))
        ctx.add_message(ChatMessage.Assistant(f"answer {i} " + "rivers flow " * 30))
    model = Windowed(window=800)
    out = ctx.compact(model, keep_last=2)
    assert len(model.sizes) > 3 and max(model.sizes) > 800  # the whole did not fit...
    assert [type(m).__name__ for m in out.messages] == ["System", "Summary", "User", "Assistant"]
    summary = out.messages[1]
    assert summary.content.startswith("summary of a ") and summary.messages_compacted == 38  # type: ignore[attr-defined]
    # ...and the last request, the one that wrote the summary, did.
    assert model.sizes[-1] <= 800
    with pytest.raises(ContextOverflowError):
        Context([ChatMessage.User("x" * 8000), ChatMessage.User("last")]).compact(Windowed(window=800), keep_last=1)


# A history: a list of turns, each a user message then an assistant reply that may call tools.
turns = st.lists(st.tuples(st.booleans(), st.integers(0, 3)), max_size=8)


@settings(max_examples=60, deadline=None)
@given(turns, st.integers(0, 12), st.booleans())
def test_the_cut_never_separates_calls_from_results(shape: List[tuple[bool, int]], keep_last: int, system: bool) -> None:
    messages: List[ChatMessage] = [ChatMessage.System("s")] if system else []
    for i, (has_text, calls) in enumerate(shape):
        messages.append(ChatMessage.User(f"q{i}"))
        requests = [ToolCallRequest(f"c{i}_{j}", "t", "{}") for j in range(calls)]
        messages.append(ChatMessage.Assistant("a" if has_text else "", tool_calls=requests))
        messages.extend(ChatMessage.ToolCallResult(ToolCallResult(r.id, "t", "{}", "ok")) for r in requests)
    older, kept = split_history(messages, keep_last)
    assert older + kept == [m for m in messages if not m.is_system]
    assert len(kept) >= min(keep_last, len(older) + len(kept))
    assert not kept or not kept[0].is_tool_result
    answered = {m.result.id for m in kept if m.is_tool_result}  # type: ignore[attr-defined]
    called = {c.id for m in kept if isinstance(m, ChatMessage.Assistant) for c in m.tool_calls}
    assert answered <= called  # every kept result has its call kept
