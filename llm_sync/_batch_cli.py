"""``llm-sync batch -m MODEL INPUT.jsonl -o OUT.jsonl``: run_many from the command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import IO, TYPE_CHECKING, Any, List, Optional, Sequence, Tuple

if TYPE_CHECKING:
    from ._batch import BatchResult
    from ._context import Context
    from .providers._base import StreamingModelProvider

__all__ = ["HELP", "add_parser", "main", "run"]

HELP = """\
Send every line of INPUT.jsonl to a model, many at a time, and write the results to OUT.jsonl.

Input: JSON Lines, one item per non-blank line, in one of three forms:

  "What is the capital of France?"                          a JSON string: the prompt
  {"id": "q1", "prompt": "What is ...?", "system": "..."}   a prompt, an optional system prompt
  {"id": "q2", "messages": [...], "tools": [...]}           a whole context (Context.to_dict())

"id" is optional, any JSON value, and copied to the output line.

Output: written when the run ends, one line per input line, in input order:

  {"index": 0, "id": "q1", "attempts": 1, "cost": 0.00012, "response": {"text": ..., "usage": ..., ...}}
  {"index": 1, "attempts": 5, "cost": null, "error": {"type": "RateLimitedError", "message": ..., "retryable": true}}

"-o -" writes the same lines to standard output.

While it runs, finished items go to the checkpoint OUT.jsonl.checkpoint (or --checkpoint PATH;
with -o -, only that one): after Ctrl-C or a crash, the same command again sends only the items
not finished (and those that failed with a retryable error). The default checkpoint is deleted
once every item succeeded; one given with --checkpoint is kept. A 429 pauses every request of
the run; rate limits and overloads lower the number in flight until they pass.

Exit codes: 0 every item succeeded; 1 some failed (their errors are in the output) or a provider
error; 2 a usage error (bad arguments, an unknown model, a malformed input line, named with its
number); 130 interrupted.
"""

PROG = "llm-sync batch"
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Usage(Exception):
    """A mistake in the command line or the input file: exit code 2."""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``batch`` subcommand to an ``add_subparsers()`` object."""
    p = sub.add_parser(
        "batch",
        help="send every line of a JSONL file to a model, many at a time, resumably",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _arguments(p)
    return p  # type: ignore[no-any-return]


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="INPUT.jsonl", help="one prompt or context per line ('-' reads stdin)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.jsonl", help="where the results go ('-': stdout)")
    p.add_argument("-m", "--model", help="model string (default: $LLM_SYNC_MODEL)")
    p.add_argument("-s", "--system", help="system prompt for the lines that give none")
    p.add_argument("-j", "--workers", type=_positive, default=16, metavar="N", help="requests at once (default 16)")
    p.add_argument("--retries", type=_non_negative, default=4, metavar="N", help="re-sends per item (default 4)")
    p.add_argument("--max-tokens", type=_positive, metavar="N", help="cap each answer's length")
    p.add_argument("--checkpoint", metavar="PATH", help="default: OUT.jsonl.checkpoint (none with -o -)")
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("--progress", dest="progress", action="store_true", default=None, help="show progress")
    shown.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress")


