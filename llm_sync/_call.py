"""The HTTP call of one stream, or of one JSON request, run on its reader thread: prepare, send, read, retry."""

from __future__ import annotations

import itertools
import json
import time
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional

from . import _observe
from ._errors import (
    InvalidApiKeyError,
    JsonParsingError,
    LlmError,
    StreamInterruptedError,
    StreamReadError,
)
from ._response import Done, LlmResponse, Start, Usage
from ._transport._http import default_classifier, from_requests, read_chunks, send
from ._transport._sniff import open_frames

if TYPE_CHECKING:
    from ._engine import Source, StreamState
    from ._retry import RetryPolicy
    from ._timeouts import Timeouts
    from ._transport._frame import Frame
    from ._transport._http import Transport
    from ._transport._request import HttpCall

__all__ = ["Answer", "Parser", "http_source", "json_answer"]

#: A provider's reading of a body: frames in, chunks out (pure; no I/O, no threads).
Parser = Callable[[Iterator["Frame"]], Iterator[LlmResponse]]

# Frames read after Done, to finish the body so the connection can be reused.
_MAX_TRAILING_FRAMES = 64


def http_source(
    call: HttpCall,
    parse: Parser,
    *,
    transport: Transport,
    timeouts: Timeouts,
    retry: RetryPolicy,
    max_event_bytes: int,
) -> Source:
    """A source that streams ``call``, retrying before content as the policy allows."""

    def source(state: StreamState) -> Iterator[LlmResponse]:
        return _http_chunks(state, call, parse, transport, timeouts, retry, max_event_bytes)

    return source


def _http_chunks(
    state: StreamState,
    call: HttpCall,
    parse: Parser,
    transport: Transport,
    timeouts: Timeouts,
    retry: RetryPolicy,
    max_event_bytes: int,
) -> Iterator[LlmResponse]:
    started = time.monotonic()
    read_timeout = timeouts.read_timeout()
    sent_start = False
    renewed = False  # on_unauthorized renewed the credentials once already
    attempt = 0
    while True:
        content = False  # anything beyond Start reached the queue in this attempt
        resp = None
        sent = None  # the call as sent, once prepare gave it
        try:
            sent = call.prepare(call) if call.prepare is not None else call
            _observe.request_sent(state.label, sent.method, sent.url, attempt)
            resp = send(
                transport,
                sent.method,
                sent.url,
                sent.headers,
                sent.body,
                connect_timeout=timeouts.connect,
                read_timeout=read_timeout,
                classify=sent.classify or default_classifier,
            )
            if state.stop_event.is_set():
                return
            frames = open_frames(resp, sent, max_event_bytes)
            done = False
            for chunk in parse(frames):
                if done:
                    continue  # the parser drains the body itself: let it
                cls = chunk.__class__
                if cls is Start:
                    if sent_start:
                        continue  # a retried attempt: the consumer already has one
                    sent_start = True
                elif cls is Done:
                    done = True
                elif not content and cls is not Usage:
                    content = True
                yield chunk
                if state.stopped:
                    return
            if done:
                # A parser may stop at its end marker ([DONE]) before the body ends;
                # reading the rest (normally just the closing chunk, already here)
                # lets the connection go back to the pool instead of being cut.
                for _ in itertools.islice(frames, _MAX_TRAILING_FRAMES):
                    pass
            if not done:
                if state.stop_event.is_set():
                    return
                raise StreamInterruptedError(
                    "the stream ended before the provider said it was done; the connection "
                    "closed early (a proxy timeout or a server restart)"
                    + (", after some content arrived" if content else ""),
                )
            resp.close()
            return
        except Exception as exc:
            if state.stopped:
                return
            err = exc if isinstance(exc, LlmError) else from_requests(exc, content)
            if err is not exc:
                err.__cause__ = exc
            if err.status == 401 and not content and sent is not None and call.on_unauthorized is not None:
                if renewed:
                    raise InvalidApiKeyError(
                        f"{err.message} (even after refreshing the credentials)",
                        status=err.status,
                        body=err.body,
                    ) from None
                if resp is not None:
                    resp.close()
                    resp = None
                if call.on_unauthorized(sent) and not state.stopped:
                    renewed = True
                    continue  # once, and not a retry: the same request with new credentials
            if content or not err.retryable:
                raise err from err.__cause__
            delay = retry.delay(attempt, getattr(err, "retry_after", None))
            if delay is None:
                raise err from err.__cause__
            if timeouts.total is not None and time.monotonic() + delay - started > timeouts.total:
                raise err from err.__cause__
            if resp is not None:
                resp.close()
                resp = None
            attempt += 1
            _observe.retrying(state, err, delay, attempt, retry.max_retries)
            if not state.sleep(delay):
                return
        finally:
            if resp is not None:
                resp.close()


