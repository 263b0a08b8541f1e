"""Tests for ChatMessage variants, reasoning values and their JSON form."""

from __future__ import annotations

import dataclasses
import json
import pickle
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from llm_sync import (
    AssistantReasoning,
    ChatMessage,
    ContentBlock,
    EncryptedReasoningContent,
    LlmModel,
    ToolCallError,
    ToolCallRequest,
    ToolCallResult,
)
from llm_sync._messages import parse_timestamp

T0 = datetime(2026, 4, 28, 10, 21, 14, 123456, tzinfo=timezone.utc)


def all_variants() -> list[ChatMessage]:
    enc = EncryptedReasoningContent("rs_1", "codex:gpt-5.5", "opaque==")
    return [
        ChatMessage.System("be brief", T0),
        ChatMessage.User([ContentBlock.Text("look"), ContentBlock.Image("QUJD", "image/png")], T0),
        ChatMessage.Assistant(
            "calling",
            AssistantReasoning("thought", enc),
            T0,
            [ToolCallRequest("c1", "get_weather", '{"city": "Paris"}')],
        ),
        ChatMessage.ToolCallResult(ToolCallResult("c1", "get_weather", '{"city": "Paris"}', "sunny")),
        ChatMessage.ToolCallResult(ToolCallError("c2", "get_weather", None, "timeout")),
        ChatMessage.Error("the model failed", T0),
        ChatMessage.Summary("we talked about weather", T0, messages_compacted=7),
    ]


def test_variants_are_subclasses_with_qualified_names() -> None:
    for m in all_variants():
        assert isinstance(m, ChatMessage)
    assert ChatMessage.ToolCallResult.__name__ == "ToolCallResult"
    assert repr(ChatMessage.Error("x", T0)).startswith("ChatMessage.Error(message='x'")


def test_user_str_becomes_one_text_block() -> None:
    m = ChatMessage.User("hello")
    assert m.content == (ContentBlock.Text("hello"),)
    assert m.text == "hello"


def test_lists_become_tuples() -> None:
    blocks = [ContentBlock.Text("a")]
    m = ChatMessage.User(blocks)
    blocks.append(ContentBlock.Text("b"))
    assert m.content == (ContentBlock.Text("a"),)
    calls = [ToolCallRequest("1", "t", "{}")]
    a = ChatMessage.Assistant("x", tool_calls=calls)
    assert isinstance(a.tool_calls, tuple) and a.tool_calls == (ToolCallRequest("1", "t", "{}"),)


