"""An in-process HTTP/1.1 server on 127.0.0.1 that plays scripted replies.

Built on raw sockets (no ``http.server``) so that a test controls exactly what goes on the wire and
when: each reply is a status, headers and a list of *body steps*::

    with LoopbackServer() as server:
        server.reply(Reply(
            status=200,
            headers={"content-type": "text/event-stream"},
            body=[b"data: 1\\n\\n", Sleep(0.05), b"data: 2\\n\\n"],
            chunked=True,
        ))
        ...  # point the client at server.url
        assert server.requests[0].json()["model"] == "m"

Body steps:

``bytes``
    Sent at once; in chunked mode as one chunked-encoding chunk (empty bytes are skipped there,
    since an empty chunk would end the body).
``Sleep(seconds)``
    Pause (the response is abandoned if the server stops or the client goes away meanwhile).
``Stall(max_seconds=10)``
    Send nothing until ``server.release()``, ``server.close()`` or ``max_seconds`` (a release
    ends the stalls of every response already started when it is called).
``Reset()``
    Abort the connection with ``SO_LINGER`` 0: the client sees ``ECONNRESET``.
``Close()``
    Close the connection now (mid-body: a truncated body or truncated chunked encoding).
``Raw(data)``
    Write bytes without chunk framing (e.g. a malformed chunk header).

Framing: ``chunked=True`` adds ``transfer-encoding: chunked`` and the terminating zero chunk.
With ``chunked=False`` a ``content-length`` is sent when the body is only bytes steps (unless the
reply's headers set one themselves: a deliberately wrong length is allowed); otherwise the reply is
close-delimited (``connection: close``).

Replies are consumed first in, first out, one per request; a request that finds the queue empty is
answered ``500 no scripted reply``. A callable ``fn(RecordedRequest) -> Reply`` may be queued in
place of a reply (``server.reply(fn)`` or ``Reply.from_function(fn)``). Connections are kept alive
across requests; each runs in its own daemon thread. ``close()`` (or leaving the ``with`` block)
stops everything within about two seconds and leaves no thread or socket behind.
"""

from __future__ import annotations

import collections
import http
import json
import select
import socket
import struct
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, List, Mapping, Optional, Sequence, Union
from urllib.parse import parse_qs, urlsplit

from requests.structures import CaseInsensitiveDict

__all__ = [
    "Close",
    "LoopbackServer",
    "Raw",
    "RecordedRequest",
    "Reply",
    "Reset",
    "Sleep",
    "Stall",
    "ndjson",
    "sse",
    "sse_chunks",
    "sse_event",
]

_MAX_HEADER_BYTES = 256 * 1024
_POLL = 0.02  # seconds; the granularity of waits that watch for stop / release / peer close
_JOIN_BUDGET = 2.0  # seconds close() may spend joining threads


# --------------------------------------------------------------------------------------------
# Body steps


@dataclass(frozen=True)
class Sleep:
    """Pause for ``seconds`` before the next step."""

    seconds: float


@dataclass(frozen=True)
class Stall:
    """Send nothing until ``server.release()``, server stop, or ``max_seconds`` pass."""

    max_seconds: float = 10.0


@dataclass(frozen=True)
class Reset:
    """Abort the connection (SO_LINGER 0 then close): the client sees ECONNRESET."""


@dataclass(frozen=True)
class Close:
    """Close the connection now (FIN), wherever the response stands."""


@dataclass(frozen=True)
class Raw:
    """Write ``data`` as-is, without chunked framing."""

    data: bytes


Step = Union[bytes, Sleep, Stall, Reset, Close, Raw]


# --------------------------------------------------------------------------------------------
# Requests and replies


@dataclass
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str  # the request target as sent, query string included
    headers: CaseInsensitiveDict  # type: ignore[type-arg]
    body: bytes
    http_version: str = "HTTP/1.1"
    connection_id: int = 0  # which accepted connection carried it (1, 2, ...)

    @property
    def path_only(self) -> str:
        """The path without the query string."""
        return urlsplit(self.path).path

    @property
    def query(self) -> Dict[str, List[str]]:
        """The query string parsed with ``urllib.parse.parse_qs``."""
        return parse_qs(urlsplit(self.path).query, keep_blank_values=True)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.body)


