"""Timeouts: bad values are refused when given, with the reason and the fix."""

from __future__ import annotations

import re
from typing import Any

import pytest

from llm_sync import Timeouts
from llm_sync._timeouts import as_timeouts
from tests.support.toy import ToyProvider


@pytest.mark.parametrize(
    ("value", "error", "words"),
    [
        (float("nan"), ValueError, "must be a finite number of seconds, got nan; pass None for no limit"),
        (float("inf"), ValueError, "must be a finite number of seconds, got inf; pass None for no limit"),
        (-1, ValueError, "must be positive or None, got -1"),
        (0, ValueError, "must be positive or None, got 0"),
        (1e300, ValueError, "of 1e+300 s is beyond any useful deadline; pass None for no limit"),
        ("30", TypeError, "must be a number of seconds or None, got '30'"),
        (True, TypeError, "must be a number of seconds or None, got True"),
    ],
)
@pytest.mark.parametrize("name", ["connect", "first_event", "idle", "total"])
def test_each_deadline_is_checked(name: str, value: Any, error: type, words: str) -> None:
    with pytest.raises(error, match=re.escape(f"timeout {name} {words}")):
        Timeouts(**{name: value})


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -2.0, 0, 1e300])
def test_a_number_given_as_the_timeout_is_checked_at_construction(value: float) -> None:
    with pytest.raises(ValueError, match="timeout"):
        as_timeouts(value)
    with pytest.raises(ValueError, match="timeout"):
        ToyProvider(timeout=value)
    with pytest.raises(ValueError, match="timeout"):
        ToyProvider().with_timeout(value)


def test_good_values_pass() -> None:
    t = Timeouts(connect=1, first_event=2.5, idle=None, total=1e6)
    assert (t.connect, t.first_event, t.idle, t.total) == (1, 2.5, None, 1e6)
    assert as_timeouts(3).idle == 3.0 and as_timeouts(None) == Timeouts()
