# ruff: noqa: RUF001, RUF002, RUF003  (the tables use × and – on purpose)
"""The benchmark run: every section, clients interleaved round-robin, ratios to the baseline of the same round.

One process runs the sections against one server subprocess (``bench.server``) on
127.0.0.1, some of them through fresh child processes (named below). In each
repetition every client is measured once, in an order rotated every repetition; a
ratio is taken within the repetition (client / baseline of the same wire format in
that round; in the throughput section, a baseline run made right before or after
the client's) and the median of those ratios is reported, so the machine's drift
cancels. Figures are medians with (min–max).

Sections: throughput (per-chunk wall and CPU µs, event and bulk framing), ttfc
(warm and cold), concurrency (32 and 256 streams in threads; fresh process each
round, warmed up until its open connections stop growing; with the probe of
``bench.fanout`` as a column), rss (peak growth during one stream, iterating and
collect(); fresh process each), import (import time, and import + first stream;
fresh interpreter each), close (close latency on a silent server, and abandoned
streams), fanout (K streams at a real pace, each client in a fresh process, against
``bench.paced``; see ``bench/fanout.py``), local (``llm-sync chat -m local`` against
raw HTTP to the same embedded llama.cpp server, and the model's load time; see
``bench/local.py``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from bench import clients as C
from bench import fanout, local, wire
from bench.release import Gates

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
SECTIONS = ("throughput", "ttfc", "concurrency", "rss", "import", "close", "fanout", "local")

# name -> settings; "smoke" is what tests/test_bench_smoke.py runs.
MODES: Dict[str, Dict[str, Any]] = {
    "full": dict(reps=5, throughput_reps=15, n=20000, ttfc_calls=20, cold_calls=3, conc=[(32, 2000), (256, 250)],
                 conc_reps=5, rss_reps=3, import_reps=7, close_trials=200, abandon_trials=20),
    "quick": dict(reps=2, throughput_reps=3, n=5000, ttfc_calls=5, cold_calls=1, conc=[(32, 500), (256, 50)],
                  conc_reps=2, rss_reps=1, import_reps=3, close_trials=50, abandon_trials=5),
    "smoke": dict(reps=1, throughput_reps=1, n=300, ttfc_calls=2, cold_calls=1, conc=[(4, 50), (16, 10)],
                  conc_reps=1, rss_reps=1, import_reps=1, close_trials=5, abandon_trials=2),
}

Stats = Dict[str, float]


# ---------------------------------------------------------------------------
# small helpers


def log(*parts: Any) -> None:
    print(*parts, file=sys.stderr, flush=True)


def url(port: int, n: int, framing: str = "event", stall: float = 0) -> str:
    extra = f",stall={stall:g}" if stall else ""
    return f"http://127.0.0.1:{port}/n={n},framing={framing}{extra}"


def stats(xs: Sequence[float]) -> Stats:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def pct(xs: Sequence[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


def rotated(items: List[Any], k: int) -> List[Any]:
    k %= max(1, len(items))
    return items[k:] + items[:k]


def status_kb(*keys: str) -> Dict[str, int]:
    """Fields of /proc/self/status in kB (Linux); empty elsewhere."""
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


def reset_peak_rss() -> bool:
    """Make VmHWM start again from the current RSS (Linux 4.0+)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def socket_count() -> int:
    n = 0
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return -1
    for name in names:
        try:
            if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                n += 1
        except OSError:
            pass
    return n


def readers() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("llm_sync-"))


def wait_until(cond: Callable[[], bool], seconds: float, step: float = 0.0005) -> float:
    """Seconds until ``cond()`` held (polled), or -1 if it never did within ``seconds``."""
    t0 = time.perf_counter()
    while True:
        if cond():
            return time.perf_counter() - t0
        if time.perf_counter() - t0 > seconds:
            return -1.0
        time.sleep(step)


def run_once(client: C.Client, base: str, n: int) -> Tuple[int, Optional[float]]:
    """One stream read to its end: (text chunks, perf_counter() at the first one)."""
    it = iter(client.fn(base, n))
    t_first = None
    count = 0
    for _ in it:
        t_first = time.perf_counter()
        count = 1
        break
    for _ in it:
        count += 1
    return count, t_first


def child_env() -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.setdefault("NO_PROXY", "127.0.0.1,localhost")
    return env


def start_server(prerender: Iterable[int]) -> Tuple[subprocess.Popen, int]:  # type: ignore[type-arg]
    p = subprocess.Popen(
        [sys.executable, "-m", "bench.server", "--max-seconds", "3600",
         "--prerender", ",".join(str(n) for n in sorted(set(prerender)))],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=child_env(), cwd=str(ROOT))
    assert p.stdout is not None
    line = p.stdout.readline()
    if not line.startswith("READY"):
        p.kill()
        p.wait()
        raise RuntimeError(f"the bench server did not start: {line!r}")
    return p, int(line.split()[1])


def stop_server(p: subprocess.Popen) -> None:  # type: ignore[type-arg]
    try:
        if p.stdin is not None:
            p.stdin.close()  # the server leaves when its stdin closes
        p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    if p.stdout is not None:
        p.stdout.close()


# ---------------------------------------------------------------------------
# sections


def verify(cl: List[C.Client], port: int) -> None:
    """Every client yields exactly the text the server sent, in both framings, before timing."""
    for c in cl:
        for framing in ("event", "bulk"):
            for n in (1, 137):
                got = list(c.fn(url(port, n, framing), n))
                ok = len(got) == n and (not got or not isinstance(got[0], str)
                                        or "".join(got) == wire.expected_text(n))
                if not ok:
                    raise SystemExit(f"{c.name} read the wrong stream (framing={framing}, n={n}): "
                                     f"{len(got)} chunks")
        if c.collect is not None and c.collect(url(port, 137), 137) != wire.expected_text(137):
            raise SystemExit(f"{c.name}: collect() returned the wrong text")


