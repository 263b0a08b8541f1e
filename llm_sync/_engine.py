"""The reader thread: it runs a chunk source and hands chunks to the consumer through one queue.

The thread runs module-level functions that hold the shared :class:`StreamState` and
never the ``LlmResponseStream``, so an abandoned stream can be garbage collected; its
finalizer stops the state, which shuts the socket down and ends the thread.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from queue import SimpleQueue
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Optional

from ._errors import (
    ApiError,
    JsonParsingError,
    LlmError,
    NetworkError,
    RequestTimeoutError,
    StreamInterruptedError,
    StreamReadError,
)
from ._response import Done, LlmResponse, Reasoning, Start, Text, Usage
from ._retry import RetryPolicy
from ._timeouts import Timeouts
from ._transport._frame import DEFAULT_MAX_EVENT_BYTES

if TYPE_CHECKING:
    from ._transport._frame import Frame
    from ._transport._http import ErrorClassifier, Transport

__all__ = ["End", "HttpCall", "StreamState", "http_source", "spawn_reader"]

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
# Frames read after Done, to finish the body so the connection can be reused.
_MAX_TRAILING_FRAMES = 64
# A JSON error document or HTML page found where a stream was due is read this far.
_MAX_DOCUMENT = 64 * 1024

_names = itertools.count(1)

# How chunks wait in the queue: a Text as its plain str, a Reasoning as a 1-tuple of
# its str, every other chunk as itself; LlmResponseStream makes the chunk again. A
# str is not tracked by the garbage collector (nor, after one young collection, such
# a tuple); queued chunk objects are, and while a consumer falls behind they survive
# young collections and get promoted. Promotions are what set off full collections:
# pauses of ~0.1 s in a process of a few hundred thousand objects, measured every
# second or so under 32 fast streams.

Source = Callable[["StreamState"], Iterable[LlmResponse]]
Parser = Callable[[Iterator["Frame"]], Iterator[LlmResponse]]


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
    consumer (or ``stop``) wakes it.
    """

    __slots__ = ("queue", "stop_event", "stopped", "holder", "label", "sent", "taken", "parked", "room")

    def __init__(self, label: str) -> None:
        from ._transport._connections import ConnectionHolder

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
    """What ``item`` counts against ``MAX_QUEUED_CHARS`` (as it waits in the queue)."""
    cls = item.__class__
    if cls is str:
        return len(item)
    if cls is tuple:
        return len(item[0])
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
                state.sent += len(chunk)
            elif cls is Reasoning:
                chunk = (chunk.chunk,)
                state.sent += len(chunk[0])
            else:
                state.sent += OTHER_SIZE
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
    if isinstance(exc, json.JSONDecodeError):
        err: LlmError = JsonParsingError(f"an event is not valid JSON: {exc}")
    else:
        # Not a framing or provider error: a bug here, or an answer no parser expected.
        # Name it plainly so it is not mistaken for a network problem.
        err = StreamReadError(
            f"llm_sync failed while handling the stream ({type(exc).__name__}: {exc}); the "
            "traceback's cause shows where; please report it with the provider and model"
        )
    err.__cause__ = exc
    err.__traceback__ = exc.__traceback__
    return err


# ---------------------------------------------------------------------------
# The HTTP source: send, frame, parse, retry before content.


class HttpCall:
    """One HTTP request a provider wants streamed, and how to read the answer.

    ``prepare`` runs before every attempt (and may return a changed call): Bedrock
    signs there, Codex refreshes its token there.
    """

    __slots__ = ("method", "url", "headers", "body", "framing", "classify", "prepare")

    def __init__(
        self,
        url: str,
        headers: dict[str, str],
        body: Optional[bytes],
        *,
        framing: str,
        classify: ErrorClassifier,
        method: str = "POST",
        prepare: Optional[Callable[[HttpCall], HttpCall]] = None,
    ) -> None:
        if framing not in ("sse", "ndjson", "eventstream"):
            raise ValueError(f"framing must be 'sse', 'ndjson' or 'eventstream', not {framing!r}")
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.framing = framing
        self.classify = classify
        self.prepare = prepare

    def __repr__(self) -> str:
        return f"HttpCall({self.method} {self.url}, framing={self.framing})"


