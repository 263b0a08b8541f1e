"""``FallbackProvider``: the next provider answers when one fails before its first content chunk."""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
from typing import TYPE_CHECKING, Any, Dict, Iterable, Iterator, List, Optional, Tuple

from ._errors import (
    AllProvidersFailedError,
    ContextOverflowError,
    LlmError,
    UnsupportedContentError,
)
from ._response import Start
from ._stream import CollectedResponse, LlmResponseStream
from .providers._base import HttpProvider, StreamingModelProvider

if TYPE_CHECKING:
    from ._context import Context
    from ._model import LlmModel
    from ._response import LlmResponse

__all__ = ["FallbackProvider"]

_NEVER = object()


class FallbackProvider(StreamingModelProvider):
    """Sends each request to the first provider that can answer it (``"a>b>c"`` model strings).

    ``FallbackProvider([p1, p2, ...], cooldown=5.0, max_retry_after=5.0)``. A request goes
    to ``p1``; it moves on to the next provider only **before the first content chunk**
    reached the caller, and only when the provider

    - failed with a retryable error (overloaded, rate limited, 5xx, a timeout, the
      network) after its own retries;
    - refused the prompt as too long (``ContextOverflowError``): then only providers
      whose context window is larger, or unknown, are tried;
    - cannot take the content (``UnsupportedContentError``, raised before sending).

    Any other error (a bad key, a bad request) is raised as it is, and so is every
    error after content began: starting over elsewhere would repeat what the caller
    already has. When every provider failed, :class:`AllProvidersFailedError` is
    raised; its ``errors`` hold each provider's error, in order, and its message names
    them.

    Cooldowns: a provider that failed with a retryable error is skipped, by every
    thread using this object, for the ``Retry-After`` it sent, or ``cooldown`` seconds
    when it sent none; while it cools down requests go straight to the next one, and
    nothing is sent to it. A provider's own retries do not wait out a ``Retry-After``
    longer than ``max_retry_after`` seconds (it would hold up the request while
    another provider could answer): the error ends its attempt at once and starts its
    cooldown (None keeps each provider's own :class:`~llm_sync.RetryPolicy`).

    The stream says which provider answered: ``stream.provider`` and ``stream.model``
    (they name the provider being tried until the answer begins). Its ``Start`` comes
    with the first content, so a caller never sees the ``Start`` of a provider that then
    failed. Configuration only: thread-safe and picklable (the cooldowns are not
    pickled: a copy starts with none).
    """

    def __init__(
        self,
        providers: Iterable[StreamingModelProvider],
        *,
        cooldown: float = 5.0,
        max_retry_after: Optional[float] = 5.0,
    ) -> None:
        found = tuple(providers)
        if not found:
            raise ValueError("FallbackProvider needs at least one provider")
        for p in found:
            if not isinstance(p, StreamingModelProvider):
                raise TypeError(f"FallbackProvider takes StreamingModelProvider objects, got {type(p).__name__}")
        if isinstance(cooldown, bool) or not isinstance(cooldown, (int, float)) or not 0 <= cooldown < float("inf"):
            raise ValueError(f"cooldown must be a number of seconds >= 0, got {cooldown!r}")
        if max_retry_after is not None and (
            isinstance(max_retry_after, bool) or not isinstance(max_retry_after, (int, float)) or max_retry_after < 0
        ):
            raise ValueError(f"max_retry_after must be a number of seconds >= 0 or None, got {max_retry_after!r}")
        self._providers = found
        self._cooldown = float(cooldown)
        self._max_retry_after = None if max_retry_after is None else float(max_retry_after)
        self._senders = tuple(_limited(p, self._max_retry_after) for p in found)
        self._lock = threading.Lock()
        # Per provider: when its cooldown ends (time.monotonic()), and the error that began it.
        self._until = [0.0] * len(found)
        self._why: List[Optional[LlmError]] = [None] * len(found)

    # -- configuration -------------------------------------------------------------

    @property
    def providers(self) -> Tuple[StreamingModelProvider, ...]:
        """The providers, in the order they are tried (as given)."""
        return self._providers

    @property
    def cooldown(self) -> float:
        return self._cooldown

    @property
    def max_retry_after(self) -> Optional[float]:
        return self._max_retry_after

    def with_providers(self, providers: Iterable[StreamingModelProvider]) -> FallbackProvider:
        """A new fallback over ``providers`` with this one's settings (and no cooldowns)."""
        return FallbackProvider(providers, cooldown=self._cooldown, max_retry_after=self._max_retry_after)

    def display_name(self) -> str:
        """The providers' names in order: ``"Anthropic (claude-sonnet-4-5) > OpenAI (gpt-5)"``."""
        return " > ".join(p.display_name() for p in self._providers)

    def model(self) -> Optional[LlmModel]:
        """The first (preferred) provider's model; the stream's ``provider``/``model`` say who answered."""
        return self._providers[0].model()

    def context_window(self) -> Optional[int]:
        """The largest window of the providers (a prompt too long for one goes to a larger one); None if one is unknown."""
        windows = [p.context_window() for p in self._providers]
        known = [w for w in windows if w is not None]
        return max(known) if len(known) == len(windows) else None

    def __repr__(self) -> str:
        return f"FallbackProvider([{', '.join(p.display_name() for p in self._providers)}])"

    def __getstate__(self) -> Dict[str, Any]:
        return {"providers": self._providers, "cooldown": self._cooldown, "max_retry_after": self._max_retry_after}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["providers"], cooldown=state["cooldown"], max_retry_after=state["max_retry_after"]
        )

    # -- streaming -----------------------------------------------------------------

    def stream_response(self, context: Context) -> LlmResponseStream:
        """Start the request on the first provider not cooling down; the stream moves on as described above."""
        return _FallbackStream(self, context.copy())

    def cooling(self, index: int) -> Optional[Tuple[float, LlmError]]:
        """``(seconds left, the error that began it)`` while provider ``index`` cools down, else None."""
        with self._lock:
            left = self._until[index] - time.monotonic()
            why = self._why[index]
        return (left, why) if left > 0 and why is not None else None

    def _cool(self, index: int, err: LlmError) -> None:
        seconds = _cooldown_of(err, self._cooldown)
        if seconds is None or seconds <= 0:
            return
        until = time.monotonic() + seconds
        with self._lock:
            if until > self._until[index]:
                self._until[index] = until
                self._why[index] = err


