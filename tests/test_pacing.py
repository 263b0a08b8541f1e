"""The pacing of a batch run: the shared pause and the AIMD concurrency limit."""

from __future__ import annotations

import threading
import time

from llm_sync import ApiError, RateLimitedError, ServerError
from llm_sync._pacing import Aimd, Gate, is_congestion, process_gate


def test_congestion_is_a_rate_limit_or_an_overload_not_any_fault() -> None:
    assert is_congestion(RateLimitedError("x", status=429))
    assert is_congestion(RateLimitedError("in-band"))
    assert is_congestion(ServerError("x", status=529)) and is_congestion(ServerError("x", status=503))
    assert is_congestion(ServerError("overloaded event"))
    assert not is_congestion(ServerError("x", status=500))
    assert not is_congestion(ApiError("x", status=400))


def test_aimd_halves_once_per_round_and_climbs_one_slot_per_round() -> None:
    a = Aimd(16)
    tickets = [a.ticket() for _ in range(16)]
    assert a.congested(tickets[0]) and a.limit == 8
    # The rest of the same round were sent before the cut: they do not cut again.
    assert not any(a.congested(t) for t in tickets[1:])
    assert a.limit == 8 and a.cuts == 1
    later = a.ticket()
    assert a.congested(later) and a.limit == 4
    for _ in range(4):
        a.succeeded()
    assert a.limit == 5  # four successes at 4 in flight: one round, one slot
    for _ in range(200):
        a.succeeded()
    assert a.limit == 16  # never past the ceiling
    one = Aimd(1)
    assert one.congested(one.ticket()) and one.limit == 1  # never below one


def test_the_gate_holds_every_waiter_until_the_longest_pause() -> None:
    gate = Gate()
    assert gate.wait() and gate.remaining() == 0.0
    gate.pause(0.3)
    gate.pause(0.1)  # a shorter pause never shortens a longer one
    opened = []

    def waiter() -> None:
        gate.wait()
        opened.append(time.monotonic())

    started = time.monotonic()
    threads = [threading.Thread(target=waiter) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(2)
    assert len(opened) == 3 and min(opened) - started >= 0.29


def test_a_stop_ends_a_wait_at_the_gate() -> None:
    gate, stop = Gate(), threading.Event()
    gate.pause(10)
    threading.Timer(0.1, stop.set).start()
    started = time.monotonic()
    assert gate.wait(stop) is False
    assert time.monotonic() - started < 0.5


def test_a_process_keeps_one_gate_per_run() -> None:
    assert process_gate("run-a") is process_gate("run-a")
    assert process_gate("run-a") is not process_gate("run-b")
