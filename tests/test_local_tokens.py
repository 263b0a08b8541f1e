"""Exact counts and fit checks against the REAL llama.cpp server with the embedded model (the ``local`` extra)."""

from __future__ import annotations

import http.client
import json
from typing import Any, Dict, Iterator

import pytest

from llm_sync import ChatMessage, Context, ContextOverflowError, ToolDefinition, local
from llm_sync.providers.llamacpp import LlamaCppProvider

# tox -e local runs what is marked local_model; the other environments have no model and skip.
pytestmark = pytest.mark.local_model

N_CTX = 256


@pytest.fixture(scope="module")
def server() -> Iterator[local.LocalServer]:
    """One embedded server with a small window, started before the tests' leak snapshots."""
    if not local.available():
        pytest.skip('the local extra is not installed (pip install "llm-sync[local]")')
    with local.LocalServer(n_ctx=N_CTX, threads=2) as running:
        yield running


def provider_for(server: local.LocalServer) -> LlamaCppProvider:
    """A provider of the test's own (its pooled socket goes with it) that does not know the
    window: check_fits must ask the server (``/props``) for ``n_ctx``."""
    return server.provider(context_window=None, max_tokens=1, temperature=0.0)


def slot(server: local.LocalServer, key: str) -> Dict[str, Any]:
    """The server's one slot as ``GET /slots`` shows it (``id_task`` appears once it served a completion)."""
    host, port = server.url.rsplit("//", 1)[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", "/slots", headers={"authorization": f"Bearer {key}"})
        resp = conn.getresponse()
        assert resp.status == 200
        slots = json.loads(resp.read())
    finally:
        conn.close()
    assert len(slots) == 1
    return slots[0]  # type: ignore[no-any-return]


CONTEXTS = [
    Context([ChatMessage.User("What is the capital of France?")]),
    Context(
        [
            ChatMessage.System("You are terse."),
            ChatMessage.User("Name three rivers in Europe."),
            ChatMessage.Assistant("Rhine, Danube, Seine."),
            ChatMessage.User("And in Asia? ünïcödé ✓ <b>tags</b>"),
        ]
    ),
    Context(
        [ChatMessage.User("Weather in Oslo?")],
        [ToolDefinition("get_weather", "Weather for a city", {"type": "object", "properties": {"city": {"type": "string"}}})],
    ),
]


@pytest.mark.parametrize("index", range(len(CONTEXTS)))
def test_count_equals_the_usage_of_a_real_completion(server: local.LocalServer, index: int) -> None:
    provider = provider_for(server)
    context = CONTEXTS[index]
    count = provider.count_tokens(context)
    assert count.exact is True
    with provider.stream_response(context) as stream:
        usage = stream.collect().usage
    assert usage is not None
    assert count.input_tokens == usage.input_tokens > 3
    assert count.input_tokens != context.estimated_token_count() or index == 0  # a real count, not the estimate


def test_check_fits_refuses_a_context_over_n_ctx_without_a_completion(server: local.LocalServer) -> None:
    provider = provider_for(server)
    key = provider.api_key or ""
    short = Context([ChatMessage.User("hello")])
    long = Context([ChatMessage.User("the river flows past the old mill " * 40)])
    assert provider.check_fits(short).input_tokens < N_CTX
    before = slot(server, key)
    with pytest.raises(ContextOverflowError) as info:
        provider.check_fits(long)
    err = info.value
    assert err.max_tokens == N_CTX and err.requested_tokens == provider.count_tokens(long).input_tokens > N_CTX
    assert err.provider == "llamacpp" and "nothing was sent" in str(err)
    # The slot served no completion meanwhile (its task id is what it was)...
    assert slot(server, key).get("id_task") == before.get("id_task")
    # ...and the same probe does see one when it happens.
    with provider.stream_response(short) as stream:
        stream.collect()
    assert slot(server, key).get("id_task") != before.get("id_task")
