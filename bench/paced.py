"""A paced loopback SSE server for the fan-out benchmark: one event per interval per stream, from one thread.

Run as its own process (``python -m bench.paced``); it prints ``READY <port>``
and serves until its standard input closes. One ``selectors`` loop serves every
connection: a heap holds each stream's next due time, and a due event is one
pre-rendered HTTP chunk written with one ``send``. A stream's schedule is
absolute (text *i* at request + phase + *i* intervals), so a late send does not
delay the ones after it; the phase (0 to one interval, spread evenly over the
streams) keeps streams released together from all falling due at the same instant,
as real streams, which start at their own times, do not.

Options ride in the path, like ``bench.server``: ``POST /n=150,ms=20/v1/chat/completions``
or ``.../v1/messages`` (Anthropic); ``n`` text events, ``ms`` between them. Every
text delta is distinct (a piece of ``wire.PIECES`` and its index): litellm aborts a
stream that repeats one chunk.

Whether the server keeps pace is measured, not assumed: every send records how
late it went out against its schedule. A line ``STATS`` on standard input makes
the server print (as one JSON line) those lateness figures and its own CPU time
since the previous ``STATS``, and start counting again.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import resource
import selectors
import socket
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

from bench import wire

_NOT_FOUND = (b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 52\r\n\r\n"
              b'{"error":{"type":"not_found","message":"not found."}}')


def token(i: int) -> str:
    """The ``i``-th text delta of every paced stream: distinct, about one token, some non-ASCII."""
    return f"{wire.PIECES[i % len(wire.PIECES)]}{i}"


def expected_text(n: int) -> str:
    return "".join(token(i) for i in range(n))


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class Script:
    """One stream's bytes: ``opening`` at once, then ``texts[i]`` when due; ``closing`` with the last."""

    def __init__(self, api: str, n: int, usage: bool) -> None:
        evs = wire.events(api, n, usage, [token(i) for i in range(n)])
        first = 1 if api == "openai" else 3  # the events before the first text delta
        self.opening = wire.head(api) + b"".join(_chunk(e) for e in evs[:first])
        self.texts = [_chunk(e) for e in evs[first:first + n]]
        self.closing = b"".join(_chunk(e) for e in evs[first + n:]) + b"0\r\n\r\n"


_scripts: Dict[Tuple[str, int, bool], Script] = {}


def script(api: str, n: int, usage: bool) -> Script:
    key = (api, n, usage)
    s = _scripts.get(key)
    if s is None:
        if len(_scripts) > 16:
            _scripts.clear()
        s = _scripts[key] = Script(api, n, usage)
    return s


class Conn:
    __slots__ = ("sock", "inbuf", "outbuf", "script", "index", "start", "interval", "writing", "closed")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbuf = b""
        self.outbuf = b""
        self.script: Optional[Script] = None
        self.index = 0
        self.start = 0.0
        self.interval = 0.0
        self.writing = False
        self.closed = False


