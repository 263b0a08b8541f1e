"""Tests for tool definitions, tool calls and their results."""

from __future__ import annotations

import dataclasses
import json
import pickle
import subprocess
import sys

import pytest

from llm_sync import (
    LlmResponse,
    ToolArgumentsError,
    ToolCallError,
    ToolCallRequest,
    ToolCallResult,
    ToolDefinition,
    ToolParameterParsingError,
)

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {
        "location": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
            "required": ["city"],
        },
        "days": {"type": "integer", "minimum": 1},
    },
    "required": ["location"],
}


def weather_tool() -> ToolDefinition:
    return ToolDefinition("get_weather", "Weather forecast for a city", WEATHER_SCHEMA)


# -- ToolDefinition ------------------------------------------------------------


def test_parameters_from_dict_and_from_text_are_the_same_canonical_text() -> None:
    from_dict = ToolDefinition("t", "d", {"type": "object", "properties": {"a": {"type": "string"}}})
    from_text = ToolDefinition("t", "d", '{ "type" : "object",\n "properties": {"a": {"type": "string"}} }')
    assert from_dict.parameters == from_text.parameters == '{"type":"object","properties":{"a":{"type":"string"}}}'
    assert from_dict == from_text
    assert hash(from_dict) == hash(from_text)


def test_parameters_keep_key_order_and_unicode() -> None:
    tool = ToolDefinition("t", "d", {"properties": {"zeta": {"description": "ünïcode"}, "alpha": {}}})
    assert tool.parameters == '{"properties":{"zeta":{"description":"ünïcode"},"alpha":{}}}'


def test_schema_is_the_parsed_parameters_and_is_cached() -> None:
    tool = weather_tool()
    assert tool.schema == WEATHER_SCHEMA
    assert tool.schema is tool.schema


def test_definition_is_frozen_and_picklable() -> None:
    tool = ToolDefinition("t", "d", "{}", server="files")
    with pytest.raises(dataclasses.FrozenInstanceError):
        tool.name = "x"  # type: ignore[misc]
    _ = tool.schema  # the cache entry must not break pickling or equality
    again = pickle.loads(pickle.dumps(tool))
    assert again == tool and again.server == "files"


def test_invalid_json_names_the_tool() -> None:
    with pytest.raises(ToolParameterParsingError) as info:
        ToolDefinition("search_docs", "d", '{"type": "object",')
    assert info.value.tool_name == "search_docs"
    assert "search_docs" in str(info.value)
    assert "not valid JSON" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_non_object_schema_is_refused() -> None:
    with pytest.raises(ToolParameterParsingError, match="JSON object") as info:
        ToolDefinition("t", "d", "[1, 2]")
    assert info.value.path == "/"


@pytest.mark.parametrize("kind", ["string", "array", ["object", "null"]])
def test_a_top_level_schema_that_is_not_an_object_is_refused_with_the_rule(kind: object) -> None:
    with pytest.raises(ToolParameterParsingError) as info:
        ToolDefinition("lookup", "d", {"type": kind, "items": {}})
    err = info.value
    assert (err.tool_name, err.path) == ("lookup", "/type")
    message = str(err)
    assert 'the top-level schema must describe an object ("type": "object")' in message
    assert "input_schema.type must be 'object'" in message and "invalid_function_parameters" in message
    # No "type" at all is left to the providers' defaults (a tool without arguments often says {}).
    assert ToolDefinition("t", "d", {}).schema == {}


def test_invalid_schema_names_the_tool_and_the_path() -> None:
    with pytest.raises(ToolParameterParsingError) as info:
        ToolDefinition("bad_tool", "d", {"type": "object", "properties": {"x": {"type": "strin"}}})
    err = info.value
    assert err.tool_name == "bad_tool"
    assert err.path == "/properties/x/type"
    assert "bad_tool" in str(err) and "/properties/x/type" in str(err)


def test_schema_draft_follows_dollar_schema() -> None:
    draft7 = "http://json-schema.org/draft-07/schema#"
    # An array "items" (tuple validation) is valid in draft 7 and not in 2020-12, the default.
    ok = ToolDefinition("t", "d", {"$schema": draft7, "type": "object", "properties": {"p": {"items": [{}]}}})
    assert ok.schema["$schema"] == draft7
    with pytest.raises(ToolParameterParsingError) as default:
        ToolDefinition("t", "d", {"type": "object", "properties": {"p": {"items": [{}]}}})
    assert default.value.path == "/properties/p/items"
    with pytest.raises(ToolParameterParsingError) as info:
        ToolDefinition("t", "d", {"$schema": draft7, "properties": {"n": {"minLength": -1}}})
    assert info.value.path == "/properties/n/minLength"


