# ruff: noqa: RUF001, RUF003  (the tables use × on purpose)
"""Where a paced stream's thread switches happen: per chunk, in the thread that iterates and in the reader thread.

``python -m bench.switches`` starts ``bench.paced``, then for each client, in a
fresh process, releases K streams together (``bench.release.Gates``) and reads
``/proc/thread-self/status`` at the start and end of every consuming thread and
every reader thread (llm_sync's ``llm_sync-*`` threads, the probe's
``bench-probe-reader``): voluntary switches are the times a thread blocked (on the
socket, the queue or the GIL), involuntary ones the times the kernel preempted it.
A thread that only waits for its next chunk blocks once per chunk; what it blocks
beyond that is waiting for the GIL. The process's CPU per chunk is given beside.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from bench import fanout
from bench.release import Gates

CLIENTS = (fanout.LLM_ANTHROPIC, fanout.LLM_CHAT, fanout.PROBE, fanout.REQ_ANTHROPIC, fanout.REQ)
READER_PREFIXES = ("llm_sync-", "bench-probe-reader")
_FIELD = re.compile(r"^(voluntary|nonvoluntary)_ctxt_switches:\s+(\d+)$", re.M)


def own_switches() -> Tuple[int, int]:
    """This thread's (voluntary, involuntary) switches so far."""
    with open("/proc/thread-self/status") as f:
        got = dict(_FIELD.findall(f.read()))
    return int(got["voluntary"]), int(got["nonvoluntary"])


def child(column: str, port: int, k: int, n: int, ms: float, switch_interval: float) -> Dict[str, Any]:
    if switch_interval:
        sys.setswitchinterval(switch_interval)
    import logging

    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    fanout.raise_file_limit()
    readers: List[Tuple[int, int]] = []
    consumers: List[Tuple[int, int]] = []
    run = threading.Thread.run

    def counted_run(self: threading.Thread) -> None:
        if not self.name.startswith(READER_PREFIXES):
            run(self)
            return
        v0, i0 = own_switches()
        try:
            run(self)
        finally:
            v1, i1 = own_switches()
            readers.append((v1 - v0, i1 - i0))

    threading.Thread.run = counted_run  # type: ignore[method-assign]  # this child process only
    fn = fanout._thread_fn(column)
    has_reader = column not in (fanout.REQ, fanout.REQ_ANTHROPIC)

    def readers_done(count: int) -> None:
        until = time.monotonic() + 2.0  # a reader leaves just after its last chunk
        while has_reader and len(readers) < count and time.monotonic() < until:
            time.sleep(0.01)

    if sum(1 for _ in fn(fanout.base_url(port, 3, 1), 3)) != 3:
        raise SystemExit(f"{column}: warm-up failed")
    readers_done(1)
    readers.clear()
    base = fanout.base_url(port, n, ms)
    gates = Gates(k)
    counts = [0] * k

    def work(i: int) -> None:
        gates.wait(i)
        v0, i0 = own_switches()
        for _ in fn(base, n):
            counts[i] += 1
        v1, i1 = own_switches()
        consumers.append((v1 - v0, i1 - i0))

    threads = [threading.Thread(target=work, args=(i,), name=f"bench-{i}", daemon=True) for i in range(k)]
    for t in threads:
        t.start()
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    gates.open_all()
    deadline = time.monotonic() + 60 + k * n * ms / 1e3
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    readers_done(len(consumers))
    chunks = sum(counts)

    def per_chunk(xs: List[Tuple[int, int]], i: int) -> Optional[float]:
        return sum(x[i] for x in xs) / chunks if xs and chunks else None

    return {
        "column": column, "k": k, "chunks": chunks, "expected": k * n,
        "cpu_us_per_chunk": (ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime) / chunks * 1e6 if chunks else None,
        "process_switches": ((ru1.ru_nvcsw - ru0.ru_nvcsw) + (ru1.ru_nivcsw - ru0.ru_nivcsw)) / chunks if chunks else None,
        "consumer_voluntary": per_chunk(consumers, 0), "consumer_involuntary": per_chunk(consumers, 1),
        "reader_voluntary": per_chunk(readers, 0), "reader_involuntary": per_chunk(readers, 1),
        "readers_seen": len(readers),
    }


def run(ks: List[int], rounds: int, n: int, ms: float, switch_interval: float) -> List[Dict[str, Any]]:
    fanout.raise_file_limit()
    srv, port = fanout.start_server()
    cells: List[Dict[str, Any]] = []
    try:
        for rnd in range(rounds):
            for k in ks:
                for column in CLIENTS[rnd % len(CLIENTS):] + CLIENTS[:rnd % len(CLIENTS)]:
                    cmd = [sys.executable, "-m", "bench.switches", "--child", column, "--port", str(port),
                           "--ks", str(k), "--n", str(n), "--ms", f"{ms:g}", "--switch-interval", f"{switch_interval:g}"]
                    p = subprocess.run(cmd, capture_output=True, text=True, env=fanout.child_env(),
                                       cwd=str(fanout.ROOT), timeout=600)
                    if p.returncode:
                        raise SystemExit(f"{column} at K={k} failed: {p.stderr[-1500:]}")
                    cell = json.loads(p.stdout.strip().splitlines()[-1])
                    cell["round"] = rnd
                    cells.append(cell)
    finally:
        fanout.stop_server(srv)
    return cells


def report(cells: List[Dict[str, Any]], switch_interval: float) -> str:
    def f(x: Optional[float], d: int = 2) -> str:
        return "–" if x is None else f"{x:.{d}f}"

    interval = f"{switch_interval * 1e3:g} ms" if switch_interval else "the default 5 ms"
    lines = [f"Per text chunk, medians over rounds; switch interval {interval}.", "",
             "| K | client | CPU µs | process switches | consumer blocked | consumer preempted | reader blocked | "
             "reader preempted |", "|---|---|---|---|---|---|---|---|"]
    for k in sorted({c["k"] for c in cells}):
        for column in CLIENTS:
            got = [c for c in cells if c["k"] == k and c["column"] == column]
            if not got:
                continue

            def med(key: str, got: List[Dict[str, Any]] = got) -> Optional[float]:
                xs = [c[key] for c in got if c[key] is not None]
                return statistics.median(xs) if xs else None

            lines.append(f"| {k} | {column} | {f(med('cpu_us_per_chunk'), 0)} | {f(med('process_switches'))} | "
                         f"{f(med('consumer_voluntary'))} | {f(med('consumer_involuntary'))} | "
                         f"{f(med('reader_voluntary'))} | {f(med('reader_involuntary'))} |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.switches", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ks", default="64,256", help="comma-separated K")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--ms", type=float, default=20)
    ap.add_argument("--switch-interval", type=float, default=0.0, help="seconds; 0 = the interpreter's default")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.port, int(args.ks), args.n, args.ms, args.switch_interval)))
        return 0
    cells = run([int(k) for k in args.ks.split(",")], args.rounds, args.n, args.ms, args.switch_interval)
    print(report(cells, args.switch_interval))
    return 0


if __name__ == "__main__":
    sys.exit(main())
