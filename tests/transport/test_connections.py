"""The provider pools' connections: a response body is read in large socket reads."""

from __future__ import annotations

import time
from typing import Any, List

from llm_sync._transport._http import Transport, read_chunks
from tests.support.server import LoopbackServer, Reply


def test_a_chunked_stream_is_read_in_large_socket_reads(server: LoopbackServer) -> None:
    # 1,600 events of 40 bytes, one HTTP chunk each, as a fast model streams them.
    events = [b"data: {\"n\": %05d, \"pad\": \"xxxxxxxxx\"}\n\n" % i for i in range(1600)]
    assert {len(e) for e in events} == {40}
    server.reply(Reply(headers={"content-type": "text/event-stream"}, body=events, chunked=True))
    transport = Transport()
    reads: List[int] = []
    try:
        resp = transport.session().get(server.url + "/v1/stream", stream=True)
        try:
            time.sleep(0.3)  # the whole body (64,000 bytes) is in this socket's buffer by now
            sock_io: Any = resp.raw._fp.fp.raw  # what the buffered reader refills from
            refill = sock_io.readinto

            def counted(buffer: Any) -> int:
                n: int = refill(buffer)
                reads.append(n)
                return n

            sock_io.readinto = counted
            body = b"".join(read_chunks(resp))
        finally:
            resp.close()
    finally:
        transport.close()
    assert body == b"".join(events)
    # Each refill is a recv() that lets a waiting consumer thread take the interpreter;
    # through http.client's 8 KiB buffer this body would take at least 8 of them.
    assert 0 < sum(reads) and len(reads) <= 4, reads
