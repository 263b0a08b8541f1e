"""Sending: a prepared request is reused as a template, and every request still says only its own part."""

from __future__ import annotations

from typing import Dict, Iterator, List

import pytest

from llm_sync import ChatMessage, Context
from llm_sync._transport import _http
from llm_sync._transport._http import Transport, default_classifier, send
from tests.support.faults import FLAVORS
from tests.support.server import LoopbackServer, RecordedRequest, Reply


def post(transport: Transport, url: str, headers: Dict[str, str], body: bytes) -> bytes:
    """Send one request through ``send`` and read the whole answer."""
    resp = send(
        transport,
        "POST",
        url,
        headers,
        body,
        connect_timeout=5.0,
        read_timeout=5.0,
        classify=default_classifier,
    )
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
