# ruff: noqa: RUF001, RUF002, RUF003  (the tables use × and – on purpose)
"""Fan-out at a real pace: K concurrent streams of one event every ``ms`` from ``bench.paced``, each client in a fresh process.

For every round, K and column, a fresh interpreter (``python -m bench.fanout
--child COLUMN``) imports its library, makes its client object, reads one short
warm-up stream, then releases K streams together (threads behind ``bench.release.Gates``, or
one asyncio task each) and measures, from its own accounting: CPU time (user and
system, ``getrusage``) per text chunk, how far each stream ended behind its ideal
pace (``n`` × ``ms`` after the release; the server's phase adds up to one ``ms``),
errors, streams that ended short, streams
still unfinished at the deadline (hung: nothing for 10 s; late: still flowing),
peak RSS (``VmHWM`` after a reset), peak OS threads (``/proc/self/status``,
sampled every 10 ms) and thread switches per chunk. Rounds are interleaved (every K and column once per round,
the column order rotated) and ratios are taken within a round, then their median.

The server is one ``selectors`` thread in its own process; the ``floor`` column
(one thread reading every socket with ``selectors``) and the server's own
send-lateness figures show whether it kept the pace. The ``probe`` column is the
baseline behind a reader thread and a queue: what the hand-off costs on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Tuple

from bench.release import Gates

ROOT = Path(__file__).resolve().parents[1]

# settings per mode; "smoke" is what tests/test_bench_smoke.py runs (a few seconds).
# switch_interval: sys.setswitchinterval in every client process, what the README
# recommends for hundreds of streams in threads (at the interpreter's 5 ms, every
# thread waiting for the GIL wakes every 5 ms: see the README's fan-out section).
MODES: Dict[str, Dict[str, Any]] = {
    "full": dict(ks=[64, 256, 1024, 2048], n=150, ms=20, rounds=3, switch_interval=0.05),
    "quick": dict(ks=[64, 256], n=100, ms=20, rounds=1, switch_interval=0.05),
    "smoke": dict(ks=[4, 16], n=10, ms=5, rounds=1),
}


class Column(NamedTuple):
    name: str
    kind: str  # "floor" | "llm_sync" | "baseline" | "sdk"
    api: str  # the wire format it reads: "openai" | "anthropic"
    modules: Tuple[str, ...]  # what must be importable for the column to run
    max_k: int  # larger K are not run (and the report says so)


FLOOR = "floor: selectors, one thread"
LLM_CHAT = "llm_sync chat completions"
LLM_ANTHROPIC = "llm_sync Anthropic"
REQ = "requests + sseclient-py, threads"
REQ_ANTHROPIC = "requests + sseclient-py, threads (anthropic fmt)"
PROBE = "probe: requests + sseclient-py in a reader thread → queue"
OPENAI_THREADS = "openai SDK, threads"
ASYNC_OPENAI = "AsyncOpenAI, asyncio"
LITELLM = "litellm acompletion, asyncio"
BASELINE = {"openai": REQ, "anthropic": REQ_ANTHROPIC}
# --compare-tree DIR adds the llm_sync columns again, importing llm_sync from DIR
# (a checkout of another commit), named "<column> [<DIR's name>]": before/after in
# the same rounds.
TREE_MARK = " ["

COLUMNS = [
    Column(FLOOR, "floor", "openai", (), 1 << 30),
    Column(LLM_CHAT, "llm_sync", "openai", ("llm_sync",), 1 << 30),
    Column(LLM_ANTHROPIC, "llm_sync", "anthropic", ("llm_sync",), 1 << 30),
    Column(REQ, "baseline", "openai", ("requests", "sseclient"), 1 << 30),
    Column(REQ_ANTHROPIC, "baseline", "anthropic", ("requests", "sseclient"), 1 << 30),
    # Not a peer: the price of the hand-off alone (see bench.clients.reader_thread_probe).
    Column(PROBE, "probe", "openai", ("requests", "sseclient"), 1 << 30),
    # Past these K a column costs minutes of CPU per round on 2 cores (its per-chunk
    # cost at 64-256 streams says how many); the report marks the cells not run.
    Column(OPENAI_THREADS, "sdk", "openai", ("openai",), 1024),
    Column(ASYNC_OPENAI, "sdk", "openai", ("openai",), 1024),
    Column(LITELLM, "sdk", "openai", ("litellm",), 256),
]


def log(*parts: Any) -> None:
    print(*parts, file=sys.stderr, flush=True)


def base_url(port: int, n: int, ms: float) -> str:
    return f"http://127.0.0.1:{port}/n={n},ms={ms:g}"


def raise_file_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def status(*keys: str) -> Dict[str, int]:
    out: Dict[str, int] = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in keys:
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def child_env() -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.setdefault("NO_PROXY", "127.0.0.1,localhost")
    env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch of the cost map at import
    return env


# ---------------------------------------------------------------------------
# the child: one column, K streams, its own accounting


class Rec:
    """One stream as its client saw it."""

    __slots__ = ("t0", "t_end", "t_last", "count", "error")

    def __init__(self) -> None:
        self.t0 = 0.0
        self.t_end: Optional[float] = None
        self.t_last = 0.0
        self.count = 0
        self.error: Optional[str] = None


def _read(rec: Rec, texts: Iterable[Any]) -> None:
    clock = time.perf_counter
    rec.t0 = rec.t_last = clock()
    try:
        for _ in texts:
            rec.count += 1
            rec.t_last = clock()
    except BaseException as exc:  # reported, never hidden
        rec.error = f"{type(exc).__name__}: {str(exc)[:200]}"
    rec.t_end = clock()


def _thread_fn(column: str) -> Callable[[str, int], Iterable[Any]]:
    from bench import clients as C

    column = column.split(TREE_MARK)[0]
    return {LLM_CHAT: C.llm_sync_compatible, LLM_ANTHROPIC: C.llm_sync_anthropic, REQ: C.requests_sseclient,
            REQ_ANTHROPIC: C.requests_sseclient_anthropic, PROBE: C.reader_thread_probe,
            OPENAI_THREADS: C.openai_sdk}[column]


async def _async_openai(base: str, n: int) -> Any:
    import openai

    client = _async_clients.get(base)
    if client is None:
        client = _async_clients[base] = openai.AsyncOpenAI(base_url=base + "/v1", api_key="sk-bench", max_retries=0)
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", max_tokens=n, stream=True, messages=[{"role": "user", "content": "Say something."}])
    async for chunk in stream:
        if chunk.choices:
            content = chunk.choices[0].delta.content
            if content:
                yield content


_async_clients: Dict[str, Any] = {}


async def _litellm(base: str, n: int) -> Any:
    import litellm

    resp = await litellm.acompletion(
        model="openai/gpt-4o-mini", api_base=base + "/v1", api_key="sk-bench", max_tokens=n, stream=True,
        messages=[{"role": "user", "content": "Say something."}])
    async for chunk in resp:
        if chunk.choices:
            content = chunk.choices[0].delta.content
            if content:
                yield content


async def _aread(rec: Rec, texts: Any) -> None:
    clock = time.perf_counter
    rec.t0 = rec.t_last = clock()
    try:
        async for _ in texts:
            rec.count += 1
            rec.t_last = clock()
    except BaseException as exc:
        rec.error = f"{type(exc).__name__}: {str(exc)[:200]}"
    rec.t_end = clock()


class _Sampler:
    """Every 10 ms: peak OS threads of this process (not counting the sampler), and whether every stream has begun."""

    def __init__(self, recs: Optional[List[Rec]] = None) -> None:
        self.peak = 0
        self.recs = recs or []
        self.waiting_for = 0  # recs before this one have had their first chunk
        self.all_started: Optional[float] = None  # when every stream had its first chunk
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def _run(self) -> None:
        while True:
            k = status("Threads").get("Threads", 0) - 1
            if k > self.peak:
                self.peak = k
            recs, i = self.recs, self.waiting_for
            while i < len(recs) and recs[i].count:
                i += 1  # each rec is passed once: the check stays cheap beside the streams
            if i == len(recs) and self.all_started is None and recs:
                self.all_started = time.perf_counter()
            self.waiting_for = i
            if self.done.wait(0.01):
                return


def _floor(port: int, k: int, n: int, ms: float, recs: List[Rec], deadline: float) -> None:
    """Every stream on one thread: raw sockets, selectors, events split on the blank line."""
    sel = selectors.DefaultSelector()
    path = f"/n={n},ms={ms:g}/v1/chat/completions"
    body = b'{"model":"m","stream":true,"messages":[]}'
    req = (f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
           f"content-length: {len(body)}\r\n\r\n").encode() + body
    state: Dict[int, List[Any]] = {}
    clock = time.perf_counter
    for i in range(k):
        s = socket.create_connection(("127.0.0.1", port))
        s.setblocking(False)
        recs[i].t0 = recs[i].t_last = clock()
        s.sendall(req)
        sel.register(s, selectors.EVENT_READ, i)
        state[i] = [s, b""]
    open_ = k
    while open_ and clock() < deadline:
        for key, _ in sel.select(1.0):
            i = key.data
            s, rest = state[i]
            try:
                data = s.recv(262144)
            except BlockingIOError:
                continue
            rec = recs[i]
            if not data:
                rec.error = "ConnectionError: closed mid-stream"
            evs = (rest + data).split(b"\n\n")
            state[i][1] = evs.pop()
            now = clock()
            for ev in evs:
                if b'"delta":{"content":"' in ev:
                    rec.count += 1
                    rec.t_last = now
            if not data or b"data: [DONE]" in data:
                rec.t_end = now
                sel.unregister(s)
                s.close()
                open_ -= 1


def child(args: argparse.Namespace) -> Dict[str, Any]:
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    import logging

    # More concurrent streams than a pool keeps: urllib3 logs each connection it drops.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    nofile = raise_file_limit()
    column, k, n, ms = args.child, args.k, args.n, args.ms
    if args.tree:
        sys.path.insert(0, args.tree)  # llm_sync from the other checkout; bench stays this one
    base = base_url(args.port, n, ms)
    warm = base_url(args.port, 3, 1)
    recs = [Rec() for _ in range(k)]
    is_async = column in (ASYNC_OPENAI, LITELLM)
    loop: Optional[asyncio.AbstractEventLoop] = None
    threads: List[threading.Thread] = []
    gates: Optional[Gates] = None
    if column == FLOOR:
        pass
    elif is_async:
        agen = _async_openai if column == ASYNC_OPENAI else _litellm
        loop = asyncio.new_event_loop()
        warm_rec = Rec()
        loop.run_until_complete(_aread(warm_rec, agen(warm, 3)))
        if warm_rec.error or warm_rec.count != 3:
            raise SystemExit(f"{column}: warm-up failed: {warm_rec.error} ({warm_rec.count} chunks)")
    else:
        fn = _thread_fn(column)
        warm_rec = Rec()
        _read(warm_rec, fn(warm, 3))
        if warm_rec.error or warm_rec.count != 3:
            raise SystemExit(f"{column}: warm-up failed: {warm_rec.error} ({warm_rec.count} chunks)")
        gates = Gates(k)

        def work(i: int, rec: Rec) -> None:
            assert gates is not None
            gates.wait(i)
            _read(rec, fn(base, n))

        threads = [threading.Thread(target=work, args=(i, r), name=f"bench-{i}", daemon=True)
                   for i, r in enumerate(recs)]
        for t in threads:
            t.start()
    threads_before = threading.active_count() - len(threads)
    gc.collect()
    if hasattr(gc, "freeze"):
        gc.freeze()  # the libraries' objects stay out of every collection during the run
    rss_before = status("VmRSS").get("VmRSS", 0)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # VmHWM starts again from here
    except OSError:
        pass
    sampler = _Sampler(recs)
    sampler.thread.start()
    ideal = n * ms / 1e3
    wall_deadline = time.perf_counter() + args.deadline
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t_start = time.perf_counter()
    if column == FLOOR:
        _floor(args.port, k, n, ms, recs, wall_deadline)
    elif is_async:
        assert loop is not None

        async def all_streams() -> None:
            tasks = [asyncio.ensure_future(_aread(r, agen(base, n))) for r in recs]
            await asyncio.wait(tasks, timeout=max(0.0, wall_deadline - time.perf_counter()))

        loop.run_until_complete(all_streams())
    else:
        assert gates is not None
        gates.open_all()
        for t in threads:
            t.join(max(0.0, wall_deadline - time.perf_counter()))
    t_stop = time.perf_counter()
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    sampler.done.set()
    sampler.thread.join()
    st = status("VmHWM", "VmRSS")
    user, sys_ = ru1.ru_utime - ru0.ru_utime, ru1.ru_stime - ru0.ru_stime
    chunks = sum(r.count for r in recs)
    done = [r for r in recs if r.t_end is not None]
    # From the release, not from when a thread got round to its request: a client that
    # starts its streams late is late.
    lags = sorted((r.t_end - t_start - ideal) * 1e3 for r in done if r.t_end is not None and not r.error)
    unfinished = [r for r in recs if r.t_end is None]
    hung = sum(1 for r in unfinished if t_stop - r.t_last > 10.0)
    errors = [r.error for r in recs if r.error]
    short = sum(1 for r in done if not r.error and r.count != n)
    readers_left = -1
    if column.startswith("llm_sync"):
        # Every reader thread leaves once its stream ends.
        t_wait = time.perf_counter() + 2.0
        while True:
            readers_left = sum(1 for t in threading.enumerate() if t.name.startswith("llm_sync-"))
            if readers_left == 0 or time.perf_counter() > t_wait:
                break
            time.sleep(0.01)

    def q(xs: List[float], p: float) -> Optional[float]:
        return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else None

    where = sys.modules["llm_sync"].__file__ if "llm_sync" in sys.modules else None
    return {
        "column": column, "k": k, "n": n, "ms": ms, "nofile": nofile, "llm_sync": where,
        "wall_s": t_stop - t_start, "ideal_s": ideal, "user_s": user, "sys_s": sys_,
        "all_started_s": None if sampler.all_started is None else sampler.all_started - t_start,
        "chunks": chunks, "expected": k * n,
        "cpu_us_per_chunk": (user + sys_) / chunks * 1e6 if chunks else None,
        "sys_share": sys_ / (user + sys_) if user + sys_ else None,
        # Every wake-up of a thread that blocked (voluntary) or was preempted: what a hand-off costs.
        "switches_per_chunk": ((ru1.ru_nvcsw - ru0.ru_nvcsw) + (ru1.ru_nivcsw - ru0.ru_nivcsw)) / chunks
        if chunks else None,
        "lag_ms_p50": q(lags, 0.5), "lag_ms_p99": q(lags, 0.99), "lag_ms_max": lags[-1] if lags else None,
        "errors": len(errors), "error_samples": sorted(set(errors))[:3], "short": short,
        "hung": hung, "late_unfinished": len(unfinished) - hung,
        "peak_rss_mib": st.get("VmHWM", 0) / 1024, "rss_before_mib": rss_before / 1024,
        "rss_per_stream_kib": (st.get("VmHWM", 0) - rss_before) / k,
        "peak_threads": sampler.peak, "threads_before": threads_before, "readers_left": readers_left,
    }


# ---------------------------------------------------------------------------
# the parent: server, rounds, ratios, report


def importable(modules: Tuple[str, ...]) -> bool:
    import importlib.util

    for m in modules:
        try:
            if importlib.util.find_spec(m) is None:
                return False
        except (ImportError, ValueError):
            return False
    return True


def start_server() -> Tuple[subprocess.Popen[str], int]:
    p = subprocess.Popen([sys.executable, "-m", "bench.paced"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True, env=child_env(), cwd=str(ROOT))
    assert p.stdout is not None
    line = p.stdout.readline()
    if not line.startswith("READY"):
        p.kill()
        p.wait()
        raise RuntimeError(f"the paced server did not start: {line!r}")
    return p, int(line.split()[1])


def server_stats(p: subprocess.Popen[str]) -> Dict[str, Any]:
    assert p.stdin is not None and p.stdout is not None
    p.stdin.write("STATS\n")
    p.stdin.flush()
    return json.loads(p.stdout.readline())  # type: ignore[no-any-return]


def stop_server(p: subprocess.Popen[str]) -> None:
    try:
        if p.stdin is not None:
            p.stdin.close()
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    if p.stdout is not None:
        p.stdout.close()


def run_cell(col: Column, port: int, k: int, n: int, ms: float, deadline: float,
             trees: Dict[str, str], switch_interval: Optional[float] = None) -> Dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.fanout", "--child", col.name, "--port", str(port), "--k", str(k),
           "--n", str(n), "--ms", f"{ms:g}", "--deadline", f"{deadline:g}"]
    if switch_interval:
        cmd += ["--switch-interval", f"{switch_interval:g}"]
    if col.name in trees:
        cmd += ["--tree", trees[col.name]]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=deadline + 120, env=child_env(),
                           cwd=str(ROOT))
    except subprocess.TimeoutExpired:
        return {"column": col.name, "k": k, "failed": f"the child did not exit within {deadline + 120:.0f} s"}
    if p.returncode:
        return {"column": col.name, "k": k, "failed": p.stderr.strip()[-1500:]}
    return json.loads(p.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run(settings: Dict[str, Any], only: str = "", sdk: bool = True, compare_tree: str = "") -> Dict[str, Any]:
    """Every round, K and column; returns the raw cells and the summary. ``sdk=False`` leaves the SDK columns out."""
    ks: List[int] = settings["ks"]
    n, ms, rounds = settings["n"], settings["ms"], settings["rounds"]
    cols = [c for c in COLUMNS if importable(c.modules) and (sdk or c.kind != "sdk")]
    trees: Dict[str, str] = {}
    if compare_tree:
        tree = str(Path(compare_tree).resolve())
        if not (Path(tree) / "llm_sync" / "__init__.py").is_file():
            raise SystemExit(f"--compare-tree {compare_tree}: no llm_sync package there")
        extra = [c._replace(name=f"{c.name}{TREE_MARK}{Path(tree).name}]") for c in cols if c.kind == "llm_sync"]
        trees = {c.name: tree for c in extra}
        at = max(i for i, c in enumerate(cols) if c.kind == "llm_sync") + 1
        cols = cols[:at] + extra + cols[at:]
    if only:
        want = [w.strip().lower() for w in only.split("|") if w.strip()]
        cols = [c for c in cols if c.kind in ("floor", "baseline", "probe") or any(w in c.name.lower() for w in want)]
    raise_file_limit()
    ideal = n * ms / 1e3
    srv, port = start_server()
    cells: List[Dict[str, Any]] = []
    t0 = time.perf_counter()
    try:
        server_stats(srv)
        for rnd in range(rounds):
            for ki, k in enumerate(ks):
                order = [c for c in cols if k <= c.max_k]
                shift = (rnd + ki) % max(1, len(order))
                for col in order[shift:] + order[:shift]:
                    # However late on 2 cores: a deadline that only a stuck stream misses.
                    deadline = max(60.0, 10 * ideal) + k * n * 400e-6
                    cell = run_cell(col, port, k, n, ms, deadline, trees, settings.get("switch_interval"))
                    cell["round"] = rnd
                    cell["server"] = server_stats(srv)
                    cells.append(cell)
                    if "failed" in cell:
                        log(f"  fanout r{rnd + 1} K={k} {col.name}: FAILED {cell['failed'][-300:]}")
                    else:
                        log(f"  fanout r{rnd + 1} K={k} {col.name}: {cell['cpu_us_per_chunk'] or 0:.0f} µs/chunk, "
                            f"lag p50 {cell['lag_ms_p50'] or 0:.0f} ms, errors {cell['errors']}, "
                            f"short {cell['short']}, hung {cell['hung']}, late {cell['late_unfinished']}, "
                            f"server late p99 {cell['server']['late_p99_ms']:.1f} ms, every stream started after "
                            f"{cell['all_started_s'] or 0:.2f} s")
    finally:
        stop_server(srv)
    elapsed = time.perf_counter() - t0
    return {"settings": dict(settings), "columns": [c.name for c in cols], "cells": cells,
            "elapsed_s": elapsed, "summary": summarize(cols, ks, rounds, cells)}


def _stats(xs: List[float]) -> Optional[Dict[str, float]]:
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def summarize(cols: List[Column], ks: List[int], rounds: int, cells: List[Dict[str, Any]]) -> Dict[str, Any]:
    by: Dict[Tuple[int, int, str], Dict[str, Any]] = {}
    for c in cells:
        if "failed" not in c:
            by[(c["round"], c["k"], c["column"])] = c
    out: Dict[str, Any] = {}
    for k in ks:
        rows: Dict[str, Any] = {}
        for col in cols:
            got = [by[(r, k, col.name)] for r in range(rounds) if (r, k, col.name) in by]
            failed = [c for c in cells if c["k"] == k and c["column"] == col.name and "failed" in c]
            if not got:
                rows[col.name] = {"not_run": k > col.max_k, "failed": len(failed)}
                continue
            row: Dict[str, Any] = {
                "cpu_us": _stats([c["cpu_us_per_chunk"] for c in got]),
                "sys_share": _stats([c["sys_share"] for c in got]),
                "switches": _stats([c.get("switches_per_chunk") for c in got]),
                "lag_ms_p50": _stats([c["lag_ms_p50"] for c in got]),
                "lag_ms_max": _stats([c["lag_ms_max"] for c in got]),
                "all_started_s": _stats([c["all_started_s"] for c in got]),
                "errors": [c["errors"] for c in got], "short": [c["short"] for c in got],
                "hung": [c["hung"] for c in got], "late": [c["late_unfinished"] for c in got],
                "error_samples": sorted({e for c in got for e in c["error_samples"]})[:3],
                "peak_rss_mib": _stats([c["peak_rss_mib"] for c in got]),
                "rss_per_stream_kib": _stats([c["rss_per_stream_kib"] for c in got]),
                "peak_threads": max(c["peak_threads"] for c in got),
                "readers_left": max(c["readers_left"] for c in got),
                "server_late_p99_ms": _stats([c["server"]["late_p99_ms"] for c in got]),
                "server_cpu_s": _stats([c["server"]["cpu_s"] for c in got]),
                "failed": len(failed), "rounds": len(got),
            }
            pairs = [("x_baseline", BASELINE[col.api]), ("x_async_openai", ASYNC_OPENAI), ("x_probe", PROBE)]
            if TREE_MARK in col.name:
                pairs.append(("x_this_tree", col.name.split(TREE_MARK)[0]))  # the other tree ÷ this one
            for label, other in pairs:
                rs = [by[(r, k, col.name)]["cpu_us_per_chunk"] / by[(r, k, other)]["cpu_us_per_chunk"]
                      for r in range(rounds) if (r, k, col.name) in by and (r, k, other) in by
                      and by[(r, k, col.name)]["cpu_us_per_chunk"] and by[(r, k, other)]["cpu_us_per_chunk"]]
                row[label] = _stats(rs)
            rows[col.name] = row
        out[str(k)] = rows
    return out


def fmt(s: Optional[Dict[str, float]], digits: int = 0) -> str:
    if not s:
        return "–"
    if s["n"] == 1:
        return f"{s['median']:.{digits}f}"
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}–{s['max']:.{digits}f})"


def report(F: Dict[str, Any]) -> str:
    st = F["settings"]
    L = [f"## Fan-out at a real pace: K streams × {st['n']} events, one every {st['ms']} ms, each client in a fresh "
         f"process ({st['rounds']} rounds interleaved; median (min–max) over rounds; ratios within each round; "
         f"{F['elapsed_s']:.0f} s; every client's switch interval "
         f"{'%g ms' % (st['switch_interval'] * 1e3) if st.get('switch_interval') else 'the default 5 ms'})", "",
         "CPU µs/chunk is the client process's user + system time from release to the end of its streams, over "
         "the text chunks it received. Lag: how long after its ideal end (n × ms after the release, + up to one ms "
         "of the server's phase) a stream ended, median over streams and the worst stream. All started: when "
         "the last stream's first chunk arrived, from the release. Unfinished at the deadline: hung (nothing for 10 s) "
         "/ late (still flowing). Server late p99: how late the server's sends went out against its schedule. "
         "Context switches: the process's voluntary and involuntary ones (getrusage) over the text chunks. "
         "The probe is not a peer: the baseline behind a reader thread and a queue, llm_sync's shape and nothing "
         "else; × the probe is what llm_sync costs beyond the hand-off its design pays for.", ""]
    for k, rows in F["summary"].items():
        L += [f"### K = {int(k):,}", "",
              "| client | CPU µs/chunk | × requests+sseclient (same format) | × AsyncOpenAI | × the probe | system share | "
              "context switches per chunk | "
              "lag p50 ms | worst lag ms | all started s | errors | short | hung / late | peak RSS MiB | RSS KiB per stream | "
              "peak threads | readers left | server late p99 ms | CPU × the same column of this tree |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for name, r in rows.items():
            if "cpu_us" not in r:
                why = "not run at this K (see bench/fanout.py)" if r.get("not_run") else f"failed {r['failed']}×"
                L.append(f"| {name} | {why} |" + " |" * 17)
                continue
            hl = "/".join(f"{h}/{lt}" for h, lt in zip(r["hung"], r["late"]))
            errs = ",".join(map(str, r["errors"])) + (f" ({r['error_samples'][0][:80]})" if r["error_samples"] else "")
            L.append(f"| {name} | {fmt(r['cpu_us'])} | {fmt(r['x_baseline'], 2)} | {fmt(r['x_async_openai'], 2)} | {fmt(r['x_probe'], 2)} | "
                     f"{fmt(r['sys_share'], 2)} | {fmt(r['switches'], 1)} | {fmt(r['lag_ms_p50'])} | {fmt(r['lag_ms_max'])} | "
                     f"{fmt(r['all_started_s'], 2)} | {errs} | "
                     f"{','.join(map(str, r['short']))} | {hl} | {fmt(r['peak_rss_mib'])} | "
                     f"{fmt(r['rss_per_stream_kib'])} | {r['peak_threads']} | "
                     f"{r['readers_left'] if r['readers_left'] >= 0 else '–'} | {fmt(r['server_late_p99_ms'], 1)} | "
                     f"{fmt(r.get('x_this_tree'), 2)} |")
        L.append("")
    return "\n".join(L) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="K = 64, 256, one round")
    ap.add_argument("--smoke", action="store_true", help="the smallest settings (the test suite's)")
    ap.add_argument("--ks", help="comma-separated K (default 64,256,1024,2048)")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--no-sdk", action="store_true", help="leave the SDK columns out (the smoke run does)")
    ap.add_argument("--only", default="", help="'|'-separated substrings of column names to keep "
                    "(the floor and the baselines always stay)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"), help="directory for <stamp>-fanout.md/.json")
    ap.add_argument("--compare-tree", default="", help="a checkout of another commit: its llm_sync runs as "
                    "extra columns in the same rounds (before/after)")
    ap.add_argument("--switch-interval", type=float, default=None,
                    help="sys.setswitchinterval(S) in every client process (full and quick: 0.05; 0: the "
                    "interpreter's own, 0.005)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--tree", default="", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--k", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=150, help=argparse.SUPPRESS)
    ap.add_argument("--ms", type=float, default=20, help=argparse.SUPPRESS)
    ap.add_argument("--deadline", type=float, default=120, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        out = child(args)
        print(json.dumps(out), flush=True)
        sys.stderr.flush()
        os._exit(0)  # a hung stream's thread must not hold the process open
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    st = dict(MODES[mode])
    if args.ks:
        st["ks"] = [int(x) for x in args.ks.split(",")]
    if args.rounds:
        st["rounds"] = args.rounds
    if args.switch_interval is not None:
        st["switch_interval"] = args.switch_interval
    F = run(st, args.only, sdk=not (args.no_sdk or mode == "smoke"), compare_tree=args.compare_tree)
    md = f"# llm_sync fan-out benchmark {time.strftime('%Y-%m-%d %H:%M:%S')} ({mode})\n\n" \
         f"Command: `python -m bench.fanout {' '.join(argv if argv is not None else sys.argv[1:])}`\n\n" + report(F)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S") + "-fanout" + ("" if mode == "full" else "-" + mode)
    (out / f"{stamp}.json").write_text(json.dumps(F, indent=1, default=str))
    (out / f"{stamp}.md").write_text(md)
    print(md)
    log(f"wrote {out / stamp}.md and .json in {F['elapsed_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
