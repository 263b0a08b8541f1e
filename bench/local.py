# ruff: noqa: RUF001, RUF002, RUF003  (the tables use × and – on purpose)
"""The embedded model: ``llm-sync chat -m local`` against raw HTTP to the same llama.cpp server.

One process loads the model once, the way ``llm-sync chat -m local`` does
(``parse_model("local")``: one llama.cpp server per process), then alternates, for
``runs`` rounds, two clients on the same prompt with temperature 0 and
``max_tokens``:

- ``llm-sync chat -m local``: the CLI's own turn (``cli._turn`` with its text view,
  writing to a sink that notes when text arrives), the provider made as the CLI makes
  it plus ``with_temperature(0)``;
- raw HTTP (the floor): ``http.client`` posting the same request body to the same
  server, splitting the SSE lines by hand, one ``json.loads`` per event.

Both must produce the same text (temperature 0), so they did the same work. Time to
first token is from the call to the first text; tokens per second is (tokens − 1) ÷
(last text − first text), tokens from the server's usage. Model load (server start
to healthy, in a fresh process) is measured apart: a process pays it once.
"""

from __future__ import annotations

import http.client
import io
import json
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional
from urllib.parse import urlsplit

PROMPT = "Tell me about the river Nile, its sources, its floods and the cities along it."

MODES: Dict[str, Dict[str, Any]] = {
    "full": dict(runs=5, max_tokens=128, loads=3),
    "quick": dict(runs=2, max_tokens=64, loads=1),
    "smoke": dict(runs=1, max_tokens=8, loads=0),  # no separate load: the test suite has the model loaded
}


def available() -> Optional[str]:
    """None if the embedded model can run here, else why not."""
    import importlib.util

    if importlib.util.find_spec("llm_sync.local") is None:
        return "llm_sync.local is missing"
    from llm_sync import local

    if not local.available():
        return 'the "local" extra (xllamacpp and the bundled model) is not installed (it needs Python 3.10+)'
    return None


class _Sink(io.StringIO):
    """Where the CLI's view writes: notes when the first and the last text arrive."""

    def __init__(self) -> None:
        super().__init__()
        self.first: Optional[float] = None
        self.last: Optional[float] = None

    def write(self, s: str) -> int:
        if s.strip():
            now = time.perf_counter()
            if self.first is None:
                self.first = now
            self.last = now
        return super().write(s)

    def isatty(self) -> bool:
        return False


def cli_turn(provider: Any, prompt: str) -> Dict[str, Any]:
    """One answer through ``llm-sync chat``'s own code path (its turn and its text view)."""
    from llm_sync import ChatMessage, Context, cli

    sink = _Sink()
    view = cli._View(sink, show_reasoning=False, as_json=False)
    context = Context([ChatMessage.User(prompt)])
    t0 = time.perf_counter()
    collected = cli._turn(provider, context, view)
    t_end = time.perf_counter()
    tokens = collected.usage.output_tokens if collected.usage is not None else None
    return {"text": collected.text, "tokens": tokens, "t0": t0, "first": sink.first, "last": sink.last,
            "end": t_end}


