"""run_many over real HTTP on 127.0.0.1: results, the shared pause, AIMD, retries, stopping, progress."""

from __future__ import annotations

import _thread
import sys
import threading
import time
from pathlib import Path
from typing import List

import pytest

import llm_sync
from llm_sync import (
    ApiError,
    BatchResult,
    ChatMessage,
    CollectedResponse,
    Context,
    LlmResponse,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    StreamingModelProvider,
    run_many,
)
from llm_sync.testing import FakeLlmProvider
from tests.support.echo import EchoModel
from tests.support.server import LoopbackServer

# Retries in tests wait tens of milliseconds, not seconds.
FAST = RetryPolicy(max_retries=8, backoff_base=0.02, backoff_max=0.2, jitter=0.0)


def prompts(n: int) -> List[str]:
    return [f"q{i}" for i in range(n)]


def llm_threads() -> List[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("llm_sync-")]


# -- results -----------------------------------------------------------------------------------


def test_a_hundred_items_all_come_back_right(server: LoopbackServer) -> None:
    echo = EchoModel(server, delay=0.01)
    results = list(run_many(echo.provider(), prompts(100), max_workers=16))
    assert sorted(r.index for r in results) == list(range(100))
    for r in results:
        assert isinstance(r, BatchResult) and r.ok and r.error is None
        assert isinstance(r.response, CollectedResponse)
        assert r.response.text == f"echo: q{r.index}"
        assert r.response.complete and r.attempts == 1 and not r.resumed
        assert r.response.usage is not None and r.response.usage.output_tokens == 3
    assert sorted(echo.prompts()) == sorted(prompts(100))
    assert len(echo.snapshot()) == 100


def test_results_come_as_they_finish_not_in_order() -> None:
    # The first item's answer is held until the others were yielded.
    release = threading.Event()
    turns = [[LlmResponse.Start(f"m{i}"), LlmResponse.Text(f"a{i}"), LlmResponse.Done()] for i in range(6)]
    fake = FakeLlmProvider(turns).pause_turn_after(0, 1, release)
    got: List[BatchResult] = []
    for r in run_many(fake, prompts(6), max_workers=6):
        got.append(r)
        if len(got) == 5:
            release.set()
    # Turn 0 went to whichever item was sent first; it came back last.
    assert [r.response.text for r in got if r.response][-1] == "a0"
    assert sorted(r.index for r in got) == list(range(6))


def test_a_result_is_a_frozen_value_and_exported() -> None:
    r = BatchResult(3, error=ApiError("no"))
    assert not r.ok and r.attempts == 0 and r.cost is None and not r.resumed
    with pytest.raises(AttributeError):
        r.index = 4  # type: ignore[misc]
    assert "BatchResult" in llm_sync.__all__ and "run_many" in llm_sync.__all__


def test_contexts_and_prompts_both_go(server: LoopbackServer) -> None:
    echo = EchoModel(server)
    ctx = Context([ChatMessage.System("be brief"), ChatMessage.User("from a context")])
    results = sorted(run_many(echo.provider(), [ctx, "from a str"]), key=lambda r: r.index)
    assert [r.response.text for r in results if r.response] == ["echo: from a context", "echo: from a str"]


