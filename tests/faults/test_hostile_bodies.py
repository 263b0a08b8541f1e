"""Hostile bodies: compression bombs, huge events and huge error texts stay bounded and never freeze.

The bad cases run in a child interpreter under a hard CPU, memory and wall-clock limit
(``tests.support.limits``), with its own loopback server, so a regression fails one test
instead of freezing or exhausting the test run.
"""

from __future__ import annotations

from tests.support.faults import FLAVORS, chunks_of
from tests.support.limits import run_limited
from tests.support.server import LoopbackServer

LIMIT = 16 * 1024 * 1024  # DEFAULT_MAX_EVENT_BYTES


# The event limit is kept by the framers and the inflation under them, which every
# flavor of a framing shares: one flavor per framing (Gemini's parser keeps lines of
# its own, so it is here too). One child for all: an interpreter start costs ~1 s.
BOMB_FLAVORS = ["anthropic", "gemini", "ollama", "bedrock"]


def test_bombs_and_huge_single_chunks_are_refused_at_the_event_limit() -> None:
    assert {FLAVORS[name].framing for name in BOMB_FLAVORS} == {f.framing for f in FLAVORS.values()}
    result = run_limited(
        f"""
        import json, struct, tracemalloc, zlib
        from llm_sync import Context, StreamReadError
        from tests.support.faults import FLAVORS
        from tests.support.server import LoopbackServer, Raw, Reply

        def one_http_chunk(data):
            return [Raw(b"%x\\r\\n" % len(data) + data + b"\\r\\n"), Raw(b"0\\r\\n\\r\\n")]

        out = {{}}
        for name in {BOMB_FLAVORS!r}:
            flavor = FLAVORS[name]

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
            # 2 GiB of one event in about 2 MiB of gzip: with a full flush after each MiB,
            # every MiB compresses to the same block.
            packer = zlib.compressobj(9, zlib.DEFLATED, 31)
            head = packer.compress(start + prefix) + packer.flush(zlib.Z_FULL_FLUSH)
            block = packer.compress(b"x" * (1 << 20)) + packer.flush(zlib.Z_FULL_FLUSH)
            bomb = head + block * 2048
            # A 20 MiB event, plain, in one HTTP chunk (the limit is 16 MiB).
            whole = start + flavor.big(20 << 20)
            out[name] = mine = {{"bomb_bytes": len(bomb)}}
            with LoopbackServer() as server:
                server.reply(reply(bomb, **{{"content-encoding": "gzip"}}), reply(whole))
                for case in ("bomb", "one_chunk"):
                    tracemalloc.start()
                    try:
                        with flavor.provider(server).stream_response(Context()) as stream:
                            mine[case] = [type(c).__name__ for c in stream]
                    except StreamReadError as exc:
                        mine[case] = str(exc)
                    mine[case + "_peak"] = tracemalloc.get_traced_memory()[1]
                    tracemalloc.stop()
        print(json.dumps(out))
        """,
        cpu_seconds=60,
        memory_mb=1024,
        wall_seconds=180,
    )
    for name in BOMB_FLAVORS:
        mine = result[name]
        assert mine["bomb_bytes"] < 3 << 20, name  # the bomb really is small on the wire
        for case in ("bomb", "one_chunk"):
            message = mine[case]
            assert isinstance(message, str) and "max_event_bytes" in message and str(LIMIT) in message, (name, mine)
            # The limit is what one event may buffer; a little over it is the most ever held
            # (measured: 18-19 MiB for the text framings, under 1 MiB for the event stream).
            assert mine[case + "_peak"] < LIMIT + (8 << 20), (name, mine)


