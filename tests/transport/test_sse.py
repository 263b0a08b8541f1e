"""Server-sent-event framing: chunk splits, line endings, comments, the event size bound."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_sync import StreamReadError
from llm_sync._transport import Frame
from llm_sync._transport._sse import iter_sse
from tests.support.limits import run_limited
from tests.support.paths import WIRE

# Recordings are read in place from next to the repository, never copied into it.
SSE_RECORDINGS = sorted(WIRE.glob("*/*.sse")) if WIRE.is_dir() else []


def frames(body: bytes, size: int = 0, **kw: int) -> list[Frame]:
    """Parse ``body`` whole (size 0) or in ``size``-byte chunks."""
    if size == 0:
        return list(iter_sse([body], **kw))
    return list(iter_sse((body[i : i + size] for i in range(0, len(body), size)), **kw))


def split(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(body)) for c in cuts})
    edges = [0, *points, len(body)]
    return [body[a:b] for a, b in zip(edges, edges[1:])]


def test_event_names_and_default() -> None:
    body = b"event: ping\ndata: {}\n\ndata: hello\n\n"
    assert frames(body) == [Frame("ping", "{}"), Frame("message", "hello")]


def test_comments_and_keep_alives_are_not_frames() -> None:
    assert frames(b": keep-alive\n\n: keep-alive\n\n") == []
    body = b": keep-alive\n\nevent: a\n: mid-event comment\ndata: 1\n\n:\n\n"
    assert frames(body) == [Frame("a", "1")]


def test_events_without_data_are_not_frames() -> None:
    assert frames(b"event: a\n\nid: 7\nretry: 100\n\ndata: x\n\n") == [Frame("message", "x")]


def test_multi_line_data_is_joined_with_newlines() -> None:
    body = b"data: line one\ndata:line two\ndata: \ndata:  indented\n\n"
    assert frames(body) == [Frame("message", "line one\nline two\n\n indented")]


def test_only_one_leading_space_is_stripped() -> None:
    assert frames(b"data:   x  \n\n")[0].data == "  x  "


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_line_endings(eol: bytes) -> None:
    body = eol.join([b"event: a", b"data: 1", b"data: 2", b"", b"data: 3", b"", b""])
    assert frames(body) == [Frame("a", "1\n2"), Frame("message", "3")]
    assert frames(body, 1) == frames(body)


def test_crlf_split_across_chunks_at_every_point() -> None:
    body = b"event: a\r\ndata: 1\r\n\r\ndata: 2\r\n\r\n"
    expected = [Frame("a", "1"), Frame("message", "2")]
    for cut in range(len(body) + 1):
        assert list(iter_sse([body[:cut], body[cut:]])) == expected, cut
    for cut1 in range(len(body)):
        for cut2 in range(cut1, len(body)):
            assert list(iter_sse(split(body, [cut1, cut2]))) == expected, (cut1, cut2)


def test_one_byte_at_a_time() -> None:
    body = b"".join(b"event: e%d\ndata: {\"i\": %d}\n\n: ka\n\n" % (i, i) for i in range(50))
    whole = frames(body)
    assert len(whole) == 50
    assert frames(body, 1) == whole


def test_multibyte_utf8_split_across_chunks() -> None:
    text = "h\u00e9 \u4e2d \U0001f600"
    body = f"data: {text}\n\n".encode()
    for cut in range(len(body) + 1):
        assert list(iter_sse([body[:cut], body[cut:]])) == [Frame("message", text)]
    assert frames(body, 1) == [Frame("message", text)]


def test_an_event_the_body_cut_off_is_dropped() -> None:
    # The SSE spec discards an event that the end of the body cut short; a cut-off
    # JSON payload must look like a truncated stream, not like a JSON error.
    assert frames(b"data: 1\n\ndata: 2\n") == [Frame("message", "1")]
    assert frames(b'data: 1\n\ndata: {"a": ') == [Frame("message", "1")]
    for cut in range(1, 9):
        body = b"data: 1\n\ndata: 2\n\n"
        assert frames(body[: len(body) - cut]) == [Frame("message", "1")], cut
        assert list(iter_sse([body[:10], body[10 : len(body) - cut]])) == [Frame("message", "1")], cut


def test_invalid_utf8_is_a_stream_read_error() -> None:
    with pytest.raises(StreamReadError, match="not valid UTF-8"):
        frames(b"data: ok\n\ndata: \xff\xfe\n\n")
    with pytest.raises(StreamReadError, match="not valid UTF-8"):
        frames(b"data: \xc3\n\n", 1)


def test_oversized_event() -> None:
    body = b"data: " + b"x" * 100 + b"\n\n"
    with pytest.raises(StreamReadError, match="exceeded 64 bytes"):
        frames(body, 10, max_event_bytes=64)
    assert frames(body, 10, max_event_bytes=200) == [Frame("message", "x" * 100)]


def test_endless_event_is_stopped_early() -> None:
    consumed = 0

    def endless() -> Iterator[bytes]:
        nonlocal consumed
        yield b"data: "
        while True:
            consumed += 1
            yield b"x" * 1024

    with pytest.raises(StreamReadError):
        next(iter_sse(endless(), max_event_bytes=64 * 1024))
    assert consumed <= 65


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_many_small_events_in_small_chunks_are_not_oversized(size: int) -> None:
    # The bound counts bytes since the last blank line, including blank lines that a
    # chunk boundary cuts in two; a small limit and a long body must not trip it.
    for eol in (b"\n", b"\r\n", b"\r"):
        body = b"".join(b"data: %d" % i + eol + eol for i in range(200))
        assert len(frames(body, size, max_event_bytes=32)) == 200


def test_blank_line_flushed_separately_resets_the_bound() -> None:
    # Some servers write "data: ...\n" and then "\n" in a separate flush.
    chunks = []
    for i in range(500):
        chunks += [b"data: %d\n" % i, b"\n"]
    assert len(list(iter_sse(chunks, max_event_bytes=32))) == 500


def test_a_leading_bom_is_dropped_however_it_is_split() -> None:
    body = b"\xef\xbb\xbfdata: Hello\n\ndata: world\n\n"
    expected = [Frame("message", "Hello"), Frame("message", "world")]
    assert frames(body) == expected
    for cut in range(len(body) + 1):
        assert list(iter_sse([body[:cut], body[cut:]])) == expected, cut
    assert frames(body, 1) == expected
    # Only at the very start: anywhere else it is part of a (then unknown) field name.
    assert frames(b"data: a\n\n\xef\xbb\xbfdata: b\n\n") == [Frame("message", "a")]
    # A BOM alone, or a body too short to hold one, is no event and no error.
    assert frames(b"\xef\xbb\xbf") == [] and frames(b"\n") == []


def test_field_rules_of_the_spec() -> None:
    # A line without a colon is a field with an empty value: "data" alone adds an empty line.
    assert frames(b"data\ndata\n\n") == [Frame("message", "\n")]
    # "data:" with nothing after it dispatches an event whose data is empty.
    assert frames(b"data:\n\n") == [Frame("message", "")]
    # Only the first colon separates; unknown fields, id and retry are ignored.
    assert frames(b"foo: bar\nid: 1\nretry: 5\ndata: a:b: c\n\n") == [Frame("message", "a:b: c")]
    # The last event line wins; an empty event name means "message".
    assert frames(b"event: a\nevent: b\ndata: x\n\nevent:\ndata: y\n\n") == [Frame("b", "x"), Frame("message", "y")]
    # The event name does not carry over to the next event.
    assert frames(b"event: a\n\ndata: z\n\n") == [Frame("message", "z")]


def test_a_cr_ending_a_chunk_is_a_line_end_whatever_follows() -> None:
    assert list(iter_sse([b"data: 1\r", b"\r", b"data: 2\r", b"\n\r\n"])) == [Frame("message", "1"), Frame("message", "2")]
    # A LF that follows such a CR in the next chunk belongs to it: no extra blank line.
    assert list(iter_sse([b"data: 1\r", b"\ndata: 2\r\n\r\n"])) == [Frame("message", "1\n2")]


def test_an_oversized_event_in_one_chunk_is_refused() -> None:
    # The bound holds however the bytes arrive: one chunk with the whole event and its blank line.
    with pytest.raises(StreamReadError, match="exceeded 1024 bytes"):
        frames(b"data: " + b"x" * 2048 + b"\n\n", max_event_bytes=1024)
    # Many data lines count together.
    with pytest.raises(StreamReadError, match="exceeded 1024 bytes"):
        frames(b"data: xxxxxxxxxx\n" * 200 + b"\n", max_event_bytes=1024)
    # Comments are not kept, so they do not count.
    assert frames(b": ping\n" * 1000 + b"data: x\n\n", max_event_bytes=64) == [Frame("message", "x")]


def test_large_events_in_small_chunks_are_linear() -> None:
    # sseclient-py copied the event for every chunk: a 16 MiB event in 1 KiB chunks took
    # 67 s of CPU. In a child under a 20 s CPU limit and 1 GiB of address space, it must
    # take a fraction of a second, and an event over the limit must be refused at the limit.
    result = run_limited(
        """
        import json, time
        from llm_sync import StreamReadError
        from llm_sync._transport._sse import iter_sse

        def event(mib):  # one data line of ``mib`` MiB, in 1 KiB chunks
            yield b"data: "
            piece = b"x" * 1024
            for i in range(mib * 1024):
                yield piece
            yield b"\\n\\n"

        def lines(mib):  # ``mib`` MiB of 1 KiB data lines, one per chunk
            piece = b"data: " + b"x" * 1017 + b"\\n"
            for i in range(mib * 1024):
                yield piece
            yield b"\\n"

        out = {}
        t = time.process_time()
        out["bytes"] = sum(len(f.data) for f in iter_sse(event(16), max_event_bytes=32 << 20))
        out["one_line_cpu"] = time.process_time() - t
        t = time.process_time()
        out["lines"] = sum(f.data.count("\\n") for f in iter_sse(lines(16), max_event_bytes=32 << 20))
        out["many_lines_cpu"] = time.process_time() - t
        t = time.process_time()
        try:
            list(iter_sse(event(40)))
        except StreamReadError as exc:
            out["refused"] = str(exc)
        out["refuse_cpu"] = time.process_time() - t
        print(json.dumps(out))
        """,
        cpu_seconds=20,
        memory_mb=1024,
        wall_seconds=120,
    )
    assert result["bytes"] == 16 << 20
    assert result["lines"] == 16 * 1024 - 1
    assert "exceeded 16777216 bytes" in result["refused"]
    # Measured 0.3 s, 0.3 s and 0.3 s; the bound leaves room for a loaded machine.
    assert result["one_line_cpu"] < 5 and result["many_lines_cpu"] < 5 and result["refuse_cpu"] < 5, result


# ---------------------------------------------------------------------------
# Properties

_line_text = st.text(
    st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=30
)


@st.composite
def _sse_bodies(draw: st.DrawFn) -> tuple[bytes, list[Frame]]:
    eol = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    lines: list[str] = []
    expected: list[Frame] = []
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.booleans()):
            lines += [": keep-alive", ""]
        name = draw(st.one_of(st.none(), st.from_regex(r"[a-z_]{1,12}", fullmatch=True)))
        data = draw(st.lists(_line_text, min_size=1, max_size=4))
        if name is not None:
            lines.append(f"event: {name}")
        lines += [f"data: {d}" for d in data]
        lines.append("")
        expected.append(Frame(name or "message", "\n".join(data)))
    return (eol.join(lines) + (eol if lines else "")).encode(), expected


@settings(max_examples=60, deadline=None)
@given(case=_sse_bodies(), cuts=st.lists(st.integers(0, 2000), max_size=30))
def test_any_chunking_gives_the_same_frames(case: tuple[bytes, list[Frame]], cuts: list[int]) -> None:
    body, expected = case
    assert frames(body) == expected
    assert list(iter_sse(split(body, cuts))) == expected


@settings(max_examples=60, deadline=None)
@given(case=_sse_bodies(), cuts=st.lists(st.integers(0, 2000), max_size=30))
def test_sseclient_py_reads_the_same_frames(case: tuple[bytes, list[Frame]], cuts: list[int]) -> None:
    # sseclient-py, which the design names for SSE, stays the reference for well-formed bodies.
    from sseclient import SSEClient

    body, _ = case
    reference = [Frame(e.event, e.data) for e in SSEClient(iter(split(body, cuts))).events()]
    assert list(iter_sse(split(body, cuts))) == reference


# ---------------------------------------------------------------------------
# Real recordings


@pytest.mark.parametrize("path", SSE_RECORDINGS, ids=[f"{p.parent.name}/{p.stem}" for p in SSE_RECORDINGS])
def test_recording_in_any_chunks(path: Path) -> None:
    body = path.read_bytes()
    whole = frames(body)
    if body.endswith((b"\n\n", b"\r\n\r\n")):
        assert whole, "a recording with no events"
    # (Some recordings are pastes from issues that lost the final blank line; their
    # last event counts as cut off, and the check below still holds.)
    for size in (1, 7, 1024):
        assert frames(body, size) == whole


def test_recordings_are_present_or_skipped() -> None:
    if not WIRE.is_dir():
        pytest.skip(f"no wire recordings at {WIRE}")
    assert SSE_RECORDINGS