def _positive(text: str) -> int:
    n = _non_negative(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return n


def _non_negative(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return n


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``llm-sync batch`` on its own: parse ``argv`` and run."""
    parser = argparse.ArgumentParser(prog=PROG, description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    _arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else EXIT_USAGE
    return run(args)


def run(args: argparse.Namespace) -> int:
    """Run the parsed ``batch`` command; returns the exit code and prints no traceback."""
    from ._errors import LlmError
    from ._parse import UnknownModelError

    try:
        return _run(args)
    except KeyboardInterrupt:
        _say("interrupted")
        return EXIT_INTERRUPTED
    except (_Usage, UnknownModelError) as err:
        _say(f"error: {err}")
        return EXIT_USAGE
    except (LlmError, ImportError, ValueError, OSError) as err:
        _say(f"error: {err}")
        return EXIT_ERROR


def _run(args: argparse.Namespace) -> int:
    from ._batch import run_many

    items = _read_items(args.input, args.system)
    provider = _provider(args.model, args.max_tokens)
    to_stdout = args.output == "-"
    checkpoint = args.checkpoint or (None if to_stdout else args.output + ".checkpoint")
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    contexts = [c for _, c in items]
    results: List[Optional[BatchResult]] = [None] * len(items)
    run = run_many(
        provider, contexts, max_workers=args.workers, retries=args.retries, checkpoint=checkpoint, progress=progress
    )
    try:
        with run:
            for r in run:
                results[r.index] = r
    except KeyboardInterrupt:
        if checkpoint is None:
            _say(f"interrupted after {run.done} of {len(items)} items (no checkpoint: pass --checkpoint to resume)")
        else:
            _say(
                f"interrupted: {run.done} of {len(items)} items are in {checkpoint}; "
                "run the same command again to send only the rest"
            )
        return EXIT_INTERRUPTED
    if to_stdout:
        _write_to(sys.stdout, items, results)
        sys.stdout.flush()
    else:
        _write(args.output, items, results)
    failed = sum(1 for r in results if r is not None and r.error is not None)
    if failed:
        where = "" if checkpoint is None else "; run the same command again to retry the ones that may succeed"
        _say(f"{failed} of {len(items)} items failed (their errors are in the output){where}")
        return EXIT_ERROR
    if checkpoint is not None and args.checkpoint is None:
        os.remove(checkpoint)  # the default one, once it has served; one given with --checkpoint stays
    return EXIT_OK


def _read_items(path: str, system: Optional[str]) -> List[Tuple[Any, Context]]:
    from ._context import Context
    from ._messages import ChatMessage

    try:
        if path == "-":
            lines = sys.stdin.read().splitlines()
        else:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
    except OSError as err:
        raise _Usage(f"cannot read {path}: {err.strerror or err}") from None
    items: List[Tuple[Any, Context]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            obj = json.loads(line)
        except ValueError as err:
            raise _Usage(f"{where}: not JSON ({err})") from None
        if isinstance(obj, str):
            obj = {"prompt": obj}
        if not isinstance(obj, dict):
            raise _Usage(f"{where}: expected a JSON string or object, got {type(obj).__name__}")
        ident = obj.get("id")
        try:
            if "messages" in obj:
                ctx = Context.from_dict(obj)
                if system and not any(m.is_system for m in ctx.messages):
                    ctx = Context([ChatMessage.System(system), *ctx.messages], ctx.tools,
                                  reasoning_effort=ctx.reasoning_effort, prompt_cache_key=ctx.prompt_cache_key)
            elif isinstance(obj.get("prompt"), str):
                own = obj.get("system", system)
                first = [ChatMessage.System(own)] if own else []
                ctx = Context([*first, ChatMessage.User(obj["prompt"])])
            else:
                raise _Usage(f"{where}: an object needs \"prompt\" (a string) or \"messages\" (a context)")
        except (ValueError, TypeError, KeyError) as err:
            raise _Usage(f"{where}: not a context ({type(err).__name__}: {err})") from None
        items.append((ident, ctx))
    if not items:
        raise _Usage(f"{path} has no items (one JSON string or object per line)")
    return items


def _provider(spec: Optional[str], max_tokens: Optional[int]) -> StreamingModelProvider:
    from ._parse import parse_model

    spec = spec or os.environ.get("LLM_SYNC_MODEL")
    if not spec:
        raise _Usage("no model given: pass -m provider:model (e.g. -m anthropic:claude-sonnet-4-5) or set LLM_SYNC_MODEL")
    provider, _ = parse_model(spec)
    if max_tokens is not None:
        method = getattr(provider, "with_max_tokens", None)
        if method is None:
            raise _Usage(f"--max-tokens is not supported by {provider.display_name()}")
        provider = method(max_tokens)
    return provider


def _write(path: str, items: List[Tuple[Any, Context]], results: List[Optional[BatchResult]]) -> None:
    """OUT.jsonl in input order, replaced whole (a temporary file, then a rename)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        _write_to(f, items, results)
    os.replace(tmp, path)


def _write_to(f: IO[str], items: List[Tuple[Any, Context]], results: List[Optional[BatchResult]]) -> None:
    for (ident, _), r in zip(items, results):
        assert r is not None
        line: dict[str, Any] = {"index": r.index}
        if ident is not None:
            line["id"] = ident
        line["attempts"] = r.attempts
        line["cost"] = r.cost
        if r.response is not None:
            line["response"] = r.response.to_dict()
        else:
            assert r.error is not None
            line["error"] = {"type": type(r.error).__name__, "message": str(r.error), "retryable": r.error.retryable}
        f.write(json.dumps(line, ensure_ascii=False) + "\n")


def _say(message: str) -> None:
    try:
        print(f"llm-sync: {message}", file=sys.stderr, flush=True)
    except (BrokenPipeError, ValueError):
        pass
