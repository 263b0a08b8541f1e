"""A loopback SSE server for the benchmark: pre-rendered Anthropic and OpenAI streams, one ``sendall`` each.

Run as its own process (``python -m bench.server``); it prints ``READY <port>`` and
serves until its standard input closes (the parent exited) or ``--max-seconds``
pass. It binds 127.0.0.1 only.

Options ride in a path prefix, so any SDK's ``base_url`` carries them untouched:
``POST /n=20000,framing=event/v1/messages`` or ``.../v1/chat/completions``.

- ``n``: text chunks (default 100); ``framing``: ``event`` (one HTTP chunk per SSE
  event) or ``bulk`` (64 KiB HTTP chunks); ``delay_ms``: wait before the first byte;
- ``stall``: send the opening events and one text delta, then fall silent for up to
  that many seconds (or until the client hangs up), then drop the connection.

Each answer is rendered once and cached, so the server spends almost no CPU and
the client under test is what the clock measures.
"""

from __future__ import annotations

import argparse
import select
import socket
import socketserver
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from bench import wire

_cache: Dict[Tuple[str, int, str, bool], bytes] = {}
_cache_lock = threading.Lock()
_NOT_FOUND = (b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 52\r\n\r\n"
              b'{"error":{"type":"not_found","message":"not found."}}')


def rendered(api: str, n: int, framing: str, usage: bool) -> bytes:
    key = (api, n, framing, usage)
    data = _cache.get(key)
    if data is None:
        with _cache_lock:
            data = _cache.get(key)
            if data is None:
                if len(_cache) >= 32:
                    _cache.clear()
                data = _cache[key] = wire.response(api, n, framing, usage)
    return data


def options(target: str) -> Tuple[str, Dict[str, str]]:
    """Split ``/<k=v,...>/v1/<endpoint>?query`` into the endpoint path and the options."""
    path = target.split("?", 1)[0]
    opts: Dict[str, str] = {}
    i = path.find("/v1/")
    if i > 0:
        for item in path[1:i].replace("/", ",").split(","):
            k, eq, v = item.partition("=")
            if eq:
                opts[k] = v
        path = path[i:]
    return path, opts


class Handler(socketserver.BaseRequestHandler):
    """HTTP/1.1 with keep-alive: read a request, answer it, repeat until the client leaves."""

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rfile = sock.makefile("rb")
        try:
            while self.one(sock, rfile):
                pass
        except (ConnectionError, OSError):
            pass  # the client hung up mid-answer: nothing to tell anyone
        finally:
            rfile.close()

    def one(self, sock: socket.socket, rfile: Any) -> bool:
        line = rfile.readline(65536)
        while line in (b"\r\n", b"\n"):
            line = rfile.readline(65536)
        if not line:
            return False
        method, target = line.split(b" ", 2)[:2]
        headers: Dict[bytes, bytes] = {}
        while True:
            h = rfile.readline(65536)
            if h in (b"\r\n", b"\n", b""):
                break
            k, _, v = h.partition(b":")
            headers[k.strip().lower()] = v.strip()
        length = int(headers.get(b"content-length", b"0") or 0)
        body = rfile.read(length) if length else b""
        path, opts = options(target.decode("latin-1"))
        if method == b"GET" and path.endswith("/health"):
            sock.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            return True
        if path.endswith("/chat/completions"):
            api = "openai"
        elif path.endswith("/messages"):
            api = "anthropic"
        else:
            sock.sendall(_NOT_FOUND)
            return True
        delay = float(opts.get("delay_ms", 0))
        if delay > 0:
            time.sleep(min(delay, 60000.0) / 1000)
        stall = float(opts.get("stall", 0))
        if stall > 0:
            sock.sendall(wire.stalled_prefix(api))
            wait_for_hangup(sock, min(stall, 120.0))
            return False
        usage = api == "openai" and b'"include_usage":true' in body.replace(b" ", b"")
        sock.sendall(rendered(api, int(opts.get("n", 100)), opts.get("framing", "event"), usage))
        return headers.get(b"connection", b"").lower() != b"close"


def wait_for_hangup(sock: socket.socket, seconds: float) -> None:
    """Stay silent until the client closes its side or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        readable, _, _ = select.select([sock], [], [], min(left, 1.0))
        if readable:
            try:
                if not sock.recv(65536):
                    return
            except OSError:
                return


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 1024


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--max-seconds", type=float, default=3600.0, help="exit after this long")
    ap.add_argument("--prerender", default="", help="comma-separated n to render up front")
    a = ap.parse_args(argv)
    for s in filter(None, a.prerender.split(",")):
        for api in ("openai", "anthropic"):
            for framing in ("event", "bulk"):
                for usage in ((False, True) if api == "openai" else (False,)):
                    rendered(api, int(s), framing, usage)
    srv = Server(("127.0.0.1", a.port), Handler)

    def stop_when_parent_leaves() -> None:
        try:
            sys.stdin.buffer.read()
        except (OSError, ValueError):
            pass
        srv.shutdown()

    threading.Thread(target=stop_when_parent_leaves, daemon=True).start()
    timer = threading.Timer(a.max_seconds, srv.shutdown)
    timer.daemon = True
    timer.start()
    print(f"READY {srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
