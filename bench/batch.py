# ruff: noqa: RUF001, RUF003  (the tables use × and – on purpose)
"""run_many at scale: K streams at a real pace through ``llm_sync.run_many`` in one process, against a bare thread pool.

``python -m bench batch [--quick | --smoke] [--k 1024] [--rounds 3]`` (or ``python -m bench.batch``).

Two scenarios, each client in a fresh process per round, the two clients' order
rotated every round, ratios taken within a round and reported as medians:

- ``paced``: K items (default 1,024), each a chat-completions stream of 150 text
  events one every 20 ms (3 s at the ideal pace), ``max_workers=K``: all K streams
  at once. Columns: ``run_many`` and a bare ``ThreadPoolExecutor(K)`` calling
  ``provider.stream_response(ctx).collect()`` (the hand-written loop run_many
  replaces). Figures: wall time against the ideal, CPU µs per chunk (the process's
  own ``process_time``), the lag of each item past the ideal 3 s (p50/p99/max),
  errors, short answers, peak threads, peak RSS, threads and sockets left after.
- ``short``: 256 items of 20 events sent at once (no pacing), ``max_workers=32``:
  the overhead of run_many's scheduling over the bare pool (research R2 targets at
  most 5 % wall).

The server (``--serve``, its own process) is one asyncio loop; each stream's events
are due at fixed times from its request (event *i* at *i* intervals), and how late
each send went out is recorded: the report shows it, so a server that could not
keep pace would show. Results: ``bench/results/<stamp>-batch.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import heapq
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
CLIENTS = ("run_many", "thread_pool")
MODES: Dict[str, Dict[str, Any]] = {
    "full": dict(k=1024, events=150, ms=20, rounds=3, short_k=256, short_events=20, short_workers=32),
    "quick": dict(k=256, events=150, ms=20, rounds=1, short_k=256, short_events=20, short_workers=32),
    "smoke": dict(k=16, events=10, ms=5, rounds=1, short_k=16, short_events=5, short_workers=4),
}


def log(*parts: Any) -> None:
    print(*parts, file=sys.stderr, flush=True)


def raise_file_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ---------------------------------------------------------------------------
# the paced server


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _event(obj: Any) -> bytes:
    return _chunk(b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n")


def rendered(n: int) -> Tuple[bytes, List[bytes], bytes]:
    """The head (status, role delta), n distinct text events, and the tail (finish, usage, [DONE], end)."""
    def delta(d: Dict[str, Any], finish: Optional[str] = None) -> Dict[str, Any]:
        return {"id": "c1", "object": "chat.completion.chunk", "model": "bench",
                "choices": [{"index": 0, "delta": d, "finish_reason": finish}]}

    head = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
            + _event(delta({"role": "assistant", "content": ""})))
    texts = [_event(delta({"content": f" t{i}"})) for i in range(n)]
    usage = {"id": "c1", "object": "chat.completion.chunk", "model": "bench", "choices": [],
             "usage": {"prompt_tokens": 8, "completion_tokens": n, "total_tokens": 8 + n}}
    tail = _event(delta({}, "stop")) + _event(usage) + _chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"
    return head, texts, tail


class _Stream:
    __slots__ = ("writer", "texts", "tail", "i", "start", "every", "done")

    def __init__(self, writer: asyncio.StreamWriter, texts: List[bytes], tail: bytes, start: float,
                 every: float, done: asyncio.Future[None]) -> None:
        self.writer, self.texts, self.tail = writer, texts, tail
        self.i, self.start, self.every, self.done = 0, start, every, done


class PacedServer:
    """Chat completions at a pace: ``POST /n=150,ms=20/v1/chat/completions``; ``GET /stats``."""

    def __init__(self) -> None:
        self.heap: List[Tuple[float, int, _Stream]] = []
        self.seq = 0
        self.cache: Dict[int, Tuple[bytes, List[bytes], bytes]] = {}
        self.reset()

    def reset(self) -> None:
        self.active = 0
        self.peak_streams = 0
        self.sends = 0
        self.late_sum = 0.0
        self.late_max = 0.0
        self.late_over_10ms = 0
        self.cpu0 = time.process_time()
        self.wall0 = time.monotonic()

    def stats(self) -> Dict[str, Any]:
        wall = time.monotonic() - self.wall0
        return {"sends": self.sends, "peak_streams": self.peak_streams, "late_mean_ms": 1000 * self.late_sum / max(1, self.sends),
                "late_max_ms": 1000 * self.late_max, "late_over_10ms": self.late_over_10ms,
                "cpu_share": (time.process_time() - self.cpu0) / wall if wall > 0 else 0.0}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line, *rest = head.decode("latin-1").split("\r\n")
                method, target = line.split(" ")[:2]
                length = 0
                for h in rest:
                    k, _, v = h.partition(":")
                    if k.strip().lower() == "content-length":
                        length = int(v)
                if length:
                    await reader.readexactly(length)
                if method == "GET" and target.startswith("/stats"):
                    body = json.dumps(self.stats()).encode()
                    if "reset" in target:
                        self.reset()
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
                    continue
                opts = dict(p.split("=", 1) for p in target.split("/")[1].split(",") if "=" in p)
                n, ms = int(opts.get("n", 150)), float(opts.get("ms", 20))
                if n not in self.cache:
                    self.cache[n] = rendered(n)
                first, texts, tail = self.cache[n]
                writer.write(first)
                if ms <= 0:
                    writer.write(b"".join(texts) + tail)
                    await writer.drain()
                    continue
                done: asyncio.Future[None] = loop.create_future()
                stream = _Stream(writer, texts, tail, loop.time(), ms / 1000, done)
                self.seq += 1
                heapq.heappush(self.heap, (stream.start + stream.every, self.seq, stream))
                self.active += 1
                self.peak_streams = max(self.peak_streams, self.active)
                try:
                    await done
                finally:
                    self.active -= 1
        except (asyncio.IncompleteReadError, ConnectionError, OSError, ValueError):
            pass
        finally:
            writer.close()

    async def tick(self) -> None:
        loop = asyncio.get_running_loop()
        heap = self.heap
        while True:
            delay = heap[0][0] - loop.time() if heap else 0.005
            await asyncio.sleep(min(max(delay, 0.0), 0.005))
            now = loop.time()
            while heap and heap[0][0] <= now:
                due, _, s = heapq.heappop(heap)
                late = now - due
                self.sends += 1
                self.late_sum += late
                if late > self.late_max:
                    self.late_max = late
                if late > 0.010:
                    self.late_over_10ms += 1
                if s.writer.is_closing():
                    s.done.set_result(None)
                    continue
                s.writer.write(s.texts[s.i])
                s.i += 1
                if s.i == len(s.texts):
                    s.writer.write(s.tail)
                    s.done.set_result(None)
                else:
                    # Event i is due at i intervals from the request: a late send does not delay the next.
                    self.seq += 1
                    heapq.heappush(heap, (s.start + (s.i + 1) * s.every, self.seq, s))


async def _serve(port: int) -> None:
    server = PacedServer()
    srv = await asyncio.start_server(server.handle, "127.0.0.1", port, backlog=4096)
    ticker = asyncio.ensure_future(server.tick())
    print(f"READY {srv.sockets[0].getsockname()[1]}", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent goes away
    ticker.cancel()
    srv.close()
    # Leave now: asyncio.run's cleanup would cancel every connection's task, noisily.
    sys.stdout.flush()
    os._exit(0)


def start_server() -> Tuple[subprocess.Popen, int]:  # type: ignore[type-arg]
    p = subprocess.Popen([sys.executable, "-m", "bench.batch", "--serve"], cwd=str(ROOT), env=child_env(),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None
    line = p.stdout.readline()
    if not line.startswith("READY"):
        p.kill()
        raise SystemExit(f"the paced server did not start: {line!r}")
    return p, int(line.split()[1])


def server_stats(port: int, reset: bool = False) -> Dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats{'?reset' if reset else ''}", timeout=30) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def child_env() -> Dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), NO_PROXY="127.0.0.1,localhost")


# ---------------------------------------------------------------------------
# one client, one round, in a fresh process


def _status_kb(*keys: str) -> Dict[str, int]:
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


def _sockets() -> int:
    n = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{name}").startswith("socket:")
        except OSError:
            pass
    return n


def child(client: str, port: int, k: int, events: int, ms: float, workers: int) -> Dict[str, Any]:
    import logging

    from llm_sync import Context, run_many
    from llm_sync.providers import OpenAiCompatibleProvider

    raise_file_limit()
    # Past the transport's pool size urllib3 logs each connection it discards: expected here.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    sockets0 = _sockets()
    provider = OpenAiCompatibleProvider(base_url=f"http://127.0.0.1:{port}/n={events},ms={ms:g}/v1", model="bench")
    contexts = [f"item {i}" for i in range(k)]
    warm = provider.stream_response(Context.from_dict({"messages": [{"type": "user", "content": "warm"}]})).collect()
    assert warm.complete
    # Warm up the client itself (its code paths, threads, the catalog run_many prices
    # answers from: ~0.1 s once per process), so that a round measures the steady state.
    if client == "run_many":
        assert all(r.ok for r in run_many(provider, ["warm"] * 4, max_workers=4))
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(4) as pool:
            assert all(f.complete for f in pool.map(lambda p: provider.stream_response(
                Context.from_dict({"messages": [{"type": "user", "content": p}]})).collect(), ["warm"] * 4))
    gc.collect()
    threads0 = threading.active_count()
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.01):
            peak[0] = max(peak[0], threading.active_count() - 1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    rss0 = _status_kb("VmRSS").get("VmRSS", 0)
    finished: List[float] = []
    texts: List[str] = []
    errors: List[str] = []
    c0, t0 = time.process_time(), time.monotonic()
    if client == "run_many":
        for r in run_many(provider, contexts, max_workers=workers, retries=0):
            finished.append(time.monotonic() - t0)
            if r.response is not None:
                texts.append(r.response.text)
            else:
                errors.append(f"{type(r.error).__name__}: {r.error}")
    else:
        from concurrent.futures import ThreadPoolExecutor, as_completed

        def one(prompt: str) -> Any:
            return provider.stream_response(Context.from_dict({"messages": [{"type": "user", "content": prompt}]})).collect()

        with ThreadPoolExecutor(workers) as pool:
            for fut in as_completed([pool.submit(one, c) for c in contexts]):
                finished.append(time.monotonic() - t0)
                try:
                    texts.append(fut.result().text)
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
    wall, cpu = time.monotonic() - t0, time.process_time() - c0
    stop.set()
    sampler.join()
    hwm = _status_kb("VmHWM").get("VmHWM", 0)
    expected = "".join(f" t{i}" for i in range(events))
    short = sum(1 for t in texts if t != expected)
    # The provider's pool keeps idle keep-alive connections: what is left once it is gone is a leak.
    provider = None  # type: ignore[assignment]
    deadline = time.monotonic() + 3
    while (threading.active_count() > threads0 or _sockets() > sockets0) and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.02)
    ideal = events * ms / 1000 if ms > 0 else 0.0
    lags = sorted(max(0.0, f - ideal) for f in finished)
    return {
        "client": client, "k": k, "events": events, "ms": ms, "workers": workers,
        "wall_s": wall, "cpu_s": cpu, "chunks": len(texts) * events,
        "cpu_us_per_chunk": 1e6 * cpu / max(1, len(texts) * events),
        "ideal_s": ideal, "lag_p50_s": lags[len(lags) // 2] if lags else None,
        "lag_p99_s": lags[min(len(lags) - 1, int(0.99 * len(lags)))] if lags else None,
        "lag_max_s": lags[-1] if lags else None,
        "completed": len(texts), "errors": len(errors), "error_samples": errors[:3], "short": short,
        "peak_threads": peak[0], "peak_rss_mib": hwm / 1024, "rss_growth_mib": (hwm - rss0) / 1024,
        "threads_left": threading.active_count() - threads0, "sockets_left": _sockets() - sockets0,
    }


def run_child(client: str, port: int, k: int, events: int, ms: float, workers: int) -> Dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.batch", "--child", client, "--port", str(port), "--k", str(k),
           "--events", str(events), "--ms", str(ms), "--workers", str(workers)]
    p = subprocess.run(cmd, cwd=str(ROOT), env=child_env(), capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        return {"client": client, "failed": True, "stderr": p.stderr[-2000:]}
    return json.loads(p.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------
# the run and its report


def med(xs: List[float]) -> Optional[float]:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def scenario(name: str, port: int, rounds: int, k: int, events: int, ms: float, workers: int) -> Dict[str, Any]:
    rows: Dict[str, List[Dict[str, Any]]] = {c: [] for c in CLIENTS}
    for rnd in range(rounds):
        order = CLIENTS[rnd % 2:] + CLIENTS[: rnd % 2]
        for client in order:
            server_stats(port, reset=True)
            row = run_child(client, port, k, events, ms, workers)
            row["server"] = server_stats(port)
            rows[client].append(row)
            if row.get("failed"):
                log(f"  {name} round {rnd + 1} {client}: FAILED\n{row['stderr']}")
            else:
                log(f"  {name} round {rnd + 1} {client}: wall {row['wall_s']:.2f} s, "
                    f"{row['cpu_us_per_chunk']:.0f} µs CPU/chunk, {row['errors']} errors, {row['short']} short, "
                    f"peak {row['peak_threads']} threads, {row['server']['peak_streams']} streams at once, "
                    f"server late max {row['server']['late_max_ms']:.0f} ms")
    ratios: Dict[str, List[float]] = {"wall": [], "cpu": []}
    for a, b in zip(rows["run_many"], rows["thread_pool"]):
        if not a.get("failed") and not b.get("failed"):
            ratios["wall"].append(a["wall_s"] / b["wall_s"])
            ratios["cpu"].append(a["cpu_s"] / b["cpu_s"])
    return {"name": name, "k": k, "events": events, "ms": ms, "workers": workers, "rounds": rows,
            "ratio_wall": ratios["wall"], "ratio_cpu": ratios["cpu"]}


def report(R: Dict[str, Any]) -> str:
    L = [f"# run_many benchmark {R['started']} ({R['mode']})", "", f"Command: `{R['command']}`; "
         f"elapsed {R['elapsed_s']:.0f} s; file limit {R['file_limit']}; {os.cpu_count()} CPUs.", ""]
    for sc in R["scenarios"]:
        pace = f"one event every {sc['ms']:g} ms" if sc["ms"] else "sent at once"
        L += [f"## {sc['name']}: {sc['k']:,} items × {sc['events']} events, {pace}, max_workers={sc['workers']}", "",
              "| client | wall s (ideal) | CPU µs/chunk | lag p50 / p99 / max s | completed | errors | short "
              "| streams at once (server) | peak threads | peak RSS MiB | threads / sockets left "
              "| server late mean / max ms |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for client in CLIENTS:
            for row in sc["rounds"][client]:
                if row.get("failed"):
                    L.append(f"| {client} | failed | | | | | | | | | | |")
                    continue
                lag = " / ".join("–" if row[k] is None else f"{row[k]:.2f}" for k in ("lag_p50_s", "lag_p99_s", "lag_max_s"))
                L.append(f"| {client} | {row['wall_s']:.2f} ({row['ideal_s']:.1f}) | {row['cpu_us_per_chunk']:.0f} "
                         f"| {lag} | {row['completed']} | {row['errors']} | {row['short']} "
                         f"| {row['server']['peak_streams']} | {row['peak_threads']} "
                         f"| {row['peak_rss_mib']:.0f} | {row['threads_left']} / {row['sockets_left']} "
                         f"| {row['server']['late_mean_ms']:.1f} / {row['server']['late_max_ms']:.0f} |")
        rw, rc = med(sc["ratio_wall"]), med(sc["ratio_cpu"])
        L += ["", f"run_many ÷ thread pool, median of {len(sc['ratio_wall'])} rounds: wall "
              f"{'–' if rw is None else f'{rw:.3f}×'} ({', '.join(f'{x:.3f}' for x in sc['ratio_wall'])}), CPU "
              f"{'–' if rc is None else f'{rc:.3f}×'} ({', '.join(f'{x:.3f}' for x in sc['ratio_cpu'])}).", ""]
    return "\n".join(L) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench batch", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="K=256, one round")
    ap.add_argument("--smoke", action="store_true", help="the smallest settings (the test suite's)")
    ap.add_argument("--k", type=int, help="items in the paced scenario (default 1024)")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--pace", metavar="EVENTS,MS", help="the paced scenario's events per stream and ms between them "
                    "(default 150,20); a slower pace shows how many streams one process holds open at once")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--child", choices=CLIENTS, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--events", type=int, default=150, help=argparse.SUPPRESS)
    ap.add_argument("--ms", type=float, default=20.0, help=argparse.SUPPRESS)
    ap.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.serve:
        raise_file_limit()
        asyncio.run(_serve(a.port))
        return 0
    if a.child:
        print(json.dumps(child(a.child, a.port, a.k, a.events, a.ms, a.workers or a.k)))
        return 0
    mode = "smoke" if a.smoke else "quick" if a.quick else "full"
    st = dict(MODES[mode])
    if a.k:
        st["k"] = a.k
    if a.rounds:
        st["rounds"] = a.rounds
    if a.pace:
        events, ms = a.pace.split(",")
        st["events"], st["ms"] = int(events), float(ms)
    R: Dict[str, Any] = {"mode": mode, "settings": st, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                         "command": " ".join(["python -m bench batch"] + (argv if argv is not None else sys.argv[1:])),
                         "file_limit": raise_file_limit()}
    srv, port = start_server()
    t0 = time.monotonic()
    try:
        R["scenarios"] = [
            scenario("paced", port, st["rounds"], st["k"], st["events"], st["ms"], st["k"]),
            scenario("short", port, st["rounds"], st["short_k"], st["short_events"], 0, st["short_workers"]),
        ]
    finally:
        assert srv.stdin is not None
        srv.stdin.close()
        try:
            srv.wait(10)
        except subprocess.TimeoutExpired:
            srv.kill()
    R["elapsed_s"] = time.monotonic() - t0
    md = report(R)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S") + "-batch" + ("" if mode == "full" else "-" + mode)
    (out / f"{stamp}.json").write_text(json.dumps(R, indent=1, default=str))
    (out / f"{stamp}.md").write_text(md)
    print(md)
    log(f"wrote {out / stamp}.md and .json in {R['elapsed_s']:.0f} s")
    failed = any(r.get("failed") or r.get("errors") or r.get("short")
                 for sc in R["scenarios"] for rows in sc["rounds"].values() for r in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
