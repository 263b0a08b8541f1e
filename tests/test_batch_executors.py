"""run_many with executor=: a ProcessPoolExecutor and a real Dask LocalCluster (worker processes), over loopback HTTP.

The cluster is started once for the module: a LocalCluster with two worker processes costs
seconds to import, start and close, more than the tests themselves (``-s`` prints its start time).
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Iterator, List

import pytest

from llm_sync import RetryPolicy, run_many
from llm_sync.testing import FakeLlmProvider
from tests.support.echo import EchoModel
from tests.support.server import LoopbackServer

FAST = RetryPolicy(max_retries=4, backoff_base=0.02, backoff_max=0.2, jitter=0.0)


def prompts(n: int) -> List[str]:
    return [f"q{i}" for i in range(n)]


def llm_threads() -> List[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("llm_sync-")]


def check_all_right(results: List[Any], n: int) -> None:
    assert sorted(r.index for r in results) == list(range(n))
    for r in results:
        assert r.ok, r.error
        assert r.response.text == f"echo: q{r.index}"


# -- ProcessPoolExecutor -----------------------------------------------------------------------


def test_a_process_pool_runs_the_job(server: LoopbackServer) -> None:
    echo = EchoModel(server, delay=0.02, refuse={7: (429, {"retry-after": "0.5"})})
    # spawn: the test process has threads (the server's), which fork would copy mid-flight.
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(run_many(echo.provider(), prompts(40), max_workers=2, executor=pool, retries=FAST))
    check_all_right(results, 40)
    assert len(echo.snapshot()) == 41
    limited = next(a for a in echo.snapshot() if a.status == 429)
    # max_workers = the pool's size: a pause seen by the scheduler holds for every later task.
    later = [a for a in echo.snapshot() if a.number > limited.number + 2 and a.at < limited.at + 0.5]
    assert later == [], later
    assert llm_threads() == []


def test_a_stop_returns_at_once_while_tasks_run_in_the_pool(server: LoopbackServer) -> None:
    echo = EchoModel(server, delay=1.5)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        run = run_many(echo.provider(), prompts(10), max_workers=2, executor=pool)
        threading.Timer(0.3, run.close).start()
        started = time.monotonic()
        assert list(run) == []
        took = time.monotonic() - started
    assert took < 1.3  # 0.3 s, then the stop; the two running tasks finish in the pool
    assert len(echo.snapshot()) <= 2 + 2  # nothing was submitted after the stop
    assert llm_threads() == []


def test_an_unpicklable_provider_is_refused_before_anything_is_sent() -> None:
    fake = FakeLlmProvider([])  # holds a lock: configuration that cannot travel
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        with pytest.raises(TypeError, match="the provider cannot be pickled"):
            run_many(fake, ["a"], executor=pool)


# -- Dask --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    distributed = pytest.importorskip("distributed")
    started = time.monotonic()
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None, silence_logs=50
    )
    client = distributed.Client(cluster)
    client.startup_seconds = time.monotonic() - started  # reported by the test below
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.mark.once  # Dask's start-up is most of the time; the pickling is covered by the process pool
@pytest.mark.leaks_allowed  # Dask's own comm threads and sockets live as long as the cluster
def test_a_dask_local_cluster_runs_the_job(server: LoopbackServer, dask_client: Any) -> None:
    echo = EchoModel(server, delay=0.02, refuse={5: (429, {"retry-after": "0.5"})})
    executor = dask_client.get_executor()
    started = time.monotonic()
    results = list(run_many(echo.provider(), prompts(40), max_workers=4, executor=executor, retries=FAST))
    took = time.monotonic() - started
    check_all_right(results, 40)
    assert len(echo.snapshot()) == 41
    limited = next(a for a in echo.snapshot() if a.status == 429)
    later = [a for a in echo.snapshot() if a.number > limited.number + 4 and a.at < limited.at + 0.5]
    assert later == [], later
    # The requests ran in the cluster's worker processes: each keeps the run's provider.
    kept = dask_client.run(lambda: len(__import__("llm_sync._batch", fromlist=["_"])._PROVIDERS))
    assert len(kept) == 2 and sum(kept.values()) >= 1, kept
    print(f"LocalCluster start {dask_client.startup_seconds:.1f} s, 40 items {took:.2f} s")
    deadline = time.monotonic() + 2
    while llm_threads() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert llm_threads() == []
