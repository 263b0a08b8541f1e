"""Sending: a prepared request is reused as a template, and every request still says only its own part."""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional

import pytest
import requests
from requests.adapters import HTTPAdapter

from llm_sync import ChatMessage, Context
from llm_sync._transport import _http
from llm_sync._transport._http import Transport, default_classifier, send
from tests.support.faults import FLAVORS
from tests.support.server import LoopbackServer, RecordedRequest, Reply


def _send(transport: Transport, url: str, headers: Optional[Dict[str, str]] = None, body: bytes = b"{}") -> requests.Response:
    """Send one request through ``send``; the answer is left unread."""
    return send(
        transport, "POST", url, headers or {}, body, connect_timeout=5.0, read_timeout=5.0, classify=default_classifier
    )


def post(transport: Transport, url: str, headers: Dict[str, str], body: bytes) -> bytes:
    """Send one request through ``send`` and read the whole answer."""
    resp = _send(transport, url, headers, body)
    try:
        return resp.raw.read()
    finally:
        resp.close()


@pytest.fixture
def transport() -> Iterator[Transport]:
    t = Transport()
    yield t
    t.close()


def test_each_request_carries_its_own_body_and_length(server: LoopbackServer, transport: Transport) -> None:
    bodies = [b'{"n":1}', b'{"n":2,"more":"' + b"x" * 5000 + b'"}', b"{}"]
    server.reply(*(Reply.json({"ok": i}) for i in range(len(bodies))))
    headers = {"authorization": "Bearer sk-test", "content-type": "application/json"}
    for body in bodies:
        post(transport, server.url + "/v1/x", headers, body)
    got = server.requests
    assert [r.body for r in got] == bodies
    assert [r.headers["content-length"] for r in got] == [str(len(b)) for b in bodies]
    assert all(r.headers["authorization"] == "Bearer sk-test" for r in got)
    # One template served all three, and it holds no body.
    assert len(transport._templates) == 1
    assert all(t.body is None for t in transport._templates.values())


def test_a_changed_header_or_url_is_sent_as_changed(server: LoopbackServer, transport: Transport) -> None:
    server.reply(*(Reply.json({}) for _ in range(4)))
    post(transport, server.url + "/v1/a", {"x-api-key": "one"}, b"{}")
    post(transport, server.url + "/v1/a", {"x-api-key": "two"}, b"{}")
    post(transport, server.url + "/v1/a", {"x-api-key": "two", "anthropic-beta": "b1"}, b"{}")
    post(transport, server.url + "/v1/b", {"x-api-key": "two"}, b"{}")
    got = server.requests
    assert [r.headers["x-api-key"] for r in got] == ["one", "two", "two", "two"]
    assert [r.headers.get("anthropic-beta") for r in got] == [None, None, "b1", None]
    assert [r.path for r in got] == ["/v1/a", "/v1/a", "/v1/a", "/v1/b"]


def test_templates_stay_bounded_when_every_request_differs(server: LoopbackServer, transport: Transport) -> None:
    # Bedrock signs every request: its headers never repeat.
    n = _http._MAX_TEMPLATES + 8
    server.reply(*(Reply.json({}) for _ in range(n)))
    for i in range(n):
        post(transport, server.url + "/v1/x", {"x-amz-date": f"20261206T0000{i:02d}Z"}, b"{}")
        assert 1 <= len(transport._templates) <= _http._MAX_TEMPLATES
    assert [r.headers["x-amz-date"] for r in server.requests] == [f"20261206T0000{i:02d}Z" for i in range(n)]


def test_a_request_without_a_body_is_not_templated(server: LoopbackServer, transport: Transport) -> None:
    server.reply(Reply.json({}), Reply.json({}))
    post(transport, server.url + "/v1/x", {"x-api-key": "k"}, b"")
    post(transport, server.url + "/v1/x", {"x-api-key": "k"}, b"")
    assert [r.headers.get("content-length") for r in server.requests] == ["0", "0"]
    assert transport._templates == {}


def test_a_cookie_set_between_two_turns_is_sent_with_the_second(server: LoopbackServer) -> None:
    # The first turn leaves a template without a cookie; the second must not use it.
    flavor = FLAVORS["openai"]
    server.reply(flavor.reply("one", headers={"set-cookie": "pin=7; Path=/"}), flavor.reply("two"), flavor.reply("3"))
    provider = flavor.build(server.url, "sk-cookie-test", 5.0, 0)
    texts: List[str] = []
    for prompt in ("a", "bb", "ccc"):
        with provider.stream_response(Context([ChatMessage.User(prompt)])) as stream:
            texts.append(stream.collect().text)
    assert texts == ["one", "two", "3"]
    got: List[RecordedRequest] = server.requests
    assert [r.headers.get("cookie") for r in got] == [None, "pin=7", "pin=7"]
    assert ["a", "bb", "ccc"] == [r.json()["input"][0]["content"][0]["text"] for r in got]


def test_an_origin_keeps_at_most_the_pool_size_of_idle_connections(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_http, "_POOL_SIZE", 2)
    t = Transport()
    try:
        server.reply(*(Reply.json({"n": i}) for i in range(5)))
        held = [_send(t, server.url + "/v1/x") for _ in range(4)]
        assert server.connections_accepted == 4  # each answer still unread holds its own
        for resp in held:
            assert resp.raw.read().startswith(b'{"n": ')
            resp.close()
        del held, resp  # a response keeps its pool alive
        # Two go back to the pool; the pool is full for the others, which are closed.
        server.wait_for_open_connections(2)
        post(t, server.url + "/v1/x", {}, b"{}")
        assert server.connections_accepted == 4  # the next request reused a kept one
    finally:
        t.close()
    server.wait_for_open_connections(0)


@pytest.mark.skipif(
    not hasattr(HTTPAdapter, "build_connection_pool_key_attributes"),
    reason="requests < 2.32.2 finds pools through get_connection, which is not shortcut",
)
def test_an_origin_finds_its_pool_again_until_the_pool_is_closed(server: LoopbackServer, transport: Transport) -> None:
    server.reply(*(Reply.json({}) for _ in range(3)))
    post(transport, server.url + "/v1/a", {}, b"{}")
    adapter: Any = transport.session().get_adapter(server.url)
    (pool,) = adapter.origin_pools.values()
    post(transport, server.url + "/v1/b", {}, b"{}")
    assert list(adapter.origin_pools.values()) == [pool]
    assert server.connections_accepted == 1
    # A pool the manager lets go of (as close() and an eviction do) is let go here too.
    adapter.poolmanager.clear()
    assert adapter.origin_pools == {}
    post(transport, server.url + "/v1/c", {}, b"{}")
    (again,) = adapter.origin_pools.values()
    assert again is not pool and again.pool is not None
    del pool
    assert server.connections_accepted == 2


def test_a_cookie_a_server_sets_is_sent_back_and_answers_without_one_change_nothing(
    server: LoopbackServer, transport: Transport
) -> None:
    server.reply(
        Reply.json({}, headers={"set-cookie": "__cf_bm=abc; path=/; HttpOnly"}),
        Reply.json({}),
        Reply.json({}, headers={"set-cookie": "b=2; path=/"}),
        Reply.json({}),
    )
    for path in ("/v1/a", "/v1/b", "/v1/c", "/v1/d"):
        post(transport, server.url + path, {}, b"{}")
    sent = [r.headers.get("cookie") for r in server.requests]
    assert sent[:3] == [None, "__cf_bm=abc", "__cf_bm=abc"]
    assert sorted(sent[3].split("; ")) == ["__cf_bm=abc", "b=2"]
