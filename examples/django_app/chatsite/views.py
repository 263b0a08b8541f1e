"""Stream a model's answer from a Django view, as text or as server-sent events."""

from __future__ import annotations

import json
import threading
from typing import Any, Callable, Iterator, Optional, Tuple

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse

from llm_sync import (
    ChatMessage,
    Context,
    ContextOverflowError,
    InvalidApiKeyError,
    LlmError,
    LlmResponse,
    LlmResponseStream,
    MissingApiKeyError,
    RateLimitedError,
    RequestTimeoutError,
    StreamingModelProvider,
    parse_model,
)

# One provider for the whole process, shared by every request and thread: providers are
# immutable and thread-safe, and keep a pool of connections to the model's API.
_provider: Optional[StreamingModelProvider] = None
_provider_lock = threading.Lock()


def get_provider() -> StreamingModelProvider:
    global _provider
    with _provider_lock:
        if _provider is None:
            _provider, _model = parse_model(settings.LLM_SYNC_MODEL)
        return _provider


def reset_provider() -> None:
    """Forget the shared provider (after changing settings, or in tests)."""
    global _provider
    with _provider_lock:
        _provider = None


class StreamBody:
    """The response body: the stream's text, rendered; ``close()`` closes the stream.

    Django calls ``close()`` when the response is finished, and the WSGI server calls it when the
    client goes away, so the connection to the model is closed at once (a generator would not
    be closed if the server never started iterating it).
    """

    def __init__(self, stream: LlmResponseStream, first: LlmResponse,
                 render: Callable[[LlmResponse], Optional[str]], on_error: Callable[[LlmError], str]) -> None:
        self._stream = stream
        self._first = first
        self._render = render
        self._on_error = on_error

    def __iter__(self) -> Iterator[str]:
        try:
            for chunk in self._chunks():
                piece = self._render(chunk)
                if piece:
                    yield piece
        except LlmError as err:
            # The status line is gone already: say it in the body, in the body's own format.
            yield self._on_error(err)
        finally:
            self._stream.close()

    def _chunks(self) -> Iterator[LlmResponse]:
        yield self._first
        yield from self._stream

    def close(self) -> None:
        self._stream.close()


def _status(err: LlmError) -> int:
    if isinstance(err, ContextOverflowError):
        return 413
    if isinstance(err, RateLimitedError):
        return 503
    if isinstance(err, RequestTimeoutError):
        return 504
    if isinstance(err, (InvalidApiKeyError, MissingApiKeyError)):
        return 500  # our configuration is wrong, not the client's request
    return 502


def _error_response(err: LlmError) -> HttpResponse:
    response = JsonResponse({"error": type(err).__name__, "message": str(err)}, status=_status(err))
    retry_after = getattr(err, "retry_after", None)
    if retry_after is not None:
        response["Retry-After"] = str(int(retry_after + 0.999))
    return response


def _start(request: HttpRequest) -> Tuple[Optional[LlmResponseStream], Any]:
    """``(stream, first chunk)``, or ``(None, error response)`` when it failed before content."""
    question = request.GET.get("q", "").strip() or "Say hello."
    try:
        stream = get_provider().stream_response(Context([ChatMessage.User(question)]))
    except (LlmError, ValueError, ImportError) as err:
        wrapped = err if isinstance(err, LlmError) else LlmError(str(err))
        return None, _error_response(wrapped)
    try:
        # Wait for the first chunk before answering: errors before any content (a bad key,
        # a rate limit, an overflow) still get a proper HTTP status.
        first = next(stream)
    except LlmError as err:
        stream.close()
        return None, _error_response(err)
    except StopIteration:
        return None, JsonResponse({"error": "EmptyStream", "message": "the model sent nothing"}, status=502)
    return stream, first


def _text(chunk: LlmResponse) -> Optional[str]:
    return chunk.chunk if isinstance(chunk, LlmResponse.Text) else None


def chat(request: HttpRequest) -> HttpResponse:
    """``GET /chat?q=...``: the answer as plain text, streamed as it is written."""
    stream, first = _start(request)
    if stream is None:
        return first
    body = StreamBody(stream, first, _text, lambda err: f"\n[error: {type(err).__name__}: {err}]\n")
    response = StreamingHttpResponse(body, content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    return response


def _sse(chunk: LlmResponse) -> Optional[str]:
    if isinstance(chunk, LlmResponse.Text):
        return f"data: {json.dumps({'text': chunk.chunk})}\n\n"
    if isinstance(chunk, LlmResponse.Done):
        return f"event: done\ndata: {json.dumps({'stop_reason': str(chunk.stop_reason)})}\n\n"
    return None


def _sse_error(err: LlmError) -> str:
    return f"event: error\ndata: {json.dumps({'error': type(err).__name__, 'message': str(err)})}\n\n"


def chat_sse(request: HttpRequest) -> HttpResponse:
    """``GET /chat/sse?q=...``: server-sent events, one ``data:`` event per piece of text."""
    stream, first = _start(request)
    if stream is None:
        return first
    response = StreamingHttpResponse(StreamBody(stream, first, _sse, _sse_error), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the events
    return response
