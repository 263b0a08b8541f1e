"""Many requests at once: ``run_many`` (shared back-off, AIMD concurrency, checkpoints, any executor) and ``BatchResult``."""

from __future__ import annotations

import contextvars
import heapq
import itertools
import os
import threading
import time
import weakref
from collections import deque
from queue import Empty, SimpleQueue
from typing import TYPE_CHECKING, Any, Deque, Dict, Iterable, List, NoReturn, Optional, Tuple, Union

from ._alloyed import AlloyedModelProvider
from ._catalog import estimate_cost, lookup
from ._checkpoint import Checkpoint, Record, input_hash
from ._context import Context
from ._errors import LlmError, RateLimitedError
from ._messages import ChatMessage
from ._pacing import Aimd, Gate, is_congestion, process_gate
from ._progress import Progress, open_progress
from ._retry import RetryPolicy
from ._stream import CollectedResponse
from ._values import value
from .providers._base import HttpProvider, StreamingModelProvider

if TYPE_CHECKING:
    from concurrent.futures import Executor, Future
    from types import TracebackType

    from ._model import LlmModel
    from ._stream import LlmResponseStream

__all__ = ["BatchResult", "BatchRun", "run_many"]

# The scheduler and the caller's iterator wait in slices this long at most, so a stop
# (Ctrl-C, close, break) is seen promptly.
_SLICE = 0.1
# On a stop: how long requests cut short get to report back, and the bound on the whole stop.
_DRAIN = 0.4
_STOP_BUDGET = 0.9

_runs = itertools.count(1)

#: (response, error) of one request, or None when a stop cut it short.
Outcome = Optional[Tuple[Optional[CollectedResponse], Optional[LlmError]]]


@value
class BatchResult:
    """One item of a run: ``response`` (a ``CollectedResponse``) or ``error`` (an ``LlmError``).

    ``index`` is the item's position in the ``contexts`` given to :func:`run_many`;
    ``attempts`` the requests sent for it in this run (0 when ``resumed`` from the
    checkpoint); ``cost`` its price in dollars at the catalog's rates, None when the
    model is unpriced or the provider reported no usage.
    """

    index: int
    response: Optional[CollectedResponse] = None
    error: Optional[LlmError] = None
    attempts: int = 0
    cost: Optional[float] = None
    resumed: bool = False

    @property
    def ok(self) -> bool:
        """True when the item has a response."""
        return self.error is None


