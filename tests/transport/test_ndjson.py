"""Newline-delimited JSON framing: chunk splits, blank lines, CRLF, the line size bound."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_sync import StreamReadError
from llm_sync._transport import Frame
from llm_sync._transport._ndjson import UNTERMINATED, iter_ndjson
from tests.support.paths import WIRE

# Recordings are read in place from next to the repository, never copied into it.
NDJSON_RECORDINGS = sorted(WIRE.glob("*/*.ndjson")) if WIRE.is_dir() else []


def lines(body: bytes, size: int = 0, **kw: int) -> list[str]:
    """The frame texts of ``body`` parsed whole (size 0) or in ``size``-byte chunks."""
    chunks = [body] if size == 0 else [body[i : i + size] for i in range(0, len(body), size)]
    got = list(iter_ndjson(chunks, **kw))
    assert all(f.event == "" and f.message_type == "event" and not f.headers for f in got[:-1])
    # Only the last line can lack its newline, and then it says so.
    assert all(f.message_type in ("event", UNTERMINATED) for f in got[-1:])
    return [f.data for f in got]


def split(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(body)) for c in cuts})
    edges = [0, *points, len(body)]
    return [body[a:b] for a, b in zip(edges, edges[1:])]


def test_lines_become_frames() -> None:
    assert list(iter_ndjson([b'{"a":1}\n{"b":2}\n'])) == [Frame("", '{"a":1}'), Frame("", '{"b":2}')]


def test_blank_and_whitespace_lines_are_skipped() -> None:
    body = b'\n{"a":1}\n\n   \n\t\r\n\r\n{"b":2}\n \n'
    assert lines(body) == ['{"a":1}', '{"b":2}']
    assert lines(body, 1) == ['{"a":1}', '{"b":2}']


def test_final_line_without_newline() -> None:
    assert lines(b'{"a":1}\n{"b":2}') == ['{"a":1}', '{"b":2}']
    # Marked, so a parser can tell a line cut off by a dropped connection from a whole one.
    assert [f.message_type for f in iter_ndjson([b'{"a":1}\n{"b":2}'])] == ["event", UNTERMINATED]
    assert [f.message_type for f in iter_ndjson([b'{"a":1}\n{"b":2}\n'])] == ["event", "event"]
    assert lines(b'{"a":1}\n{"b":2}\r', 1) == ['{"a":1}', '{"b":2}']
    assert lines(b"   ") == []
    assert lines(b"") == []


def test_crlf_and_split_crlf() -> None:
    body = b'{"a":1}\r\n{"b":2}\r\n'
    for cut in range(len(body) + 1):
        assert [f.data for f in iter_ndjson([body[:cut], body[cut:]])] == ['{"a":1}', '{"b":2}'], cut


def test_only_one_trailing_cr_is_dropped() -> None:
    assert lines(b"a\r\r\nb \r\n") == ["a\r", "b "]


def test_one_byte_at_a_time() -> None:
    body = b"".join(json.dumps({"i": i, "t": "\u00e9"}).encode() + b"\n" for i in range(100))
    whole = lines(body)
    assert len(whole) == 100
    assert lines(body, 1) == whole


def test_multibyte_utf8_split_across_chunks() -> None:
    text = '{"t":"h\u00e9 \u4e2d \U0001f600"}'
    body = (text + "\n" + text).encode()
    for cut in range(len(body) + 1):
        assert [f.data for f in iter_ndjson([body[:cut], body[cut:]])] == [text, text], cut


def test_invalid_utf8_names_the_offset() -> None:
    with pytest.raises(StreamReadError, match=r"line at byte offset 8 is not valid UTF-8 .*byte offset 13\)"):
        lines(b'{"a":1}\n{"b":\xff}\n')
    with pytest.raises(StreamReadError, match=r"line at byte offset 8 is not valid UTF-8"):
        lines(b'{"a":1}\n{"b":\xff}', 1)


def test_oversized_line() -> None:
    assert lines(b"x" * 16 + b"\n", max_event_bytes=16) == ["x" * 16]
    assert lines(b"x" * 16 + b"\r\n", 1, max_event_bytes=16) == ["x" * 16]
    for size in (0, 1, 5):
        with pytest.raises(StreamReadError, match=r"line at byte offset 3 is longer than max_event_bytes=16"):
            lines(b"ok\n" + b"x" * 17 + b"\n", size, max_event_bytes=16)
        with pytest.raises(StreamReadError, match="longer than max_event_bytes=16"):
            lines(b"ok\n" + b"x" * 17, size, max_event_bytes=16)
    with pytest.raises(ValueError):
        lines(b"", max_event_bytes=0)


def test_endless_line_is_stopped_without_buffering_it() -> None:
    consumed = 0

    def endless() -> Iterator[bytes]:
        nonlocal consumed
        while True:
            consumed += 1
            yield b"x" * 1024

    with pytest.raises(StreamReadError):
        next(iter_ndjson(endless(), max_event_bytes=64 * 1024))
    assert consumed <= 65


def test_frames_are_yielded_as_soon_as_complete() -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"a":1}\n{"b"'
        raise AssertionError("read past the first complete line")

    assert next(iter_ndjson(chunks())).data == '{"a":1}'


# ---------------------------------------------------------------------------
# Properties

_content = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=30)


@st.composite
def _ndjson_bodies(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    parts: list[str] = []
    expected: list[str] = []
    for _ in range(draw(st.integers(0, 8))):
        text = draw(st.one_of(_content, st.sampled_from(["", " ", "\t", "  \t "])))
        parts.append(text + draw(st.sampled_from(["\n", "\r\n"])))
        if text and not text.isspace():
            expected.append(text)
    if draw(st.booleans()):
        last = draw(_content)
        parts.append(last)
        if last and not last.isspace():
            expected.append(last)
    return "".join(parts).encode(), expected


@settings(max_examples=60, deadline=None)
@given(case=_ndjson_bodies(), cuts=st.lists(st.integers(0, 2000), max_size=30))
def test_any_chunking_gives_the_same_frames(case: tuple[bytes, list[str]], cuts: list[int]) -> None:
    body, expected = case
    assert lines(body) == expected
    assert [f.data for f in iter_ndjson(split(body, cuts))] == expected


# ---------------------------------------------------------------------------
# Real recordings


@pytest.mark.parametrize(
    "path", NDJSON_RECORDINGS, ids=[f"{p.parent.name}/{p.stem}" for p in NDJSON_RECORDINGS]
)
def test_recording_in_any_chunks(path: Path) -> None:
    body = path.read_bytes()
    whole = lines(body)
    assert whole == [ln.rstrip("\r") for ln in body.decode().split("\n") if ln.strip()]
    for text in whole:
        json.loads(text)
    for size in (1, 7, 1024):
        assert lines(body, size) == whole


def test_recordings_are_present_or_skipped() -> None:
    if not WIRE.is_dir():
        pytest.skip(f"no wire recordings at {WIRE}")
    assert NDJSON_RECORDINGS
