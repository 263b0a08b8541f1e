"""The holder of the connection a stream reads from, so another thread can shut it down.

Closing a requests ``Response`` from another thread does not wake a thread blocked in
``recv``; shutting the socket down does. The reader thread installs a
:class:`ConnectionHolder` in a thread-local before it sends the request, and the pools
of ``_connections`` register every connection they hand out to that holder. The holder
hands the connection back to the pool under its lock, so a close can never shut down a
socket that already serves another stream. This module imports neither urllib3 nor
requests, so the engine can make a holder for every stream without loading them.

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

import os
import threading
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    import socket

__all__ = ["TAG", "ConnectionHolder", "current"]

_local = threading.local()
# The attribute a tracked connection names its holder by.
TAG = "_llm_sync_holder"


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
            setattr(conn, TAG, self)
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
            if getattr(conn, TAG, None) is self:
                setattr(conn, TAG, None)
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
    import socket  # loaded by whoever made ``sock``; not imported by ``import llm_sync``

    # A socket object that was closed (or detached) has no descriptor any more, so
    # this can never reach a descriptor number the process has since reused.
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed, or not connected yet: the connect sees the shutdown
