"""docs/notebooks/quickstart.ipynb executed by a real Jupyter kernel (nbclient + ipykernel).

The kernel talks to the stand-in model on 127.0.0.1 (its URL in LLM_SYNC_NOTEBOOK_BASE_URL).
The cell tagged ``interrupt-me`` iterates a stream the server never answers; the test sends the
kernel an interrupt, as the notebook's stop button does, and checks the cell stopped promptly,
the upstream connection closed, no reader thread is left and the kernel still works.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest

from tests.examples.fake_llm import FakeLlmServer
from tests.support.local_model import needs_local

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "docs" / "notebooks" / "quickstart.ipynb"
KEY = "sk-ant-notebook-test-key-0123456789"


def _stdout(cell: Any) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def _errors(cell: Any) -> List[str]:
    return [o["ename"] for o in cell.get("outputs", []) if o.get("output_type") == "error"]


# jupyter_client keeps a process-wide zmq context whose two internal sockets outlive the kernel
# (no thread is left). The leak check that matters here is about llm_sync, done inside the kernel
# (threading.enumerate) and by the stand-in server from outside (its open connections).
@pytest.mark.leaks_allowed
def test_notebook_runs_and_an_interrupt_stops_a_stalled_stream(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    with FakeLlmServer() as server:
        monkeypatch.setenv("LLM_SYNC_NOTEBOOK_BASE_URL", server.url)  # the kernel inherits these
        monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
        monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
        # The kernel imports llm_sync from this checkout, as the tests do.
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
                    server.wait_for_requests(seen + 1, timeout=20)
                    time.sleep(0.5)  # the cell is now blocked waiting for a chunk
                    timings["open_during_stall"] = server.open_connections
                    timings["interrupted"] = time.monotonic()
                    client.km.provisioner.process.send_signal(2)  # SIGINT, as "Kernel > Interrupt" sends

                helper = threading.Thread(target=interrupt)
                helper.start()
                client.execute_cell(cell, index)
                timings["cell_done"] = time.monotonic()
                helper.join(5)
                server.wait_for_open_connections(int(timings["open_during_stall"]) - 1, timeout=3)

        cells = [c for c in nb.cells if c.cell_type == "code"]
        assert KEY not in "".join(_stdout(c) for c in cells)
        setup, streamed, collected, tools, stalled, after, loop = cells
        assert _stdout(streamed) == "You said: Name three rivers.\n"
        text, counts = _stdout(collected).splitlines()
        assert text == "You said: Name three rivers."
        assert counts.startswith("tokens in/out: ") and counts.endswith(" 5 stop: end_turn")
        assert _stdout(tools).splitlines() == [
            "the model calls get_weather {'city': 'Paris'}",
            "The tool says: sunny, 21 degrees in Paris",
        ]
        # The interrupt: a KeyboardInterrupt in the stalled cell, promptly, and nothing left over.
        assert _errors(stalled) == ["KeyboardInterrupt"]
        assert timings["cell_done"] - timings["interrupted"] < 2.0
        assert _stdout(after).splitlines() == ["stream closed: True", "reader threads: []"]
        # The kernel is still usable, inside its own event loop.
        assert _stdout(loop).splitlines() == ["a loop is running in this cell", "You said: Still there?"]
        for cell in (setup, streamed, collected, tools, after, loop):
            assert _errors(cell) == []
        bodies = [r.json() for r in server.requests]
        assert bodies[-1]["messages"][0]["content"][0]["text"] == "Still there?"
        assert server.errors == []


# With no key at all, the notebook uses the embedded model and runs to the end, in a real kernel.
@needs_local
@pytest.mark.leaks_allowed  # jupyter_client's zmq context, as above
def test_notebook_runs_to_the_end_with_no_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    for name in list(os.environ):
        if name.endswith(("_API_KEY", "_BASE_URL")) or name == "LLM_SYNC_NOTEBOOK_BASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", f"{REPO}{os.pathsep}{path}" if path else str(REPO))
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError if a cell fails (the tagged one included)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    setup, streamed, collected, tools, stalled, after, loop = cells
    assert "LlamaCppProvider(model='gemma-3-270m'" in "".join(
        o.get("data", {}).get("text/plain", "") for o in setup.outputs
    )
    assert _stdout(streamed).strip()
    assert _stdout(collected).splitlines()[-1].startswith("tokens in/out: ")
    assert _stdout(tools).startswith("the model answered without calling the tool: ")
    assert "Done(" in _stdout(stalled)  # not interrupted here: a real model finishes
    assert _stdout(after).splitlines() == ["stream closed: True", "reader threads: []"]
    assert _stdout(loop).splitlines()[0] == "a loop is running in this cell"
    assert all(_errors(c) == [] for c in cells)
