"""The progress display of a batch run: a tqdm bar when tqdm is installed (``tqdm.auto``: a widget in notebooks), else a plain line on stderr."""

from __future__ import annotations

import sys
import time
import warnings
from typing import IO, Any, Optional

__all__ = ["Progress", "counts_text", "open_progress"]

# The plain line is rewritten at most this often on a terminal, and printed at most
# this often elsewhere (a log file or a notebook's stderr, where "\r" does not rewrite).
_TTY_EVERY = 0.2
_LOG_EVERY = 10.0


def counts_text(failed: int, in_flight: int, tokens: int, cost: Optional[float]) -> str:
    money = "" if cost is None else f", ${cost:.4f}"
    return f"{failed} failed, {in_flight} in flight, {tokens:,} tokens{money}"


class Progress:
    """What a run tells its display; this base shows nothing."""

    def show(self, done: int, failed: int, in_flight: int, tokens: int, cost: Optional[float]) -> None:
        """The counts now; called often (each result, and a few times a second while waiting)."""

    def close(self) -> None:
        """The run ended (or was interrupted): leave the last counts on screen."""


class _Line(Progress):
    def __init__(self, total: int, out: IO[str]) -> None:
        self.total = total
        self.out = out
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self.last = 0.0
        self.text = ""
        self.written = ""

    def show(self, done: int, failed: int, in_flight: int, tokens: int, cost: Optional[float]) -> None:
        self.text = f"run_many: {done}/{self.total} done, " + counts_text(failed, in_flight, tokens, cost)
        if self.text == self.written:
            return
        now = time.monotonic()
        if now - self.last >= (_TTY_EVERY if self.tty else _LOG_EVERY) or done == self.total:
            self.last = now
            self._write()

    def _write(self) -> None:
        self.written = self.text
        try:
            if self.tty:
                self.out.write("\r\x1b[2K" + self.text)
            else:
                self.out.write(self.text + "\n")
            self.out.flush()
        except (OSError, ValueError):
            pass

    def close(self) -> None:
        if self.text != self.written:
            self._write()
        if self.tty and self.written:
            try:
                self.out.write("\n")
                self.out.flush()
            except (OSError, ValueError):
                pass


class _Bar(Progress):
    def __init__(self, total: int, initial: int, tqdm_class: Any) -> None:
        self.bar = tqdm_class(total=total, initial=initial, unit="item", desc="run_many", dynamic_ncols=True)
        self.done = initial
        self.postfix = ""
        self.last = 0.0

    def show(self, done: int, failed: int, in_flight: int, tokens: int, cost: Optional[float]) -> None:
        postfix = counts_text(failed, in_flight, tokens, cost)
        if postfix != self.postfix:
            self.postfix = postfix
            self.bar.set_postfix_str(postfix, refresh=False)
        now = time.monotonic()
        if done != self.done:
            self.bar.update(done - self.done)  # redraws, at most every tqdm's mininterval
            self.done = done
            self.last = now
        elif now - self.last >= _TTY_EVERY:
            self.bar.refresh()  # the counts moved while no item finished
            self.last = now

    def close(self) -> None:
        self.bar.close()


def open_progress(total: int, initial: int, *, use_tqdm: bool = True, out: Optional[IO[str]] = None) -> Progress:
    """A tqdm bar when tqdm is importable (and ``use_tqdm``), else the plain stderr line."""
    if use_tqdm:
        try:
            with warnings.catch_warnings():
                # In a notebook without ipywidgets tqdm.auto warns and draws a text bar,
                # which Jupyter shows well: the bar asked for, without the noise.
                warnings.simplefilter("ignore")
                from tqdm.auto import tqdm
        except ImportError:
            pass
        else:
            # tqdm's monitor is a thread that outlives the bar; a run leaves no thread behind.
            bar_class = type("_RunBar", (tqdm,), {"monitor_interval": 0})
            return _Bar(total, initial, bar_class)
    return _Line(total, out if out is not None else sys.stderr)
