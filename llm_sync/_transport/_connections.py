"""Pools that register each connection they hand out with the reading thread's holder (see ``_holder``).

Their connections also show a new socket to the holder before connecting it, and read
a response through a larger buffer than http.client's and, on a reader thread, with no
socket timeout (see ``_Response``).
"""

from __future__ import annotations

import collections
import http.client
import queue
import socket
import sys
from typing import Any, Deque, Optional

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from ._holder import TAG, ConnectionHolder, current

__all__ = ["TrackedHTTPConnectionPool", "TrackedHTTPSConnectionPool"]

# http.client reads a response through an 8 KiB buffer. Each refill is a recv() that
# releases the GIL, and a consumer thread waiting for chunks takes it there: refilling
# 64 KiB at a time makes those thread switches 3-5 times rarer (0.058 -> 0.012 per
# chunk of a fast chat-completions stream, 0.5-1 µs less per chunk). A recv returns
# what has arrived, so a bigger buffer never waits for more.
_READ_BUFFER = 64 * 1024


class _TrackingMixin:
    def _get_conn(self, timeout: Optional[float] = None) -> Any:
        conn = super()._get_conn(timeout)  # type: ignore[misc]
        holder = current()
        if holder is not None:
            holder.attach(conn)
        return conn

    def _put_conn(self, conn: Any) -> None:
        holder = getattr(conn, TAG, None) if conn is not None else None
        if holder is not None and not holder.release(conn):
            # The stream was stopped and its socket shut down: never pool it.
            conn.close()
            conn = None
        super()._put_conn(conn)  # type: ignore[misc]

    def _new_conn(self) -> Any:
        conn = super()._new_conn()  # type: ignore[misc]
        connect = conn.connect

        def tracked_connect() -> None:
            try:
                connect()
            finally:
                holder = getattr(conn, TAG, None)
                if holder is not None:
                    holder.connected(conn)

        conn.connect = tracked_connect
        return conn


class _Response(http.client.HTTPResponse):
    def __init__(self, sock: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        # Nothing has been read through the default reader yet; closing it only drops
        # its reference to the socket.
        self.fp.close()
        self.fp = sock.makefile("rb", buffering=_READ_BUFFER)
        holder = current()
        if holder is not None:
            # A reader thread's stream keeps its own deadlines and shuts the socket down
            # to end a read, so the socket needs no timeout: with one, every read is a
            # poll() and then a recv(), each letting go of the GIL, and under many
            # streams each of those is a thread switch.
            sock.settimeout(None)
            holder.reading(sock)


class _ConnectingMixin:
    """A connection that shows its socket to the reader's holder before connecting it.

    urllib3 creates and connects the socket in one call, so a stop could not reach a
    connect to a host that never answers (nor the TLS handshake after it) until the
    connect timeout. This is urllib3's ``_new_conn`` with that one step added, and
    the same errors; without a holder (a connection outside a stream) it is urllib3's.
    """

    def _new_conn(self) -> socket.socket:
        holder: Optional[ConnectionHolder] = getattr(self, TAG, None)
        if holder is None:
            sock: socket.socket = super()._new_conn()  # type: ignore[misc]
            return sock
        import urllib3.exceptions as errors

        conn: Any = self
        try:
            sock = _open(conn, holder)
        except socket.gaierror as exc:
            resolution = getattr(errors, "NameResolutionError", None)  # urllib3 2
            if resolution is not None:
                raise resolution(conn.host, conn, exc) from exc
            raise errors.NewConnectionError(conn, f"Failed to establish a new connection: {exc}") from exc
        except socket.timeout as exc:
            raise errors.ConnectTimeoutError(
                conn, f"Connection to {conn.host} timed out. (connect timeout={conn.timeout})"
            ) from exc
        except OSError as exc:
            raise errors.NewConnectionError(conn, f"Failed to establish a new connection: {exc}") from exc
        sys.audit("http.client.connect", conn, conn.host, conn.port)
        return sock


def _open(conn: Any, holder: ConnectionHolder) -> socket.socket:
    """``urllib3.util.connection.create_connection``, telling ``holder`` of each socket."""
    from urllib3.util.connection import _set_socket_options, allowed_gai_family

    host: str = conn._dns_host
    if host.startswith("["):
        host = host.strip("[]")
    timeout = conn.timeout
    error: Optional[OSError] = None
    for family, kind, proto, _, address in socket.getaddrinfo(host, conn.port, allowed_gai_family(), socket.SOCK_STREAM):
        sock = None
        try:
            sock = socket.socket(family, kind, proto)
            holder.connecting(sock)
            _set_socket_options(sock, conn.socket_options)
            if timeout is None or isinstance(timeout, (int, float)):
                sock.settimeout(timeout)  # else urllib3's "default" token: leave the default
            if conn.source_address:
                sock.bind(conn.source_address)
            sock.connect(address)
            return sock
        except OSError as exc:
            error = exc
            if sock is not None:
                sock.close()
    raise error if error is not None else OSError("getaddrinfo returned an empty list")


class _HTTPConnection(_ConnectingMixin, HTTPConnection):
    response_class = _Response


class _HTTPSConnection(_ConnectingMixin, HTTPSConnection):
    response_class = _Response


class _Idle:
    """A pool's idle connections, last in first out, with no lock of its own.

    ``queue.LifoQueue`` takes a lock in Python code on every get and put. With
    hundreds of threads starting streams at once, a thread that has just taken that
    lock must then wait for the GIL while every other thread queues on the lock: a
    convoy in which streams started together took minutes to start. A deque's
    ``append`` and ``pop`` are atomic under the GIL. Only the non-blocking use the
    pools here make of it is supported (requests never blocks on a pool): ``get`` on
    an empty pool raises ``queue.Empty`` at once, and ``put`` on a full one raises
    ``queue.Full`` so that urllib3 closes the connection.
    """

    __slots__ = ("items", "maxsize")

    def __init__(self, maxsize: int) -> None:
        self.items: Deque[Any] = collections.deque()
        self.maxsize = maxsize

    def get(self, block: bool = True, timeout: Optional[float] = None) -> Any:
        try:
            return self.items.pop()
        except IndexError:
            raise queue.Empty from None

    def put(self, item: Any, block: bool = True, timeout: Optional[float] = None) -> None:
        items = self.items
        items.append(item)
        if len(items) > self.maxsize:
            # Another thread may have put one since: take back this one, whichever it is.
            try:
                items.remove(item)
            except ValueError:
                pass
            raise queue.Full

    def qsize(self) -> int:
        return len(self.items)

    def empty(self) -> bool:
        return not self.items


class TrackedHTTPConnectionPool(_TrackingMixin, HTTPConnectionPool):
    """An ``HTTPConnectionPool`` that registers its connections with the reader's holder."""

    ConnectionCls = _HTTPConnection
    QueueCls = _Idle  # type: ignore[assignment]


class TrackedHTTPSConnectionPool(_TrackingMixin, HTTPSConnectionPool):
    """An ``HTTPSConnectionPool`` that registers its connections with the reader's holder."""

    ConnectionCls = _HTTPSConnection
    QueueCls = _Idle  # type: ignore[assignment]
