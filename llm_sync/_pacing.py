"""How a batch run paces its requests: one pause shared by every worker (``Gate``) and an AIMD concurrency limit (``Aimd``)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Optional

from ._errors import RateLimitedError, ServerError

if TYPE_CHECKING:
    from ._errors import LlmError

__all__ = ["Aimd", "Gate", "is_congestion", "process_gate"]

# A waiting worker re-checks the gate (and its stop flag) this often, so that a
# pause made longer meanwhile, or a stop, is seen promptly.
_SLICE = 0.05


def is_congestion(err: LlmError) -> bool:
    """True for the errors that say "send less": a rate limit, or an overloaded server.

    A 500 is a fault rather than a load signal and does not count; 503, 529 and the
    in-band overloaded events (no status) do.
    """
    if isinstance(err, RateLimitedError):
        return True
    return isinstance(err, ServerError) and err.status in (None, 502, 503, 504, 529)


class Gate:
    """A time before which no worker of a run sends a request; any worker may push it later."""

    __slots__ = ("_lock", "_until")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until = 0.0  # time.monotonic()

    def pause(self, seconds: float) -> None:
        """Hold every worker for ``seconds`` from now (a shorter pause never shortens a longer one)."""
        until = time.monotonic() + max(0.0, seconds)
        with self._lock:
            if until > self._until:
                self._until = until

    def remaining(self) -> float:
        """Seconds until the gate opens (0 when open)."""
        return max(0.0, self._until - time.monotonic())

    def wait(self, stop: Optional[threading.Event] = None) -> bool:
        """Block until the gate is open; False if ``stop`` was set first."""
        while True:
            left = self.remaining()
            if left <= 0.0:
                return stop is None or not stop.is_set()
            if stop is None:
                time.sleep(min(left, _SLICE))
            elif stop.wait(min(left, _SLICE)):
                return False


class Aimd:
    """Additive-increase, multiplicative-decrease concurrency: TCP's answer to a shared bottleneck.

    ``limit`` starts at ``ceiling``. A congestion signal halves it, at most once per
    round: only a request sent after the last cut can cut again, so the burst of
    errors from requests that were already in flight counts once. After ``limit``
    successes in a row (one round at that limit) it grows by one, up to ``ceiling``.
    Used by one thread (the run's scheduler); not locked.
    """

    __slots__ = ("ceiling", "limit", "_credit", "_sent", "_cut_after", "cuts")

    def __init__(self, ceiling: int) -> None:
        self.ceiling = ceiling
        self.limit = ceiling
        self._credit = 0  # successes since the limit last changed
        self._sent = 0
        self._cut_after = 0  # tickets up to this one were sent before the last cut
        self.cuts = 0

    def ticket(self) -> int:
        """Number a request as it is sent."""
        self._sent += 1
        return self._sent

    def congested(self, ticket: int) -> bool:
        """The request ``ticket`` met congestion; True if that cut the limit."""
        if ticket <= self._cut_after:
            return False
        self.limit = max(1, self.limit // 2)
        self._credit = 0
        self._cut_after = self._sent
        self.cuts += 1
        return True

    def succeeded(self) -> None:
        if self.limit < self.ceiling:
            self._credit += 1
            if self._credit >= self.limit:
                self.limit += 1
                self._credit = 0


# A worker process of an executor keeps one gate per run, shared by its threads;
# bounded, since a long-lived worker (a Dask cluster's) serves many runs.
_GATES: OrderedDict[str, Gate] = OrderedDict()
_GATES_LOCK = threading.Lock()
_MAX_GATES = 64


def process_gate(run: str) -> Gate:
    """The gate this process keeps for the run ``run``."""
    with _GATES_LOCK:
        gate = _GATES.get(run)
        if gate is None:
            gate = _GATES[run] = Gate()
            while len(_GATES) > _MAX_GATES:
                _GATES.popitem(last=False)
        else:
            _GATES.move_to_end(run)
        return gate