def test_wrong_argument_types_raise_type_error() -> None:
    with pytest.raises(TypeError):
        ToolDefinition("t", "d", 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ToolDefinition("", "d", "{}")


def test_definition_json_round_trip() -> None:
    tool = ToolDefinition("t", "d", WEATHER_SCHEMA, server="mcp-weather")
    data = json.loads(json.dumps(tool.to_dict()))
    assert data == {"name": "t", "description": "d", "parameters": tool.parameters, "server": "mcp-weather"}
    assert ToolDefinition.from_dict(data) == tool


def test_estimated_bytes_counts_name_description_parameters() -> None:
    assert ToolDefinition("calculate", "Do some math", "{}").estimated_bytes() == 9 + 12 + 2


def test_import_does_not_load_jsonschema() -> None:
    code = "import sys, llm_sync; print('jsonschema' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- ToolCallRequest -------------------------------------------------------------


def test_parsed_arguments() -> None:
    assert ToolCallRequest("1", "t", '{"a": 1}').parsed_arguments() == {"a": 1}
    assert ToolCallRequest("1", "t", "").parsed_arguments() == {}
    assert ToolCallRequest("1", "t", "  ").parsed_arguments() == {}


def test_invalid_argument_json_names_the_tool() -> None:
    with pytest.raises(ToolArgumentsError) as info:
        ToolCallRequest("1", "get_weather", '{"city": ').parsed_arguments()
    assert info.value.tool_name == "get_weather"
    assert "get_weather" in str(info.value)


def test_non_object_arguments_are_refused() -> None:
    with pytest.raises(ToolArgumentsError, match="JSON object"):
        ToolCallRequest("1", "t", "[1]").parsed_arguments()


def test_validate_returns_the_parsed_arguments() -> None:
    call = ToolCallRequest("1", "get_weather", '{"location": {"city": "Paris"}, "days": 2}')
    assert call.validate(weather_tool()) == {"location": {"city": "Paris"}, "days": 2}


def test_validate_names_the_failing_field() -> None:
    tool = weather_tool()
    with pytest.raises(ToolArgumentsError) as info:
        ToolCallRequest("1", "get_weather", '{"location": {"city": 3}}').validate(tool)
    assert info.value.path == "/location/city"
    assert "/location/city" in str(info.value)
    assert info.value.tool_name == "get_weather"

    with pytest.raises(ToolArgumentsError, match="'city' is a required property") as missing:
        ToolCallRequest("1", "get_weather", '{"location": {}}').validate(tool)
    assert missing.value.path == "/location"

    with pytest.raises(ToolArgumentsError, match="/days"):
        ToolCallRequest("1", "get_weather", '{"location": {"city": "Oslo"}, "days": 0}').validate(tool)


def test_validate_empty_arguments_against_required_fields() -> None:
    with pytest.raises(ToolArgumentsError, match="'location' is a required property"):
        ToolCallRequest("1", "get_weather", "").validate(weather_tool())


def test_validate_refuses_a_different_tool() -> None:
    with pytest.raises(ToolArgumentsError, match="other"):
        ToolCallRequest("1", "other", "{}").validate(weather_tool())


def test_request_json_round_trip_and_response_chunk() -> None:
    call = ToolCallRequest("call_1", "get_weather", '{"location": {"city": "Paris"}}')
    assert call.to_dict() == {"id": "call_1", "name": "get_weather", "arguments": call.arguments}
    assert ToolCallRequest.from_dict(json.loads(json.dumps(call.to_dict()))) == call
    chunk = LlmResponse.ToolRequestComplete(call)
    again = LlmResponse.from_dict(json.loads(json.dumps(chunk.to_dict())))
    assert again == chunk
    assert isinstance(again, LlmResponse.ToolRequestComplete) and again.tool_call == call


# -- results ---------------------------------------------------------------------


def test_results_from_request() -> None:
    call = ToolCallRequest("c1", "t", '{"x": 1}')
    ok = ToolCallResult.from_request(call, "42")
    assert ok == ToolCallResult("c1", "t", '{"x": 1}', "42")
    err = ToolCallError.from_request(call, "boom")
    assert err == ToolCallError("c1", "t", '{"x": 1}', "boom")


def test_results_json_round_trip() -> None:
    ok = ToolCallResult("c1", "t", "{}", "done")
    err = ToolCallError("c2", "t", None, "no arguments")
    assert ok.to_dict() == {"id": "c1", "name": "t", "arguments": "{}", "result": "done"}
    assert err.to_dict() == {"id": "c2", "name": "t", "arguments": None, "error": "no arguments"}
    assert ToolCallResult.from_dict(json.loads(json.dumps(ok.to_dict()))) == ok
    assert ToolCallError.from_dict(json.loads(json.dumps(err.to_dict()))) == err


def test_result_estimated_bytes() -> None:
    assert ToolCallResult("id-not-counted", "ab", "cde", "fgh").estimated_bytes() == 8
    assert ToolCallError("id", "ab", None, "é").estimated_bytes() == 4
