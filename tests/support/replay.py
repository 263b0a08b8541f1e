"""Play a recorded (or hand-written) body through a real provider over loopback HTTP."""

from __future__ import annotations

from typing import Callable, List, Mapping, Optional, Sequence, Union

from llm_sync import Context, LlmResponse, StreamingModelProvider
from tests.support.server import LoopbackServer, Reply

CONTENT_TYPES = {
    "sse": "text/event-stream",
    "ndjson": "application/x-ndjson",
    "eventstream": "application/vnd.amazon.eventstream",
}


def split_every(body: bytes, size: int) -> List[bytes]:
    """``body`` in pieces of ``size`` bytes: each goes out as its own HTTP chunk."""
    return [body[i : i + size] for i in range(0, len(body), size)] or [b""]


def stream_body(
    server: LoopbackServer,
    provider: StreamingModelProvider,
    body: Union[bytes, Sequence[bytes]],
    *,
    framing: str = "sse",
    context: Optional[Context] = None,
    status: int = 200,
    headers: Optional[Mapping[str, str]] = None,
) -> List[LlmResponse]:
    """Serve ``body`` (chunked) for the next request and return every chunk the provider yields.

    ``provider`` must already point at ``server.url``. Errors are raised as the
    provider raises them.
    """
    merged = {"content-type": CONTENT_TYPES[framing]}
    merged.update(headers or {})
    steps = [body] if isinstance(body, bytes) else list(body)
    server.reply(Reply(status=status, headers=merged, body=steps, chunked=True))
    with provider.stream_response(context if context is not None else Context()) as stream:
        return list(stream)


def kinds(chunks: Sequence[LlmResponse]) -> List[str]:
    """The variant names, in order: handy for asserting the shape of a stream."""
    return [type(c).__name__ for c in chunks]


def only(chunks: Sequence[LlmResponse], cls: Callable[..., LlmResponse]) -> List[LlmResponse]:
    return [c for c in chunks if isinstance(c, cls)]  # type: ignore[arg-type]
