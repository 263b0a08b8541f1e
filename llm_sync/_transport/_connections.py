"""Pools that tell a stream which socket it reads from, so another thread can shut it down.

Closing a requests ``Response`` from another thread does not wake a thread blocked in
``recv``; shutting the socket down does. The reader thread installs a
:class:`ConnectionHolder` in a thread-local before it sends the request, and the pools
built here register every connection they hand out to that holder. The holder hands
the connection back to the pool under its lock, so a close can never shut down a
socket that already serves another stream. Their connections also read a response
through a larger buffer than http.client's (see ``_Response``).

The holder knows three sockets, because the connection's own ``sock`` is not always
the one in use:

- while connecting (TCP, then TLS), a duplicate of the new socket's descriptor: the
  TLS wrapper detaches the original socket object before its handshake, so only a
  descriptor of the holder's own still reaches the socket then;
- the connection's ``sock`` once connected;
- the socket a response reads from: http.client drops ``conn.sock`` (handing the
  socket to the response) when the response will close the connection, as every
  HTTP/1.0 and ``Connection: close`` response does.

A holder acts only in the process that made it: a forked child that closes or
finalizes a stream it inherited must not shut down the parent's socket, which the
two processes share.
"""

from __future__ import annotations

import http.client
import os
import socket
import sys
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

    __slots__ = ("_conn", "_connecting", "_reading", "_lock", "_pid", "stopped")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn: Any = None
        # A duplicate descriptor of the socket being connected (see the module docstring).
        self._connecting: Optional[socket.socket] = None
        # The socket of the response being read.
        self._reading: Optional[socket.socket] = None
        self._pid = os.getpid()
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

    def connecting(self, sock: socket.socket) -> None:
        """``sock`` was just created for this holder's connection and is about to connect."""
        dup = sock.dup()
        with self._lock:
            old, self._connecting = self._connecting, dup
            if self.stopped:
                _shutdown(dup)
        if old is not None:
            old.close()

    def connected(self, conn: Any) -> None:
        """``conn.connect()`` returned or raised: the duplicate descriptor goes."""
        with self._lock:
            dup, self._connecting = self._connecting, None
            # A fresh connection has no socket until it connects; a stop that came in
            # between must still take effect.
            if self.stopped and self._conn is conn:
                _shutdown_sock(conn)
        if dup is not None:
            dup.close()

    def reading(self, sock: socket.socket) -> None:
        """A response is about to be read from ``sock``."""
        with self._lock:
            self._reading = sock
            if self.stopped:
                _shutdown(sock)

    def release(self, conn: Any) -> bool:
        """Detach ``conn`` on its way back to the pool; False if it must be closed instead."""
        with self._lock:
            if getattr(conn, _TAG, None) is self:
                setattr(conn, _TAG, None)
            if self._conn is conn:
                self._conn = None
                # Its socket may now serve another stream.
                self._reading = None
            return not self.stopped

    def shutdown(self) -> None:
        """Stop the stream: wake a reader blocked on the socket. Safe from any thread."""
        with self._lock:
            self.stopped = True
            if self._pid != os.getpid():
                return  # a forked child: the sockets are shared with the parent's live stream
            if self._conn is not None:
                _shutdown_sock(self._conn)
            for sock in (self._connecting, self._reading):
                if sock is not None:
                    _shutdown(sock)


def _shutdown_sock(conn: Any) -> None:
    sock: Optional[socket.socket] = getattr(conn, "sock", None)
    if sock is not None:
        _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    # A socket object that was closed (or detached) has no descriptor any more, so
    # this can never reach a descriptor number the process has since reused.
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed, or not connected yet: the connect sees the shutdown


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
            try:
                connect()
            finally:
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
        holder = current()
        if holder is not None:
            holder.reading(sock)


class _ConnectingMixin:
    """A connection that shows its socket to the reader's holder before connecting it.

    urllib3 creates and connects the socket in one call, so a stop could not reach a
    connect to a host that never answers (nor the TLS handshake after it) until the
    connect timeout. This is urllib3's ``_new_conn`` with that one step added, and
    the same errors; without a holder (a connection outside a stream) it is urllib3's.
    """

    def _new_conn(self) -> socket.socket:
        holder: Optional[ConnectionHolder] = getattr(self, _TAG, None)
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


class TrackedHTTPConnectionPool(_TrackingMixin, HTTPConnectionPool):
    """An ``HTTPConnectionPool`` that registers its connections with the reader's holder."""

    ConnectionCls = _HTTPConnection


class TrackedHTTPSConnectionPool(_TrackingMixin, HTTPSConnectionPool):
    """An ``HTTPSConnectionPool`` that registers its connections with the reader's holder."""

    ConnectionCls = _HTTPSConnection
