"""``HttpCall``: one request a provider wants streamed, and how to read and classify its answer."""

from __future__ import annotations

from typing import Any, Callable, Literal, Mapping, Optional

from ._http import ErrorClassifier

__all__ = ["ErrorClassifier", "Framing", "HttpCall"]

#: How a response body is cut into frames: server-sent events, newline-delimited JSON,
#: or the AWS binary event stream.
Framing = Literal["sse", "ndjson", "eventstream"]
_FRAMINGS = ("sse", "ndjson", "eventstream")


class HttpCall:
    """One HTTP request a provider wants streamed, and how to read its answer.

    ``classify`` turns a non-2xx answer (status, headers, body text) into a typed
    error; left None, the provider's ``classify_error`` does (and outside a
    provider, :func:`default_classifier`, which reads the status and the usual
    JSON error shapes).
    ``prepare(call) -> call`` runs before every attempt and may return a changed copy
    (:meth:`replace`): Bedrock signs there, Codex puts its current token there.
    ``on_unauthorized(sent) -> bool`` runs when an attempt is answered 401, with the
    call as it was sent: returning True says the credentials were renewed, and the
    request goes out once more (not counted as a retry; a second 401 is raised).
    """

    __slots__ = ("method", "url", "headers", "body", "framing", "classify", "prepare", "on_unauthorized")

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str],
        body: Optional[bytes],
        *,
        framing: Framing = "sse",
        classify: Optional[ErrorClassifier] = None,
        method: str = "POST",
        prepare: Optional[Callable[[HttpCall], HttpCall]] = None,
        on_unauthorized: Optional[Callable[[HttpCall], bool]] = None,
    ) -> None:
        if framing not in _FRAMINGS:
            raise ValueError(f"framing must be 'sse', 'ndjson' or 'eventstream', not {framing!r}")
        if body is not None and not isinstance(body, bytes):
            raise TypeError(f"HttpCall body must be bytes or None, got {type(body).__name__}")
        self.method = method
        self.url = url
        self.headers: Mapping[str, str] = headers
        self.body = body
        self.framing: Framing = framing
        self.classify: Optional[ErrorClassifier] = classify
        self.prepare = prepare
        self.on_unauthorized = on_unauthorized

    def replace(self, **changes: Any) -> HttpCall:
        """A copy with the named attributes changed (``call.replace(headers=signed)``)."""
        new = HttpCall.__new__(HttpCall)
        for name in HttpCall.__slots__:
            setattr(new, name, changes.pop(name, getattr(self, name)))
        if changes:
            raise TypeError(f"HttpCall has no attribute {next(iter(changes))!r}")
        return new

    def __repr__(self) -> str:
        # Never the headers: they carry the credentials.
        return f"HttpCall({self.method} {self.url}, framing={self.framing})"
