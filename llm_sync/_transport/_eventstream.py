"""AWS binary event-stream framing (``application/vnd.amazon.eventstream``, Bedrock ConverseStream) to frames."""

from __future__ import annotations

import struct
import zlib
from types import MappingProxyType
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Union

from .._errors import StreamInterruptedError, StreamReadError
from ._frame import DEFAULT_MAX_EVENT_BYTES, Frame

__all__ = [
    "DEFAULT_MAX_EVENT_BYTES",
    "encode_message",
    "event_frame",
    "exception_frame",
    "iter_eventstream",
]


# Message layout: prelude (total length, headers length, prelude CRC; all u32 BE),
# headers, payload, message CRC (u32 BE over every byte before it).
_PRELUDE = struct.Struct(">III")
_U32 = struct.Struct(">I")
_PRELUDE_LEN = 12
_CRC_LEN = 4
_MIN_MESSAGE = _PRELUDE_LEN + _CRC_LEN

# Header value types, by their type byte; the fixed-size ones by their struct.
_TRUE, _FALSE, _BYTE, _SHORT, _INT, _LONG, _BYTES, _STRING, _TIMESTAMP, _UUID = range(10)
_FIXED: Dict[int, struct.Struct] = {
    _BYTE: struct.Struct(">b"),
    _SHORT: struct.Struct(">h"),
    _INT: struct.Struct(">i"),
    _LONG: struct.Struct(">q"),
    # Milliseconds since the epoch, kept as an int: nothing downstream wants a datetime.
    _TIMESTAMP: struct.Struct(">q"),
}
_U16 = struct.Struct(">H")

# ``:message-type`` -> the header that names the frame.
# What encode_message takes: bool, int (int32, else int64), bytes and str header values.
HeaderValue = Union[str, bytes, bool, int]

_NAME_HEADER = {"event": ":event-type", "exception": ":exception-type", "error": ":error-code"}


def iter_eventstream(
    chunks: Iterable[bytes], *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
) -> Iterator[Frame]:
    """Yield one :class:`Frame` per AWS event-stream message in ``chunks`` (bytes as they arrive).

    Both CRCs are verified. A message whose declared length is below 16 bytes or
    above ``max_event_bytes``, whose headers do not fit it, whose checksum fails,
    or whose payload is not UTF-8 raises :class:`StreamReadError` naming the byte
    offset of the message in the body. A body that ends inside a message raises
    :class:`StreamInterruptedError`, as a cut SSE or NDJSON body does.
    ``Frame.event`` is ``:event-type``, ``:exception-type`` or ``:error-code``
    according to ``:message-type``; ``Frame.headers`` holds every header, read-only.
    """
    if max_event_bytes < _MIN_MESSAGE:
        raise ValueError(f"max_event_bytes must be at least {_MIN_MESSAGE}, not {max_event_bytes}")
    # Unconsumed bytes. A bytearray grows in amortised O(1) per byte, and deleting a
    # consumed prefix only moves its start pointer, so byte-at-a-time input is linear.
    buf = bytearray()
    base = 0  # body offset of buf[0]
    # Bytes buf must hold before parsing is worth trying again: a prelude, or the whole
    # message once its prelude is known. Small chunks then cost one length test each.
    need = _PRELUDE_LEN
    for chunk in chunks:
        buf += chunk
        if len(buf) < need:
            continue
        pos = 0
        end = len(buf)
        need = _PRELUDE_LEN
        while end - pos >= _PRELUDE_LEN:
            total = _check_prelude(buf, pos, base + pos, max_event_bytes)
            if end - pos < total:
                need = total
                break
            # One copy per message; parsing a bytes object leaves buf free to grow.
            message = bytes(buf[pos : pos + total])
            pos += total
            yield _decode(message, base + pos - total)
        if pos:
            del buf[:pos]
            # ``need`` counts from the start of the pending message, which is now buf[0].
            base += pos
    if buf:
        # A cut, not malformed framing: the connection ended mid-message, as a
        # truncated SSE or NDJSON body does, and is reported the same way.
        declared = f" of {need}" if need > _PRELUDE_LEN else ""
        raise StreamInterruptedError(
            f"event stream ended inside a message at byte offset {base} "
            f"({len(buf)}{declared} bytes received)"
        )