def run_many(
    provider: StreamingModelProvider,
    contexts: Iterable[Union[Context, str]],
    *,
    max_workers: int = 16,
    progress: bool = False,
    checkpoint: Union[str, os.PathLike[str], None] = None,
    executor: Optional[Executor] = None,
    retries: Union[int, RetryPolicy] = 4,
) -> BatchRun:
    """Send every context to ``provider``, ``max_workers`` at a time; iterate the results as they finish.

    Each result is a :class:`BatchResult`; one item's failure is its ``error``, never
    an exception of the run. A ``str`` stands for a one-message context (a user turn).

    Pacing, for every worker of the run together:

    - a ``429`` (or an in-band rate-limit error) pauses **every** worker until its
      ``Retry-After`` has passed (without one, for a backoff that grows while 429s
      repeat); a 503/529 or overloaded error with ``Retry-After`` pauses them too;
    - rate limits and overloads (429, 502-504, 529, overloaded events) halve the
      number of requests in flight, at most once per round; each success adds back
      about one slot per round, up to ``max_workers`` (AIMD);
    - the provider's own retries before content are turned off for the run (so that
      each 429 reaches the shared pause at once) and the run retries instead: an
      item whose error is retryable (``err.retryable``: rate limits, 5xx, timeouts,
      network errors, a stream cut mid-answer) is sent again up to ``retries`` times
      (an int, or a :class:`RetryPolicy` for the backoff too; a Retry-After longer
      than its ``max_retry_after`` is not waited for). ``BatchResult.attempts`` counts
      the requests an item took.

    ``checkpoint="run.jsonl"``: each finished item is appended to that file as one
    line (one ``write`` on a file opened for appending) as soon as it finishes. On a
    rerun with the same file, items already there are not sent again: their results
    are yielded first, with ``resumed=True``; items whose recorded error was
    retryable are sent again. If the context at an index differs from the recorded
    one (a hash of its messages, tools and settings; timestamps aside), or the
    provider or model differs, ``ValueError`` is raised before anything is sent:
    a checkpoint's answers are never reused for another question.

    Ctrl-C (or ``close()``, or leaving a ``for`` loop) stops the run within a second:
    requests in flight are closed, no thread or socket is left, and every item that
    finished is in the checkpoint; the ``KeyboardInterrupt`` propagates.

    Without ``executor=``, each request runs in a copy of the context variables that
    were current when ``run_many`` was called: with ``llm_sync.otel`` on, every
    stream's span is a child of the caller's current span.

    ``progress=True`` shows a tqdm bar (``pip install "llm-sync[progress]"``;
    ``tqdm.auto``, so a widget in Jupyter) with items done, failed, in flight, tokens
    and cost so far; without tqdm, a plain line on stderr.

    ``executor=`` runs each request as a task of any ``concurrent.futures.Executor``:
    a ``ProcessPoolExecutor``, or a Dask cluster's ``Client(...).get_executor()``.
    The provider (configuration only: no sockets) and each context travel pickled;
    the response or error comes back pickled. The scheduler stays in this process:
    it keeps at most ``max_workers`` tasks submitted (the AIMD limit), and while a
    pause lasts it submits nothing. A task that is already queued in the executor or
    running when a 429 arrives is held back only if its own worker process saw that
    429 (each worker process keeps one pause per run, shared by its threads); so
    set ``max_workers`` to the executor's number of workers (processes x threads)
    and no task waits in its queue. A stop cancels the tasks not started; tasks
    already running in other processes finish there and their results are dropped
    (their items are sent again on a rerun).
    """
    if not isinstance(provider, StreamingModelProvider):
        raise TypeError(f"run_many takes a StreamingModelProvider first, got {type(provider).__name__}")
    if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
        raise ValueError(f"max_workers must be a positive int, got {max_workers!r}")
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise TypeError(
            f"executor must be a concurrent.futures.Executor (something with submit()), got {type(executor).__name__}"
        )
    policy = _policy(retries)
    items = _contexts(contexts)
    sender = _without_retries(provider)
    if executor is not None:
        _check_picklable(sender, items)
    pricing = _Pricing(provider)
    hashes: Optional[List[str]] = None
    ckpt: Optional[Checkpoint] = None
    resumed: List[BatchResult] = []
    todo = list(range(len(items)))
    if checkpoint is not None:
        hashes = [input_hash(c) for c in items]
        ckpt = Checkpoint(checkpoint, _label(provider))
        changed = ckpt.mismatches(hashes)
        if changed:
            ckpt.close()
            shown = ", ".join(map(str, changed[:5])) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
            raise ValueError(
                f"checkpoint {ckpt.path} holds answers to other inputs at index {shown}: the "
                "context there changed since the checkpoint was written. Pass a new checkpoint "
                "path (or delete the file) to send everything again"
            )
        for i, rec in sorted(ckpt.records.items()):
            if i >= len(items) or (rec.error is not None and rec.error.retryable):
                continue
            cost = pricing.cost(rec.response) if rec.response is not None else None
            resumed.append(BatchResult(i, rec.response, rec.error, 0, cost, True))
        reused = {r.index for r in resumed}
        todo = [i for i in todo if i not in reused]
    run = _Run(sender, items, hashes, todo, policy, max_workers, executor, ckpt, pricing)
    for r in resumed:
        run.count(r)
    shown_progress = open_progress(len(items), len(resumed)) if progress else None
    return BatchRun(run, resumed, shown_progress)


# -- arguments -----------------------------------------------------------------------------


def _policy(retries: Union[int, RetryPolicy]) -> RetryPolicy:
    if isinstance(retries, RetryPolicy):
        return retries
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be an int >= 0 or a RetryPolicy, got {retries!r}")
    # A batch outlasts a chat turn: longer backoffs, and a server's Retry-After of up
    # to five minutes is waited for rather than failing the items.
    return RetryPolicy(max_retries=retries, backoff_base=1.0, backoff_max=30.0, max_retry_after=300.0)


def _contexts(contexts: Iterable[Union[Context, str]]) -> List[Context]:
    if isinstance(contexts, (str, Context)):
        raise TypeError("run_many takes an iterable of contexts (or prompts); wrap a single one in a list")
    out: List[Context] = []
    for i, c in enumerate(contexts):
        if isinstance(c, Context):
            out.append(c.copy())  # a snapshot: the caller may change its contexts meanwhile
        elif isinstance(c, str):
            out.append(Context([ChatMessage.User(c)]))
        else:
            raise TypeError(f"contexts[{i}] is a {type(c).__name__}; run_many takes Context objects or str prompts")
    return out