def bench_throughput(cl: List[C.Client], port: int, n: int, reps: int, framing: str) -> Dict[str, Any]:
    """Per-chunk cost; every other client is paired with a run of its format's baseline next to it.

    The machine's speed drifts within a round of all the clients (seconds); a ratio
    to a baseline run made just before or after (alternately) cancels more of it.
    """
    base = url(port, n, framing)
    res: Dict[str, Any] = {c.name: {"wall_us": [], "cpu_us": [], "paired_wall_us": [], "paired_cpu_us": []}
                           for c in cl}
    baselines = {c.api: c for c in cl if c.name == C.BASELINE[c.api]}

    def measure(c: C.Client) -> Tuple[float, float]:
        gc.collect()
        w0, c0 = time.perf_counter(), time.process_time()
        count, _ = run_once(c, base, n)
        w, cpu = time.perf_counter() - w0, time.process_time() - c0
        if count != n:
            raise RuntimeError(f"{c.name}: {count} chunks instead of {n}")
        return w / n * 1e6, cpu / n * 1e6

    for rep in range(reps):
        for c in rotated(cl, rep):
            b = baselines.get(c.api)
            pair = [c] if b is None or b is c else [c, b] if rep % 2 == 0 else [b, c]
            for x in pair:
                w, cpu = measure(x)
                keys = ("wall_us", "cpu_us") if x is c else ("paired_wall_us", "paired_cpu_us")
                res[c.name][keys[0]].append(w)
                res[c.name][keys[1]].append(cpu)
        log(f"  throughput {framing} {rep + 1}/{reps}: "
            + ", ".join(f"{short(c.name)}={res[c.name]['wall_us'][-1]:.1f}" for c in cl))
    return res


def bench_ttfc(cl: List[C.Client], port: int, reps: int, calls: int, cold_calls: int) -> Dict[str, Any]:
    base = url(port, 1)
    res: Dict[str, Any] = {c.name: {"warm_ms": [], "warm_total_ms": [], "cold_ms": []} for c in cl}
    for rep in range(reps):
        for c in rotated(cl, rep):
            run_once(c, base, 1)  # a client object and a pooled connection exist
            firsts, totals = [], []
            for _ in range(calls):
                t0 = time.perf_counter()
                _, tf = run_once(c, base, 1)
                t1 = time.perf_counter()
                firsts.append(((tf or t1) - t0) * 1e3)
                totals.append((t1 - t0) * 1e3)
            res[c.name]["warm_ms"].append(statistics.median(firsts))
            res[c.name]["warm_total_ms"].append(statistics.median(totals))
            cold = []
            for _ in range(cold_calls):
                C.reset()  # new client object (provider), new connection
                gc.collect()
                t0 = time.perf_counter()
                _, tf = run_once(c, base, 1)
                cold.append(((tf or time.perf_counter()) - t0) * 1e3)
            res[c.name]["cold_ms"].append(statistics.median(cold))
        log(f"  ttfc {rep + 1}/{reps}: " + ", ".join(
            f"{short(c.name)}={res[c.name]['warm_ms'][-1]:.3f}/{res[c.name]['cold_ms'][-1]:.2f}" for c in cl))
    C.reset()
    return res


def _round(c: C.Client, base: str, threads: int, n: int) -> Dict[str, Any]:
    """``threads`` new threads, released together, one ``n``-chunk stream each."""
    gates = Gates(threads)
    counts = [0] * threads
    errors: List[str] = []

    def work(i: int) -> None:
        try:
            gates.wait(i)
            counts[i] = run_once(c, base, n)[0]
        except BaseException as exc:  # reported, never hidden
            errors.append(f"{type(exc).__name__}: {exc}")

    before_threads = threading.active_count()
    pool = [threading.Thread(target=work, args=(i,), name=f"bench-{i}", daemon=True) for i in range(threads)]
    for t in pool:
        t.start()
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while True:
            k = threading.active_count() - 1  # not counting this sampler
            if k > peak[0]:
                peak[0] = k
            if done.wait(0.005):
                return

    sampler = threading.Thread(target=sample, name="bench-sampler", daemon=True)
    gc.collect()
    rss0 = status_kb("VmRSS").get("VmRSS", 0)
    has_peak = reset_peak_rss()
    sampler.start()
    c0 = time.process_time()
    gates.open_all()
    t0 = time.perf_counter()
    for t in pool:
        t.join()
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    done.set()
    sampler.join()
    st = status_kb("VmHWM", "VmRSS")
    total = sum(counts)
    left = wait_until(lambda: threading.active_count() <= before_threads, 2.0, 0.002)
    return {
        "chunks_per_s": total / wall, "wall_s": wall, "cpu_s": cpu, "chunks": total,
        "expected": threads * n, "errors": errors[:5], "error_count": len(errors),
        "peak_threads": peak[0], "threads_before": before_threads,
        "threads_left": max(0, threading.active_count() - before_threads) if left < 0 else 0,
        "peak_rss_mib": st.get("VmHWM", 0) / 1024 if has_peak else None,
        "rss_growth_mib": (st.get("VmHWM", 0) - rss0) / 1024 if has_peak else None,
    }


