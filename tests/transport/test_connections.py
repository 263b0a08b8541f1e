"""The provider pools' connections: large socket reads over HTTP and TLS, and a close() that always reaches the socket."""

from __future__ import annotations

import queue
import re
import select
import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Iterator, List, Tuple

import pytest
import requests

from llm_sync import Context
from llm_sync._transport._http import Transport, read_chunks
from tests.support.server import LoopbackServer, Reply, sse_chunks
from tests.support.toy import ToyProvider, done, start, text

# 1,600 events of 40 bytes, one HTTP chunk each, as a fast model streams them.
EVENTS = [b'data: {"n": %05d, "pad": "xxxxxxxxx"}\n\n' % i for i in range(1600)]


def count_refills(resp: requests.Response) -> Tuple[bytes, List[int]]:
    """The body, and the size of every refill of the buffered reader under the response."""
    time.sleep(0.3)  # the whole body (64,000 bytes) is in this socket's buffer by now
    raw: Any = resp.raw  # urllib3's response over http.client's, over the buffered reader
    sock_io = raw._fp.fp.raw  # what the buffered reader refills from
    refill = sock_io.readinto
    reads: List[int] = []

    def counted(buffer: Any) -> int:
        n: int = refill(buffer)
        reads.append(n)
        return n

    sock_io.readinto = counted
    return b"".join(read_chunks(resp)), reads


def assert_few_refills(body: bytes, reads: List[int]) -> None:
    assert {len(e) for e in EVENTS} == {40}
    assert body == b"".join(EVENTS)
    # Each refill is a recv() that lets a waiting consumer thread take the interpreter;
    # through http.client's 8 KiB buffer this body would take at least 8 of them.
    assert 0 < sum(reads) and len(reads) <= 4, reads


def test_a_chunked_stream_is_read_in_large_socket_reads(server: LoopbackServer) -> None:
    server.reply(Reply(headers={"content-type": "text/event-stream"}, body=EVENTS, chunked=True))
    transport = Transport()
    try:
        with transport.session().get(server.url + "/v1/stream", stream=True) as resp:
            body, reads = count_refills(resp)
    finally:
        transport.close()
    assert_few_refills(body, reads)


# -- TLS: the HTTPS pool's connections read through the same buffer ------------------


