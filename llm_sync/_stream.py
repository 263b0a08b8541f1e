"""What the caller holds: ``LlmResponseStream`` (iterate, close, collect) and ``CollectedResponse``."""

from __future__ import annotations

import contextvars
import threading
import time
import weakref
from queue import Empty
from typing import TYPE_CHECKING, Any, Iterable, Iterator, List, Mapping, Optional, Tuple

from . import _observe
from ._engine import CLOSED, End, Source, StreamState, size_of, spawn_reader, stop
from ._errors import LlmError, RequestTimeoutError, stamp
from ._messages import AssistantReasoning, ChatMessage, EncryptedReasoningContent
from ._reported import Reported, install
from ._response import (
    Done,
    EncryptedReasoning,
    LlmResponse,
    Reasoning,
    Start,
    StopReason,
    Text,
    ToolRequestComplete,
    Usage,
)
from ._response import reasoning as _reasoning
from ._response import text as _text
from ._structured import OutputSchema, parse_reply
from ._timeouts import Timeouts
from ._tools import ToolCallRequest

if TYPE_CHECKING:
    from types import TracebackType

    from ._observe import Observer, StreamInfo

__all__ = ["CollectedResponse", "LlmResponseStream"]

# The consumer never blocks longer than this in one wait, so Ctrl-C and deadlines
# are noticed promptly even where a signal does not interrupt a lock wait.
_SLICE = 0.25
# How long close() waits for the reader after shutting its socket down. The reader
# normally leaves within a millisecond; close() must return within 100 ms regardless.
_JOIN = 0.04
_NEVER = object()
# Held only to mark a stream finished: the consumer and a closing thread may race to it.
_FINISHING = threading.Lock()


