"""The HTTP call of one stream, or of one JSON request, run on its reader thread: prepare, send, read, retry."""

from __future__ import annotations

import itertools
import json
import time
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, Tuple

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
    from requests import Response

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
    attempts = _Attempts(state, call, transport, timeouts, retry)
    sent_start = False
    while True:
        content = False  # anything beyond Start reached the queue in this attempt
        resp = None
        try:
            sent, resp = attempts.send()
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
            if resp is not None:
                resp.close()
                resp = None
            if not attempts.again(exc, content):
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

    The same rules as :func:`http_source` (they are :class:`_Attempts`'s): ``prepare``
    before each attempt, the ``on_unauthorized`` renewal once, retries on retryable
    errors with the policy's waits (and ``Retry-After``) within the total deadline,
    the call's classifier for non-2xx answers. A body is read up to ``max_bytes``
    (then ``StreamReadError``). None when the state was stopped meanwhile.
    """
    attempts = _Attempts(state, call, transport, timeouts, retry)
    while True:
        resp = None
        try:
            sent, resp = attempts.send()
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
            if resp is not None:
                resp.close()
                resp = None
            if not attempts.again(exc, False):
                return None
        finally:
            if resp is not None:
                resp.close()


class _Attempts:
    """The attempts of one call, streamed or not: each sent as prepared, and what follows a failure."""

    __slots__ = ("state", "call", "transport", "timeouts", "retry", "read_timeout", "started", "renewed",
                 "attempt", "sent")

    def __init__(
        self, state: StreamState, call: HttpCall, transport: Transport, timeouts: Timeouts, retry: RetryPolicy
    ) -> None:
        self.state = state
        self.call = call
        self.transport = transport
        self.timeouts = timeouts
        self.retry = retry
        self.read_timeout = timeouts.read_timeout()
        self.started = time.monotonic()
        self.renewed = False  # on_unauthorized renewed the credentials once already
        self.attempt = 0
        self.sent: Optional[HttpCall] = None  # the call as last sent, once prepare gave it

    def send(self) -> Tuple[HttpCall, Response]:
        """Prepare the call (new credentials, a new signature) and send it; the answer is 2xx."""
        call = self.call
        self.sent = None
        sent = self.sent = call.prepare(call) if call.prepare is not None else call
        _observe.request_sent(self.state.label, sent.method, sent.url, self.attempt)
        resp = send(
            self.transport,
            sent.method,
            sent.url,
            sent.headers,
            sent.body,
            connect_timeout=self.timeouts.connect,
            read_timeout=self.read_timeout,
            classify=sent.classify or default_classifier,
        )
        return sent, resp

    def again(self, exc: Exception, content: bool) -> bool:
        """After a failed attempt (its response closed): True to send again, False once stopped; else raises.

        A 401 before content renews the credentials once through ``on_unauthorized``
        and sends again at once; a retryable error before content waits as the
        policy (or ``Retry-After``) says, within the total deadline; anything else,
        or any error after content, is raised as the typed error.
        """
        state = self.state
        if state.stopped:
            return False
        err = exc if isinstance(exc, LlmError) else from_requests(exc, content)
        if err is not exc:
            err.__cause__ = exc
        call = self.call
        if err.status == 401 and not content and self.sent is not None and call.on_unauthorized is not None:
            if self.renewed:
                raise InvalidApiKeyError(
                    f"{err.message} (even after refreshing the credentials)", status=err.status, body=err.body
                ) from None
            if call.on_unauthorized(self.sent) and not state.stopped:
                self.renewed = True
                return True  # once, and not a retry: the same request with new credentials
        if content or not err.retryable:
            raise err from err.__cause__
        delay = self.retry.delay(self.attempt, getattr(err, "retry_after", None))
        total = self.timeouts.total
        if delay is None or (total is not None and time.monotonic() + delay - self.started > total):
            raise err from err.__cause__
        self.attempt += 1
        _observe.retrying(state, err, delay, self.attempt, self.retry.max_retries)
        return state.sleep(delay)


def _decode(data: bytes, url: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        raise JsonParsingError(
            f"the answer from {url.split('?')[0]} is not JSON: {data[:200]!r}; check base_url"
        ) from None
