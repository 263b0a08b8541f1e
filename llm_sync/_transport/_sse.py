"""Server-sent events to frames, through sseclient-py, with a bound on event size."""

from __future__ import annotations

from typing import Iterable, Iterator, List

from .._errors import StreamReadError
from ._frame import DEFAULT_MAX_EVENT_BYTES, Frame

__all__ = ["DEFAULT_MAX_EVENT_BYTES", "iter_sse"]


# The blank lines that end an event, as sseclient-py recognises them.
_LFLF = b"\n\n"
_CRLFCRLF = b"\r\n\r\n"
_CRCR = b"\r\r"


def iter_sse(chunks: Iterable[bytes], *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> Iterator[Frame]:
    """Yield one :class:`Frame` per SSE event in ``chunks`` (bytes as they arrive).

    Comments (``: keep-alive``) and events without data never become frames, so a
    trickle of keep-alives does not look like progress to the idle timeout. An
    event that grows beyond ``max_event_bytes`` raises ``StreamReadError``.
    """
    # Imported here so that `import llm_sync` stays cheap.
    from sseclient import SSEClient

    # ``ended[0]`` turns true once the body is exhausted with bytes after the last
    # blank line: sseclient-py would still hand those out as an event, but the SSE
    # spec drops an event the body cut off, and a cut-off JSON payload must surface
    # as a truncated stream, not as a JSON error.
    ended = [False]
    client = SSEClient(_bounded(chunks, max_event_bytes, ended))
    try:
        for event in client.events():
            if ended[0]:
                return
            yield Frame(event.event, event.data)
    except UnicodeDecodeError as exc:
        # sseclient-py decodes line by line and lets the codec error out; a bad body is
        # a framing error like any other, not a ValueError from deep inside a library.
        raise StreamReadError(
            f"a server-sent event line is not valid UTF-8 ({exc.reason} at byte {exc.start} "
            "of the line)"
        ) from None


def _bounded(chunks: Iterable[bytes], limit: int, ended: List[bool]) -> Iterator[bytes]:
    """Pass ``chunks`` through, raising once an event exceeds ``limit`` bytes.

    sseclient-py buffers an event until its blank line, so an endless event would
    grow without bound; this counts the bytes since the last blank line instead,
    including one split across chunks (servers do flush ``"data: x\\n"`` and ``"\\n"``
    separately, and a byte-at-a-time body splits every one).
    """
    pending = 0
    # The last bytes of the body so far: a blank line can end at most 3 bytes into
    # the next chunk, so these are all it takes to find one split across chunks.
    tail = b""
    for chunk in chunks:
        if chunk.endswith(_LFLF) or chunk.endswith(_CRLFCRLF):
            # The common case: the server flushed whole events.
            # A blank line just ended, so no earlier byte can belong to one that
            # spans into the next chunk: a constant tail is as good as the real one.
            pending = 0
            tail = _LFLF
            yield chunk
            continue
        if chunk:
            end = _end_of_last_blank_line(chunk)
            if end < 3 and tail:
                # Only a blank line that starts in ``tail`` can end later than that.
                across = _end_of_last_blank_line(tail + chunk[:3]) - len(tail)
                end = max(end, across)
            pending = len(chunk) - end if end >= 0 else pending + len(chunk)
            if pending > limit:
                raise StreamReadError(
                    f"a server-sent event exceeded {limit} bytes; raise max_event_bytes if the "
                    "provider really sends events this large"
                )
        tail = (tail + chunk[-3:])[-3:]
        yield chunk
    if pending and tail.strip(b"\r\n"):
        ended[0] = True


def _end_of_last_blank_line(data: bytes) -> int:
    """The index just past the last event delimiter in ``data``, or -1 if none."""
    end = -1
    for delimiter in (_LFLF, _CRLFCRLF, _CRCR):
        i = data.rfind(delimiter)
        if i >= 0 and i + len(delimiter) > end:
            end = i + len(delimiter)
    return end
