"""The conversation history: ``ChatMessage`` and its variants, and an assistant turn's reasoning."""

from __future__ import annotations

import builtins
import dataclasses
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, Optional, Union

from ._content import ContentBlock
from ._content import Text as _TextBlock
from ._model import LlmModel
from ._tools import ToolCallError, ToolCallRequest
from ._tools import ToolCallResult as _ToolResult
from ._values import value

__all__ = ["AssistantReasoning", "ChatMessage", "EncryptedReasoningContent"]


# ---------------------------------------------------------------------------
# Timestamps: aware UTC datetimes in memory, RFC 3339 text on disk.

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?\s*(?:([Zz])|([+-])(\d{2}):?(\d{2}))"
)


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def parse_timestamp(text: str) -> datetime:
    """Parse RFC 3339 text (``Z`` or an offset; any number of fraction digits) into aware UTC."""
    # datetime.fromisoformat before 3.11 takes neither "Z" nor the nanoseconds the
    # reference crate writes (chrono's to_rfc3339), so parse by hand.
    m = _RFC3339.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    micro = int((m.group(7) or "0")[:6].ljust(6, "0"))
    if m.group(8):
        tz = timezone.utc
    else:
        offset = timedelta(hours=int(m.group(10)), minutes=int(m.group(11)))
        tz = timezone(-offset if m.group(9) == "-" else offset)
    # A leap second (":60") has no datetime; the next instant is the honest stand-in.
    leap = second == 60
    dt = datetime(year, month, day, hour, minute, 59 if leap else second, micro, tzinfo=tz)
    if leap:
        dt += timedelta(seconds=1)
    return dt.astimezone(timezone.utc)


def format_timestamp(dt: datetime) -> str:
    """RFC 3339 text, e.g. ``2026-04-28T10:21:14.123456+00:00``."""
    return dt.isoformat()


def _as_utc(owner: str, ts: object) -> datetime:
    if isinstance(ts, str):
        return parse_timestamp(ts)
    if not isinstance(ts, datetime):
        raise TypeError(f"{owner}.timestamp must be a datetime or RFC 3339 text, got {type(ts).__name__}")
    if ts.tzinfo is None or ts.utcoffset() is None:
        # A naive datetime could be local time or UTC; guessing would shift history by hours.
        raise ValueError(f"{owner}.timestamp must be timezone-aware (use datetime.now(timezone.utc))")
    return ts.astimezone(timezone.utc)


def _ts(data: Mapping[str, Any]) -> datetime:
    ts = data.get("timestamp")
    if ts is None:
        # Hand-written history often has no timestamps; "now" beats refusing to load it.
        return now()
    return parse_timestamp(ts) if isinstance(ts, str) else _as_utc("ChatMessage", ts)


def _utf8_len(s: str) -> int:
    return len(s) if s.isascii() else len(s.encode("utf-8"))


def _check_str(owner: str, name: str, v: object) -> None:
    if not isinstance(v, str):
        raise TypeError(f"{owner}.{name} must be str, got {type(v).__name__}")


# ---------------------------------------------------------------------------
# Reasoning carried by an assistant turn.


@value
class EncryptedReasoningContent:
    """Opaque reasoning state from ``model`` (``"provider:model_id"``); replay it to that model only."""

    id: str
    model: str
    content: str

    def __post_init__(self) -> None:
        # An LlmModel is accepted and kept as its "provider:model_id" text, the form
        # that is persisted and compared.
        model: object = self.model
        if not isinstance(model, str):
            object.__setattr__(self, "model", str(model))

    def is_for(self, model: Union[str, LlmModel]) -> bool:
        """True if this content came from ``model``."""
        return self.model == str(model)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "model": self.model, "content": self.content}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EncryptedReasoningContent:
        return cls(data["id"], data["model"], data["content"])


@value
class AssistantReasoning:
    """What an assistant turn thought: readable ``summary_text`` and/or opaque ``encrypted_content``."""

    summary_text: Optional[str] = None
    encrypted_content: Optional[EncryptedReasoningContent] = None

    @classmethod
    def from_parts(
        cls, summary_text: Optional[str], encrypted_content: Optional[EncryptedReasoningContent] = None
    ) -> AssistantReasoning:
        """Like the constructor, but an empty summary becomes None."""
        return cls(summary_text or None, encrypted_content)

    @property
    def is_empty(self) -> bool:
        return self.summary_text is None and self.encrypted_content is None

    def estimated_bytes(self) -> int:
        enc = self.encrypted_content
        return _utf8_len(self.summary_text or "") + (_utf8_len(enc.content) if enc is not None else 0)

    def to_dict(self) -> dict[str, Any]:
        """Absent parts are left out, so an empty reasoning is ``{}``."""
        out: dict[str, Any] = {}
        if self.summary_text is not None:
            out["summary_text"] = self.summary_text
        if self.encrypted_content is not None:
            out["encrypted_content"] = self.encrypted_content.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Optional[Mapping[str, Any]]) -> AssistantReasoning:
        if not data:
            return _NO_REASONING
        enc = data.get("encrypted_content")
        return cls(
            data.get("summary_text"),
            EncryptedReasoningContent.from_dict(enc) if enc is not None else None,
        )


