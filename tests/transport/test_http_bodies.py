"""Reading bodies: decoded in pieces of at most 64 KiB, whatever the encoding and the HTTP chunk size."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib
from typing import Iterator, List

import pytest

from llm_sync import StreamReadError
from llm_sync._transport._http import Transport, _Inflate, default_classifier, read_chunks, send
from tests.support.faults import FLAVORS, error_of
from tests.support.server import LoopbackServer, Raw, Reply

PIECE = 64 * 1024
TEXT = b"".join(b"data: {\"n\": %d}\n\n" % i for i in range(20000))  # 330 KB that compresses well


@pytest.fixture
def transport() -> Iterator[Transport]:
    t = Transport()
    yield t
    t.close()


def pieces(server: LoopbackServer, transport: Transport) -> List[bytes]:
    """Every piece read_chunks yields for one request."""
    resp = send(transport, "POST", server.url + "/v1", {}, b"{}", connect_timeout=5.0, read_timeout=5.0,
                classify=default_classifier)
    try:
        return list(read_chunks(resp))
    finally:
        resp.close()


def deflate_raw(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


# case -> (Content-Encoding, body)
ENCODED = {
    "gzip": ("gzip", gzip.compress(TEXT)),
    "x-gzip": ("x-gzip", gzip.compress(TEXT)),
    "deflate": ("deflate", zlib.compress(TEXT)),  # zlib-wrapped, as RFC 9110 says
    "raw deflate": ("deflate", deflate_raw(TEXT)),  # what some servers send as "deflate"
    "two gzip members": ("gzip", gzip.compress(TEXT[:1000]) + gzip.compress(TEXT[1000:])),
    "gzip and trailing bytes": ("gzip", gzip.compress(TEXT) + b"\0\0garbage"),
}


@pytest.mark.parametrize("case", sorted(ENCODED))
@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_encoded_bodies_are_read_whole_in_bounded_pieces(
    server: LoopbackServer, transport: Transport, case: str, chunked: bool
) -> None:
    coding, packed = ENCODED[case]
    steps = [packed[i : i + 777] for i in range(0, len(packed), 777)]
    server.reply(Reply(headers={"content-encoding": coding}, body=steps, chunked=chunked))
    got = pieces(server, transport)
    assert b"".join(got) == TEXT
    assert max(map(len, got)) <= PIECE
    assert server.requests[0].headers["accept-encoding"] == "gzip, deflate"


def test_a_large_http_chunk_is_split(server: LoopbackServer, transport: Transport) -> None:
    body = bytes(range(256)) * 4096  # one 1 MiB HTTP chunk
    server.reply(Reply(body=[body], chunked=True))
    got = pieces(server, transport)
    assert b"".join(got) == body and max(map(len, got)) <= PIECE and len(got) >= 16


def test_a_bomb_inflates_lazily_and_piece_by_piece() -> None:
    bomb = gzip.compress(bytes(32 << 20))  # 32 MiB of zeros in 32 KB: twice the event limit
    tracemalloc.start()
    try:
        it = _Inflate(gzip=True).feed(bomb)
        first = [next(it) for _ in range(8)]
        _, peak_first = tracemalloc.get_traced_memory()
        total = sum(map(len, first)) + sum(len(p) for p in it if len(p) <= PIECE)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 32 << 20
    # What is in memory at once is a piece or two, never the inflated body.
    assert peak_first < 2 << 20 and peak < 2 << 20, (peak_first, peak)


def test_corrupt_or_unasked_encodings_are_stream_read_errors(server: LoopbackServer) -> None:
    flavor = FLAVORS["anthropic"]
    plain = b"".join(flavor.turn("never ", "read"))
    bad = bytearray(gzip.compress(plain))
    bad[12:20] = b"\xff" * 8
    server.reply(
        flavor.reply(steps=[bytes(bad)], headers={"content-encoding": "gzip"}),
        flavor.reply(steps=[plain], headers={"content-encoding": "br"}),
    )
    corrupt = error_of(flavor.provider(server))
    assert isinstance(corrupt, StreamReadError) and "gzip encoding is corrupt" in str(corrupt), repr(corrupt)
    unasked = error_of(flavor.provider(server))
    assert isinstance(unasked, StreamReadError) and "Content-Encoding 'br'" in str(unasked), repr(unasked)


def test_an_error_page_is_read_through_the_same_bound(server: LoopbackServer) -> None:
    # An error body is read only to 64 KiB; inflating it must stop there too.
    flavor = FLAVORS["openai"]
    page = gzip.compress(b'{"error": {"message": "' + b"x" * (8 << 20) + b'"}}')
    server.reply(Reply(status=400, headers={"content-encoding": "gzip", "content-type": "application/json"},
                       body=[Raw(b"%x\r\n" % len(page) + page + b"\r\n0\r\n\r\n")],
                       chunked=False))  # fmt: skip
    tracemalloc.start()
    try:
        err = error_of(flavor.provider(server))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert err.status == 400 and err.body is not None
    assert peak < 4 << 20, peak
