"""The reader thread: it runs a chunk source and hands chunks to the consumer through one queue.

The thread runs module-level functions that hold the shared :class:`StreamState` and
never the ``LlmResponseStream``, so an abandoned stream can be garbage collected; its
finalizer stops the state, which shuts the socket down and ends the thread.
"""

from __future__ import annotations

import contextvars
import itertools
import threading
import time
from queue import SimpleQueue
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Optional

from ._errors import LlmError, internal_error
from ._response import (
    EncryptedReasoning,
    LlmResponse,
    Reasoning,
    Start,
    Text,
    ToolRequestArg,
    ToolRequestComplete,
)
from ._transport._holder import ConnectionHolder

if TYPE_CHECKING:
    from ._observe import Observer

__all__ = ["CLOSED", "End", "Source", "StreamState", "spawn_reader", "stop"]

# How far the reader may get ahead of a consumer that does not keep up: this many
# chunks, or this many characters of text (a chunk that is not text counts as
# OTHER_SIZE). Past either bound the reader blocks until the consumer has taken the
# queue down to half of both, so memory stays bounded and a parked reader costs
# nothing; a single chunk larger than the bound still passes an empty queue.
MAX_QUEUED = 4096
MAX_QUEUED_CHARS = 1 << 20
OTHER_SIZE = 256
# A blocked reader re-checks this often in case a wake-up was lost; nothing else
# wakes it but the consumer taking chunks and stop().
_PARKED_RECHECK = 30.0

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
    """What the reader thread and the stream share; never the stream itself.

    ``sent`` and ``taken`` count characters of queued text (see ``MAX_QUEUED_CHARS``);
    each has one writer, the reader and the consumer respectively, so neither needs a
    lock. ``parked`` is True while the reader waits for room, and ``room`` is how the
    consumer (or ``stop``) wakes it. ``observer`` hears of retries (None: nobody listens).
    """

    __slots__ = ("queue", "stop_event", "stopped", "holder", "label", "sent", "taken", "parked", "room", "observer")

    def __init__(self, label: str) -> None:
        self.queue: SimpleQueue[Any] = SimpleQueue()
        self.stop_event = threading.Event()
        # A plain attribute, read once per chunk: cheaper than Event.is_set().
        self.stopped = False
        self.holder = ConnectionHolder()
        self.label = label
        self.sent = 0
        self.taken = 0
        self.parked = False
        self.room: SimpleQueue[None] = SimpleQueue()
        self.observer: Optional[Observer] = None

    def put(self, item: Any) -> bool:
        """Queue ``item`` for the consumer, blocking while the queue is full; False once stopped."""
        self.sent += size_of(item)
        return self.put_counted(item)

    def put_counted(self, item: Any) -> bool:
        """``put`` for an item already added to ``sent``."""
        q = self.queue
        while not self.stopped:
            if q.qsize() < MAX_QUEUED and self.sent - self.taken < MAX_QUEUED_CHARS:
                q.put(item)
                return True
            if q.qsize() == 0:
                q.put(item)  # one chunk over the bound on its own: let it through
                return True
            # Raise the flag, then look again: the consumer may have taken the queue
            # down before it could see the flag, and would then never wake us.
            self.parked = True
            if self.has_room():
                self.parked = False
                continue
            self.room.get(True, _PARKED_RECHECK)
            self.parked = False
        return False

    def has_room(self) -> bool:
        """Whether a parked reader may go on: the queue is empty, or down to half of both bounds.

        ``sent`` already counts the chunk the reader holds, so a chunk larger than half
        the bound only goes once the queue is empty.
        """
        n = self.queue.qsize()
        return n == 0 or (n <= MAX_QUEUED // 2 and self.sent - self.taken <= MAX_QUEUED_CHARS // 2)

    def unpark(self) -> None:
        """Called by the consumer after taking a chunk while ``parked``: wake the reader once there is room."""
        if self.parked and self.has_room():
            self.parked = False
            self.room.put(None)

    def sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` unless stopped first; True if the wait ran its course."""
        return not self.stop_event.wait(seconds)


def size_of(item: Any) -> int:
    """What ``item`` counts against ``MAX_QUEUED_CHARS`` (as it waits in the queue).

    Every chunk that carries server text counts its length, so that no kind of chunk
    can make the queue hold more than the bound (a tool call's arguments and
    encrypted reasoning can be as large as one event).
    """
    cls = item.__class__
    if cls is str:
        return len(item)
    if cls is tuple:
        return len(item[0])
    if cls is ToolRequestArg:
        return OTHER_SIZE + len(item.chunk)
    if cls is ToolRequestComplete:
        return OTHER_SIZE + len(item.tool_call.arguments)
    if cls is EncryptedReasoning:
        return OTHER_SIZE + len(item.content)
    return OTHER_SIZE


def stop(state: StreamState) -> None:
    """Stop the reader: flag, wake it from a socket read or a wait, wake the consumer."""
    if state.stopped:
        return
    state.stopped = True
    state.stop_event.set()
    state.holder.shutdown()
    state.queue.put(CLOSED)
    state.room.put(None)  # a reader parked on a full queue


def spawn_reader(
    state: StreamState, source: Source, provider: str, context: Optional[contextvars.Context] = None
) -> threading.Thread:
    """Start the daemon reader thread ``llm_sync-<provider>-<n>`` running ``source``.

    It runs in ``context`` (by default a copy of the caller's): what the caller's
    thread had current (a request id, a tracing span) is current on the reader too,
    in the records it logs and the requests it sends.
    """
    ctx = context if context is not None else contextvars.copy_context()
    thread = threading.Thread(
        target=ctx.run,
        args=(_run, state, source),
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
                state.sent += len(chunk)
            elif cls is Reasoning:
                chunk = (chunk.chunk,)
                state.sent += len(chunk[0])
            else:
                state.sent += size_of(chunk)
            if qsize() < MAX_QUEUED and state.sent - state.taken < MAX_QUEUED_CHARS and not state.stopped:
                put(chunk)
            elif not state.put_counted(chunk):
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