def test_bad_arguments_are_refused_before_anything_is_sent(server: LoopbackServer) -> None:
    echo = EchoModel(server)
    p = echo.provider()
    with pytest.raises(TypeError, match=r"contexts\[1\] is a int"):
        run_many(p, ["ok", 3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="wrap a single one in a list"):
        run_many(p, "one prompt")
    with pytest.raises(ValueError, match="max_workers must be a positive int"):
        run_many(p, ["a"], max_workers=0)
    with pytest.raises(ValueError, match="retries must be"):
        run_many(p, ["a"], retries=-1)
    with pytest.raises(TypeError, match="StreamingModelProvider"):
        run_many("openai:gpt", ["a"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"concurrent\.futures\.Executor"):
        run_many(p, ["a"], executor=object())  # type: ignore[arg-type]
    assert echo.snapshot() == []


def test_an_empty_run_yields_nothing(server: LoopbackServer) -> None:
    assert list(run_many(EchoModel(server).provider(), [])) == []


# -- the shared pause ------------------------------------------------------------------------------


def test_one_429_with_retry_after_pauses_every_worker(server: LoopbackServer) -> None:
    # The first 16 answers (the first wave of 16 workers) take 0.5 s, so none of them
    # ends, and frees a worker, before the client has read the 429 (request 10).
    echo = EchoModel(server, delay=0.02, first=(16, 0.5), refuse={10: (429, {"retry-after": "2"})})
    started = time.monotonic()
    results = list(run_many(echo.provider(), prompts(100), max_workers=16, retries=FAST))
    assert all(r.ok for r in results) and len(results) == 100
    arrivals = echo.snapshot()
    assert len(arrivals) == 101  # the refused one, once more
    limited = next(a for a in arrivals if a.status == 429)
    # Only requests of the first wave, sent before the 429 came back, may arrive in the two
    # seconds after it (on a loaded machine a thread can take a while to send); no other does.
    early = [a for a in arrivals if a.number > 16 and a.at < limited.at + 2.0]
    assert early == [], early
    assert len([a for a in arrivals if a.at >= limited.at + 2.0]) >= 101 - 16
    again = [r for r in results if r.response and r.response.text == f"echo: {limited.prompt}"]
    assert again[0].attempts == 2
    assert time.monotonic() - started < 15


def test_a_429_without_retry_after_pauses_for_a_backoff(server: LoopbackServer) -> None:
    echo = EchoModel(server, delay=0.01, first=(4, 0.3), refuse={3: (429, {})})
    policy = RetryPolicy(max_retries=3, backoff_base=0.5, backoff_max=1.0, jitter=0.0)
    results = list(run_many(echo.provider(), prompts(40), max_workers=4, retries=policy))
    assert all(r.ok for r in results)
    arrivals = echo.snapshot()
    limited = next(a for a in arrivals if a.status == 429)
    assert [a for a in arrivals if a.number > 4 and a.at < limited.at + 0.5] == []


def test_an_in_band_rate_limit_pauses_too() -> None:
    # A rate-limit error inside a 200 stream (FakeLlmProvider raises it), with retry_after.
    err = RateLimitedError("slow down", retry_after=0.6)
    ok = [LlmResponse.Start("m"), LlmResponse.Text("fine"), LlmResponse.Done()]
    fake = FakeLlmProvider([[err]] + [ok] * 20)
    started = time.monotonic()
    with run_many(fake, prompts(8), max_workers=1, retries=FAST) as run:
        results = list(run)
    assert all(r.ok for r in results) and len(results) == 8
    assert time.monotonic() - started >= 0.6
    assert run.requests == 9 and run.retries == 1


# -- AIMD ---------------------------------------------------------------------------------------


def _sample_limits(run: llm_sync.BatchRun, out: List[int], stop: threading.Event) -> None:
    while not stop.wait(0.005):
        out.append(run.concurrency)


def test_overload_lowers_the_in_flight_peak(server: LoopbackServer) -> None:
    # The stand-in sends 4 answers at a time and answers 503 to anything beyond.
    echo = EchoModel(server, delay=0.05, capacity=4, overload_status=503)
    run = run_many(echo.provider(), prompts(80), max_workers=16, retries=RetryPolicy(max_retries=30, backoff_base=0.02, backoff_max=0.1))
    results = list(run)
    assert all(r.ok for r in results) and len(results) == 80
    arrivals = echo.snapshot()
    refused = [a for a in arrivals if a.status == 503]
    # Without AIMD, 16 workers against 4 slots are refused ~3 times in 4, every round.
    assert echo.peak_in_flight() <= 4
    settled = arrivals[20:]
    refused_later = [a for a in settled if a.status == 503]
    assert len(refused_later) <= len(settled) // 4, (len(refused_later), len(settled))
    assert run.concurrency <= 6
    assert len(refused) < 80


def test_concurrency_climbs_back_once_the_overload_ends(server: LoopbackServer) -> None:
    echo = EchoModel(server, delay=0.03, capacity=2, overload_status=529, overload_until=30)
    run = run_many(echo.provider(), prompts(150), max_workers=8, retries=RetryPolicy(max_retries=30, backoff_base=0.02, backoff_max=0.1))
    limits: List[int] = []
    stop = threading.Event()
    sampler = threading.Thread(target=_sample_limits, args=(run, limits, stop))
    sampler.start()
    try:
        results = list(run)
    finally:
        stop.set()
        sampler.join()
    assert all(r.ok for r in results)
    assert min(limits) <= 2  # it went down
    assert run.concurrency == 8  # and all the way back up
    assert echo.peak_in_flight(after=100) > 2


# -- retries ---------------------------------------------------------------------------------------


def test_retries_are_bounded_and_counted(server: LoopbackServer) -> None:
    echo = EchoModel(server, fail_prompts={"q3": 500})
    run = run_many(echo.provider(max_retries=5), prompts(10), max_workers=4, retries=RetryPolicy(max_retries=3, backoff_base=0.01, jitter=0.0))
    results = {r.index: r for r in run}
    bad = results[3]
    assert isinstance(bad.error, ServerError) and bad.error.status == 500 and bad.response is None
    assert bad.attempts == 4  # 1 + 3 retries: the provider's own 5 are off
    assert echo.prompts(status=500) == ["q3"] * 4
    assert all(r.ok and r.attempts == 1 for i, r in results.items() if i != 3)
    assert run.retries == 3 and run.requests == 13 and run.failed == 1 and run.done == 10


def test_a_non_retryable_error_is_not_retried(server: LoopbackServer) -> None:
    echo = EchoModel(server, fail_prompts={"q1": 400})
    results = {r.index: r for r in run_many(echo.provider(), prompts(3), retries=FAST)}
    assert isinstance(results[1].error, ApiError) and results[1].attempts == 1
    assert echo.prompts(status=400) == ["q1"]


def test_a_provider_bug_ends_the_run_with_it_and_leaves_nothing_running() -> None:
    class Broken(StreamingModelProvider):
        def stream_response(self, context: Context) -> llm_sync.LlmResponseStream:
            raise KeyError("bug")

        def display_name(self) -> str:
            return "broken"

    with pytest.raises(KeyError, match="bug"):
        list(run_many(Broken(), prompts(5)))
    assert llm_threads() == []


# -- stopping -------------------------------------------------------------------------------------


def test_break_stops_the_run(server: LoopbackServer) -> None:
    echo = EchoModel(server, delay=0.05)
    got = []
    for r in run_many(echo.provider(), prompts(100), max_workers=4):
        got.append(r)
        if len(got) == 5:
            break
    time.sleep(0.2)
    assert len(echo.snapshot()) < 20
    assert llm_threads() == []


def test_ctrl_c_returns_within_a_second_and_leaves_nothing(server: LoopbackServer, tmp_path: Path) -> None:
    # Answers that take 5 s: Ctrl-C arrives while 8 are in flight.
    echo = EchoModel(server, delay=5.0)
    run = run_many(echo.provider(), prompts(20), max_workers=8, checkpoint=tmp_path / "run.jsonl")
    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            for _ in run:
                pass
        took = time.monotonic() - started - 0.5
    finally:
        timer.cancel()
    assert took < 1.0, took
    assert llm_threads() == []
    assert len(echo.snapshot()) == 8
    lines = (tmp_path / "run.jsonl").read_text().splitlines()
    assert len(lines) == 1  # the header: nothing finished


def test_close_from_another_thread_stops_a_waiting_iterator(server: LoopbackServer) -> None:
    echo = EchoModel(server, delay=5.0)
    run = run_many(echo.provider(), prompts(4), max_workers=4)
    threading.Timer(0.3, run.close).start()
    started = time.monotonic()
    assert list(run) == []
    assert time.monotonic() - started < 1.5
    assert llm_threads() == []


# -- progress ------------------------------------------------------------------------------------


def _no_tqdm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)


def test_progress_without_tqdm_is_a_plain_line_on_stderr(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _no_tqdm(monkeypatch)
    echo = EchoModel(server, fail_prompts={"q2": 400})
    results = list(run_many(echo.provider(), prompts(12), progress=True))
    assert len(results) == 12
    err = capsys.readouterr().err
    assert "run_many: 12/12 done, 1 failed, 0 in flight, 88 tokens" in err, err


def test_progress_with_tqdm_shows_done_failed_in_flight_tokens(
    server: LoopbackServer, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("tqdm")
    echo = EchoModel(server, fail_prompts={"q0": 400})
    list(run_many(echo.provider(), prompts(6), progress=True))
    err = capsys.readouterr().err
    assert "run_many" in err and "6/6" in err and "1 failed" in err and "40 tokens" in err, err
    assert llm_threads() == []

