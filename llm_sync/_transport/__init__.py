"""The transport layer: bytes in, ``Frame`` objects out (HTTP, SSE, NDJSON, AWS event stream)."""

from ._eventstream import encode_message, event_frame, exception_frame, iter_eventstream
from ._frame import Frame

__all__ = ["Frame", "encode_message", "event_frame", "exception_frame", "iter_eventstream"]