def bench_concurrency(cl: List[C.Client], port: int, threads: int, n: int, reps: int) -> Dict[str, Any]:
    """Each client's rounds in a fresh process (``child_concurrency``), clients interleaved.

    In this long-lived process, after the other sections, the same rounds ran up to five
    times slower for llm_sync and far less steadily than in a fresh one; a client's
    result should not depend on what ran before it.
    """
    res: Dict[str, Any] = {c.name: {"rounds": []} for c in cl}
    after = {"sockets_left": 0, "threads_left": 0}
    for rep in range(reps):
        for c in rotated(cl, rep):
            got = _child("concurrency", c, port, ["--threads", str(threads), "--n", str(n)])
            res[c.name]["rounds"].append(got)
            for key in after:
                after[key] = max(after[key], got["after"][key])
        log(f"  concurrency {threads}x{n} {rep + 1}/{reps}: " + ", ".join(
            f"{short(c.name)}={res[c.name]['rounds'][-1]['chunks_per_s']:.0f}/s" for c in cl))
    res["_after"] = after
    return res


# Not a peer, and a column of the concurrency section only: the baseline behind a
# reader thread and a queue, so that llm_sync ÷ it is what llm_sync costs beyond the
# hand-off (as in bench.fanout; see bench.clients.reader_thread_probe).
PROBE = C.Client(fanout.PROBE, C.reader_thread_probe, "openai", "probe", ("requests", "sseclient"))
# Warm-up rounds a concurrency child runs at most before its measured round.
WARMUP_ROUNDS = 4


def child_concurrency(args: argparse.Namespace) -> Dict[str, Any]:
    """In a fresh process: warm-up rounds until the open connections stop growing, then the measured one.

    One warm-up round is not enough for a client that shares one connection pool
    across its threads: in its first round few streams overlap (each starts while
    the others run), so few connections are opened, and its second round opened
    ~170 more against 256 streams while clients with a session per thread had
    opened theirs all in the first. Counting the sockets left open after each
    round finds the round where the pool stopped growing, for every client alike.
    """
    import logging

    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)  # as in main()
    c = by_name(args.client)
    for m in c.modules:
        __import__(m)
    base = url(args.port, args.n)
    sockets0, threads0 = socket_count(), threading.active_count()
    pooled = [0]
    for _ in range(WARMUP_ROUNDS):
        _round(c, base, args.threads, args.n)
        pooled.append(socket_count() - sockets0)
        if pooled[-1] - pooled[-2] <= max(2, pooled[-2] // 50):
            break
    gc.collect()
    if hasattr(gc, "freeze"):
        gc.freeze()
    got = _round(c, base, args.threads, args.n)
    got["warmup_rounds"] = len(pooled) - 1
    got["sockets_open"] = {"after_warmup": pooled[-1], "after_round": socket_count() - sockets0}
    C.reset()
    gc.collect()
    wait_until(lambda: socket_count() <= sockets0 and threading.active_count() <= threads0, 3.0, 0.01)
    got["after"] = {"sockets_left": socket_count() - sockets0, "threads_left": threading.active_count() - threads0}
    return got


def child_rss(args: argparse.Namespace) -> Dict[str, Any]:
    """In a fresh process: warm up on 1-chunk streams, then peak RSS growth during one stream."""
    c = by_name(args.client)
    one = url(args.port, 1)
    for _ in range(2):
        if args.mode == "collect":
            assert c.collect is not None
            c.collect(one, 1)
        else:
            run_once(c, one, 1)
    gc.collect()
    before = status_kb("VmRSS")["VmRSS"]
    reset_peak_rss()
    w0 = time.perf_counter()
    if args.mode == "collect":
        assert c.collect is not None
        got = len(c.collect(url(args.port, args.n), args.n)) == len(wire.expected_text(args.n))
    else:
        got = run_once(c, url(args.port, args.n), args.n)[0] == args.n
    wall = time.perf_counter() - w0
    st = status_kb("VmRSS", "VmHWM")
    if not got:
        raise SystemExit(f"{c.name} read the wrong stream")
    return {"peak_growth_kb": st["VmHWM"] - before, "retained_kb": st["VmRSS"] - before,
            "rss_before_kb": before, "us_per_chunk": wall / args.n * 1e6}


def child_first(args: argparse.Namespace) -> Dict[str, Any]:
    """In a fresh process: import the client's modules, then its first 1-chunk stream."""
    c = by_name(args.client)
    t0 = time.perf_counter()
    for m in c.modules:
        __import__(m)
    t_import = time.perf_counter()
    count, tf = run_once(c, url(args.port, 1), 1)
    t_end = time.perf_counter()
    return {"import_ms": (t_import - t0) * 1e3, "first_chunk_ms": ((tf or t_end) - t0) * 1e3,
            "whole_ms": (t_end - t0) * 1e3, "count": count}


def _child(kind: str, c: C.Client, port: int, extra: List[str]) -> Dict[str, Any]:
    cmd = [sys.executable, "-m", "bench", "--child", kind, "--client", c.name, "--port", str(port), *extra]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=child_env(), cwd=str(ROOT))
    if p.returncode:
        raise RuntimeError(f"child {kind} for {c.name} failed: {p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def bench_rss(cl: List[C.Client], port: int, n: int, reps: int) -> Dict[str, Any]:
    res: Dict[str, Any] = {}
    jobs = [(c, mode) for c in cl for mode in ("iterate", "collect")
            if c.kind in ("baseline", "llm_sync", "sdk") and (mode == "iterate" or c.collect is not None)]
    for rep in range(reps):
        for c, mode in rotated(jobs, rep):
            got = _child("rss", c, port, ["--n", str(n), "--mode", mode])
            res.setdefault(c.name, {}).setdefault(mode, []).append(got)
        log(f"  rss {rep + 1}/{reps}")
    return res


def bench_import(cl: List[C.Client], port: int, reps: int) -> Dict[str, Any]:
    sets: List[Tuple[str, ...]] = [("requests", "sseclient"), ("llm_sync",)]
    sets += [c.modules for c in cl if c.kind == "sdk"]
    firsts = [c for c in cl if c.kind in ("baseline", "llm_sync", "sdk")]
    imp: Dict[str, List[float]] = {", ".join(s): [] for s in sets}
    first: Dict[str, List[Dict[str, Any]]] = {c.name: [] for c in firsts}
    env = child_env()
    for rep in range(reps):
        for mods in rotated(sets, rep):
            code = ("import time; t = time.perf_counter(); import " + ", ".join(mods)
                    + "; print(time.perf_counter() - t)")
            p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                               cwd=str(ROOT), timeout=120, check=True)
            imp[", ".join(mods)].append(float(p.stdout.strip()) * 1e3)
        for c in rotated(firsts, rep):
            first[c.name].append(_child("first", c, port, []))
        log(f"  import {rep + 1}/{reps}: " + ", ".join(f"{k}={v[-1]:.1f}ms" for k, v in imp.items()))
    return {"import_ms": imp, "first": first}