def _without_retries(provider: StreamingModelProvider) -> StreamingModelProvider:
    """The provider with its own retries before content off: the run's scheduler retries instead."""
    if isinstance(provider, AlloyedModelProvider):
        return AlloyedModelProvider([_without_retries(p) for p in provider.providers])
    method = getattr(provider, "with_max_retries", None)
    if callable(method):
        found = method(0)
        if isinstance(found, HttpProvider) and isinstance(provider, HttpProvider):
            # The copy sends through the provider's own connection pool: connections
            # opened before (or by an earlier run) are reused, none are left behind.
            found._transport_ref = provider._transport()
        if isinstance(found, StreamingModelProvider):
            return found
    return provider


def _label(provider: StreamingModelProvider) -> str:
    """What a checkpoint records of the provider: ``provider_id:model`` (never a key or a URL)."""
    if isinstance(provider, AlloyedModelProvider):
        return ",".join(_label(p) for p in provider.providers)
    pid, model = getattr(provider, "provider_id", None), getattr(provider, "model_name", None)
    if isinstance(pid, str) and isinstance(model, str) and pid and model:
        return f"{pid}:{model}"
    return provider.display_name()


def _check_picklable(provider: StreamingModelProvider, items: List[Context]) -> None:
    import pickle  # only runs with an executor pay for it

    for what, obj in (("the provider", provider), ("contexts[0]", items[0] if items else None)):
        try:
            pickle.dumps(obj)
        except Exception as exc:
            raise TypeError(
                f"{what} cannot be pickled ({type(exc).__name__}: {exc}), and an executor sends it "
                "to its workers that way; use a provider from llm_sync.providers, or run without executor="
            ) from None


class _Pricing:
    """Dollar cost of a response at the catalog's prices, each model looked up once."""

    def __init__(self, provider: StreamingModelProvider) -> None:
        # Looked up now, in the caller's thread: the first lookup loads the catalog
        # (tens of ms), which must not hold up the scheduler once requests run.
        parts = provider.providers if isinstance(provider, AlloyedModelProvider) else (provider,)
        self.models: Dict[Tuple[str, str], Optional[LlmModel]] = {}
        for p in parts:
            pid, name = getattr(p, "provider_id", None), getattr(p, "model_name", None)
            if isinstance(pid, str) and isinstance(name, str):
                self.models[(pid, name)] = p.model()

    def cost(self, response: CollectedResponse) -> Optional[float]:
        if response.usage is None:
            return None
        key = (response.provider, response.model)
        if key not in self.models:
            self.models[key] = lookup(*key)
        model = self.models[key]
        return None if model is None else estimate_cost(model, response.usage)


# -- the run's shared state -------------------------------------------------------------------


class _Fatal:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_END = object()
_WAKE = (-1, 0, None)


class _Run:
    """What the scheduler, the workers and the caller's iterator share (never the iterator itself)."""

    def __init__(
        self,
        provider: StreamingModelProvider,
        items: List[Context],
        hashes: Optional[List[str]],
        todo: List[int],
        policy: RetryPolicy,
        max_workers: int,
        executor: Optional[Executor],
        checkpoint: Optional[Checkpoint],
        pricing: _Pricing,
    ) -> None:
        self.number = next(_runs)
        self.name = f"llm_sync-batch-{self.number}"
        self.token = f"{os.getpid()}-{self.number}-{time.time_ns()}"
        self.provider = provider
        self.items = items
        self.hashes = hashes
        self.todo = todo
        self.policy = policy
        self.max_workers = max_workers
        self.executor = executor
        self.checkpoint = checkpoint
        self.pricing = pricing
        self.gate = Gate()
        self.aimd = Aimd(max_workers)
        self.stop = threading.Event()
        self.completions: SimpleQueue[Tuple[int, int, Any]] = SimpleQueue()
        self.results: SimpleQueue[Any] = SimpleQueue()
        self.live: set[LlmResponseStream] = set()
        self.live_lock = threading.Lock()
        self.thread: Optional[threading.Thread] = None
        # The caller's context variables when it called run_many (a tracing span, a request id):
        # each of the run's own worker threads runs in a copy, so its streams see them too.
        self.context = contextvars.copy_context()
        # Counters, written by the scheduler only; read by anyone (an int read is atomic).
        self.done = 0
        self.failed = 0
        self.in_flight = 0
        self.retries = 0
        self.requests = 0
        self.tokens = 0
        self.cost: Optional[float] = None

    def count(self, result: BatchResult) -> None:
        self.done += 1
        if result.error is not None:
            self.failed += 1
        usage = result.response.usage if result.response is not None else None
        if usage is not None:
            self.tokens += usage.input_tokens + usage.output_tokens
        if result.cost is not None:
            self.cost = (self.cost or 0.0) + result.cost


