"""The ``llm-sync`` command line: chat with a model string, keep and list conversations, list models, run a batch, sign in to Codex.

Exit codes: 0 success, 2 usage error (bad arguments, a bad model string, an attachment that
cannot be sent), 1 any other error (one line on stderr, never a traceback; ``LLM_SYNC_DEBUG=1``
adds it), 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from typing import IO, Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from . import _catalog
from ._alloyed import AlloyedModelProvider
from ._content import ContentBlock
from ._context import Context
from ._errors import LlmError, MissingApiKeyError
from ._fallback import FallbackProvider
from ._messages import ChatMessage
from ._model import LlmModel
from ._observe import ROOT
from ._parse import UnknownModelError, parse_model
from ._reasoning import ReasoningEffort
from ._stream import CollectedResponse
from ._structured import answer_as_json
from ._timeouts import Timeouts
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
        description="Chat with LLMs from the terminal, keep the conversations, list models, sign in to Codex.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    chat = sub.add_parser(
        "chat",
        help="stream an answer (interactive when no prompt is given on a terminal)",
        description=(
            "Stream a model's answer. The prompt is the arguments joined by spaces; '-' stands "
            "for standard input, which is also read when no prompt is given and stdin is piped. "
            "With neither, on a terminal: an interactive chat (Ctrl-C stops the answer, Ctrl-D leaves). "
            "Each exchange is kept in the conversation log (llm-sync logs) unless --no-log is given."
        ),
    )
    chat.add_argument(
        "-m",
        "--model",
        help="model string, e.g. anthropic:claude-sonnet-4-5, ollama:qwen3:8b, "
        "'openai-compatible:MODEL@localhost:8000/v1', local; 'a>b' falls back to b when a fails "
        "before answering, 'a,b' takes turns "
        "(default: the conversation's when continuing, else $LLM_SYNC_MODEL, else the first "
        "provider with a key, else the local model)",
    )
    chat.add_argument("prompt", nargs="*", metavar="PROMPT", help="the prompt ('-' reads stdin)")
    chat.add_argument("-s", "--system", help="system prompt (replaces the conversation's when continuing)")
    chat.add_argument(
        "-a",
        "--attach",
        action="append",
        default=[],
        metavar="FILE",
        help="attach an image or audio file (repeatable)",
    )
    resume = chat.add_mutually_exclusive_group()
    resume.add_argument(
        "-c", "--continue", dest="continue_last", action="store_true", help="continue the last conversation"
    )
    resume.add_argument("--cid", metavar="ID", help="continue the conversation with this id (or a prefix of it)")
    chat.add_argument("-e", "--effort", help="reasoning effort: none, low, medium, high, xhigh")
    chat.add_argument("--max-tokens", type=_positive_int, metavar="N", help="cap the answer's length")
    chat.add_argument("--temperature", type=_temperature, metavar="T", help="sampling temperature (0 = greedy)")
    chat.add_argument(
        "--timeout",
        type=_timeouts,
        metavar="SPEC",
        help="seconds (for connecting, the first token and each pause), or phases: "
        "connect=5,first_event=60,idle=30,total=300",
    )
    chat.add_argument("--reasoning", action="store_true", help="show the model's reasoning (dimmed)")
    chat.add_argument("--no-stream", action="store_true", help="print the answer when it is complete")
    chat.add_argument("--no-log", action="store_true", help="do not keep this exchange in the conversation log")
    chat.add_argument(
        "--json", action="store_true", help="print one JSON object per chunk (one for the answer with --no-stream)"
    )
    chat.add_argument(
        "--usage", action="store_true", help="print token usage and estimated cost at the end"
    )
    chat.add_argument(
        "--schema",
        metavar="FILE_OR_JSON",
        help="ask for JSON matching this JSON Schema (a file, or the JSON itself) and print the "
        "validated JSON on one line",
    )

    logs = sub.add_parser(
        "logs",
        help="list the kept conversations, or show one",
        description="List the conversations kept by llm-sync chat (newest first), or show one by its id.",
    )
    logs.add_argument("cid", nargs="?", metavar="ID", help="show this conversation (an id or a prefix of one)")
    logs.add_argument("-n", "--count", type=_positive_int, default=10, metavar="N", help="list this many (10)")
    logs.add_argument("--json", action="store_true", help="JSON: one object per conversation")
    logs.add_argument("--path", action="store_true", help="print where the log is kept")

    models = sub.add_parser(
        "models",
        help="list models with windows and prices: the catalog, the local model, local servers",
        description=(
            "List the model catalog, the embedded local model and the models of local servers "
            "(Ollama, llama.cpp, LM Studio) that answer now."
        ),
    )
    models.add_argument(
        "--available", action="store_true", help="only what works now: a key, a sign-in, or no key needed"
    )
    models.add_argument(
        "--provider", metavar="P", help="only this provider (anthropic, local, ollama, llamacpp, openai-compatible, ...)"
    )
    models.add_argument("--local", action="store_true", help=argparse.SUPPRESS)  # the default now
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


def _temperature(text: str) -> float:
    try:
        t = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number such as 0 or 0.7, got {text!r}") from None
    if not 0.0 <= t <= 2.0:
        raise argparse.ArgumentTypeError(f"expected a temperature from 0 to 2, got {text!r}")
    return t


_PHASES = ("connect", "first_event", "idle", "total")


def _timeouts(text: str) -> Timeouts:
    """``30`` (connect, first event and idle) or ``connect=5,first_event=60,idle=30,total=300``."""
    spec = text.strip()
    try:
        if "=" not in spec:
            seconds = float(spec)
            return Timeouts(connect=seconds, first_event=seconds, idle=seconds)
        given: Dict[str, float] = {}
        for part in spec.split(","):
            name, _, number = part.partition("=")
            name = name.strip().replace("-", "_")
            if name not in _PHASES:
                raise argparse.ArgumentTypeError(
                    f"unknown timeout phase {name!r} in {text!r}: the phases are {', '.join(_PHASES)}"
                )
            given[name] = float(number)
        return Timeouts(**given)
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"expected seconds (e.g. 30) or phases (e.g. connect=5,idle=30), got {text!r}: {err}"
        ) from None


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
        "logs": _logs,
        "models": _models,
        "login": _login,
        "batch": _batch,
    }[args.command]
    return _guarded(handler, args)


def _guarded(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    import warnings

    try:
        with warnings.catch_warnings():
            # A warning is one line of advice here, not a file name and a source line.
            warnings.showwarning = _show_warning
            return handler(args)
    except (UsageError, UnknownModelError) as err:
        _complain(f"error: {err}")
        return EXIT_USAGE
    except LlmError as err:
        _complain(_describe(err))
        return EXIT_ERROR
    except KeyboardInterrupt:
        _complain("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `llm-sync chat ... | head`: the reader left; not an error worth a message.
        _quiet_stdout()
        return EXIT_OK
    except (ImportError, ValueError, OSError, RuntimeError) as err:
        # Configuration problems found while building a provider or starting the local
        # model (a missing extra, an address that is not a URL, a model llama.cpp cannot
        # load, a folder or a conversation log that cannot be used): the message says what to do.
        _complain(f"error: {_plain(err)}")
        _debug_traceback()
        return EXIT_ERROR
    except Exception as err:  # a bug: still one line, with the way to see more
        _complain(
            f"unexpected error: {type(err).__name__}: {err} (run with LLM_SYNC_DEBUG=1 for the "
            "traceback, and please report it)"
        )
        _debug_traceback()
        return EXIT_ERROR


def _batch(args: argparse.Namespace) -> int:
    from . import _batch_cli

    return _batch_cli.run(args)


def _show_warning(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    _complain(f"warning: {message}")


def _plain(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        where = f" ({err.filename})" if err.filename else ""
        return f"{err.strerror}{where}"
    return str(err) or type(err).__name__


def _debug_traceback() -> None:
    if os.environ.get("LLM_SYNC_DEBUG"):
        import traceback

        traceback.print_exc()


# Filled by _chat: provider id -> the label its errors are reported under.
_LABELS: Dict[str, str] = {}


def _describe(err: LlmError) -> str:
    """``<Provider> (<model>): <ErrorType>: <message>``, with the CLI's advice for a missing key."""
    who = _LABELS.get(err.provider or "") or _catalog.provider_label(err.provider or "") or err.provider
    where = f"{who} ({err.model})" if who and err.model else who
    prefix = f"{where}: " if where else ""
    if isinstance(err, MissingApiKeyError) and err.variable:
        # The library's text also offers api_key=, which a command line cannot take.
        return (
            f"{prefix}no API key: set {err.variable} in the environment or in a .env file "
            f"(export {err.variable}=...), or choose another model with -m"
        )
    status = f" (HTTP {err.status})" if err.status is not None else ""
    return f"{prefix}{type(err).__name__}: {err.message}{status}"


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


