"""Retries per framing: waits honoured and capped, the deadline respected, never a re-send after content."""

from __future__ import annotations

import time

import pytest

from llm_sync import (
    Context,
    InvalidApiKeyError,
    LlmError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
    Timeouts,
)
from tests.support.faults import (
    FLAVORS,
    Flavor,
    assert_clean_turn,
    chunks_of,
    fast_retries,
    flavor_params,
    http_date,
    run,
)
from tests.support.server import LoopbackServer, Reply

ALL = flavor_params()


def rate_limited(flavor: Flavor, **headers: str) -> Reply:
    return Reply.json(flavor.error_json(429), status=429, headers=headers)


@pytest.mark.parametrize("flavor", ALL)
def test_429_retry_after_seconds_is_waited_then_retried(server: LoopbackServer, flavor: Flavor) -> None:
    server.reply(rate_limited(flavor, **{"retry-after": "0.3"}), flavor.reply("after ", "the wait"))
    t0 = time.monotonic()
    chunks = chunks_of(fast_retries(flavor.provider(server), max_retries=2))
    took = time.monotonic() - t0
    assert_clean_turn(chunks, "after the wait")
    assert 0.28 <= took <= 0.3 + 0.6, took
    assert len(server.requests) == 2


@pytest.mark.parametrize("flavor", ALL)
def test_429_retry_after_ms_is_waited_then_retried(server: LoopbackServer, flavor: Flavor) -> None:
    # retry-after-ms wins over a (much longer) Retry-After.
    server.reply(rate_limited(flavor, **{"retry-after-ms": "200", "retry-after": "30"}), flavor.reply("ms"))
    t0 = time.monotonic()
    chunks = chunks_of(fast_retries(flavor.provider(server), max_retries=2))
    took = time.monotonic() - t0
    assert_clean_turn(chunks, "ms")
    assert 0.18 <= took <= 0.2 + 0.6, took


@pytest.mark.parametrize("flavor", ALL)
def test_429_retry_after_as_an_http_date_is_read(server: LoopbackServer, flavor: Flavor) -> None:
    server.reply(rate_limited(flavor, **{"retry-after": http_date(30)}))
    with pytest.raises(RateLimitedError) as info:
        run(flavor.provider(server, max_retries=0))
    assert info.value.retry_after is not None
    assert 28.0 <= info.value.retry_after <= 30.5, info.value.retry_after


@pytest.mark.parametrize("flavor", ALL)
def test_429_retry_after_as_a_past_http_date_retries_at_once(server: LoopbackServer, flavor: Flavor) -> None:
    server.reply(rate_limited(flavor, **{"retry-after": http_date(-60)}), flavor.reply("now"))
    t0 = time.monotonic()
    chunks = chunks_of(fast_retries(flavor.provider(server), max_retries=2))
    assert_clean_turn(chunks, "now")
    assert time.monotonic() - t0 < 0.5


@pytest.mark.parametrize("flavor", [FLAVORS["anthropic"], FLAVORS["bedrock"]], ids=["anthropic", "bedrock"])
def test_429_retry_after_as_a_future_http_date_is_waited(server: LoopbackServer, flavor: Flavor) -> None:
    # HTTP dates have whole seconds: 1.5 s ahead means a wait of 0.5 to 1.5 s.
    server.reply(rate_limited(flavor, **{"retry-after": http_date(1.5)}), flavor.reply("dated"))
    t0 = time.monotonic()
    chunks = chunks_of(fast_retries(flavor.provider(server), max_retries=2))
    took = time.monotonic() - t0
    assert_clean_turn(chunks, "dated")
    assert 0.4 <= took <= 1.5 + 0.6, took


@pytest.mark.parametrize("flavor", ALL)
@pytest.mark.parametrize("value", ["3600", "date"])
def test_a_retry_after_beyond_the_cap_is_raised_at_once(server: LoopbackServer, flavor: Flavor, value: str) -> None:
    header = http_date(3600) if value == "date" else value
    server.reply(rate_limited(flavor, **{"retry-after": header}), flavor.reply("never"))
    t0 = time.monotonic()
    with pytest.raises(RateLimitedError) as info:
        run(fast_retries(flavor.provider(server), max_retries=3))
    assert time.monotonic() - t0 < 0.5
    assert info.value.retry_after is not None and info.value.retry_after > 3000
    assert len(server.requests) == 1


ABSURD_WAITS = [("retry-after", "1e9"), ("retry-after", "inf"), ("retry-after-ms", "1e300"),
                ("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT")]  # fmt: skip


