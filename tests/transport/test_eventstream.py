"""The AWS event-stream decoder against hand-built messages, botocore's decoder and real Bedrock recordings."""

from __future__ import annotations

import json
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_sync import StreamInterruptedError, StreamReadError
from llm_sync._transport import (
    Frame,
    encode_message,
    event_frame,
    exception_frame,
    iter_eventstream,
)
from tests.support.paths import WIRE

BEDROCK_BINS = sorted((WIRE / "bedrock").glob("*.bin")) if WIRE.is_dir() else []


def frames(body: bytes, size: int = 0, **kw: int) -> list[Frame]:
    """Decode ``body`` whole (size 0) or in ``size``-byte chunks."""
    if size == 0:
        return list(iter_eventstream([body], **kw))
    return list(iter_eventstream((body[i : i + size] for i in range(0, len(body), size)), **kw))


def split(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(body)) for c in cuts})
    edges = [0, *points, len(body)]
    return [body[a:b] for a, b in zip(edges, edges[1:])]


def raw_message(raw_headers: bytes, payload: bytes) -> bytes:
    """An independent encoder, so the decoder is not only checked against its own encoder."""
    total = 16 + len(raw_headers) + len(payload)
    prelude = struct.pack(">II", total, len(raw_headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + raw_headers + payload
    return body + struct.pack(">I", zlib.crc32(body))


def header(name: str, kind: int, value: bytes) -> bytes:
    raw = name.encode()
    return bytes([len(raw)]) + raw + bytes([kind]) + value


def flip(body: bytes, index: int) -> bytes:
    return body[:index] + bytes([body[index] ^ 0x40]) + body[index + 1 :]


# ---------------------------------------------------------------------------
# Decoding


def test_event_frame_round_trip() -> None:
    body = event_frame("contentBlockDelta", b'{"delta":{"text":"hi"}}')
    (frame,) = frames(body)
    assert frame == Frame(
        "contentBlockDelta",
        '{"delta":{"text":"hi"}}',
        "event",
        {":event-type": "contentBlockDelta", ":content-type": "application/json", ":message-type": "event"},
    )
    assert list(frame.headers) == [":event-type", ":content-type", ":message-type"]


def test_exception_frame_is_named_by_exception_type() -> None:
    (frame,) = frames(exception_frame("throttlingException", '{"message":"Too many requests"}'))
    assert frame.event == "throttlingException"
    assert frame.message_type == "exception"
    assert json.loads(frame.data) == {"message": "Too many requests"}


def test_error_frame_is_named_by_error_code() -> None:
    body = encode_message(
        {":message-type": "error", ":error-code": "InternalFailure", ":error-message": "boom"}, b""
    )
    (frame,) = frames(body)
    assert (frame.event, frame.data, frame.message_type) == ("InternalFailure", "", "error")
    assert frame.headers[":error-message"] == "boom"


def test_message_without_message_type_is_an_event() -> None:
    (frame,) = frames(encode_message({":event-type": "ping"}, b"{}"))
    assert (frame.event, frame.message_type) == ("ping", "event")
    (frame,) = frames(encode_message({}, b""))
    assert (frame.event, frame.data, frame.message_type, dict(frame.headers)) == ("", "", "event", {})


def test_headers_are_read_only() -> None:
    (frame,) = frames(event_frame("messageStart", b"{}"))
    with pytest.raises(TypeError):
        frame.headers[":event-type"] = "x"  # type: ignore[index]


def test_every_header_type() -> None:
    uuid = bytes(range(16))
    raw = b"".join(
        [
            header("t", 0, b""),
            header("f", 1, b""),
            header("byte", 2, struct.pack(">b", -5)),
            header("short", 3, struct.pack(">h", -300)),
            header("int", 4, struct.pack(">i", -70000)),
            header("long", 5, struct.pack(">q", -(2**40))),
            header("bytes", 6, struct.pack(">H", 3) + b"\x00\xff\x01"),
            header("string", 7, struct.pack(">H", 5) + "h\u00e9!!".encode()),
            header("ts", 8, struct.pack(">q", 1_700_000_000_123)),
            header("uuid", 9, uuid),
        ]
    )
    (frame,) = frames(raw_message(raw, b"payload"))
    assert dict(frame.headers) == {
        "t": True,
        "f": False,
        "byte": -5,
        "short": -300,
        "int": -70000,
        "long": -(2**40),
        "bytes": b"\x00\xff\x01",
        "string": "h\u00e9!!",
        "ts": 1_700_000_000_123,
        "uuid": uuid,
    }
    assert frame.data == "payload"


def test_encode_message_value_types() -> None:
    body = encode_message({"b": True, "c": False, "i": -1, "l": 2**40, "y": b"\x00", "s": "x"}, b"")
    (frame,) = frames(body)
    assert dict(frame.headers) == {"b": True, "c": False, "i": -1, "l": 2**40, "y": b"\x00", "s": "x"}
    # int32 when it fits, int64 otherwise: type bytes 4 and 5 after the names.
    assert b"\x01i\x04" in body and b"\x01l\x05" in body
    with pytest.raises(ValueError):
        encode_message({"n": 2**63}, b"")
    with pytest.raises(ValueError):
        encode_message({"x" * 256: "v"}, b"")


def test_empty_body_and_empty_chunks() -> None:
    assert frames(b"") == []
    body = event_frame("a", b"{}")
    assert list(iter_eventstream([b"", body[:5], b"", body[5:], b""])) == frames(body)


def test_one_byte_at_a_time() -> None:
    body = b"".join(event_frame(f"e{i}", json.dumps({"i": i, "t": "\u00e9\u4e2d\U0001f600"}).encode()) for i in range(20))
    whole = frames(body)
    assert len(whole) == 20
    assert frames(body, 1) == whole
    assert whole[3].data == '{"i": 3, "t": "\\u00e9\\u4e2d\\ud83d\\ude00"}'


def test_multibyte_utf8_payload_split_across_chunks() -> None:
    payload = "\u00e9\u4e2d\U0001f600".encode()
    body = event_frame("x", payload)
    start = len(body) - 4 - len(payload)
    for cut in range(start, start + len(payload) + 1):
        assert [f.data for f in iter_eventstream([body[:cut], body[cut:]])] == ["\u00e9\u4e2d\U0001f600"]


def test_frames_are_yielded_as_soon_as_complete() -> None:
    first, second = event_frame("a", b"1"), event_frame("b", b"2")

    def chunks() -> Iterator[bytes]:
        yield first + second[:3]
        raise AssertionError("read past the first complete message")

    stream = iter_eventstream(chunks())
    assert next(stream).event == "a"


@pytest.mark.parametrize("size", [1, 1024])
def test_large_message_in_small_chunks_is_linear(size: int) -> None:
    # A quadratic buffer would copy ~64 GB here (256 KiB message, 1-byte chunks).
    payload = b'"' + b"x" * (256 * 1024) + b'"'
    body = event_frame("big", payload) * 2
    t0 = time.perf_counter()
    got = frames(body, size)
    assert time.perf_counter() - t0 < 5.0
    assert [len(f.data) for f in got] == [len(payload)] * 2


# ---------------------------------------------------------------------------
# Malformed framing


def test_flipped_payload_byte_is_a_message_crc_error() -> None:
    body = event_frame("a", b'{"x":1}')
    with pytest.raises(StreamReadError, match=r"message CRC mismatch .* byte offset 0\b"):
        frames(flip(body, len(body) - 6))


def test_flipped_header_or_crc_byte_is_a_message_crc_error() -> None:
    body = event_frame("a", b'{"x":1}')
    for index in (14, len(body) - 1):
        with pytest.raises(StreamReadError, match="message CRC"):
            frames(flip(body, index))


@pytest.mark.parametrize("index", range(12))
def test_flipped_prelude_byte_is_a_prelude_crc_error(index: int) -> None:
    body = event_frame("a", b'{"x":1}')
    with pytest.raises(StreamReadError, match="prelude CRC"):
        frames(flip(body, index))


def test_error_names_the_offset_of_the_bad_message() -> None:
    first = event_frame("a", b"{}")
    second = event_frame("b", b'{"y":2}')
    body = first + flip(second, len(second) - 6)
    with pytest.raises(StreamReadError, match=rf"byte offset {len(first)} ") as info:
        frames(body, 1)
    assert f"CRC at byte offset {len(body) - 4}" in str(info.value)
    with pytest.raises(StreamReadError, match=rf"prelude CRC .* byte offset {len(first)}\b"):
        frames(first + flip(second, 2))


def test_first_frame_arrives_before_a_later_bad_one() -> None:
    body = event_frame("a", b"{}") + flip(event_frame("b", b"{}"), 20)
    stream = iter_eventstream([body])
    assert next(stream).event == "a"
    with pytest.raises(StreamReadError):
        next(stream)


def _prelude(total: int, headers_len: int) -> bytes:
    prelude = struct.pack(">II", total, headers_len)
    return prelude + struct.pack(">I", zlib.crc32(prelude))


def test_total_length_below_minimum() -> None:
    with pytest.raises(StreamReadError, match="less than the 16-byte minimum"):
        frames(_prelude(15, 0) + b"\x00" * 3)


def test_oversized_message_is_rejected_from_its_prelude() -> None:
    # Only the prelude has arrived: the size is refused before any of it is buffered.
    with pytest.raises(StreamReadError, match="max_event_bytes=1024"):
        list(iter_eventstream([_prelude(1025, 0)], max_event_bytes=1024))
    body = event_frame("a", b"x" * 2000)
    with pytest.raises(StreamReadError, match=r"declares \d+ bytes, more than max_event_bytes"):
        frames(body, 1, max_event_bytes=1024)
    assert len(frames(body, max_event_bytes=len(body))) == 1
    with pytest.raises(ValueError):
        frames(body, max_event_bytes=15)


def test_headers_length_larger_than_message() -> None:
    with pytest.raises(StreamReadError, match="bytes of headers"):
        frames(_prelude(20, 5) + b"\x00" * 8)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (header("a", 10, b""), "unknown value type 10"),
        (header("a", 4, b"\x00\x00"), "runs past the headers"),
        (header("a", 7, struct.pack(">H", 9) + b"abc"), "runs past the headers"),
        (header("a", 9, b"\x00" * 15), "runs past the headers"),
        (b"\x09abc", "the name runs past"),
        (header("a", 0, b"") + header("a", 1, b""), "duplicate header 'a'"),
        (header("a", 7, struct.pack(">H", 1) + b"\xff"), "not valid UTF-8"),
        (b"\x01\xff\x00", "name is not valid UTF-8"),
    ],
)
def test_malformed_headers(raw: bytes, reason: str) -> None:
    with pytest.raises(StreamReadError, match=reason):
        frames(raw_message(raw, b"{}"))


