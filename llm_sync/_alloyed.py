"""``AlloyedModelProvider``: round-robin over several providers, one request each in turn."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Iterable, Iterator, Optional, Tuple

from ._stream import LlmResponseStream
from .providers._base import StreamingModelProvider

if TYPE_CHECKING:
    from ._context import Context
    from ._model import LlmModel
    from ._response import LlmResponse

__all__ = ["AlloyedModelProvider"]


def _no_chunks(_state: object) -> Iterator[LlmResponse]:
    return iter(())


class AlloyedModelProvider(StreamingModelProvider):
    """Sends each request to the next provider in turn (``"a:x,b:y"`` model strings).

    ``stream_response`` takes the provider at ``counter % n`` and advances the
    counter, atomically, so concurrent callers spread evenly. ``display_name`` and
    ``model`` read the counter without advancing it: they describe the provider
    that will serve the *next* request. ``context_window`` is the smallest of the
    providers' windows, and None if any of them is unknown. With no providers a
    request yields an empty stream (no chunks at all).
    """

    def __init__(self, providers: Iterable[StreamingModelProvider]) -> None:
        self._providers: Tuple[StreamingModelProvider, ...] = tuple(providers)
        for p in self._providers:
            if not isinstance(p, StreamingModelProvider):
                raise TypeError(
                    f"AlloyedModelProvider takes StreamingModelProvider objects, got {type(p).__name__}"
                )
        self._lock = threading.Lock()
        self._counter = 0

    @property
    def providers(self) -> Tuple[StreamingModelProvider, ...]:
        return self._providers

    def _next_index(self) -> int:
        with self._lock:
            i = self._counter
            self._counter += 1
        return i % len(self._providers)

    def _current(self) -> Optional[StreamingModelProvider]:
        if not self._providers:
            return None
        with self._lock:
            i = self._counter
        return self._providers[i % len(self._providers)]

    def stream_response(self, context: Context) -> LlmResponseStream:
        if not self._providers:
            # Like the crate: no chunks at all, not even Start/Done.
            return LlmResponseStream(_no_chunks, provider="alloyed", model="")
        return self._providers[self._next_index()].stream_response(context)

    def display_name(self) -> str:
        current = self._current()
        return "Alloyed (no providers)" if current is None else current.display_name()

    def model(self) -> Optional[LlmModel]:
        current = self._current()
        return None if current is None else current.model()

    def context_window(self) -> Optional[int]:
        if not self._providers:
            return None
        windows = [p.context_window() for p in self._providers]
        known = [w for w in windows if w is not None]
        return min(known) if len(known) == len(windows) else None

    def __repr__(self) -> str:
        inner = ", ".join(p.display_name() for p in self._providers)
        return f"AlloyedModelProvider([{inner}])"

    # The lock does not pickle; the counter restarts with the copy.
    def __getstate__(self) -> dict[str, object]:
        return {"_providers": self._providers}

    def __setstate__(self, state: dict[str, object]) -> None:
        self._providers = state["_providers"]  # type: ignore[assignment]
        self._lock = threading.Lock()
        self._counter = 0