class Answer:
    """The decoded JSON body of a request that is not streamed (what :func:`json_answer` returns)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def json_answer(
    state: StreamState,
    call: HttpCall,
    *,
    transport: Transport,
    timeouts: Timeouts,
    retry: RetryPolicy,
    max_bytes: int,
) -> Optional[Answer]:
    """Send ``call`` and decode its whole 2xx JSON body, retrying as a stream does before content.

    The same rules as :func:`http_source`: ``prepare`` before each attempt, the
    ``on_unauthorized`` renewal once, retries on retryable errors with the policy's
    waits (and ``Retry-After``) within the total deadline, the call's classifier for
    non-2xx answers. A body is read up to ``max_bytes`` (then ``StreamReadError``).
    None when the state was stopped meanwhile.
    """
    started = time.monotonic()
    read_timeout = timeouts.read_timeout()
    renewed = False
    attempt = 0
    while True:
        resp = None
        sent = None
        try:
            sent = call.prepare(call) if call.prepare is not None else call
            _observe.request_sent(state.label, sent.method, sent.url, attempt)
            resp = send(
                transport,
                sent.method,
                sent.url,
                sent.headers,
                sent.body,
                connect_timeout=timeouts.connect,
                read_timeout=read_timeout,
                classify=sent.classify or default_classifier,
            )
            data = bytearray()
            for piece in read_chunks(resp):
                if state.stopped:
                    return None
                data += piece
                if len(data) > max_bytes:
                    raise StreamReadError(
                        f"the answer from {sent.url.split('?')[0]} is larger than {max_bytes} bytes; "
                        "raise the limit with with_max_event_bytes() if that is expected"
                    )
            return Answer(_decode(bytes(data), sent.url))
        except Exception as exc:
            if state.stopped:
                return None
            err = exc if isinstance(exc, LlmError) else from_requests(exc, False)
            if err is not exc:
                err.__cause__ = exc
            if err.status == 401 and sent is not None and call.on_unauthorized is not None:
                if renewed:
                    raise InvalidApiKeyError(
                        f"{err.message} (even after refreshing the credentials)", status=err.status, body=err.body
                    ) from None
                if resp is not None:
                    resp.close()
                    resp = None
                if call.on_unauthorized(sent) and not state.stopped:
                    renewed = True
                    continue
            if not err.retryable:
                raise err from err.__cause__
            delay = retry.delay(attempt, getattr(err, "retry_after", None))
            if delay is None or (
                timeouts.total is not None and time.monotonic() + delay - started > timeouts.total
            ):
                raise err from err.__cause__
            if resp is not None:
                resp.close()
                resp = None
            attempt += 1
            _observe.retrying(state, err, delay, attempt, retry.max_retries)
            if not state.sleep(delay):
                return None
        finally:
            if resp is not None:
                resp.close()


def _decode(data: bytes, url: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        raise JsonParsingError(
            f"the answer from {url.split('?')[0]} is not JSON: {data[:200]!r}; check base_url"
        ) from None
