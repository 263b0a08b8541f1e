"""The checkpoint of a batch run: a JSON Lines file with one line per finished item, appended as each finishes."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from . import _errors
from ._errors import LlmError
from ._stream import CollectedResponse

if TYPE_CHECKING:
    from ._context import Context

__all__ = ["Checkpoint", "Record", "input_hash"]

_VERSION = 1


def input_hash(context: Context) -> str:
    """A hash of what a context asks: messages, tools and settings, without the timestamps.

    Timestamps are left out because a script that rebuilds the same prompts on a
    rerun stamps them anew; the hash must say "same input" then.
    """
    import hashlib  # loads OpenSSL: paid by checkpointed runs only

    data = context.to_dict()
    data["messages"] = [{k: v for k, v in m.items() if k != "timestamp"} for m in data["messages"]]
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class Record:
    """One finished item as the checkpoint holds it."""

    __slots__ = ("index", "input", "attempts", "response", "error")

    def __init__(
        self,
        index: int,
        input: str,
        attempts: int,
        response: Optional[CollectedResponse],
        error: Optional[LlmError],
    ) -> None:
        self.index = index
        self.input = input
        self.attempts = attempts
        self.response = response
        self.error = error

    def line(self) -> bytes:
        out: Dict[str, Any] = {"index": self.index, "input": self.input, "attempts": self.attempts}
        if self.response is not None:
            out["response"] = self.response.to_dict()
        else:
            err = self.error
            assert err is not None
            out["error"] = {
                "type": type(err).__name__,
                "message": err.message,
                "status": err.status,
                "retryable": err.retryable,
                "provider": err.provider,
                "model": err.model,
            }
        return (json.dumps(out, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Record:
        index, digest = data["index"], data["input"]
        if not isinstance(index, int) or not isinstance(digest, str):
            raise ValueError("index must be an int and input a str")
        attempts = int(data.get("attempts", 0))
        if "response" in data:
            return cls(index, digest, attempts, CollectedResponse.from_dict(data["response"]), None)
        return cls(index, digest, attempts, None, _error(data["error"]))


def _error(data: Mapping[str, Any]) -> LlmError:
    found = getattr(_errors, str(data.get("type")), None)
    cls = found if isinstance(found, type) and issubclass(found, LlmError) else LlmError
    message = str(data.get("message", ""))
    state = {
        "message": message,
        "provider": data.get("provider"),
        "model": data.get("model"),
        "status": data.get("status"),
        "body": None,
        "retryable": bool(data.get("retryable", False)),
    }
    # Built the way an unpickled error is: the subclasses' constructors take different keywords.
    return _errors._rebuild(cls, message, state)


class Checkpoint:
    """An open checkpoint file: what it held when opened, and appends of one line per ``write``.

    Format (one JSON object per line)::

        {"llm_sync_checkpoint": 1, "provider": "openai_compatible:m"}           first line
        {"index": 0, "input": "<hash>", "attempts": 1, "response": {...}}       CollectedResponse.to_dict()
        {"index": 1, "input": "<hash>", "attempts": 5,
         "error": {"type": "RateLimitedError", "message": "...", "status": 429, "retryable": true}}

    ``input`` is :func:`input_hash` of the item's context. A later line for the same index
    replaces an earlier one (a rerun appends the items it re-sent).
    """

    def __init__(self, path: Union[str, os.PathLike[str]], provider: str) -> None:
        self.path = os.fspath(path)
        self.provider = provider
        self.records: Dict[int, Record] = {}
        header, records = self._load()
        if header is not None and header.get("provider") not in (None, provider):
            raise ValueError(
                f"checkpoint {self.path} was written by a run on {header.get('provider')!r}, "
                f"and this run uses {provider!r}: its answers are not this model's. Pass a new "
                "checkpoint path (or delete the file to start over)"
            )
        for r in records:
            self.records[r.index] = r
        self._fd: Optional[int] = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if header is None:
            self._append(
                json.dumps({"llm_sync_checkpoint": _VERSION, "provider": provider}).encode() + b"\n"
            )

    def _load(self) -> Tuple[Optional[Dict[str, Any]], List[Record]]:
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None, []
        if data and not data.endswith(b"\n"):
            # The tail of a line cut off by a crash mid-write: drop it, so the next
            # append starts a fresh line. Its item counts as not finished.
            keep = data.rfind(b"\n") + 1
            os.truncate(self.path, keep)
            data = data[:keep]
        header: Optional[Dict[str, Any]] = None
        records: List[Record] = []
        for number, raw in enumerate(data.splitlines(), 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
                if number == 1 and isinstance(obj, dict) and "llm_sync_checkpoint" in obj:
                    header = obj
                    continue
                records.append(Record.parse(obj))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(
                    f"checkpoint {self.path}, line {number}, is not a run_many checkpoint record "
                    f"({type(exc).__name__}: {exc}); pass another path, or remove the line"
                ) from None
        return header, records

    def mismatches(self, hashes: Sequence[str]) -> List[int]:
        """Indices whose recorded input differs from this run's (records past the end are ignored)."""
        return [i for i, r in sorted(self.records.items()) if i < len(hashes) and r.input != hashes[i]]

    def write(self, record: Record) -> None:
        """Append ``record`` as one line, in one ``write`` on a file opened for appending."""
        self._append(record.line())

    def _append(self, line: bytes) -> None:
        fd = self._fd
        if fd is None:
            return
        # O_APPEND puts each write at the end of the file as one unit; a line is
        # written whole or (on a crash mid-write) cut short, and a cut tail is
        # dropped when the file is opened again.
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view) :]

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
