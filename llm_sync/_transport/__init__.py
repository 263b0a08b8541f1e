"""The transport layer: bytes in, ``Frame`` objects out (HTTP, SSE, NDJSON, AWS event stream)."""

from ._frame import Frame

__all__ = ["Frame"]
