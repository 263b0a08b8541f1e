"""Structured output shared by every provider: OutputSchema, reading the reply (``.parsed``), the request plan, the forced-tool read-back."""

from __future__ import annotations

import json
import pickle
from typing import Any, Iterator, List

import pytest

from llm_sync import (
    ApiRequestError,
    ChatMessage,
    Context,
    LlmError,
    LlmResponse,
    OutputSchema,
    OutputSchemaError,
    StopReason,
    StructuredOutputError,
    ToolCallRequest,
    ToolDefinition,
)
from llm_sync._structured import StructuredSupport, json_instruction, parse_reply, plan, read_answer
from llm_sync._transport._frame import Frame
from llm_sync.testing import FakeLlmProvider, llm_response
from tests.support.invariants import turn_problems

CITY = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer", "minimum": 0}},
    "required": ["city", "population"],
    "additionalProperties": False,
}
WEATHER = ToolDefinition("get_weather", "Weather for a city.", {"type": "object", "properties": {"city": {"type": "string"}}})
ALL = StructuredSupport("native", frozenset({"auto", "none", "required", "tool"}), strict=True)


# ---------------------------------------------------------------------------
# OutputSchema


def test_output_schema_from_a_dict_or_json_text_is_one_value() -> None:
    a = OutputSchema("city", CITY)
    b = OutputSchema("city", json.dumps(CITY, indent=2))
    assert a == b and hash(a) == hash(b) and a.schema == CITY and a.strict is True
    assert a != OutputSchema("city", CITY, strict=False) and a != OutputSchema("town", CITY)
    assert a.text == json.dumps(CITY, separators=(",", ":"))
    assert OutputSchema.from_dict(a.to_dict()) == a
    assert pickle.loads(pickle.dumps(a)) == a
    with pytest.raises(AttributeError):
        a.name = "x"  # type: ignore[misc]


def test_output_schema_keeps_a_private_copy() -> None:
    mine = {"type": "object", "properties": {"a": {"type": "string"}}}
    schema = OutputSchema("out", mine)
    mine["properties"]["a"]["type"] = "integer"
    assert schema.schema["properties"]["a"]["type"] == "string"
    schema.to_dict()["schema"]["type"] = "array"
    assert schema.schema["type"] == "object"


@pytest.mark.parametrize(
    ("schema", "path", "words"),
    [
        ({"type": "object", "properties": {"age": {"type": "int"}}}, "/properties/age/type", "'int' is not valid"),
        ({"type": "object", "required": "city"}, "/required", "is not of type 'array'"),
        ({"properties": {"a": {"minimum": "zero"}}}, "/properties/a/minimum", "is not of type 'number'"),
        ([1, 2], "/", "must be a JSON object"),
        ('{"type": ', None, "not valid JSON"),
    ],
)
def test_a_bad_schema_is_refused_at_once_naming_the_path(schema: Any, path: Any, words: str) -> None:
    ctx = Context()
    given = schema if isinstance(schema, str) else json.dumps(schema) if isinstance(schema, list) else schema
    with pytest.raises(OutputSchemaError) as info:
        ctx.set_output_schema(given, name="person")
    err = info.value
    assert err.path == path and words in str(err) and "'person'" in str(err)
    if path and path != "/":
        assert f"at {path}:" in str(err)
    assert isinstance(err, LlmError) and isinstance(err, ValueError) and not err.retryable
    assert ctx.output_schema is None  # nothing was set


