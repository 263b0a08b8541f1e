"""A 2xx body to frames: the first bytes decide whether it is a stream at all, the framing does the rest."""

from __future__ import annotations

import itertools
import json
from typing import TYPE_CHECKING, Any, Iterator

from .._errors import ApiError
from ._eventstream import iter_eventstream
from ._http import default_classifier, read_chunks
from ._ndjson import iter_ndjson
from ._sse import iter_sse

if TYPE_CHECKING:
    from ._frame import Frame
    from ._request import HttpCall

__all__ = ["open_frames"]

# A JSON error document or HTML page found where a stream was due is read this far.
_MAX_DOCUMENT = 64 * 1024

# How an SSE body may begin: a field name or a comment (after optional blank lines).
_SSE_STARTS = (b"data:", b"data\n", b"event:", b"id:", b"retry:", b":", b"data\r")


def open_frames(resp: Any, call: HttpCall, max_event_bytes: int) -> Iterator[Frame]:
    """The frames of ``resp``'s body in ``call.framing``, after checking it is a stream.

    Raises the typed error of a body that is a JSON error document or an HTML page.
    """
    chunks = _peek_non_stream(resp, call, read_chunks(resp))
    framing = call.framing
    if framing == "sse":
        return iter_sse(chunks, max_event_bytes=max_event_bytes)
    if framing == "ndjson":
        return iter_ndjson(chunks, max_event_bytes=max_event_bytes)
    return iter_eventstream(chunks, max_event_bytes=max_event_bytes)


def _peek_non_stream(resp: Any, call: HttpCall, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """``chunks`` unchanged, unless the first bytes show the body is not a stream: then raise.

    Gateways answer a streaming request with ``200`` and a JSON error document,
    captive portals and proxies with an HTML page; framed as a stream either would
    look like an empty or broken stream and hide the real cause. The first bytes
    decide, whatever the content type says (some backends send SSE without an SSE
    content type): an SSE body starts with a field or a comment, an event-stream
    message with a length whose first byte is never ``{``, ``[`` or ``<``.
    """
    first = b""
    for first in chunks:
        if first.strip():
            break
    head = first.lstrip(b"\xef\xbb\xbf\r\n \t")
    lead = head[:1]
    framing = call.framing
    classify = call.classify or default_classifier
    if lead == b"<":
        raise classify(502, resp.headers, _rest(first, chunks))  # a page: a proxy in the way
    if lead in (b"{", b"["):
        if framing == "ndjson":
            # A JSON line is what NDJSON is made of: only a body labelled as one JSON
            # document whose first piece is a whole error object is taken as one.
            ctype = (resp.headers.get("content-type") or "").lower()
            if "ndjson" in ctype or not _is_error_document(first):
                return itertools.chain((first,), chunks)
        _raise_document(resp, call, _rest(first, chunks))
    if framing == "sse" and head and not _may_be_sse(head):
        ctype = resp.headers.get("content-type") or "no content type"
        raise ApiError(
            f"{call.url} answered a streaming request with {ctype} that is not a stream "
            "(server-sent events); check that base_url points at the API",
            status=resp.status_code,
            body=_rest(first, chunks),
        )
    return itertools.chain((first,), chunks)


def _may_be_sse(head: bytes) -> bool:
    # The first chunk may be only a few bytes ("eve"): a prefix of a field counts.
    return any(head.startswith(s) or s.startswith(head) for s in _SSE_STARTS)


def _rest(first: bytes, chunks: Iterator[bytes]) -> str:
    body = bytearray(first)
    for more in chunks:
        body += more
        if len(body) > _MAX_DOCUMENT:
            break
    return bytes(body[:_MAX_DOCUMENT]).decode("utf-8", errors="replace")


def _is_error_document(data: bytes) -> bool:
    try:
        parsed = json.loads(data)
    except ValueError:
        return False
    return isinstance(parsed, dict) and "error" in parsed


def _raise_document(resp: Any, call: HttpCall, text: str) -> None:
    status = resp.status_code
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, list) and parsed:
        parsed = parsed[0]
    err = parsed.get("error") if isinstance(parsed, dict) else None
    if err is None and isinstance(parsed, dict) and ("message" in parsed or "detail" in parsed):
        err = parsed  # AWS ({"message"}) and FastAPI ({"detail"}) error shapes
    if err is None:
        raise ApiError(
            f"{call.url} answered a streaming request with a JSON document instead of a "
            "stream; check that base_url points at an endpoint that streams",
            status=status,
            body=text,
        )
    code = err.get("code") if isinstance(err, dict) else None
    if isinstance(code, int) and 400 <= code <= 599:
        status = code  # the HTTP status the gateway meant
    elif status < 400:
        status = 400
    raise (call.classify or default_classifier)(status, resp.headers, text)