class LlmResponseStream:
    """A blocking iterator of ``LlmResponse`` chunks fed by one reader thread.

    Iterate it (``for chunk in stream``), use it as a context manager, or call
    :meth:`collect`. :meth:`close` is idempotent and safe from any thread; a
    ``break`` out of a ``for`` loop, an error, Ctrl-C and garbage collection close it
    too. Failures are raised from iteration as :class:`LlmError` subclasses.
    :meth:`partial` gives what arrived so far, at any time.
    """

    __slots__ = (
        "_state",
        "_thread",
        "_finalizer",
        "_closed",
        "_ended",
        "_got_any",
        "_saw_done",
        "_first_deadline",
        "_idle",
        "_total_deadline",
        "_timeouts",
        "_slice",
        "_seen",
        "_reported",
        "_started",
        "_finished",
        "_observer",
        "provider",
        "model",
        "output_schema",
        "__weakref__",
    )

    def __init__(
        self,
        source: Optional[Source],
        *,
        provider: str,
        model: str,
        timeouts: Optional[Timeouts] = None,
        error: Optional[LlmError] = None,
        output_schema: Optional[OutputSchema] = None,
        info: Optional[StreamInfo] = None,
    ) -> None:
        self.provider = provider
        self.model = model
        #: The schema ``collect().parsed`` checks the reply against (the request's).
        self.output_schema = output_schema
        t = timeouts if timeouts is not None else Timeouts()
        self._timeouts = t
        now = self._started = time.monotonic()
        self._first_deadline = now + t.first_event if t.first_event is not None else None
        self._total_deadline = now + t.total if t.total is not None else None
        self._idle = t.idle
        self._slice = min([_SLICE, *(x for x in (t.first_event, t.idle, t.total) if x is not None)])
        self._closed = False
        self._ended = False
        self._got_any = False
        self._saw_done = False
        # Every chunk handed to the caller, as it waited in the queue: what partial()
        # and collect() are made of (one append per chunk, no other per-chunk work).
        self._seen: List[Any] = []
        # Where the turn being read leaves the usage reported so far (partial()).
        self._reported = Reported()
        self._finished = False
        state = self._state = StreamState(f"{provider}:{model}")
        self._thread: Optional[threading.Thread] = None
        # Instrumentation (llm_sync.otel) watches the streams started while it is on;
        # otherwise there is no observer and nothing is done per chunk for one.
        watcher = _observe.watcher()
        observer = self._observer = (
            None if watcher is None else watcher(info if info is not None else _observe.StreamInfo(provider, model))
        )
        self._finalizer = weakref.finalize(self, _release, state, observer)
        # An error found before anything was sent (a bad request) is raised on first
        # iteration, like every other failure, and no thread is started for it.
        if error is not None:
            state.queue.put(End(error))
        elif source is not None:
            context = contextvars.copy_context()
            if observer is not None:
                state.observer = observer
                _observe.guarded(context.run, observer.enter)
            self._thread = spawn_reader(state, _reporting(source, self._reported), provider, context)

    def __new__(cls, *args: Any, **kwargs: Any) -> LlmResponseStream:
        # While instrumentation is on, streams are made as _ObservedStream, whose
        # __next__ notes the first chunk; the plain class never pays for that check.
        if cls is LlmResponseStream and _observe.watcher() is not None:
            observed = object.__new__(_ObservedStream)
            observed._before_first = True
            return observed
        return object.__new__(cls)

    # -- iteration ---------------------------------------------------------------

    def __iter__(self) -> Iterator[LlmResponse]:
        return _iterate(self)

    def __next__(self) -> LlmResponse:
        if self._ended:
            raise StopIteration
        state = self._state
        try:
            try:
                item = state.queue.get(True, self._slice)
            except Empty:
                item = self._wait()
            if self._total_deadline is not None and time.monotonic() > self._total_deadline:
                item = self._expired("total")
        except KeyboardInterrupt:
            # Ctrl-C in a script or notebook: nobody will read the rest.
            self.close()
            raise
        cls = item.__class__
        # Text and Reasoning wait in the queue as plain strings (see _engine); what
        # is taken is counted against the queue's bound (StreamState.taken).
        if cls is str:
            state.taken += len(item)
            if state.parked:
                state.unpark()
            self._got_any = True
            self._seen.append(item)
            return _text(item)
        if cls is End:
            return self._end(item)
        self._got_any = True
        self._seen.append(item)
        if cls is tuple:
            state.taken += len(item[0])
            chunk: LlmResponse = _reasoning(item[0])
        else:
            state.taken += size_of(item)
            chunk = item
            if cls is Done:
                self._ended = self._saw_done = True
                self._finish(None)
        if state.parked:
            state.unpark()
        return chunk

    def _wait(self) -> Any:
        """The slow path: nothing queued yet; wait in slices, watching the deadlines."""
        started = time.monotonic() - self._slice
        q = self._state.queue
        while True:
            now = time.monotonic()
            if self._got_any:
                phase, deadline = "idle", started + self._idle if self._idle is not None else None
            else:
                phase, deadline = "first_event", self._first_deadline
            if self._total_deadline is not None and (deadline is None or self._total_deadline < deadline):
                phase, deadline = "total", self._total_deadline
            if deadline is not None and now >= deadline:
                return self._expired(phase)
            wait = _SLICE if deadline is None else min(_SLICE, deadline - now)
            try:
                return q.get(True, wait)
            except Empty:
                continue

    def _expired(self, phase: str) -> End:
        seconds = {
            "first_event": self._timeouts.first_event,
            "idle": self._timeouts.idle,
            "total": self._timeouts.total,
        }[phase]
        what = {
            "first_event": f"no event arrived within {seconds} s of the request",
            "idle": f"no event arrived for {seconds} s after the last one",
            "total": f"the stream ran past its total deadline of {seconds} s",
        }[phase]
        return End(
            RequestTimeoutError(
                f"{what}; pass timeout=Timeouts({phase}=...) with more seconds if the model "
                "is slow (keep-alive pings do not count as events)",
                phase=phase,
            )
        )

    def _end(self, item: End) -> LlmResponse:
        self._ended = True
        error = item.error
        if item is CLOSED:
            error = None  # close() from another thread: finished there, as cancelled
        elif isinstance(error, LlmError):
            stamp(error, self.provider, self.model)
        self._finish(error, cancelled=isinstance(error, KeyboardInterrupt))
        self.close()
        if error is None:
            raise StopIteration
        raise error

    def _finish(self, error: Optional[BaseException], cancelled: bool = False) -> None:
        """Once per stream, on Done, on the error, or on a close before either: log it, tell the observer."""
        with _FINISHING:
            if self._finished:
                return
            self._finished = True
        if isinstance(error, KeyboardInterrupt):
            error = None
        _observe.ended(self._state.label, time.monotonic() - self._started, self._seen, error, cancelled)
        observer = self._observer
        if observer is not None:
            _observe.guarded(observer.end, self._seen, error, cancelled)

    # -- lifetime ----------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once the stream was closed (by the caller, an error, or the end)."""
        return self._closed

    def close(self) -> None:
        """Stop the stream and release its connection. Idempotent; safe from any thread.

        Returns within about 50 ms even while the reader is blocked on a silent
        server: the socket is shut down, which wakes the reader, and the reader
        leaves on its own.
        """
        if self._closed:
            return
        self._closed = True
        self._ended = True
        self._finish(None, cancelled=True)
        thread = self._thread
        if thread is not None and self._saw_done:
            # The body is usually fully read a moment after Done; let the reader
            # finish so its connection goes back to the pool instead of being cut.
            thread.join(_JOIN)
        self._finalizer()
        if thread is not None and thread is not threading.current_thread():
            thread.join(_JOIN)

    def __enter__(self) -> LlmResponseStream:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<LlmResponseStream {self.provider}:{self.model} {state}>"

    # -- collect -----------------------------------------------------------------

    def collect(self) -> CollectedResponse:
        """Read the stream to its end and return everything it said.

        On an error, the error is raised with ``.partial`` set to what arrived
        (a ``CollectedResponse`` with ``complete=False``).
        """
        try:
            for _ in self:
                pass
        except LlmError as err:
            err.partial = self.partial()  # type: ignore[attr-defined]
            raise
        return self.partial()

    def partial(self) -> CollectedResponse:
        """What the stream has handed out so far, joined; call it at any time from the consumer's thread.

        While iterating, after ``close()`` (a cancel), after an error or after the end:
        ``complete`` is True only once ``Done`` arrived. Tool calls still streaming are
        not in it (only completed ones), nor is reasoning whose signature never came
        (encrypted reasoning arrives at the end of a turn). ``usage`` of a turn that did
        not finish is what the provider reported so far, else None: Anthropic reports
        the prompt's tokens when the message starts, Gemini running totals on its
        chunks, the Responses API, chat completions, Bedrock and Ollama only at the end.
        Its :meth:`CollectedResponse.to_message` is safe to send back to the same model.
        """
        return self._partial(0)

    def _partial(self, unseen: int) -> CollectedResponse:
        """:meth:`partial` without the last ``unseen`` chunks taken (a wrapper holding them has not handed them on)."""
        seen = list(self._seen)
        if unseen:
            del seen[max(0, len(seen) - unseen) :]
        acc = _Collector(self.provider, self.model, self.output_schema)
        text, reasoning, add = acc.text, acc.reasoning, acc.add
        for item in seen:
            cls = item.__class__
            if cls is str:
                text.append(item)
            elif cls is tuple:
                reasoning.append(item[0])
            else:
                add(item)
        complete = acc.done is not None
        if acc.usage is None and not complete:
            acc.usage = self._reported.usage()
        return acc.result(complete=complete)


