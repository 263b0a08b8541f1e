"""Newline-delimited JSON framing: one ``Frame`` per non-blank line, as Ollama's ``/api/chat`` streams it."""

from __future__ import annotations

from typing import Iterable, Iterator, List

from .._errors import StreamReadError
from ._frame import DEFAULT_MAX_EVENT_BYTES, Frame

__all__ = ["DEFAULT_MAX_EVENT_BYTES", "UNTERMINATED", "iter_ndjson"]

#: ``Frame.message_type`` of a last line that arrived without its newline.
UNTERMINATED = "unterminated"



def iter_ndjson(
    chunks: Iterable[bytes], *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
) -> Iterator[Frame]:
    """Yield ``Frame("", line)`` for every non-blank line of a newline-delimited body.

    Lines are split on ``b"\\n"`` before decoding, so a UTF-8 character cut across
    chunks is decoded whole; one trailing ``b"\\r"`` is dropped; blank lines (empty or
    only whitespace) are skipped; a last line without a newline is yielded when the
    body ends. A line longer than ``max_event_bytes`` (not counting its ``\\r\\n`` or
    ``\\n``) raises :class:`StreamReadError` as soon as it is known to be too long,
    without buffering more than the limit; so does a line that is not valid UTF-8.
    """
    if max_event_bytes < 1:
        raise ValueError(f"max_event_bytes must be positive, not {max_event_bytes}")
    limit = max_event_bytes
    # The start of an unfinished line carried over from earlier chunks: a bytearray,
    # so a long line arriving in many small chunks grows in amortised O(1) per byte.
    carry = bytearray()
    seen = 0  # body bytes received so far; error messages only, so counted per chunk
    start = 0  # body offset of the first byte of ``carry``, or of the next line
    for chunk in chunks:
        seen += len(chunk)
        if b"\n" not in chunk:
            if chunk:
                # Checked before growing, so memory stays bounded. One byte over is
                # let through when it is a "\r" that a following "\n" would strip.
                size = len(carry) + len(chunk)
                if size > limit and not (size == limit + 1 and chunk[-1:] == b"\r"):
                    raise _too_long(limit, start)
                carry += chunk
            continue
        # bytes.split runs in C: on the hot path every line of the chunk costs one
        # slice, one decode and one Frame, and nothing is concatenated.
        lines: List[bytes] = chunk.split(b"\n")
        tail = lines.pop()
        if carry:
            lines[0] = b"".join((carry, lines[0]))
            carry = bytearray()
        line = b""
        try:
            for line in lines:
                if len(line) > limit and not (len(line) == limit + 1 and line[-1:] == b"\r"):
                    raise _too_long(limit, _line_offset(start, lines, line))
                text = line.decode("utf-8")
                # "".isspace() is false, hence both tests; a lone "\r" is blank too.
                if not text or text.isspace():
                    continue
                if text[-1] == "\r":
                    text = text[:-1]
                yield Frame("", text)
        except UnicodeDecodeError as exc:
            raise _not_utf8(_line_offset(start, lines, line), exc) from None
        start = seen - len(tail)
        if tail:
            size = len(tail)
            if size > limit and not (size == limit + 1 and tail[-1:] == b"\r"):
                raise _too_long(limit, start)
            carry += tail
    if carry:
        # The body ended without a final newline: the carry is a whole line, and the
        # checks above already keep it within the limit.
        try:
            text = carry.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _not_utf8(start, exc) from None
        if text and not text.isspace():
            # A last line without its newline is either a server that omits the
            # final newline or a body cut off mid-line; the parser, which knows what
            # a whole line looks like, tells them apart by this mark.
            yield Frame("", text[:-1] if text[-1] == "\r" else text, UNTERMINATED)


def _too_long(limit: int, offset: int) -> StreamReadError:
    return StreamReadError(
        f"NDJSON line at byte offset {offset} is longer than max_event_bytes={limit} bytes; "
        "pass a larger max_event_bytes if the server really sends lines this long"
    )


def _not_utf8(offset: int, exc: UnicodeDecodeError) -> StreamReadError:
    return StreamReadError(
        f"NDJSON line at byte offset {offset} is not valid UTF-8 "
        f"({exc.reason} at byte offset {offset + exc.start})"
    )


def _line_offset(start: int, lines: List[bytes], line: bytes) -> int:
    # Error path only: find the line by identity (an equal earlier line would have
    # failed first) and add up the lengths before it, each with its "\n".
    offset = start
    for piece in lines:
        if piece is line:
            break
        offset += len(piece) + 1
    return offset
