"""The reader thread: it runs a chunk source and hands chunks to the consumer through one queue.

The thread runs module-level functions that hold the shared :class:`StreamState` and
never the ``LlmResponseStream``, so an abandoned stream can be garbage collected; its
finalizer stops the state, which shuts the socket down and ends the thread.
"""

from __future__ import annotations

import itertools
import threading
import time
from queue import SimpleQueue
from typing import Any, Callable, Iterable, Iterator, Optional

from ._errors import LlmError, internal_error
from ._response import LlmResponse, Reasoning, Start, Text

__all__ = ["CLOSED", "End", "Source", "StreamState", "spawn_reader", "stop"]

# Chunks the reader may be ahead of the consumer. Past this it waits, so a consumer
# that stops reading does not make memory grow without bound.
MAX_QUEUED = 4096
_FULL_POLL = 0.005

_names = itertools.count(1)

# How chunks wait in the queue: a Text as its plain str, a Reasoning as a 1-tuple of
# its str, every other chunk as itself; LlmResponseStream makes the chunk again. A
# str is not tracked by the garbage collector (nor, after one young collection, such
# a tuple); queued chunk objects are, and while a consumer falls behind they survive
# young collections and get promoted. Promotions are what set off full collections:
# pauses of ~0.1 s in a process of a few hundred thousand objects, measured every
# second or so under 32 fast streams.

#: What the reader thread runs: given the shared state, the chunks of one stream.
Source = Callable[["StreamState"], Iterable[LlmResponse]]


class End:
    """The last item a reader puts on the queue: ``error`` is None on a clean end."""

    __slots__ = ("error",)

    def __init__(self, error: Optional[BaseException]) -> None:
        self.error = error


# Put by close() to wake a consumer blocked in another thread.
CLOSED = End(None)


class StreamState:
    """What the reader thread and the stream share; never the stream itself."""

    __slots__ = ("queue", "stop_event", "stopped", "holder", "label")

    def __init__(self, label: str) -> None:
        from ._transport._connections import ConnectionHolder  # imports urllib3: not at import time

        self.queue: SimpleQueue[Any] = SimpleQueue()
        self.stop_event = threading.Event()
        # A plain attribute, read once per chunk: cheaper than Event.is_set().
        self.stopped = False
        self.holder = ConnectionHolder()
        self.label = label

    def put(self, item: Any) -> bool:
        """Queue ``item`` for the consumer, waiting while the queue is full; False once stopped."""
        q = self.queue
        if q.qsize() >= MAX_QUEUED:
            while q.qsize() >= MAX_QUEUED:
                if self.stop_event.wait(_FULL_POLL):
                    return False
        if self.stopped:
            return False
        q.put(item)
        return True

    def sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` unless stopped first; True if the wait ran its course."""
        return not self.stop_event.wait(seconds)


def stop(state: StreamState) -> None:
    """Stop the reader: flag, wake it from a socket read or a wait, wake the consumer."""
    if state.stopped:
        return
    state.stopped = True
    state.stop_event.set()
    state.holder.shutdown()
    state.queue.put(CLOSED)


def spawn_reader(state: StreamState, source: Source, provider: str) -> threading.Thread:
    """Start the daemon reader thread ``llm_sync-<provider>-<n>`` running ``source``."""
    thread = threading.Thread(
        target=_run,
        args=(state, source),
        name=f"llm_sync-{provider}-{next(_names)}",
        daemon=True,
    )
    thread.start()
    return thread


def _run(state: StreamState, source: Source) -> None:
    state.holder.install()
    error: Optional[BaseException] = None
    # Any: the loop below replaces some chunks with what stands for them in the queue.
    chunks: Iterator[Any] = iter(source(state))
    try:
        for chunk in chunks:
            if not state.put(chunk):
                return
            if chunk.__class__ is not Start:
                # Let a consumer waiting for its first content take it now rather than
                # when this thread next blocks on the socket: on a short answer that
                # is ~0.1 ms of time to first chunk. Once, so the loop below stays bare.
                time.sleep(0)
                break
        # StreamState.put, inlined: this loop runs once per chunk.
        q = state.queue
        qsize, put = q.qsize, q.put
        for chunk in chunks:
            cls = chunk.__class__
            if cls is Text:
                chunk = chunk.chunk  # see "How chunks wait in the queue" above
            elif cls is Reasoning:
                chunk = (chunk.chunk,)
            if qsize() < MAX_QUEUED and not state.stopped:
                put(chunk)
            elif not state.put(chunk):
                return
    except BaseException as exc:
        error = exc if isinstance(exc, LlmError) or state.stopped else _wrap(exc)
    finally:
        # Closing the generator now (not at its garbage collection) closes the response.
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
        state.holder.uninstall()
    if not state.stopped:
        state.queue.put(End(error))


def _wrap(exc: BaseException) -> BaseException:
    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
        return exc
    return internal_error(exc)
