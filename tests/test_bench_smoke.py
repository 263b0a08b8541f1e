"""The benchmark suite (``python -m bench``) still runs end to end: every section, smallest settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

# The harness is plain Python whatever the interpreter: tox runs it in one environment.
pytestmark = pytest.mark.once

REPO = Path(__file__).resolve().parents[1]


def test_bench_smoke_runs_every_section_and_writes_results(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO), NO_PROXY="127.0.0.1,localhost")
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(tmp_path)],
        cwd=str(REPO), env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    written = sorted(p.name for p in tmp_path.iterdir())
    assert len(written) == 2 and written[0].endswith("-smoke.json") and written[1].endswith("-smoke.md")
    result = json.loads((tmp_path / written[0]).read_text())
    summary = result["summary"]
    clients = result["raw"]["clients"]
    assert "llm_sync AnthropicProvider" in clients
    # Every section produced figures for llm_sync, and the stream-hygiene checks hold
    # even at this size: no errors, no short stream, no thread or socket left behind.
    assert summary["throughput"]["event"]["llm_sync AnthropicProvider"]["wall_us"]["median"] > 0
    # Each client's ratio is to a baseline run of its own, made next to it.
    tp = result["raw"]["throughput"]["event"]
    assert len(tp["llm_sync AnthropicProvider"]["paired_wall_us"]) == len(tp["llm_sync AnthropicProvider"]["wall_us"])
    assert tp["requests + sseclient-py"]["paired_wall_us"] == []
    assert summary["ttfc"]["llm_sync AnthropicProvider"]["warm_ms"]["median"] > 0
    for key, rows in summary["concurrency"].items():
        assert rows["_after"] == {"sockets_left": 0, "threads_left": 0}, key
        for name in [*clients, "probe: requests + sseclient-py in a reader thread → queue"]:
            assert rows[name]["errors"] == 0 and rows[name]["short_rounds"] == 0, (key, name)
            # Warm-up rounds ran until the connections kept open stopped growing.
            assert 1 <= rows[name]["warmup_rounds"]["max"] <= 4 and rows[name]["pooled"]["min"] >= 1, (key, name)
        assert rows["llm_sync AnthropicProvider"]["x_probe"]["median"] > 0, key
    assert summary["rss"]["llm_sync AnthropicProvider"]["collect"]["peak_growth_mib"]["median"] >= 0
    assert summary["import"]["llm_sync"]["median"] > 0
    close = summary["close"]["llm_sync AnthropicProvider"]
    assert close["p99"] < 1000 and close["readers_left"] == 0 and close["sockets_left"] <= 0
    # Fan-out at a pace, each client in its own process: every llm_sync stream
    # complete, none short or unfinished, and every reader thread gone after it.
    fanout = summary["fanout"]
    assert set(fanout) == {"4", "16"}
    for k, rows in fanout.items():
        for name in ("llm_sync chat completions", "llm_sync Anthropic", "requests + sseclient-py, threads",
                     "probe: requests + sseclient-py in a reader thread → queue"):
            row = rows[name]
            assert row["cpu_us"]["median"] > 0, (k, name)
            assert row["errors"] == [0] and row["short"] == [0] and row["hung"] == [0] and row["late"] == [0], (k, name)
            assert row["peak_threads"] >= int(k), (k, name)
            assert 0 < row["all_started_s"]["median"] < row["lag_ms_max"]["median"] / 1e3 + 3.0, (k, name)
        assert rows["llm_sync Anthropic"]["readers_left"] == 0
    cells = result["raw"]["fanout"]["cells"]
    assert all(c["chunks"] == c["expected"] for c in cells if "chunks" in c)
    assert not [c for c in cells if "failed" in c]
    # The embedded model against raw HTTP to the same server (where the extra is installed).
    local = result["raw"]["local"]
    if sys.version_info >= (3, 10) and "skipped" not in local:
        for name, rows in local["rows"].items():
            assert rows[0]["ttft_ms"] > 0 and rows[0]["tokens"] >= 1, name
        assert "## The embedded model" in (tmp_path / written[1]).read_text()
    # The report names the targets of issues 10 and 28.
    md = (tmp_path / written[1]).read_text()
    assert "## Targets (issues 10 and 28)" in md and "close of a blocked stream" in md
    assert "paced CPU/chunk" in md and "## Fan-out at a real pace" in md


def test_switches_counts_each_thread_of_every_stream() -> None:
    from bench import switches

    cells = switches.run([4], rounds=1, n=10, ms=5, switch_interval=0)
    by = {c["column"]: c for c in cells}
    assert set(by) == set(switches.CLIENTS)
    for column, cell in by.items():
        assert cell["chunks"] == cell["expected"] == 40, column
        # A consuming thread blocks at least once per chunk it waits for (the last
        # chunks of an event may come with the one before).
        assert cell["consumer_voluntary"] > 0.5, column
    for column in (switches.fanout.LLM_ANTHROPIC, switches.fanout.LLM_CHAT, switches.fanout.PROBE):
        assert by[column]["readers_seen"] == 4 and by[column]["reader_voluntary"] > 0.5, column
    for column in (switches.fanout.REQ, switches.fanout.REQ_ANTHROPIC):
        assert by[column]["readers_seen"] == 0 and by[column]["reader_voluntary"] is None, column
    assert "| 4 | llm_sync Anthropic |" in switches.report(cells, 0)


def test_gates_hold_every_thread_until_opened() -> None:
    import threading
    import time

    from bench.release import Gates

    gates = Gates(8)
    passed: List[int] = []

    def work(i: int) -> None:
        gates.wait(i)
        passed.append(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.05)
    assert passed == []
    gates.open_all()
    for t in threads:
        t.join(5)
    assert sorted(passed) == list(range(8))