@pytest.fixture
def certificate(tmp_path: Path) -> Tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert),
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_server(certificate: Tuple[Path, Path]) -> Iterator[Tuple[str, List[bytes]]]:
    """``(url, events)``: one HTTPS request is answered with ``events`` as chunked SSE."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    events: List[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data:
                data += tls.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            found = re.search(rb"content-length: *(\d+)", head, re.IGNORECASE)
            while found and len(body) < int(found.group(1)):
                body += tls.recv(65536)
            chunks = b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events)
            tls.sendall(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n" + chunks + b"0\r\n\r\n"
            )
            tls.recv(1)  # until the client hangs up

    thread = threading.Thread(target=serve, name="tls-server", daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}", events
    finally:
        thread.join(10)
        listener.close()


def test_a_tls_stream_is_read_in_large_socket_reads(
    tls_server: Tuple[str, List[bytes]], certificate: Tuple[Path, Path]
) -> None:
    url, events = tls_server
    events.extend(EVENTS)
    transport = Transport()
    try:
        with transport.session().get(url + "/v1/stream", stream=True, verify=str(certificate[0])) as resp:
            body, reads = count_refills(resp)
    finally:
        transport.close()
    assert_few_refills(body, reads)


def test_a_provider_streams_over_tls(
    tls_server: Tuple[str, List[bytes]], certificate: Tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, events = tls_server
    pieces = [f"piece {i} " for i in range(2000)]
    events.extend(sse_chunks(start(), *map(text, pieces), done()))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))  # how requests finds a private CA
    answer = ToyProvider(base_url=url).stream_response(Context()).collect()
    assert answer.text == "".join(pieces)
    assert answer.complete


# -- close() always closes: HTTP/1.0 and Connection: close responses -----------------
#
# http.client hands the socket of a response that will close the connection over to
# the response and drops conn.sock, so a shutdown that looked only at the connection
# found nothing: the reader and its socket lived on until the server hung up or the
# read timeout passed (300 s by default).


class StockServer:
    """A stock ``http.server`` whose handler streams the start of a turn, then waits.

    It waits for the client to hang up (and notes when it saw that) or for the test to
    end; ``protocol`` is ``HTTP/1.0`` or ``HTTP/1.1`` (which then says ``Connection: close``).
    """

    def __init__(self, protocol: str, first: bytes) -> None:
        import http.server

        self.hangups: List[float] = []
        self.done = threading.Event()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = protocol

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["content-length"]))
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                if protocol == "HTTP/1.1":
                    self.send_header("connection", "close")
                self.end_headers()
                self.wfile.write(first)
                self.wfile.flush()
                while not owner.done.is_set():  # bounded by the test's end
                    readable, _, _ = select.select([self.connection], [], [], 0.02)
                    if readable and not self.connection.recv(1):
                        owner.hangups.append(time.monotonic())
                        return

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), name="stock-server")
        self.thread.start()

    def close(self) -> None:
        self.done.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)
        # ThreadingHTTPServer joins its handler threads in server_close (non-daemon ones);
        # daemon handlers end on their own within a poll interval once ``done`` is set.
        deadline = time.monotonic() + 5
        while any(t.name.startswith("Thread-") and t.is_alive() for t in threading.enumerate()):
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)


@pytest.fixture(params=["HTTP/1.0", "HTTP/1.1 Connection: close"])
def stock(request: pytest.FixtureRequest) -> Iterator[StockServer]:
    first = b"".join(sse_chunks(start(), text("hello")))
    server = StockServer(request.param.split()[0], first)
    yield server
    server.close()


def readers() -> List[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("llm_sync-")]


def assert_gone_promptly(server: StockServer, since: float, count: int = 1) -> None:
    """Every reader thread ends, and the server sees ``count`` hang-ups, within a second of ``since``."""
    deadline = since + 1.0
    while (readers() or len(server.hangups) < count) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert not readers(), f"reader threads still alive {time.monotonic() - since:.2f} s later: {readers()}"
    assert len(server.hangups) == count, f"{len(server.hangups)} of {count} connections closed within 1 s"
    assert max(server.hangups) - since < 1.0


def opened(server: StockServer, **kw: Any) -> Any:
    """A stream of the toy provider against ``server``, after its first two chunks arrived."""
    stream = ToyProvider(base_url=server.url, **kw).stream_response(Context())
    assert [type(next(stream)).__name__, type(next(stream)).__name__] == ["Start", "Text"]
    time.sleep(0.05)  # the reader is now blocked reading the silent socket
    return stream


def test_close_ends_the_reader_and_the_socket(stock: StockServer) -> None:
    stream = opened(stock)
    started = time.monotonic()
    stream.close()
    assert time.monotonic() - started < 0.1
    assert_gone_promptly(stock, started)


def test_a_timeout_ends_the_reader_and_the_socket(stock: StockServer) -> None:
    from llm_sync import RequestTimeoutError, Timeouts

    stream = opened(stock, timeout=Timeouts(idle=0.3))
    with pytest.raises(RequestTimeoutError) as info:
        list(stream)
    assert info.value.phase == "idle"
    assert_gone_promptly(stock, time.monotonic())


def test_the_reader_waits_with_no_socket_timeout_and_the_deadline_still_ends_it(stock: StockServer) -> None:
    # A socket timeout makes every read a poll() and then a recv(), two thread switches
    # under many streams; the stream's deadline and the shutdown do its work.
    from llm_sync import RequestTimeoutError, Timeouts

    stream = opened(stock, timeout=Timeouts(first_event=0.2, idle=0.2))
    sock = stream._state.holder._reading
    assert sock is not None and sock.gettimeout() is None
    started = time.monotonic()
    with pytest.raises(RequestTimeoutError):
        list(stream)
    assert time.monotonic() - started < 1.0
    assert_gone_promptly(stock, time.monotonic())


def test_ctrl_c_ends_the_reader_and_the_socket(stock: StockServer) -> None:
    import _thread

    assert threading.current_thread() is threading.main_thread()  # where Ctrl-C lands
    stream = opened(stock)
    timer = threading.Timer(0.2, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            for _ in stream:
                pass
    finally:
        timer.join()
    assert stream.closed
    assert_gone_promptly(stock, time.monotonic())


def test_an_abandoned_stream_ends_its_reader_and_socket_when_collected(stock: StockServer) -> None:
    import gc

    streams = [opened(stock) for _ in range(10)]
    del streams
    gc.collect()
    assert_gone_promptly(stock, time.monotonic(), count=10)


# -- close() while connecting: a blackholed connect, a silent TLS handshake ----------
#
# The reader is inside urllib3's connect (TCP, then TLS) with no response and no
# connection socket to shut down yet; it used to stay there for the whole connect
# timeout (30 s by default) after close() returned.


@pytest.fixture
def blackhole() -> Iterator[str]:
    """The URL of a listener that never accepts, its backlog full: a SYN to it goes unanswered."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = listener.getsockname()
    fillers: List[socket.socket] = []
    try:
        for _ in range(16):  # Linux queues backlog + 1 connections; the next SYN is dropped
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            fillers.append(filler)
            filler.setblocking(False)
            filler.connect_ex(address)
            _, writable, _ = select.select([], [filler], [], 0.3)
            if not writable:
                break
        else:
            pytest.skip("this system's listen backlog never filled up")
        yield f"http://127.0.0.1:{address[1]}"
    finally:
        for s in fillers:
            s.close()
        listener.close()