class _Session:
    """What one ``chat`` run works with: the provider, its model, and the conversation so far."""

    def __init__(
        self, args: argparse.Namespace, built: Optional[Tuple[StreamingModelProvider, LlmModel]] = None
    ) -> None:
        """``built`` stands in for what ``-m`` would build (tests pass a fake provider)."""
        from ._conversations import ConversationLog

        try:
            self.effort = ReasoningEffort.parse(args.effort)
        except ValueError as err:
            raise UsageError(str(err)) from None
        self.args = args
        self.log: Optional[ConversationLog] = None
        self.warned = False
        self.cid: Optional[str] = None
        self.history: List[ChatMessage] = []
        self.system: Optional[str] = args.system
        try:
            spec: Optional[str] = args.model
            if args.continue_last or args.cid:
                self.log = ConversationLog()  # LogError: the log is needed to continue
                if args.cid:
                    try:
                        found = self.log.find(args.cid)
                    except LookupError as err:
                        raise UsageError(str(err)) from None
                else:
                    latest = self.log.latest()
                    if latest is None:
                        raise UsageError(f"no conversation to continue: the log ({self.log.path}) is empty")
                    found = latest
                self.cid = found.id
                self.history = self.log.messages(found.id)
                if args.system is None:
                    self.system = found.system
                spec = spec or found.model
            if built is not None:
                self.provider, self.model = built
                self.spec = str(self.model)
            else:
                self.spec = spec or os.environ.get("LLM_SYNC_MODEL") or _default_spec()
                self.provider, self.model = parse_model(self.spec)
            self.provider = _configured(self.provider, args)
            _LABELS.update(_labels(self.provider))
            self.view = _View(sys.stdout, show_reasoning=args.reasoning, as_json=args.json)
            self.noted_reasoning = _note_reasoning(self.provider, self.model, self.effort, args.reasoning)
        except BaseException:
            self.close()  # a refused -c/--cid or -m must not leave the log open
            raise

    def close(self) -> None:
        if self.log is not None:
            self.log.close()

    def context(self, user: ChatMessage) -> Context:
        messages = [ChatMessage.System(self.system)] if self.system else []
        return Context([*messages, *self.history, user], reasoning_effort=self.effort)

    def turn(self, prompt: str, attachments: Sequence[ContentBlock] = ()) -> CollectedResponse:
        """Ask, show the answer, keep the exchange; a failed turn leaves the conversation as it was."""
        user = ChatMessage.User([ContentBlock.Text(prompt), *attachments] if attachments else prompt)
        collected = _turn(self.provider, self.context(user), self.view, stream=not self.args.no_stream)
        if self.args.reasoning and not collected.reasoning and not self.noted_reasoning:
            _complain("note: no reasoning came back" + ("" if self.effort else " (-e asks for it)"))
            self.noted_reasoning = True
        answer = collected.to_message()
        self.history += [user, answer]
        if collected.complete and not self.args.no_log:
            self._keep(prompt, collected, [user, answer])
        if self.args.usage:
            _print_usage(collected, self.model)
        return collected

    def _keep(self, prompt: str, collected: CollectedResponse, messages: List[ChatMessage]) -> None:
        """Add the exchange to the log, opened on first use (a failed run leaves no file behind)."""
        from ._conversations import ConversationLog, LogError

        try:
            if self.log is None:
                self.log = ConversationLog()
            self.cid = self.log.record(
                self.cid,
                model=self.spec,
                system=self.system,
                prompt=prompt,
                answer=collected.text,
                messages=messages,
                usage=collected.usage.to_dict() if collected.usage is not None else None,
                stop_reason=collected.stop_reason.value if collected.stop_reason is not None else None,
            )
        except LogError as err:
            if not self.warned:
                self.warned = True
                _complain(f"warning: {err}; the conversation is not kept (--no-log stops trying)")