def test_bad_names_and_types() -> None:
    with pytest.raises(OutputSchemaError, match="1-64 letters"):
        OutputSchema("has space", CITY)
    with pytest.raises(OutputSchemaError, match="1-64 letters"):
        OutputSchema("x" * 65, CITY)
    with pytest.raises(TypeError):
        OutputSchema("ok", 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        OutputSchema("ok", CITY, strict="yes")  # type: ignore[arg-type]
    with pytest.raises(OutputSchemaError, match="JSON-serialisable"):
        OutputSchema("ok", {"type": "object", "default": object()})


# ---------------------------------------------------------------------------
# Context


def test_context_keeps_schema_and_choice_through_copy_dict_equality_and_compaction() -> None:
    ctx = Context([ChatMessage.System("s"), ChatMessage.User("u")], [WEATHER])
    ctx.set_output_schema(CITY, name="city", strict=False)
    ctx.set_tool_choice("get_weather")
    assert ctx.output_schema == OutputSchema("city", CITY, strict=False)
    assert ctx.tool_choice == "get_weather"
    data = json.loads(json.dumps(ctx.to_dict()))
    assert data["output_schema"] == {"name": "city", "schema": CITY, "strict": False}
    assert data["tool_choice"] == "get_weather"
    assert Context.from_dict(data) == ctx
    snap = ctx.copy()
    assert snap == ctx
    ctx.set_output_schema(None)
    ctx.set_tool_choice(None)
    assert snap.output_schema is not None and snap.tool_choice == "get_weather" and snap != ctx
    assert "output_schema" not in ctx.to_dict() and "tool_choice" not in ctx.to_dict()
    compacted = snap.with_compacted_summary("sum")
    assert compacted.output_schema == snap.output_schema and compacted.tool_choice == "get_weather"
    assert "tool_choice='get_weather'" in repr(snap) and "OutputSchema(" in repr(snap)


def test_tool_choice_is_checked_for_shape_now_and_for_names_at_request_time() -> None:
    ctx = Context()
    for bad in ("", 3, ["auto"]):
        with pytest.raises(TypeError):
            ctx.set_tool_choice(bad)  # type: ignore[arg-type]
    ctx.set_tool_choice("get_weather")  # no tools yet: fine until a request is built
    with pytest.raises(ApiRequestError, match=r"names no tool of the context \(its tools: none\)"):
        plan(ctx, ALL, "X")
    ctx.set_tools([WEATHER])
    assert plan(ctx, ALL, "X") == (ctx, None)


def test_strict_tools_survive_the_round_trip() -> None:
    strict = ToolDefinition("f", "d", {"type": "object"}, strict=True)
    assert strict != ToolDefinition("f", "d", {"type": "object"})
    assert strict.to_dict()["strict"] is True and "strict" not in WEATHER.to_dict()
    assert ToolDefinition.from_dict(strict.to_dict()) == strict
    with pytest.raises(TypeError):
        ToolDefinition("f", "d", {"type": "object"}, strict=1)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Reading the reply


CITY_SCHEMA = OutputSchema("city", CITY)


def read(text: str, stop: Any = StopReason.END_TURN, complete: bool = True, schema: Any = CITY_SCHEMA) -> Any:
    return parse_reply(text, stop_reason=stop, complete=complete, schema=schema)


def test_a_value_that_closed_before_the_token_limit_is_read() -> None:
    # llama.cpp's grammar lets a model pad a finished object with whitespace up to max_tokens.
    assert read('{"city": "Paris", "population": 1}', StopReason.LENGTH) == {"city": "Paris", "population": 1}
    assert read('"done"', StopReason.LENGTH, schema=None) == "done"
    with pytest.raises(StructuredOutputError) as info:
        read('{"city": "Paris"}', StopReason.LENGTH)
    assert info.value.reason == "schema_mismatch"  # closed, so it is checked like any other


def test_a_valid_reply_is_its_json_value() -> None:
    assert read('{"city": "Paris", "population": 2102650}') == {"city": "Paris", "population": 2102650}
    assert read('```json\n{"city": "Oslo", "population": 1}\n```') == {"city": "Oslo", "population": 1}
    assert read("[1, 2]", schema=None) == [1, 2]  # no schema: parsed, not checked


@pytest.mark.parametrize(
    ("text", "stop", "complete", "reason", "path"),
    [
        ('{"city": "Par', StopReason.LENGTH, True, "truncated", None),
        ('{"city": "Paris", "population": 1', StopReason.LENGTH, True, "truncated", None),
        ("[1, 2", StopReason.LENGTH, True, "truncated", None),
        ("12", StopReason.LENGTH, True, "truncated", None),
        ('{"city": "Paris", "population": 1}', None, False, "truncated", None),
        ('{"city": "Par', None, False, "truncated", None),
        ("I can't help with that.", StopReason.CONTENT_FILTER, True, "refused", None),
        ("Paris has 2 million people.", StopReason.END_TURN, True, "invalid_json", None),
        ("", StopReason.TOOL_CALLS, True, "invalid_json", None),
        ('{"city": "Paris"} and more', StopReason.END_TURN, True, "invalid_json", None),
        ('{"city": "Paris"}', StopReason.END_TURN, True, "schema_mismatch", "/"),
        ('{"city": "Paris", "population": -3}', StopReason.END_TURN, True, "schema_mismatch", "/population"),
        ('{"city": 7, "population": 3}', StopReason.END_TURN, True, "schema_mismatch", "/city"),
        ('{"city": "P", "population": 3, "x": 1}', StopReason.END_TURN, True, "schema_mismatch", "/"),
    ],
)
def test_each_failure_has_its_reason_path_and_text(text: str, stop: Any, complete: bool, reason: str, path: Any) -> None:
    with pytest.raises(StructuredOutputError) as info:
        read(text, stop, complete)
    err = info.value
    assert (err.reason, err.path, err.text) == (reason, path, text)
    assert isinstance(err, LlmError) and isinstance(err, ValueError)
    assert err.retryable is (reason in ("invalid_json", "schema_mismatch"))
    assert not isinstance(err.__cause__, json.JSONDecodeError)  # never a bare decode error


def test_the_messages_say_what_to_do() -> None:
    with pytest.raises(StructuredOutputError, match="raise max_tokens"):
        read('{"ci', StopReason.LENGTH)
    with pytest.raises(StructuredOutputError, match="tool calls: send their results"):
        read("", StopReason.TOOL_CALLS)
    with pytest.raises(StructuredOutputError, match=r"at /population: -3 is less than the minimum of 0"):
        read('{"city": "Paris", "population": -3}')
    err = pickle.loads(pickle.dumps(_error('{"city": 1}')))
    assert err.reason == "schema_mismatch" and err.path == "/"


def _error(text: str) -> StructuredOutputError:
    try:
        read(text)
    except StructuredOutputError as e:
        return e
    raise AssertionError("no error")


def test_collect_parsed_uses_the_streams_schema_and_names_provider_and_model() -> None:
    fake = FakeLlmProvider(
        [
            llm_response().text('{"city": "Lima", ', '"population": 9751717}').build(StopReason.END_TURN),
            llm_response().text('{"city": "Lima"}').build(StopReason.END_TURN),
        ]
    )
    ctx = Context([ChatMessage.User("Largest city of Peru?")])
    ctx.set_output_schema(CITY, name="city")
    reply = fake.stream_response(ctx).collect()
    assert reply.output_schema == OutputSchema("city", CITY)
    assert reply.parsed == {"city": "Lima", "population": 9751717}
    assert reply.parsed is reply.parsed  # read once
    bad = fake.stream_response(ctx).collect()
    with pytest.raises(StructuredOutputError) as info:
        _ = bad.parsed
    assert info.value.reason == "schema_mismatch" and (info.value.provider, info.value.model) == ("fake", "Fake LLM")


# ---------------------------------------------------------------------------
# The plan


def with_schema(*tools: ToolDefinition, choice: Any = None, schema: Any = CITY) -> Context:
    ctx = Context([ChatMessage.User("x")], tools)
    ctx.set_output_schema(schema, name="city")
    ctx.set_tool_choice(choice)
    return ctx


def test_native_route_leaves_the_context_alone() -> None:
    ctx = with_schema(WEATHER, choice="required")
    assert plan(ctx, ALL, "X") == (ctx, None)


def test_forced_tool_route_adds_the_tool_forces_it_and_clears_the_schema() -> None:
    support = StructuredSupport("tool", ALL.choices, strict=True)
    ctx = with_schema()
    out, answer = plan(ctx, support, "X")
    assert answer == "city" and out is not ctx and ctx.output_schema is not None  # the caller's is untouched
    assert out.output_schema is None and out.tool_choice == "city"
    (tool,) = out.tools
    assert tool.name == "city" and tool.schema == CITY and tool.strict
    # With the caller's tools: they stay callable, and some call is required.
    out, _ = plan(with_schema(WEATHER), support, "X")
    assert [t.name for t in out.tools] == ["get_weather", "city"] and out.tool_choice == "required"
    out, _ = plan(with_schema(WEATHER, choice="get_weather"), support, "X")
    assert out.tool_choice == "get_weather"
    # A provider without strict tools gets a plain one.
    out, _ = plan(with_schema(), StructuredSupport("tool", ALL.choices, strict=False), "X")
    assert not out.tools[0].strict


@pytest.mark.parametrize(
    ("ctx", "support", "words"),
    [
        (with_schema(choice="none"), StructuredSupport("tool", ALL.choices), "rules out the forced tool"),
        (with_schema(ToolDefinition("city", "", {"type": "object"})), StructuredSupport("tool", ALL.choices), "pass another name="),
        (with_schema(schema={"type": "array"}), StructuredSupport("tool", ALL.choices), "not an object schema"),
        (with_schema(), StructuredSupport(None), "no way to send an output schema"),
        (with_schema(WEATHER, choice="required"), StructuredSupport("native", frozenset({"auto", "none"})), "cannot express tool_choice 'required'"),
        (with_schema(choice="required"), ALL, "needs at least one tool"),
        (Context(tools=[ToolDefinition("f", "", {"type": "object"}, strict=True)]), StructuredSupport("native"), "strict=True on 'f'"),
        (with_schema(), StructuredSupport("tool", frozenset({"auto"})), "cannot express tool_choice 'city'"),
    ],
)
def test_what_cannot_be_sent_is_refused_before_sending(ctx: Context, support: StructuredSupport, words: str) -> None:
    with pytest.raises(ApiRequestError, match=words):
        plan(ctx, support, "X")


def test_a_named_choice_becomes_that_one_tool_required_where_only_words_are_taken() -> None:
    other = ToolDefinition("get_time", "", {"type": "object"})
    ctx = Context([], [WEATHER, other])
    ctx.set_tool_choice("get_time")
    out, answer = plan(ctx, StructuredSupport("native", frozenset({"auto", "none", "required"})), "X")
    assert answer is None and [t.name for t in out.tools] == ["get_time"] and out.tool_choice == "required"
    assert [t.name for t in ctx.tools] == ["get_weather", "get_time"]


def test_auto_and_none_without_tools_are_nothing_to_send() -> None:
    for choice in ("auto", "none"):
        ctx = Context()
        ctx.set_tool_choice(choice)
        assert plan(ctx, StructuredSupport("native", frozenset()), "X") == (ctx, None)


def test_support_values_are_checked() -> None:
    with pytest.raises(ValueError):
        StructuredSupport("xml")
    with pytest.raises(ValueError):
        StructuredSupport("native", frozenset({"any"}))
    assert "JSON Schema, named 'city'" in json_instruction(OutputSchema("city", CITY))


# ---------------------------------------------------------------------------
# The forced tool, read back


def chunks_of(turn: List[LlmResponse], name: str = "city") -> List[LlmResponse]:
    def parse(frames: Iterator[Frame]) -> Iterator[LlmResponse]:
        return iter(turn)

    return list(read_answer(parse, name)(iter(())))


def test_the_answer_tools_call_becomes_text_and_the_turn_ends_normally() -> None:
    turn = (
        llm_response("m")
        .reasoning("thinking")
        .tool_call("call_1", "city", ['{"city": ', '"Lima", "population": 1}'])
        .usage(10, 5)
        .build(StopReason.TOOL_CALLS)
    )
    got = chunks_of(turn)
    assert [type(c).__name__ for c in got] == ["Start", "Reasoning", "Text", "Text", "Usage", "Done"]
    assert "".join(c.chunk for c in got if isinstance(c, LlmResponse.Text)) == '{"city": "Lima", "population": 1}'
    done = got[-1]
    assert isinstance(done, LlmResponse.Done) and done.stop_reason is StopReason.END_TURN
    assert done.raw_stop_reason == "tool_calls"  # the provider's own word stays
    assert turn_problems(got, None) == []


def test_other_tools_pass_through_and_keep_tool_calls() -> None:
    turn = llm_response("m").tool_call("c1", "get_weather", ['{"city": "Oslo"}']).build(StopReason.TOOL_CALLS)
    got = chunks_of(turn)
    assert got == turn
    both = (
        llm_response("m")
        .tool_call("c1", "get_weather", ["{}"])
        .tool_call("c2", "city", ['{"city": "x", "population": 2}'])
        .build(StopReason.TOOL_CALLS)
    )
    got = chunks_of(both)
    done = got[-1]
    assert isinstance(done, LlmResponse.Done) and done.stop_reason is StopReason.TOOL_CALLS
    assert [c.tool_call.name for c in got if isinstance(c, LlmResponse.ToolRequestComplete)] == ["get_weather"]


def test_a_cut_answer_stays_cut() -> None:
    turn: List[LlmResponse] = [
        LlmResponse.Start("m"),
        LlmResponse.ToolRequestStart("c1", "city"),
        LlmResponse.ToolRequestArg("c1", '{"city": "Li'),
        LlmResponse.Done(StopReason.LENGTH, "max_tokens"),
    ]
    got = chunks_of(turn)
    assert [type(c).__name__ for c in got] == ["Start", "Text", "Done"]
    with pytest.raises(StructuredOutputError) as info:
        read('{"city": "Li', got[-1].stop_reason)  # type: ignore[attr-defined]
    assert info.value.reason == "truncated"


def test_a_completion_without_start_is_read_whole() -> None:
    turn: List[LlmResponse] = [
        LlmResponse.Start("m"),
        LlmResponse.ToolRequestComplete(ToolCallRequest("c1", "city", '{"a": 1}')),
        LlmResponse.Done(StopReason.TOOL_CALLS, "tool_use"),
    ]
    got = chunks_of(turn)
    assert got[1] == LlmResponse.Text('{"a": 1}') and got[2].stop_reason is StopReason.END_TURN  # type: ignore[attr-defined]