def _check_prelude(buf: bytearray, pos: int, offset: int, limit: int) -> int:
    """Validate the prelude at ``buf[pos:]`` and return the message's total length."""
    total, headers_len, prelude_crc = _PRELUDE.unpack_from(buf, pos)
    # The CRC first: a corrupted length would otherwise be reported as a bad size.
    actual = zlib.crc32(buf[pos : pos + 8])
    if actual != prelude_crc:
        raise StreamReadError(
            f"event stream prelude CRC mismatch in the message at byte offset {offset} "
            f"(expected {prelude_crc:#010x}, computed {actual:#010x})"
        )
    if total < _MIN_MESSAGE:
        raise StreamReadError(
            f"event stream message at byte offset {offset} declares {total} bytes, "
            f"less than the {_MIN_MESSAGE}-byte minimum"
        )
    if total > limit:
        raise StreamReadError(
            f"event stream message at byte offset {offset} declares {total} bytes, more than "
            f"max_event_bytes={limit}; pass a larger max_event_bytes if the server really "
            "sends messages this large"
        )
    if headers_len > total - _MIN_MESSAGE:
        raise StreamReadError(
            f"event stream message at byte offset {offset} declares {headers_len} bytes of "
            f"headers, more than its {total} bytes can hold"
        )
    return int(total)


def _decode(message: bytes, offset: int) -> Frame:
    """One complete message (prelude already checked) to a frame."""
    total = len(message)
    payload_end = total - _CRC_LEN
    (expected,) = _U32.unpack_from(message, payload_end)
    # The CRC of the first 8 bytes is the prelude CRC, already checked: continue from it
    # rather than hash those bytes again.
    (prelude_crc,) = _U32.unpack_from(message, 8)
    actual = zlib.crc32(message[8:payload_end], prelude_crc)
    if actual != expected:
        raise StreamReadError(
            f"event stream message CRC mismatch in the message at byte offset {offset} "
            f"(CRC at byte offset {offset + payload_end}: expected {expected:#010x}, "
            f"computed {actual:#010x})"
        )
    (headers_len,) = _U32.unpack_from(message, 4)
    headers_end = _PRELUDE_LEN + headers_len
    headers = _parse_headers(message, headers_end, offset)
    try:
        data = message[headers_end:payload_end].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StreamReadError(
            f"event stream payload of the message at byte offset {offset} is not valid UTF-8 "
            f"({exc.reason} at byte offset {offset + headers_end + exc.start})"
        ) from None
    message_type = headers.get(":message-type", "event")
    if not isinstance(message_type, str):
        message_type = "event"
    name = headers.get(_NAME_HEADER.get(message_type, ":event-type"), "")
    return Frame(
        name if isinstance(name, str) else "",
        data,
        message_type,
        MappingProxyType(headers),
    )