def _chat(args: argparse.Namespace) -> int:
    prompt = _prompt_from(args.prompt, sys.stdin)
    attachments = [_attachment(path) for path in args.attach]
    if prompt is None and attachments:
        raise UsageError("-a attaches files to a prompt: give the prompt too")
    if prompt is None and args.schema is not None:
        raise UsageError("--schema needs a prompt (an argument, or '-' to read stdin)")
    with _retry_notes():
        session = _Session(args)
        try:
            if prompt is None:
                return _interactive(session)
            if args.schema is not None:
                user = ChatMessage.User([ContentBlock.Text(prompt), *attachments] if attachments else prompt)
                collected = answer_as_json(session.provider, session.context(user), args.schema, sys.stdout)
                if args.usage:
                    _print_usage(collected, session.model)
                return EXIT_OK
            session.turn(prompt, attachments)
            return EXIT_OK
        finally:
            session.close()


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


def _default_spec() -> str:
    """The first provider with a key in the environment or ``.env``, else the local model."""
    from . import local
    from ._install import local_hint
    from ._keys import setting

    variables = []
    for key in _DEFAULT_ORDER:
        models = _catalog.all_models(key)
        variable = models[0].required_env_var if models else None
        if variable:
            variables.append(variable)
            if setting(None, variable):
                return key
    if local.available():  # the extra is installed: the embedded model needs no key
        return "local"
    raise UsageError(
        "no model given and none configured: pass -m provider:model (e.g. -m ollama:qwen3:8b), "
        f"set LLM_SYNC_MODEL, or set one of {', '.join(variables)}; for the embedded local "
        f"model: {local_hint()}"
    )


