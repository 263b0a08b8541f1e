"""Transport and body faults, for every provider framing: each ends in a typed error or a correct result.

Every test runs one provider (Anthropic SSE, OpenAI Responses SSE, Gemini, Bedrock event stream,
Ollama NDJSON) against the loopback server; the autouse ``no_leaks`` fixture checks that no thread
or socket is left.
"""

from __future__ import annotations

import socket
import time
import tracemalloc
from typing import Any, List

import pytest

from llm_sync import (
    ApiError,
    Context,
    JsonParsingError,
    LlmError,
    NetworkError,
    StopReason,
    StreamInterruptedError,
    StreamReadError,
)
from llm_sync._response import Start, Text
from tests.support.faults import (
    ERROR_MESSAGE,
    Flavor,
    assert_clean_turn,
    chunks_of,
    error_of,
    fast_retries,
    flavor_params,
    gzip_steps,
    joined_text,
    reset_before_headers,
    run,
)
from tests.support.server import Close, LoopbackServer, Raw, Reply, Reset

ALL = flavor_params()


# ---------------------------------------------------------------------------
# The baseline every fault is compared with.


@pytest.mark.parametrize("flavor", ALL)
def test_a_clean_turn(server: LoopbackServer, flavor: Flavor) -> None:
    server.reply(flavor.reply("Hel", "lo"))
    chunks = chunks_of(flavor.provider(server))
    assert_clean_turn(chunks, "Hello")
    assert len(server.requests) == 1


@pytest.mark.parametrize("flavor", ALL)
def test_a_second_stream_reuses_the_connection(server: LoopbackServer, flavor: Flavor) -> None:
    provider = flavor.provider(server)
    for word in ("one", "two"):
        server.reply(flavor.reply(word))
        assert run(provider).text == word
    assert [r.connection_id for r in server.requests] == [1, 1]


# ---------------------------------------------------------------------------
# Connection faults.


@pytest.mark.parametrize("flavor", ALL)
def test_connection_refused_is_a_network_error(flavor: Flavor) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now: connect() is refused

    class Nowhere:
        url = f"http://127.0.0.1:{port}"

    provider = fast_retries(flavor.provider(Nowhere, max_retries=0), max_retries=2)  # type: ignore[arg-type]
    t0 = time.monotonic()
    with pytest.raises(NetworkError) as info:
        run(provider)
    assert time.monotonic() - t0 < 2.0
    assert info.value.retryable
    assert str(port) in str(info.value)
    assert info.value.provider == flavor.name


@pytest.mark.parametrize("flavor", ALL)
def test_reset_before_headers_is_a_network_error(server: LoopbackServer, flavor: Flavor) -> None:
    server.reply(reset_before_headers(server))
    with pytest.raises(NetworkError) as info:
        run(flavor.provider(server, max_retries=0))
    assert info.value.retryable
    assert len(server.requests) == 1


@pytest.mark.parametrize("flavor", ALL)
def test_reset_before_headers_then_success_is_retried_once(server: LoopbackServer, flavor: Flavor) -> None:
    server.reply(reset_before_headers(server), flavor.reply("fi", "ne"))
    chunks = chunks_of(fast_retries(flavor.provider(server), max_retries=2))
    assert_clean_turn(chunks, "fine")
    assert len(server.requests) == 2


@pytest.mark.parametrize("flavor", ALL)
def test_reset_mid_stream_is_an_interruption_and_not_retried(server: LoopbackServer, flavor: Flavor) -> None:
    server.reply(flavor.reply(steps=[*flavor.start, flavor.text("par"), flavor.text("tial"), Reset()]))
    server.reply(flavor.reply("never", "sent"))
    with pytest.raises(StreamInterruptedError) as info:
        run(fast_retries(flavor.provider(server), max_retries=3))
    partial = info.value.partial
    assert partial is not None and not partial.complete
    assert partial.text == "partial"
    assert partial.stop_reason is None
    assert len(server.requests) == 1  # content had arrived: never re-sent
    assert server.pending_replies == 1


@pytest.mark.parametrize("flavor", ALL)
def test_chunked_encoding_truncated_mid_chunk(server: LoopbackServer, flavor: Flavor) -> None:
    # A chunk header announcing 0x100 bytes, 9 of them, then FIN.
    steps = [*flavor.start, flavor.text("cut"), Raw(b"100\r\n" + flavor.text("lost")[:9]), Close()]
    server.reply(flavor.reply(steps=steps))
    with pytest.raises(StreamInterruptedError) as info:
        run(fast_retries(flavor.provider(server), max_retries=3))
    partial = info.value.partial
    assert partial is not None and not partial.complete and partial.text == "cut"
    assert len(server.requests) == 1


