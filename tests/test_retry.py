"""RetryPolicy and Retry-After parsing, without I/O: bad arguments refused early, a server's wait bounded."""

from __future__ import annotations

import random
from email.utils import formatdate
from typing import Any, Dict, Optional

import pytest

from llm_sync import RateLimitedError, RetryPolicy, ServerError
from llm_sync._retry import MAX_RETRY_AFTER, clamp_retry_after, parse_retry_after


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


WEEK = 7 * 24 * 3600.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"Retry-After": " 1.5 "}, 1.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after": "1e9"}, WEEK),
        ({"retry-after": "inf"}, WEEK),
        ({"retry-after": "-5"}, 0.0),
        ({"retry-after": "nan"}, None),
        ({"retry-after-ms": "nan", "retry-after": "3"}, 3.0),  # a NaN falls back to the other header
        ({"retry-after-ms": "-inf"}, 0.0),
        ({"retry-after": "Fri, 31 Dec 9999 23:59:59 GMT"}, WEEK),
        ({"retry-after": "not a date"}, None),
        ({}, None),
    ],
)
def test_retry_after_is_bounded(headers: Dict[str, str], expected: Any) -> None:
    assert parse_retry_after(headers) == expected


def test_errors_bound_what_they_are_given() -> None:
    # In-band values (Gemini's retryDelay, Codex's resets_in_seconds) reach the errors directly.
    assert MAX_RETRY_AFTER == WEEK
    assert RateLimitedError("x", retry_after=float("inf")).retry_after == WEEK
    assert RateLimitedError("x", retry_after=1e12, resets_in_seconds=1e12).resets_in_seconds == 1e12
    assert ServerError("x", retry_after=float("nan")).retry_after is None
    assert ServerError("x", retry_after=-1).retry_after == 0.0
    assert clamp_retry_after(None) is None and clamp_retry_after(30) == 30.0


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"max_retries": -1}, ValueError, "max_retries must be >= 0"),
        ({"max_retries": 2.5}, TypeError, "max_retries must be a whole number"),
        ({"max_retries": "3"}, TypeError, "max_retries must be a whole number"),
        ({"max_retries": True}, TypeError, "max_retries must be a whole number"),
        ({"backoff_base": float("nan")}, ValueError, "backoff_base must be a finite number"),
        ({"backoff_max": float("inf")}, ValueError, "backoff_max must be a finite number"),
        ({"backoff_base": -1}, ValueError, "backoff_base must be a finite number >= 0"),
        ({"jitter": 2}, ValueError, "jitter must be between 0 and 1"),
        ({"jitter": float("nan")}, ValueError, "jitter must be a finite number"),
        ({"max_retry_after": "60"}, TypeError, "max_retry_after must be a number of seconds"),
    ],
)
def test_bad_policies_are_refused_with_the_reason(kwargs: Dict[str, Any], error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        RetryPolicy(**kwargs)


def test_a_large_retry_count_never_overflows_the_backoff() -> None:
    policy = RetryPolicy(max_retries=5000, jitter=0.0)
    assert policy.backoff(2000) == policy.backoff_max
    assert policy.delay(4999) == policy.backoff_max


def test_providers_refuse_bad_retry_counts_at_construction() -> None:
    from tests.support.toy import ToyProvider

    with pytest.raises(TypeError, match="max_retries"):
        ToyProvider(max_retries="2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_retries"):
        ToyProvider().with_max_retries(-3)
