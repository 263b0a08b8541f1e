"""Tests of the loopback test server itself, with plain sockets and http.client (no llm_sync)."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from typing import Iterator, Tuple

import pytest

from tests.support.server import (
    Close,
    LoopbackServer,
    Raw,
    RecordedRequest,
    Reply,
    Reset,
    Sleep,
    Stall,
    ndjson,
    sse,
    sse_chunks,
)

TIMEOUT = 5.0  # upper bound for any single socket operation in these tests


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as s:
        yield s
    assert s.errors == []


def _connect(server: LoopbackServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
    return sock


def _get(path: str = "/", extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: test\r\n{extra}\r\n".encode()


def _read_until(sock: socket.socket, buf: bytearray, marker: bytes, limit: int = 1000) -> None:
    """Receive into ``buf`` until ``marker`` is in it (bounded: ``limit`` reads, socket timeout)."""
    for _ in range(limit):
        if marker in buf:
            return
        data = sock.recv(65536)
        if not data:
            break
        buf += data
    assert marker in buf, f"{marker!r} never arrived; got {bytes(buf)!r}"


def _read_to_eof(sock: socket.socket, buf: bytearray, limit: int = 1000) -> None:
    for _ in range(limit):
        data = sock.recv(65536)
        if not data:
            return
        buf += data
    raise AssertionError("no EOF")


def _split_head(buf: bytearray) -> Tuple[str, bytes]:
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    return head.decode("latin-1"), rest


def _no_server_threads() -> bool:
    return not any(t.name.startswith("loopback-server") for t in threading.enumerate())


# ---------------------------------------------------------------------------------------------


def test_chunked_body_arrives_in_pieces(server: LoopbackServer) -> None:
    server.reply(
        Reply(
            status=200,
            headers={"content-type": "text/event-stream"},
            body=[b"data: 1\n\n", Sleep(0.3), b"data: 2\n\n"],
            chunked=True,
        )
    )
    with _connect(server) as sock:
        start = time.monotonic()
        sock.sendall(_get("/stream"))
        buf = bytearray()
        _read_until(sock, buf, b"data: 1\n\n")
        first_at = time.monotonic() - start
        assert b"data: 2" not in buf
        _read_until(sock, buf, b"0\r\n\r\n")
        second_at = time.monotonic() - start
    head, body = _split_head(buf)
    assert head.startswith("HTTP/1.1 200 OK\r\n")
    assert "transfer-encoding: chunked" in head.lower()
    assert "content-length" not in head.lower()
    assert body == b"9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n0\r\n\r\n"
    assert first_at < 0.25
    assert second_at >= 0.25


def test_http_client_decodes_chunked_body(server: LoopbackServer) -> None:
    server.reply(Reply(body=[b"ab", Sleep(0.01), b"", b"cd"], chunked=True))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.read() == b"abcd"
    finally:
        conn.close()


def test_keep_alive_serves_two_requests_on_one_connection(server: LoopbackServer) -> None:
    server.reply(Reply(body=b"first"), Reply(status=201, body=[b"sec", b"ond"]))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        conn.request("POST", "/a", body=b'{"x": 1}', headers={"Content-Type": "application/json"})
        r1 = conn.getresponse()
        assert (r1.status, r1.getheader("content-length"), r1.read()) == (200, "5", b"first")
        conn.request("GET", "/b")
        r2 = conn.getresponse()
        assert (r2.status, r2.read()) == (201, b"second")
    finally:
        conn.close()
    reqs = server.wait_for_requests(2, TIMEOUT)
    assert [r.path for r in reqs] == ["/a", "/b"]
    assert reqs[0].connection_id == reqs[1].connection_id == 1
    assert server.connections_accepted == 1
    server.wait_for_open_connections(0, TIMEOUT)


def test_reset_yields_connection_reset_error(server: LoopbackServer) -> None:
    server.reply(Reply(body=[b"partial", Sleep(0.05), Reset()], chunked=True))
    with _connect(server) as sock:
        sock.sendall(_get())
        buf = bytearray()
        _read_until(sock, buf, b"partial")
        with pytest.raises(ConnectionResetError):
            for _ in range(100):
                if not sock.recv(65536):
                    break
    server.wait_for_open_connections(0, TIMEOUT)


def test_close_mid_chunk_truncates_the_body(server: LoopbackServer) -> None:
    server.reply(Reply(body=[b"whole", Raw(b"20\r\nonly-part"), Close()], chunked=True))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        with pytest.raises(http.client.IncompleteRead):
            resp.read()
    finally:
        conn.close()


def test_malformed_chunk_header_via_raw(server: LoopbackServer) -> None:
    server.reply(Reply(body=[Raw(b"zz\r\nnope\r\n")], chunked=True))
    with _connect(server) as sock:
        sock.sendall(_get())
        buf = bytearray()
        _read_until(sock, buf, b"0\r\n\r\n")
    _, body = _split_head(buf)
    assert body == b"zz\r\nnope\r\n0\r\n\r\n"


def test_stall_is_released_by_close_within_bounded_time() -> None:
    server = LoopbackServer()
    try:
        server.reply(Reply(body=[b"before", Stall(max_seconds=10), b"after"]))
        with _connect(server) as sock:
            sock.sendall(_get())
            buf = bytearray()
            _read_until(sock, buf, b"before")
            head, _ = _split_head(buf)
            assert "connection: close" in head.lower()  # close-delimited: not only bytes steps
            start = time.monotonic()
            server.close()
            assert time.monotonic() - start < 2.5
            _read_to_eof(sock, buf)  # the server's close reaches the client: EOF, not a hang
            assert time.monotonic() - start < 3.0
        assert b"after" not in buf
    finally:
        server.close()
    assert server.errors == []
    assert server.open_connections == 0
    assert _no_server_threads()


def test_stall_is_released_by_release(server: LoopbackServer) -> None:
    server.reply(Reply(body=[b"before", Stall(max_seconds=10), b"after"], chunked=True))
    with _connect(server) as sock:
        sock.sendall(_get())
        buf = bytearray()
        _read_until(sock, buf, b"before")
        start = time.monotonic()
        server.release()
        _read_until(sock, buf, b"0\r\n\r\n")
        assert time.monotonic() - start < 2.0
    assert b"after" in buf


def test_stall_ends_after_max_seconds(server: LoopbackServer) -> None:
    server.reply(Reply(body=[Stall(max_seconds=0.2), b"late"]))
    with _connect(server) as sock:
        start = time.monotonic()
        sock.sendall(_get())
        buf = bytearray()
        _read_to_eof(sock, buf)
        elapsed = time.monotonic() - start
    assert buf.endswith(b"late")
    assert 0.15 <= elapsed < 3.0


def test_client_going_away_during_stall_is_noticed(server: LoopbackServer) -> None:
    server.reply(Reply(body=[b"x", Stall(max_seconds=10)], chunked=True))
    with _connect(server) as sock:
        sock.sendall(_get())
        _read_until(sock, bytearray(), b"x")
        server.wait_for_open_connections(1, TIMEOUT)
    server.wait_for_open_connections(0, TIMEOUT)


def test_requests_are_recorded(server: LoopbackServer) -> None:
    server.reply(Reply(body=b"ok"))
    payload = {"model": "m", "messages": [{"role": "user", "content": "héllo"}]}
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        conn.request(
            "POST",
            "/v1/messages?alt=sse&x=1",
            body=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json", "X-Api-Key": "secret"},
        )
        assert conn.getresponse().read() == b"ok"
    finally:
        conn.close()
    (req,) = server.wait_for_requests(1, TIMEOUT)
    assert req.method == "POST"
    assert req.path == "/v1/messages?alt=sse&x=1"
    assert req.path_only == "/v1/messages"
    assert req.query == {"alt": ["sse"], "x": ["1"]}
    assert req.headers["x-api-key"] == "secret"
    assert req.headers["CONTENT-TYPE"] == "application/json"
    assert req.json() == payload
    assert req.body == json.dumps(payload).encode()


def test_chunked_request_body_is_recorded(server: LoopbackServer) -> None:
    server.reply(Reply(body=b"ok"))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        conn.request("POST", "/up", body=iter([b"ab", b"cd"]), encode_chunked=True)
        assert conn.getresponse().read() == b"ok"
    finally:
        conn.close()
    (req,) = server.wait_for_requests(1, TIMEOUT)
    assert req.body == b"abcd"


def test_unscripted_request_gets_500(server: LoopbackServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        conn.request("GET", "/nothing")
        resp = conn.getresponse()
        assert resp.status == 500
        assert b"no scripted reply" in resp.read()
    finally:
        conn.close()
    assert len(server.wait_for_requests(1, TIMEOUT)) == 1


def test_function_reply_sees_the_request(server: LoopbackServer) -> None:
    def echo(req: RecordedRequest) -> Reply:
        return Reply.json({"got": req.json(), "auth": req.headers.get("authorization")})

    server.reply(echo)
    server.reply(Reply.from_function(lambda req: Reply(status=404, body=req.path.encode())))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        conn.request("POST", "/echo", body=b"[1, 2]", headers={"Authorization": "Bearer t"})
        r1 = conn.getresponse()
        assert r1.getheader("content-type") == "application/json"
        assert json.loads(r1.read()) == {"got": [1, 2], "auth": "Bearer t"}
        conn.request("GET", "/missing")
        r2 = conn.getresponse()
        assert (r2.status, r2.read()) == (404, b"/missing")
    finally:
        conn.close()


def test_failing_reply_function_answers_500_and_is_reported() -> None:
    def boom(req: RecordedRequest) -> Reply:
        raise RuntimeError("boom")

    with LoopbackServer() as server:
        server.reply(boom)
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
        try:
            conn.request("GET", "/")
            resp = conn.getresponse()
            assert resp.status == 500
            assert b"boom" in resp.read()
        finally:
            conn.close()
    assert len(server.errors) == 1 and "RuntimeError: boom" in server.errors[0]


def test_explicit_content_length_is_kept(server: LoopbackServer) -> None:
    # A deliberately long content-length with a short body then Close: a truncated body.
    server.reply(Reply(headers={"content-length": "100"}, body=[b"short", Close()]))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        with pytest.raises(http.client.IncompleteRead):
            resp.read()
    finally:
        conn.close()


def test_status_reason_and_unknown_status(server: LoopbackServer) -> None:
    server.reply(Reply(status=529, body=b"{}"), Reply(status=429, headers={"retry-after": "3"}))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        conn.request("GET", "/")
        r1 = conn.getresponse()
        assert (r1.status, r1.read()) == (529, b"{}")
        conn.request("GET", "/")
        r2 = conn.getresponse()
        assert (r2.status, r2.reason, r2.getheader("retry-after"), r2.read()) == (
            429,
            "Too Many Requests",
            "3",
            b"",
        )
    finally:
        conn.close()


def test_close_is_idempotent_and_leaves_no_threads() -> None:
    server = LoopbackServer()
    server.reply(Reply(body=[Stall(10)], chunked=True))
    sock = _connect(server)
    try:
        sock.sendall(_get())
        server.wait_for_requests(1, TIMEOUT)
        start = time.monotonic()
        server.close()
        server.close()
        assert time.monotonic() - start < 2.5
    finally:
        sock.close()
    assert server.open_connections == 0
    assert _no_server_threads()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


def test_wait_for_requests_is_bounded(server: LoopbackServer) -> None:
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        server.wait_for_requests(1, timeout=0.1)
    assert time.monotonic() - start < 2.0


def test_sse_and_ndjson_helpers() -> None:
    assert sse(("message_start", {"a": 1}), {"b": 2}, "[DONE]") == (
        b'event: message_start\ndata: {"a": 1}\n\ndata: {"b": 2}\n\ndata: [DONE]\n\n'
    )
    assert sse((None, "line1\nline2")) == b"data: line1\ndata: line2\n\n"
    assert sse_chunks(b": ping\n\n", ("e", "x")) == [b": ping\n\n", b"event: e\ndata: x\n\n"]
    assert ndjson({"a": 1}, [2]) == b'{"a": 1}\n[2]\n'
    reply = Reply.event_stream(("e", {"k": "v"}), "[DONE]")
    assert reply.chunked and reply.headers["content-type"] == "text/event-stream"
    assert reply.steps() == [b'event: e\ndata: {"k": "v"}\n\n', b"data: [DONE]\n\n"]