ReplyFunction = Callable[[RecordedRequest], "Reply"]


@dataclass
class Reply:
    """A scripted response."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Union[bytes, Sequence[Step]] = ()
    chunked: bool = False
    reason: Optional[str] = None
    function: Optional[ReplyFunction] = None  # set by from_function

    @classmethod
    def from_function(cls, fn: ReplyFunction) -> Reply:
        """A reply computed from the request when it arrives."""
        return cls(function=fn)

    @classmethod
    def json(
        cls, obj: Any, status: int = 200, headers: Optional[Mapping[str, str]] = None
    ) -> Reply:
        """A content-length JSON reply."""
        merged = {"content-type": "application/json"}
        merged.update(headers or {})
        return cls(status=status, headers=merged, body=[json.dumps(obj).encode("utf-8")])

    @classmethod
    def event_stream(
        cls,
        *events: Any,
        status: int = 200,
        headers: Optional[Mapping[str, str]] = None,
        chunked: bool = True,
    ) -> Reply:
        """An SSE reply sending one chunk per event (see ``sse_event`` for the event forms)."""
        merged = {"content-type": "text/event-stream"}
        merged.update(headers or {})
        return cls(status=status, headers=merged, body=sse_chunks(*events), chunked=chunked)

    def steps(self) -> List[Step]:
        if isinstance(self.body, (bytes, bytearray, memoryview)):
            return [bytes(self.body)]
        return list(self.body)


# --------------------------------------------------------------------------------------------
# Body helpers


def _data_text(data: Any) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8")
    if isinstance(data, str):
        return data
    return json.dumps(data)


def sse_event(event: Optional[str], data: Any, id: Optional[str] = None) -> bytes:
    """One SSE event: ``event:`` line when ``event`` is given, one ``data:`` line per line of
    ``data`` (a str/bytes as-is, anything else JSON-dumped), then the blank line."""
    lines = []
    if id is not None:
        lines.append(f"id: {id}")
    if event is not None:
        lines.append(f"event: {event}")
    for line in _data_text(data).split("\n"):
        lines.append(f"data: {line}")
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def _one_event(item: Any) -> bytes:
    if isinstance(item, tuple):
        return sse_event(*item)
    if isinstance(item, bytes):
        return item  # already encoded (e.g. a comment line ": ping\n\n")
    return sse_event(None, item)


def sse_chunks(*events: Any) -> List[bytes]:
    """Encode events as a list of bytes, one per event.

    Each event is ``(event_name, data)`` (or ``(event_name, data, id)``; ``event_name`` may be
    None), a dict/list/str (sent as a bare ``data:`` event, dicts and lists JSON-dumped), or bytes
    passed through unchanged.
    """
    return [_one_event(e) for e in events]


def sse(*events: Any) -> bytes:
    """Encode events (see ``sse_chunks``) into one bytes object."""
    return b"".join(sse_chunks(*events))


def ndjson(*objs: Any) -> bytes:
    """One JSON document per line, each line ending in a newline."""
    return b"".join(json.dumps(o).encode("utf-8") + b"\n" for o in objs)


# --------------------------------------------------------------------------------------------
# The server


class _Abort(Exception):
    """The connection must end now (stop, peer closed, Close step)."""


class _ResetNow(Exception):
    """A Reset step: close with SO_LINGER 0."""


class _Connection:
    def __init__(self, sock: socket.socket, conn_id: int) -> None:
        self.sock = sock
        self.id = conn_id
        self.lock = threading.Lock()
        self.closed = False
        self.thread: Optional[threading.Thread] = None

    def shutdown(self) -> None:
        """Wake a thread blocked in recv/send on this socket (called from another thread)."""
        with self.lock:
            if self.closed:
                return
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self, reset: bool = False) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
            if reset:
                try:
                    self.sock.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                except OSError:
                    pass
            try:
                self.sock.close()
            except OSError:
                pass


class LoopbackServer:
    """See the module docstring."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)  # requests, connections, release, stop
        self._replies: Deque[Union[Reply, ReplyFunction]] = collections.deque()
        self._requests: List[RecordedRequest] = []
        self._connections: Dict[int, _Connection] = {}
        self._threads: List[threading.Thread] = []
        self._accepted = 0
        self._release_generation = 0
        self._stopped = False
        self.errors: List[str] = []  # tracebacks of failures inside the server (should stay empty)

        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._listener.bind((host, 0))
            self._listener.listen(64)
        except BaseException:
            self._listener.close()
            raise
        self.host = host
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name="loopback-server", daemon=True
        )
        self._accept_thread.start()

    # -- public API -----------------------------------------------------------------------------

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reply(self, *replies: Union[Reply, ReplyFunction]) -> None:
        """Queue replies (or functions of the request returning a reply), first in first out."""
        with self._lock:
            for r in replies:
                if not isinstance(r, Reply) and not callable(r):
                    raise TypeError(f"not a Reply or a callable: {r!r}")
                self._replies.append(r)

    @property
    def pending_replies(self) -> int:
        with self._lock:
            return len(self._replies)

    @property
    def requests(self) -> List[RecordedRequest]:
        """A snapshot of the requests received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def open_connections(self) -> int:
        """Client connections currently open on the server side."""
        with self._lock:
            return len(self._connections)

    @property
    def connections_accepted(self) -> int:
        """How many connections were accepted in total."""
        with self._lock:
            return self._accepted

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> List[RecordedRequest]:
        """Wait until at least ``n`` requests arrived; raise TimeoutError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"expected {n} request(s) within {timeout}s, got {len(self._requests)}"
                    )
                self._cond.wait(left)
            return list(self._requests)

    def wait_for_open_connections(self, n: int, timeout: float = 5.0) -> None:
        """Wait until exactly ``n`` connections are open (e.g. 0 after the client closed)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._connections) != n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"expected {n} open connection(s) within {timeout}s, "
                        f"have {len(self._connections)}"
                    )
                self._cond.wait(min(left, _POLL))

    def release(self) -> None:
        """End the Stalls of every response that has already started (sent its status line):
        those in progress now and any still ahead in such a response. Responses that start
        later are not affected. Because a response's stalls count from its start, a test that
        has seen any byte of a response can release it without racing the server thread."""
        with self._cond:
            self._release_generation += 1
            self._cond.notify_all()

    def close(self) -> None:
        """Stop accepting, end stalls, close every connection, join threads (bounded)."""
        with self._cond:
            if self._stopped:
                return
            self._stopped = True
            self._cond.notify_all()
        try:  # wakes the accept loop's select at once (Linux), rather than at its next poll
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        deadline = time.monotonic() + _JOIN_BUDGET
        self._accept_thread.join(max(0.0, deadline - time.monotonic()))
        self._listener.close()
        with self._lock:
            conns = list(self._connections.values())
            threads = list(self._threads)
        for conn in conns:
            conn.shutdown()
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        # Anything still alive is stuck beyond the budget: close its socket regardless.
        with self._lock:
            leftovers = list(self._connections.values())
        for conn in leftovers:
            conn.close()

    @property
    def closed(self) -> bool:
        with self._lock:
            return self._stopped

    # -- accept and serve -----------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while True:
            with self._lock:
                if self._stopped:
                    return
            try:
                ready, _, _ = select.select([self._listener], [], [], 0.05)
            except (OSError, ValueError):
                return
            if not ready:
                continue
            try:
                sock, _addr = self._listener.accept()
            except OSError:
                continue
            with self._lock:
                if self._stopped:
                    sock.close()
                    return
                self._accepted += 1
                conn = _Connection(sock, self._accepted)
                self._connections[conn.id] = conn
                t = threading.Thread(
                    target=self._serve_connection,
                    args=(conn,),
                    name=f"loopback-server-conn-{conn.id}",
                    daemon=True,
                )
                conn.thread = t
                self._threads.append(t)
                self._cond.notify_all()
            t.start()

    def _serve_connection(self, conn: _Connection) -> None:
        reset = False
        try:
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            buf = bytearray()
            while not self.closed:
                req = self._read_request(conn, buf)
                if req is None:
                    return
                with self._cond:
                    self._requests.append(req)
                    self._cond.notify_all()
                reply = self._next_reply(req)
                keep_alive = self._send_reply(conn, req, reply)
                if not keep_alive:
                    return
        except _ResetNow:
            reset = True
        except (_Abort, OSError):
            pass
        except Exception:
            with self._lock:
                self.errors.append(traceback.format_exc())
        finally:
            conn.close(reset=reset)
            with self._cond:
                self._connections.pop(conn.id, None)
                self._cond.notify_all()

    def _recv(self, conn: _Connection) -> bytes:
        return conn.sock.recv(65536)

    def _read_request(self, conn: _Connection, buf: bytearray) -> Optional[RecordedRequest]:
        # Headers
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(buf) > _MAX_HEADER_BYTES:
                raise _Abort("request headers too large")
            data = self._recv(conn)
            if not data:
                return None  # client closed (between requests or mid-headers)
            buf += data
        head = bytes(buf[:end]).decode("latin-1")
        del buf[: end + 4]
        lines = head.split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            raise _Abort(f"bad request line {lines[0]!r}") from None
        headers: CaseInsensitiveDict = CaseInsensitiveDict()  # type: ignore[type-arg]
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            name, value = name.strip(), value.strip()
            if name in headers:
                headers[name] = headers[name] + ", " + value
            else:
                headers[name] = value
        # Body
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._read_chunked_body(conn, buf)
        else:
            length = int(headers.get("content-length", "0") or "0")
            while len(buf) < length:
                data = self._recv(conn)
                if not data:
                    return None
                buf += data
            body = bytes(buf[:length])
            del buf[:length]
        return RecordedRequest(
            method=method,
            path=target,
            headers=headers,
            body=body,
            http_version=version,
            connection_id=conn.id,
        )

    def _read_line(self, conn: _Connection, buf: bytearray) -> bytes:
        while True:
            i = buf.find(b"\r\n")
            if i >= 0:
                line = bytes(buf[:i])
                del buf[: i + 2]
                return line
            if len(buf) > _MAX_HEADER_BYTES:
                raise _Abort("chunk line too long")
            data = self._recv(conn)
            if not data:
                raise _Abort("client closed mid-body")
            buf += data

    def _read_chunked_body(self, conn: _Connection, buf: bytearray) -> bytes:
        body = bytearray()
        while True:
            size = int(self._read_line(conn, buf).split(b";", 1)[0].strip(), 16)
            if size == 0:
                while self._read_line(conn, buf):  # trailers up to the blank line
                    pass
                return bytes(body)
            while len(buf) < size + 2:
                data = self._recv(conn)
                if not data:
                    raise _Abort("client closed mid-body")
                buf += data
            body += buf[:size]
            del buf[: size + 2]

    def _next_reply(self, req: RecordedRequest) -> Reply:
        with self._lock:
            item = self._replies.popleft() if self._replies else None
        if item is None:
            return Reply(
                status=500,
                headers={"content-type": "text/plain"},
                body=[b"no scripted reply"],
            )
        fn = item.function if isinstance(item, Reply) else item
        if fn is None:
            assert isinstance(item, Reply)
            return item
        try:
            result = fn(req)
            if not isinstance(result, Reply):
                raise TypeError(f"reply function returned {result!r}, not a Reply")
            if result.function is not None:
                raise TypeError("a reply function must return a concrete Reply")
            return result
        except Exception:
            tb = traceback.format_exc()
            with self._lock:
                self.errors.append(tb)
            return Reply(
                status=500,
                headers={"content-type": "text/plain"},
                body=[b"reply function failed\n" + tb.encode("utf-8", "replace")],
            )

    def _send_reply(self, conn: _Connection, req: RecordedRequest, reply: Reply) -> bool:
        """Write the reply; return whether the connection may serve another request."""
        steps = reply.steps()
        for s in steps:
            if not isinstance(s, (bytes, Sleep, Stall, Reset, Close, Raw)):
                raise TypeError(f"not a body step: {s!r}")
        user_headers = dict(reply.headers)
        lower = {k.lower(): v for k, v in user_headers.items()}
        no_body = req.method.upper() == "HEAD" or reply.status in (204, 304)
        framing: List[str] = []
        close_delimited = False
        if reply.chunked:
            if "transfer-encoding" not in lower:
                framing.append("transfer-encoding: chunked")
        elif "content-length" in lower:
            pass
        elif all(isinstance(s, bytes) for s in steps):
            framing.append(f"content-length: {sum(len(s) for s in steps)}")  # type: ignore[arg-type]
        else:
            close_delimited = True
            if "connection" not in lower:
                framing.append("connection: close")
        reason = reply.reason
        if reason is None:
            try:
                reason = http.HTTPStatus(reply.status).phrase
            except ValueError:
                reason = "Unknown"
        head_lines = [f"HTTP/1.1 {reply.status} {reason}"]
        head_lines += [f"{k}: {v}" for k, v in user_headers.items()]
        head_lines += framing
        head = ("\r\n".join(head_lines) + "\r\n\r\n").encode("latin-1")
        with self._lock:
            generation = self._release_generation  # release() from now on ends this one's stalls
        conn.sock.sendall(head)

        if not no_body:
            for step in steps:
                self._play_step(conn, step, reply.chunked, generation)
            if reply.chunked:
                conn.sock.sendall(b"0\r\n\r\n")

        if close_delimited:
            return False
        if lower.get("connection", "").lower() == "close":
            return False
        if req.headers.get("connection", "").lower() == "close":
            return False
        return req.http_version.upper() == "HTTP/1.1" or (
            req.headers.get("connection", "").lower() == "keep-alive"
        )

    def _play_step(self, conn: _Connection, step: Step, chunked: bool, generation: int) -> None:
        if isinstance(step, bytes):
            if chunked:
                if step:
                    conn.sock.sendall(b"%x\r\n" % len(step) + step + b"\r\n")
            elif step:
                conn.sock.sendall(step)
        elif isinstance(step, Raw):
            conn.sock.sendall(step.data)
        elif isinstance(step, Sleep):
            self._wait(conn, step.seconds, None)
        elif isinstance(step, Stall):
            self._wait(conn, step.max_seconds, generation)
        elif isinstance(step, Reset):
            raise _ResetNow()
        elif isinstance(step, Close):
            raise _Abort("Close step")

    def _wait(self, conn: _Connection, seconds: float, generation: Optional[int]) -> None:
        """Wait up to ``seconds``; raise _Abort on server stop or peer close; return early once
        ``release()`` has been called after ``generation`` was read (None: not releasable)."""
        deadline = time.monotonic() + seconds
        watch_peer = True
        while True:
            with self._cond:
                if self._stopped:
                    raise _Abort("server stopped")
                if generation is not None and self._release_generation != generation:
                    return
            left = deadline - time.monotonic()
            if left <= 0:
                return
            slice_ = min(left, _POLL)
            if watch_peer:
                try:
                    readable, _, _ = select.select([conn.sock], [], [], slice_)
                except (OSError, ValueError):
                    raise _Abort("socket gone") from None
                if readable:
                    try:
                        peek = conn.sock.recv(1, socket.MSG_PEEK)
                    except OSError:
                        raise _Abort("peer reset") from None
                    if not peek:
                        raise _Abort("peer closed")
                    watch_peer = False  # pipelined data waiting: stop polling it (no busy loop)
            else:
                with self._cond:
                    self._cond.wait(slice_)