def raw_turn(url: str, key: str, body: Dict[str, Any]) -> Dict[str, Any]:
    """The same request with ``http.client``: the floor for this server."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=120)
    data = json.dumps(body).encode()
    t0 = time.perf_counter()
    conn.request("POST", parts.path.rstrip("/") + "/v1/chat/completions", body=data,
                 headers={"content-type": "application/json", "authorization": f"Bearer {key}",
                          "accept": "text/event-stream"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"llama.cpp answered {resp.status}: {resp.read(500)!r}")
    texts: List[str] = []
    first = last = None
    tokens = None
    loads = json.loads
    while True:
        line = resp.readline()
        if not line:
            break
        if not line.startswith(b"data: "):
            continue
        payload = line[6:].strip()
        if payload == b"[DONE]":
            break
        ev = loads(payload)
        for choice in ev.get("choices") or ():
            content = (choice.get("delta") or {}).get("content")
            if content:
                texts.append(content)
                if content.strip():  # as the CLI's sink counts: text that shows
                    now = time.perf_counter()
                    first = first if first is not None else now
                    last = now
        if ev.get("usage"):
            tokens = ev["usage"].get("completion_tokens")
    t_end = time.perf_counter()
    conn.close()
    return {"text": "".join(texts), "tokens": tokens, "t0": t0, "first": first, "last": last, "end": t_end}


def _figures(r: Dict[str, Any]) -> Dict[str, Any]:
    ttft = (r["first"] - r["t0"]) * 1e3 if r["first"] is not None else None
    span = (r["last"] - r["first"]) if r["first"] is not None and r["last"] is not None else 0
    tokens = r["tokens"]
    rate = (tokens - 1) / span if tokens and tokens > 1 and span > 0 else None
    return {"ttft_ms": ttft, "tok_s": rate, "tokens": tokens, "whole_ms": (r["end"] - r["t0"]) * 1e3}


def load_child() -> Dict[str, Any]:
    """In a fresh process: import, then ``local_provider()`` (the model load), then one short answer."""
    t0 = time.perf_counter()
    from llm_sync import ChatMessage, Context
    from llm_sync.local import local_provider

    t1 = time.perf_counter()
    provider = local_provider(max_tokens=4, temperature=0)
    t2 = time.perf_counter()
    provider.stream_response(Context([ChatMessage.User("Hi")])).collect()
    t3 = time.perf_counter()
    return {"import_ms": (t1 - t0) * 1e3, "load_ms": (t2 - t1) * 1e3, "first_answer_ms": (t3 - t2) * 1e3}


def run(settings: Dict[str, Any]) -> Dict[str, Any]:
    why = available()
    if why:
        return {"skipped": why}
    from llm_sync import local
    from llm_sync._parse import parse_model

    n, runs = settings["max_tokens"], settings["runs"]
    loads: List[Dict[str, Any]] = []
    for _ in range(settings["loads"]):
        p = subprocess.run([sys.executable, "-m", "bench.local", "--child"], capture_output=True, text=True,
                           timeout=600)
        if p.returncode:
            raise RuntimeError(f"the model-load child failed: {p.stderr[-2000:]}")
        loads.append(json.loads(p.stdout.strip().splitlines()[-1]))
    t_load = time.perf_counter()
    provider, _ = parse_model("local")  # what `llm-sync chat -m local` runs
    load_here_ms = (time.perf_counter() - t_load) * 1e3
    provider = provider.with_max_tokens(n).with_temperature(0)
    server = next(s for s in local._SHARED.values() if not s.closed)
    # The body the provider sends, so the floor asks for exactly the same answer.
    body = {"model": server.model_name, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": n,
            "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
    if server.bundled:
        body["stop"] = list(local._QA_STOP)
    rows: Dict[str, List[Dict[str, Any]]] = {"llm-sync chat -m local": [], "raw HTTP (http.client)": []}
    cli_turn(provider, "Hi")  # warm: connection, lazy imports, the server's first request
    raw_turn(server.url, server._key, dict(body, max_tokens=4))
    texts = set()
    for i in range(runs):
        order = [("llm-sync chat -m local", None), ("raw HTTP (http.client)", None)]
        for name, _ in order if i % 2 == 0 else order[::-1]:
            r = cli_turn(provider, PROMPT) if name.startswith("llm") else raw_turn(server.url, server._key, body)
            texts.add(r["text"])
            rows[name].append(_figures(r))
        print(f"  local {i + 1}/{runs}: " + ", ".join(
            f"{k.split()[0]} {v[-1]['ttft_ms']:.1f} ms {v[-1]['tok_s'] or 0:.1f} tok/s" for k, v in rows.items()),
            file=sys.stderr, flush=True)
    local.stop_local_servers()
    if len(texts) != 1:
        raise RuntimeError(f"the two clients got different answers at temperature 0: {texts!r}")
    out: Dict[str, Any] = {"settings": dict(settings), "prompt": PROMPT, "answer": texts.pop(),
                           "loads": loads, "load_in_bench_process_ms": load_here_ms, "rows": rows}
    raw, ours = rows["raw HTTP (http.client)"], rows["llm-sync chat -m local"]
    out["ratios"] = {
        "ttft": _stats([a["ttft_ms"] / b["ttft_ms"] for a, b in zip(ours, raw) if a["ttft_ms"] and b["ttft_ms"]]),
        "tok_s": _stats([b["tok_s"] / a["tok_s"] for a, b in zip(ours, raw) if a["tok_s"] and b["tok_s"]]),
    }
    return out


def _stats(xs: List[float]) -> Optional[Dict[str, float]]:
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def _fmt(s: Optional[Dict[str, float]], digits: int = 1) -> str:
    if not s:
        return "–"
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}–{s['max']:.{digits}f})"


def report(L: Dict[str, Any]) -> str:
    if "skipped" in L:
        return f"## The embedded model\n\nNot run: {L['skipped']}.\n"
    st = L["settings"]
    out = [f"## The embedded model: `llm-sync chat -m local` vs raw HTTP to the same llama.cpp server "
           f"({st['runs']} runs alternated, temperature 0, max {st['max_tokens']} tokens; median (min–max))", "",
           f"Prompt: {L['prompt']!r}; both clients got the same {len(L['answer'])}-character answer.", "",
           "| client | time to first token ms | tokens/s after the first | tokens | whole answer ms |",
           "|---|---|---|---|---|"]
    for name, rows in L["rows"].items():
        out.append(f"| {name} | {_fmt(_stats([r['ttft_ms'] for r in rows]))} | "
                   f"{_fmt(_stats([r['tok_s'] for r in rows]))} | {rows[0]['tokens']} | "
                   f"{_fmt(_stats([r['whole_ms'] for r in rows]), 0)} |")
    r = L["ratios"]
    out += ["", f"Within each run: TTFT × raw HTTP {_fmt(r['ttft'], 3)}; raw HTTP tokens/s ÷ ours "
            f"{_fmt(r['tok_s'], 3)} (the target: both ≤ 1.1).", "",
            f"Model load, paid once per process ({len(L['loads'])} fresh processes; ms): import "
            f"{_fmt(_stats([x['import_ms'] for x in L['loads']]), 0)}, `local_provider()` (server start to "
            f"healthy) {_fmt(_stats([x['load_ms'] for x in L['loads']]), 0)}, then its first short answer "
            f"{_fmt(_stats([x['first_answer_ms'] for x in L['loads']]), 0)}; in the bench process itself "
            f"{L['load_in_bench_process_ms']:.0f}. `local_provider()` keeps one server "
            "per process: a notebook kernel pays the load in the first cell that uses it and not again; a Django "
            "(or any WSGI/ASGI) worker pays it on its first request, or at start-up from `AppConfig.ready()`, and "
            "every request after that shares the loaded model.", ""]
    return "\n".join(out) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m bench.local", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(load_child()), flush=True)
        return 0
    L = run(MODES["smoke" if a.smoke else "quick" if a.quick else "full"])
    print(report(L))
    return 0


if __name__ == "__main__":
    sys.exit(main())
