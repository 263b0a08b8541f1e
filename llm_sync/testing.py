"""Fakes for users' own tests: ``FakeLlmProvider`` and the ``llm_response()`` builder.

``FakeLlmProvider`` runs the real stream engine (a reader thread, the queue, close,
timeouts) over scripted chunks, so code under test sees exactly what a provider
gives it, without a network.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from ._errors import LlmError
from ._response import (
    Done,
    LlmResponse,
    Reasoning,
    Start,
    StopReason,
    Text,
    ToolRequestArg,
    ToolRequestComplete,
    ToolRequestStart,
    Usage,
)
from ._stream import LlmResponseStream
from ._tools import ToolCallRequest
from .providers._base import StreamingModelProvider

if TYPE_CHECKING:
    from ._context import Context
    from ._engine import StreamState

__all__ = ["FakeLlmProvider", "LlmResponseBuilder", "llm_response"]

Scripted = Union[LlmResponse, LlmError]


class _Script:
    # Shared by a provider and its with_* copies, as the crate's Arc'd state is.
    def __init__(self, turns: Sequence[Sequence[Scripted]]) -> None:
        self.turns: List[Tuple[Scripted, ...]] = [tuple(t) for t in turns]
        self.lock = threading.Lock()
        self.calls = 0
        self.contexts: List[Context] = []
        self.pauses: Dict[int, Tuple[int, threading.Event]] = {}


class FakeLlmProvider(StreamingModelProvider):
    """A provider that answers each call with the next scripted turn.

    A turn is a list of chunks; an ``LlmError`` in it is raised at that point.
    Calls beyond the script answer ``[Done()]``. Every call records a snapshot of
    its context in :attr:`captured_contexts`. ``collect().parsed`` checks the scripted
    text against the context's output schema, as with a real provider.
    """

    def __init__(
        self,
        turns: Sequence[Sequence[Scripted]] = (),
        *,
        display_name: str = "Fake LLM",
        context_window: Optional[int] = None,
    ) -> None:
        self._script = _Script(turns)
        self._display_name = display_name
        self._context_window = context_window

    @classmethod
    def with_single_response(cls, chunks: Sequence[Scripted]) -> FakeLlmProvider:
        return cls([chunks])

    @classmethod
    def from_results(cls, turns: Sequence[Sequence[Scripted]]) -> FakeLlmProvider:
        """The crate's name for a script with errors in it; the same as the constructor."""
        return cls(turns)

    def with_display_name(self, name: str) -> FakeLlmProvider:
        return self._copy(display_name=name)

    def with_context_window(self, window: Optional[int]) -> FakeLlmProvider:
        return self._copy(context_window=window)

    def _copy(self, **changes: object) -> FakeLlmProvider:
        new = FakeLlmProvider.__new__(FakeLlmProvider)
        new.__dict__.update(self.__dict__)
        for k, v in changes.items():
            setattr(new, f"_{k}", v)
        return new

    def pause_turn_after(self, turn_index: int, chunk_index: int, event: threading.Event) -> FakeLlmProvider:
        """In turn ``turn_index``, wait for ``event`` after sending chunk ``chunk_index``."""
        with self._script.lock:
            self._script.pauses[turn_index] = (chunk_index, event)
        return self

    @property
    def captured_contexts(self) -> List[Context]:
        """Snapshots of the context of every call so far, oldest first."""
        with self._script.lock:
            return list(self._script.contexts)

    @property
    def call_count(self) -> int:
        return self._script.calls

    def display_name(self) -> str:
        return self._display_name

    def context_window(self) -> Optional[int]:
        return self._context_window

    def stream_response(self, context: Context) -> LlmResponseStream:
        script = self._script
        with script.lock:
            index = script.calls
            script.calls += 1
            script.contexts.append(context.copy())
            turn: Tuple[Scripted, ...] = (
                script.turns[index] if index < len(script.turns) else (Done(),)
            )
            pause = script.pauses.get(index)

        def source(state: StreamState) -> Iterator[LlmResponse]:
            for i, item in enumerate(turn):
                if isinstance(item, LlmError):
                    raise item
                yield item
                if pause is not None and pause[0] == i:
                    # Waits in slices so a close() of the stream ends the wait.
                    while not pause[1].wait(0.05):
                        if state.stopped:
                            return

        return LlmResponseStream(
            source, provider="fake", model=self._display_name, output_schema=context.output_schema
        )

    def __repr__(self) -> str:
        return f"FakeLlmProvider(turns={len(self._script.turns)}, display_name={self._display_name!r})"


class LlmResponseBuilder:
    """Builds one scripted turn: ``llm_response("m1").text("Hel", "lo").build()``."""

    def __init__(self, message_id: str) -> None:
        self._chunks: List[LlmResponse] = [Start(message_id)]

    def text(self, *chunks: Union[str, Iterable[str]]) -> LlmResponseBuilder:
        for c in _flatten(chunks):
            self._chunks.append(Text(c))
        return self

    def reasoning(self, *chunks: Union[str, Iterable[str]]) -> LlmResponseBuilder:
        for c in _flatten(chunks):
            self._chunks.append(Reasoning(c))
        return self

    def tool_call(self, id: str, name: str, arg_chunks: Iterable[str] = ()) -> LlmResponseBuilder:
        parts = list(arg_chunks)
        self._chunks.append(ToolRequestStart(id, name))
        self._chunks.extend(ToolRequestArg(id, p) for p in parts)
        self._chunks.append(ToolRequestComplete(ToolCallRequest(id, name, "".join(parts))))
        return self

    def tool_call_with_invalid_json(self, id: str, name: str) -> LlmResponseBuilder:
        self._chunks.append(ToolRequestStart(id, name))
        self._chunks.append(ToolRequestComplete(ToolCallRequest(id, name, "invalid json")))
        return self

    def usage(self, input_tokens: int, output_tokens: int, **more: Optional[int]) -> LlmResponseBuilder:
        self._chunks.append(Usage(input_tokens, output_tokens, **more))
        return self

    def build(self, stop_reason: Optional[StopReason] = None) -> List[LlmResponse]:
        """The chunks, with ``Done(stop_reason)`` appended."""
        return [*self._chunks, Done(stop_reason, stop_reason.value if stop_reason else None)]


def llm_response(message_id: str = "msg_fake") -> LlmResponseBuilder:
    """Start building a scripted turn that begins with ``Start(message_id)``."""
    return LlmResponseBuilder(message_id)


def _flatten(items: Iterable[Union[str, Iterable[str]]]) -> Iterator[str]:
    for item in items:
        if isinstance(item, str):
            yield item
        else:
            yield from item