def _reporting(source: Source, box: Reported) -> Source:
    # The turns the source parses on the reader thread report their usage into box.
    def run(state: StreamState) -> Iterable[LlmResponse]:
        install(box)
        return source(state)

    return run


class _ObservedStream(LlmResponseStream):
    """A stream started while instrumentation was on: it also tells its observer of the first chunk."""

    __slots__ = ("_before_first",)
    _before_first: bool

    def __next__(self) -> LlmResponse:
        chunk = LlmResponseStream.__next__(self)
        if self._before_first and chunk.__class__ not in _NOT_CONTENT:
            self._before_first = False
            observer = self._observer
            if observer is not None:
                _observe.guarded(observer.first_chunk)
        return chunk


_NOT_CONTENT = (Start, Usage, Done)


def _release(state: StreamState, observer: Optional[Observer]) -> None:
    """The finalizer: stop the reader; and if the stream was dropped unclosed, end its observation."""
    stop(state)
    if observer is not None:
        _observe.guarded(observer.end, (), None, True)


def _iterate(stream: LlmResponseStream) -> Iterator[LlmResponse]:
    # A generator, so a `break` out of a for loop (which closes the generator)
    # closes the stream at once rather than at garbage collection.
    try:
        yield from iter(stream.__next__, _NEVER)
    finally:
        stream.close()