def _parse_headers(message: bytes, headers_end: int, offset: int) -> Dict[str, Any]:
    headers: Dict[str, Any] = {}
    p = _PRELUDE_LEN

    def bad(what: str) -> StreamReadError:
        return StreamReadError(
            f"event stream message at byte offset {offset} has a malformed header "
            f"at byte offset {offset + p}: {what}"
        )

    while p < headers_end:
        start = p
        name_len = message[p]
        if p + 1 + name_len + 1 > headers_end:
            raise bad("the name runs past the headers")
        try:
            name = message[p + 1 : p + 1 + name_len].decode("utf-8")
        except UnicodeDecodeError:
            raise bad("the name is not valid UTF-8") from None
        p += 1 + name_len
        kind = message[p]
        p += 1
        value: Any
        if kind == _TRUE:
            value = True
        elif kind == _FALSE:
            value = False
        elif kind in _FIXED:
            fmt = _FIXED[kind]
            if p + fmt.size > headers_end:
                raise bad(f"the value of {name!r} runs past the headers")
            (value,) = fmt.unpack_from(message, p)
            p += fmt.size
        elif kind == _BYTES or kind == _STRING:
            if p + 2 > headers_end:
                raise bad(f"the value of {name!r} runs past the headers")
            (size,) = _U16.unpack_from(message, p)
            p += 2
            if p + size > headers_end:
                raise bad(f"the value of {name!r} runs past the headers")
            value = message[p : p + size]
            if kind == _STRING:
                try:
                    value = value.decode("utf-8")
                except UnicodeDecodeError:
                    raise bad(f"the value of {name!r} is not valid UTF-8") from None
            p += size
        elif kind == _UUID:
            if p + 16 > headers_end:
                raise bad(f"the value of {name!r} runs past the headers")
            value = message[p : p + 16]
            p += 16
        else:
            raise bad(f"unknown value type {kind} for {name!r}")
        if name in headers:
            p = start
            raise bad(f"duplicate header {name!r}")
        headers[name] = value
    return headers


# ---------------------------------------------------------------------------
# Encoding: for tests and fake servers.


def encode_message(headers: Mapping[str, HeaderValue], payload: bytes) -> bytes:
    """One event-stream message with ``headers`` (in order) and ``payload``, CRCs included.

    ``bool`` values become the true/false types, ``int`` an int32 (int64 if it does
    not fit), ``bytes`` a byte array and ``str`` a string.
    """
    parts: List[bytes] = []
    for name, value in headers.items():
        raw_name = name.encode("utf-8")
        if len(raw_name) > 255:
            raise ValueError(f"header name {name!r} is longer than 255 bytes")
        parts.append(bytes((len(raw_name),)) + raw_name + _encode_value(name, value))
    raw_headers = b"".join(parts)
    total = _MIN_MESSAGE + len(raw_headers) + len(payload)
    prelude = _U32.pack(total) + _U32.pack(len(raw_headers))
    prelude += _U32.pack(zlib.crc32(prelude))
    body = prelude + raw_headers + payload
    return body + _U32.pack(zlib.crc32(body))


def _encode_value(name: str, value: HeaderValue) -> bytes:
    # bool before int: True is an int too.
    if isinstance(value, bool):
        return bytes((_TRUE if value else _FALSE,))
    if isinstance(value, int):
        if -(2**31) <= value < 2**31:
            return bytes((_INT,)) + _FIXED[_INT].pack(value)
        if -(2**63) <= value < 2**63:
            return bytes((_LONG,)) + _FIXED[_LONG].pack(value)
        raise ValueError(f"header {name!r}: {value} does not fit in 64 bits")
    raw, kind = (value, _BYTES) if isinstance(value, bytes) else (value.encode("utf-8"), _STRING)
    if len(raw) > 0xFFFF:
        raise ValueError(f"header {name!r}: value is longer than 65535 bytes")
    return bytes((kind,)) + _U16.pack(len(raw)) + raw


def _as_bytes(payload: Union[bytes, str]) -> bytes:
    return payload.encode("utf-8") if isinstance(payload, str) else payload


def event_frame(event_type: str, payload: Union[bytes, str]) -> bytes:
    """An encoded ``event`` message as Bedrock sends it (``payload`` is the JSON body)."""
    return encode_message(
        {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"},
        _as_bytes(payload),
    )


def exception_frame(exception_type: str, payload: Union[bytes, str]) -> bytes:
    """An encoded ``exception`` message, e.g. ``("throttlingException", b'{"message":"..."}')``."""
    return encode_message(
        {
            ":exception-type": exception_type,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        _as_bytes(payload),
    )