_NO_REASONING = AssistantReasoning()


# ---------------------------------------------------------------------------
# Messages.


class ChatMessage:
    """Base of every message. The variants are attributes: ``ChatMessage.User`` and so on.

    Messages are immutable; lists given to them are stored as tuples. Every message
    has ``timestamp`` (aware UTC), None for ``ToolCallResult``.
    """

    __slots__ = ()

    type: ClassVar[str]
    timestamp: Optional[datetime]

    # The variants, bound below; declared here so type checkers see them.
    System: ClassVar[builtins.type[System]]
    User: ClassVar[builtins.type[User]]
    Assistant: ClassVar[builtins.type[Assistant]]
    ToolCallResult: ClassVar[builtins.type[ToolCallResultMessage]]
    Error: ClassVar[builtins.type[Error]]
    Summary: ClassVar[builtins.type[Summary]]

    @property
    def is_system(self) -> bool:
        return isinstance(self, System)

    @property
    def is_tool_result(self) -> bool:
        return isinstance(self, ToolCallResultMessage)

    @property
    def is_summary(self) -> bool:
        return isinstance(self, Summary)

    def estimated_bytes(self) -> int:
        """UTF-8 bytes of the text a model would read (ids and timestamps not counted)."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, the reference crate's shape: ``{"type": "user", ...}``."""
        raise NotImplementedError

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> ChatMessage:
        """Inverse of :meth:`to_dict`."""
        kind = data.get("type")
        if kind == "system":
            return System(data["content"], _ts(data))
        if kind == "user":
            content = data["content"]
            blocks = content if isinstance(content, str) else [ContentBlock.from_dict(b) for b in content]
            return User(blocks, _ts(data))
        if kind == "assistant":
            return Assistant(
                data.get("content", ""),
                AssistantReasoning.from_dict(data.get("reasoning")),
                _ts(data),
                [ToolCallRequest.from_dict(t) for t in data.get("tool_calls") or ()],
            )
        if kind == "toolCallResult":
            if "Ok" in data:
                return ToolCallResultMessage(_ToolResult.from_dict(data["Ok"]))
            if "Err" in data:
                return ToolCallResultMessage(ToolCallError.from_dict(data["Err"]))
            raise ValueError("a toolCallResult message needs an 'Ok' or an 'Err' entry")
        if kind == "error":
            return Error(data["message"], _ts(data))
        if kind == "summary":
            return Summary(data["content"], _ts(data), int(data.get("messages_compacted", 0)))
        raise ValueError(f"unknown ChatMessage type {kind!r}; expected one of {sorted(_BY_TYPE)}")


@value
class System(ChatMessage):
    """The system prompt."""

    type: ClassVar[str] = "system"
    content: str
    timestamp: datetime = dataclasses.field(default_factory=now)

    def __post_init__(self) -> None:
        _check_str("ChatMessage.System", "content", self.content)
        object.__setattr__(self, "timestamp", _as_utc("ChatMessage.System", self.timestamp))

    def estimated_bytes(self) -> int:
        return _utf8_len(self.content)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "content": self.content, "timestamp": format_timestamp(self.timestamp)}


@value
class User(ChatMessage):
    """What the user said: text, or a sequence of content blocks (text, images, audio)."""

    type: ClassVar[str] = "user"
    content: tuple[ContentBlock, ...]
    timestamp: datetime

    def __init__(
        self, content: Union[str, Iterable[ContentBlock]], timestamp: Union[datetime, str, None] = None
    ) -> None:
        if isinstance(content, str):
            blocks: tuple[ContentBlock, ...] = (_TextBlock(content),)
        else:
            blocks = tuple(content)
            for b in blocks:
                if not isinstance(b, ContentBlock):
                    raise TypeError(
                        f"ChatMessage.User.content must hold ContentBlocks, got {type(b).__name__}"
                    )
        object.__setattr__(self, "content", blocks)
        object.__setattr__(
            self, "timestamp", now() if timestamp is None else _as_utc("ChatMessage.User", timestamp)
        )

    @property
    def text(self) -> str:
        """The text blocks joined with newlines."""
        return "\n".join(b.text for b in self.content if isinstance(b, _TextBlock))

    def estimated_bytes(self) -> int:
        return sum(b.estimated_bytes() for b in self.content)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "content": [b.to_dict() for b in self.content],
            "timestamp": format_timestamp(self.timestamp),
        }