@pytest.fixture
def silent_tls() -> Iterator[str]:
    """The HTTPS URL of a TCP server that accepts and never answers the TLS ClientHello."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: List[socket.socket] = []
    done = threading.Event()

    def serve() -> None:
        listener.settimeout(0.02)
        while not done.is_set():  # bounded by the test's end
            try:
                accepted.append(listener.accept()[0])
            except socket.timeout:
                continue

    thread = threading.Thread(target=serve, name="silent-tls")
    thread.start()
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        done.set()
        thread.join(5)
        for s in accepted:
            s.close()
        listener.close()


def close_while_connecting(url: str) -> None:
    from llm_sync import Timeouts

    stream = ToyProvider(base_url=url, timeout=Timeouts(connect=30)).stream_response(Context())
    time.sleep(0.3)  # the reader is now inside the connect
    assert readers(), "the reader ended before close(): the connect did not block"
    started = time.monotonic()
    stream.close()
    assert time.monotonic() - started < 0.1
    while readers() and time.monotonic() - started < 1.0:
        time.sleep(0.005)
    assert not readers(), f"a reader is still connecting {time.monotonic() - started:.2f} s after close()"
    assert list(stream) == []


def test_close_during_a_blackholed_connect_ends_the_reader(blackhole: str) -> None:
    close_while_connecting(blackhole)


def test_close_during_a_silent_tls_handshake_ends_the_reader(silent_tls: str) -> None:
    close_while_connecting(silent_tls)


def test_a_pool_keeps_idle_connections_last_in_first_out_and_never_waits() -> None:
    from llm_sync._transport._connections import _Idle

    idle = _Idle(2)
    a, b, c = object(), object(), object()
    idle.put(a)
    idle.put(b, block=False)
    # Full: urllib3 closes the connection it could not put back.
    with pytest.raises(queue.Full):
        idle.put(c, block=False)
    assert list(idle.items) == [a, b] and idle.qsize() == 2
    assert idle.get(block=False) is b and idle.get() is a and idle.empty()
    # Empty: urllib3 opens a new connection; a pool that blocks is not supported.
    t0 = time.monotonic()
    with pytest.raises(queue.Empty):
        idle.get(block=True, timeout=5.0)
    assert time.monotonic() - t0 < 1.0
