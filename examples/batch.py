"""Answer many prompts at once over a thread pool, with a progress bar.

``python examples/batch.py -m anthropic:claude-sonnet-4-5 -j 8 prompts.txt`` (one prompt per
line; ``-`` or no file reads standard input). One provider is shared by every worker thread;
answers are written as JSON lines, in the input's order.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Dict, List, TextIO

from llm_sync import ChatMessage, Context, LlmError, StreamingModelProvider, parse_model


def default_model() -> str:
    """$LLM_SYNC_MODEL, else Claude when ANTHROPIC_API_KEY is set, else the embedded local model (no key)."""
    if os.environ.get("LLM_SYNC_MODEL"):
        return os.environ["LLM_SYNC_MODEL"]
    return "anthropic:claude-sonnet-4-5" if os.environ.get("ANTHROPIC_API_KEY") else "local"


class Progress:
    """A one-line progress bar on stderr, safe to update from several threads."""

    def __init__(self, total: int, out: TextIO = sys.stderr, width: int = 30) -> None:
        self.total, self.done, self.failed = total, 0, 0
        self.out, self.width = out, width
        self.lock = threading.Lock()
        self.draw()

    def step(self, ok: bool) -> None:
        with self.lock:
            self.done += 1
            self.failed += 0 if ok else 1
            self.draw()

    def draw(self) -> None:
        filled = self.width * self.done // max(self.total, 1)
        bar = "#" * filled + "." * (self.width - filled)
        failed = f", {self.failed} failed" if self.failed else ""
        end = "\n" if self.done == self.total else ""
        self.out.write(f"\r[{bar}] {self.done}/{self.total}{failed}{end}")
        self.out.flush()


def ask(provider: StreamingModelProvider, prompt: str) -> Dict[str, object]:
    try:
        reply = provider.stream_response(Context([ChatMessage.User(prompt)])).collect()
    except LlmError as err:
        return {"prompt": prompt, "error": f"{type(err).__name__}: {err}"}
    tokens = reply.usage.output_tokens if reply.usage else None
    return {"prompt": prompt, "answer": reply.text, "output_tokens": tokens}


def run(provider: StreamingModelProvider, prompts: List[str], workers: int) -> List[Dict[str, object]]:
    results: List[Dict[str, object]] = [{} for _ in prompts]
    progress = Progress(len(prompts))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(ask, provider, p): i for i, p in enumerate(prompts)}
        for future in as_completed(futures):
            results[futures[future]] = result = future.result()
            progress.step("error" not in result)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-m", "--model", default=default_model())
    parser.add_argument("-j", "--jobs", type=int, default=4, help="worker threads")
    parser.add_argument("file", nargs="?", default="-", help="prompts, one per line")
    args = parser.parse_args()
    with (sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")) as f:
        prompts = [line.strip() for line in f if line.strip()]
    provider, _ = parse_model(args.model)
    for result in run(provider, prompts, args.jobs):
        print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    try:
        main()
    except (LlmError, ImportError, ValueError, RuntimeError) as err:  # a missing key, extra or model
        sys.exit(f"batch.py: {err}")
    except KeyboardInterrupt:
        sys.exit(130)