def test_invalid_utf8_payload() -> None:
    with pytest.raises(StreamReadError, match="not valid UTF-8"):
        frames(encode_message({":event-type": "a"}, b'{"a":"\xc3"}'))


def test_truncated_body() -> None:
    body = event_frame("a", b"{}") + event_frame("b", b"{}")
    for cut in (1, 11, 12, len(body) - 1):
        with pytest.raises(StreamInterruptedError, match="stream ended inside a message"):
            frames(body[:cut], 1)
    # The complete first message is still delivered before the error.
    stream = iter_eventstream([body[:-3]])
    assert next(stream).event == "a"
    with pytest.raises(StreamInterruptedError, match=r"ended inside a message at byte offset \d+ \(\d+ of \d+ bytes"):
        next(stream)


# ---------------------------------------------------------------------------
# Properties


_names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)
_payloads = st.text(max_size=60)


@settings(max_examples=60, deadline=None)
@given(
    messages=st.lists(st.tuples(_names, _payloads), max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=30),
)
def test_any_chunking_gives_the_same_frames(messages: list[tuple[str, str]], cuts: list[int]) -> None:
    body = b"".join(event_frame(name, payload.encode()) for name, payload in messages)
    expected = [(name, payload) for name, payload in messages]
    whole = frames(body)
    assert [(f.event, f.data) for f in whole] == expected
    assert list(iter_eventstream(split(body, cuts))) == whole


