"""RetryPolicy and Retry-After parsing, without I/O."""

from __future__ import annotations

import random
from email.utils import formatdate
from typing import Dict, Optional

import pytest

from llm_sync import RetryPolicy
from llm_sync._retry import parse_retry_after


def test_the_wait_doubles_up_to_the_cap_minus_at_most_the_jitter() -> None:
    policy = RetryPolicy(max_retries=10, backoff_base=0.5, backoff_max=8.0, jitter=0.25)
    random.seed(7)
    for n, full in enumerate([0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]):
        for _ in range(50):
            wait = policy.delay(n)
            assert wait is not None and full * 0.75 <= wait <= full


def test_no_jitter_gives_the_exact_wait() -> None:
    policy = RetryPolicy(max_retries=3, backoff_base=0.1, backoff_max=1.0, jitter=0.0)
    assert [policy.delay(n) for n in range(4)] == [0.1, 0.2, 0.4, None]


def test_retries_stop_at_max_retries() -> None:
    assert RetryPolicy(max_retries=0).delay(0) is None
    policy = RetryPolicy(max_retries=2)
    assert policy.delay(1) is not None and policy.delay(2) is None and policy.delay(5) is None


def test_a_servers_retry_after_replaces_the_backoff_up_to_the_cap() -> None:
    policy = RetryPolicy(max_retries=2, max_retry_after=60.0)
    assert policy.delay(0, retry_after=3.5) == 3.5
    assert policy.delay(0, retry_after=0.0) == 0.0
    assert policy.delay(0, retry_after=-2.0) == 0.0
    assert policy.delay(0, retry_after=60.0) == 60.0
    assert policy.delay(0, retry_after=61.0) is None  # longer than the cap: raise now
    assert policy.delay(2, retry_after=1.0) is None  # out of retries whatever the server says


@pytest.mark.parametrize("kwargs", [{"max_retries": -1}, {"jitter": 1.5}, {"jitter": -0.1}])
def test_bad_settings_are_refused(kwargs: Dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_a_policy_is_an_immutable_value() -> None:
    policy = RetryPolicy(max_retries=4)
    assert policy == RetryPolicy(max_retries=4) and hash(policy) == hash(RetryPolicy(max_retries=4))
    with pytest.raises(AttributeError):
        policy.max_retries = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"Retry-After": "2"}, 2.0),
        ({"retry-after": " 1.5 "}, 1.5),
        ({"RETRY-AFTER": "0"}, 0.0),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),  # the millisecond header wins
        ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),  # an unreadable one is skipped
        ({"retry-after": "whenever"}, None),
        ({"retry-after": ""}, None),
    ],
)
def test_retry_after_headers(headers: Dict[str, str], expected: Optional[float]) -> None:
    assert parse_retry_after(headers) == expected


def test_retry_after_as_an_http_date() -> None:
    now = 1_800_000_000.0
    assert parse_retry_after({"retry-after": formatdate(now + 30, usegmt=True)}, now=now) == 30.0
    assert parse_retry_after({"retry-after": formatdate(now - 30, usegmt=True)}, now=now) == 0.0  # past: now
    assert parse_retry_after({"retry-after": "Fri, 99 Foo 2026 25:61:61 GMT"}, now=now) is None
