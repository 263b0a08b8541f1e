"""The stream engine over real HTTP on 127.0.0.1: order, close, break, GC, errors, timeouts, retries."""

from __future__ import annotations

import _thread
import gc
import json
import os
import socket
import threading
import time
import traceback
from typing import List

import pytest

from llm_sync import (
    ApiError,
    ApiRequestError,
    CollectedResponse,
    Context,
    InvalidApiKeyError,
    LlmResponse,
    NetworkError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
    StopReason,
    StreamInterruptedError,
)
from llm_sync._response import EncryptedReasoning, Usage
from llm_sync._timeouts import Timeouts
from llm_sync._tools import ToolCallRequest
from tests.support.server import Close, LoopbackServer, Raw, Reply, Reset, Sleep, Stall, sse_chunks
from tests.support.toy import PING, ToyProvider, done, reasoning, start, text

SSE = {"content-type": "text/event-stream"}


def toy(server: LoopbackServer, **kw: object) -> ToyProvider:
    return ToyProvider(base_url=server.url, **kw)  # type: ignore[arg-type]


def reader_threads() -> List[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("llm_sync-")]


def wait_no_readers(limit: float = 1.0) -> float:
    """Seconds until no reader thread is left; fails past ``limit``."""
    t0 = time.monotonic()
    while reader_threads():
        if time.monotonic() - t0 > limit:
            pytest.fail(f"reader threads still alive after {limit} s: {reader_threads()}")
        time.sleep(0.005)
    return time.monotonic() - t0


def ok_reply(*texts: str) -> Reply:
    return Reply.event_stream(start(), *(text(t) for t in texts), {"type": "usage", "input": 3, "output": 2}, done())


def test_chunks_arrive_in_order_with_start_first_and_done_last(server: LoopbackServer) -> None:
    server.reply(ok_reply("Hel", "lo"))
    with toy(server).stream_response(Context()) as stream:
        chunks = list(stream)
    assert chunks == [
        LlmResponse.Start("m1"),
        LlmResponse.Text("Hel"),
        LlmResponse.Text("lo"),
        LlmResponse.Usage(3, 2),
        LlmResponse.Done(StopReason.END_TURN, "end_turn"),
    ]
    assert stream.closed
    assert server.requests[0].json() == {"model": "toy-1", "messages": 0}


def test_collect_joins_the_turn(server: LoopbackServer) -> None:
    server.reply(ok_reply("a", "b", "c"))
    got = toy(server).stream_response(Context()).collect()
    assert (got.message_id, got.text, got.stop_reason, got.complete) == ("m1", "abc", StopReason.END_TURN, True)
    assert got.usage == LlmResponse.Usage(3, 2)
    message = got.to_message()
    assert message.content == "abc"


def test_a_second_stream_reuses_the_connection(server: LoopbackServer) -> None:
    provider = toy(server)
    for _ in range(3):
        server.reply(ok_reply("x"))
        assert provider.stream_response(Context()).collect().text == "x"
    assert server.connections_accepted == 1


def test_close_from_another_thread_during_a_stall_returns_promptly(server: LoopbackServer) -> None:
    server.reply(Reply(headers=SSE, body=[*sse_chunks(start(), text("a")), Stall(10)], chunked=True))
    stream = toy(server).stream_response(Context())
    assert next(stream) == LlmResponse.Start("m1")
    assert next(stream) == LlmResponse.Text("a")
    took: List[float] = []

    def closer() -> None:
        t0 = time.monotonic()
        stream.close()
        took.append(time.monotonic() - t0)

    t = threading.Timer(0.1, closer)
    t.start()
    # The consumer blocks in next(); the close from the timer thread ends iteration quietly.
    with pytest.raises(StopIteration):
        next(stream)
    t.join(2)
    assert took and took[0] < 0.1, took
    assert stream.closed
    wait_no_readers(1.0)


def test_close_while_the_server_never_sends_headers(server: LoopbackServer) -> None:
    answer = threading.Event()

    def held(req: object) -> Reply:
        answer.wait(5)  # the status line is held back until the test is over
        return Reply(status=500)

    server.reply(Reply.from_function(held))
    stream = toy(server).stream_response(Context())
    server.wait_for_requests(1, 2.0)
    try:
        t0 = time.monotonic()
        stream.close()
        assert time.monotonic() - t0 < 0.1
        wait_no_readers(1.0)
    finally:
        answer.set()