def bench_close(cl: List[C.Client], port: int, trials: int, abandon_trials: int) -> Dict[str, Any]:
    """Close latency of a stream whose reader is blocked on a silent server, and abandoned streams."""
    from llm_sync import LlmResponse

    text_cls = LlmResponse.Text
    res: Dict[str, Any] = {}
    for c in (c for c in cl if c.kind == "llm_sync"):
        make = C.anthropic_provider if c.api == "anthropic" else C.compatible_provider
        silent = make(url(port, 1, stall=30))
        fast = make(url(port, 20000))
        sockets0 = socket_count()

        def first_text(provider: Any) -> Any:
            # next() on the stream itself, not a for loop: dropping a for loop's generator
            # closes the stream, and an abandoned stream must be left to its finalizer.
            stream = provider.stream_response(C._ctx())
            while not isinstance(next(stream), text_cls):
                pass
            return stream

        close_ms, exit_ms = [], []
        for _ in range(trials):
            stream = first_text(silent)
            time.sleep(0.001)  # let the reader reach its blocking recv
            t0 = time.perf_counter()
            stream.close()
            close_ms.append((time.perf_counter() - t0) * 1e3)
            gone = wait_until(lambda: readers() == 0, 2.0)
            exit_ms.append((time.perf_counter() - t0) * 1e3 if gone >= 0 else float("inf"))
            del stream
        out: Dict[str, Any] = {"close_ms": close_ms, "reader_gone_ms": exit_ms}

        # Abandoned: the last reference dropped without close(); the finalizer stops the reader.
        for label, provider in (("silent", silent), ("fast", fast)):
            gone_ms = []
            for _ in range(abandon_trials):
                stream = first_text(provider)
                time.sleep(0.002)
                t0 = time.perf_counter()
                del stream
                gone = wait_until(lambda: readers() == 0, 2.0)
                gone_ms.append((time.perf_counter() - t0) * 1e3 if gone >= 0 else float("inf"))
            out[f"abandoned_{label}_gone_ms"] = gone_ms

        # Abandoned inside a reference cycle: alive until the cyclic GC runs. What it costs
        # meanwhile: a parked reader thread (polling the full queue) and the queued chunks.
        gc.collect()
        gc.disable()
        try:
            rss0 = status_kb("VmRSS").get("VmRSS", 0)
            stream = first_text(fast)
            cycle: List[Any] = [stream]
            cycle.append(cycle)
            del stream, cycle
            time.sleep(0.3)  # the reader fills the bounded queue and parks
            c0 = time.process_time()
            time.sleep(1.0)
            out["cycle_parked_cpu_ms_per_s"] = (time.process_time() - c0) * 1e3
            out["cycle_readers_alive"] = readers()
            out["cycle_rss_kib"] = status_kb("VmRSS").get("VmRSS", 0) - rss0
            t0 = time.perf_counter()
            gc.collect()
            gone = wait_until(lambda: readers() == 0, 2.0)
            out["cycle_gone_after_gc_ms"] = (time.perf_counter() - t0) * 1e3 if gone >= 0 else None
        finally:
            gc.enable()
        del silent, fast
        C.reset()
        gc.collect()
        wait_until(lambda s0=sockets0: socket_count() <= s0 and readers() == 0, 2.0, 0.01)  # type: ignore[misc]
        out["readers_left"] = readers()
        out["sockets_left"] = socket_count() - sockets0
        res[c.name] = out
        log(f"  close {short(c.name)}: p50={pct(close_ms, 50):.2f} p99={pct(close_ms, 99):.2f} "
            f"max={max(close_ms):.2f} ms")
    return res


# ---------------------------------------------------------------------------
# reporting


def short(name: str) -> str:
    return name.replace("llm_sync ", "").replace("requests + sseclient-py", "req+sse")[:24]


def by_name(name: str) -> C.Client:
    for c in [*C.all_clients(), PROBE]:
        if c.name == name:
            return c
    raise SystemExit(f"no client named {name!r}")


def fmt(s: Optional[Stats], digits: int = 1) -> str:
    if not s:
        return "–"
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}–{s['max']:.{digits}f})"


def per_rep(a: Sequence[float], b: Sequence[float], op: Callable[[float, float], float]) -> Optional[Stats]:
    if not a or not b:
        return None
    return stats([op(x, y) for x, y in zip(a, b)])


def ratio(a: Sequence[float], b: Sequence[float]) -> Optional[Stats]:
    return per_rep(a, b, lambda x, y: x / y)


