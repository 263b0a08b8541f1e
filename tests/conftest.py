"""Shared fixtures: the loopback server, and the check that no test leaks a thread or socket."""

from __future__ import annotations

import gc
import os
import signal
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.support.leaks import socket_fds
from tests.support.paths import REPO as REPO
from tests.support.paths import WIRE
from tests.support.server import LoopbackServer

# A run started as a background job inherits SIGINT ignored, and Python then installs no
# KeyboardInterrupt handler: the Ctrl-C tests (interrupt_main, SIGINT to a child) would wait
# out their stalls instead. Give the run the handler a terminal gives it.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves a thread or a socket behind (after a bounded grace period)."""
    threads_before = set(threading.enumerate())
    sockets_before = socket_fds()
    yield
    if request.node.get_closest_marker("leaks_allowed"):
        return
    deadline = time.monotonic() + 2.0
    # Most tests leave nothing, and what one leaves is mostly a young cycle (a caught exception's
    # traceback holding the client): a full collection on the suite's large heap costs more than
    # most tests, so the generations are tried young first.
    generations = iter((None, 0, 1))
    while True:
        generation = next(generations, 2)
        if generation is not None:
            gc.collect(generation)
        threads = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
        sockets = socket_fds() - sockets_before
        if not threads and not sockets:
            return
        if time.monotonic() > deadline:
            pytest.fail(
                f"test left behind threads {[t.name for t in threads]} and sockets {sorted(sockets)}"
            )
        if generation == 2:  # garbage collection did not end them: a thread is still finishing
            time.sleep(0.02)


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as s:
        yield s


@pytest.fixture
def wire() -> Path:
    """The real recorded provider responses in ../shared/wire; skips when absent."""
    if not WIRE.is_dir():
        pytest.skip(f"{WIRE} is absent (real wire recordings are not part of the project)")
    return WIRE


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("LLM_SYNC_LIVE") == "1":
        return
    skip = pytest.mark.skip(reason="live test: set LLM_SYNC_LIVE=1 and the provider's API key")
    for item in items:
        if "live" in item.keywords:
            item.add_marker(skip)
