"""Where a secret could show: an error's texts, a traceback's frame locals, log records."""

from __future__ import annotations

import logging
import traceback
from types import TracebackType
from typing import Iterator, List, Optional, Set

__all__ = ["CaptureLogs", "error_texts", "leaks", "traceback_locals_text"]


def leaks(text: str, secret: str) -> bool:
    """True if ``text`` shows ``secret`` or a recognisable slice of it (beyond a 3-char mask)."""
    return secret in text or secret[4:-4] in text


def error_texts(err: BaseException) -> str:
    """Everything a user could print of an error: str, repr, body, the whole chained traceback."""
    parts = [str(err), repr(err), "".join(traceback.format_exception(type(err), err, err.__traceback__))]
    for name in ("body", "message"):
        value = getattr(err, name, None)
        if value:
            parts.append(str(value))
    return "\n".join(parts)


def _tracebacks(err: BaseException) -> Iterator[TracebackType]:
    seen: Set[int] = set()
    todo: List[Optional[BaseException]] = [err]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if e.__traceback__ is not None:
            yield e.__traceback__
        todo += [e.__cause__, e.__context__]


def traceback_locals_text(err: BaseException) -> str:
    """``repr`` of every local of every frame in ``err``'s traceback and its chained causes,
    as a traceback printer with locals (pytest ``--showlocals``, rich) would show them.

    Returns the text and the number of frames in its first line, so a caller can check
    the walk was not empty.
    """
    lines: List[str] = []
    frames = 0
    for tb in _tracebacks(err):
        node: Optional[TracebackType] = tb
        while node is not None:
            frames += 1
            code = node.tb_frame.f_code
            for name, value in node.tb_frame.f_locals.items():
                try:
                    shown = repr(value)
                except Exception as exc:  # a repr that fails shows nothing of the value
                    shown = f"<repr failed: {type(exc).__name__}>"
                lines.append(f"{code.co_filename}:{code.co_name} {name}={shown}")
            node = node.tb_next
    return f"{frames} frames\n" + "\n".join(lines)


class CaptureLogs(logging.Handler):
    """The text of every record at DEBUG and above on the root, ``urllib3`` and ``llm_sync`` loggers, while active.

    Each record is rendered when it is emitted and its ``args`` dropped: they can hold a
    live stream (sseclient logs its event source), and pytest's own log capture keeps
    the same record objects until the test's teardown is over.
    """

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: List[str] = []
        self._loggers = [logging.getLogger(), logging.getLogger("urllib3"), logging.getLogger("llm_sync")]
        self._saved: List[int] = []
        self._formatter = logging.Formatter("%(name)s %(message)s")

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self._formatter.format(record) + repr(record.args))
        record.msg = record.getMessage()
        record.args = None

    def __enter__(self) -> CaptureLogs:
        self._saved = [lg.level for lg in self._loggers]
        logging.getLogger().addHandler(self)
        for lg in self._loggers:
            lg.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().removeHandler(self)
        for lg, level in zip(self._loggers, self._saved):
            lg.setLevel(level)

    def text(self) -> str:
        return "\n".join(self.lines)