def test_break_closes_the_stream_and_ends_the_reader(server: LoopbackServer) -> None:
    server.reply(Reply(headers=SSE, body=[*sse_chunks(start(), text("a")), Stall(10)], chunked=True))
    stream = toy(server).stream_response(Context())
    for chunk in stream:
        if isinstance(chunk, LlmResponse.Text):
            break
    assert stream.closed
    wait_no_readers(1.0)


def test_an_abandoned_stream_is_closed_by_garbage_collection(server: LoopbackServer) -> None:
    server.reply(Reply(headers=SSE, body=[*sse_chunks(start(), text("a")), Stall(10)], chunked=True))
    stream = toy(server).stream_response(Context())
    assert next(stream) == LlmResponse.Start("m1")
    del stream
    gc.collect()
    wait_no_readers(1.0)


def test_an_error_crosses_to_the_caller_with_the_readers_traceback(server: LoopbackServer) -> None:
    server.reply(Reply.event_stream(start(), text("a"), {"type": "error", "kind": "bad", "message": "nope"}))
    stream = toy(server).stream_response(Context())
    with pytest.raises(ApiError, match="nope") as info:
        list(stream)
    frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert "parse_toy" in frames  # raised in the reader thread, re-raised here
    assert info.value.provider == "toy" and info.value.model == "toy-1"
    assert stream.closed
    wait_no_readers(1.0)


def test_collect_attaches_what_arrived_to_the_error(server: LoopbackServer) -> None:
    server.reply(Reply(headers=SSE, body=[*sse_chunks(start(), text("part")), Reset()], chunked=True))
    with pytest.raises(StreamInterruptedError) as info:
        toy(server).stream_response(Context()).collect()
    partial = info.value.partial
    assert partial is not None and partial.text == "part" and not partial.complete


# -- timeouts -----------------------------------------------------------------


def test_first_event_timeout(server: LoopbackServer) -> None:
    server.reply(Reply(headers=SSE, body=[Stall(10)], chunked=True))
    t0 = time.monotonic()
    with pytest.raises(RequestTimeoutError) as info:
        list(toy(server, timeout=Timeouts(first_event=0.3)).stream_response(Context()))
    assert info.value.phase == "first_event"
    assert 0.25 < time.monotonic() - t0 < 2.0


def test_keepalive_pings_do_not_reset_the_idle_timeout(server: LoopbackServer) -> None:
    pings = []
    for _ in range(40):
        pings += [Sleep(0.05), *sse_chunks(PING), b": keep-alive\n\n"]
    server.reply(Reply(headers=SSE, body=[*sse_chunks(start(), text("a")), *pings], chunked=True))
    stream = toy(server, timeout=Timeouts(idle=0.4)).stream_response(Context())
    assert [next(stream), next(stream)] == [LlmResponse.Start("m1"), LlmResponse.Text("a")]
    t0 = time.monotonic()
    with pytest.raises(RequestTimeoutError) as info:
        next(stream)
    assert info.value.phase == "idle"
    assert 0.35 < time.monotonic() - t0 < 1.5


def test_total_deadline_cuts_a_stream_that_keeps_talking(server: LoopbackServer) -> None:
    trickle = []
    for i in range(100):
        trickle += [Sleep(0.02), *sse_chunks(text(str(i)))]
    server.reply(Reply(headers=SSE, body=[*sse_chunks(start()), *trickle], chunked=True))
    t0 = time.monotonic()
    with pytest.raises(RequestTimeoutError) as info:
        list(toy(server, timeout=Timeouts(total=0.4)).stream_response(Context()))
    assert info.value.phase == "total"
    assert 0.35 < time.monotonic() - t0 < 1.5