def _cooldown_of(err: LlmError, default: float) -> Optional[float]:
    """How long a provider that raised ``err`` is skipped; None: not at all (the error was about the request)."""
    if isinstance(err, (ContextOverflowError, UnsupportedContentError)) or not err.retryable:
        return None
    for name in ("retry_after", "resets_in_seconds"):
        wait = getattr(err, name, None)
        if isinstance(wait, (int, float)) and wait >= 0:
            return float(wait)
    return default


def _moves_on(err: LlmError) -> bool:
    return err.retryable or isinstance(err, (ContextOverflowError, UnsupportedContentError))


def _limited(provider: StreamingModelProvider, max_retry_after: Optional[float]) -> StreamingModelProvider:
    """``provider``, or a copy whose retries give up on a ``Retry-After`` longer than ``max_retry_after``."""
    if max_retry_after is None or not isinstance(provider, HttpProvider):
        return provider
    policy = provider.retry_policy
    if policy.max_retry_after <= max_retry_after:
        return provider
    # The same policy object kind (the CLI's announces its waits), with the lower cap.
    return provider._replace(_retry=dataclasses.replace(policy, max_retry_after=max_retry_after))


def _identity(provider: StreamingModelProvider) -> Tuple[Optional[str], Optional[str]]:
    pid, name = getattr(provider, "provider_id", None), getattr(provider, "model_name", None)
    if isinstance(pid, str) and pid and isinstance(name, str):
        return pid, name
    found = provider.model()
    return (found.provider, found.model_id) if found is not None else (None, None)