# -- provider options --------------------------------------------------------------------


def _configured(provider: StreamingModelProvider, args: argparse.Namespace) -> StreamingModelProvider:
    """``provider`` with the command line's options applied."""
    if args.max_tokens is not None:
        provider = _apply(provider, "with_max_tokens", args.max_tokens, "--max-tokens")
    if args.temperature is not None:
        provider = _apply(provider, "with_temperature", args.temperature, "--temperature")
    if args.timeout is not None:
        provider = _apply(provider, "with_timeout", args.timeout, "--timeout")
    return provider


def _apply(provider: StreamingModelProvider, method: str, value: Any, flag: str) -> StreamingModelProvider:
    if isinstance(provider, AlloyedModelProvider):
        return AlloyedModelProvider([_apply(p, method, value, flag) for p in provider.providers])
    if isinstance(provider, FallbackProvider):
        return provider.with_providers([_apply(p, method, value, flag) for p in provider.providers])
    configure = getattr(provider, method, None)
    if configure is None:
        raise UsageError(f"{flag} is not supported by {provider.display_name()} in this version of llm_sync")
    try:
        out = configure(value)
    except (TypeError, ValueError) as err:
        raise UsageError(f"{flag} {value}: {err}") from None
    assert isinstance(out, StreamingModelProvider)
    return out