# -- the caller's side -------------------------------------------------------------------------


class BatchRun:
    """The iterator :func:`run_many` returns: results as their items finish.

    Also a context manager; :meth:`close` (or leaving the ``with`` block, a ``break``
    out of a ``for`` loop, Ctrl-C) stops the run. The counters (``done``, ``failed``,
    ``in_flight``, ``retries``, ``requests``, ``tokens``, ``cost``, ``concurrency``)
    can be read at any time.
    """

    def __init__(self, run: _Run, resumed: List[BatchResult], progress: Optional[Progress]) -> None:
        self._run = run
        self._resumed: Deque[BatchResult] = deque(resumed)
        self._progress = progress
        self._ended = False
        self._finalizer = weakref.finalize(self, _shutdown, run, progress)

    def __iter__(self) -> BatchRun:
        return self

    def __next__(self) -> BatchResult:
        if self._resumed:
            result = self._resumed.popleft()
            self._show()
            return result
        if self._ended:
            raise StopIteration
        run = self._run
        if run.thread is None:
            if not run.todo:
                self._end()
            run.thread = threading.Thread(target=_drive, args=(run,), name=run.name, daemon=True)
            run.thread.start()
        try:
            while True:
                try:
                    item = run.results.get(True, _SLICE)
                    break
                except Empty:
                    self._show()
        except BaseException:
            # Ctrl-C lands here while waiting: stop everything before it propagates.
            self.close()
            raise
        if isinstance(item, BatchResult):
            self._show()
            return item
        # The scheduler's last word: let its thread finish before the caller moves on.
        if run.thread is not threading.current_thread():
            run.thread.join(_STOP_BUDGET)
        if isinstance(item, _Fatal):
            self.close()
            raise item.exc
        self._end()

    def _end(self) -> NoReturn:
        self._show()
        self.close()
        raise StopIteration

    def _show(self) -> None:
        if self._progress is not None:
            run = self._run
            self._progress.show(run.done, run.failed, run.in_flight, run.tokens, run.cost)

    def close(self) -> None:
        """Stop the run: nothing more is sent, requests in flight are closed. Idempotent; returns within a second."""
        self._ended = True
        self._finalizer()

    def __enter__(self) -> BatchRun:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    # -- counters -------------------------------------------------------------------------

    @property
    def done(self) -> int:
        """Items finished (with a response or an error), resumed ones included."""
        return self._run.done

    @property
    def failed(self) -> int:
        """Items finished with an error."""
        return self._run.failed

    @property
    def in_flight(self) -> int:
        """Requests sent and not answered yet."""
        return self._run.in_flight

    @property
    def retries(self) -> int:
        """Requests sent again after a retryable error."""
        return self._run.retries

    @property
    def requests(self) -> int:
        """Requests sent in this run."""
        return self._run.requests

    @property
    def tokens(self) -> int:
        """Input plus output tokens of the responses so far."""
        return self._run.tokens

    @property
    def cost(self) -> Optional[float]:
        """Dollars so far at catalog prices; None while no response was priced."""
        return self._run.cost

    @property
    def concurrency(self) -> int:
        """The current limit on requests in flight (``max_workers`` unless rate limits lowered it)."""
        return self._run.aimd.limit

    def __repr__(self) -> str:
        return f"<BatchRun {len(self._run.items)} items: {self.done} done, {self.failed} failed, {self.in_flight} in flight>"


def _shutdown(run: _Run, progress: Optional[Progress]) -> None:
    run.stop.set()
    run.completions.put(_WAKE)
    thread = run.thread
    if thread is not None:
        if thread is not threading.current_thread():
            thread.join(_STOP_BUDGET)
    elif run.checkpoint is not None:
        run.checkpoint.close()  # the scheduler never started; it would have closed it
    if progress is not None:
        progress.close()


# -- the scheduler -----------------------------------------------------------------------------


