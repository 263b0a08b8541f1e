"""The four deadlines of a stream: ``Timeouts``."""

from __future__ import annotations

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
            v = getattr(self, name)
            if v is not None and v <= 0:
                raise ValueError(f"timeout {name} must be positive or None, got {v!r}")

    def read_timeout(self) -> Optional[float]:
        """The socket read timeout: a backstop only, since the stream enforces the rest."""
        bounds = [t for t in (self.first_event, self.idle) if t is not None]
        return max(bounds) if bounds else None


TimeoutSpec = Union[None, float, int, Timeouts]


def as_timeouts(spec: TimeoutSpec) -> Timeouts:
    """``None`` → defaults; a number → that many seconds for connect, first event and idle."""
    if spec is None:
        return Timeouts()
    if isinstance(spec, Timeouts):
        return spec
    if isinstance(spec, bool) or not isinstance(spec, (int, float)):
        raise TypeError(f"timeout must be a number of seconds or a Timeouts, got {type(spec).__name__}")
    seconds = float(spec)
    return Timeouts(connect=seconds, first_event=seconds, idle=seconds)