def test_connect_timeout() -> None:
    # A listening socket whose backlog is full: the kernel drops further SYNs, so
    # connect() hangs, all on 127.0.0.1.
    listener = socket.socket()
    fillers: List[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(8):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            fillers.append(s)
        time.sleep(0.05)
        provider = ToyProvider(base_url=f"http://127.0.0.1:{port}", timeout=Timeouts(connect=0.3), max_retries=0)
        t0 = time.monotonic()
        with pytest.raises(RequestTimeoutError) as info:
            list(provider.stream_response(Context()))
        assert info.value.phase == "connect"
        assert time.monotonic() - t0 < 3.0
    finally:
        for s in fillers:
            s.close()
        listener.close()


# -- retries ------------------------------------------------------------------


def test_429_with_retry_after_is_retried_after_the_wait(server: LoopbackServer) -> None:
    server.reply(Reply.json({"error": {"message": "slow down"}}, status=429, headers={"retry-after": "0.3"}))
    server.reply(ok_reply("fine"))
    t0 = time.monotonic()
    got = toy(server).stream_response(Context()).collect()
    assert got.text == "fine"
    assert time.monotonic() - t0 >= 0.3
    assert len(server.requests) == 2


def test_retry_after_ms_wins_over_retry_after(server: LoopbackServer) -> None:
    server.reply(
        Reply.json({"error": "busy"}, status=503, headers={"retry-after-ms": "50", "retry-after": "30"})
    )
    server.reply(ok_reply("ok"))
    t0 = time.monotonic()
    assert toy(server).stream_response(Context()).collect().text == "ok"
    assert time.monotonic() - t0 < 5


def test_retries_are_bounded_and_the_last_error_is_raised(server: LoopbackServer) -> None:
    for _ in range(3):
        server.reply(Reply.json({"error": {"message": "down"}}, status=500, headers={"retry-after": "0"}))
    with pytest.raises(ServerError, match="down") as info:
        list(toy(server, max_retries=2).stream_response(Context()))
    assert info.value.status == 500 and info.value.retryable
    assert len(server.requests) == 3


def test_a_retry_after_beyond_the_cap_is_not_waited_for(server: LoopbackServer) -> None:
    server.reply(Reply.json({"error": "later"}, status=429, headers={"retry-after": "3600"}))
    t0 = time.monotonic()
    with pytest.raises(RateLimitedError) as info:
        list(toy(server).stream_response(Context()))
    assert info.value.retry_after == 3600
    assert time.monotonic() - t0 < 2
    assert len(server.requests) == 1


def test_an_in_band_overload_before_content_is_retried_without_a_second_start(server: LoopbackServer) -> None:
    server.reply(Reply.event_stream(start("first"), {"type": "error", "kind": "overloaded", "message": "busy"}))
    server.reply(ok_reply("hi"))
    chunks = list(toy(server, timeout=5).stream_response(Context()))
    assert [c for c in chunks if isinstance(c, LlmResponse.Start)] == [LlmResponse.Start("first")]
    assert LlmResponse.Text("hi") in chunks
    assert len(server.requests) == 2


def test_auth_errors_are_never_retried(server: LoopbackServer) -> None:
    server.reply(Reply.json({"error": {"message": "invalid x-api-key"}}, status=401))
    with pytest.raises(InvalidApiKeyError) as info:
        list(toy(server).stream_response(Context()))
    assert not info.value.retryable
    assert len(server.requests) == 1


def test_no_retry_once_content_reached_the_caller(server: LoopbackServer) -> None:
    server.reply(Reply(headers=SSE, body=[*sse_chunks(start(), text("a")), Reset()], chunked=True))
    server.reply(ok_reply("never"))
    stream = toy(server).stream_response(Context())
    assert next(stream) == LlmResponse.Start("m1")
    assert next(stream) == LlmResponse.Text("a")
    with pytest.raises(StreamInterruptedError):
        next(stream)
    assert len(server.requests) == 1


def test_truncated_chunked_encoding_after_content_is_an_interruption(server: LoopbackServer) -> None:
    server.reply(Reply(headers=SSE, body=[*sse_chunks(start(), text("a")), Raw(b"40\r\ndata: {"), Close()], chunked=True))
    with pytest.raises(StreamInterruptedError):
        list(toy(server).stream_response(Context()))


def test_a_body_that_ends_without_done_is_an_interruption(server: LoopbackServer) -> None:
    server.reply(Reply.event_stream(start(), text("a")))
    with pytest.raises(StreamInterruptedError, match="ended before"):
        list(toy(server, max_retries=0).stream_response(Context()))


def test_connection_refused_is_a_network_error() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(NetworkError):
        list(ToyProvider(base_url=f"http://127.0.0.1:{port}", max_retries=0).stream_response(Context()))


def test_an_html_error_page_is_named_as_such(server: LoopbackServer) -> None:
    page = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    server.reply(Reply(status=502, headers={"content-type": "text/html"}, body=page))
    with pytest.raises(ServerError, match=r"HTML page.*502 Bad Gateway"):
        list(toy(server, max_retries=0).stream_response(Context()))


def test_a_redirect_to_another_host_is_refused(server: LoopbackServer) -> None:
    server.reply(Reply(status=307, headers={"location": "http://example.invalid/v1/stream"}))
    with pytest.raises(ApiRequestError, match="redirect"):
        list(toy(server).stream_response(Context()))
    assert len(server.requests) == 1


def test_a_same_origin_307_is_followed_with_the_body(server: LoopbackServer) -> None:
    server.reply(Reply(status=307, headers={"location": "/v2/stream"}))
    server.reply(ok_reply("moved"))
    assert toy(server).stream_response(Context()).collect().text == "moved"
    assert [r.path for r in server.requests] == ["/v1/stream", "/v2/stream"]
    assert server.requests[1].json()["model"] == "toy-1"


def test_keyboard_interrupt_while_waiting_closes_the_stream(server: LoopbackServer) -> None:
    server.reply(Reply(headers=SSE, body=[*sse_chunks(start()), Stall(10)], chunked=True))
    stream = toy(server).stream_response(Context())
    assert next(stream) == LlmResponse.Start("m1")
    timer = threading.Timer(0.1, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            next(stream)
    finally:
        timer.join()
    assert stream.closed
    wait_no_readers(1.0)


def test_a_slow_consumer_holds_the_reader_at_the_queue_bound(server: LoopbackServer) -> None:
    from llm_sync import _engine

    n = _engine.MAX_QUEUED + 500
    server.reply(Reply.event_stream(start(), *(text("x") for _ in range(n)), done()))
    stream = toy(server).stream_response(Context())
    time.sleep(0.3)
    assert stream._state.queue.qsize() <= _engine.MAX_QUEUED + 1
    assert len(list(stream)) == n + 2  # Start, every Text, Done: nothing dropped


def test_a_consumer_that_stops_reading_holds_the_queue_at_its_bound_in_characters(server: LoopbackServer) -> None:
    from llm_sync import _engine

    piece = "x" * 4000
    n = 2 * _engine.MAX_QUEUED_CHARS // len(piece)  # twice the bound, in few chunks
    server.reply(Reply.event_stream(start(), *(text(piece) for _ in range(n)), done()))
    stream = toy(server).stream_response(Context())
    state = stream._state
    deadline = time.monotonic() + 5
    while not state.parked and time.monotonic() < deadline:
        time.sleep(0.01)
    assert state.parked, "the reader never reached the bound"
    time.sleep(0.1)
    queued = state.sent - state.taken
    assert _engine.MAX_QUEUED_CHARS - len(piece) < queued <= _engine.MAX_QUEUED_CHARS + len(piece)
    assert state.queue.qsize() < _engine.MAX_QUEUED
    chunks = list(stream)
    assert [c.chunk for c in chunks[1:-1]] == [piece] * n  # type: ignore[attr-defined]
    assert state.sent == state.taken


def test_a_chunk_larger_than_half_the_bound_goes_once_the_queue_is_empty(server: LoopbackServer) -> None:
    from llm_sync import _engine

    small, big = "s" * 4000, "b" * (_engine.MAX_QUEUED_CHARS * 3 // 4)
    count = _engine.MAX_QUEUED_CHARS // 2 // len(small)
    server.reply(Reply.event_stream(start(), *(text(small) for _ in range(count)), text(big), done()))
    stream = toy(server).stream_response(Context())
    deadline = time.monotonic() + 5
    while not stream._state.parked and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stream._state.parked  # holding the big chunk: the queue plus it is over the bound
    t0 = time.monotonic()
    chunks = list(stream)
    # The reader is woken when the consumer empties the queue, not by its 30 s re-check.
    assert time.monotonic() - t0 < 5
    assert [c.chunk for c in chunks[1:-1]] == [small] * count + [big]  # type: ignore[attr-defined]


def test_a_reader_parked_on_a_full_queue_blocks_instead_of_polling(server: LoopbackServer) -> None:
    from llm_sync import _engine

    n = _engine.MAX_QUEUED + 500
    server.reply(Reply.event_stream(start(), *(text("x") for _ in range(n)), done()))
    stream = toy(server).stream_response(Context())
    deadline = time.monotonic() + 5
    while not stream._state.parked and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stream._state.parked
    assert stream._thread is not None
    status = f"/proc/self/task/{stream._thread.native_id}/status"
    if not os.path.exists(status):
        stream.close()
        pytest.skip("needs /proc to count the reader's wake-ups")

    def wakeups() -> int:
        with open(status) as f:
            return sum(int(line.split()[1]) for line in f if "ctxt_switches" in line)

    before = wakeups()
    time.sleep(0.3)
    # Polling every few milliseconds would wake it about a hundred times here.
    assert wakeups() - before <= 2
    assert len(list(stream)) == n + 2  # and it goes on once the consumer reads


def test_close_wakes_a_reader_parked_on_a_full_queue(server: LoopbackServer) -> None:
    from llm_sync import _engine

    n = _engine.MAX_QUEUED + 500
    server.reply(Reply.event_stream(start(), *(text("x") for _ in range(n)), done()))
    stream = toy(server).stream_response(Context())
    deadline = time.monotonic() + 5
    while not stream._state.parked and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stream._state.parked
    t0 = time.monotonic()
    stream.close()
    assert wait_no_readers(1.0) + (time.monotonic() - t0) < 1.0


def test_chunks_waiting_for_a_slow_consumer_are_not_objects_the_gc_tracks(server: LoopbackServer) -> None:
    thoughts = [f"r{i}" for i in range(500)]
    texts = [f"t{i}" for i in range(2000)]
    server.reply(Reply.event_stream(start(), *map(reasoning, thoughts), *map(text, texts), done()))
    chunk_types = (LlmResponse.Text, LlmResponse.Reasoning)

    def tracked_chunks() -> int:
        return sum(1 for o in gc.get_objects() if type(o) in chunk_types)

    before = tracked_chunks()
    stream = toy(server).stream_response(Context())
    deadline = time.monotonic() + 5
    while stream._state.queue.qsize() < 2 + len(thoughts) + len(texts) and time.monotonic() < deadline:
        time.sleep(0.01)
    # Everything is queued and nothing consumed; tracked chunk objects here would be
    # promoted by young collections and set off full ones in a large process.
    assert tracked_chunks() - before <= 2
    chunks = list(stream)
    assert [type(c) for c in chunks[1:-1]] == [LlmResponse.Reasoning] * 500 + [LlmResponse.Text] * 2000
    assert [c.chunk for c in chunks[1:-1]] == thoughts + texts  # type: ignore[attr-defined]
    assert isinstance(chunks[0], LlmResponse.Start) and isinstance(chunks[-1], LlmResponse.Done)


def test_a_thousand_abandoned_streams_leave_no_thread(server: LoopbackServer) -> None:
    provider = toy(server)
    before = threading.active_count()
    for _ in range(200):
        server.reply(Reply(headers=SSE, body=[*sse_chunks(start()), Stall(10)], chunked=True))
    for _ in range(200):
        stream = provider.stream_response(Context())
        next(stream)
        del stream
    wait_no_readers(2.0)
    assert threading.active_count() <= before + 200  # server-side connection threads only



def test_a_200_json_error_body_on_a_stream_is_the_typed_error(server: LoopbackServer) -> None:
    server.reply(Reply.json({"error": {"message": "Rate limit exceeded upstream", "code": 429}}))
    server.reply(ok_reply("after the wait"))
    # The gateway meant 429: retried like one, and the second answer streams.
    assert toy(server).stream_response(Context()).collect().text == "after the wait"
    server.reply(Reply.json({"error": {"message": "bad request shape", "code": "invalid"}}))
    with pytest.raises(ApiError, match="bad request shape") as info:
        list(toy(server).stream_response(Context()))
    assert info.value.status == 400 and not info.value.retryable


def test_a_200_html_page_on_a_stream_is_named(server: LoopbackServer) -> None:
    page = b"<html><head><title>Sign in to the Wi-Fi</title></head></html>"
    server.reply(Reply(status=200, headers={"content-type": "text/html; charset=utf-8"}, body=page))
    with pytest.raises(ServerError, match="Sign in to the Wi-Fi"):
        list(toy(server, max_retries=0).stream_response(Context()))


def test_a_200_json_document_that_is_not_an_error_is_named(server: LoopbackServer) -> None:
    server.reply(Reply.json({"id": "x", "choices": []}))
    with pytest.raises(ApiError, match="instead of a stream"):
        list(toy(server).stream_response(Context()))


def test_a_parser_that_stops_at_its_end_marker_still_lets_the_connection_be_reused(server: LoopbackServer) -> None:
    from llm_sync import OpenAiCompatibleProvider

    chat = {"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}
    provider = OpenAiCompatibleProvider(base_url=server.url + "/v1", model="m")
    for _ in range(3):
        server.reply(Reply.event_stream(chat, "[DONE]"))
        assert provider.stream_response(Context()).collect().text == "hi"
    assert server.connections_accepted == 1


def test_collected_response_round_trips_through_json() -> None:
    r = CollectedResponse(
        message_id="m1", text="hi", reasoning="hmm", tool_calls=(ToolCallRequest("c1", "f", '{"a":1}'),),
        usage=Usage(10, 5, cached_input_tokens=2, reasoning_tokens=1), stop_reason=StopReason.TOOL_CALLS,
        raw_stop_reason="tool_use", encrypted_reasoning=EncryptedReasoning("r1", "opaque"), complete=True,
        provider="anthropic", model="claude-x",
    )
    back = CollectedResponse.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back.to_dict() == r.to_dict()
    assert back.usage == r.usage and back.tool_calls == r.tool_calls and back.stop_reason is StopReason.TOOL_CALLS
    assert back.encrypted_reasoning == r.encrypted_reasoning


def test_tool_arguments_count_against_the_queues_text_bound() -> None:
    from llm_sync import LlmResponse, ToolCallRequest
    from llm_sync._engine import OTHER_SIZE, size_of

    big = "x" * 100_000
    assert size_of(LlmResponse.ToolRequestArg("c", big)) == OTHER_SIZE + len(big)
    call = LlmResponse.ToolRequestComplete(ToolCallRequest("c", "f", big))
    assert size_of(call) == OTHER_SIZE + len(big)
    assert size_of(LlmResponse.EncryptedReasoning("r", big)) == OTHER_SIZE + len(big)
    assert size_of(big) == len(big) and size_of((big,)) == len(big)
    assert size_of(LlmResponse.Done()) == OTHER_SIZE


# -- partial ---------------------------------------------------------------------------------


def test_partial_is_what_arrived_so_far_while_iterating_and_after_a_cancel(server: LoopbackServer) -> None:
    tool = {"type": "tool", "id": "t1", "name": "f", "arguments": "{}"}
    server.reply(
        Reply(headers=SSE, body=[*sse_chunks(start(), reasoning("hm"), text("Hel"), text("lo"), tool), Stall(10)], chunked=True)
    )
    stream = toy(server).stream_response(Context())
    chunks = iter(stream)
    assert next(chunks) == LlmResponse.Start("m1")
    assert stream.partial().text == "" and stream.partial().message_id == "m1"
    for _ in range(2):  # the reasoning, "Hel"
        next(chunks)
    mid = stream.partial()
    assert (mid.text, mid.reasoning, mid.complete, mid.usage, mid.stop_reason) == ("Hel", "hm", False, None, None)
    for _ in range(4):  # lo, the tool call's Start, Arg and Complete
        next(chunks)
    stream.close()  # the caller cancels; the server never finished the turn
    cut = stream.partial()
    assert cut.text == "Hello" and [c.id for c in cut.tool_calls] == ["t1"] and not cut.complete
    message = cut.to_message()
    # Safe to send back: the unanswered call is left out, the text kept.
    assert message.content == "Hello" and message.tool_calls == ()
    assert list(chunks) == []


def test_partial_after_an_error_and_after_the_end(server: LoopbackServer) -> None:
    server.reply(Reply(headers=SSE, body=[*sse_chunks(start(), text("half")), Close()], chunked=True))
    stream = toy(server).stream_response(Context())
    with pytest.raises(StreamInterruptedError):
        list(stream)
    assert stream.partial().text == "half" and not stream.partial().complete
    tool = {"type": "tool", "id": "t1", "name": "f", "arguments": "{}"}
    server.reply(Reply(headers=SSE, body=sse_chunks(start(), text("ok"), tool, done()), chunked=True))
    with toy(server).stream_response(Context()) as stream:
        whole = stream.collect()
    assert stream.partial().text == whole.text == "ok" and whole.complete
    # A finished turn keeps its calls: the caller sends their results next.
    assert [c.id for c in whole.to_message().tool_calls] == ["t1"]
