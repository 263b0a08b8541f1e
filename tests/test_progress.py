"""The progress display of run_many: the plain line (terminal and log forms) and the tqdm bar."""

from __future__ import annotations

import io
import sys
import threading

import pytest

from llm_sync._progress import counts_text, open_progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_counts_text_says_failed_in_flight_tokens_and_cost() -> None:
    assert counts_text(2, 16, 12345, None) == "2 failed, 16 in flight, 12,345 tokens"
    assert counts_text(0, 0, 10, 0.01234) == "0 failed, 0 in flight, 10 tokens, $0.0123"


def test_the_plain_line_rewrites_itself_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    out = Terminal()
    p = open_progress(10, 0, out=out)
    p.show(1, 0, 4, 8, None)
    p.show(10, 1, 0, 80, 0.5)
    p.close()
    text = out.getvalue()
    assert text.startswith("\r\x1b[2Krun_many: 1/10 done, 0 failed, 4 in flight, 8 tokens")
    assert text.endswith("\r\x1b[2Krun_many: 10/10 done, 1 failed, 0 in flight, 80 tokens, $0.5000\n")


def test_the_plain_line_in_a_log_is_a_line_now_and_then_and_the_last(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    out = io.StringIO()
    p = open_progress(3, 1, out=out)
    for done in (1, 2, 2, 2):
        p.show(done, 0, 1, 0, None)
    p.close()
    assert out.getvalue().splitlines() == [
        "run_many: 1/3 done, 0 failed, 1 in flight, 0 tokens",  # the first, then at most every 10 s
        "run_many: 2/3 done, 0 failed, 1 in flight, 0 tokens",  # the last, at close
    ]


def test_the_tqdm_bar_starts_no_monitor_thread(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tqdm")
    before = set(threading.enumerate())
    p = open_progress(4, 1)
    p.show(3, 1, 1, 40, None)
    p.close()
    assert set(threading.enumerate()) - before == set()
    err = capsys.readouterr().err
    assert "run_many" in err and "3/4" in err and "1 failed, 1 in flight, 40 tokens" in err
