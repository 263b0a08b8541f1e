"""The event JSON parser gives exactly what json.loads gives: values, and errors with their words."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llm_sync._json import loads_event

CASES = [
    '{"choices":[{"delta":{"content":"Caf\\u00e9 \\n"}}]}',
    '[1, 2.5, null, true, "x"]',
    '"a string"',
    "NaN",
    "12",
    '  {"padded": true}  ',  # surrounding whitespace: json.loads allows it
    '{"a": 1}\n',
    "\ufeff{}",  # a BOM: json.loads names it
    '{"a": 1}{"b": 2}',  # extra data
    '{"a": ',  # cut off
    "",
    "not json",
    '{"a": "\\ud800"}',  # a lone surrogate escape is valid JSON
]


def outcome(fn: Any, text: str) -> Any:
    try:
        return ("value", fn(text))
    except ValueError as exc:
        return (type(exc), str(exc))


@pytest.mark.parametrize("text", CASES)
def test_the_same_value_or_the_same_error_as_json_loads(text: str) -> None:
    expected = outcome(json.loads, text)
    assert outcome(loads_event, text) == expected


def test_nan_compares_as_nan() -> None:
    value = loads_event('{"x": NaN}')["x"]
    assert value != value