def _drive(run: _Run) -> None:
    """The scheduler thread (``llm_sync-batch-<n>``): send, pace, retry, record; until every item finished or a stop.

    It alone decides what is sent when. Requests run on the run's worker threads
    (``llm_sync-batch-<n>-<k>``) or as tasks of the executor; every outcome comes back
    here, through one queue, to be retried or written to the checkpoint and handed to
    the caller's iterator through another.
    """
    pending: Deque[int] = deque(run.todo)
    delayed: List[Tuple[float, int]] = []  # heap of (monotonic time it may go again, index)
    attempts: Dict[int, int] = dict.fromkeys(run.todo, 0)
    outstanding: Dict[int, Any] = {}  # index -> its executor future (None on the run's own threads)
    workers = _Workers(run) if run.executor is None else None
    streak = 0  # congestion outcomes in a row, run-wide: how long a pause without Retry-After lasts
    fatal: Optional[BaseException] = None
    try:
        while not run.stop.is_set():
            now = time.monotonic()
            while delayed and delayed[0][0] <= now:
                pending.appendleft(heapq.heappop(delayed)[1])
            closed_for = run.gate.remaining()
            while pending and closed_for <= 0.0 and len(outstanding) < run.aimd.limit:
                index = pending.popleft()
                attempts[index] += 1
                ticket = run.aimd.ticket()
                run.requests += 1
                outstanding[index] = _send(run, workers, index, ticket)
                run.in_flight = len(outstanding)
            if not outstanding and not pending and not delayed:
                break
            wait = _SLICE
            if delayed:
                wait = min(wait, delayed[0][0] - now)
            if pending and closed_for > 0.0:
                wait = min(wait, closed_for)
            try:
                got = run.completions.get(True, max(wait, 0.001))
            except Empty:
                continue
            item: Optional[Tuple[int, int, Any]] = got
            while item is not None:
                if item is not _WAKE:
                    index, ticket, outcome = item
                    outstanding.pop(index, None)
                    run.in_flight = len(outstanding)
                    outcome = _outcome(outcome)
                    if outcome is not None:
                        streak = _settle(run, index, ticket, attempts[index], outcome, delayed, streak)
                try:
                    item = run.completions.get_nowait()
                except Empty:
                    item = None
    except BaseException as exc:
        fatal = exc
    finally:
        run.stop.set()
        _drain(run, outstanding, attempts, workers)
        if run.checkpoint is not None:
            run.checkpoint.close()
        run.results.put(_Fatal(fatal) if fatal is not None else _END)


def _send(run: _Run, workers: Optional[_Workers], index: int, ticket: int) -> Any:
    if workers is not None:
        workers.submit(index, ticket)
        return None
    assert run.executor is not None
    future = run.executor.submit(
        _attempt_remote, run.provider, run.items[index], run.token, run.policy.max_retry_after, ticket
    )

    def report(done: Future[Any]) -> None:
        run.completions.put((index, ticket, done))

    future.add_done_callback(report)
    return future


def _outcome(got: Any) -> Outcome:
    """The outcome a worker reported, or a finished future's; an exception there ends the run."""
    if isinstance(got, BaseException):
        raise got
    if got is None or isinstance(got, tuple):
        return got
    if got.cancelled():
        return None
    return got.result()  # type: ignore[no-any-return]


def _settle(
    run: _Run,
    index: int,
    ticket: int,
    attempts: int,
    outcome: Tuple[Optional[CollectedResponse], Optional[LlmError]],
    delayed: List[Tuple[float, int]],
    streak: int,
) -> int:
    """Record a finished item, or schedule its retry; returns the new congestion streak."""
    response, error = outcome
    if error is None:
        run.aimd.succeeded()
        _finish(run, index, attempts, response, None)
        return 0
    retry_after: Optional[float] = getattr(error, "retry_after", None)
    policy = run.policy
    if is_congestion(error):
        streak += 1
        run.aimd.congested(ticket)
        if retry_after is not None:
            run.gate.pause(min(retry_after, policy.max_retry_after))
        elif isinstance(error, RateLimitedError):
            run.gate.pause(policy.backoff(min(streak - 1, 16)))
    delay = policy.delay(attempts - 1, retry_after) if error.retryable else None
    if delay is None:
        _finish(run, index, attempts, None, error)
    else:
        run.retries += 1
        heapq.heappush(delayed, (time.monotonic() + delay, index))
    return streak


def _finish(
    run: _Run, index: int, attempts: int, response: Optional[CollectedResponse], error: Optional[LlmError]
) -> None:
    cost = run.pricing.cost(response) if response is not None else None
    result = BatchResult(index, response, error, attempts, cost)
    if run.checkpoint is not None:
        assert run.hashes is not None
        run.checkpoint.write(Record(index, run.hashes[index], attempts, response, error))
    run.count(result)
    run.results.put(result)


