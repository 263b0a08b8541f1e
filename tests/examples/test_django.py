"""The Django example with real Django: the test client and a threaded WSGI server on 127.0.0.1.

The view's provider talks to the stand-in model (tests/examples/fake_llm.py) over real HTTP,
so "the upstream connection is closed" is what the stand-in server itself observes.
"""

from __future__ import annotations

import gc
import http.client
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any, Iterator, List, Tuple
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

import pytest

from tests.examples.fake_llm import FakeLlmServer
from tests.support.server import Close, Reply, sse_event

django = pytest.importorskip("django")

APP_DIR = Path(__file__).resolve().parents[2] / "examples" / "django_app"
KEY = "sk-ant-django-test-key-0123456789"


def _setup_django() -> Any:
    if str(APP_DIR) not in sys.path:
        sys.path.insert(0, str(APP_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    django.setup()
    from chatsite import views

    return views


views = _setup_django()


def reader_threads() -> List[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("llm_sync-")]


def wait_until(predicate: Any, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())


@pytest.fixture
def llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLlmServer]:
    with FakeLlmServer() as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        views.reset_provider()  # the module-level provider is built from these on first use
        try:
            yield server
        finally:
            views.reset_provider()
            gc.collect()  # the provider's pooled connections close with it


@pytest.fixture
def client() -> Any:
    from django.test import Client

    return Client()


# -- the test client ---------------------------------------------------------------------


def test_text_view_streams_the_answer(llm: FakeLlmServer, client: Any) -> None:
    response = client.get("/chat", {"q": "Hello from Django"})
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    pieces = list(response.streaming_content)
    response.close()
    assert b"".join(pieces) == b"You said: Hello from Django"
    assert len(pieces) == 5  # one piece per word the model streamed
    assert llm.requests[0].json()["messages"][0]["content"][0]["text"] == "Hello from Django"
    assert wait_until(lambda: not reader_threads())


def test_sse_view_sends_events(llm: FakeLlmServer, client: Any) -> None:
    response = client.get("/chat/sse", {"q": "Two words"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    body = b"".join(response.streaming_content).decode()
    response.close()
    events = [e for e in body.split("\n\n") if e]
    texts = [json.loads(e[len("data: "):])["text"] for e in events if e.startswith("data: ")]
    assert "".join(texts) == "You said: Two words"
    assert events[-1] == 'event: done\ndata: {"stop_reason": "end_turn"}'


def test_closing_the_response_closes_the_upstream_stream(llm: FakeLlmServer, client: Any) -> None:
    response = client.get("/chat", {"q": "Write a long story"})  # 200 words, 50 ms apart
    chunks = iter(response.streaming_content)
    assert next(chunks) == b"word0"
    assert llm.open_connections == 1
    assert reader_threads()
    started = time.monotonic()
    response.close()  # what Django's handler does when the response is finished
    took = time.monotonic() - started
    llm.wait_for_open_connections(0, timeout=2.0)  # the stand-in server saw the client go
    assert wait_until(lambda: not reader_threads(), 1.0), reader_threads()
    assert took < 0.5
    assert len(llm.requests) == 1  # nothing re-sent


@pytest.mark.parametrize(
    "reply,status,error",
    [
        (Reply.json({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}, status=401),
         500, "InvalidApiKeyError"),
        (Reply.json({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}, status=429,
                    headers={"retry-after": "120"}), 503, "RateLimitedError"),
        (Reply.json({"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}}, status=400),
         502, "ApiError"),
    ],
)
def test_error_before_the_first_chunk_is_an_http_status(
    llm: FakeLlmServer, client: Any, reply: Reply, status: int, error: str
) -> None:
    llm.reply(reply)
    response = client.get("/chat", {"q": "Hello"})
    assert response.status_code == status
    assert not response.streaming
    payload = json.loads(response.content)
    assert payload["error"] == error
    assert KEY not in response.content.decode()
    if status == 503:
        assert response["Retry-After"] == "120"
    assert len(llm.requests) == 1  # 401, 400 and a too-long Retry-After are not retried
    assert wait_until(lambda: not reader_threads())


def test_context_overflow_is_413_with_the_numbers(llm: FakeLlmServer, client: Any) -> None:
    response = client.get("/chat", {"q": "rivers " * 5000})
    assert response.status_code == 413
    payload = json.loads(response.content)
    assert payload["error"] == "ContextOverflowError"
    assert "tokens > 6000 maximum" in payload["message"]


def test_error_after_content_is_reported_in_the_body(llm: FakeLlmServer, client: Any) -> None:
    start = {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
                                                  "content": [], "usage": {"input_tokens": 3, "output_tokens": 0}}}
    block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Half an answer"}}
    llm.reply(Reply(headers={"content-type": "text/event-stream"}, chunked=True, body=[
        sse_event("message_start", start), sse_event("content_block_start", block),
        sse_event("content_block_delta", delta), Close()]))
    response = client.get("/chat/sse", {"q": "Hello"})
    assert response.status_code == 200  # the status line went out with the first chunk
    body = b"".join(response.streaming_content).decode()
    response.close()
    assert 'data: {"text": "Half an answer"}' in body
    assert "event: error" in body and "StreamInterruptedError" in body
    assert len(llm.requests) == 1  # never retried after content


# -- a real threaded WSGI server ---------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


class _ThreadedWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins the request threads: nothing outlives a test


@pytest.fixture
def site(llm: FakeLlmServer) -> Iterator[Tuple[str, int]]:
    yield from _serving()


def _serving() -> Iterator[Tuple[str, int]]:
    """The site on a threaded WSGI server on 127.0.0.1, shut down (its threads joined) afterwards."""
    from django.core.wsgi import get_wsgi_application

    server = _ThreadedWSGIServer(("127.0.0.1", 0), _QuietHandler)
    server.set_app(get_wsgi_application())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="wsgi-test")
    thread.start()
    try:
        yield "127.0.0.1", server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _get(site: Tuple[str, int], path: str) -> Tuple[int, bytes]:
    conn = http.client.HTTPConnection(*site, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_real_server_body_arrives_incrementally_and_disconnect_closes_upstream(
    llm: FakeLlmServer, site: Tuple[str, int]
) -> None:
    sock = socket.create_connection(site, timeout=5)
    try:
        sock.sendall(b"GET /chat?q=Write+a+long+story HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        started = time.monotonic()
        received = b""
        arrivals = []
        while received.count(b"word") < 10:
            data = sock.recv(65536)
            assert data, "the server closed early"
            received += data
            arrivals.append(time.monotonic() - started)
        # The whole answer takes 10 s; the first ten words came within about half a second,
        # in several pieces: streamed, not buffered.
        assert received.startswith(b"HTTP/1.0 200 OK") or received.startswith(b"HTTP/1.1 200 OK")
        assert arrivals[-1] < 3.0
        assert len(arrivals) >= 3
        assert llm.open_connections == 1
        assert reader_threads()
    finally:
        sock.close()  # the browser tab goes away
    # The next write to the closed socket fails; the WSGI server calls close() on the response,
    # which closes the stream: the upstream connection goes and the reader thread ends.
    llm.wait_for_open_connections(0, timeout=3.0)
    assert wait_until(lambda: not reader_threads(), 2.0), reader_threads()
    assert len(llm.requests) == 1


def test_real_server_sse_and_error_status(llm: FakeLlmServer, site: Tuple[str, int]) -> None:
    status, body = _get(site, "/chat/sse?q=Hi+there")
    assert status == 200
    assert b'data: {"text": " there"}' in body and body.endswith(b'event: done\ndata: {"stop_reason": "end_turn"}\n\n')
    llm.reply(Reply.json({"type": "error", "error": {"type": "authentication_error", "message": "bad key"}}, status=401))
    status, body = _get(site, "/chat?q=Hi")
    assert status == 500
    assert json.loads(body)["error"] == "InvalidApiKeyError"


def test_real_server_concurrent_requests_share_one_provider(llm: FakeLlmServer, site: Tuple[str, int]) -> None:
    results: List[Tuple[int, bytes]] = [(0, b"")] * 8
    barrier = threading.Barrier(8)

    def worker(i: int) -> None:
        barrier.wait()
        results[i] = _get(site, f"/chat?q=Question+number+{i}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert [r[0] for r in results] == [200] * 8
    assert [r[1].decode() for r in results] == [f"You said: Question number {i}" for i in range(8)]
    provider = views.get_provider()
    assert views.get_provider() is provider  # one module-level provider served them all
    assert len(llm.requests) == 8
    assert wait_until(lambda: not reader_threads())


# -- OpenTelemetry: the view's request span is the parent of the model call's span --------------


@pytest.fixture
def traced_site(llm: FakeLlmServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Tuple[Tuple[str, int], Any]]:
    """The site on a threaded WSGI server with Django and llm_sync instrumented into an in-memory SDK."""
    pytest.importorskip("opentelemetry.instrumentation.django")
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    from tests.support.otel import telemetry_of

    for telemetry in telemetry_of(monkeypatch):
        instrumentor = DjangoInstrumentor()
        # Before the WSGI handler exists: the instrumentation adds its middleware to the settings.
        instrumentor.instrument(tracer_provider=telemetry.tracer_provider)
        try:
            yield from ((where, telemetry) for where in _serving())
        finally:
            instrumentor.uninstrument()


def test_real_server_request_spans_parent_the_model_calls(traced_site: Tuple[Tuple[str, int], Any]) -> None:
    from opentelemetry.trace import SpanKind

    where, telemetry = traced_site
    results: List[Tuple[int, bytes]] = []
    threads = [threading.Thread(target=lambda q=q: results.append(_get(where, f"/chat?q={q}"))) for q in ("One", "Two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(results) == [(200, b"You said: One"), (200, b"You said: Two")]
    assert wait_until(lambda: len(telemetry.genai_spans()) == 2)
    requests = {s.context.span_id: s for s in telemetry.spans if s.kind is SpanKind.SERVER}
    assert len(requests) == 2
    calls = telemetry.genai_spans()
    assert {c.parent.span_id for c in calls} == set(requests)  # each view's request span parents its own call
    for call in calls:
        request = requests[call.parent.span_id]
        assert call.context.trace_id == request.context.trace_id
        assert call.attributes["gen_ai.provider.name"] == "anthropic"
        assert call.attributes["gen_ai.usage.output_tokens"] > 0
