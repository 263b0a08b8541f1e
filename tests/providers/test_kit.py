"""The public provider-authoring kit: the docs' example provider over loopback HTTP, and HttpCall's hooks."""

from __future__ import annotations

import ast
import threading
import time
from typing import List, Tuple

import pytest

import llm_sync
from llm_sync import (
    Context,
    InvalidApiKeyError,
    LlmResponse,
    StopReason,
    ToolCallRequest,
    providers,
)
from llm_sync.providers import HttpCall, Parser
from tests.support.paths import REPO
from tests.support.server import LoopbackServer, Reply, Stall, sse_chunks
from tests.support.toy import ToyProvider, done, start, text

SSE = {"content-type": "text/event-stream"}


def toy(server: LoopbackServer, **kw: object) -> ToyProvider:
    return ToyProvider(base_url=server.url, timeout=5, **kw)  # type: ignore[arg-type]


def test_the_example_provider_uses_only_public_names() -> None:
    tree = ast.parse((REPO / "tests" / "support" / "toy.py").read_text(encoding="utf-8"))
    public = {"llm_sync": set(llm_sync.__all__), "llm_sync.providers": set(providers.__all__)}
    seen = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("llm_sync"):
            assert node.module in public, node.module
            for alias in node.names:
                assert alias.name in public[node.module], f"{node.module}.{alias.name} is not public"
                seen += 1
    assert seen >= 8
    # ...and only public attributes of the provider base class.
    source = (REPO / "tests" / "support" / "toy.py").read_text(encoding="utf-8")
    assert "self._" not in source


def test_the_example_provider_streams_a_turn_with_a_tool_call(server: LoopbackServer) -> None:
    tool = {"type": "tool", "id": "t1", "name": "get_weather", "arguments": '{"city":"Paris"}'}
    usage = {"type": "usage", "input": 3, "output": 4}
    server.reply(Reply(headers=SSE, body=sse_chunks(start(), text("Hi"), tool, usage, done()), chunked=True))
    with toy(server).stream_response(Context()) as stream:
        chunks = list(stream)
    assert chunks == [
        LlmResponse.Start("m1"),
        LlmResponse.Text("Hi"),
        LlmResponse.ToolRequestStart("t1", "get_weather"),
        LlmResponse.ToolRequestArg("t1", '{"city":"Paris"}'),
        LlmResponse.ToolRequestComplete(ToolCallRequest("t1", "get_weather", '{"city":"Paris"}')),
        LlmResponse.Usage(3, 4),
        LlmResponse.Done(StopReason.TOOL_CALLS, "end_turn"),
    ]


def test_the_example_provider_is_retried_before_content(server: LoopbackServer) -> None:
    overloaded = {"type": "error", "kind": "overloaded", "message": "busy"}
    server.reply(Reply(status=503, headers={"retry-after": "0"}, body=[b"busy"]))
    server.reply(Reply(headers=SSE, body=sse_chunks(start(), overloaded), chunked=True))
    server.reply(Reply(headers=SSE, body=sse_chunks(start(), text("ok"), done()), chunked=True))
    provider = toy(server, max_retries=2)._replace(_retry=llm_sync.RetryPolicy(max_retries=2, backoff_base=0.01))
    reply = provider.stream_response(Context()).collect()
    assert reply.text == "ok" and len(server.requests) == 3


def test_the_example_provider_is_closed_from_another_thread(server: LoopbackServer) -> None:
    server.reply(Reply(headers=SSE, body=[*sse_chunks(start(), text("a")), Stall(10)], chunked=True))
    stream = toy(server).stream_response(Context())
    chunks = iter(stream)
    assert next(chunks) == LlmResponse.Start("m1")
    closed_at: List[float] = []

    def closer() -> None:
        time.sleep(0.1)
        t0 = time.monotonic()
        stream.close()
        closed_at.append(time.monotonic() - t0)

    t = threading.Thread(target=closer)
    t.start()
    got = list(chunks)
    t.join(2)
    assert got == [LlmResponse.Text("a")] and closed_at and closed_at[0] < 0.5


class _Rotating(ToyProvider):
    """Sends whatever token it holds now; a 401 makes it take the next one."""

    tokens = ["old", "new"]

    def build_call(self, context: Context) -> Tuple[HttpCall, Parser]:
        held = {"token": self.tokens[0]}

        def prepare(call: HttpCall) -> HttpCall:
            return call.replace(headers={**call.headers, "authorization": f"Bearer {held['token']}"})

        def on_unauthorized(sent: HttpCall) -> bool:
            held["token"] = "new"
            return True

        call, parse = super().build_call(context)
        return call.replace(prepare=prepare, on_unauthorized=on_unauthorized), parse


def test_a_401_renews_the_credentials_and_resends_once(server: LoopbackServer) -> None:
    server.reply(Reply(status=401, body=[b'{"error": "expired"}']))
    server.reply(Reply(headers=SSE, body=sse_chunks(start(), text("ok"), done()), chunked=True))
    reply = _Rotating(base_url=server.url, max_retries=0).stream_response(Context()).collect()
    assert reply.text == "ok"
    assert [r.headers["authorization"] for r in server.requests] == ["Bearer old", "Bearer new"]


def test_a_second_401_is_raised_after_one_renewal(server: LoopbackServer) -> None:
    for _ in range(3):
        server.reply(Reply(status=401, body=[b'{"error": "no"}']))
    with pytest.raises(InvalidApiKeyError, match="even after refreshing") as info:
        _Rotating(base_url=server.url, max_retries=2).stream_response(Context()).collect()
    assert info.value.provider == "toy" and len(server.requests) == 2


def test_http_call_checks_its_arguments_and_hides_its_headers() -> None:
    call = HttpCall("http://127.0.0.1:9/x", {"authorization": "Bearer sk-secret-123456"}, b"{}")
    assert "sk-secret" not in repr(call) and call.framing == "sse" and call.classify is None
    assert call.replace(url="http://127.0.0.1:9/y").url.endswith("/y") and call.url.endswith("/x")
    with pytest.raises(TypeError, match="no attribute 'nope'"):
        call.replace(nope=1)
    with pytest.raises(ValueError, match="framing"):
        HttpCall("http://x", {}, b"", framing="xml")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bytes"):
        HttpCall("http://x", {}, "text")  # type: ignore[arg-type]