class CollectedResponse:
    """Everything one stream said, joined: text, reasoning, tool calls, usage, stop reason.

    :attr:`parsed` reads the text as JSON, checked against the request's output schema.
    """

    __slots__ = (
        "message_id",
        "text",
        "reasoning",
        "tool_calls",
        "usage",
        "stop_reason",
        "raw_stop_reason",
        "encrypted_reasoning",
        "complete",
        "provider",
        "model",
        "output_schema",
        "_parsed",
    )

    def __init__(
        self,
        *,
        message_id: Optional[str],
        text: str,
        reasoning: str,
        tool_calls: Tuple[ToolCallRequest, ...],
        usage: Optional[Usage],
        stop_reason: Optional[StopReason],
        raw_stop_reason: Optional[str],
        encrypted_reasoning: Optional[EncryptedReasoning],
        complete: bool,
        provider: str,
        model: str,
        output_schema: Optional[OutputSchema] = None,
    ) -> None:
        self.message_id = message_id
        self.text = text
        self.reasoning = reasoning
        self.tool_calls = tool_calls
        self.usage = usage
        self.stop_reason = stop_reason
        self.raw_stop_reason = raw_stop_reason
        self.encrypted_reasoning = encrypted_reasoning
        self.complete = complete
        self.provider = provider
        self.model = model
        self.output_schema = output_schema
        self._parsed: Any = _NEVER

    @property
    def parsed(self) -> Any:
        """The reply's JSON value, validated against the request's output schema (read once, then kept).

        Raises ``StructuredOutputError`` with ``.reason``: ``"refused"`` (a
        ``CONTENT_FILTER`` stop), ``"truncated"`` (a ``LENGTH`` stop before the JSON
        closed, or an incomplete response), ``"invalid_json"`` or ``"schema_mismatch"``
        (``.path`` is the JSON Pointer of the first failing place). Without an output schema it is the text
        parsed as JSON, unchecked, with the same errors but the last.
        """
        found = self._parsed
        if found is _NEVER:
            try:
                found = parse_reply(
                    self.text, stop_reason=self.stop_reason, complete=self.complete, schema=self.output_schema
                )
            except LlmError as err:
                raise stamp(err, self.provider, self.model) from None
            self._parsed = found
        return found

    def to_message(self) -> ChatMessage:
        """The turn as a ``ChatMessage.Assistant``, ready to append to the context.

        A turn that did not finish (``complete`` False: cancelled, or broken off) gives
        only what is safe to send back to the provider, which refuses the rest on the
        next request:

        - its text, as far as it came;
        - no tool calls: nobody will send their results, and a call without its result
          is refused (they stay in :attr:`tool_calls`; calls still streaming never are);
        - reasoning only with its signature: thinking whose signature or encrypted item
          did not arrive is left out (Anthropic and Bedrock refuse unsigned thinking; the
          reasoning text of a cut turn is not replayed either), and so is signed
          reasoning of a turn whose calls are left out. It stays in :attr:`reasoning`.
        """
        enc = self.encrypted_reasoning
        summary = self.reasoning or None
        calls = list(self.tool_calls)
        if not self.complete:
            if calls:
                enc = None
            if enc is None:
                summary = None
            calls = []
        encrypted = None
        if enc is not None:
            encrypted = EncryptedReasoningContent(
                id=enc.id, model=f"{self.provider}:{self.model}", content=enc.content
            )
        reasoning = AssistantReasoning(summary_text=summary, encrypted_content=encrypted)
        return ChatMessage.Assistant(content=self.text, reasoning=reasoning, tool_calls=calls)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (every field; ``usage`` and ``encrypted_reasoning`` as dicts or None)."""
        usage = self.usage
        enc = self.encrypted_reasoning
        return {
            "message_id": self.message_id,
            "text": self.text,
            "reasoning": self.reasoning,
            "tool_calls": [c.to_dict() for c in self.tool_calls],
            "usage": None if usage is None else {k: v for k, v in usage.to_dict().items() if k != "type"},
            "stop_reason": None if self.stop_reason is None else self.stop_reason.value,
            "raw_stop_reason": self.raw_stop_reason,
            "encrypted_reasoning": None if enc is None else {"id": enc.id, "content": enc.content},
            "complete": self.complete,
            "provider": self.provider,
            "model": self.model,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CollectedResponse:
        """Inverse of :meth:`to_dict`; absent keys take their empty values."""
        usage = data.get("usage")
        enc = data.get("encrypted_reasoning")
        stop = data.get("stop_reason")
        return cls(
            message_id=data.get("message_id"),
            text=data.get("text") or "",
            reasoning=data.get("reasoning") or "",
            tool_calls=tuple(ToolCallRequest.from_dict(c) for c in data.get("tool_calls") or ()),
            usage=None if usage is None else Usage(**{k: v for k, v in usage.items() if k != "type"}),
            stop_reason=None if stop is None else StopReason(stop),
            raw_stop_reason=data.get("raw_stop_reason"),
            encrypted_reasoning=None if enc is None else EncryptedReasoning(enc["id"], enc["content"]),
            complete=bool(data.get("complete", True)),
            provider=data.get("provider") or "",
            model=data.get("model") or "",
        )

    def __repr__(self) -> str:
        text = self.text if len(self.text) <= 60 else self.text[:57] + "..."
        return (
            f"CollectedResponse(text={text!r}, tool_calls={len(self.tool_calls)}, "
            f"stop_reason={self.stop_reason!s}, complete={self.complete})"
        )


class _Collector:
    def __init__(self, provider: str, model: str, output_schema: Optional[OutputSchema] = None) -> None:
        self.provider = provider
        self.model = model
        self.output_schema = output_schema
        self.message_id: Optional[str] = None
        self.text: List[str] = []
        self.reasoning: List[str] = []
        self.tool_calls: List[ToolCallRequest] = []
        self.usage: Optional[Usage] = None
        self.done: Optional[Done] = None
        self.encrypted: Optional[EncryptedReasoning] = None

    def add(self, chunk: LlmResponse) -> None:
        cls = chunk.__class__
        if cls is Text:
            self.text.append(chunk.chunk)  # type: ignore[attr-defined]
        elif cls is Reasoning:
            self.reasoning.append(chunk.chunk)  # type: ignore[attr-defined]
        elif cls is ToolRequestComplete:
            self.tool_calls.append(chunk.tool_call)  # type: ignore[attr-defined]
        elif cls is Usage:
            self.usage = chunk  # type: ignore[assignment]
        elif cls is Done:
            self.done = chunk  # type: ignore[assignment]
        elif cls is Start:
            self.message_id = chunk.message_id  # type: ignore[attr-defined]
        elif cls is EncryptedReasoning:
            self.encrypted = chunk  # type: ignore[assignment]

    def result(self, *, complete: bool) -> CollectedResponse:
        return CollectedResponse(
            message_id=self.message_id,
            text="".join(self.text),
            reasoning="".join(self.reasoning),
            tool_calls=tuple(self.tool_calls),
            usage=self.usage,
            stop_reason=self.done.stop_reason if self.done is not None else None,
            raw_stop_reason=self.done.raw_stop_reason if self.done is not None else None,
            encrypted_reasoning=self.encrypted,
            complete=complete,
            provider=self.provider,
            model=self.model,
            output_schema=self.output_schema,
        )
