"""The one frame type every framing yields."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

# The largest single event any framer accepts unless told otherwise: it bounds the
# memory one runaway event can take. Providers can change it (with_max_event_bytes).
DEFAULT_MAX_EVENT_BYTES = 16 * 1024 * 1024

# Shared by every text frame: they have no headers, and a fresh dict per event costs.
_NO_HEADERS: Mapping[str, Any] = MappingProxyType({})


class Frame:
    """One framed message from a response body.

    ``event`` is the SSE event name (``"message"`` when the server sent none), the
    AWS ``:event-type`` (or ``:exception-type`` for exception frames), and ``""``
    for NDJSON lines. ``data`` is the payload text: the joined SSE ``data:`` lines,
    one NDJSON line, or an AWS payload decoded as UTF-8. ``message_type`` is
    ``"event"`` except for AWS ``exception`` and ``error`` frames. ``headers`` holds
    the AWS frame headers (empty for the text framings).
    """

    __slots__ = ("event", "data", "message_type", "headers")

    def __init__(
        self,
        event: str,
        data: str,
        message_type: str = "event",
        headers: Mapping[str, Any] | None = None,
    ) -> None:
        self.event = event
        self.data = data
        self.message_type = message_type
        self.headers = headers if headers is not None else _NO_HEADERS

    def __repr__(self) -> str:
        data = self.data if len(self.data) <= 80 else self.data[:77] + "..."
        extra = f", message_type={self.message_type!r}" if self.message_type != "event" else ""
        return f"Frame(event={self.event!r}, data={data!r}{extra})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frame):
            return NotImplemented
        return (self.event, self.data, self.message_type, self.headers) == (
            other.event,
            other.data,
            other.message_type,
            other.headers,
        )

    __hash__ = None  # type: ignore[assignment]
