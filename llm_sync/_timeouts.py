"""The four deadlines of a stream: ``Timeouts``."""

from __future__ import annotations

import math
from typing import Optional, Union

from ._values import value

__all__ = ["TimeoutSpec", "Timeouts", "as_timeouts"]


@value
class Timeouts:
    """Deadlines in seconds; None disables one.

    - ``connect``: opening the TCP (and TLS) connection.
    - ``first_event``: from the call until the first chunk, retries included.
    - ``idle``: between two chunks. Keep-alive comments and pings do not count as
      chunks, so a server that only sends keep-alives still times out.
    - ``total``: the whole stream, first byte to ``Done``.

    Thinking models can be silent for minutes, so the defaults are generous.
    """

    connect: Optional[float] = 30.0
    first_event: Optional[float] = 300.0
    idle: Optional[float] = 300.0
    total: Optional[float] = None

    def __post_init__(self) -> None:
        for name in ("connect", "first_event", "idle", "total"):
            _check_seconds(f"timeout {name}", getattr(self, name))

    def read_timeout(self) -> Optional[float]:
        """The socket read timeout: a backstop only, since the stream enforces the rest."""
        bounds = [t for t in (self.first_event, self.idle) if t is not None]
        return max(bounds) if bounds else None


TimeoutSpec = Union[None, float, int, Timeouts]

# The longest deadline accepted: beyond this the OS refuses socket and lock timeouts
# (threading.TIMEOUT_MAX is about 292 years on Linux, far less elsewhere).
_MAX_SECONDS = 1e9


def _check_seconds(what: str, v: object) -> None:
    """Reject what is not None or a positive, finite number of seconds, saying why."""
    if v is None:
        return
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError(f"{what} must be a number of seconds or None, got {v!r}")
    if not math.isfinite(v):
        raise ValueError(f"{what} must be a finite number of seconds, got {v!r}; pass None for no limit")
    if v <= 0:
        raise ValueError(f"{what} must be positive or None, got {v!r}")
    if v > _MAX_SECONDS:
        raise ValueError(f"{what} of {v!r} s is beyond any useful deadline; pass None for no limit")


def as_timeouts(spec: TimeoutSpec) -> Timeouts:
    """``None`` → defaults; a number → that many seconds for connect, first event and idle."""
    if spec is None:
        return Timeouts()
    if isinstance(spec, Timeouts):
        return spec
    if isinstance(spec, bool) or not isinstance(spec, (int, float)):
        raise TypeError(f"timeout must be a number of seconds or a Timeouts, got {type(spec).__name__}")
    _check_seconds("timeout", spec)
    seconds = float(spec)
    return Timeouts(connect=seconds, first_event=seconds, idle=seconds)
