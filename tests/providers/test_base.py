"""What every HTTP provider shares: immutability, pickling, fork safety, secrets kept out of errors."""

from __future__ import annotations

import os
import pickle
import sys
import warnings

import pytest

from llm_sync import ApiError, Context, StreamingModelProvider, Timeouts
from tests.support.server import LoopbackServer, Reply
from tests.support.toy import ToyProvider, done, start, text


def ok() -> Reply:
    return Reply.event_stream(start(), text("hi"), done())


def test_with_methods_return_new_providers() -> None:
    p = ToyProvider(base_url="http://127.0.0.1:1")
    q = p.with_model("toy-2")
    assert (p.model_name, q.model_name) == ("toy-1", "toy-2")
    assert q.with_base_url("http://127.0.0.1:2/").base_url == "http://127.0.0.1:2"
    assert p.with_timeout(5).timeouts == Timeouts(connect=5, first_event=5, idle=5)
    assert p.with_max_retries(0).retry_policy.max_retries == 0
    assert isinstance(p, StreamingModelProvider)
    assert p.display_name() == "Toy (toy-1)"


def test_bad_configuration_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        ToyProvider(base_url="127.0.0.1:8080")
    with pytest.raises(ValueError, match="empty"):
        ToyProvider(api_key="  ", base_url="http://127.0.0.1:1")


def test_a_provider_pickles_without_its_sockets(server: LoopbackServer) -> None:
    p = ToyProvider(api_key="sk-pickled-key-123456", base_url=server.url)
    server.reply(ok())
    assert p.stream_response(Context()).collect().text == "hi"
    clone = pickle.loads(pickle.dumps(p))
    assert clone._transport_ref is None
    server.reply(ok())
    assert clone.stream_response(Context()).collect().text == "hi"
    assert server.requests[1].headers["authorization"] == "Bearer sk-pickled-key-123456"


def test_a_key_echoed_by_the_server_is_masked_in_the_error(server: LoopbackServer) -> None:
    key = "sk-echoed-secret-0123456789"
    p = ToyProvider(api_key=key, base_url=server.url)
    server.reply(Reply.json({"error": {"message": f"key {key} is not allowed here"}}, status=400))
    with pytest.raises(ApiError) as info:
        list(p.stream_response(Context()))
    assert key not in str(info.value) and key not in (info.value.body or "") and key not in repr(info.value)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_its_own_connection_pool(server: LoopbackServer) -> None:
    p = ToyProvider(base_url=server.url)
    server.reply(ok())
    assert p.stream_response(Context()).collect().text == "hi"  # parent's pool holds a connection
    server.reply(ok())
    with warnings.catch_warnings():
        # 3.12+ warns that forking a threaded process may deadlock; the server's
        # threads are idle and the child touches none of their locks.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # child: must not reuse the parent's socket
        code = 1
        try:
            code = 0 if p.stream_response(Context()).collect().text == "hi" else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert server.connections_accepted == 2
    server.reply(ok())
    assert p.stream_response(Context()).collect().text == "hi"  # the parent's pool still works
    assert server.connections_accepted == 2
    sys.stdout.flush()
