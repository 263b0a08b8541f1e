"""Silent servers and keep-alive trickles: every timeout kind fires at its configured bound, per framing."""

from __future__ import annotations

import time

import pytest

from llm_sync import Context, RequestTimeoutError, Timeouts
from llm_sync._response import Start, Text
from tests.support.faults import Flavor, Gate, flavor_params, silent_before_headers, trickle
from tests.support.server import LoopbackServer, Sleep, Stall

ALL = flavor_params()
WITH_KEEPALIVE = flavor_params(keepalive=True)

BOUND = 0.25  # the timeout under test
SLACK = 2.5  # the other deadlines, and so the socket read timeout: far beyond BOUND
EARLY = 0.05  # a timeout may fire this much early (clock granularity)
LATE = 0.5  # and this much late (the consumer's wait slice, thread wake-ups)


def check_fired(err: RequestTimeoutError, phase: str, took: float, bound: float = BOUND) -> None:
    assert err.phase == phase, (err.phase, str(err))
    assert bound - EARLY <= took <= bound + LATE, f"{phase} timeout of {bound} s fired after {took:.3f} s"
    assert err.retryable
    assert f"{bound}" in str(err)  # the message names the bound that passed


@pytest.mark.parametrize("flavor", ALL)
def test_silent_before_headers_is_a_first_event_timeout(server: LoopbackServer, gate: Gate, flavor: Flavor) -> None:
    server.reply(silent_before_headers(gate, flavor.reply("late")))
    provider = flavor.provider(server, timeout=Timeouts(connect=2.0, first_event=BOUND, idle=SLACK))
    t0 = time.monotonic()
    with pytest.raises(RequestTimeoutError) as info:
        with provider.stream_response(Context()) as stream:
            list(stream)
    check_fired(info.value, "first_event", time.monotonic() - t0)
    assert len(server.requests) == 1  # a timeout is never followed by a re-send


@pytest.mark.parametrize("flavor", ALL)
def test_silent_after_headers_is_a_first_event_timeout(server: LoopbackServer, flavor: Flavor) -> None:
    server.reply(flavor.reply(steps=[Stall(5.0)]))
    provider = flavor.provider(server, timeout=Timeouts(connect=2.0, first_event=BOUND, idle=SLACK))
    t0 = time.monotonic()
    with pytest.raises(RequestTimeoutError) as info:
        with provider.stream_response(Context()) as stream:
            list(stream)
    check_fired(info.value, "first_event", time.monotonic() - t0)


@pytest.mark.parametrize("flavor", ALL)
def test_silent_mid_stream_is_an_idle_timeout(server: LoopbackServer, flavor: Flavor) -> None:
    server.reply(flavor.reply(steps=[*flavor.start, flavor.text("so far"), Stall(5.0)]))
    provider = flavor.provider(server, timeout=Timeouts(connect=2.0, first_event=SLACK, idle=BOUND))
    with provider.stream_response(Context()) as stream:
        assert isinstance(next(stream), Start)
        assert next(stream) == Text("so far")
        t0 = time.monotonic()
        with pytest.raises(RequestTimeoutError) as info:
            next(stream)
        took = time.monotonic() - t0
    check_fired(info.value, "idle", took)


@pytest.mark.parametrize("flavor", WITH_KEEPALIVE)
def test_keepalives_after_content_do_not_hold_off_the_idle_timeout(server: LoopbackServer, flavor: Flavor) -> None:
    assert flavor.keepalive is not None
    steps = [*flavor.start, flavor.text("then nothing"), *trickle(flavor.keepalive, 0.05, 4.0)]
    server.reply(flavor.reply(steps=steps))
    provider = flavor.provider(server, timeout=Timeouts(connect=2.0, first_event=SLACK, idle=BOUND))
    with provider.stream_response(Context()) as stream:
        assert isinstance(next(stream), Start)
        assert next(stream) == Text("then nothing")
        t0 = time.monotonic()
        with pytest.raises(RequestTimeoutError) as info:
            next(stream)
        took = time.monotonic() - t0
    check_fired(info.value, "idle", took)


@pytest.mark.parametrize("flavor", WITH_KEEPALIVE)
def test_keepalives_with_no_event_at_all_end_in_a_first_event_timeout(server: LoopbackServer, flavor: Flavor) -> None:
    assert flavor.keepalive is not None
    server.reply(flavor.reply(steps=trickle(flavor.keepalive, 0.05, 4.0)))
    provider = flavor.provider(server, timeout=Timeouts(connect=2.0, first_event=BOUND, idle=SLACK))
    t0 = time.monotonic()
    with pytest.raises(RequestTimeoutError) as info:
        with provider.stream_response(Context()) as stream:
            list(stream)
    check_fired(info.value, "first_event", time.monotonic() - t0)


@pytest.mark.parametrize("flavor", ALL)
def test_the_total_deadline_cuts_a_stream_that_keeps_talking(server: LoopbackServer, flavor: Flavor) -> None:
    talk = []
    for i in range(200):
        talk += [Sleep(0.02), flavor.text(f"{i} ")]
    server.reply(flavor.reply(steps=[*flavor.start, *talk, *flavor.end]))
    provider = flavor.provider(server, timeout=Timeouts(connect=2.0, first_event=SLACK, idle=SLACK, total=BOUND))
    seen = []
    t0 = time.monotonic()
    with pytest.raises(RequestTimeoutError) as info:
        with provider.stream_response(Context()) as stream:
            for chunk in stream:
                seen.append(chunk)
    check_fired(info.value, "total", time.monotonic() - t0)
    texts = [c.chunk for c in seen if isinstance(c, Text)]
    assert texts and len(texts) == len(set(texts))  # progress was made, nothing twice
