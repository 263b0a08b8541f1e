"""Starting gates: many threads released at once, each waiting on a lock of its own."""

from __future__ import annotations

import threading
from typing import List


class Gates:
    """One closed lock per thread; ``open_all`` releases them in order.

    A ``threading.Barrier`` (or an ``Event``) lets its waiters out one at a time:
    each must take the barrier's lock again, and so also the GIL, behind the streams
    already running; at 1,024 threads the last left seconds after the first, so the
    streams of a column ran staggered, some columns far more than others. A waiter
    here needs only the GIL.
    """

    def __init__(self, n: int) -> None:
        self._locks: List[threading.Lock] = []
        for _ in range(n):
            lock = threading.Lock()
            lock.acquire()
            self._locks.append(lock)

    def wait(self, i: int) -> None:
        """Block thread ``i`` until ``open_all``."""
        self._locks[i].acquire()

    def open_all(self) -> None:
        for lock in self._locks:
            lock.release()
