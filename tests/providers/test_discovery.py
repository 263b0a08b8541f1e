"""discover_local_models: Ollama /api/tags and OpenAI-style /v1/models over loopback, never raising."""

from __future__ import annotations

import socket
import time
from typing import Any, Callable, Dict

import pytest

from llm_sync import LlmModel
from llm_sync.providers.discovery import (
    LM_STUDIO_DEFAULT_HOST,
    default_hosts,
    discover_llama_cpp,
    discover_local_models,
    discover_ollama,
)
from tests.support.server import LoopbackServer, RecordedRequest, Reply, Stall

TAGS = {
    "models": [
        {"name": "qwen3:8b", "model": "qwen3:8b", "size": 5, "details": {"family": "qwen3"}},
        {"name": "gemma3:1b", "model": "gemma3:1b", "size": 1},
    ]
}
LLAMA_MODELS = {
    "object": "list",
    "data": [{"id": "tiny.gguf", "object": "model", "owned_by": "llamacpp", "created": 1}],
    "models": [{"name": "tiny.gguf", "model": "tiny.gguf"}],
}
LMSTUDIO_MODELS = {
    "object": "list",
    "data": [{"id": "qwen2.5-7b-instruct", "object": "model", "owned_by": "organization_owner"}],
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OLLAMA_HOST", "LLAMA_CPP_HOST"):
        monkeypatch.delenv(name, raising=False)


def routes(table: Dict[str, Reply]) -> Callable[[RecordedRequest], Reply]:
    def answer(req: RecordedRequest) -> Reply:
        return table.get(req.path_only, Reply.json({"error": "not found"}, status=404))

    return answer


def serve(server: LoopbackServer, table: Dict[str, Reply], times: int = 2) -> None:
    for _ in range(times):
        server.reply(Reply.from_function(routes(table)))


def closed_port_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


def test_ollama_tags(server: LoopbackServer) -> None:
    serve(server, {"/api/tags": Reply.json(TAGS)})
    found = discover_local_models([server.url])
    assert found == [LlmModel("ollama", "qwen3:8b"), LlmModel("ollama", "gemma3:1b")]
    assert found[0].display_name == "Ollama qwen3:8b"
    # An Ollama server is not asked again for /v1/models (it would list the same models).
    assert [r.path for r in server.requests] == ["/api/tags"]
    assert server.requests[0].method == "GET"


def test_llama_cpp_models(server: LoopbackServer) -> None:
    serve(server, {"/v1/models": Reply.json(LLAMA_MODELS)})
    assert discover_local_models([server.url + "/"]) == [LlmModel("llamacpp", "tiny.gguf")]
    assert [r.path for r in server.requests] == ["/api/tags", "/v1/models"]


def test_other_openai_style_server(server: LoopbackServer) -> None:
    serve(server, {"/v1/models": Reply.json(LMSTUDIO_MODELS)})
    [model] = discover_local_models([server.url + "/v1"])
    assert model == LlmModel("openai-compatible", f"qwen2.5-7b-instruct@{server.url}/v1")


@pytest.mark.parametrize(
    "reply",
    [
        Reply(status=200, headers={"content-type": "application/json"}, body=b"{not json"),
        Reply.json({"error": "boom"}, status=500),
        Reply.json({"models": "not a list"}),
        Reply.json(["a", "list"]),
        Reply(status=200, headers={"content-type": "application/json"}, body=b"\xff\xfe"),
    ],
)
def test_nonsense_answers_add_nothing(server: LoopbackServer, reply: Reply) -> None:
    serve(server, {"/api/tags": reply, "/v1/models": reply})
    assert discover_local_models([server.url]) == []


def test_entries_without_names_are_skipped(server: LoopbackServer) -> None:
    tags = {"models": [{"name": ""}, "junk", {"model": "only-model-key"}, {"name": "ok:1b"}]}
    serve(server, {"/api/tags": Reply.json(tags)})
    assert [m.model_id for m in discover_local_models([server.url])] == ["only-model-key", "ok:1b"]


def test_a_down_host_does_not_hide_the_others(server: LoopbackServer) -> None:
    serve(server, {"/api/tags": Reply.json(TAGS)})
    start = time.monotonic()
    found = discover_local_models([closed_port_url(), server.url, 12345, "::::"])  # type: ignore[list-item]
    assert [m.model_id for m in found] == ["qwen3:8b", "gemma3:1b"]
    assert time.monotonic() - start < 3


def test_a_slow_host_is_given_up_quickly(server: LoopbackServer) -> None:
    server.reply(Reply(status=200, headers={"content-type": "application/json"}, body=[Stall(5)], chunked=True))
    server.reply(Reply(status=200, headers={"content-type": "application/json"}, body=[Stall(5)], chunked=True))
    start = time.monotonic()
    assert discover_local_models([server.url], timeout=0.2) == []
    assert time.monotonic() - start < 2
    server.release()


def test_duplicates_are_dropped(server: LoopbackServer) -> None:
    serve(server, {"/api/tags": Reply.json(TAGS)}, times=2)
    assert len(discover_local_models([server.url, server.url])) == 2


def test_default_hosts_follow_the_environment(monkeypatch: pytest.MonkeyPatch, server: LoopbackServer) -> None:
    assert default_hosts() == ["http://localhost:11434", "http://localhost:8080", LM_STUDIO_DEFAULT_HOST]
    port = server.url.rsplit(":", 1)[1]
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{port}")  # no scheme, as Ollama accepts it
    down = closed_port_url()
    monkeypatch.setenv("LLAMA_CPP_HOST", down + "/")
    assert default_hosts() == [server.url, down, LM_STUDIO_DEFAULT_HOST]
    serve(server, {"/api/tags": Reply.json(TAGS)})
    found = discover_local_models(timeout=0.3)
    assert found[:2] == [LlmModel("ollama", "qwen3:8b"), LlmModel("ollama", "gemma3:1b")]
    assert all(m.provider != "llamacpp" for m in found)


def test_single_kind_helpers(monkeypatch: pytest.MonkeyPatch, server: LoopbackServer) -> None:
    serve(server, {"/api/tags": Reply.json(TAGS), "/v1/models": Reply.json(LLAMA_MODELS)}, times=2)
    assert [m.model_id for m in discover_ollama(server.url)] == ["qwen3:8b", "gemma3:1b"]
    monkeypatch.setenv("LLAMA_CPP_HOST", server.url)
    assert discover_llama_cpp() == [LlmModel("llamacpp", "tiny.gguf")]
    assert discover_ollama(closed_port_url()) == []
    assert discover_llama_cpp(closed_port_url()) == []


def test_never_raises_even_for_strange_input() -> None:
    bad: Any = object()
    assert discover_local_models(bad) == []
    assert discover_local_models([], timeout=0.1) == []