@pytest.mark.parametrize("flavor", ALL)
def test_close_without_the_final_event_keeps_the_partial_result(server: LoopbackServer, flavor: Flavor) -> None:
    # A well-formed body (the chunked terminator is sent) that just stops before the end events.
    server.reply(flavor.reply(steps=[*flavor.start, flavor.text("half "), flavor.text("a turn")]))
    with pytest.raises(StreamInterruptedError) as info:
        with flavor.provider(server).stream_response(Context()) as stream:
            stream.collect()
    partial = info.value.partial
    assert partial is not None
    assert partial.complete is False
    assert partial.text == "half a turn"
    assert partial.message_id
    assert partial.stop_reason is None
    # Usage: what the provider reported before the cut (Anthropic's message_start), else None.
    so_far = None if partial.usage is None else (partial.usage.input_tokens, partial.usage.output_tokens)
    assert so_far == ((5, 1) if flavor.name == "anthropic" else None)
    assert "ended before" in str(info.value)


@pytest.mark.parametrize("flavor", ALL)
def test_close_before_any_content_is_retried(server: LoopbackServer, flavor: Flavor) -> None:
    # The connection drops after the opening events only: nothing reached the caller.
    server.reply(flavor.reply(steps=[*flavor.start, Close()], chunked=False))
    server.reply(flavor.reply("again"))
    chunks = chunks_of(fast_retries(flavor.provider(server), max_retries=2))
    assert_clean_turn(chunks, "again")
    assert len(server.requests) == 2


# ---------------------------------------------------------------------------
# Bodies that are not the stream the request asked for.

HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    b"<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>\n"
)



@pytest.mark.parametrize("flavor", ALL)
def test_200_with_an_html_error_page_names_the_page(server: LoopbackServer, flavor: Flavor) -> None:
    server.reply(Reply(status=200, headers={"content-type": "text/html; charset=utf-8"}, body=[HTML_PAGE]))
    err = error_of(flavor.provider(server))
    assert isinstance(err, LlmError), repr(err)
    # Nothing was interrupted: the whole (wrong) body arrived. The message must point at the page.
    assert not isinstance(err, StreamInterruptedError), repr(err)
    assert "502 Bad Gateway" in str(err)
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "flavor",
    ALL,
)
def test_200_with_a_json_error_body_is_the_providers_api_error(server: LoopbackServer, flavor: Flavor) -> None:
    server.reply(Reply.json(flavor.error_json(400), status=200))
    err = error_of(flavor.provider(server))
    assert isinstance(err, ApiError), repr(err)
    assert ERROR_MESSAGE in str(err)
    assert err.provider == flavor.name and not err.retryable
    assert len(server.requests) == 1


@pytest.mark.parametrize("flavor", ALL)
def test_http_400_is_the_providers_api_error_and_not_retried(server: LoopbackServer, flavor: Flavor) -> None:
    server.reply(Reply.json(flavor.error_json(400), status=400), flavor.reply("never"))
    err = error_of(fast_retries(flavor.provider(server), max_retries=3))
    assert isinstance(err, ApiError), repr(err)
    assert ERROR_MESSAGE in str(err) and err.status == 400 and not err.retryable
    assert len(server.requests) == 1


@pytest.mark.parametrize("flavor", ALL)
def test_wrong_content_type_with_a_valid_stream_is_parsed_anyway(server: LoopbackServer, flavor: Flavor) -> None:
    server.reply(flavor.reply("lenient", headers={"content-type": "text/plain; charset=utf-8"}))
    assert_clean_turn(chunks_of(flavor.provider(server)), "lenient")


@pytest.mark.parametrize(
    "flavor",
    ALL,
)
def test_wrong_content_type_with_garbage_is_a_typed_error(server: LoopbackServer, flavor: Flavor) -> None:
    body = b"Service temporarily unavailable.\nPlease try again later.\n"
    server.reply(Reply(status=200, headers={"content-type": "text/plain"}, body=[body]))
    err = error_of(flavor.provider(server))
    assert isinstance(err, LlmError) and not isinstance(err, StreamInterruptedError), repr(err)


@pytest.mark.parametrize("flavor", ALL)
def test_invalid_json_in_one_event_is_a_json_parsing_error(server: LoopbackServer, flavor: Flavor) -> None:
    server.reply(flavor.reply(steps=[*flavor.start, flavor.text("ok"), flavor.bad_json, flavor.text("no"), *flavor.end]))
    with pytest.raises(JsonParsingError) as info:
        with flavor.provider(server).stream_response(Context()) as stream:
            stream.collect()
    assert not info.value.retryable
    assert info.value.partial.text == "ok"  # type: ignore[attr-defined]
    assert len(server.requests) == 1


@pytest.mark.parametrize("flavor", ALL)
def test_an_unknown_event_type_is_ignored(server: LoopbackServer, flavor: Flavor) -> None:
    steps = [*flavor.start, flavor.unknown, flavor.text("a"), flavor.unknown, flavor.text("b"), *flavor.end]
    server.reply(flavor.reply(steps=steps))
    assert_clean_turn(chunks_of(flavor.provider(server)), "ab")