@settings(max_examples=60, deadline=None)
@given(
    headers=st.dictionaries(
        _names,
        st.one_of(st.booleans(), st.integers(-(2**63), 2**63 - 1), st.binary(max_size=20), st.text(max_size=20)),
        max_size=6,
    ),
    payload=_payloads,
)
def test_encode_round_trip_matches_botocore(headers: dict[str, object], payload: str) -> None:
    eventstream = pytest.importorskip("botocore.eventstream")
    body = encode_message(headers, payload.encode())  # type: ignore[arg-type]
    (frame,) = frames(body)
    assert dict(frame.headers) == headers and frame.data == payload
    buffer = eventstream.EventStreamBuffer()
    buffer.add_data(body)
    (message,) = list(buffer)
    assert message.headers == headers and message.payload == payload.encode()


# ---------------------------------------------------------------------------
# Real Bedrock recordings, with botocore's decoder as the oracle


def _botocore_messages(body: bytes) -> list[object]:
    eventstream = pytest.importorskip("botocore.eventstream")
    buffer = eventstream.EventStreamBuffer()
    buffer.add_data(body)
    return list(buffer)


def _recording(path: Path) -> bytes:
    body = path.read_bytes()
    meta = json.loads(path.with_suffix(".meta.json").read_text())
    assert meta["bytes"] == len(body)
    assert "application/vnd.amazon.eventstream" in meta["response_headers"]
    return body


def test_recordings_are_present_or_skipped() -> None:
    if not WIRE.is_dir():
        pytest.skip(f"no wire recordings at {WIRE}")
    assert BEDROCK_BINS, f"no Bedrock .bin recordings under {WIRE / 'bedrock'}"


@pytest.mark.parametrize("path", BEDROCK_BINS, ids=[p.stem for p in BEDROCK_BINS])
def test_recording_matches_botocore(path: Path) -> None:
    body = _recording(path)
    messages = _botocore_messages(body)
    got = frames(body)
    assert len(got) == len(messages) > 0
    for frame, message in zip(got, messages):
        headers = message.headers  # type: ignore[attr-defined]
        assert dict(frame.headers) == headers
        assert frame.message_type == headers[":message-type"] == "event"
        assert frame.event == headers[":event-type"]
        assert frame.data.encode() == message.payload  # type: ignore[attr-defined]
        json.loads(frame.data)
    assert got[0].event == "messageStart"
    assert {"messageStop", "metadata"} <= {f.event for f in got}


@pytest.mark.parametrize("path", BEDROCK_BINS, ids=[p.stem for p in BEDROCK_BINS])
def test_recording_in_any_chunks(path: Path) -> None:
    body = _recording(path)
    whole = frames(body)
    for size in (1, 3, 12, 13, 100, 4096):
        assert frames(body, size) == whole
    for index in (0, 8, 11, len(body) // 2, len(body) - 1):
        with pytest.raises(StreamReadError, match="CRC"):
            frames(flip(body, index))