@value
class Assistant(ChatMessage):
    """A model's turn: its text, its reasoning and the tool calls it made."""

    type: ClassVar[str] = "assistant"
    content: str
    reasoning: AssistantReasoning
    timestamp: datetime
    tool_calls: tuple[ToolCallRequest, ...]

    def __init__(
        self,
        content: str = "",
        reasoning: Optional[AssistantReasoning] = None,
        timestamp: Union[datetime, str, None] = None,
        tool_calls: Iterable[ToolCallRequest] = (),
    ) -> None:
        _check_str("ChatMessage.Assistant", "content", content)
        if reasoning is None:
            reasoning = _NO_REASONING
        elif not isinstance(reasoning, AssistantReasoning):
            raise TypeError(
                f"ChatMessage.Assistant.reasoning must be an AssistantReasoning, got {type(reasoning).__name__}"
            )
        calls = tuple(tool_calls)
        for c in calls:
            if not isinstance(c, ToolCallRequest):
                raise TypeError(
                    f"ChatMessage.Assistant.tool_calls must hold ToolCallRequests, got {type(c).__name__}"
                )
        object.__setattr__(self, "content", content)
        object.__setattr__(self, "reasoning", reasoning)
        object.__setattr__(
            self, "timestamp", now() if timestamp is None else _as_utc("ChatMessage.Assistant", timestamp)
        )
        object.__setattr__(self, "tool_calls", calls)

    def estimated_bytes(self) -> int:
        return (
            _utf8_len(self.content)
            + self.reasoning.estimated_bytes()
            + sum(_utf8_len(c.name) + _utf8_len(c.arguments) for c in self.tool_calls)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "content": self.content,
            "reasoning": self.reasoning.to_dict(),
            "timestamp": format_timestamp(self.timestamp),
            "tool_calls": [c.to_dict() for c in self.tool_calls],
        }


@value
class ToolCallResultMessage(ChatMessage):
    """The outcome of one tool call: a ``ToolCallResult`` or a ``ToolCallError``."""

    type: ClassVar[str] = "toolCallResult"
    result: Union[_ToolResult, ToolCallError]
    # Not part of the message (the crate has none here); always None, so code can
    # read ``msg.timestamp`` on any message.
    timestamp: Optional[datetime] = dataclasses.field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.result, (_ToolResult, ToolCallError)):
            raise TypeError(
                "ChatMessage.ToolCallResult.result must be a ToolCallResult or a ToolCallError, "
                f"got {type(self.result).__name__}"
            )

    @property
    def is_error(self) -> bool:
        return isinstance(self.result, ToolCallError)

    def estimated_bytes(self) -> int:
        return self.result.estimated_bytes()

    def to_dict(self) -> dict[str, Any]:
        # serde's shape for an internally tagged newtype around a Result.
        return {"type": self.type, ("Err" if self.is_error else "Ok"): self.result.to_dict()}


@value
class Error(ChatMessage):
    """An error recorded in the history."""

    type: ClassVar[str] = "error"
    message: str
    timestamp: datetime = dataclasses.field(default_factory=now)

    def __post_init__(self) -> None:
        _check_str("ChatMessage.Error", "message", self.message)
        object.__setattr__(self, "timestamp", _as_utc("ChatMessage.Error", self.timestamp))

    def estimated_bytes(self) -> int:
        return _utf8_len(self.message)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message, "timestamp": format_timestamp(self.timestamp)}


@value
class Summary(ChatMessage):
    """A summary standing in for ``messages_compacted`` earlier messages."""

    type: ClassVar[str] = "summary"
    content: str
    timestamp: datetime = dataclasses.field(default_factory=now)
    messages_compacted: int = 0

    def __post_init__(self) -> None:
        _check_str("ChatMessage.Summary", "content", self.content)
        if isinstance(self.messages_compacted, bool) or not isinstance(self.messages_compacted, int):
            raise TypeError("ChatMessage.Summary.messages_compacted must be an int")
        if self.messages_compacted < 0:
            raise ValueError("ChatMessage.Summary.messages_compacted must not be negative")
        object.__setattr__(self, "timestamp", _as_utc("ChatMessage.Summary", self.timestamp))

    def estimated_bytes(self) -> int:
        return _utf8_len(self.content)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "content": self.content,
            "timestamp": format_timestamp(self.timestamp),
            "messages_compacted": self.messages_compacted,
        }


_VARIANTS: tuple[builtins.type[ChatMessage], ...] = (
    System,
    User,
    Assistant,
    ToolCallResultMessage,
    Error,
    Summary,
)
_BY_TYPE: dict[str, builtins.type[ChatMessage]] = {c.type: c for c in _VARIANTS}
ToolCallResultMessage.__name__ = "ToolCallResult"
for _c in _VARIANTS:
    setattr(ChatMessage, _c.__name__, _c)
    _c.__qualname__ = f"ChatMessage.{_c.__name__}"
del _c