def _drain(run: _Run, outstanding: Dict[int, Any], attempts: Dict[int, int], workers: Optional[_Workers]) -> None:
    """After a stop: close what is in flight, and record what finished meanwhile."""
    with run.live_lock:
        streams = list(run.live)
    for stream in streams:
        stream.close()
    for future in outstanding.values():
        if future is not None:
            future.cancel()
    deadline = time.monotonic() + _DRAIN
    local = {i for i, f in outstanding.items() if f is None}
    while local:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            got = run.completions.get(True, min(left, _SLICE))
        except Empty:
            continue
        if got is _WAKE or got[0] not in local:
            continue
        index, _ticket, outcome = got
        local.discard(index)
        if isinstance(outcome, tuple):
            response, error = outcome
            # An answer that was complete is kept; an error that a rerun could fix is not.
            if error is None or not error.retryable:
                _finish(run, index, attempts[index], response, error)
    run.in_flight = 0
    if workers is not None:
        workers.shutdown(deadline)


# -- where requests run ---------------------------------------------------------------------------


class _Workers:
    """The run's own threads, started as needed up to ``max_workers``; each runs one request at a time."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.tasks: SimpleQueue[Optional[Tuple[int, int]]] = SimpleQueue()
        self.threads: List[threading.Thread] = []
        self.busy = 0  # submitted and not finished: a thread is started when all are busy
        self.lock = threading.Lock()

    def submit(self, index: int, ticket: int) -> None:
        with self.lock:
            self.busy += 1
            start = self.busy > len(self.threads)
        if start:
            t = threading.Thread(
                target=self.run.context.copy().run,
                args=(_work, self.run, self),
                name=f"{self.run.name}-{len(self.threads) + 1}",
                daemon=True,
            )
            self.threads.append(t)
            t.start()
        self.tasks.put((index, ticket))

    def shutdown(self, deadline: float) -> None:
        for _ in self.threads:
            self.tasks.put(None)
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()) + 0.1)


def _work(run: _Run, workers: _Workers) -> None:
    while True:
        task = workers.tasks.get()
        if task is None:
            return
        index, ticket = task
        outcome: Any = None
        try:
            if run.gate.wait(run.stop):
                outcome = _attempt(run.provider, run.items[index], run.gate, run.policy.max_retry_after, run)
        except BaseException as exc:  # a provider's bug: the run ends with it
            outcome = exc
        with workers.lock:
            workers.busy -= 1
        run.completions.put((index, ticket, outcome))


def _attempt(
    provider: StreamingModelProvider,
    context: Context,
    gate: Gate,
    max_pause: float,
    run: Optional[_Run] = None,
) -> Outcome:
    """Send one request and read its answer whole; a rate limit pauses ``gate`` at once."""
    stream = provider.stream_response(context)
    if run is not None:
        with run.live_lock:
            if run.stop.is_set():
                stream.close()
                return None
            run.live.add(stream)
    response: Optional[CollectedResponse] = None
    error: Optional[LlmError] = None
    try:
        response = stream.collect()
    except LlmError as err:
        error = err
    finally:
        if run is not None:
            with run.live_lock:
                run.live.discard(stream)
        stream.close()
    if run is not None and run.stop.is_set() and (response is None or not response.complete):
        return None  # cut short by the stop: not an answer
    if error is not None and is_congestion(error):
        # Here, not when the scheduler gets to it: no other worker starts a request meanwhile.
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            gate.pause(min(retry_after, max_pause))
    return response, error


# An executor's worker process keeps the providers it was sent, by run: their
# connections are then reused from one task to the next.
_PROVIDERS: Dict[str, StreamingModelProvider] = {}
_PROVIDERS_LOCK = threading.Lock()
_MAX_PROVIDERS = 8


def _attempt_remote(
    provider: StreamingModelProvider, context: Context, run: str, max_pause: float, _ticket: int
) -> Outcome:
    """One request as an executor's task, in whatever process runs it (``_ticket`` keeps tasks distinct)."""
    with _PROVIDERS_LOCK:
        kept = _PROVIDERS.get(run)
        if kept is None:
            kept = _PROVIDERS[run] = provider
            while len(_PROVIDERS) > _MAX_PROVIDERS:
                del _PROVIDERS[next(iter(_PROVIDERS))]
    gate = process_gate(run)
    gate.wait()
    return _attempt(kept, context, gate, max_pause)

