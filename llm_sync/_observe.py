"""What streams tell the outside: standard ``logging`` records, and the observer seam instrumentation plugs into."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Sequence, Set, Tuple

from ._response import Done, Usage

if TYPE_CHECKING:
    from ._context import Context
    from ._engine import StreamState

__all__ = [
    "ROOT",
    "Observer",
    "StreamInfo",
    "ended",
    "guarded",
    "last_usage",
    "logger",
    "request_sent",
    "retrying",
    "safe_url",
    "set_watcher",
    "watcher",
]

#: The package logger; each provider logs under ``llm_sync.providers.<provider id>``.
ROOT = "llm_sync"

# As requests does: an application that configures no logging never sees Python's
# last-resort output from us.
logging.getLogger(ROOT).addHandler(logging.NullHandler())

_loggers: Dict[str, logging.Logger] = {}


def logger(label: str) -> logging.Logger:
    """The logger of the provider in ``label`` (``"provider:model"``): ``llm_sync.providers.<provider>``."""
    provider = label.partition(":")[0] or "unknown"
    found = _loggers.get(provider)
    if found is None:
        # getLogger is itself thread-safe and returns one logger per name: a race only
        # stores the same object twice.
        found = _loggers[provider] = logging.getLogger(f"{ROOT}.providers.{provider}")
    return found


# Query parameters whose values are kept in logged URLs; every other value is masked,
# since some APIs take the key as a query parameter (Gemini's ?key=).
_PLAIN_PARAMS = frozenset({"alt", "api-version", "beta", "stream"})


def safe_url(url: str) -> str:
    """``url`` fit for a log: no user info, query values masked except a few harmless ones, known secrets masked."""
    from ._redact import redact

    base, _, query = url.partition("?")
    scheme, sep, rest = base.partition("://")
    if sep:
        host, slash, path = rest.partition("/")
        host = host.rpartition("@")[2]
        base = f"{scheme}://{host}{slash}{path}"
    if query:
        parts = []
        for item in query.split("&"):
            name, eq, _ = item.partition("=")
            parts.append(item if not eq or name.lower() in _PLAIN_PARAMS else f"{name}=***")
        base = f"{base}?{'&'.join(parts)}"
    return redact(base)


class StreamInfo:
    """What an observer learns about a stream when it starts (on the caller's thread).

    ``genai_provider`` and ``operation`` are the OpenTelemetry GenAI names (a
    provider class's ``genai_provider_name`` and ``genai_operation``); ``api`` the
    wire dialect (``"chat_completions"``, ``"responses"``, ...) when known.
    ``context`` is the request's snapshot, read only when content capture is on.
    """

    __slots__ = ("provider", "model", "url", "genai_provider", "operation", "api", "max_tokens", "temperature", "context")

    def __init__(
        self,
        provider: str,
        model: str,
        *,
        url: Optional[str] = None,
        genai_provider: Optional[str] = None,
        operation: str = "chat",
        api: Optional[str] = None,
        max_tokens: Optional[int] = None,
        temperature: Optional[float] = None,
        context: Optional[Context] = None,
    ) -> None:
        self.provider = provider
        self.model = model
        self.url = url
        self.genai_provider = genai_provider or provider
        self.operation = operation
        self.api = api
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.context = context


class Observer:
    """Watches one stream. A watcher makes one per stream; every method is optional.

    Called from different threads: :meth:`enter` and :meth:`retry` on the reader
    thread, :meth:`first_chunk` on the consumer's, :meth:`end` on whichever thread
    finished the stream (the consumer's, or the one that called ``close()``), and
    once more with ``cancelled=True`` if the stream is garbage collected unclosed;
    an observer ignores calls after its first ``end``. An exception from an
    observer is logged and never reaches the stream's caller.
    """

    def enter(self) -> None:
        """Run in the reader thread's copy of the caller's context before the thread starts."""

    def retry(self, error: BaseException, wait: float, attempt: int) -> None:
        """The request failed before any content and is sent again after ``wait`` seconds (``attempt`` from 1)."""

    def first_chunk(self) -> None:
        """The first chunk of content (not ``Start``, ``Usage`` or ``Done``) reached the caller."""

    def end(self, seen: Sequence[Any], error: Optional[BaseException], cancelled: bool) -> None:
        """The stream finished: ``seen`` what it handed out (as queued), ``error`` what it raised."""


#: Makes the observer of each new stream; None (the default) costs nothing per chunk.
Watcher = Callable[[StreamInfo], Observer]
_watcher: Optional[Watcher] = None


def watcher() -> Optional[Watcher]:
    return _watcher


def set_watcher(new: Optional[Watcher]) -> Optional[Watcher]:
    """Install ``new`` as the watcher of every stream started from now on; returns the previous one."""
    global _watcher
    old, _watcher = _watcher, new
    return old


# -- the records ------------------------------------------------------------------------
#
# Every record carries ``llm_sync_event`` ("request", "retry", "end", "error",
# "cancelled"), ``llm_sync_provider`` and ``llm_sync_model`` in its ``extra``, plus the
# fields named below, so a handler can format or filter without parsing messages.
# No record holds prompt, answer, tool-argument or server error text, at any level.


def _extra(label: str, event: str, **fields: Any) -> Dict[str, Any]:
    provider, _, model = label.partition(":")
    fields.update(llm_sync_event=event, llm_sync_provider=provider, llm_sync_model=model)
    return fields


def request_sent(label: str, method: str, url: str, attempt: int) -> None:
    """DEBUG: a request (``attempt`` from 0) goes out to ``url``."""
    log = logger(label)
    if log.isEnabledFor(10):
        shown = safe_url(url)
        log.debug(
            "%s: %s %s%s", label, method, shown, f" (retry {attempt})" if attempt else "",
            extra=_extra(label, "request", llm_sync_url=shown, llm_sync_attempt=attempt),
        )


def describe(error: BaseException) -> str:
    """The type and HTTP status of ``error``: ``"ServerError (HTTP 503)"``; never its text."""
    status = getattr(error, "status", None)
    return f"{type(error).__name__}{f' (HTTP {status})' if status else ''}"


def retrying(state: StreamState, error: BaseException, wait: float, attempt: int, max_retries: int) -> None:
    """INFO, and the stream's observer: retry ``attempt`` (from 1) of ``max_retries`` after ``wait`` seconds."""
    label = state.label
    logger(label).info(
        "%s: %s; retrying in %.1f s (%d of %d)", label, describe(error), wait, attempt, max_retries,
        extra=_extra(
            label, "retry", llm_sync_error=type(error).__name__, llm_sync_status=getattr(error, "status", None),
            llm_sync_wait=wait, llm_sync_attempt=attempt, llm_sync_max_retries=max_retries,
        ),
    )
    observer = state.observer
    if observer is not None:
        guarded(observer.retry, error, wait, attempt)


def ended(label: str, duration: float, seen: Sequence[Any], error: Optional[BaseException], cancelled: bool) -> None:
    """DEBUG on a clean end (usage, stop reason, duration) or a cancel; WARNING on an error (its type only)."""
    log = logger(label)
    if error is not None:
        if log.isEnabledFor(30):
            log.warning(
                "%s: failed after %.2f s: %s", label, duration, describe(error),
                extra=_extra(
                    label, "error", llm_sync_error=type(error).__name__,
                    llm_sync_status=getattr(error, "status", None), llm_sync_duration=duration,
                ),
            )
        return
    if not log.isEnabledFor(10):
        return
    if cancelled:
        log.debug("%s: cancelled after %.2f s", label, duration,
                  extra=_extra(label, "cancelled", llm_sync_duration=duration))
        return
    usage, done = last_usage(seen)
    tokens = f"{usage.input_tokens} in, {usage.output_tokens} out" if usage is not None else "no usage reported"
    stop = done.stop_reason.value if done is not None and done.stop_reason is not None else None
    log.debug(
        "%s: done in %.2f s; %s; stop %s", label, duration, tokens, stop,
        extra=_extra(
            label, "end", llm_sync_duration=duration, llm_sync_stop_reason=stop,
            llm_sync_input_tokens=usage.input_tokens if usage is not None else None,
            llm_sync_output_tokens=usage.output_tokens if usage is not None else None,
        ),
    )


def last_usage(seen: Sequence[Any]) -> Tuple[Optional[Usage], Optional[Done]]:
    """The ``Usage`` and ``Done`` at the end of ``seen``, if there (a chunk or two read, not the list)."""
    usage = done = None
    for item in reversed(seen):
        cls = item.__class__
        if cls is Done and done is None:
            done = item
        elif cls is Usage:
            usage = item
            break
        else:
            break
    return usage, done


_failed_once: Set[str] = set()


def guarded(call: Callable[..., None], *args: Any) -> None:
    """Run an observer's method; an exception is logged (once per method) and swallowed."""
    try:
        call(*args)
    except Exception as exc:  # an observer must never break a stream
        name = getattr(call, "__qualname__", repr(call))
        if name not in _failed_once:
            _failed_once.add(name)
            logger("observer").warning("%s raised %s; the stream goes on", name, type(exc).__name__,
                                       extra={"llm_sync_event": "observer_error"})
