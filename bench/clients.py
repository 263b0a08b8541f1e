"""The clients the benchmark compares: one function per column, ``fn(base_url, n) -> iterator of text``.

``base_url`` is the bench server's root for one scenario, e.g.
``http://127.0.0.1:PORT/n=20000,framing=event``; each client puts it where its
library expects a base URL. A client yields every non-empty text delta in order
and reads the stream to its end, so the keep-alive connection is reused. The same
contract as ``shared/bench/run_peers.py --extra``, so these functions are columns
there too: ``--extra bench.clients:llm_sync_anthropic:anthropic``.

Client objects (sessions, providers, SDK clients) are made once per base URL (per
thread where the object is not thread-safe) and reused like an application would;
:func:`reset` drops them for the cold measurements. Only the standard library is
imported here at module level, so a fresh process pays for a client's imports
when it first runs.
"""

from __future__ import annotations

import codecs
import json
import os
import socket
import threading
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional, Tuple
from urllib.parse import urlsplit

# Loopback traffic never goes through a proxy.
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

PROMPT = "Say something."
OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-sonnet-4-5"
_OPENAI_BODY = {"model": OPENAI_MODEL, "messages": [{"role": "user", "content": PROMPT}],
                "stream": True}


class Client(NamedTuple):
    name: str
    fn: Callable[[str, int], Iterable[Any]]
    api: str  # "openai" | "anthropic": the wire format it reads
    kind: str  # "floor" | "baseline" | "llm_sync" | "sdk"
    modules: Tuple[str, ...]  # what importing it costs
    collect: Optional[Callable[[str, int], str]] = None  # read a whole turn at once


# ---------------------------------------------------------------------------
# Client objects, cached per base URL (and per thread where needed)

_objects: Dict[Tuple[str, str, Optional[int]], Any] = {}
_objects_lock = threading.Lock()


def cached(kind: str, base_url: str, make: Callable[[], Any], per_thread: bool = False) -> Any:
    key = (kind, base_url, threading.get_ident() if per_thread else None)
    obj = _objects.get(key)
    if obj is None:
        with _objects_lock:
            obj = _objects.get(key)
            if obj is None:
                obj = _objects[key] = make()
    return obj


def reset() -> None:
    """Close and forget every cached client object and connection."""
    with _objects_lock:
        objs = list(_objects.values())
        _objects.clear()
    for obj in objs:
        close = getattr(obj, "close", None)
        if close is not None:
            try:
                close()
            except Exception:
                pass
    # llm_sync providers have no close(): their Session closes when the provider is
    # collected, which is what an application that drops a provider gets.
    del objs


# ---------------------------------------------------------------------------
# The floor: a raw socket, HTTP/1.1 keep-alive, de-chunking by hand