def summarize(cl: List[C.Client], R: Dict[str, Any]) -> Dict[str, Any]:
    """The derived figures (ratios, percentiles) and the targets of issue 10."""
    names = {c.name for c in cl}
    S: Dict[str, Any] = {}
    targets: List[Dict[str, Any]] = []

    def target(what: str, value: Optional[float], limit: float, ok: Optional[bool], unit: str = "") -> None:
        targets.append({"target": what, "value": value, "limit": limit, "unit": unit,
                        "ok": ok if value is not None else None})

    T = R.get("throughput")
    if T:
        for framing, res in T.items():
            for c in cl:
                row = S.setdefault("throughput", {}).setdefault(framing, {}).setdefault(c.name, {})
                row["wall_us"] = stats(res[c.name]["wall_us"])
                row["cpu_us"] = stats(res[c.name]["cpu_us"])
                row["x_floor"] = ratio(res[c.name]["wall_us"], res[C.FLOOR]["wall_us"])
                row["x_json_floor"] = ratio(res[c.name]["wall_us"], res[C.JSON_FLOOR[c.api]]["wall_us"])
                # Against the baseline runs made next to this client's (the baseline itself: 1).
                own, b = res[c.name], res[C.BASELINE[c.api]]
                row["x_baseline"] = ratio(own["wall_us"], own.get("paired_wall_us") or b["wall_us"])
                row["x_baseline_cpu"] = ratio(own["cpu_us"], own.get("paired_cpu_us") or b["cpu_us"])
                sdk = C.SDK_FOR[c.api]
                if sdk in names:
                    row["sdk_over_this"] = ratio(res[sdk]["wall_us"], res[c.name]["wall_us"])
        for c in (c for c in cl if c.kind == "llm_sync"):
            for framing in T:
                r = S["throughput"][framing][c.name]["x_baseline"]["median"]
                target(f"{c.name}: wall µs/chunk ({framing} framing) × requests+sseclient", r, 1.5, r <= 1.5, "×")
            sdk = S["throughput"]["event"][c.name].get("sdk_over_this")
            need = 2.0 if c.api == "anthropic" else 8.0
            target(f"{c.name}: {C.SDK_FOR[c.api]} µs/chunk ÷ ours (event framing)",
                   sdk["median"] if sdk else None, need, bool(sdk and sdk["median"] >= need), "× faster")
    T = R.get("ttfc")
    if T:
        for c in cl:
            row = S.setdefault("ttfc", {}).setdefault(c.name, {})
            row["warm_ms"] = stats(T[c.name]["warm_ms"])
            row["warm_total_ms"] = stats(T[c.name]["warm_total_ms"])
            row["cold_ms"] = stats(T[c.name]["cold_ms"])
            base = T[C.BASELINE[c.api]]
            row["warm_minus_baseline_ms"] = per_rep(T[c.name]["warm_ms"], base["warm_ms"], lambda x, y: x - y)
            row["cold_minus_baseline_ms"] = per_rep(T[c.name]["cold_ms"], base["cold_ms"], lambda x, y: x - y)
        for c in (c for c in cl if c.kind == "llm_sync"):
            d = S["ttfc"][c.name]["warm_minus_baseline_ms"]["median"]
            target(f"{c.name}: warm TTFC − requests+sseclient", d, 0.3, d <= 0.3, "ms")
    T = R.get("concurrency")
    if T:
        for key, res in T.items():
            for c in [*cl, PROBE]:
                if c.name not in res:
                    continue
                rounds = res[c.name]["rounds"]
                base_rounds = res[C.BASELINE[c.api]]["rounds"]
                row = S.setdefault("concurrency", {}).setdefault(key, {}).setdefault(c.name, {})
                row["chunks_per_s"] = stats([r["chunks_per_s"] for r in rounds])
                row["x_baseline"] = ratio([r["chunks_per_s"] for r in rounds],
                                          [r["chunks_per_s"] for r in base_rounds])
                if c.kind == "llm_sync" and PROBE.name in res:
                    row["x_probe"] = ratio([r["chunks_per_s"] for r in rounds],
                                           [r["chunks_per_s"] for r in res[PROBE.name]["rounds"]])
                row["warmup_rounds"] = stats([r["warmup_rounds"] for r in rounds])
                row["pooled"] = stats([r["sockets_open"]["after_warmup"] for r in rounds])
                row["cpu_s"] = stats([r["cpu_s"] for r in rounds])
                row["peak_threads"] = max(r["peak_threads"] for r in rounds)
                row["threads_before"] = rounds[0]["threads_before"]
                growth = [r["rss_growth_mib"] for r in rounds if r["rss_growth_mib"] is not None]
                row["rss_growth_mib"] = stats(growth) if growth else None
                peak = [r["peak_rss_mib"] for r in rounds if r["peak_rss_mib"] is not None]
                row["peak_rss_mib"] = max(peak) if peak else None
                row["errors"] = sum(r["error_count"] for r in rounds)
                row["short_rounds"] = sum(1 for r in rounds if r["chunks"] != r["expected"])
                row["threads_left"] = max(r["threads_left"] for r in rounds)
            S["concurrency"][key]["_after"] = res["_after"]
        keys = list(T)
        for c in (c for c in cl if c.kind == "llm_sync"):
            if keys:
                r = S["concurrency"][keys[0]][c.name]["x_baseline"]["median"]
                target(f"{c.name}: {keys[0]} streams, chunks/s × requests+sseclient", r, 0.8, r >= 0.8, "×")
            for key in keys[1:]:
                r = S["concurrency"][key][c.name]["x_baseline"]["median"]
                target(f"{c.name}: {key} streams, chunks/s × requests+sseclient", r, 0.9, r >= 0.9, "×")
                row = S["concurrency"][key][c.name]
                after = S["concurrency"][key]["_after"]
                bad = row["errors"] + row["short_rounds"] + row["threads_left"] + max(0, after["sockets_left"])
                target(f"{c.name}: {key} streams: errors + short streams + threads/sockets left", bad, 0, bad == 0)
    T = R.get("rss")
    if T:
        for name, modes in T.items():
            for mode, rows in modes.items():
                S.setdefault("rss", {}).setdefault(name, {})[mode] = {
                    "peak_growth_mib": stats([r["peak_growth_kb"] / 1024 for r in rows]),
                    "retained_mib": stats([r["retained_kb"] / 1024 for r in rows]),
                    "us_per_chunk": stats([r["us_per_chunk"] for r in rows]),
                }
        for c in (c for c in cl if c.kind == "llm_sync"):
            g = S["rss"][c.name]["iterate"]["peak_growth_mib"]["median"]
            target(f"{c.name}: peak RSS growth while iterating", g, 2.0, g <= 2.0, "MiB")
    T = R.get("import")
    if T:
        imp = T["import_ms"]
        S["import"] = {k: stats(v) for k, v in imp.items()}
        r = ratio(imp["llm_sync"], imp["requests, sseclient"])
        S["import_ratio"] = r
        if r:
            target("import llm_sync × import requests, sseclient", r["median"], 1.3, r["median"] <= 1.3, "×")
        first = {}
        for name, rows in T["first"].items():
            first[name] = {k: stats([r[k] for r in rows]) for k in ("import_ms", "first_chunk_ms", "whole_ms")}
        S["first"] = first
    T = R.get("close")
    if T:
        for name, out in T.items():
            cm = out["close_ms"]
            row = {"p50": pct(cm, 50), "p99": pct(cm, 99), "max": max(cm), "trials": len(cm),
                   "reader_gone_p50": pct(out["reader_gone_ms"], 50),
                   "reader_gone_p99": pct(out["reader_gone_ms"], 99),
                   "reader_gone_max": max(out["reader_gone_ms"])}
            for label in ("silent", "fast"):
                g = out[f"abandoned_{label}_gone_ms"]
                row[f"abandoned_{label}_p50"] = pct(g, 50)
                row[f"abandoned_{label}_max"] = max(g)
            for k in ("cycle_parked_cpu_ms_per_s", "cycle_readers_alive", "cycle_rss_kib",
                      "cycle_gone_after_gc_ms", "readers_left", "sockets_left"):
                row[k] = out[k]
            S.setdefault("close", {})[name] = row
            target(f"{name}: close of a blocked stream, p99 of {len(cm)}", row["p99"], 100.0,
                   row["p99"] <= 100.0, "ms")
            left = out["readers_left"] + max(0, out["sockets_left"])
            target(f"{name}: reader threads + sockets left after close/abandon", left, 0, left == 0)
    LM = R.get("local")
    if LM and "ratios" in LM:
        for what, label in (("ttft", "time to first token × raw HTTP"), ("tok_s", "raw HTTP tokens/s ÷ ours")):
            v = LM["ratios"][what]["median"] if LM["ratios"][what] else None
            target(f"llm-sync chat -m local: {label}", v, 1.1, v is not None and v <= 1.1, "×")
    F = R.get("fanout")
    if F:
        S["fanout"] = F["summary"]
        for k, rows in F["summary"].items():
            for name, row in rows.items():
                if not name.startswith("llm_sync") or "cpu_us" not in row:
                    continue
                r = row["x_baseline"]["median"] if row["x_baseline"] else None
                target(f"{name}: K={k} paced CPU/chunk × requests+sseclient (same format)", r, 1.2,
                       r is not None and r <= 1.2, "×")
                a = row["x_async_openai"]["median"] if row["x_async_openai"] else None
                if a is not None:
                    target(f"{name}: K={k} paced CPU/chunk × AsyncOpenAI", a, 0.5, a <= 0.5, "×")
                bad = sum(row["errors"]) + sum(row["short"]) + sum(row["hung"]) + sum(row["late"]) + row["failed"]
                target(f"{name}: K={k} errors + short + unfinished streams + failed rounds", bad, 0, bad == 0)
    S["targets"] = targets
    return S


