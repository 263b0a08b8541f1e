"""The provider pools' connections: a response body is read in large socket reads, over HTTP and TLS."""

from __future__ import annotations

import re
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