class RawHttp:
    """One keep-alive connection; ``post`` yields the de-chunked body, one piece per ``recv``."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rest = b""  # bytes read past the previous response

    def close(self) -> None:
        self.sock.close()

    def post(self, path: str, body: bytes) -> Iterator[bytes]:
        sock = self.sock
        sock.sendall(b"POST %s HTTP/1.1\r\nhost: %s:%d\r\ncontent-type: application/json\r\n"
                     b"content-length: %d\r\n\r\n%s"
                     % (path.encode(), self.host.encode(), self.port, len(body), body))
        buf = self.rest
        while b"\r\n\r\n" not in buf:
            more = sock.recv(262144)
            if not more:
                raise ConnectionError("the server closed before the headers")
            buf += more
        headers, _, buf = buf.partition(b"\r\n\r\n")
        if not headers.startswith(b"HTTP/1.1 200"):
            raise ConnectionError(f"unexpected answer {headers[:80]!r}")
        pos = 0
        while True:
            out: List[bytes] = []
            while True:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    break
                size = int(buf[pos:eol], 16)
                end = eol + 2 + size
                if len(buf) < end + 2:
                    break
                if size == 0:
                    self.rest = buf[end + 2:]
                    if out:
                        yield b"".join(out)
                    return
                out.append(buf[eol + 2:end])
                pos = end + 2
            if out:
                yield b"".join(out)
            more = sock.recv(262144)
            if not more:
                raise ConnectionError("the server closed mid-stream")
            buf = buf[pos:] + more
            pos = 0


def _raw_body(base_url: str, n: int, api: str) -> Iterator[bytes]:
    u = urlsplit(base_url)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    conn = cached("raw", f"{host}:{port}", lambda: RawHttp(host, port), per_thread=True)
    if api == "openai":
        body = dict(_OPENAI_BODY, max_tokens=n)
        path = u.path + "/v1/chat/completions"
    else:
        body = {"model": ANTHROPIC_MODEL, "max_tokens": n, "stream": True,
                "messages": [{"role": "user", "content": PROMPT}]}
        path = u.path + "/v1/messages"
    return conn.post(path, json.dumps(body).encode())


def raw_split(base_url: str, n: int) -> Iterator[bytes]:
    """Physical limit: de-chunk, split events on the blank line, no decoding; yields event bytes."""
    rest = b""
    for piece in _raw_body(base_url, n, "openai"):
        evs = (rest + piece).split(b"\n\n")
        rest = evs.pop()
        for ev in evs:
            if b'"delta":{"content":"' in ev:
                yield ev


def _raw_events(base_url: str, n: int, api: str) -> Iterator[str]:
    decode = codecs.getincrementaldecoder("utf-8")().decode
    rest = ""
    for piece in _raw_body(base_url, n, api):
        evs = (rest + decode(piece)).split("\n\n")
        rest = evs.pop()
        yield from evs


def raw_json(base_url: str, n: int) -> Iterator[str]:
    """The JSON floor, OpenAI format: the physical limit plus one json.loads per event."""
    loads = json.loads
    for ev in _raw_events(base_url, n, "openai"):
        if ev.startswith("data: {"):
            choices = loads(ev[6:])["choices"]
            if choices:
                content = choices[0]["delta"].get("content")
                if content:
                    yield content


def raw_json_anthropic(base_url: str, n: int) -> Iterator[str]:
    """The JSON floor, Anthropic format (``event:`` line, then ``data:``)."""
    loads = json.loads
    for ev in _raw_events(base_url, n, "anthropic"):
        i = ev.find("\ndata: ")
        if i >= 0:
            obj = loads(ev[i + 7:])
            if obj["type"] == "content_block_delta" and obj["delta"]["type"] == "text_delta":
                yield obj["delta"]["text"]


# ---------------------------------------------------------------------------
# The baseline: requests + sseclient-py fed iter_content(None), json.loads per event
# (llm_sync's own dependency set, used the fast way)


def _session(base_url: str) -> Any:
    import requests

    return cached("requests", base_url, requests.Session, per_thread=True)  # not thread-safe


def requests_sseclient(base_url: str, n: int, session: Any = None) -> Iterator[str]:
    import sseclient

    if session is None:
        session = _session(base_url)
    r = session.post(base_url + "/v1/chat/completions", json=dict(_OPENAI_BODY, max_tokens=n),
                     headers={"authorization": "Bearer sk-bench", "accept": "text/event-stream"}, stream=True)
    r.raise_for_status()
    loads = json.loads
    try:
        for ev in sseclient.SSEClient(r.iter_content(None)).events():
            if ev.data != "[DONE]":
                choices = loads(ev.data)["choices"]
                if choices:
                    content = choices[0]["delta"].get("content")
                    if content:
                        yield content
    finally:
        r.close()


def requests_sseclient_anthropic(base_url: str, n: int) -> Iterator[str]:
    import sseclient

    r = _session(base_url).post(
        base_url + "/v1/messages",
        json={"model": ANTHROPIC_MODEL, "max_tokens": n, "stream": True,
              "messages": [{"role": "user", "content": PROMPT}]},
        headers={"x-api-key": "sk-ant-bench", "anthropic-version": "2023-06-01",
                 "accept": "text/event-stream"},
        stream=True)
    r.raise_for_status()
    loads = json.loads
    try:
        for ev in sseclient.SSEClient(r.iter_content(None)).events():
            obj = loads(ev.data)
            if obj["type"] == "content_block_delta":
                delta = obj["delta"]
                if delta["type"] == "text_delta":
                    yield delta["text"]
    finally:
        r.close()


_PROBE_END = object()


def reader_thread_probe(base_url: str, n: int) -> Iterator[str]:
    """Not a peer: the baseline read by a thread of its own that hands each text to the caller through a ``SimpleQueue``.

    llm_sync's shape (one reader thread per stream, one queue hop per chunk) and
    nothing else, so ``llm_sync ÷ this`` is what llm_sync costs beyond the hand-off
    its design pays for, and ``this ÷ the baseline`` is the price of that hand-off.
    """
    from queue import SimpleQueue

    q: SimpleQueue[Any] = SimpleQueue()
    # The caller's session, as for the baseline: each reader is a new thread, and a
    # session cached under its ident was often a new session and connection per stream.
    session = _session(base_url)

    def read() -> None:
        try:
            for text in requests_sseclient(base_url, n, session):
                q.put(text)
            q.put(_PROBE_END)
        except BaseException as exc:  # carried to the caller, as llm_sync does
            q.put(exc)

    threading.Thread(target=read, name="bench-probe-reader", daemon=True).start()
    while True:
        item = q.get()
        if item is _PROBE_END:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


# ---------------------------------------------------------------------------
# llm_sync


_context: List[Any] = []


def _ctx() -> Any:
    if not _context:
        from llm_sync import ChatMessage, Context

        _context.append(Context([ChatMessage.User(PROMPT)]))
    return _context[0]


def anthropic_provider(base_url: str) -> Any:
    from llm_sync.providers.anthropic import AnthropicProvider

    return cached("llm_sync.anthropic", base_url, lambda: AnthropicProvider(
        "sk-ant-bench", model=ANTHROPIC_MODEL, base_url=base_url, max_retries=0))


def compatible_provider(base_url: str) -> Any:
    from llm_sync.providers.openai_compatible import OpenAiCompatibleProvider

    return cached("llm_sync.compatible", base_url, lambda: OpenAiCompatibleProvider(
        "sk-bench", model=OPENAI_MODEL, base_url=base_url + "/v1", max_retries=0))


def _texts(stream: Any) -> Iterator[str]:
    from llm_sync import LlmResponse

    text_cls = LlmResponse.Text
    for chunk in stream:
        if isinstance(chunk, text_cls):
            yield chunk.chunk


def llm_sync_anthropic(base_url: str, n: int) -> Iterator[str]:
    """``AnthropicProvider.stream_response``, text chunks picked with isinstance (as the README does)."""
    return _texts(anthropic_provider(base_url).stream_response(_ctx()))


def llm_sync_compatible(base_url: str, n: int) -> Iterator[str]:
    """``OpenAiCompatibleProvider.stream_response`` (usage requested, as the provider always does)."""
    return _texts(compatible_provider(base_url).stream_response(_ctx()))


def llm_sync_anthropic_collect(base_url: str, n: int) -> str:
    return str(anthropic_provider(base_url).stream_response(_ctx()).collect().text)


def llm_sync_compatible_collect(base_url: str, n: int) -> str:
    return str(compatible_provider(base_url).stream_response(_ctx()).collect().text)


# ---------------------------------------------------------------------------
# Vendor SDKs (columns only where installed: the `bench` extra)


def anthropic_sdk(base_url: str, n: int) -> Iterator[str]:
    """``anthropic.Anthropic().messages.create(stream=True)``: the SDK's cheapest streaming path."""
    import anthropic

    client = cached("anthropic", base_url, lambda: anthropic.Anthropic(
        base_url=base_url, api_key="sk-ant-bench", max_retries=0))
    stream = client.messages.create(model=ANTHROPIC_MODEL, max_tokens=max(n, 1), stream=True,
                                    messages=[{"role": "user", "content": PROMPT}])
    for ev in stream:
        if ev.type == "content_block_delta" and ev.delta.type == "text_delta":
            yield ev.delta.text