def report(cl: List[C.Client], R: Dict[str, Any], S: Dict[str, Any]) -> str:
    a = R["settings"]
    L: List[str] = [f"# llm_sync benchmark {R['started']} ({R['mode']})", "",
                    f"Versions: {json.dumps(R['versions'])}", "",
                    f"Command: `{R['command']}`; elapsed {R.get('elapsed_s', 0):.0f} s.", ""]
    L += ["## Targets (issues 10 and 28)", "", "| target | value | limit | met |", "|---|---|---|---|"]
    for t in S["targets"]:
        v = t["value"]
        vs = "–" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))
        met = {True: "yes", False: "**NO**", None: "not measured"}[t["ok"]]
        L.append(f"| {t['target']} | {vs} {t['unit']} | {t['limit']} | {met} |")
    if "throughput" in S:
        for framing, rows in S["throughput"].items():
            L += ["", f"## (1) Per chunk, {a['n']:,}-chunk stream, framing={framing} "
                  f"({a['throughput_reps']} reps; median (min–max); ratios within each round, × requests+sseclient "
                  "against a baseline run right before or after)", "",
                  "| client | wall µs/chunk | CPU µs/chunk | × physical limit | × JSON floor | "
                  "× requests+sseclient (wall) | × requests+sseclient (CPU) | SDK ÷ this |",
                  "|---|---|---|---|---|---|---|---|"]
            for c in cl:
                r = rows[c.name]
                L.append(f"| {c.name} | {fmt(r['wall_us'])} | {fmt(r['cpu_us'])} | {fmt(r['x_floor'], 2)} | "
                         f"{fmt(r['x_json_floor'], 2)} | {fmt(r['x_baseline'], 2)} | "
                         f"{fmt(r['x_baseline_cpu'], 2)} | {fmt(r.get('sdk_over_this'), 2)} |")
    if "ttfc" in S:
        L += ["", f"## (2) Time to first chunk, 1-chunk stream ({a['reps']} reps × {a['ttfc_calls']} warm "
              f"calls, × {a['cold_calls']} cold; ms)", "",
              "| client | warm TTFC | warm − requests+sseclient | whole 1-chunk call | cold TTFC (new client "
              "object + connection) | cold − requests+sseclient |", "|---|---|---|---|---|---|"]
        for c in cl:
            r = S["ttfc"][c.name]
            L.append(f"| {c.name} | {fmt(r['warm_ms'], 3)} | {fmt(r['warm_minus_baseline_ms'], 3)} | "
                     f"{fmt(r['warm_total_ms'], 3)} | {fmt(r['cold_ms'], 2)} | {fmt(r['cold_minus_baseline_ms'], 2)} |")
    if "concurrency" in S:
        for key, rows in S["concurrency"].items():
            after = rows["_after"]
            L += ["", f"## (3) {key} ({a['conc_reps']} reps, threads released together; event framing)", "",
                  "| client | chunks/s | × requests+sseclient | × the probe | CPU s/round | warm-up rounds | "
                  "connections open after them | peak threads | peak RSS MiB | RSS growth in round MiB | "
                  "errors | short streams | threads left |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
            for c in [*cl, PROBE]:
                r = rows.get(c.name)
                if r is None:
                    continue
                peak = "–" if r["peak_rss_mib"] is None else f"{r['peak_rss_mib']:.1f}"
                L.append(f"| {c.name} | {fmt(r['chunks_per_s'], 0)} | {fmt(r['x_baseline'], 2)} | "
                         f"{fmt(r.get('x_probe'), 2)} | {fmt(r['cpu_s'], 2)} | "
                         f"{fmt(r['warmup_rounds'], 0)} | {fmt(r['pooled'], 0)} | "
                         f"{r['peak_threads']} (before: {r['threads_before']}) | {peak} | "
                         f"{fmt(r['rss_growth_mib'], 1)} | {r['errors']} | {r['short_rounds']} | {r['threads_left']} |")
            L.append(f"\nAfter the section, with every client object dropped: sockets left "
                     f"{after['sockets_left']}, threads left {after['threads_left']}. A child runs warm-up rounds "
                     f"(at most {WARMUP_ROUNDS}) until the connections it keeps open stop growing, then the measured "
                     "one. The probe is not a peer: the baseline behind a reader thread and a queue; × the probe is "
                     "what llm_sync costs beyond the hand-off its design pays for.")
    if "rss" in S:
        L += ["", f"## (4) Peak RSS growth during one {a['n']:,}-chunk stream, fresh process "
              f"({a['rss_reps']} reps; MiB)", "",
              "| client | iterating: peak growth | retained | collect(): peak growth | retained |",
              "|---|---|---|---|---|"]
        for c in cl:
            r = S["rss"].get(c.name)
            if not r:
                continue
            it, co = r.get("iterate"), r.get("collect")
            L.append(f"| {c.name} | {fmt(it['peak_growth_mib'], 2)} | {fmt(it['retained_mib'], 2)} | "
                     f"{fmt(co['peak_growth_mib'], 2) if co else '–'} | {fmt(co['retained_mib'], 2) if co else '–'} |")
    if "import" in S:
        L += ["", f"## (5) Import, fresh interpreter ({a['import_reps']} reps; ms)", "",
              "| import | ms |", "|---|---|"]
        for k, v in S["import"].items():
            L.append(f"| `import {k}` | {fmt(v)} |")
        L.append(f"\n`import llm_sync` ÷ `import requests, sseclient` (within each rep): {fmt(S['import_ratio'], 2)}")
        L += ["", "Import + first 1-chunk stream in a fresh process (client construction included; ms):", "",
              "| client | import | import + first text chunk | import + whole first stream |",
              "|---|---|---|---|"]
        for name, r in S["first"].items():
            L.append(f"| {name} | {fmt(r['import_ms'])} | {fmt(r['first_chunk_ms'])} | {fmt(r['whole_ms'])} |")
    if "close" in S:
        L += ["", "## (6) Close and abandon (stream blocked on a server that sent one text delta, then "
              "nothing)", "",
              "| client | close() p50 / p99 / max ms | reader gone after close p50 / p99 / max ms | "
              "abandoned (last ref dropped) → reader gone, silent server p50 / max ms | same, fast "
              "20,000-chunk stream | abandoned in a ref cycle: readers alive, CPU ms/s parked, RSS KiB | "
              "gone after gc.collect() ms | readers / sockets left |",
              "|---|---|---|---|---|---|---|---|"]
        for name, r in S["close"].items():
            L.append(f"| {name} | {r['p50']:.2f} / {r['p99']:.2f} / {r['max']:.2f} ({r['trials']} trials) | "
                     f"{r['reader_gone_p50']:.2f} / {r['reader_gone_p99']:.2f} / {r['reader_gone_max']:.2f} | "
                     f"{r['abandoned_silent_p50']:.2f} / {r['abandoned_silent_max']:.2f} | "
                     f"{r['abandoned_fast_p50']:.2f} / {r['abandoned_fast_max']:.2f} | "
                     f"{r['cycle_readers_alive']}, {r['cycle_parked_cpu_ms_per_s']:.1f}, {r['cycle_rss_kib']} | "
                     f"{r['cycle_gone_after_gc_ms']} | {r['readers_left']} / {r['sockets_left']} |")
    if "fanout" in R:
        L += ["", fanout.report(R["fanout"])]
    if "local" in R:
        L += ["", local.report(R["local"])]
    if R.get("section_s"):
        L += ["", "Seconds per section: " + ", ".join(f"{k} {v:.0f}" for k, v in R["section_s"].items())]
    return "\n".join(L) + "\n"


def versions() -> Dict[str, Any]:
    from importlib import metadata

    out: Dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                           "cpus": os.cpu_count()}
    for d in ("llm-sync", "requests", "urllib3", "sseclient-py", "anthropic", "openai", "pydantic", "litellm"):
        try:
            out[d] = metadata.version(d)
        except metadata.PackageNotFoundError:
            pass
    return out


