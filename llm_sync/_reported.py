"""The usage a provider reported so far in the turn a reader thread is reading, for ``stream.partial()``."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Callable, Optional

if TYPE_CHECKING:
    from ._response import Usage

__all__ = ["Reported", "current", "install"]

_local = threading.local()


class Reported:
    """Filled in by the turn a stream's reader thread parses, read by the stream's ``partial()``.

    The turn registers how to read its usage so far (one assignment per turn, none per
    chunk); ``partial()`` of an unfinished turn asks it. Providers report their usage at
    different moments (Anthropic when the message starts, Gemini on its chunks, the
    others at the end), so this is what the provider said so far, or None.
    """

    __slots__ = ("so_far",)

    def __init__(self) -> None:
        self.so_far: Optional[Callable[[], Optional[Usage]]] = None

    def usage(self) -> Optional[Usage]:
        """The usage reported so far; None when the provider reported none (yet)."""
        read = self.so_far
        if read is None:
            return None
        try:
            return read()
        except Exception:
            # Read from another thread while the reader updates it: a report half
            # written is no report, and partial() must never fail because of it.
            return None


def install(box: Reported) -> None:
    """Make ``box`` the place where turns parsed on the calling (reader) thread report."""
    _local.box = box


def current() -> Optional[Reported]:
    """The box installed on the calling thread, if any."""
    return getattr(_local, "box", None)
