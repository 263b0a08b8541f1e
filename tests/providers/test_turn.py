"""The turn kit and the rules it keeps for every provider, on real recordings and on generated turns."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_sync import LlmResponse, StopReason, ToolCallRequest
from llm_sync.providers import (
    Frame,
    ToolCalls,
    Turn,
    _chat,
    _responses,
    anthropic,
    bedrock,
    gemini,
    ollama,
)
from tests.support.invariants import turn_problems
from tests.support.paths import WIRE
from tests.support.recordings import parse, recordings

# --- real recordings -------------------------------------------------------------------------


def _pieces(body: bytes, rng: random.Random) -> List[bytes]:
    cuts = sorted(rng.sample(range(1, len(body)), min(len(body) - 1, rng.randint(1, 40)))) if len(body) > 1 else []
    edges = [0, *cuts, len(body)]
    return [body[a:b] for a, b in zip(edges, edges[1:])]


def test_every_recording_keeps_the_turn_rules_whole_and_split_at_random() -> None:
    paths = [p.values[0] for p in recordings() if p.values[0] is not None]
    if not paths:
        pytest.skip(f"{WIRE} is absent")
    rng = random.Random(20261207)
    calls = 0
    for path in paths:
        body = path.read_bytes()
        for pieces in ([body], _pieces(body, rng), _pieces(body, rng)):
            chunks, error = parse(path, pieces)
            assert turn_problems(chunks, error) == [], (path.name, error)
            calls += sum(isinstance(c, LlmResponse.ToolRequestComplete) for c in chunks)
    assert calls > 0  # the recordings do exercise tool calls


def _calls(chunks: List[Any]) -> Dict[str, Tuple[str, str]]:
    """Call id -> (the joined argument pieces, the completed arguments)."""
    pieces: Dict[str, List[str]] = {}
    done: Dict[str, Tuple[str, str]] = {}
    for c in chunks:
        if isinstance(c, LlmResponse.ToolRequestArg):
            pieces.setdefault(c.id, []).append(c.chunk)
        elif isinstance(c, LlmResponse.ToolRequestComplete):
            done[c.tool_call.id] = ("".join(pieces.get(c.tool_call.id, [])), c.tool_call.arguments)
    return done


def test_anthropic_input_that_arrives_whole_is_streamed_as_one_piece(wire: Path) -> None:
    path = wire / "anthropic" / "vercel_programmatic_tool_calling.ndjson"
    chunks, error = parse(path, [path.read_bytes()])
    assert error is None
    calls = _calls(chunks)
    # The client tool's input came whole in content_block_start: one piece, equal to it.
    whole = [(joined, args) for joined, args in calls.values() if args and args != "{}"]
    assert whole and all(joined == args for joined, args in whole), calls


def _responses_frames(*events: Dict[str, Any]) -> Iterator[Frame]:
    return iter([Frame(e["type"], json.dumps(e)) for e in events])


def test_responses_arguments_done_without_deltas_are_streamed_as_one_piece() -> None:
    # LM Studio (and anything sharing the Responses parser, Codex too) may send no deltas.
    item = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather", "arguments": ""}
    chunks = list(
        _responses.parse_events(
            _responses_frames(
                {"type": "response.created", "response": {"id": "resp_1"}},
                {"type": "response.output_item.added", "output_index": 0, "item": item},
                {"type": "response.function_call_arguments.done", "item_id": "fc_1", "arguments": '{"city":"Paris"}'},
                {"type": "response.output_item.done", "output_index": 0, "item": {**item, "arguments": '{"city":"Paris"}'}},
                {"type": "response.completed", "response": {"id": "resp_1", "status": "completed"}},
            )
        )
    )
    assert chunks == [
        LlmResponse.Start("resp_1"),
        LlmResponse.ToolRequestStart("call_1", "get_weather"),
        LlmResponse.ToolRequestArg("call_1", '{"city":"Paris"}'),
        LlmResponse.ToolRequestComplete(ToolCallRequest("call_1", "get_weather", '{"city":"Paris"}')),
        LlmResponse.Done(StopReason.TOOL_CALLS, "completed"),
    ]


# --- the kit itself --------------------------------------------------------------------------

_ops = st.lists(
    st.one_of(
        st.tuples(st.just("open"), st.integers(0, 3), st.sampled_from(["f", "g", None])),
        st.tuples(st.just("name"), st.integers(0, 3), st.sampled_from(["f", "g"])),
        st.tuples(st.just("add"), st.integers(0, 3), st.sampled_from(['{"a"', ":1", "}", "", "[", '"x"'])),
        st.tuples(st.just("close"), st.integers(0, 3), st.sampled_from([None, '{"a":1}', "{}", "broken"])),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None, database=None)
@given(ops=_ops, cut=st.booleans())
def test_any_sequence_of_tool_call_events_keeps_the_rules(ops: List[Tuple[Any, ...]], cut: bool) -> None:
    turn = Turn()
    out: List[Any] = [turn.start("m", "x-")]
    serial = 0
    for op, key, value in ops:
        if op == "open":
            serial += 1
            out += turn.calls.open(key, f"id{serial}", value)
        elif op == "name":
            out += turn.calls.name(key, value)
        elif op == "add":
            piece = turn.calls.add(key, value)
            if piece is not None:
                out.append(piece)
        else:
            out += turn.calls.close(key, value)
    out += turn.end(StopReason.LENGTH if cut else StopReason.END_TURN, "x")
    assert turn_problems(out) == []
    completed = [c for c in out if isinstance(c, LlmResponse.ToolRequestComplete)]
    assert turn.calls.completed == len(completed)
    if completed and not cut:
        assert out[-1].stop_reason is StopReason.TOOL_CALLS


def test_close_streams_the_rest_when_the_whole_extends_the_pieces() -> None:
    calls = ToolCalls()
    out = calls.open("k", "c1", "f")
    out.append(calls.add("k", '{"a":'))
    out += calls.close("k", '{"a":1}')
    assert [c for c in out if isinstance(c, LlmResponse.ToolRequestArg)] == [
        LlmResponse.ToolRequestArg("c1", '{"a":'),
        LlmResponse.ToolRequestArg("c1", "1}"),
    ]
    # A whole that disagrees with what was streamed: the streamed text stands.
    out = calls.open("j", "c2", "f")
    out.append(calls.add("j", '{"b":2}'))
    out += calls.close("j", '{"b": 2}')
    assert out[-1] == LlmResponse.ToolRequestComplete(ToolCallRequest("c2", "f", '{"b":2}'))


# --- every provider, on generated turns ------------------------------------------------------

Render = Callable[[List[Tuple[str, List[str], bool]]], List[Frame]]


def _sse(event: str, data: Dict[str, Any]) -> Frame:
    return Frame(event, json.dumps(data))


def _anthropic(calls: List[Tuple[str, List[str], bool]]) -> List[Frame]:
    frames = [_sse("message_start", {"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 3}}})]
    for i, (args, pieces, whole) in enumerate(calls):
        block = {"type": "tool_use", "id": f"toolu_{i}", "name": "f", "input": json.loads(args) if whole else {}}
        frames.append(_sse("content_block_start", {"type": "content_block_start", "index": i, "content_block": block}))
        for p in [] if whole else pieces:
            delta = {"type": "input_json_delta", "partial_json": p}
            frames.append(_sse("content_block_delta", {"type": "content_block_delta", "index": i, "delta": delta}))
        frames.append(_sse("content_block_stop", {"type": "content_block_stop", "index": i}))
    frames.append(_sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 5}}))
    frames.append(_sse("message_stop", {"type": "message_stop"}))
    return frames


def _responses_render(calls: List[Tuple[str, List[str], bool]]) -> List[Frame]:
    frames = [_sse("response.created", {"type": "response.created", "response": {"id": "resp_1"}})]
    for i, (args, pieces, whole) in enumerate(calls):
        item = {"type": "function_call", "id": f"fc_{i}", "call_id": f"call_{i}", "name": "f", "arguments": ""}
        frames.append(_sse("x", {"type": "response.output_item.added", "output_index": i, "item": item}))
        for p in [] if whole else pieces:
            frames.append(_sse("x", {"type": "response.function_call_arguments.delta", "item_id": f"fc_{i}", "delta": p}))
        frames.append(_sse("x", {"type": "response.function_call_arguments.done", "item_id": f"fc_{i}", "arguments": args}))
        frames.append(_sse("x", {"type": "response.output_item.done", "output_index": i, "item": {**item, "arguments": args}}))
    frames.append(_sse("x", {"type": "response.completed", "response": {"id": "resp_1", "status": "completed"}}))
    return frames


def _chat_render(calls: List[Tuple[str, List[str], bool]]) -> List[Frame]:
    def chunk(delta: Dict[str, Any], finish: Any = None) -> Frame:
        return _sse("message", {"id": "chatcmpl-1", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    frames = [chunk({"role": "assistant"})]
    for i, (args, pieces, whole) in enumerate(calls):
        first = {"index": i, "id": f"call_{i}", "type": "function", "function": {"name": "f", "arguments": args if whole else ""}}
        frames.append(chunk({"tool_calls": [first]}))
        for p in [] if whole else pieces:
            frames.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": p}}]}))
    frames.append(chunk({}, "tool_calls"))
    frames.append(Frame("message", "[DONE]"))
    return frames


def _bedrock_render(calls: List[Tuple[str, List[str], bool]]) -> List[Frame]:
    frames = [Frame("messageStart", json.dumps({"role": "assistant"}))]
    for i, (args, pieces, whole) in enumerate(calls):
        start = {"contentBlockIndex": i, "start": {"toolUse": {"toolUseId": f"tooluse_{i}", "name": "f"}}}
        frames.append(Frame("contentBlockStart", json.dumps(start)))
        for p in [args] if whole else pieces:
            frames.append(Frame("contentBlockDelta", json.dumps({"contentBlockIndex": i, "delta": {"toolUse": {"input": p}}})))
        frames.append(Frame("contentBlockStop", json.dumps({"contentBlockIndex": i})))
    frames.append(Frame("messageStop", json.dumps({"stopReason": "tool_use"})))
    frames.append(Frame("metadata", json.dumps({"usage": {"inputTokens": 3, "outputTokens": 5, "totalTokens": 8}})))
    return frames


def _gemini_render(calls: List[Tuple[str, List[str], bool]]) -> List[Frame]:
    parts = [{"functionCall": {"name": "f", "args": json.loads(args)}} for args, _, _ in calls]
    event = {"responseId": "r1", "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}]}
    return [Frame("", "data: " + json.dumps(event))]


def _ollama_render(calls: List[Tuple[str, List[str], bool]]) -> List[Frame]:
    tool_calls = [{"function": {"name": "f", "arguments": json.loads(args)}} for args, _, _ in calls]
    return [
        Frame("", json.dumps({"message": {"role": "assistant", "content": "", "tool_calls": tool_calls}, "done": False})),
        Frame("", json.dumps({"message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop"})),
    ]


_PROVIDERS: Dict[str, Tuple[Render, Callable[[Iterator[Frame]], Iterator[LlmResponse]], bool]] = {
    # name: (render, parser, whether the arguments keep the exact text sent)
    "anthropic": (_anthropic, anthropic.parse_events, False),
    "responses": (_responses_render, _responses.parse_events, True),
    "chat": (_chat_render, _chat.parse_events, True),
    "bedrock": (_bedrock_render, bedrock.parse_events, True),
    "gemini": (_gemini_render, gemini.parse_events, False),
    "ollama": (_ollama_render, ollama.parse_events, False),
}

_json_args = st.dictionaries(
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=6),
    st.one_of(st.integers(-5, 5), st.text(max_size=8), st.booleans(), st.none()),
    max_size=4,
).map(lambda d: json.dumps(d, ensure_ascii=False))


@st.composite
def _turns(draw: st.DrawFn) -> List[Tuple[str, List[str], bool]]:
    out = []
    for args in draw(st.lists(_json_args, min_size=1, max_size=3)):
        cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(args) - 1)), max_size=5))))
        edges = [0, *[c for c in cuts if c < len(args)], len(args)]
        out.append((args, [args[a:b] for a, b in zip(edges, edges[1:])], draw(st.booleans())))
    return out


@pytest.mark.parametrize("name", sorted(_PROVIDERS))
def test_generated_tool_calls_keep_the_rules_for_every_provider(name: str) -> None:
    render, parse_events, exact = _PROVIDERS[name]

    @settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(turn=_turns())
    def check(turn: List[Tuple[str, List[str], bool]]) -> None:
        chunks = list(parse_events(iter(render(turn))))
        assert turn_problems(chunks) == [], chunks
        completed = [c.tool_call.arguments for c in chunks if isinstance(c, LlmResponse.ToolRequestComplete)]
        assert len(completed) == len(turn)
        for got, (args, _, _) in zip(completed, turn):
            assert json.loads(got or "{}") == json.loads(args)  # "" is a call without arguments
            if exact:
                assert got == args
        assert chunks[-1].stop_reason is StopReason.TOOL_CALLS

    check()
