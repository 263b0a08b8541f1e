"""What observability costs per chunk: streams read with instrumentation absent, and on with the real OpenTelemetry SDK, against a tree without it.

``python -m bench observe [--before DIR] [--n 20000] [--streams 5] [--rounds 5]``

Columns, each measured in a fresh interpreter (``python -m bench.observe --child
COLUMN``) that makes an ``AnthropicProvider``, reads one warm-up stream, then
``--streams`` streams of ``--n`` text events (event framing, from ``bench.server``)
and reports the median wall and CPU microseconds per chunk (CPU: the whole process,
reader thread included):

- ``before``: ``llm_sync`` imported from ``--before`` (e.g. ``git archive main``
  unpacked), the code without logging or the observer seam;
- ``off``: this tree, nothing instrumented, logging unconfigured (the default);
- ``on``: this tree with ``llm_sync.otel.instrument()`` on an SDK ``TracerProvider``
  (``SimpleSpanProcessor`` into an ``InMemorySpanExporter``) and a ``MeterProvider``
  with an ``InMemoryMetricReader``: one span and its metrics per stream.

Rounds interleave the columns (order rotated); each ratio to ``before`` (or to
``off`` when there is no ``--before``) is taken within its round, and the report
gives the medians. Nothing is written to disk; the table goes to stdout.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
COUNT_SHORT, COUNT_LONG = 500, 2500


def child(column: str, port: int, n: int, streams: int, tree: Optional[str]) -> Dict[str, Any]:
    if tree:
        sys.path.insert(0, tree)  # before llm_sync is first imported
    import llm_sync
    from llm_sync import ChatMessage, Context, LlmResponse
    from llm_sync.providers.anthropic import AnthropicProvider

    where = str(Path(llm_sync.__file__).resolve().parents[1])
    exporter = None
    if column == "on":
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        from llm_sync import otel

        exporter = InMemorySpanExporter()
        traces = TracerProvider()
        traces.add_span_processor(SimpleSpanProcessor(exporter))
        otel.instrument(tracer_provider=traces, meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]))
    def make(events: int) -> Any:
        return AnthropicProvider("sk-ant-bench", model="claude-bench", max_retries=0,
                                 base_url=f"http://127.0.0.1:{port}/n={events},framing=event")

    provider = make(n)
    context = Context([ChatMessage.User("Count.")])
    text = LlmResponse.Text

    def one(p: Any = provider) -> int:
        count = 0
        for chunk in p.stream_response(context):
            if isinstance(chunk, text):
                count += 1
        return count

    one()  # warm-up: connection pool, first imports
    # Python and C function calls per chunk, on every thread, counted with a profiler: the
    # difference between a stream of COUNT_LONG and one of COUNT_SHORT events, so what is
    # done once per stream cancels and the figure does not depend on the machine's load.
    calls = []
    for events in (COUNT_SHORT, COUNT_LONG):
        counter = itertools.count()

        def profile(frame: Any, event: str, arg: Any, tick: Any = counter.__next__) -> None:
            if event in ("call", "c_call"):
                tick()  # itertools.count: atomic under the GIL, so no thread's calls are lost

        short = make(events)
        one(short)
        threading.setprofile(profile)
        sys.setprofile(profile)
        try:
            one(short)
        finally:
            sys.setprofile(None)
            threading.setprofile(None)  # type: ignore[arg-type]
        calls.append(next(counter))
    calls_per_chunk = (calls[1] - calls[0]) / (COUNT_LONG - COUNT_SHORT)
    wall: List[float] = []
    cpu: List[float] = []
    for _ in range(streams):
        w0, c0 = time.perf_counter(), time.process_time()
        count = one()
        w, c = time.perf_counter() - w0, time.process_time() - c0
        if count != n:
            raise SystemExit(f"{column}: {count} text chunks instead of {n}")
        wall.append(w / n * 1e6)
        cpu.append(c / n * 1e6)
    spans = len(exporter.get_finished_spans()) if exporter is not None else None
    if column == "on" and spans != streams + 5:
        raise SystemExit(f"on: {spans} spans for {streams + 5} streams")
    return {"column": column, "tree": where, "wall_us": statistics.median(wall), "cpu_us": statistics.median(cpu),
            "spans": spans, "calls_per_chunk": calls_per_chunk}


def run_child(column: str, port: int, args: argparse.Namespace) -> Dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.observe", "--child", column, "--port", str(port),
           "--n", str(args.n), "--streams", str(args.streams)]
    if column == "before":
        cmd += ["--tree", str(Path(args.before).resolve())]
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_PROXY="127.0.0.1,localhost")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=600)
    if out.returncode:
        raise SystemExit(f"{column} failed:\n{out.stderr}")
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench observe", description=__doc__.split("\n")[0])
    ap.add_argument("--before", help="a tree whose llm_sync has no observability, for the 'before' column")
    ap.add_argument("--n", type=int, default=20000, help="text events per stream")
    ap.add_argument("--streams", type=int, default=5, help="timed streams per child")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--tree", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.port, args.n, args.streams, args.tree)))
        return 0

    from bench.run import start_server, stop_server

    columns = (["before"] if args.before else []) + ["off", "on"]
    base = columns[0]
    server, port = start_server([args.n, COUNT_SHORT, COUNT_LONG])
    rows: Dict[str, List[Dict[str, Any]]] = {c: [] for c in columns}
    try:
        for r in range(args.rounds):
            for column in columns[r % len(columns):] + columns[: r % len(columns)]:
                rows[column].append(run_child(column, port, args))
            print(f"round {r + 1}/{args.rounds} (wall/CPU µs per chunk): " + ", ".join(
                f"{c}={rows[c][-1]['wall_us']:.2f}/{rows[c][-1]['cpu_us']:.2f}" for c in columns),
                file=sys.stderr, flush=True)
    finally:
        stop_server(server)

    def med(column: str, key: str) -> float:
        return statistics.median(x[key] for x in rows[column])

    def ratio(column: str, key: str) -> float:
        return statistics.median(a[key] / b[key] for a, b in zip(rows[column], rows[base]))

    print(f"n={args.n} text events per stream, {args.streams} streams per child, {args.rounds} rounds; "
          f"python {sys.version.split()[0]}")
    print(f"| column | tree | calls/chunk | wall µs/chunk | CPU µs/chunk | wall ÷ {base} | CPU ÷ {base} |")
    print("|---|---|---|---|---|---|---|")
    for c in columns:
        counted = sorted({round(x["calls_per_chunk"], 2) for x in rows[c]})
        print(f"| {c} | {rows[c][0]['tree']} | {' / '.join(f'{x:.2f}' for x in counted)} | {med(c, 'wall_us'):.2f} | "
              f"{med(c, 'cpu_us'):.2f} | {ratio(c, 'wall_us'):.3f} | {ratio(c, 'cpu_us'):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
