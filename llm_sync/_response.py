"""The chunks a stream yields (``LlmResponse`` and its variants) and why a turn stopped."""

from __future__ import annotations

import builtins
import dataclasses
import enum
from typing import Any, ClassVar, Optional, Union

from ._tools import ToolCallRequest
from ._values import value

__all__ = ["LlmResponse", "StopReason", "TokenUsage"]


class StopReason(str, enum.Enum):
    """Why the model stopped; ``Done.raw_stop_reason`` keeps the provider's own word."""

    END_TURN = "end_turn"
    LENGTH = "length"
    TOOL_CALLS = "tool_calls"
    CONTENT_FILTER = "content_filter"
    FUNCTION_CALL = "function_call"
    ERROR = "error"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value


class LlmResponse:
    """Base of every chunk. The variants are attributes: ``LlmResponse.Text`` and so on.

    Order on success: ``Start`` first, ``Done`` last, each exactly once, with one
    ``Usage`` (the final totals) just before ``Done`` when the provider reports usage.
    """

    __slots__ = ()

    type: ClassVar[str]

    # The variants, bound below; declared here so type checkers see them.
    Start: ClassVar[builtins.type[Start]]
    Text: ClassVar[builtins.type[Text]]
    Reasoning: ClassVar[builtins.type[Reasoning]]
    EncryptedReasoning: ClassVar[builtins.type[EncryptedReasoning]]
    ToolRequestStart: ClassVar[builtins.type[ToolRequestStart]]
    ToolRequestArg: ClassVar[builtins.type[ToolRequestArg]]
    ToolRequestComplete: ClassVar[builtins.type[ToolRequestComplete]]
    Usage: ClassVar[builtins.type[Usage]]
    Done: ClassVar[builtins.type[Done]]
    Error: ClassVar[builtins.type[Error]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form: ``{"type": "<variant>", ...fields}``."""
        out: dict[str, Any] = {"type": self.type}
        for name in self.__match_args__:  # type: ignore[attr-defined]
            out[name] = getattr(self, name)
        return out

    @staticmethod
    def from_dict(data: dict[str, Any]) -> LlmResponse:
        """Inverse of :meth:`to_dict`."""
        kind = data.get("type")
        cls = _BY_TYPE.get(kind)  # type: ignore[arg-type]
        if cls is None:
            raise ValueError(f"unknown LlmResponse type {kind!r}; expected one of {sorted(_BY_TYPE)}")
        fields = {k: v for k, v in data.items() if k != "type"}
        if cls is ToolRequestComplete:
            fields["tool_call"] = ToolCallRequest.from_dict(fields["tool_call"])
        elif cls is Done:
            if fields.get("stop_reason") is not None:
                fields["stop_reason"] = StopReason(fields["stop_reason"])
        return cls(**fields)


@value
class Start(LlmResponse):
    """The response began; ``message_id`` is the provider's id when it gives one.

    ``model`` is the model the provider says answered (``gpt-4o-2024-08-06`` for a
    request to ``gpt-4o``), when it says; it is metadata for instrumentation, left
    out of equality, ``repr`` and ``to_dict``.
    """

    __match_args__ = ("message_id",)
    type: ClassVar[str] = "start"
    message_id: str
    model: Optional[str] = dataclasses.field(default=None, compare=False, repr=False)


@value
class Text(LlmResponse):
    """A piece of the visible answer."""

    type: ClassVar[str] = "text"
    chunk: str


@value
class Reasoning(LlmResponse):
    """A piece of the model's thinking (or its summary)."""

    type: ClassVar[str] = "reasoning"
    chunk: str


@value
class EncryptedReasoning(LlmResponse):
    """Opaque reasoning state (a signature, an encrypted item): replay it to the same model only."""

    type: ClassVar[str] = "encryptedReasoning"
    id: str
    content: str


@value
class ToolRequestStart(LlmResponse):
    """The model began a tool call."""

    type: ClassVar[str] = "toolRequestStart"
    id: str
    name: str


@value
class ToolRequestArg(LlmResponse):
    """A piece of a tool call's JSON arguments, as streamed."""

    type: ClassVar[str] = "toolRequestArg"
    id: str
    chunk: str


@value
class ToolRequestComplete(LlmResponse):
    """A tool call is complete; ``tool_call.arguments`` is the whole JSON text."""

    type: ClassVar[str] = "toolRequestComplete"
    tool_call: ToolCallRequest

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "tool_call": self.tool_call.to_dict()}


@value
class Usage(LlmResponse):
    """Token counts for the turn; the same meaning for every provider.

    ``input_tokens`` counts every prompt token, cached ones included;
    ``cached_input_tokens`` (cache reads) and ``cache_creation_tokens`` (cache
    writes) are parts of it. ``reasoning_tokens`` is part of ``output_tokens``.
    """

    type: ClassVar[str] = "usage"
    input_tokens: int
    output_tokens: int
    cached_input_tokens: Optional[int] = None
    cache_creation_tokens: Optional[int] = None
    reasoning_tokens: Optional[int] = None
    input_audio_tokens: Optional[int] = None
    input_video_tokens: Optional[int] = None
    output_audio_tokens: Optional[int] = None
    accepted_prediction_tokens: Optional[int] = None
    rejected_prediction_tokens: Optional[int] = None

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


TokenUsage = Usage
"""The crate's name for the usage record; the same class as ``LlmResponse.Usage``."""


@value
class Done(LlmResponse):
    """The response is complete."""

    type: ClassVar[str] = "done"
    stop_reason: Optional[StopReason] = None
    raw_stop_reason: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "stop_reason": self.stop_reason.value if self.stop_reason is not None else None,
            "raw_stop_reason": self.raw_stop_reason,
        }


@value
class Error(LlmResponse):
    """An error recorded as a chunk (for fakes and consumers; providers raise instead)."""

    type: ClassVar[str] = "error"
    message: str


_VARIANTS = (
    Start,
    Text,
    Reasoning,
    EncryptedReasoning,
    ToolRequestStart,
    ToolRequestArg,
    ToolRequestComplete,
    Usage,
    Done,
    Error,
)
_BY_TYPE: dict[str, type[LlmResponse]] = {c.type: c for c in _VARIANTS}
for _c in _VARIANTS:
    setattr(LlmResponse, _c.__name__, _c)
    _c.__qualname__ = f"LlmResponse.{_c.__name__}"
del _c

AnyChunk = Union[
    Start, Text, Reasoning, EncryptedReasoning, ToolRequestStart, ToolRequestArg, ToolRequestComplete, Usage, Done, Error
]

# ---------------------------------------------------------------------------
# Fast constructors for the per-chunk hot path. A frozen dataclass's generated
# __init__ costs ~0.4 us (one object.__setattr__ call per field through a global);
# these build the same immutable objects in about a third of that.

_new = object.__new__
_set = object.__setattr__


def text(chunk: str) -> Text:
    o = _new(Text)
    _set(o, "chunk", chunk)
    return o


def reasoning(chunk: str) -> Reasoning:
    o = _new(Reasoning)
    _set(o, "chunk", chunk)
    return o


def tool_arg(id: str, chunk: str) -> ToolRequestArg:
    o = _new(ToolRequestArg)
    _set(o, "id", id)
    _set(o, "chunk", chunk)
    return o
