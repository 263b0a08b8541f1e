"""Stream a model's answer from a Django view, as text or as server-sent events, keeping conversations."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
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
    """Forget the shared provider and the conversations (after changing settings, or in tests)."""
    global _provider
    with _provider_lock:
        _provider = None
    with _conversations_lock:
        _conversations.clear()


# Conversations by the id the client sends (``?c=...``), in memory for the example: a real
# site keeps them in its database (``Context.to_dict()`` / ``Context.from_dict()``).
MAX_CONVERSATIONS = 1000
_conversations: OrderedDict[str, Context] = OrderedDict()
_conversations_lock = threading.Lock()


def conversation(cid: str) -> Context:
    """A copy of conversation ``cid`` so far (empty when new)."""
    with _conversations_lock:
        found = _conversations.get(cid)
        return found.copy() if found is not None else Context()


def _save(cid: str, context: Context) -> None:
    with _conversations_lock:
        _conversations[cid] = context
        _conversations.move_to_end(cid)
        while len(_conversations) > MAX_CONVERSATIONS:
            _conversations.popitem(last=False)


class StreamBody:
    """The response body: the stream's text, rendered; ``close()`` closes the stream.

    Django calls ``close()`` when the response is finished, and the WSGI server calls it when the
    client goes away, so the connection to the model is closed at once (a generator would not
    be closed if the server never started iterating it).
    """

    def __init__(self, stream: LlmResponseStream, first: LlmResponse,
                 render: Callable[[LlmResponse], Optional[str]], on_error: Callable[[LlmError], str],
                 on_close: Optional[Callable[[LlmResponseStream], None]] = None) -> None:
        self._stream = stream
        self._first = first
        self._render = render
        self._on_error = on_error
        self._on_close = on_close
        self._lock = threading.Lock()

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
            self.close()

    def _chunks(self) -> Iterator[LlmResponse]:
        yield self._first
        yield from self._stream

    def close(self) -> None:
        """Close the stream, then hand it to ``on_close`` once (at the end, after an error, or a disconnect)."""
        self._stream.close()
        with self._lock:
            on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close(self._stream)


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


def _start(request: HttpRequest) -> Tuple[Optional[LlmResponseStream], Any, Any]:
    """``(stream, first chunk, on_close)``, or ``(None, error response, None)`` when it failed before content.

    With ``?c=<id>`` the question continues that conversation, and ``on_close`` stores the
    answer in it when the response ends, also when the client went away mid-answer: then
    what was said so far is kept (``stream.partial().to_message()`` leaves out a tool call
    that never finished and thinking without its signature, which the model would refuse),
    so the client's next question gets a correct second turn.
    """
    question = request.GET.get("q", "").strip() or "Say hello."
    cid = request.GET.get("c", "")
    if len(cid) > 64:
        return None, JsonResponse({"error": "BadConversation", "message": "c: at most 64 characters"}, status=400), None
    context = conversation(cid) if cid else Context()
    context.add_message(ChatMessage.User(question))
    try:
        stream = get_provider().stream_response(context)
    except (LlmError, ValueError, ImportError) as err:
        wrapped = err if isinstance(err, LlmError) else LlmError(str(err))
        return None, _error_response(wrapped), None
    try:
        # Wait for the first chunk before answering: errors before any content (a bad key,
        # a rate limit, an overflow) still get a proper HTTP status.
        first = next(stream)
    except LlmError as err:
        stream.close()
        return None, _error_response(err), None
    except StopIteration:
        return None, JsonResponse({"error": "EmptyStream", "message": "the model sent nothing"}, status=502), None
    if not cid:
        return stream, first, None

    def remember(done: LlmResponseStream) -> None:
        reply = done.partial()
        if reply.text or reply.tool_calls:
            context.add_message(reply.to_message())
        _save(cid, context)

    return stream, first, remember


def _text(chunk: LlmResponse) -> Optional[str]:
    return chunk.chunk if isinstance(chunk, LlmResponse.Text) else None


def chat(request: HttpRequest) -> HttpResponse:
    """``GET /chat?q=...[&c=<conversation>]``: the answer as plain text, streamed as it is written."""
    stream, first, on_close = _start(request)
    if stream is None:
        return first
    body = StreamBody(stream, first, _text, lambda err: f"\n[error: {type(err).__name__}: {err}]\n", on_close)
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
    """``GET /chat/sse?q=...[&c=<conversation>]``: server-sent events, one ``data:`` event per piece of text."""
    stream, first, on_close = _start(request)
    if stream is None:
        return first
    body = StreamBody(stream, first, _sse, _sse_error, on_close)
    response = StreamingHttpResponse(body, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the events
    return response
