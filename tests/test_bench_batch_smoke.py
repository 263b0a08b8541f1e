"""The run_many benchmark (``python -m bench batch``) still runs end to end at its smallest settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# The harness is plain Python whatever the interpreter: tox runs it in one environment.
pytestmark = pytest.mark.once

REPO = Path(__file__).resolve().parents[1]


def test_bench_batch_smoke_runs_both_scenarios_and_writes_results(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO), NO_PROXY="127.0.0.1,localhost")
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "batch", "--smoke", "--out", str(tmp_path)],
        cwd=str(REPO), env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    written = sorted(p.name for p in tmp_path.iterdir())
    assert len(written) == 2 and written[0].endswith("-batch-smoke.json") and written[1].endswith("-batch-smoke.md")
    result = json.loads((tmp_path / written[0]).read_text())
    for sc in result["scenarios"]:
        for client in ("run_many", "thread_pool"):
            (row,) = sc["rounds"][client]
            assert row["completed"] == sc["k"] and row["errors"] == 0 and row["short"] == 0, (sc["name"], row)
            assert row["cpu_us_per_chunk"] > 0 and row["threads_left"] == 0
        assert len(sc["ratio_wall"]) == 1
    assert result["scenarios"][0]["rounds"]["run_many"][0]["sockets_left"] <= 0
    assert "## paced: 16 items × 10 events" in (tmp_path / written[1]).read_text()