def http_source(
    call: HttpCall,
    parse: Parser,
    *,
    transport: Transport,
    timeouts: Timeouts,
    retry: RetryPolicy,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
) -> Source:
    """A source that streams ``call``, retrying before content as the policy allows."""

    def source(state: StreamState) -> Iterator[LlmResponse]:
        return _http_chunks(state, call, parse, transport, timeouts, retry, max_event_bytes)

    return source


def _http_chunks(
    state: StreamState,
    call: HttpCall,
    parse: Parser,
    transport: Transport,
    timeouts: Timeouts,
    retry: RetryPolicy,
    max_event_bytes: int,
) -> Iterator[LlmResponse]:
    from ._transport._http import send

    started = time.monotonic()
    read_timeout = timeouts.read_timeout()
    sent_start = False
    attempt = 0
    while True:
        content = False  # anything beyond Start reached the queue in this attempt
        resp = None
        try:
            this = call.prepare(call) if call.prepare is not None else call
            resp = send(
                transport,
                this.method,
                this.url,
                this.headers,
                this.body,
                connect_timeout=timeouts.connect,
                read_timeout=read_timeout,
                classify=this.classify,
            )
            if state.stop_event.is_set():
                return
            chunks = _frames(resp, this, max_event_bytes)
            done = False
            for chunk in parse(chunks):
                if done:
                    continue  # the parser drains the body itself: let it
                cls = chunk.__class__
                if cls is Start:
                    if sent_start:
                        continue  # a retried attempt: the consumer already has one
                    sent_start = True
                elif cls is Done:
                    done = True
                elif not content and cls is not Usage:
                    content = True
                yield chunk
                if state.stopped:
                    return
            if done:
                # A parser may stop at its end marker ([DONE]) before the body ends;
                # reading the rest (normally just the closing chunk, already here)
                # lets the connection go back to the pool instead of being cut.
                for _ in itertools.islice(chunks, _MAX_TRAILING_FRAMES):
                    pass
            if not done:
                if state.stop_event.is_set():
                    return
                raise StreamInterruptedError(
                    "the stream ended before the provider said it was done; the connection "
                    "closed early (a proxy timeout or a server restart)"
                    + (", after some content arrived" if content else ""),
                )
            resp.close()
            return
        except Exception as exc:
            if state.stopped:
                return
            err = exc if isinstance(exc, LlmError) else _from_requests(exc, content)
            if err is not exc:
                err.__cause__ = exc
            if content or not getattr(err, "retryable", False):
                raise err from err.__cause__
            delay = retry.delay(attempt, getattr(err, "retry_after", None))
            if delay is None:
                raise err from err.__cause__
            if timeouts.total is not None and time.monotonic() + delay - started > timeouts.total:
                raise err from err.__cause__
            if resp is not None:
                resp.close()
                resp = None
            if not state.sleep(delay):
                return
            attempt += 1
        finally:
            if resp is not None:
                resp.close()


# How an SSE body may begin: a field name or a comment (after optional blank lines).
_SSE_STARTS = (b"data:", b"data\n", b"event:", b"id:", b"retry:", b":", b"data\r")


