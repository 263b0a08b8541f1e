"""Find the models local servers offer: Ollama's ``/api/tags`` and OpenAI-style ``/v1/models`` (llama.cpp, LM Studio)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Iterable, List, Optional, Tuple

if TYPE_CHECKING:
    import requests

    from .._model import LlmModel

__all__ = [
    "LLAMA_CPP_DEFAULT_HOST",
    "LM_STUDIO_DEFAULT_HOST",
    "default_hosts",
    "discover_llama_cpp",
    "discover_local_models",
    "discover_ollama",
]

LLAMA_CPP_DEFAULT_HOST = "http://localhost:8080"
LM_STUDIO_DEFAULT_HOST = "http://localhost:1234"
# A model list is small; anything bigger is not the server we are looking for.
_MAX_BODY = 4 * 1024 * 1024


def default_hosts() -> List[str]:
    """Where to look when no hosts are given: ``OLLAMA_HOST``, ``LLAMA_CPP_HOST``, LM Studio."""
    from .._keys import setting
    from .ollama import DEFAULT_HOST, ollama_host_url

    ollama = setting(None, "OLLAMA_HOST")
    llama = setting(None, "LLAMA_CPP_HOST")
    hosts = [
        ollama_host_url(ollama) if ollama else DEFAULT_HOST,
        _llama_host(llama) if llama else LLAMA_CPP_DEFAULT_HOST,
        LM_STUDIO_DEFAULT_HOST,
    ]
    return list(dict.fromkeys(hosts))


def discover_local_models(
    hosts: Optional[Iterable[str]] = None, timeout: float = 0.5
) -> List[LlmModel]:
    """The models the local servers at ``hosts`` offer; never raises.

    Each host (a base URL such as ``http://localhost:11434``) is asked for
    Ollama's ``/api/tags`` first; a host that does not answer it is asked for the
    OpenAI-style ``/v1/models``. Ollama models come back as ``ollama:<name>``,
    llama.cpp models (``owned_by: llamacpp``) as ``llamacpp:<id>``, and any other
    server's as ``openai-compatible:<id>@<host>/v1``. A host that is down, slow
    (``timeout`` seconds to connect and to answer) or answers nonsense adds
    nothing. Runs in the calling thread, one short request at a time, and closes
    every socket it opens.
    """
    try:
        import requests
    except Exception:  # pragma: no cover - requests is a hard dependency
        return []
    found: List[LlmModel] = []
    try:
        targets = default_hosts() if hosts is None else [h for h in hosts if isinstance(h, str)]
        with requests.Session() as session:
            for host in targets:
                try:
                    found.extend(_discover_host(session, _base(host), timeout))
                except Exception:
                    continue  # one bad host must not hide the others
    except Exception:
        pass
    return list(dict.fromkeys(found))


def discover_ollama(host: Optional[str] = None, timeout: float = 0.5) -> List[LlmModel]:
    """Only Ollama's models, from ``host`` (default ``OLLAMA_HOST`` or ``localhost:11434``)."""
    from .ollama import DEFAULT_HOST, ollama_host_url

    try:
        import requests

        if host is None:
            from .._keys import setting

            env = setting(None, "OLLAMA_HOST")
            host = ollama_host_url(env) if env else DEFAULT_HOST
        with requests.Session() as session:
            return _ollama_models(session, _base(host), timeout) or []
    except Exception:
        return []


def discover_llama_cpp(host: Optional[str] = None, timeout: float = 0.5) -> List[LlmModel]:
    """Only the OpenAI-style ``/v1/models`` of ``host`` (default ``LLAMA_CPP_HOST`` or ``localhost:8080``)."""
    try:
        import requests

        if host is None:
            from .._keys import setting

            env = setting(None, "LLAMA_CPP_HOST")
            host = _llama_host(env) if env else LLAMA_CPP_DEFAULT_HOST
        with requests.Session() as session:
            return _openai_models(session, _base(host), timeout)
    except Exception:
        return []


def _llama_host(value: str) -> str:
    # llama.cpp's own defaults (port 8080), not Ollama's, for a host given without them.
    from .llamacpp import llama_cpp_host_url

    return llama_cpp_host_url(value)


def _base(host: str) -> str:
    host = host.strip().rstrip("/")
    if host.endswith("/v1"):
        host = host[:-3]
    if "://" not in host:
        from .ollama import ollama_host_url

        host = ollama_host_url(host)
    return host


def _discover_host(session: requests.Session, base: str, timeout: float) -> List[LlmModel]:
    models = _ollama_models(session, base, timeout)
    if models is not None:
        return models
    return _openai_models(session, base, timeout)


def _ollama_models(session: requests.Session, base: str, timeout: float) -> Optional[List[LlmModel]]:
    """The models of an Ollama server, or None when ``base`` is not one (or is down)."""
    from .._model import LlmModel

    data = _get_json(session, f"{base}/api/tags", timeout)
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        return None
    out: List[LlmModel] = []
    for entry in data["models"]:
        if not isinstance(entry, dict):
            continue
        name = entry.get("name") or entry.get("model")
        if isinstance(name, str) and name:
            out.append(LlmModel("ollama", name, display_name=f"Ollama {name}"))
    return out


def _openai_models(session: requests.Session, base: str, timeout: float) -> List[LlmModel]:
    from .._model import LlmModel

    data = _get_json(session, f"{base}/v1/models", timeout)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        return []
    out: List[LlmModel] = []
    for entry in data["data"]:
        if not isinstance(entry, dict):
            continue
        model_id = entry.get("id")
        if not isinstance(model_id, str) or not model_id:
            continue
        provider, spec, label = _openai_identity(entry, model_id, base)
        out.append(LlmModel(provider, spec, display_name=label))
    return out


def _openai_identity(entry: Any, model_id: str, base: str) -> Tuple[str, str, str]:
    if entry.get("owned_by") == "llamacpp":
        return "llamacpp", model_id, f"LlamaCpp {model_id}"
    return "openai-compatible", f"{model_id}@{base}/v1", f"{model_id} ({base})"


def _get_json(session: requests.Session, url: str, timeout: float) -> Any:
    """The JSON of a 200 answer to ``GET url``, or None for anything else (never raises)."""
    try:
        resp = session.get(url, timeout=(timeout, timeout), stream=True, allow_redirects=False)
    except Exception:
        return None
    try:
        if resp.status_code != 200:
            return None
        # The read timeout bounds each read, not the body: a server dripping bytes
        # could hold the caller far longer, so the body gets its own deadline.
        deadline = time.monotonic() + 2 * timeout
        data = bytearray()
        for chunk in resp.iter_content(65536):
            data += chunk
            if len(data) > _MAX_BODY or time.monotonic() > deadline:
                return None
        return json.loads(bytes(data).decode("utf-8"))
    except Exception:
        return None
    finally:
        resp.close()