def openai_sdk(base_url: str, n: int) -> Iterator[str]:
    """``openai.OpenAI().chat.completions.create(stream=True)``."""
    import openai

    client = cached("openai", base_url, lambda: openai.OpenAI(
        base_url=base_url + "/v1", api_key="sk-bench", max_retries=0))
    stream = client.chat.completions.create(model=OPENAI_MODEL, max_tokens=max(n, 1), stream=True,
                                            messages=[{"role": "user", "content": PROMPT}])
    for chunk in stream:
        if chunk.choices:
            content = chunk.choices[0].delta.content
            if content:
                yield content


def _join(fn: Callable[[str, int], Iterable[Any]]) -> Callable[[str, int], str]:
    def collect(base_url: str, n: int) -> str:
        return "".join(fn(base_url, n))

    return collect


def _importable(module: str) -> bool:
    """Whether ``module`` could be imported, without importing it (nor its parent package:
    the import figures of a child process must start from nothing)."""
    import importlib.util

    top, _, rest = module.partition(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return False
    if spec is None or not rest:
        return spec is not None
    path = Path(next(iter(spec.submodule_search_locations or []), ""), *rest.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


FLOOR = "raw socket, split only"
BASELINE = {"openai": "requests + sseclient-py", "anthropic": "requests + sseclient-py (anthropic fmt)"}
JSON_FLOOR = {"openai": "raw socket + json.loads", "anthropic": "raw socket + json.loads (anthropic fmt)"}
SDK_FOR = {"openai": "openai SDK create(stream=True)", "anthropic": "anthropic SDK create(stream=True)"}


def all_clients() -> List[Client]:
    """Every column this machine can run: SDK columns only where the SDK is installed."""
    base = ("requests", "sseclient")
    out = [
        Client(FLOOR, raw_split, "openai", "floor", ("socket", "json")),
        Client(JSON_FLOOR["openai"], raw_json, "openai", "floor", ("socket", "json")),
        Client(JSON_FLOOR["anthropic"], raw_json_anthropic, "anthropic", "floor", ("socket", "json")),
        Client(BASELINE["openai"], requests_sseclient, "openai", "baseline", base,
               _join(requests_sseclient)),
        Client(BASELINE["anthropic"], requests_sseclient_anthropic, "anthropic", "baseline", base,
               _join(requests_sseclient_anthropic)),
        Client("llm_sync AnthropicProvider", llm_sync_anthropic, "anthropic", "llm_sync",
               ("llm_sync",), llm_sync_anthropic_collect),
    ]
    if _importable("llm_sync.providers.openai_compatible"):
        out.append(Client("llm_sync OpenAiCompatibleProvider", llm_sync_compatible, "openai",
                          "llm_sync", ("llm_sync",), llm_sync_compatible_collect))
    if _importable("anthropic"):
        out.append(Client(SDK_FOR["anthropic"], anthropic_sdk, "anthropic", "sdk", ("anthropic",),
                          _join(anthropic_sdk)))
    if _importable("openai"):
        out.append(Client(SDK_FOR["openai"], openai_sdk, "openai", "sdk", ("openai",),
                          _join(openai_sdk)))
    return out
