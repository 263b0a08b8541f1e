"""One request that is not streamed (a token count, a server's settings), sent on a reader thread the caller can cancel."""

from __future__ import annotations

import time
from queue import Empty
from typing import TYPE_CHECKING, Any, Iterator, NoReturn, Optional, cast

from ._call import Answer, json_answer
from ._engine import End, Source, StreamState, spawn_reader, stop
from ._errors import LlmError, RequestTimeoutError, stamp

if TYPE_CHECKING:
    import threading

    from ._retry import RetryPolicy
    from ._timeouts import Timeouts
    from ._transport._http import Transport
    from ._transport._request import HttpCall

__all__ = ["fetch_json"]

# How often a waiting caller looks at its cancel event and deadline. A signal
# (Ctrl-C) interrupts the wait itself; another thread's cancel is seen within this.
_SLICE = 0.05
# How long the caller waits for the reader to leave after stopping it; the socket
# is shut down first, so it leaves at once.
_JOIN = 1.0


def fetch_json(
    call: HttpCall,
    *,
    transport: Transport,
    timeouts: Timeouts,
    retry: RetryPolicy,
    max_bytes: int,
    provider: str,
    model: str,
    cancel: Optional[threading.Event] = None,
) -> Any:
    """Send ``call`` and return its decoded JSON answer, blocking the caller until then.

    The request runs on a reader thread as a stream's does (same connection pool,
    retries, typed errors with the provider and model stamped) while the caller
    waits. The wait ends early, with the reader stopped and its socket shut down
    (so no request is left running and no thread behind), when:

    - ``cancel`` (a ``threading.Event``, set from any thread) is set:
      ``concurrent.futures.CancelledError`` is raised (an event already set sends nothing);
    - the answer has not arrived within ``timeouts.first_event`` (retries included)
      or ``timeouts.total``: ``RequestTimeoutError``;
    - the caller is interrupted (Ctrl-C): the ``KeyboardInterrupt`` propagates.
    """

    def source(state: StreamState) -> Iterator[Answer]:
        answer = json_answer(state, call, transport=transport, timeouts=timeouts, retry=retry, max_bytes=max_bytes)
        if answer is not None:
            yield answer

    if cancel is not None and cancel.is_set():
        _cancelled(provider)
    state = StreamState(f"{provider}:{model}")
    thread = spawn_reader(state, cast(Source, source), provider)
    started = time.monotonic()
    limits = [t for t in (timeouts.first_event, timeouts.total) if t is not None]
    deadline = started + min(limits) if limits else None
    try:
        while True:
            wait = _SLICE if deadline is None else max(0.0, min(_SLICE, deadline - time.monotonic()))
            try:
                item = state.queue.get(True, wait)
            except Empty:
                if cancel is not None and cancel.is_set():
                    _cancelled(provider)
                if deadline is not None and time.monotonic() >= deadline:
                    seconds = round(deadline - started, 3)
                    raise stamp(
                        RequestTimeoutError(
                            f"no answer arrived within {seconds} s of the request; pass "
                            "timeout=Timeouts(first_event=...) with more seconds if the server is slow",
                            phase="first_event" if seconds == timeouts.first_event else "total",
                        ),
                        provider,
                        model,
                    ) from None
                continue
            if isinstance(item, End):
                error = item.error
                if isinstance(error, LlmError):
                    raise stamp(error, provider, model)
                if error is not None:
                    raise error
                # Ended without an answer: only a stop does that, and only this caller stops it.
                raise RuntimeError("the request ended without an answer")  # pragma: no cover
            return cast(Answer, item).value
    finally:
        stop(state)
        thread.join(_JOIN)


def _cancelled(provider: str) -> NoReturn:
    from concurrent.futures import CancelledError  # only when it happens

    raise CancelledError(f"the request to {provider} was cancelled; nothing more is sent") from None
