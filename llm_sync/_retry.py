"""When and how long to wait before re-sending a request: ``RetryPolicy``."""

from __future__ import annotations

from typing import Mapping, Optional

from ._values import value

__all__ = ["RetryPolicy", "parse_retry_after"]


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
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"jitter must be between 0 and 1, got {self.jitter}")

    def backoff(self, retry_number: int) -> float:
        """The computed wait before retry ``retry_number`` (0 for the first retry)."""
        base = min(self.backoff_max, self.backoff_base * (2.0**retry_number))
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
    a date in the past means "now". Unparseable values are ignored.
    """
    ms = _header(headers, "retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    ra = _header(headers, "retry-after")
    if ra is None:
        return None
    ra = ra.strip()
    try:
        return max(0.0, float(ra))
    except ValueError:
        pass
    from datetime import datetime
    from email.utils import parsedate_to_datetime

    try:
        when: Optional[datetime] = parsedate_to_datetime(ra)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:  # Python 3.9 returns None for some malformed dates
        return None
    import time

    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _header(headers: Mapping[str, str], name: str) -> Optional[str]:
    # requests' CaseInsensitiveDict answers any case; a plain dict needs a scan.
    got = headers.get(name)
    if got is not None:
        return got
    for k, v in headers.items():
        if k.lower() == name:
            return v
    return None
