"""Server-sent events to frames: a linear decoder that follows the WHATWG event-stream rules."""

from __future__ import annotations

import itertools
from typing import Iterable, Iterator, List

from .._errors import StreamReadError
from ._frame import DEFAULT_MAX_EVENT_BYTES, Frame

__all__ = ["DEFAULT_MAX_EVENT_BYTES", "iter_sse"]

_BOM = b"\xef\xbb\xbf"


def iter_sse(chunks: Iterable[bytes], *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> Iterator[Frame]:
    """Yield one :class:`Frame` per SSE event in ``chunks`` (bytes as they arrive).

    The rules are the WHATWG "event stream interpretation": one leading UTF-8 BOM is
    dropped; lines end in CRLF, LF or CR (a CRLF may be split across chunks); a
    line starting with ``:`` is a comment; ``field: value`` loses one space after
    the colon, a line without a colon is a field with an empty value; ``data``
    lines are joined with ``"\\n"``, ``event`` names the event (``"message"`` when
    absent), ``id``, ``retry`` and unknown fields are ignored; a blank line
    dispatches the event, unless it has no ``data`` line; an event the body cut
    off before its blank line is dropped.

    Comments (``: keep-alive``) and events without data never become frames, so a
    trickle of keep-alives does not look like progress to the idle timeout. An
    event whose field lines (and the line still arriving) grow beyond
    ``max_event_bytes`` raises ``StreamReadError`` as soon as that is known, so no
    more than the limit is ever buffered. A ``data`` or ``event`` value that is not
    UTF-8 raises ``StreamReadError`` too.

    sseclient-py implements the same rules but copies the event buffer for every
    line (and for every chunk of a line), which is quadratic in the size of an
    event: a 16 MiB event in 1 KiB chunks took about a minute of CPU. Here every
    byte is scanned a bounded number of times.
    """
    if max_event_bytes < 1:
        raise ValueError(f"max_event_bytes must be positive, not {max_event_bytes}")
    limit = max_event_bytes
    it = iter(chunks)
    # The BOM may arrive split across the first chunks: gather three bytes first.
    head = b""
    for chunk in it:
        head += chunk
        if len(head) >= 3 or not _BOM.startswith(head):
            break
    if head.startswith(_BOM):
        head = head[3:]

    partial = bytearray()  # the start of a line whose end has not arrived yet
    data: List[str] = []  # the data values of the event being read
    event = ""  # its event type
    size = 0  # bytes of its field lines so far: what the limit bounds
    skip_lf = False  # the last chunk ended in CR: a LF starting the next one ends no line
    for chunk in itertools.chain((head,), it):
        if skip_lf:
            skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        # Where the last complete line ends: the last LF, or a CR after it.
        end = chunk.rfind(b"\n")
        cr = chunk.rfind(b"\r", end + 1)
        if cr > end:
            end = cr
            # A CR that ends the chunk may be the first half of a CRLF.
            skip_lf = cr == len(chunk) - 1
        if end < 0:
            if chunk:
                partial += chunk
                if size + len(partial) > limit:
                    raise _too_large(limit)
            continue
        complete = chunk if end == len(chunk) - 1 else chunk[: end + 1]
        if partial:
            complete = bytes(partial) + complete
            partial = bytearray()
        if end + 1 < len(chunk):
            partial += chunk[end + 1 :]
        if b"\r" in complete:
            complete = complete.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = complete.split(b"\n")
        lines.pop()  # complete ends with a line end: the last piece is empty
        try:
            for line in lines:
                if not line:
                    # A blank line: dispatch.
                    if data:
                        yield Frame(event or "message", data[0] if len(data) == 1 else "\n".join(data))
                        data = []
                    event = ""
                    size = 0
                    continue
                if line.startswith(b"data: "):  # the common case, first
                    size += len(line) + 1
                    if size > limit:
                        raise _too_large(limit)
                    data.append(line[6:].decode())
                    continue
                if line[0] == 0x3A:  # ":" starts a comment: nothing is kept, nothing counts
                    continue
                size += len(line) + 1
                if size > limit:
                    raise _too_large(limit)
                name, colon, value = line.partition(b":")
                if colon and value[:1] == b" ":
                    value = value[1:]
                if name == b"data":
                    data.append(value.decode())
                elif name == b"event":
                    event = value.decode()
                # "id" and "retry" mean nothing to a one-shot stream; unknown fields are ignored.
        except UnicodeDecodeError as exc:
            # A bad body is a framing error like any other, not a ValueError from deep inside.
            raise StreamReadError(
                f"a server-sent event field is not valid UTF-8 ({exc.reason} at byte {exc.start} "
                "of its value)"
            ) from None
        if size + len(partial) > limit:
            raise _too_large(limit)
    # The body ended: an event without its blank line, and any unfinished line, are dropped.


def _too_large(limit: int) -> StreamReadError:
    return StreamReadError(
        f"a server-sent event exceeded {limit} bytes; raise max_event_bytes if the provider "
        "really sends events this large"
    )