@pytest.mark.parametrize("flavor", ALL)
def test_an_absurd_retry_after_reaches_the_caller_capped(server: LoopbackServer, flavor: Flavor) -> None:
    from llm_sync._retry import MAX_RETRY_AFTER

    for name, value in ABSURD_WAITS:
        server.reply(rate_limited(flavor, **{name: value}))
        with pytest.raises(RateLimitedError) as info:
            run(fast_retries(flavor.provider(server), max_retries=3))
        assert info.value.retry_after == MAX_RETRY_AFTER == 7 * 24 * 3600, (name, value)
    assert len(server.requests) == len(ABSURD_WAITS)  # none of them was retried


@pytest.mark.parametrize("flavor", ALL)
def test_retries_never_outlast_the_total_deadline(server: LoopbackServer, flavor: Flavor) -> None:
    for _ in range(8):
        server.reply(rate_limited(flavor, **{"retry-after": "0.25"}))
    total = 0.6
    provider = fast_retries(
        flavor.provider(server, timeout=Timeouts(connect=2.0, first_event=5.0, idle=5.0, total=total)),
        max_retries=10,
    )
    t0 = time.monotonic()
    with pytest.raises(LlmError) as info:
        run(provider)
    took = time.monotonic() - t0
    assert isinstance(info.value, RateLimitedError) or (
        isinstance(info.value, RequestTimeoutError) and info.value.phase == "total"
    ), repr(info.value)
    assert took <= total + 0.4, took
    assert 2 <= len(server.requests) <= 3


@pytest.mark.parametrize("flavor", ALL)
def test_a_retry_after_past_the_total_deadline_is_not_waited_for(server: LoopbackServer, flavor: Flavor) -> None:
    server.reply(rate_limited(flavor, **{"retry-after": "5"}), flavor.reply("never"))
    provider = fast_retries(
        flavor.provider(server, timeout=Timeouts(connect=2.0, first_event=5.0, idle=5.0, total=1.0)), max_retries=3
    )
    t0 = time.monotonic()
    with pytest.raises(RateLimitedError):
        run(provider)
    assert time.monotonic() - t0 < 0.5
    assert len(server.requests) == 1


@pytest.mark.parametrize("flavor", ALL)
@pytest.mark.parametrize("status", [500, 502, 503, 529])
def test_server_errors_then_success_deliver_one_clean_stream(server: LoopbackServer, flavor: Flavor, status: int) -> None:
    server.reply(Reply.json(flavor.error_json(status), status=status))
    server.reply(Reply.json(flavor.error_json(status), status=status))
    server.reply(flavor.reply("third ", "time"))
    chunks = chunks_of(fast_retries(flavor.provider(server), max_retries=3))
    assert_clean_turn(chunks, "third time")
    assert len(server.requests) == 3


@pytest.mark.parametrize("flavor", ALL)
def test_server_errors_past_the_retry_budget_raise_the_last_one(server: LoopbackServer, flavor: Flavor) -> None:
    for _ in range(3):
        server.reply(Reply.json(flavor.error_json(503), status=503))
    with pytest.raises(ServerError) as info:
        run(fast_retries(flavor.provider(server), max_retries=2))
    assert info.value.status == 503
    assert len(server.requests) == 3


@pytest.mark.parametrize("flavor", ALL)
def test_401_is_never_retried(server: LoopbackServer, flavor: Flavor) -> None:
    server.reply(Reply.json(flavor.error_json(401), status=401), flavor.reply("never"))
    with pytest.raises(InvalidApiKeyError) as info:
        run(fast_retries(flavor.provider(server), max_retries=3))
    assert not info.value.retryable and info.value.status == 401
    assert len(server.requests) == 1


@pytest.mark.parametrize("flavor", ALL)
def test_in_band_overload_before_content_is_retried(server: LoopbackServer, flavor: Flavor) -> None:
    server.reply(flavor.reply(steps=[*flavor.start, flavor.overload]))
    server.reply(flavor.reply("recovered"))
    chunks = chunks_of(fast_retries(flavor.provider(server), max_retries=2))
    assert_clean_turn(chunks, "recovered")  # one Start, although both attempts opened a turn
    assert len(server.requests) == 2


@pytest.mark.parametrize("flavor", ALL)
def test_in_band_overload_after_content_is_raised(server: LoopbackServer, flavor: Flavor) -> None:
    server.reply(flavor.reply(steps=[*flavor.start, flavor.text("half"), flavor.overload]))
    server.reply(flavor.reply("never"))
    with pytest.raises(ServerError) as info:
        with fast_retries(flavor.provider(server), max_retries=3).stream_response(Context()) as stream:
            stream.collect()
    partial = info.value.partial  # type: ignore[attr-defined]
    assert partial.text == "half" and not partial.complete
    assert len(server.requests) == 1
