"""Pools that tell a stream which socket it reads from, so another thread can shut it down.

Closing a requests ``Response`` from another thread does not wake a thread blocked in
``recv``; shutting the socket down does. The reader thread installs a
:class:`ConnectionHolder` in a thread-local before it sends the request, and the pools
built here register every connection they hand out to that holder. The holder hands
the connection back to the pool under its lock, so a close can never shut down a
socket that already serves another stream. Their connections also read a response
through a larger buffer than http.client's (see ``_Response``).
"""

from __future__ import annotations

import http.client
import socket
import threading
from typing import Any, Optional

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

__all__ = ["ConnectionHolder", "TrackedHTTPConnectionPool", "TrackedHTTPSConnectionPool", "current"]

_local = threading.local()
_TAG = "_llm_sync_holder"
# http.client reads a response through an 8 KiB buffer. Each refill is a recv() that
# releases the GIL, and a consumer thread waiting for chunks takes it there: refilling
# 64 KiB at a time makes those thread switches 3-5 times rarer (0.058 -> 0.012 per
# chunk of a fast chat-completions stream, 0.5-1 µs less per chunk). A recv returns
# what has arrived, so a bigger buffer never waits for more.
_READ_BUFFER = 64 * 1024


def current() -> Optional[ConnectionHolder]:
    """The holder installed by the calling thread, if any."""
    return getattr(_local, "holder", None)


class ConnectionHolder:
    """The connection one stream reads from, and whether that stream was stopped."""

    __slots__ = ("_conn", "_lock", "stopped")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn: Any = None
        self.stopped = False

    def install(self) -> None:
        """Make this the holder of the calling (reader) thread."""
        _local.holder = self

    @staticmethod
    def uninstall() -> None:
        _local.holder = None

    def attach(self, conn: Any) -> None:
        with self._lock:
            self._conn = conn
            setattr(conn, _TAG, self)
            if self.stopped:
                _shutdown_sock(conn)

    def connected(self, conn: Any) -> None:
        # A fresh connection has no socket until it connects; a stop that came in
        # between must still take effect.
        with self._lock:
            if self.stopped and self._conn is conn:
                _shutdown_sock(conn)

    def release(self, conn: Any) -> bool:
        """Detach ``conn`` on its way back to the pool; False if it must be closed instead."""
        with self._lock:
            if getattr(conn, _TAG, None) is self:
                setattr(conn, _TAG, None)
            if self._conn is conn:
                self._conn = None
            return not self.stopped

    def shutdown(self) -> None:
        """Stop the stream: wake a reader blocked on the socket. Safe from any thread."""
        with self._lock:
            self.stopped = True
            if self._conn is not None:
                _shutdown_sock(self._conn)


def _shutdown_sock(conn: Any) -> None:
    sock: Optional[socket.socket] = getattr(conn, "sock", None)
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed or never connected: nothing to wake


class _TrackingMixin:
    def _get_conn(self, timeout: Optional[float] = None) -> Any:
        conn = super()._get_conn(timeout)  # type: ignore[misc]
        holder = current()
        if holder is not None:
            holder.attach(conn)
        return conn

    def _put_conn(self, conn: Any) -> None:
        holder = getattr(conn, _TAG, None) if conn is not None else None
        if holder is not None and not holder.release(conn):
            # The stream was stopped and its socket shut down: never pool it.
            conn.close()
            conn = None
        super()._put_conn(conn)  # type: ignore[misc]

    def _new_conn(self) -> Any:
        conn = super()._new_conn()  # type: ignore[misc]
        connect = conn.connect

        def tracked_connect() -> None:
            connect()
            holder = getattr(conn, _TAG, None)
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


class _HTTPConnection(HTTPConnection):
    response_class = _Response


class _HTTPSConnection(HTTPSConnection):
    response_class = _Response


class TrackedHTTPConnectionPool(_TrackingMixin, HTTPConnectionPool):
    """An ``HTTPConnectionPool`` that registers its connections with the reader's holder."""

    ConnectionCls = _HTTPConnection


class TrackedHTTPSConnectionPool(_TrackingMixin, HTTPSConnectionPool):
    """An ``HTTPSConnectionPool`` that registers its connections with the reader's holder."""

    ConnectionCls = _HTTPSConnection