@pytest.mark.parametrize("flavor", ALL)
@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_a_gzip_encoded_stream_is_decoded(server: LoopbackServer, flavor: Flavor, chunked: bool) -> None:
    plain = b"".join(flavor.turn("squeezed ", "and ", "restored"))
    steps = gzip_steps(plain)
    server.reply(flavor.reply(steps=steps, headers={"content-encoding": "gzip"}, chunked=chunked))
    assert_clean_turn(chunks_of(flavor.provider(server)), "squeezed and restored")
    assert "gzip" in server.requests[0].headers.get("accept-encoding", "")




@pytest.mark.parametrize(
    "flavor",
    ALL,
)
def test_a_close_delimited_body_cut_inside_an_event_is_an_interruption(server: LoopbackServer, flavor: Flavor) -> None:
    cut = flavor.text("and this one is cut")
    server.reply(flavor.reply(steps=[*flavor.start, flavor.text("kept"), cut[: len(cut) - 12], Close()], chunked=False))
    err = error_of(flavor.provider(server))
    assert isinstance(err, StreamInterruptedError), repr(err)
    assert err.partial is not None and err.partial.text == "kept"


@pytest.mark.parametrize("flavor", ALL)
def test_a_gzip_stream_cut_mid_member_is_an_interruption(server: LoopbackServer, flavor: Flavor) -> None:
    plain = b"".join(flavor.turn(*(f"part {i} " for i in range(50))))
    steps = gzip_steps(plain, pieces=4)
    server.reply(flavor.reply(steps=[*steps[:2], Close()], headers={"content-encoding": "gzip"}, chunked=False))
    err = error_of(flavor.provider(server))
    assert isinstance(err, (StreamInterruptedError, NetworkError, StreamReadError)), repr(err)


# ---------------------------------------------------------------------------
# Event size.

_MB = 1024 * 1024


def _pieces(data: bytes, size: int = 256 * 1024) -> List[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def _limited_stream(provider: Any, limit: int) -> Any:
    """The provider's stream with the engine's event-size bound set to ``limit``."""
    from llm_sync._call import http_source
    from llm_sync._stream import LlmResponseStream

    call, parse = provider.build_call(Context())
    source = http_source(
        call,
        parse,
        transport=provider._transport(),
        timeouts=provider.timeouts,
        retry=provider.retry_policy,
        max_event_bytes=limit,
    )
    return LlmResponseStream(source, provider=provider.provider_id, model=provider.model_name, timeouts=provider.timeouts)


@pytest.mark.parametrize("flavor", ALL)
def test_a_10_mb_event_over_the_limit_is_a_stream_read_error_in_bounded_memory(
    server: LoopbackServer, flavor: Flavor
) -> None:
    big = flavor.big(10 * _MB)
    steps = [*flavor.start, flavor.text("before"), *_pieces(big), *flavor.end]
    server.reply(flavor.reply(steps=steps))
    provider = flavor.provider(server)
    tracemalloc.start()
    try:
        with pytest.raises(StreamReadError) as info:
            with _limited_stream(provider, _MB) as stream:
                got = [next(stream), next(stream)]
                assert isinstance(got[0], Start) and got[1] == Text("before")
                list(stream)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert "max_event_bytes" in message and str(_MB) in message, message
    assert not info.value.retryable
    # Far below the event's 10 MB: the reader stopped buffering at the limit.
    assert peak < 6 * _MB, f"peak {peak / _MB:.1f} MB while reading a 10 MB event with a 1 MB limit"


@pytest.mark.parametrize("flavor", ALL)
def test_a_10_mb_event_under_the_default_limit_arrives_whole(server: LoopbackServer, flavor: Flavor) -> None:
    big = flavor.big(10 * _MB)
    server.reply(flavor.reply(steps=[*flavor.start, *_pieces(big), *flavor.end]))
    chunks = chunks_of(flavor.provider(server))
    assert len(joined_text(chunks)) == 10 * _MB
    assert chunks[-1].stop_reason is StopReason.END_TURN


@pytest.mark.parametrize("flavor", ALL)
def test_the_maximum_event_size_is_configurable_on_the_provider(server: LoopbackServer, flavor: Flavor) -> None:
    provider = flavor.provider(server)
    setter = getattr(provider, "with_max_event_bytes", None)
    if setter is None:
        pytest.fail(f"{type(provider).__name__} has no with_max_event_bytes()")
    limited = setter(_MB)
    server.reply(flavor.reply(steps=[*flavor.start, *_pieces(flavor.big(10 * _MB)), *flavor.end]))
    err = error_of(limited)
    assert isinstance(err, StreamReadError) and "max_event_bytes" in str(err), repr(err)
