"""Soak: many concurrent streams against a server mixing faults; every one ends cleanly, nothing piles up.

200 streams over 32 threads per round (``LLM_SYNC_SOAK_STREAMS`` / ``LLM_SYNC_SOAK_ROUNDS`` change
the size), a seeded random mix of providers and faults. Each stream must end in the result or the
typed error its fault calls for; after each round no reader thread is left, and the process's
resident memory stays flat from round to round.
"""

from __future__ import annotations

import gc
import os
import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional, Tuple, Type

import pytest

from llm_sync import (
    ChatMessage,
    Context,
    InvalidApiKeyError,
    JsonParsingError,
    LlmError,
    RequestTimeoutError,
    StreamInterruptedError,
    Timeouts,
)
from llm_sync.providers._base import HttpProvider
from tests.support.faults import FLAVORS, Flavor, fast_retries, reset_before_headers
from tests.support.leaks import socket_fds
from tests.support.server import LoopbackServer, RecordedRequest, Reply, Reset, Stall

pytestmark = pytest.mark.soak

STREAMS = int(os.environ.get("LLM_SYNC_SOAK_STREAMS", "200"))
ROUNDS = int(os.environ.get("LLM_SYNC_SOAK_ROUNDS", "3"))
THREADS = 32
SEED = 20240611
IDLE = 0.8

Plan = List[Callable[[RecordedRequest], Reply]]
Outcome = Optional[Type[LlmError]]  # None: a complete result


def _fixed(reply: Reply) -> Callable[[RecordedRequest], Reply]:
    return lambda req: reply


def _faults(server: LoopbackServer, f: Flavor, n: int) -> Dict[str, Tuple[Plan, Outcome, str]]:
    """fault name -> (one reply per attempt, the expected outcome, the expected text)."""
    text = f"stream {n} "
    ok = f.reply(text, "done")
    return {
        "ok": ([_fixed(ok)], None, text + "done"),
        "503-then-ok": ([_fixed(Reply.json(f.error_json(503), status=503)), _fixed(ok)], None, text + "done"),
        "429-then-ok": (
            [_fixed(Reply.json(f.error_json(429), status=429, headers={"retry-after": "0.05"})), _fixed(ok)],
            None,
            text + "done",
        ),
        "overload-then-ok": ([_fixed(f.reply(steps=[*f.start, f.overload])), _fixed(ok)], None, text + "done"),
        "reset-before-headers-then-ok": ([reset_before_headers(server), _fixed(ok)], None, text + "done"),
        "reset-mid-stream": ([_fixed(f.reply(steps=[*f.start, f.text(text), Reset()]))], StreamInterruptedError, text),
        "no-final-event": ([_fixed(f.reply(steps=[*f.start, f.text(text)]))], StreamInterruptedError, text),
        "401": ([_fixed(Reply.json(f.error_json(401), status=401))], InvalidApiKeyError, ""),
        "bad-json": ([_fixed(f.reply(steps=[*f.start, f.text(text), f.bad_json, *f.end]))], JsonParsingError, text),
        "stall": ([_fixed(f.reply(steps=[*f.start, f.text(text), Stall(3.0)]))], RequestTimeoutError, text),
    }


class Dispatcher:
    """Answers each request by the stream number in its body and how many tries that stream made."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.plans: Dict[int, Plan] = {}
        self.tries: Dict[int, int] = {}

    def __call__(self, req: RecordedRequest) -> Reply:
        m = re.search(rb"soak-stream-(\d+)", req.body)
        assert m is not None, req.body[:200]
        n = int(m.group(1))
        with self.lock:
            attempt = self.tries.get(n, 0)
            self.tries[n] = attempt + 1
            plan = self.plans[n]
        return plan[min(attempt, len(plan) - 1)](req)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _readers() -> List[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("llm_sync-")]


def _one(provider: HttpProvider, n: int, expected: Outcome, text: str, early_close: bool) -> str:
    """Run stream ``n``; an empty string when it ended as expected, else what went wrong."""
    ctx = Context(messages=[ChatMessage.User(f"soak-stream-{n}")])
    try:
        with provider.stream_response(ctx) as stream:
            if early_close:
                next(stream)
                stream.close()
                return "" if stream.closed else f"{n}: close() did not close"
            result = stream.collect()
    except LlmError as err:
        if expected is None or not isinstance(err, expected):
            return f"{n}: expected {expected}, got {err!r}"
        partial = getattr(err, "partial", None)
        if text and (partial is None or partial.text != text or partial.complete):
            return f"{n}: partial {partial!r}, expected text {text!r}"
        return ""
    except Exception as err:  # an untyped error is exactly what the soak hunts
        return f"{n}: untyped {err!r}"
    if expected is not None:
        return f"{n}: expected {expected.__name__}, got a result"
    if result.text != text or not result.complete:
        return f"{n}: result {result.text!r} (complete={result.complete}), expected {text!r}"
    return ""


def test_soak_mixed_faults_over_many_threads() -> None:
    rng = random.Random(SEED)
    flavors = [f for f in FLAVORS.values() if f.name != "ollama" or _has_ollama()]
    sockets_before = socket_fds()
    rss: List[int] = []
    problems: List[str] = []
    with LoopbackServer() as server:
        dispatch = Dispatcher()
        timeouts = Timeouts(connect=2.0, first_event=3.0, idle=IDLE)
        providers = {f.name: fast_retries(f.provider(server, timeout=timeouts), max_retries=2) for f in flavors}
        for round_no in range(ROUNDS):
            jobs: List[Tuple[Any, ...]] = []
            for i in range(STREAMS):
                n = round_no * STREAMS + i
                f = rng.choice(flavors)
                name, (plan, expected, text) = rng.choice(sorted(_faults(server, f, n).items()))
                early = name == "ok" and rng.random() < 0.2
                dispatch.plans[n] = plan
                jobs.append((providers[f.name], n, expected, text, early))
            for _ in range(STREAMS * 3):
                server.reply(dispatch)
            t0 = time.monotonic()
            with ThreadPoolExecutor(THREADS, thread_name_prefix="soak") as pool:
                problems += [p for p in pool.map(lambda job: _one(*job), jobs) if p]
            took = time.monotonic() - t0
            assert took < 30, f"round {round_no} took {took:.1f} s"
            deadline = time.monotonic() + 3.0
            while _readers() and time.monotonic() < deadline:
                time.sleep(0.01)
            assert not _readers(), f"reader threads left after round {round_no}: {_readers()}"
            gc.collect()
            rss.append(_rss())
            with server._lock:  # drop the leftovers of this round's generous queue
                server._replies.clear()
        assert not problems, "\n".join(problems[:20])
        assert not server.errors, server.errors[:2]
        for p in providers.values():
            p._transport().close()
    gc.collect()
    # Rounds after the first (which warms caches, pools and imports) must not grow.
    growth = max(rss[1:], default=rss[0]) - rss[min(1, len(rss) - 1)]
    assert growth < 40 * 1024 * 1024, f"RSS grew by {growth / 1e6:.1f} MB across rounds: {rss}"
    deadline = time.monotonic() + 3.0
    while socket_fds() - sockets_before and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.02)
    assert not socket_fds() - sockets_before


def _has_ollama() -> bool:
    try:
        import llm_sync.providers.ollama  # noqa: F401
    except ImportError:
        return False
    return True
