"""The turn kit: the bookkeeping every parser shares, so each keeps only its event dispatch.

A parser reads its provider's events and tells a :class:`Turn` what happened: the
turn started, a tool call opened, an argument piece arrived, the call closed, the
usage so far, how the turn ended. The turn answers with the chunks to yield, and
holds the rules every provider must keep:

- ``Start`` once, first; ``Done`` once, last; the final ``Usage`` once, just before it;
- the ``ToolRequestArg`` chunks of a call concatenate to exactly its
  ``ToolRequestComplete.tool_call.arguments``, also when the arguments arrive whole;
- every ``ToolRequestStart`` is followed by its ``ToolRequestComplete``, except a call
  whose arguments a length limit cut off (``Done`` then says ``LENGTH``);
- a turn that made calls and ended normally ends with ``StopReason.TOOL_CALLS``.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any, Callable, Dict, Hashable, List, Mapping, Optional, Tuple

from .._errors import JsonParsingError
from .._json import loads_event
from .._reported import current
from .._response import (
    Done,
    EncryptedReasoning,
    LlmResponse,
    Start,
    StopReason,
    ToolRequestComplete,
    ToolRequestStart,
    Usage,
    tool_arg,
)
from .._tools import ToolCallRequest

if TYPE_CHECKING:
    from .._transport._frame import Frame

__all__ = [
    "ANSWER_ROOM",
    "CLAUDE_STRUCTURED",
    "HANDOFF_PREFIX",
    "OVERFLOW_HINT",
    "THINKING_BUDGETS",
    "OpenCall",
    "ToolCalls",
    "Turn",
    "claude_version",
    "count",
    "decode_event",
    "new_id",
    "stop_reason",
]

#: Put before a ``ChatMessage.Summary`` sent as a user message.
HANDOFF_PREFIX = "[Previous conversation handoff]\n\n"
#: Claude's ``thinking.budget_tokens`` per reasoning effort (the reference crate's numbers).
THINKING_BUDGETS: Dict[str, int] = {"low": 1024, "medium": 4096, "high": 10240, "xhigh": 10240}
#: Room for the answer itself when max_tokens would not exceed a thinking budget.
ANSWER_ROOM = 1024
#: What to do about a context overflow, appended to its message.
OVERFLOW_HINT = (
    "shorten the conversation (Context.with_compacted_summary) or use a model with a larger window"
)
#: The first Claude version with structured outputs (a JSON-schema reply format and
#: strict tools), on Anthropic's API and on Bedrock alike.
CLAUDE_STRUCTURED = (4, 5)
_CLAUDE_FAMILIES = frozenset({"opus", "sonnet", "haiku"})


def claude_version(model: str) -> Optional[Tuple[int, int]]:
    """``(major, minor)`` of a Claude model id, Anthropic's or Bedrock's; None when it is not one.

    Both spellings: ``claude-sonnet-4-5[-date]`` and the older ``claude-3-7-sonnet[-date]``,
    with any prefix (``us.anthropic.``) and suffix (``-v1:0``, Vertex's ``@20250929``); a
    date is not a minor version.
    """
    at = model.lower().find("claude-")
    if at < 0:
        return None
    parts = model.lower()[at + 7 :].split("@")[0].split("-")
    if parts and parts[0] in _CLAUDE_FAMILIES:
        parts = parts[1:]
    if not parts or not parts[0].isdigit() or len(parts[0]) > 2:
        return None
    minor = parts[1] if len(parts) > 1 and parts[1].isdigit() and len(parts[1]) <= 2 else "0"
    return int(parts[0]), int(minor)


def new_id(prefix: str) -> str:
    """A fresh id for a response or call the provider left unnamed: ``prefix`` + 32 hex digits."""
    return prefix + uuid.uuid4().hex


def count(v: Any) -> Optional[int]:
    """A token count from a provider's usage field: None when absent or not a number, never negative.

    Numbers given as digit strings are read (some gateways send them); negative counts
    (OpenRouter has sent them) become 0.
    """
    if v is None or isinstance(v, bool):
        return None
    try:
        n = int(v)
    except (TypeError, ValueError, OverflowError):
        return None
    return n if n > 0 else 0


def decode_event(frame: Frame) -> Dict[str, Any]:
    """The JSON object a frame carries, or :class:`JsonParsingError` naming the event and showing its start."""
    data = frame.data
    try:
        obj = loads_event(data)
    except ValueError as exc:
        raise JsonParsingError(f"{_event(frame)} is not valid JSON ({exc}): {data[:200]!r}") from None
    if obj.__class__ is not dict:
        raise JsonParsingError(f"{_event(frame)} is JSON but not an object: {data[:200]!r}")
    return obj


def _event(frame: Frame) -> str:
    return f"the {frame.event!r} event" if frame.event else "an event"


def stop_reason(raw: Optional[str], table: Mapping[str, StopReason]) -> StopReason:
    """The provider's stop word mapped by ``table``; a word it lacks (or none) is ``UNKNOWN``."""
    return table.get(raw, StopReason.UNKNOWN) if raw else StopReason.UNKNOWN


def _parses(arguments: str) -> bool:
    if not arguments.strip():
        return True  # a call without arguments
    try:
        json.loads(arguments)
    except ValueError:
        return False
    return True


class OpenCall:
    """A tool call still streaming: read its fields, change it only through :class:`ToolCalls`."""

    __slots__ = ("id", "name", "parts", "started")

    def __init__(self, id: str, name: Optional[str]) -> None:
        self.id = id
        self.name = name
        self.parts: List[str] = []
        #: Its ToolRequestStart went out (it has a name).
        self.started = False

    def arguments(self) -> str:
        return "".join(self.parts)


class ToolCalls:
    """The tool calls of one turn as they stream, keyed however the provider keys them.

    ``open`` a call under a key (its name may come later, with ``name``), ``add``
    argument pieces, ``close`` it (with the whole arguments when the provider gives
    them at the end), and ``end`` the turn. Pieces that arrive before the name are
    held and sent after its ``ToolRequestStart``. A closed call whose arguments do
    not parse waits for the end of the turn: cut off by a length limit it gets no
    ``ToolRequestComplete``; otherwise it is completed with its text as streamed.
    """

    __slots__ = ("_open", "_held", "completed")

    def __init__(self) -> None:
        self._open: Dict[Hashable, OpenCall] = {}  # insertion order is start order
        self._held: List[OpenCall] = []
        #: How many calls this turn completed.
        self.completed = 0

    @property
    def pending(self) -> bool:
        """True while some call is open."""
        return bool(self._open)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._open

    def last_key(self) -> Optional[Hashable]:
        """The key of the call opened last and still open."""
        return next(reversed(self._open)) if self._open else None

    def open(self, key: Hashable, id: str, name: Optional[str]) -> List[LlmResponse]:
        """Start a call under ``key`` (a call still open under it is closed first)."""
        out = self.close(key) if key in self._open else []
        call = self._open[key] = OpenCall(id, name or None)
        if call.name is not None:
            call.started = True
            out.append(ToolRequestStart(id, call.name))
        return out

    def get(self, key: Hashable) -> Optional[OpenCall]:
        """The open call under ``key``, if any."""
        return self._open.get(key)

    def name(self, key: Hashable, name: str) -> List[LlmResponse]:
        """Give an open call its late name: its ``ToolRequestStart`` and the pieces held for it."""
        call = self._open.get(key)
        if call is None or call.started or not name:
            return []
        return self._start_late(call, name)

    def rename(self, key: Hashable, id: str) -> None:
        """Give an open call the provider's id, while nothing went out under the made-up one."""
        call = self._open.get(key)
        if call is not None and not call.started:
            call.id = id

    def add(self, key: Hashable, piece: str) -> Optional[LlmResponse]:
        """One argument piece: its ``ToolRequestArg``, or None (empty, unknown key, or held for the name)."""
        call = self._open.get(key)
        if call is None or not piece:
            return None
        call.parts.append(piece)
        return tool_arg(call.id, piece) if call.started else None

    def close(
        self, key: Hashable, whole: Optional[str] = None, *, name: Optional[str] = None
    ) -> List[LlmResponse]:
        """Finish the call under ``key``; ``whole`` is the complete arguments when the provider sends them.

        Arguments that arrived only whole are streamed as one piece first. When pieces
        were streamed and ``whole`` extends them, the rest is streamed; when it
        disagrees with them, the pieces the caller already has stand.
        """
        call = self._open.pop(key, None)
        if call is None:
            return []
        out: List[LlmResponse] = []
        if name and call.name is None:
            out.extend(self._start_late(call, name))
        if call.name is None:
            return out  # arguments without a function name cannot be called
        if whole:
            streamed = "".join(call.parts)
            if whole != streamed and whole.startswith(streamed):
                rest = whole[len(streamed) :]
                call.parts.append(rest)
                out.append(tool_arg(call.id, rest))
        if _parses("".join(call.parts)):
            out.append(self._complete(call))
        else:
            self._held.append(call)  # decided at the end of the turn
        return out

    def _start_late(self, call: OpenCall, name: str) -> List[LlmResponse]:
        call.name = name
        call.started = True
        out: List[LlmResponse] = [ToolRequestStart(call.id, name)]
        if call.parts:
            out.append(tool_arg(call.id, "".join(call.parts)))
        return out

    def _complete(self, call: OpenCall) -> LlmResponse:
        self.completed += 1
        assert call.name is not None
        return ToolRequestComplete(ToolCallRequest(call.id, call.name, "".join(call.parts)))

    def close_all(self) -> List[LlmResponse]:
        """Close every open call, in the order they started."""
        out: List[LlmResponse] = []
        for key in list(self._open):
            out.extend(self.close(key))
        return out

    def end(self, *, cut: bool) -> List[LlmResponse]:
        """The turn is over: close what is open; calls that do not parse are dropped if ``cut``."""
        out = self.close_all()
        held, self._held = self._held, []
        if not cut:
            # Not cut off: the model's own (unparseable) text, passed on as streamed.
            out.extend(self._complete(call) for call in held)
        return out


class Turn:
    """One streamed turn: whether it started, its tool calls, and what goes out at its end."""

    __slots__ = ("started", "message_id", "calls", "usage", "so_far", "encrypted")

    def __init__(self) -> None:
        self.started = False
        self.message_id = ""
        self.calls = ToolCalls()
        #: The latest usage the provider reported; sent once, at the end.
        self.usage: Optional[Usage] = None
        #: Reads the usage reported so far while ``usage`` is not set yet: a parser
        #: that keeps its provider's raw counts as they come sets it once, so that
        #: ``stream.partial()`` of a cancelled turn has them (see :meth:`usage_so_far`).
        self.so_far: Optional[Callable[[], Optional[Usage]]] = None
        #: Opaque reasoning to replay (signatures, encrypted items); sent at the end.
        self.encrypted: Optional[EncryptedReasoning] = None
        box = current()
        if box is not None:
            # On a stream's reader thread: the stream's partial() asks this turn.
            box.so_far = self.usage_so_far

    def usage_so_far(self) -> Optional[Usage]:
        """What the provider reported so far: ``usage`` once set, else what ``so_far`` reads, else None."""
        if self.usage is not None:
            return self.usage
        read = self.so_far
        return read() if read is not None else None

    def start(self, message_id: Optional[str], prefix: str, model: Any = None) -> Start:
        """The turn's ``Start``, with the provider's id or a made-up ``prefix...`` one, and the model that answers."""
        self.started = True
        self.message_id = message_id if isinstance(message_id, str) and message_id else new_id(prefix)
        return Start(self.message_id, model if isinstance(model, str) and model else None)

    def end(self, stop: StopReason, raw: Optional[str]) -> List[LlmResponse]:
        """The last chunks: open calls closed, encrypted reasoning, the usage, and ``Done``.

        A turn that completed calls and ended normally (or gave no word) stops with
        ``TOOL_CALLS``: several providers say "stop" after calls, and the caller has
        results to send back either way.
        """
        out = self.calls.end(cut=stop is StopReason.LENGTH)
        if self.calls.completed and (
            stop is StopReason.END_TURN or (raw is None and stop is StopReason.UNKNOWN)
        ):
            stop = StopReason.TOOL_CALLS
        if self.encrypted is not None:
            out.append(self.encrypted)
        if self.usage is not None:
            out.append(self.usage)
        out.append(Done(stop, raw))
        return out
