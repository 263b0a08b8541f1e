"""When and how long to wait before re-sending a request: ``RetryPolicy``."""

from __future__ import annotations

import math
from typing import Mapping, Optional

from ._values import value

__all__ = ["MAX_RETRY_AFTER", "RetryPolicy", "clamp_retry_after", "parse_retry_after"]

#: The longest wait a server's ``Retry-After`` (or an error event) is taken at, one
#: week: longer ones, infinite ones included, are reported as this many seconds. A
#: week, because weekly usage limits (Codex) really do reset days away.
MAX_RETRY_AFTER = 7 * 24 * 3600.0


@value
class RetryPolicy:
    """An immutable retry policy, applied only before content reached the caller.

    ``max_retries`` is the number of re-sends after the first attempt. The wait
    before retry *n* (0-based) is ``backoff_base * 2**n`` capped at ``backoff_max``,
    minus up to ``jitter`` of itself at random so that many clients spread out.
    A server's ``retry-after-ms`` / ``Retry-After`` replaces the computed wait;
    one longer than ``max_retry_after`` is not waited for (the error is raised).
    """

    max_retries: int = 2
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    jitter: float = 0.25
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        n = self.max_retries
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"max_retries must be a whole number, got {n!r}")
        if n < 0:
            raise ValueError(f"max_retries must be >= 0, got {n}")
        for name in ("backoff_base", "backoff_max", "jitter", "max_retry_after"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TypeError(f"{name} must be a number of seconds, got {v!r}")
            if not math.isfinite(v) or v < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"jitter must be between 0 and 1, got {self.jitter}")

    def backoff(self, retry_number: int) -> float:
        """The computed wait before retry ``retry_number`` (0 for the first retry)."""
        # The exponent is capped: 2.0**1024 overflows, and the cap applies long before.
        base = min(self.backoff_max, self.backoff_base * (2.0 ** min(retry_number, 64)))
        import random  # on the retry path only: importing it costs a few ms

        return base * (1.0 - self.jitter * random.random())

    def delay(self, retry_number: int, retry_after: Optional[float] = None) -> Optional[float]:
        """Seconds to wait before retry ``retry_number``, or None to give up now."""
        if retry_number >= self.max_retries:
            return None
        if retry_after is not None:
            if retry_after > self.max_retry_after:
                return None
            return max(0.0, retry_after)
        return self.backoff(retry_number)


def parse_retry_after(headers: Mapping[str, str], now: Optional[float] = None) -> Optional[float]:
    """Seconds the server asked us to wait: ``retry-after-ms``, then ``Retry-After``.

    ``Retry-After`` may be a number of seconds or an HTTP date (RFC 9110 §10.2.3);
    a date in the past means "now". Unparseable values (and NaN) are ignored; the
    result is at most :data:`MAX_RETRY_AFTER`.
    """
    ms = _header(headers, "retry-after-ms")
    if ms is not None:
        try:
            found = clamp_retry_after(float(ms) / 1000.0)
        except ValueError:
            found = None
        if found is not None:
            return found
    ra = _header(headers, "retry-after")
    if ra is None:
        return None
    ra = ra.strip()
    try:
        return clamp_retry_after(float(ra))
    except ValueError:
        pass
    from datetime import datetime
    from email.utils import parsedate_to_datetime

    try:
        when: Optional[datetime] = parsedate_to_datetime(ra)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:  # Python 3.9 returns None for some malformed dates
        return None
    import time

    current = time.time() if now is None else now
    try:
        return clamp_retry_after(when.timestamp() - current)
    except (OverflowError, ValueError, OSError):  # a date the platform cannot place
        return None


def clamp_retry_after(seconds: Optional[float]) -> Optional[float]:
    """``seconds`` within ``[0, MAX_RETRY_AFTER]``; None for None or NaN.

    What a server says is server-controlled: a wait of 1e9 seconds or infinity must
    not reach a caller's ``time.sleep`` as it is.
    """
    if seconds is None or seconds != seconds:  # NaN is the one value unequal to itself
        return None
    return min(max(0.0, float(seconds)), MAX_RETRY_AFTER)


def _header(headers: Mapping[str, str], name: str) -> Optional[str]:
    # requests' CaseInsensitiveDict answers any case; a plain dict needs a scan.
    got = headers.get(name)
    if got is not None:
        return got
    for k, v in headers.items():
        if k.lower() == name:
            return v
    return None