def _peek_non_stream(resp: Any, call: HttpCall, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """``chunks`` unchanged, unless the first bytes show the body is not a stream: then raise.

    Gateways answer a streaming request with ``200`` and a JSON error document,
    captive portals and proxies with an HTML page; framed as a stream either would
    look like an empty or broken stream and hide the real cause. The first bytes
    decide, whatever the content type says (some backends send SSE without an SSE
    content type): an SSE body starts with a field or a comment, an event-stream
    message with a length whose first byte is never ``{``, ``[`` or ``<``.
    """
    first = b""
    for first in chunks:
        if first.strip():
            break
    head = first.lstrip(b"\xef\xbb\xbf\r\n \t")
    lead = head[:1]
    framing = call.framing
    if lead == b"<":
        raise call.classify(502, resp.headers, _rest(first, chunks))  # a page: a proxy in the way
    if lead in (b"{", b"["):
        if framing == "ndjson":
            # A JSON line is what NDJSON is made of: only a body labelled as one JSON
            # document whose first piece is a whole error object is taken as one.
            ctype = (resp.headers.get("content-type") or "").lower()
            if "ndjson" in ctype or not _is_error_document(first):
                return itertools.chain((first,), chunks)
        _raise_document(resp, call, _rest(first, chunks))
    if framing == "sse" and head and not _may_be_sse(head):
        ctype = resp.headers.get("content-type") or "no content type"
        raise ApiError(
            f"{call.url} answered a streaming request with {ctype} that is not a stream "
            "(server-sent events); check that base_url points at the API",
            status=resp.status_code,
            body=_rest(first, chunks),
        )
    return itertools.chain((first,), chunks)


def _may_be_sse(head: bytes) -> bool:
    # The first chunk may be only a few bytes ("eve"): a prefix of a field counts.
    return any(head.startswith(s) or s.startswith(head) for s in _SSE_STARTS)


def _rest(first: bytes, chunks: Iterator[bytes]) -> str:
    body = bytearray(first)
    for more in chunks:
        body += more
        if len(body) > _MAX_DOCUMENT:
            break
    return bytes(body[:_MAX_DOCUMENT]).decode("utf-8", errors="replace")


def _is_error_document(data: bytes) -> bool:
    try:
        parsed = json.loads(data)
    except ValueError:
        return False
    return isinstance(parsed, dict) and "error" in parsed


def _raise_document(resp: Any, call: HttpCall, text: str) -> None:
    status = resp.status_code
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, list) and parsed:
        parsed = parsed[0]
    err = parsed.get("error") if isinstance(parsed, dict) else None
    if err is None and isinstance(parsed, dict) and ("message" in parsed or "detail" in parsed):
        err = parsed  # AWS ({"message"}) and FastAPI ({"detail"}) error shapes
    if err is None:
        raise ApiError(
            f"{call.url} answered a streaming request with a JSON document instead of a "
            "stream; check that base_url points at an endpoint that streams",
            status=status,
            body=text,
        )
    code = err.get("code") if isinstance(err, dict) else None
    if isinstance(code, int) and 400 <= code <= 599:
        status = code  # the HTTP status the gateway meant
    elif status < 400:
        status = 400
    raise call.classify(status, resp.headers, text)


def _frames(resp: Any, call: HttpCall, max_event_bytes: int) -> Iterator[Frame]:
    from ._transport._http import read_chunks

    chunks = _peek_non_stream(resp, call, read_chunks(resp))
    framing = call.framing
    if framing == "sse":
        from ._transport._sse import iter_sse

        return iter_sse(chunks, max_event_bytes=max_event_bytes)
    if framing == "ndjson":
        from ._transport._ndjson import iter_ndjson

        return iter_ndjson(chunks, max_event_bytes=max_event_bytes)
    from ._transport._eventstream import iter_eventstream

    return iter_eventstream(chunks, max_event_bytes=max_event_bytes)


def _from_requests(exc: Exception, content: bool) -> BaseException:
    """The typed error for a failure while reading the body."""
    import requests

    if isinstance(exc, (requests.exceptions.ReadTimeout, TimeoutError)) or (
        isinstance(exc, requests.exceptions.ConnectionError) and "timed out" in str(exc)
    ):
        return RequestTimeoutError(
            "the server sent nothing for longer than the socket read timeout", phase="idle"
        )
    if isinstance(exc, (requests.exceptions.RequestException, OSError)) or _is_urllib3_error(exc):
        text = f"{type(exc).__name__}: {exc}"
        if content:
            return StreamInterruptedError(f"the connection broke in the middle of the stream ({text})")
        return NetworkError(f"the connection broke before any content arrived ({text})")
    return _wrap(exc)


def _is_urllib3_error(exc: Exception) -> bool:
    import urllib3.exceptions

    return isinstance(exc, (urllib3.exceptions.HTTPError, ValueError)) and "urllib3" in type(
        exc
    ).__module__