# ---------------------------------------------------------------------------
# entry point


def parse(argv: Optional[List[str]]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small settings (~1-2 min)")
    ap.add_argument("--smoke", action="store_true", help="the smallest settings (the test suite's)")
    ap.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset of " + ",".join(SECTIONS))
    ap.add_argument("--only", default="", help="'|'-separated substrings of client names to keep "
                    "(floors and baselines always stay)")
    ap.add_argument("--no-sdk", action="store_true", help="leave the vendor SDK columns out")
    ap.add_argument("--reps", type=int, help="repetitions of the throughput and ttfc sections")
    ap.add_argument("--n", type=int, help="chunks per throughput / RSS stream")
    ap.add_argument("--out", default=str(RESULTS), help="directory for <stamp>.md and <stamp>.json")
    ap.add_argument("--child", choices=("rss", "first", "concurrency"), help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--client", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="iterate", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse(argv)
    if args.child:
        out = {"rss": child_rss, "first": child_first, "concurrency": child_concurrency}[args.child](args)
        print(json.dumps(out))
        return 0
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    st = dict(MODES[mode])
    if args.reps:
        st["reps"] = st["throughput_reps"] = args.reps
    if args.n:
        st["n"] = args.n
    sections = [s for s in args.sections.split(",") if s]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    cl = C.all_clients()
    if args.no_sdk or mode == "smoke":
        cl = [c for c in cl if c.kind != "sdk"]
    if args.only:
        want = [w.strip().lower() for w in args.only.split("|") if w.strip()]
        cl = [c for c in cl if c.kind in ("floor", "baseline") or any(w in c.name.lower() for w in want)]
    import logging

    # More threads than a pool keeps (a client's own, or llm_sync's 256) make urllib3
    # log each discarded connection. That is expected here and would drown the progress lines.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)

    R: Dict[str, Any] = {"mode": mode, "settings": st, "sections": sections, "clients": [c.name for c in cl],
                         "versions": versions(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                         "command": " ".join(["python -m bench"] + (argv if argv is not None else sys.argv[1:]))}
    srv, port = start_server([1, 137, st["n"]] + [n for _, n in st["conc"]])
    t_start = time.perf_counter()
    try:
        for c in cl:
            for m in c.modules:
                __import__(m)
        verify(cl, port)
        for c in cl:  # warm-up: lazy imports, caches, connections
            run_once(c, url(port, 2000), 2000)
        log(f"verified {len(cl)} clients: " + ", ".join(c.name for c in cl))
        gc.collect()
        # The imported libraries' objects stay out of every client's GC passes.
        if hasattr(gc, "freeze"):
            gc.freeze()
        timed: Dict[str, float] = {}
        R["section_s"] = timed
        mark = time.perf_counter()
        if "throughput" in sections:
            R["throughput"] = {f: bench_throughput(cl, port, st["n"], st["throughput_reps"], f) for f in ("event", "bulk")}
            timed["throughput"], mark = time.perf_counter() - mark, time.perf_counter()
        if "ttfc" in sections:
            R["ttfc"] = bench_ttfc(cl, port, st["reps"], st["ttfc_calls"], st["cold_calls"])
            timed["ttfc"], mark = time.perf_counter() - mark, time.perf_counter()
        if "concurrency" in sections:
            conc = [*cl, PROBE] if C.BASELINE[PROBE.api] in {c.name for c in cl} else cl
            R["concurrency"] = {f"{t} threads × {n:,} chunks": bench_concurrency(conc, port, t, n, st["conc_reps"])
                                for t, n in st["conc"]}
            timed["concurrency"], mark = time.perf_counter() - mark, time.perf_counter()
        if "rss" in sections:
            R["rss"] = bench_rss(cl, port, st["n"], st["rss_reps"])
            timed["rss"], mark = time.perf_counter() - mark, time.perf_counter()
        if "import" in sections:
            R["import"] = bench_import(cl, port, st["import_reps"])
            timed["import"], mark = time.perf_counter() - mark, time.perf_counter()
        if "close" in sections:
            R["close"] = bench_close(cl, port, st["close_trials"], st["abandon_trials"])
            timed["close"], mark = time.perf_counter() - mark, time.perf_counter()
        if "fanout" in sections:
            # Its own paced server and a fresh process per cell: this process only waits.
            R["fanout"] = fanout.run(dict(fanout.MODES[mode]), args.only,
                                     sdk=not (args.no_sdk or mode == "smoke"))
            timed["fanout"], mark = time.perf_counter() - mark, time.perf_counter()
        if "local" in sections:
            R["local"] = local.run(dict(local.MODES[mode]))
            timed["local"] = time.perf_counter() - mark
    finally:
        C.reset()
        stop_server(srv)
    R["elapsed_s"] = time.perf_counter() - t_start
    S = summarize(cl, R)
    md = report(cl, R, S)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S") + ("" if mode == "full" else "-" + mode)
    (out / f"{stamp}.json").write_text(json.dumps({"raw": R, "summary": S}, indent=1, default=str))
    (out / f"{stamp}.md").write_text(md)
    print(md)
    log(f"wrote {out / stamp}.md and .json in {R['elapsed_s']:.0f} s")
    missed = [t for t in S["targets"] if t["ok"] is False]
    return 1 if missed and mode != "smoke" and os.environ.get("BENCH_STRICT") == "1" else 0
