"""run_many's checkpoint: one line per finished item, resumed runs send only what is missing, changed inputs refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest

from llm_sync import ApiError, ChatMessage, Context, RateLimitedError, RetryPolicy, run_many
from llm_sync._checkpoint import Checkpoint, Record, input_hash
from llm_sync._stream import CollectedResponse
from tests.support.echo import EchoModel
from tests.support.paths import REPO
from tests.support.server import LoopbackServer

FAST = RetryPolicy(max_retries=2, backoff_base=0.01, jitter=0.0)


def prompts(n: int) -> List[str]:
    return [f"q{i}" for i in range(n)]


def lines(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_each_finished_item_is_one_line(server: LoopbackServer, tmp_path: Path) -> None:
    echo = EchoModel(server, fail_prompts={"q2": 400})
    path = tmp_path / "run.jsonl"
    results = list(run_many(echo.provider(), prompts(5), checkpoint=path))
    header, *records = lines(path)
    assert header == {"llm_sync_checkpoint": 1, "provider": "openai_compatible:m"}
    assert sorted(r["index"] for r in records) == list(range(5))
    by_index = {r["index"]: r for r in records}
    assert by_index[0]["response"]["text"] == "echo: q0"
    assert by_index[0]["input"] == input_hash(Context([ChatMessage.User("q0")]))
    assert by_index[2]["error"]["type"] == "ApiError" and by_index[2]["error"]["status"] == 400
    assert by_index[2]["error"]["retryable"] is False
    assert len(results) == 5


def test_a_rerun_sends_nothing_when_everything_finished(server: LoopbackServer, tmp_path: Path) -> None:
    echo = EchoModel(server)
    path = tmp_path / "run.jsonl"
    first = sorted(run_many(echo.provider(), prompts(6), checkpoint=path), key=lambda r: r.index)
    sent = len(echo.snapshot())
    again = sorted(run_many(echo.provider(), prompts(6), checkpoint=path), key=lambda r: r.index)
    assert len(echo.snapshot()) == sent == 6
    assert [r.response.text for r in again if r.response] == [r.response.text for r in first if r.response]
    assert all(r.resumed and r.attempts == 0 for r in again)
    assert len(lines(path)) == 7  # nothing appended


def test_a_rerun_sends_only_the_missing_and_the_retryable_failures(server: LoopbackServer, tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    hashes = [input_hash(Context([ChatMessage.User(p)])) for p in prompts(6)]
    ck = Checkpoint(path, "openai_compatible:m")
    ok = CollectedResponse.from_dict({"text": "earlier", "provider": "openai-compatible", "model": "m"})
    ck.write(Record(0, hashes[0], 1, ok, None))
    ck.write(Record(1, hashes[1], 3, None, RateLimitedError("slow down", status=429)))
    ck.write(Record(2, hashes[2], 1, None, ApiError("bad request", status=400)))
    ck.close()
    echo = EchoModel(server)
    results = {r.index: r for r in run_many(echo.provider(), prompts(6), checkpoint=path)}
    assert sorted(echo.prompts()) == ["q1", "q3", "q4", "q5"]
    assert results[0].resumed and results[0].response and results[0].response.text == "earlier"
    assert results[2].resumed and isinstance(results[2].error, ApiError) and results[2].error.status == 400
    assert str(results[2].error).startswith("bad request")
    assert not results[1].resumed and results[1].response and results[1].response.text == "echo: q1"
    # The re-sent item's new line comes after the old one and wins when read again.
    reread = Checkpoint(path, "openai_compatible:m")
    reread.close()
    assert reread.records[1].response is not None


def test_a_changed_input_is_refused_before_anything_is_sent(server: LoopbackServer, tmp_path: Path) -> None:
    echo = EchoModel(server)
    path = tmp_path / "run.jsonl"
    list(run_many(echo.provider(), prompts(4), checkpoint=path))
    changed = prompts(4)
    changed[2] = "something else"
    with pytest.raises(ValueError, match=r"other inputs at index 2: .*new checkpoint path"):
        run_many(echo.provider(), changed, checkpoint=path)
    assert len(echo.snapshot()) == 4


def test_timestamps_do_not_count_as_a_change(server: LoopbackServer, tmp_path: Path) -> None:
    echo = EchoModel(server)
    path = tmp_path / "run.jsonl"
    first = [Context([ChatMessage.User("hi", timestamp="2020-01-01T00:00:00Z")])]
    later = [Context([ChatMessage.User("hi", timestamp="2026-06-01T00:00:00Z")])]
    list(run_many(echo.provider(), first, checkpoint=path))
    assert [r.resumed for r in run_many(echo.provider(), later, checkpoint=path)] == [True]
    assert len(echo.snapshot()) == 1


def test_another_model_is_refused(server: LoopbackServer, tmp_path: Path) -> None:
    echo = EchoModel(server)
    path = tmp_path / "run.jsonl"
    list(run_many(echo.provider(), prompts(2), checkpoint=path))
    with pytest.raises(ValueError, match=r"written by a run on 'openai_compatible:m'.*'openai_compatible:other'"):
        run_many(echo.provider().with_model("other"), prompts(2), checkpoint=path)


def test_a_line_cut_short_by_a_crash_is_dropped_and_its_item_sent_again(server: LoopbackServer, tmp_path: Path) -> None:
    echo = EchoModel(server)
    path = tmp_path / "run.jsonl"
    list(run_many(echo.provider(), prompts(3), checkpoint=path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 10])  # the last record loses its end
    results = list(run_many(echo.provider(), prompts(3), checkpoint=path))
    assert len(echo.snapshot()) == 4 and sum(not r.resumed for r in results) == 1
    assert all(json.loads(x) for x in path.read_text().splitlines())


def test_a_corrupt_line_in_the_middle_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_text('{"llm_sync_checkpoint": 1, "provider": "x:y"}\nnot json\n{"index": 0}\n')
    with pytest.raises(ValueError, match=r"run.jsonl, line 2, is not a run_many checkpoint record"):
        Checkpoint(path, "x:y")


# -- Ctrl-C in a real process ------------------------------------------------------------------

_SCRIPT = textwrap.dedent(
    """
    import sys, threading
    from llm_sync import run_many
    from llm_sync.providers import OpenAiCompatibleProvider

    url, path = sys.argv[1], sys.argv[2]
    provider = OpenAiCompatibleProvider(base_url=url, model="m")
    try:
        for r in run_many(provider, [f"q{i}" for i in range(40)], max_workers=4, checkpoint=path):
            print("done", r.index, flush=True)
    except KeyboardInterrupt:
        left = [t.name for t in threading.enumerate() if t.name.startswith("llm_sync-")]
        print("interrupted", left, flush=True)
        sys.exit(130)
    """
)


def test_sigint_exits_within_a_second_and_a_rerun_sends_only_the_missing(server: LoopbackServer, tmp_path: Path) -> None:
    echo = EchoModel(server, delay=0.2)
    path = tmp_path / "run.jsonl"
    script = tmp_path / "job.py"
    script.write_text(_SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(REPO), NO_PROXY="127.0.0.1")
    proc = subprocess.Popen(
        [sys.executable, str(script), f"{server.url}/v1", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    assert proc.stdout is not None
    done: List[int] = []
    try:
        deadline = time.monotonic() + 60
        while len(done) < 8 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            done.append(int(line.split()[1]))
        assert len(done) == 8, proc.stderr.read() if proc.stderr else ""
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=10)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert took < 1.0, took
    assert "interrupted []" in rest  # no llm_sync thread left
    done += [int(x.split()[1]) for x in rest.splitlines() if x.startswith("done")]
    recorded = {r["index"] for r in lines(path)[1:]}
    assert set(done) <= recorded  # every item the job saw finish is in the checkpoint
    assert len(recorded) < 40
    before = len(echo.snapshot())
    results = list(run_many(echo.provider(), prompts(40), max_workers=8, checkpoint=path))
    resent = echo.prompts()[before:]
    assert sorted(resent) == sorted(f"q{i}" for i in range(40) if i not in recorded)
    assert len(results) == 40 and all(r.ok for r in results)
    assert {r.index for r in results if r.resumed} == recorded
