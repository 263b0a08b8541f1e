"""docs/notebooks/batch.ipynb executed by a real Jupyter kernel: run_many's progress bar, then an interrupt mid-run.

The kernel talks to the stand-in model on 127.0.0.1 (LLM_SYNC_NOTEBOOK_BASE_URL). The cell tagged
``interrupt-me`` runs eight items, four of them slow (10 s); the test interrupts the kernel, as the
notebook's stop button does, once the four quick ones are answered, and checks the run's connections
closed within a second, no llm_sync thread is left and the checkpoint holds the
four finished items.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, Dict

import pytest

from tests.examples.fake_llm import FakeLlmServer

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "docs" / "notebooks" / "batch.ipynb"
KEY = "sk-ant-notebook-test-key-0123456789"


def _text(cell: Any, name: str) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == name)


@pytest.mark.leaks_allowed  # jupyter_client's process-wide zmq sockets; llm_sync's are checked in the kernel
def test_batch_notebook_shows_progress_and_an_interrupt_stops_the_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    with FakeLlmServer() as server:
        monkeypatch.setenv("LLM_SYNC_NOTEBOOK_BASE_URL", server.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
        monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
        path = os.environ.get("PYTHONPATH")
        monkeypatch.setenv("PYTHONPATH", f"{REPO}{os.pathsep}{path}" if path else str(REPO))
        client = nbclient.NotebookClient(
            nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
        )
        timings: Dict[str, float] = {}
        with client.setup_kernel():
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                if "interrupt-me" not in cell.metadata.get("tags", []):
                    client.execute_cell(cell, index)
                    continue
                seen = len(server.requests)

                def interrupt(seen: int = seen) -> None:
                    # 4 quick answers, and the 4 slow ones under way.
                    server.wait_for_requests(seen + 8, timeout=20)
                    time.sleep(0.5)
                    busy = server.open_connections  # the 4 slow streams, and idle pooled ones
                    timings["interrupted"] = time.monotonic()
                    client.km.provisioner.process.send_signal(2)  # SIGINT, as "Kernel > Interrupt" sends
                    # The stop closes the 4 slow streams' connections (the idle ones stay pooled).
                    server.wait_for_open_connections(busy - 4, timeout=5)
                    timings["closed"] = time.monotonic()

                helper = threading.Thread(target=interrupt)
                helper.start()
                client.execute_cell(cell, index)
                timings["cell_done"] = time.monotonic()
                helper.join(5)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    progress, interrupted, after = cells[1], cells[2], cells[3]
    assert _text(progress, "stdout").startswith("20 answers; You said: What is 3 squared?")
    bar = _text(progress, "stderr")
    assert "run_many" in bar and "20/20" in bar and "0 failed" in bar, bar
    assert [o["ename"] for o in interrupted.outputs if o.get("output_type") == "error"] == ["KeyboardInterrupt"]
    assert sorted(_text(interrupted, "stdout").split()) == sorted("finished 0 finished 2 finished 4 finished 6".split())
    # The run stops (its streams closed) within a second of the interrupt; the cell ends once
    # IPython has rendered the traceback, which takes longer on a busy machine.
    assert timings["closed"] - timings["interrupted"] < 1.0, timings
    assert timings["cell_done"] - timings["interrupted"] < 5.0, timings
    assert _text(after, "stdout") == "threads left: []\nfinished items in the checkpoint: 4\n"
    assert (tmp_path / "squares.jsonl").exists()