class _Overflow:
    """What the context overflows seen so far say about the windows still worth trying."""

    __slots__ = ("window", "requested")

    def __init__(self) -> None:
        self.window: Optional[int] = None  # the largest window found too small
        self.requested: Optional[int] = None  # the most tokens a provider said the prompt needs

    def add(self, err: ContextOverflowError, window: Optional[int]) -> None:
        w = err.max_tokens if err.max_tokens is not None else window
        if w is not None:
            self.window = w if self.window is None else max(self.window, w)
        if err.requested_tokens is not None:
            self.requested = max(self.requested or 0, err.requested_tokens)

    def too_small(self, window: Optional[int]) -> bool:
        if window is None:
            return False  # unknown: it may be larger
        if self.window is not None and window <= self.window:
            return True
        return self.requested is not None and window < self.requested


class _FallbackStream(LlmResponseStream):
    """The stream of a :class:`FallbackProvider`: one provider's stream at a time, switched before content.

    It has no reader thread of its own (``LlmResponseStream.__init__`` is not called):
    each attempt is the provider's own stream, and iterating hands over to it once
    content began, so a chunk costs what it costs on that stream.
    """

    __slots__ = ("_owner", "_context", "_next", "_inner", "_held", "_pending", "_direct", "_errors",
                 "_overflow", "_failure", "_lock")

    def __init__(self, owner: FallbackProvider, context: Context) -> None:
        # Not LlmResponseStream.__init__: no queue and no thread here (see the class docstring).
        self._owner = owner
        self._context = context
        self._lock = threading.Lock()
        self._closed = False
        self._ended = False
        self._next = 0  # the index of the next provider to consider
        self._inner: Optional[LlmResponseStream] = None
        self._held: Optional[LlmResponse] = None  # the current provider's Start, until content
        self._pending: Optional[LlmResponse] = None  # the first content, after the held Start
        self._direct = False  # content began: every chunk comes straight from the inner stream
        self._errors: List[LlmError] = []
        self._overflow = _Overflow()
        self._failure: Optional[LlmError] = None
        # The provider being tried (set by _open_next); "fallback" when none could be.
        self.provider = "fallback"
        self.model = ""
        self._open_next()

    # -- choosing a provider ---------------------------------------------------------

    def _open_next(self) -> None:
        """Start the next provider worth trying, or set the final error when none is left."""
        owner = self._owner
        providers = owner.providers
        while self._next < len(providers):
            i = self._next
            self._next += 1
            provider = providers[i]
            cooling = owner.cooling(i)
            if cooling is not None:
                left, why = cooling
                self._errors.append(_not_tried(why, provider, left))
                continue
            window = provider.context_window()
            if window is not None and self._overflow.too_small(window):
                self._errors.append(self._too_small(provider, window))
                continue
            try:
                stream = owner._senders[i].stream_response(self._context)
            except LlmError as err:
                self._record(i, err)
                continue
            with self._lock:
                closed = self._closed
                if not closed:
                    self._inner = stream
            if closed:
                stream.close()  # closed meanwhile from another thread: nothing may outlive it
                return
            self.provider, self.model = stream.provider, stream.model
            return
        self._inner = None
        self._failure = self._all_failed()

    def _record(self, index: int, err: LlmError) -> None:
        # Kept without its traceback: its frames hold this stream, and the provider keeps
        # the error for the cooldown, so the stream, its provider and their connections
        # would wait for the garbage collector.
        err = err.with_traceback(None)
        self._errors.append(err)
        if isinstance(err, ContextOverflowError):
            self._overflow.add(err, self._owner.providers[index].context_window())
        self._owner._cool(index, err)

    def _too_small(self, provider: StreamingModelProvider, window: int) -> ContextOverflowError:
        over = self._overflow
        pid, model = _identity(provider)
        need = f"{over.requested} tokens" if over.requested is not None else f"more than {over.window} tokens"
        return ContextOverflowError(
            f"not tried: its context window ({window} tokens) is too small for this prompt ({need})",
            requested_tokens=over.requested,
            max_tokens=window,
            provider=pid,
            model=model,
        )

    def _all_failed(self) -> AllProvidersFailedError:
        owner = self._owner
        lines = []
        for n, (provider, err) in enumerate(zip(owner.providers, self._errors), 1):
            status = f" (HTTP {err.status})" if err.status is not None else ""
            lines.append(f"{n}. {provider.display_name()}: {type(err).__name__}{status}: {err.message}")
        waits = [c[0] for c in (owner.cooling(i) for i in range(len(owner.providers))) if c is not None]
        return AllProvidersFailedError(
            f"every provider failed before answering: {'; '.join(lines)} (each error is in .errors)",
            errors=self._errors,
            retry_after=min(waits) if waits else None,
        )

    # -- iteration -------------------------------------------------------------------

    def __iter__(self) -> Iterator[LlmResponse]:
        return _iterate(self)

    def __next__(self) -> LlmResponse:
        if self._direct:
            return self._inner.__next__()  # type: ignore[union-attr]
        return self._before_content()

    def _before_content(self) -> LlmResponse:
        """The next chunk while no content reached the caller: a failure here moves on."""
        while True:
            if self._ended:
                raise StopIteration
            pending = self._pending
            if pending is not None:
                self._pending = None
                self._direct = True
                return pending
            inner = self._inner
            if inner is None:
                self._ended = True
                failure, self._failure = self._failure, None
                if failure is not None:
                    try:
                        raise failure
                    finally:
                        failure = None  # not left in this frame, which its traceback holds
                raise StopIteration
            try:
                chunk = inner.__next__()
            except StopIteration:
                # Closed (by close(), from any thread), or a stream that ends with no
                # chunk: nothing to fail over from.
                self._direct = True
                held, self._held = self._held, None
                if held is not None and not self._closed:
                    return held
                raise
            except LlmError as err:
                if self._closed or not _moves_on(err):
                    self._ended = True
                    self.close()
                    raise
                inner.close()
                self._held = None  # that provider's Start: the caller never sees it
                self._record(self._next - 1, err)
                self._open_next()
                continue
            except BaseException:
                self.close()
                raise
            if chunk.__class__ is Start:
                # Held until content: a provider that fails before it must not leave the
                # caller with its Start and then another provider's.
                self._held = chunk
                continue
            held, self._held = self._held, None
            if held is not None:
                self._pending = chunk
                return held
            self._direct = True
            return chunk

    # -- lifetime --------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Close the current provider's stream (idempotent; safe from any thread, also while switching)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            inner = self._inner
        self._ended = True
        if inner is not None:
            inner.close()

    def partial(self) -> CollectedResponse:
        """What the answering provider's stream handed out so far (see :meth:`LlmResponseStream.partial`)."""
        inner = self._inner
        if inner is None:
            return CollectedResponse(
                message_id=None, text="", reasoning="", tool_calls=(), usage=None, stop_reason=None,
                raw_stop_reason=None, encrypted_reasoning=None, complete=False,
                provider=self.provider, model=self.model,
            )
        # A chunk taken from the provider's stream but not handed on yet (its held Start,
        # or the first content behind it) is not in it.
        return inner._partial(1 if self._pending is not None or self._held is not None else 0)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<LlmResponseStream fallback {self.provider}:{self.model} {state}>"


def _iterate(stream: _FallbackStream) -> Iterator[LlmResponse]:
    # Until content the fallback's own __next__ (it may switch providers); then the
    # answering stream's __next__ directly: no extra frame per chunk after the first.
    try:
        while not stream._direct:
            try:
                chunk = stream._before_content()
            except StopIteration:
                return
            yield chunk
        inner = stream._inner
        if inner is not None:
            yield from iter(inner.__next__, _NEVER)
    finally:
        stream.close()


def _not_tried(why: LlmError, provider: StreamingModelProvider, left: float) -> LlmError:
    """A copy of the error that began a provider's cooldown (no traceback), saying it was not tried."""
    note = copy.copy(why)
    note.message = f"not tried: cooling down for {left:.1f} s more after: {why.message}"
    note.args = (note.message,)
    if hasattr(note, "retry_after"):
        note.retry_after = left
    if note.provider is None:
        note.provider, note.model = _identity(provider)
    return note

