"""Measure the foundation's figures: import cost, close latency during a stall, threads after abandoned streams.

Run from the repository root: ``python scripts/engine_figures.py`` (uses the test
suite's loopback server; nothing leaves 127.0.0.1).
"""

from __future__ import annotations

import gc
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm_sync import Context
from tests.support.server import LoopbackServer, Reply, Stall, sse_chunks
from tests.support.toy import ToyProvider, start

PROBE = "import time; t = time.perf_counter(); import {mods}; print(time.perf_counter() - t)"


def import_seconds(mods: str, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        got = subprocess.run([sys.executable, "-c", PROBE.format(mods=mods)], capture_output=True, text=True, check=True)
        out.append(float(got.stdout))
    return out


def stalled_reply() -> Reply:
    return Reply(headers={"content-type": "text/event-stream"}, body=[*sse_chunks(start()), Stall(10)], chunked=True)


def readers() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("llm_sync-"))


def main() -> None:
    runs = 21
    ours = import_seconds("llm_sync", runs)
    base = import_seconds("requests, sseclient", runs)
    print(f"import llm_sync:             median {statistics.median(ours) * 1e3:.1f} ms over {runs} fresh interpreters")
    print(f"import requests, sseclient:  median {statistics.median(base) * 1e3:.1f} ms")
    print(f"ratio: {statistics.median(ours) / statistics.median(base):.2f}")

    with LoopbackServer() as server:
        provider = ToyProvider(base_url=server.url)
        closes, gone = [], []
        trials = 200
        for _ in range(trials):
            server.reply(stalled_reply())
            stream = provider.stream_response(Context())
            next(stream)  # Start arrived; the reader is now blocked in recv on a silent server
            time.sleep(0.002)
            t0 = time.perf_counter()
            closer = threading.Thread(target=stream.close)
            closer.start()
            closer.join()
            closes.append(time.perf_counter() - t0)
            while readers():
                time.sleep(0.0005)
            gone.append(time.perf_counter() - t0)
        closes.sort()
        gone.sort()
        p99 = closes[int(0.99 * trials) - 1]
        print(
            f"close() from another thread during a stall, {trials} trials: p50 {statistics.median(closes) * 1e3:.2f} ms, "
            f"p99 {p99 * 1e3:.2f} ms, max {closes[-1] * 1e3:.2f} ms; reader gone: p99 "
            f"{gone[int(0.99 * trials) - 1] * 1e3:.2f} ms, max {gone[-1] * 1e3:.2f} ms"
        )

        n = 1000
        before = threading.active_count()
        before_readers = readers()
        t0 = time.perf_counter()
        for _ in range(n):
            server.reply(stalled_reply())
            stream = provider.stream_response(Context())
            next(stream)
            del stream  # abandoned: no close(), no break; garbage collection must clean up
        gc.collect()
        deadline = time.monotonic() + 5
        while readers() and time.monotonic() < deadline:
            time.sleep(0.01)
        print(
            f"{n} streams opened and abandoned in {time.perf_counter() - t0:.1f} s: reader threads before "
            f"{before_readers}, after {readers()}; all threads before {before}, after "
            f"{threading.active_count()} (the loopback server's own connection threads included)"
        )


if __name__ == "__main__":
    main()
