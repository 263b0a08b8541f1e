"""A turn cancelled mid-text, mid-tool-call or mid-thinking, sent back with a follow-up, for every dialect.

Each case streams the start of a turn from the loopback server in the provider's own wire format,
then stalls; the caller reads up to a point and closes the stream (a cancel). The stream's
``partial()`` is appended to the conversation with a new question, and the follow-up goes to a
stand-in that checks the provider's replay rules (tests/support/replay_rules.py) and answers 400
when one is broken: an unanswered tool call, thinking without its signature, an empty message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

import pytest

from llm_sync import ChatMessage, Context, LlmResponse, ReasoningEffort
from llm_sync._transport._eventstream import event_frame
from llm_sync.providers._base import HttpProvider
from tests.support.faults import FLAVORS, Flavor
from tests.support.replay_rules import dumps, problems, reply_checking
from tests.support.server import LoopbackServer, Stall, sse_event
from tests.support.tools import weather

Chunks = List[LlmResponse]


def _count(cls: Any, n: int, **where: Any) -> Callable[[Chunks], bool]:
    def enough(chunks: Chunks) -> bool:
        found = [c for c in chunks if isinstance(c, cls) and all(getattr(c, k) == v for k, v in where.items())]
        return len(found) >= n

    return enough


@dataclass
class Case:
    dialect: str
    flavor: Flavor
    steps: Sequence[bytes]
    until: Callable[[Chunks], bool]
    text: str = ""
    reasoning: str = ""
    calls: Sequence[str] = ()  # ids of the calls the partial lists (completed ones)
    usage: Optional[Any] = None  # (input, output) the provider reported before the cancel, or None


# -- Anthropic -----------------------------------------------------------------------------


def _a(name: str, data: Dict[str, Any]) -> bytes:
    return sse_event(name, {"type": name, **data})


A_START = _a("message_start", {"message": {"id": "msg_p", "type": "message", "role": "assistant", "content": [],
                                          "usage": {"input_tokens": 11, "cache_read_input_tokens": 4, "output_tokens": 1}}})


def _a_block(i: int, block: Dict[str, Any]) -> bytes:
    return _a("content_block_start", {"index": i, "content_block": block})


def _a_delta(i: int, delta: Dict[str, Any]) -> bytes:
    return _a("content_block_delta", {"index": i, "delta": delta})


def _a_stop(i: int) -> bytes:
    return _a("content_block_stop", {"index": i})


def _a_text(i: int, t: str) -> bytes:
    return _a_delta(i, {"type": "text_delta", "text": t})


def _a_tool(i: int, id: str) -> bytes:
    return _a_block(i, {"type": "tool_use", "id": id, "name": "get_weather", "input": {}})


def _a_json(i: int, piece: str) -> bytes:
    return _a_delta(i, {"type": "input_json_delta", "partial_json": piece})


def _a_think(i: int, t: str) -> bytes:
    return _a_delta(i, {"type": "thinking_delta", "thinking": t})


ANTHROPIC = [
    pytest.param(Case("anthropic", FLAVORS["anthropic"],
                      [A_START, _a_block(0, {"type": "text", "text": ""}), _a_text(0, "Hel"), _a_text(0, "lo")],
                      _count(LlmResponse.Text, 2), text="Hello", usage=(15, 1)), id="anthropic-mid-text"),
    pytest.param(Case("anthropic", FLAVORS["anthropic"],
                      [A_START, _a_block(0, {"type": "text", "text": ""}), _a_text(0, "Checking."), _a_stop(0),
                       _a_tool(1, "toolu_1"), _a_json(1, '{"city": '), _a_json(1, '"Paris"}'), _a_stop(1),
                       _a_tool(2, "toolu_2"), _a_json(2, '{"ci')],
                      _count(LlmResponse.ToolRequestArg, 1, id="toolu_2"), text="Checking.", calls=["toolu_1"],
                      usage=(15, 1)), id="anthropic-mid-tool-call"),
    pytest.param(Case("anthropic", FLAVORS["anthropic"],
                      [A_START, _a_block(0, {"type": "thinking", "thinking": "", "signature": ""}),
                       _a_think(0, "Let me"), _a_think(0, " think")],
                      _count(LlmResponse.Reasoning, 2), reasoning="Let me think", usage=(15, 1)),
                 id="anthropic-mid-thinking"),
    pytest.param(Case("anthropic", FLAVORS["anthropic"],
                      [A_START, _a_block(0, {"type": "thinking", "thinking": "", "signature": ""}),
                       _a_think(0, "Done thinking."), _a_delta(0, {"type": "signature_delta", "signature": "c2ln"}),
                       _a_stop(0), _a_block(1, {"type": "text", "text": ""}), _a_text(1, "Answer")],
                      _count(LlmResponse.Text, 1), text="Answer", reasoning="Done thinking.", usage=(15, 1)),
                 id="anthropic-signed-thinking-then-mid-text"),
]

# -- OpenAI Responses ----------------------------------------------------------------------


def _r(data: Dict[str, Any]) -> bytes:
    return sse_event(data["type"], data)


R_START = _r({"type": "response.created", "response": {"id": "resp_p", "status": "in_progress", "usage": None}})


def _r_text(t: str) -> bytes:
    return _r({"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": t})


def _r_call(item: str, call: str) -> bytes:
    return _r({"type": "response.output_item.added", "output_index": 1,
               "item": {"type": "function_call", "id": item, "call_id": call, "name": "get_weather", "arguments": ""}})


def _r_args(item: str, piece: str) -> bytes:
    return _r({"type": "response.function_call_arguments.delta", "item_id": item, "delta": piece})


RESPONSES = [
    pytest.param(Case("responses", FLAVORS["openai"], [R_START, _r_text("Hel"), _r_text("lo")],
                      _count(LlmResponse.Text, 2), text="Hello"), id="responses-mid-text"),
    pytest.param(Case("responses", FLAVORS["openai"],
                      [R_START, _r_text("Checking."), _r_call("fc_1", "call_1"), _r_args("fc_1", '{"city": "Paris"}'),
                       _r({"type": "response.function_call_arguments.done", "item_id": "fc_1",
                           "arguments": '{"city": "Paris"}'}),
                       _r_call("fc_2", "call_2"), _r_args("fc_2", '{"ci')],
                      _count(LlmResponse.ToolRequestArg, 1, id="call_2"), text="Checking.", calls=["call_1"]),
                 id="responses-mid-tool-call"),
    pytest.param(Case("responses", FLAVORS["openai"],
                      [R_START, _r({"type": "response.output_item.added", "output_index": 0,
                                    "item": {"type": "reasoning", "id": "rs_1", "summary": []}}),
                       _r({"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "delta": "Let me"}),
                       _r({"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "delta": " think"})],
                      _count(LlmResponse.Reasoning, 2), reasoning="Let me think"), id="responses-mid-thinking"),
]

# -- chat completions ----------------------------------------------------------------------


def _c(delta: Dict[str, Any]) -> bytes:
    return sse_event(None, {"id": "chatcmpl-p", "object": "chat.completion.chunk",
                            "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})


def _c_call(id: Optional[str], args: str) -> bytes:
    entry: Dict[str, Any] = {"index": 0, "function": {"arguments": args}}
    if id is not None:
        entry.update(id=id, type="function")
        entry["function"]["name"] = "get_weather"
    return _c({"tool_calls": [entry]})


C_START = _c({"role": "assistant", "content": ""})
CHAT = [
    pytest.param(Case("chat", FLAVORS["openai_compatible"], [C_START, _c({"content": "Hel"}), _c({"content": "lo"})],
                      _count(LlmResponse.Text, 2), text="Hello"), id="chat-mid-text"),
    pytest.param(Case("chat", FLAVORS["openai_compatible"],
                      # Both calls at index 0, as Ollama's and some gateways' streams do: the
                      # second one completes the first.
                      [C_START, _c({"content": "Checking."}), _c_call("call_1", ""), _c_call(None, '{"city": "Paris"}'),
                       _c_call("call_2", '{"ci')],
                      _count(LlmResponse.ToolRequestArg, 1, id="call_2"), text="Checking.", calls=["call_1"]),
                 id="chat-mid-tool-call"),
    pytest.param(Case("chat", FLAVORS["openai_compatible"],
                      [C_START, _c({"reasoning_content": "Let me"}), _c({"reasoning_content": " think"})],
                      _count(LlmResponse.Reasoning, 2), reasoning="Let me think"), id="chat-mid-thinking"),
]

# -- Gemini --------------------------------------------------------------------------------


def _g(*parts: Dict[str, Any], usage: Optional[Dict[str, int]] = None) -> bytes:
    event: Dict[str, Any] = {"candidates": [{"content": {"role": "model", "parts": list(parts)}}], "responseId": "r_p"}
    if usage:
        event["usageMetadata"] = usage
    return sse_event(None, event)


G_USAGE = {"promptTokenCount": 9, "candidatesTokenCount": 2, "totalTokenCount": 11}
GEMINI = [
    pytest.param(Case("gemini", FLAVORS["gemini"], [_g({"text": "Hel"}), _g({"text": "lo"}, usage=G_USAGE)],
                      _count(LlmResponse.Text, 2), text="Hello", usage=(9, 2)), id="gemini-mid-text"),
    pytest.param(Case("gemini", FLAVORS["gemini"],
                      [_g({"text": "Checking."}), _g({"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}),
                       # Vertex streams a call's arguments in pieces: this one never finishes.
                       _g({"functionCall": {"name": "get_weather", "willContinue": True,
                                            "partialArgs": [{"jsonPath": "$.city", "stringValue": "Ly", "willContinue": True}]}})],
                      _count(LlmResponse.ToolRequestStart, 2), text="Checking.", calls=["call_r_p_0"]),
                 id="gemini-mid-tool-call"),
    pytest.param(Case("gemini", FLAVORS["gemini"],
                      [_g({"text": "Let me", "thought": True}), _g({"text": " think", "thought": True}, usage=G_USAGE)],
                      _count(LlmResponse.Reasoning, 2), reasoning="Let me think", usage=(9, 2)),
                 id="gemini-mid-thinking"),
]

# -- Bedrock -------------------------------------------------------------------------------


def _b(name: str, obj: Dict[str, Any]) -> bytes:
    return event_frame(name, json.dumps(obj).encode())


B_START = _b("messageStart", {"role": "assistant"})


def _b_text(t: str) -> bytes:
    return _b("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": t}})


def _b_tool(i: int, id: str) -> bytes:
    return _b("contentBlockStart", {"contentBlockIndex": i, "start": {"toolUse": {"toolUseId": id, "name": "get_weather"}}})


def _b_args(i: int, piece: str) -> bytes:
    return _b("contentBlockDelta", {"contentBlockIndex": i, "delta": {"toolUse": {"input": piece}}})


def _b_think(t: str) -> bytes:
    return _b("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": t}}})


BEDROCK = [
    pytest.param(Case("bedrock", FLAVORS["bedrock"], [B_START, _b_text("Hel"), _b_text("lo")],
                      _count(LlmResponse.Text, 2), text="Hello"), id="bedrock-mid-text"),
    pytest.param(Case("bedrock", FLAVORS["bedrock"],
                      [B_START, _b_text("Checking."), _b("contentBlockStop", {"contentBlockIndex": 0}),
                       _b_tool(1, "tooluse_1"), _b_args(1, '{"city": "Paris"}'), _b("contentBlockStop", {"contentBlockIndex": 1}),
                       _b_tool(2, "tooluse_2"), _b_args(2, '{"ci')],
                      _count(LlmResponse.ToolRequestArg, 1, id="tooluse_2"), text="Checking.", calls=["tooluse_1"]),
                 id="bedrock-mid-tool-call"),
    pytest.param(Case("bedrock", FLAVORS["bedrock"], [B_START, _b_think("Let me"), _b_think(" think")],
                      _count(LlmResponse.Reasoning, 2), reasoning="Let me think"), id="bedrock-mid-thinking"),
]


def _provider(case: Case, server: LoopbackServer) -> HttpProvider:
    return case.flavor.provider(server)


@pytest.mark.parametrize("case", [*ANTHROPIC, *RESPONSES, *CHAT, *GEMINI, *BEDROCK])
def test_a_cancelled_turn_is_safe_to_send_back(case: Case, server: LoopbackServer) -> None:
    provider = _provider(case, server)
    ctx = Context([ChatMessage.User("What is the weather in Paris?")], tools=[weather()])
    ctx.set_reasoning_effort(ReasoningEffort.LOW)
    server.reply(case.flavor.reply(steps=[*case.steps, Stall(5.0)]))
    stream = provider.stream_response(ctx)
    seen: Chunks = []
    for chunk in stream:
        seen.append(chunk)
        if case.until(seen):
            break  # the caller cancels; the server never finishes the turn
    assert stream.closed
    partial = stream.partial()
    assert not partial.complete
    assert (partial.text, partial.reasoning) == (case.text, case.reasoning)
    assert [c.id for c in partial.tool_calls] == list(case.calls)
    got = None if partial.usage is None else (partial.usage.input_tokens, partial.usage.output_tokens)
    assert got == case.usage

    message = partial.to_message()
    assert message.content == case.text and message.tool_calls == ()
    assert message.reasoning.summary_text is None and message.reasoning.encrypted_content is None
    ctx.add_message(message)
    ctx.add_message(ChatMessage.User("And in Lyon?"))
    server.reply(reply_checking(case.dialect, case.flavor.reply("Sunny.")))
    reply = provider.stream_response(ctx).collect()
    body = server.requests[-1].json()
    assert problems(case.dialect, body) == [], dumps(body)
    assert reply.text == "Sunny." and reply.complete
    sent = json.dumps(body)
    # Nothing of the cut turn but its text went back: no call, no half thought.
    assert "toolu_" not in sent and "call_" not in sent and "tooluse_" not in sent
    if case.reasoning:
        assert case.reasoning not in sent and "Let me" not in sent
    if case.text:
        assert case.text in sent


@pytest.mark.parametrize(
    "dialect,body,word",
    [
        ("anthropic", {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "half", "signature": ""},
            {"type": "tool_use", "id": "t1", "name": "f", "input": {}}]}, {"role": "user", "content": "next"}]},
         "signature"),
        ("anthropic", {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": [
            {"type": "tool_use", "id": "t1", "name": "f", "input": {}}]}, {"role": "user", "content": "next"}]},
         "tool_result"),
        ("responses", {"input": [{"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}]},
         "No tool output"),
        ("responses", {"input": [{"type": "reasoning", "id": "rs", "summary": []},
                                 {"type": "message", "role": "user", "content": "next"}]}, "encrypted_content"),
        ("chat", {"messages": [{"role": "assistant", "content": "", "tool_calls": [{"id": "c1"}]},
                               {"role": "user", "content": "next"}]}, "tool_call_id"),
        ("chat", {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": ""}]},
         "content or tool_calls"),
        ("gemini", {"contents": [{"role": "model", "parts": [{"functionCall": {"name": "f"}}]},
                                 {"role": "user", "parts": [{"text": "next"}]}]}, "function response"),
        ("gemini", {"contents": [{"role": "model", "parts": [{"text": "half", "thought": True}]}]}, "thoughtSignature"),
        ("bedrock", {"messages": [{"role": "assistant", "content": [
            {"reasoningContent": {"reasoningText": {"text": "half"}}},
            {"toolUse": {"toolUseId": "t1", "name": "f", "input": {}}}]}, {"role": "user", "content": [{"text": "n"}]}]},
         "toolResult"),
    ],
)
def test_the_stand_in_refuses_what_the_provider_refuses(dialect: str, body: Dict[str, Any], word: str) -> None:
    found = problems(dialect, body)
    assert any(word in p for p in found), found