class PacedServer:
    def __init__(self, port: int = 0) -> None:
        self.sel = selectors.DefaultSelector()
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", port))
        self.lsock.listen(4096)
        self.lsock.setblocking(False)
        self.port: int = self.lsock.getsockname()[1]
        self.sel.register(self.lsock, selectors.EVENT_READ, "accept")
        self.heap: List[Tuple[float, int, Conn]] = []
        self.seq = 0
        self.late: List[float] = []  # seconds each send went out after its due time
        self.streams = 0
        self.peak_conns = 0
        self.conns = 0
        self.cpu0 = self._cpu()
        self.running = True

    @staticmethod
    def _cpu() -> float:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return ru.ru_utime + ru.ru_stime

    def stats(self) -> Dict[str, Any]:
        late = sorted(self.late)
        cpu = self._cpu()

        def q(p: float) -> float:
            return late[min(len(late) - 1, int(p * len(late)))] * 1e3 if late else 0.0

        out = {"sends": len(late), "streams": self.streams, "late_p50_ms": q(0.5), "late_p99_ms": q(0.99),
               "late_max_ms": late[-1] * 1e3 if late else 0.0, "cpu_s": cpu - self.cpu0,
               "peak_conns": self.peak_conns}
        self.late = []
        self.streams = 0
        self.peak_conns = self.conns
        self.cpu0 = cpu
        return out

    def serve(self) -> None:
        self.sel.register(sys.stdin.fileno(), selectors.EVENT_READ, "stdin")
        select, heap, now_f = self.sel.select, self.heap, time.monotonic
        while self.running:
            timeout = max(0.0, heap[0][0] - now_f()) if heap else 1.0
            for key, mask in select(timeout):
                what = key.data
                if what == "accept":
                    self._accept()
                elif what == "stdin":
                    self._control()
                elif mask & selectors.EVENT_WRITE:
                    self._flush(what)
                else:
                    self._readable(what)
            now = now_f()
            while heap and heap[0][0] <= now:
                due, _, conn = heapq.heappop(heap)
                if conn.closed:
                    continue
                self.late.append(now - due)
                self._next_event(conn, due)

    def _control(self) -> None:
        data = os.read(sys.stdin.fileno(), 4096)
        if not data:
            self.running = False
            return
        for line in data.decode().splitlines():
            if line.strip() == "STATS":
                print(json.dumps(self.stats()), flush=True)

    def _accept(self) -> None:
        for _ in range(256):
            try:
                sock, _ = self.lsock.accept()
            except BlockingIOError:
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Conn(sock)
            self.sel.register(sock, selectors.EVENT_READ, conn)
            self.conns += 1
            self.peak_conns = max(self.peak_conns, self.conns)

    def _close(self, conn: Conn) -> None:
        if conn.closed:
            return
        conn.closed = True
        self.conns -= 1
        try:
            self.sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()

    def _readable(self, conn: Conn) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(conn)
            return
        conn.inbuf += data
        self._request(conn)

    def _request(self, conn: Conn) -> None:
        if conn.script is not None:
            return  # a stream is running: the next request waits for its end (no pipelining here)
        head, sep, rest = conn.inbuf.partition(b"\r\n\r\n")
        if not sep:
            return
        lines = head.split(b"\r\n")
        length = 0
        for h in lines[1:]:
            k, _, v = h.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v.strip() or 0)
        if len(rest) < length:
            return
        body, conn.inbuf = rest[:length], rest[length:]
        target = lines[0].split(b" ")[1].decode("latin-1") if b" " in lines[0] else "/"
        path = target.split("?", 1)[0]
        opts: Dict[str, str] = {}
        i = path.find("/v1/")
        if i > 0:
            for item in path[1:i].replace("/", ",").split(","):
                k, eq, v = item.partition("=")
                if eq:
                    opts[k] = v
            path = path[i:]
        if path.endswith("/chat/completions"):
            api = "openai"
        elif path.endswith("/messages"):
            api = "anthropic"
        else:
            self._send(conn, _NOT_FOUND)
            return
        usage = api == "openai" and b'"include_usage":true' in body.replace(b" ", b"")
        s = script(api, int(opts.get("n", 150)), usage)
        conn.script = s
        conn.index = 0
        conn.interval = float(opts.get("ms", 20)) / 1e3
        self.streams += 1
        # Golden-ratio steps spread any number of streams evenly over one interval.
        conn.start = time.monotonic() + ((self.streams * 0.6180339887) % 1.0) * conn.interval
        self._send(conn, s.opening)
        self._schedule(conn, conn.start)

    def _schedule(self, conn: Conn, due: float) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (due, self.seq, conn))

    def _next_event(self, conn: Conn, due: float) -> None:
        s = conn.script
        assert s is not None
        i = conn.index
        data = s.texts[i] if i < len(s.texts) else b""
        conn.index = i = i + 1
        if i >= len(s.texts):
            self._send(conn, data + s.closing)
            conn.script = None
            if conn.inbuf:
                self._request(conn)  # a request that came early
            return
        self._send(conn, data)
        self._schedule(conn, conn.start + i * conn.interval)

    def _send(self, conn: Conn, data: bytes) -> None:
        if conn.closed:
            return
        if conn.outbuf:
            conn.outbuf += data
            return
        try:
            sent = conn.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._close(conn)
            return
        if sent < len(data):
            # The client fell behind and the socket buffer is full: keep the rest, write when it drains.
            conn.outbuf = data[sent:]
            conn.writing = True
            self.sel.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)

    def _flush(self, conn: Conn) -> None:
        try:
            sent = conn.sock.send(conn.outbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        conn.outbuf = conn.outbuf[sent:]
        if not conn.outbuf and conn.writing:
            conn.writing = False
            self.sel.modify(conn.sock, selectors.EVENT_READ, conn)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    a = ap.parse_args(argv)
    try:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        pass
    # Ahead of the clients in the scheduler where allowed (real-time as root, else a
    # lower nice value), so the pace is the server's and any lag is the client's; the
    # lateness figures show whether it held.
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    except (OSError, AttributeError):
        try:
            os.setpriority(os.PRIO_PROCESS, 0, -10)
        except (OSError, AttributeError):
            pass
    srv = PacedServer(a.port)
    print(f"READY {srv.port}", flush=True)
    srv.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