def test_messages_are_frozen_and_hashable() -> None:
    m = ChatMessage.System("s", T0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.content = "other"  # type: ignore[misc]
    assert len({m, ChatMessage.System("s", T0)}) == 1


def test_assistant_defaults() -> None:
    a = ChatMessage.Assistant()
    assert a.content == ""
    assert a.reasoning == AssistantReasoning()
    assert a.tool_calls == ()
    assert a.timestamp.tzinfo is not None


def test_default_timestamps_are_aware_utc_and_current() -> None:
    before = datetime.now(timezone.utc)
    msgs = [ChatMessage.System("s"), ChatMessage.User("u"), ChatMessage.Assistant("a"), ChatMessage.Error("e"), ChatMessage.Summary("s")]
    after = datetime.now(timezone.utc)
    for m in msgs:
        assert m.timestamp is not None
        assert m.timestamp.utcoffset() == timedelta(0)
        assert before <= m.timestamp <= after


def test_timestamps_are_normalised_to_utc_and_naive_ones_refused() -> None:
    paris = timezone(timedelta(hours=2))
    m = ChatMessage.System("s", datetime(2026, 4, 28, 12, 0, tzinfo=paris))
    assert m.timestamp == datetime(2026, 4, 28, 10, 0, tzinfo=timezone.utc)
    assert m.timestamp.tzinfo is timezone.utc
    with pytest.raises(ValueError, match="timezone-aware"):
        ChatMessage.User("u", datetime(2026, 4, 28, 12, 0))


def test_tool_result_message_has_no_timestamp() -> None:
    m = ChatMessage.ToolCallResult(ToolCallResult("1", "t", "{}", "ok"))
    assert m.timestamp is None
    with pytest.raises(TypeError):
        ChatMessage.ToolCallResult("not a result")  # type: ignore[arg-type]


def test_predicates() -> None:
    sys_m, user, asst, ok, err, error, summary = all_variants()
    assert sys_m.is_system and not user.is_system
    assert ok.is_tool_result and err.is_tool_result and not asst.is_tool_result
    assert summary.is_summary and not error.is_summary
    assert isinstance(err, ChatMessage.ToolCallResult) and err.is_error
    assert isinstance(ok, ChatMessage.ToolCallResult) and not ok.is_error


def test_estimated_bytes_follows_the_crate() -> None:
    assert ChatMessage.System("héllo", T0).estimated_bytes() == 6
    assert ChatMessage.User([ContentBlock.Text("abc"), ContentBlock.Image("QUJDRA==", "image/png")]).estimated_bytes() == 11
    enc = EncryptedReasoningContent("id-not-counted", "codex:gpt-5.5", "12345")
    a = ChatMessage.Assistant("ab", AssistantReasoning("cd", enc), T0, [ToolCallRequest("id", "fn", "{}")])
    assert a.estimated_bytes() == 2 + 2 + 5 + 2 + 2
    assert ChatMessage.ToolCallResult(ToolCallResult("id", "fn", "{}", "ok")).estimated_bytes() == 6
    assert ChatMessage.ToolCallResult(ToolCallError("id", "fn", None, "bad")).estimated_bytes() == 5
    assert ChatMessage.Error("oops", T0).estimated_bytes() == 4
    assert ChatMessage.Summary("sum", T0, 3).estimated_bytes() == 3


def test_json_shapes_match_the_crate() -> None:
    sys_m, user, asst, ok, err, error, summary = (m.to_dict() for m in all_variants())
    ts = "2026-04-28T10:21:14.123456+00:00"
    assert sys_m == {"type": "system", "content": "be brief", "timestamp": ts}
    assert user == {
        "type": "user",
        "content": [{"type": "text", "text": "look"}, {"type": "image", "data": "QUJD", "mime_type": "image/png"}],
        "timestamp": ts,
    }
    assert asst == {
        "type": "assistant",
        "content": "calling",
        "reasoning": {
            "summary_text": "thought",
            "encrypted_content": {"id": "rs_1", "model": "codex:gpt-5.5", "content": "opaque=="},
        },
        "timestamp": ts,
        "tool_calls": [{"id": "c1", "name": "get_weather", "arguments": '{"city": "Paris"}'}],
    }
    assert ok == {
        "type": "toolCallResult",
        "Ok": {"id": "c1", "name": "get_weather", "arguments": '{"city": "Paris"}', "result": "sunny"},
    }
    assert err == {
        "type": "toolCallResult",
        "Err": {"id": "c2", "name": "get_weather", "arguments": None, "error": "timeout"},
    }
    assert error == {"type": "error", "message": "the model failed", "timestamp": ts}
    assert summary == {"type": "summary", "content": "we talked about weather", "timestamp": ts, "messages_compacted": 7}


@pytest.mark.parametrize("message", all_variants(), ids=lambda m: type(m).__name__)
def test_json_round_trip(message: ChatMessage) -> None:
    again = ChatMessage.from_dict(json.loads(json.dumps(message.to_dict())))
    assert again == message
    assert type(again) is type(message)


def test_reads_crate_json_with_nanoseconds_and_defaults() -> None:
    crate: dict[str, Any] = {
        "type": "assistant",
        "content": "hi",
        "timestamp": "2026-04-28T10:21:14.123456789+00:00",
        "tool_calls": [],
    }
    a = ChatMessage.from_dict(crate)
    assert isinstance(a, ChatMessage.Assistant)
    assert a.reasoning == AssistantReasoning()
    assert a.timestamp == T0


def test_from_dict_errors() -> None:
    with pytest.raises(ValueError, match="unknown ChatMessage type"):
        ChatMessage.from_dict({"type": "tool"})
    with pytest.raises(ValueError, match="Ok"):
        ChatMessage.from_dict({"type": "toolCallResult"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-04-28T10:21:14Z", datetime(2026, 4, 28, 10, 21, 14, tzinfo=timezone.utc)),
        ("2026-04-28t10:21:14.5z", datetime(2026, 4, 28, 10, 21, 14, 500000, tzinfo=timezone.utc)),
        ("2026-04-28T12:21:14+02:00", datetime(2026, 4, 28, 10, 21, 14, tzinfo=timezone.utc)),
        ("2026-04-28T05:21:14.000000001-05:00", datetime(2026, 4, 28, 10, 21, 14, tzinfo=timezone.utc)),
        ("2016-12-31T23:59:60Z", datetime(2017, 1, 1, 0, 0, 0, tzinfo=timezone.utc)),
    ],
)
def test_parse_timestamp(text: str, expected: datetime) -> None:
    got = parse_timestamp(text)
    assert got == expected and got.tzinfo is timezone.utc


@pytest.mark.parametrize("bad", ["2026-04-28", "2026-04-28T10:21:14", "yesterday"])
def test_parse_timestamp_refuses_non_rfc3339(bad: str) -> None:
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_timestamp(bad)


def test_assistant_reasoning() -> None:
    assert AssistantReasoning().to_dict() == {}
    assert AssistantReasoning().is_empty
    assert AssistantReasoning.from_parts("", None) == AssistantReasoning()
    assert AssistantReasoning.from_parts("x").summary_text == "x"
    assert not AssistantReasoning("x").is_empty
    assert AssistantReasoning.from_dict({}) == AssistantReasoning()
    r = AssistantReasoning(encrypted_content=EncryptedReasoningContent("i", "codex:gpt-5.5", "c"))
    assert r.to_dict() == {"encrypted_content": {"id": "i", "model": "codex:gpt-5.5", "content": "c"}}
    assert AssistantReasoning.from_dict(json.loads(json.dumps(r.to_dict()))) == r


def test_encrypted_reasoning_model_is_provider_colon_id() -> None:
    model = LlmModel("codex", "gpt-5.5")
    enc = EncryptedReasoningContent("i", model, "c")  # type: ignore[arg-type]
    assert enc.model == "codex:gpt-5.5"
    assert enc.is_for(model) and enc.is_for("codex:gpt-5.5")
    assert not enc.is_for(LlmModel("openai", "gpt-5.5"))


def test_wrong_content_types_are_refused() -> None:
    with pytest.raises(TypeError, match="ContentBlocks"):
        ChatMessage.User(["plain str in a list"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="content"):
        ChatMessage.System(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ToolCallRequest"):
        ChatMessage.Assistant("x", tool_calls=[{"id": "1"}])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        ChatMessage.Summary("s", T0, messages_compacted=-1)


def test_pickle_round_trip() -> None:
    for m in all_variants():
        assert pickle.loads(pickle.dumps(m)) == m


@pytest.mark.skipif(sys.version_info < (3, 10), reason="match statements need Python 3.10")
def test_match_statement_on_variants() -> None:
    # Compiled at run time: a match statement is a syntax error on 3.9.
    code = textwrap.dedent(
        """
        def describe(m):
            match m:
                case ChatMessage.System(content=c):
                    return "system:" + c
                case ChatMessage.User(content=(ContentBlock.Text(t), *_)):
                    return "user:" + t
                case ChatMessage.Assistant(content, _, _, calls):
                    return f"assistant:{content}:{len(calls)}"
                case ChatMessage.ToolCallResult(ToolCallError(error=e)):
                    return "tool error:" + e
                case ChatMessage.ToolCallResult(ToolCallResult(result=r)):
                    return "tool ok:" + r
                case ChatMessage.Summary(messages_compacted=n):
                    return f"summary:{n}"
                case ChatMessage.Error(message):
                    return "error:" + message
            return "?"
        """
    )
    ns: dict[str, Any] = {
        "ChatMessage": ChatMessage,
        "ContentBlock": ContentBlock,
        "ToolCallError": ToolCallError,
        "ToolCallResult": ToolCallResult,
    }
    exec(code, ns)
    got = [ns["describe"](m) for m in all_variants()]
    assert got == [
        "system:be brief",
        "user:look",
        "assistant:calling:1",
        "tool ok:sunny",
        "tool error:timeout",
        "error:the model failed",
        "summary:7",
    ]
