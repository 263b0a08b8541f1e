"""Hostile bodies: compression bombs, huge events and huge error texts stay bounded and never freeze.

The bad cases run in a child interpreter under a hard CPU, memory and wall-clock limit
(``tests.support.limits``), with its own loopback server, so a regression fails one test
instead of freezing or exhausting the test run.
"""

from __future__ import annotations

import pytest

from tests.support.faults import FLAVORS, chunks_of, flavor_params
from tests.support.limits import run_limited
from tests.support.server import LoopbackServer

ALL = flavor_params()
LIMIT = 16 * 1024 * 1024  # DEFAULT_MAX_EVENT_BYTES


@pytest.mark.parametrize("flavor", ALL)
def test_bombs_and_huge_single_chunks_are_refused_at_the_event_limit(flavor: object) -> None:
    name = flavor.name  # type: ignore[attr-defined]
    result = run_limited(
        f"""
        import json, struct, tracemalloc, zlib
        from llm_sync import Context, StreamReadError
        from tests.support.faults import FLAVORS
        from tests.support.server import LoopbackServer, Raw, Reply

        flavor = FLAVORS[{name!r}]

        def one_http_chunk(data):
            return [Raw(b"%x\\r\\n" % len(data) + data + b"\\r\\n"), Raw(b"0\\r\\n\\r\\n")]

        def reply(body, **headers):
            headers.update({{"content-type": flavor.content_type, "transfer-encoding": "chunked"}})
            return Reply(headers=headers, body=one_http_chunk(body))

        if flavor.framing == "eventstream":  # a prelude declaring a 1 GiB message
            prefix = struct.pack(">II", 1 << 30, 0)
            prefix += struct.pack(">I", zlib.crc32(prefix))
        else:  # the start of a text event, whose text never ends
            event = flavor.big(16)
            prefix = event[: event.index(b"x" * 16)]
        start = b"".join(flavor.start)
        # 2 GiB of one event in about 2 MiB of gzip, in one HTTP chunk: with a full flush
        # after each MiB, every MiB compresses to the same block.
        packer = zlib.compressobj(9, zlib.DEFLATED, 31)
        head = packer.compress(start + prefix) + packer.flush(zlib.Z_FULL_FLUSH)
        block = packer.compress(b"x" * (1 << 20)) + packer.flush(zlib.Z_FULL_FLUSH)
        bomb = head + block * 2048
        # A 40 MiB event, plain, in one HTTP chunk.
        whole = start + flavor.big(40 << 20)

        out = {{"bomb_bytes": len(bomb)}}
        with LoopbackServer() as server:
            server.reply(reply(bomb, **{{"content-encoding": "gzip"}}), reply(whole))
            for case in ("bomb", "one_chunk"):
                tracemalloc.start()
                try:
                    with flavor.provider(server).stream_response(Context()) as stream:
                        out[case] = [type(c).__name__ for c in stream]
                except StreamReadError as exc:
                    out[case] = str(exc)
                out[case + "_peak"] = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
        print(json.dumps(out))
        """,
        cpu_seconds=60,
        memory_mb=1024,
        wall_seconds=180,
    )
    assert result["bomb_bytes"] < 3 << 20  # the bomb really is small on the wire
    for case in ("bomb", "one_chunk"):
        message = result[case]
        assert isinstance(message, str) and "max_event_bytes" in message and str(LIMIT) in message, result
        # The limit is what one event may buffer; a little over it is the most ever held
        # (measured: 18-19 MiB for the text framings, under 1 MiB for the event stream).
        assert result[case + "_peak"] < LIMIT + (8 << 20), result


def test_a_bom_before_the_first_event_loses_nothing(server: LoopbackServer) -> None:
    flavor = FLAVORS["anthropic"]
    start = b"\xef\xbb\xbf" + b"".join(flavor.start)
    server.reply(flavor.reply(steps=[start[:2], start[2:], flavor.text("Hello"), *flavor.end]))
    texts = [c.chunk for c in chunks_of(flavor.provider(server)) if type(c).__name__ == "Text"]
    assert texts == ["Hello"]