@contextlib.contextmanager
def _retry_notes() -> Iterator[None]:
    """While in it, each retry the library logs (an INFO record) is one line on stderr."""

    class RetryNotes(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if getattr(record, "llm_sync_event", None) != "retry":
                return
            status = getattr(record, "llm_sync_status", None)
            _complain(
                f"{getattr(record, 'llm_sync_error', 'error')}{f' (HTTP {status})' if status else ''}; "
                f"retrying in {getattr(record, 'llm_sync_wait', 0.0):.1f} s "
                f"({getattr(record, 'llm_sync_attempt', '?')} of {getattr(record, 'llm_sync_max_retries', '?')})"
            )

    log = logging.getLogger(ROOT)
    handler = RetryNotes(logging.INFO)
    level = log.level
    log.addHandler(handler)
    if level == logging.NOTSET or level > logging.INFO:
        log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


def _labels(provider: StreamingModelProvider) -> Dict[str, str]:
    """Provider id -> its human label, for the providers ``provider`` may use."""
    if isinstance(provider, (AlloyedModelProvider, FallbackProvider)):
        out: Dict[str, str] = {}
        for p in provider.providers:
            out.update(_labels(p))
        return out
    pid, label = getattr(provider, "provider_id", None), getattr(provider, "label", None)
    return {pid: label} if isinstance(pid, str) and pid and isinstance(label, str) and label else {}


def _note_reasoning(
    provider: StreamingModelProvider, model: LlmModel, effort: Optional[ReasoningEffort], show: bool
) -> bool:
    """Say so when -e or --reasoning asks a model that does not reason; whether a note was printed."""
    if not (effort or show) or isinstance(provider, (AlloyedModelProvider, FallbackProvider)):
        return False
    known = model.provider == "local" or _catalog.lookup(model.provider, model.model_id) is not None
    if not known or model.reasoning_levels:
        return False
    flags = " and ".join(f for f, on in (("-e/--effort", effort), ("--reasoning", show)) if on)
    _complain(f"note: {model} does not reason: {flags} will have no effect")
    return True


# -- attachments -------------------------------------------------------------------------

# What each kind of file becomes: a MIME type (or a "type/" prefix) -> the block for its bytes.
_ATTACHMENTS: Dict[str, Callable[[bytes, str], ContentBlock]] = {
    "image/": ContentBlock.Image.from_bytes,
    "audio/": ContentBlock.Audio.from_bytes,
    "application/pdf": ContentBlock.Document.from_bytes,
}
# Providers take a few MB per image or audio file; far more is a mistake, not a prompt.
_MAX_ATTACHMENT = 64 * 1024 * 1024
# Signatures, for files whose name says nothing.
_MAGIC: Tuple[Tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF8", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),
    (b"WAVE", 8, "audio/wav"),
    (b"ID3", 0, "audio/mpeg"),
    (b"fLaC", 0, "audio/flac"),
    (b"OggS", 0, "audio/ogg"),
    (b"%PDF-", 0, "application/pdf"),
)


def _attachment(path: str) -> ContentBlock:
    """The content block for the file at ``path``, chosen by its type; UsageError if none fits."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
            size = os.fstat(f.fileno()).st_size
            mime = _mime_type(path, head)
            build = _ATTACHMENTS.get(mime) or _ATTACHMENTS.get(mime.split("/")[0] + "/")
            if build is None:
                raise UsageError(
                    f"cannot attach {path} ({mime}): -a takes images and audio files and PDFs; put text in the prompt"
                )
            if size > _MAX_ATTACHMENT:
                raise UsageError(f"cannot attach {path}: {size:,} bytes is more than any provider takes")
            data = head + f.read()
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror or err}") from None
    if mime == "application/pdf":
        # The file's name goes along: Anthropic shows it as the title, Bedrock requires one.
        return ContentBlock.Document.from_bytes(data, mime, name=os.path.basename(path))
    return build(data, mime)


def _mime_type(path: str, head: bytes) -> str:
    import mimetypes

    for magic, offset, mime in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return mime
    guessed, _ = mimetypes.guess_type(path)
    return guessed or "application/octet-stream"


# -- the answer ----------------------------------------------------------------------------


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
        self.started = False  # any answer text yet

    def chunk(self, chunk: Any) -> None:
        if self.as_json:
            self.out.write(json.dumps(chunk.to_dict(), ensure_ascii=False) + "\n")
            self.out.flush()
            return
        kind = chunk.type
        if kind == "text":
            if self.in_reasoning:
                self._end_reasoning()
            text = chunk.chunk
            if not self.started:
                # Models often open with a space or a blank line; in a terminal that
                # is only a ragged start.
                text = text.lstrip()
                self.started = bool(text)
            self._write(text)
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

    def whole(self, collected: CollectedResponse) -> None:
        """The complete answer at once (``--no-stream``)."""
        if self.as_json:
            self.out.write(json.dumps(_answer_dict(collected), ensure_ascii=False) + "\n")
            self.out.flush()
            return
        if collected.reasoning and self.show_reasoning:
            self.chunk(_Piece("reasoning", collected.reasoning))
        self.chunk(_Piece("text", collected.text))
        self.finish()


class _Piece:
    """A stand-in chunk for the view: a kind and its text."""

    def __init__(self, kind: str, text: str) -> None:
        self.type = kind
        self.chunk = text


def _answer_dict(c: CollectedResponse) -> Dict[str, Any]:
    return {
        "provider": c.provider,
        "model": c.model,
        "text": c.text,
        "reasoning": c.reasoning or None,
        "tool_calls": [{"id": t.id, "name": t.name, "arguments": t.arguments} for t in c.tool_calls],
        "usage": c.usage.to_dict() if c.usage is not None else None,
        "stop_reason": c.stop_reason.value if c.stop_reason is not None else None,
    }


def _turn(provider: StreamingModelProvider, context: Context, view: _View, *, stream: bool = True) -> CollectedResponse:
    """Stream one answer to ``view`` (or show it whole at the end); the stream is closed however this ends."""
    answer = provider.stream_response(context)
    try:
        with answer:
            for chunk in answer:
                if stream:
                    view.chunk(chunk)
    finally:
        if stream:
            view.finish()
    # Named after the provider that answered (a fallback's may not be the first).
    collected = answer.partial()
    if not stream:
        view.whole(collected)
    return collected


def _print_usage(collected: CollectedResponse, model: LlmModel) -> None:
    usage = collected.usage
    if usage is None:
        _complain("the provider reported no token usage")
        return
    # The model that served this answer (with several, not necessarily the first); one
    # the catalog lacks has no price, not the price of the model asked for first.
    served = _catalog.lookup(collected.provider, collected.model)
    if served is None:
        # The same model id is the model asked for, whatever the stream calls its provider
        # (the embedded "local" model answers as llamacpp).
        other = collected.provider and collected.model and collected.model != model.model_id
        served = LlmModel(collected.provider, collected.model) if other else model
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
    cost = _catalog.estimate_cost(served, usage)
    if served.provider == "local":
        price = "cost $0 (the local model runs on this machine)"
    elif cost is not None:
        price = f"estimated cost ${cost:.6f}"
    else:
        price = f"no price known for {served}"
    _complain(f"tokens: {', '.join(parts)}; {price}")


def _interactive(session: _Session, read_line: Optional[Callable[[str], str]] = None) -> int:
    """A chat that keeps the conversation; Ctrl-C stops the current answer, Ctrl-D leaves."""
    if read_line is None:
        try:
            import readline  # noqa: F401  (line editing and history for input())
        except ImportError:  # pragma: no cover - Windows
            pass
        read_line = input
    err = sys.stderr
    resumed = f" (continuing conversation {session.cid})" if session.cid else ""
    print(
        f"Chatting with {session.provider.display_name()}{resumed}. Ctrl-C stops an answer; "
        "Ctrl-D or /exit leaves; /clear starts a new conversation.",
        file=err,
        flush=True,
    )
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
            session.history, session.cid = [], None
            print("(conversation cleared)", file=err, flush=True)
            continue
        try:
            session.turn(text)
        except KeyboardInterrupt:
            print("[stopped]", file=err, flush=True)
            continue  # the cut-off answer is dropped, and so is its question
        except LlmError as error:
            _complain(_describe(error))  # the conversation stays as it was
            continue


# -- logs ------------------------------------------------------------------------------------


def _logs(args: argparse.Namespace) -> int:
    from ._conversations import ConversationLog, log_path

    if args.path:
        print(log_path())
        return EXIT_OK
    out = sys.stdout
    with ConversationLog() as log:
        if args.cid:
            try:
                found = log.find(args.cid)
            except LookupError as err:
                raise UsageError(str(err)) from None
            turns = log.turns(found.id)
            if args.json:
                record = _conversation_dict(found)
                record["turns"] = [
                    {"created": _when(t.created), "model": t.model, "prompt": t.prompt, "answer": t.answer,
                     "usage": t.usage, "stop_reason": t.stop_reason}
                    for t in turns
                ]
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            else:
                _show_conversation(found, turns, out)
            return EXIT_OK
        recent = log.recent(args.count)
    if args.json:
        for c in recent:
            out.write(json.dumps(_conversation_dict(c), ensure_ascii=False) + "\n")
    elif not recent:
        _complain("no conversations kept yet (llm-sync chat keeps each one)")
    else:
        rows = [("ID", "UPDATED", "TURNS", "MODEL", "FIRST PROMPT")]
        rows += [(c.id, _when(c.updated), str(c.turns), c.model, c.title) for c in recent]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for r in rows:
            cells = [r[0].ljust(widths[0]), r[1].ljust(widths[1]), r[2].rjust(widths[2]), r[3].ljust(widths[3])]
            out.write("  ".join([*cells, r[4]]).rstrip() + "\n")
    out.flush()
    return EXIT_OK


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


def _conversation_dict(c: Any) -> Dict[str, Any]:
    return {"id": c.id, "model": c.model, "system": c.system, "title": c.title, "turns": c.turns,
            "created": _when(c.created), "updated": _when(c.updated)}


def _show_conversation(c: Any, turns: Sequence[Any], out: IO[str]) -> None:
    out.write(f"conversation {c.id} · {c.model} · {c.turns} turn{'s' if c.turns != 1 else ''} · "
              f"started {_when(c.created)}\n")
    if c.system:
        out.write(f"system: {c.system}\n")
    for t in turns:
        out.write(f"\n> {t.prompt}\n{t.answer.strip()}\n")


# -- models --------------------------------------------------------------------------------

# Providers listed beside the catalog's: their models come from a running server (or, for
# local, from the extra); openai-compatible lists servers found on the usual local ports.
_DISCOVERED = ("local", "ollama", "llamacpp", "openai-compatible")


def _models(args: argparse.Namespace) -> int:
    from . import local

    catalog = _catalog.catalog_providers()
    if args.provider and args.provider not in catalog and args.provider not in _DISCOVERED:
        import difflib

        known = sorted(set(catalog) | set(_DISCOVERED))
        close = difflib.get_close_matches(args.provider, known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UsageError(f"unknown provider {args.provider!r}{hint} (providers: {', '.join(known)})")
    wanted = args.provider
    found: List[LlmModel] = []
    if wanted is None or wanted in catalog:
        found += _catalog.available_models() if args.available else _catalog.all_models(wanted)
    if wanted in (None, "local") and (local.available() or not args.available):
        found += _catalog.local_models()
    if wanted is None or wanted in _DISCOVERED[1:]:
        found += _discover()
    if wanted:
        found = [m for m in found if m.provider == wanted]
    out = sys.stdout
    if args.json:
        for m in found:
            out.write(json.dumps(_model_dict(m)) + "\n")
    else:
        _table(found, out)
    out.flush()
    if wanted in _DISCOVERED[1:] and not found:
        _complain(f"no {wanted} server answered ({_where(wanted)}); start one, or set its address")
    if not args.json and wanted == "local" and not local.available():
        from ._install import local_hint

        _complain(f"the local model is not installed here: {local_hint()}")
    return EXIT_OK


def _discover() -> List[LlmModel]:
    from .providers.discovery import discover_local_models

    return discover_local_models()


def _where(provider: str) -> str:
    from .providers.discovery import default_hosts

    hosts = ", ".join(default_hosts())
    variable = {"ollama": "OLLAMA_HOST", "llamacpp": "LLAMA_CPP_HOST"}.get(provider)
    return f"asked {hosts}" + (f"; {variable} sets the address" if variable else "")


def _model_dict(m: LlmModel) -> Dict[str, Any]:
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

    from ._install import extra_hint

    if importlib.util.find_spec("llm_sync.providers.codex") is None:
        raise ImportError(f"Codex sign-in needs the codex provider: {extra_hint('codex')}")
    codex = importlib.import_module("llm_sync.providers.codex")
    login = getattr(codex, "login", None)
    if not callable(login):
        raise ImportError("this installation's Codex provider offers no sign-in (codex.login)")
    login()
    _complain("signed in to Codex")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover - `python -m llm_sync` goes through __main__
    sys.exit(main())