def test_hostile_error_texts_never_stall_the_process() -> None:
    # Texts built to make a backtracking pattern rescan: 256 KiB in-stream error messages
    # and JSON error bodies, and 64 KiB HTML error pages. Every pattern that reads them
    # (overflow parsing, key redaction, the page's title) must be linear: the regex
    # engine holds the GIL, so a slow match stalls every thread, deadlines and close()
    # included. A watchdog thread that wakes every 10 ms must never wait 200 ms. It
    # measures its wait in the child's CPU time: CPU the process spent while the
    # watchdog could not run is a stall of its own making, whereas wall time also
    # counts the times other tenants of a busy machine had the cores. Every flavor (each
    # reads its error events and bodies its own way) in one child.
    result = run_limited(
        """
        import json, threading, time
        from llm_sync import Context, LlmError
        from tests.support.faults import ERROR_MESSAGE, FLAVORS, in_band_error
        from tests.support.server import LoopbackServer, Reply

        def fill(unit, size):
            return (unit * (size // len(unit) + 1))[:size]

        K = 256 * 1024
        texts = [
            fill("maximum context length is 5 tokens. ", K),
            fill("exceed the configured limit of 5 tokens ", K),
            fill("prompt is too long: 1 tokens > ", K),
            fill("request (1", K),
            fill("eyJ-", K),
            fill("eyJxxxxxxxxxxxx.", K),
            fill("Bearer ", K),
        ]
        pages = [fill("<title>", 65536), "<html>" + fill("<", 65530), "<html>" + fill("<a ", 65530)]
        replies = []
        for flavor in FLAVORS.values():
            for text in texts:
                replies.append((flavor, flavor.reply(steps=[*flavor.start, in_band_error(flavor, text)])))
                body = json.loads(json.dumps(flavor.error_json(400)).replace(ERROR_MESSAGE, text))
                replies.append((flavor, Reply.json(body, status=400)))
            for page in pages:
                replies.append((flavor, Reply(status=502, headers={"content-type": "text/html"}, body=[page.encode()])))

        gaps = [(0.0, 0.0)]  # (CPU, wall) seconds between two wake-ups
        done = threading.Event()

        def watchdog():
            cpu, wall = time.process_time(), time.perf_counter()
            while not done.wait(0.01):
                now_cpu, now_wall = time.process_time(), time.perf_counter()
                gaps.append((now_cpu - cpu, now_wall - wall))
                cpu, wall = now_cpu, now_wall

        dog = threading.Thread(target=watchdog, daemon=True)
        dog.start()
        errors = []
        with LoopbackServer() as server:
            server.reply(*[reply for _, reply in replies])
            for flavor, _ in replies:
                started = time.perf_counter()
                try:
                    with flavor.provider(server).stream_response(Context()) as stream:
                        list(stream)
                    errors.append(["no error", 0.0, flavor.name])
                except LlmError as exc:
                    errors.append([type(exc).__name__, time.perf_counter() - started, f"{flavor.name}: {exc}"[:200]])
        done.set()
        dog.join()
        print(json.dumps({"max_gap": max(gaps), "errors": errors}))
        """,
        cpu_seconds=60,
        memory_mb=1024,
        wall_seconds=180,
    )
    assert all(kind != "no error" for kind, *_ in result["errors"]), result["errors"]
    # Each is a typed error of its own, not a failure while building one.
    assert not [e for e in result["errors"] if "please report" in e[2]], result["errors"]
    assert max(seconds for _, seconds, *_ in result["errors"]) < 10.0, result["errors"]
    cpu, wall = result["max_gap"]
    assert cpu < 0.2, f"the watchdog waited while the process ran {cpu:.3f} s of CPU ({wall:.3f} s wall)"


def test_a_bom_before_the_first_event_loses_nothing(server: LoopbackServer) -> None:
    flavor = FLAVORS["anthropic"]
    start = b"\xef\xbb\xbf" + b"".join(flavor.start)
    server.reply(flavor.reply(steps=[start[:2], start[2:], flavor.text("Hello"), *flavor.end]))
    texts = [c.chunk for c in chunks_of(flavor.provider(server)) if type(c).__name__ == "Text"]
    assert texts == ["Hello"]
