"""What ``Context.compact`` summarises and keeps: where the history is cut, and the request that summarises it."""

from __future__ import annotations

import json
from typing import Callable, List, Optional, Sequence, Tuple

from ._content import Text
from ._errors import ContextOverflowError
from ._inputs import describe
from ._messages import Assistant, ChatMessage, Error, Summary, System, ToolCallResultMessage, User
from ._tools import ToolCallError

__all__ = ["SUMMARY_INSTRUCTIONS", "compacted_count", "split_history", "summarise", "summary_request"]

#: The system prompt of the summary request.
SUMMARY_INSTRUCTIONS = (
    "You compact conversations. Below is the earlier part of a conversation between a user "
    "and an assistant that used tools. Write a summary that lets the assistant carry on "
    "without it: the user's goals and constraints, decisions made, facts learned (tool "
    "results included: names, numbers, identifiers, file paths), and open questions or next "
    "steps. Be complete but concise; write plain prose or short lists, and nothing else."
)


def split_history(messages: Sequence[ChatMessage], keep_last: int) -> Tuple[List[ChatMessage], List[ChatMessage]]:
    """``(older, kept)``: the messages to summarise and the last ``keep_last`` kept verbatim.

    System messages are in neither (they are kept apart). The cut never falls
    between an assistant turn's tool calls and their results: when the kept part
    would start with tool results, the turn that made the calls is kept too (so
    slightly more than ``keep_last`` may be kept).
    """
    rest = [m for m in messages if not isinstance(m, System)]
    cut = max(0, len(rest) - keep_last)
    while 0 < cut < len(rest) and isinstance(rest[cut], ToolCallResultMessage):
        cut -= 1
    return rest[:cut], rest[cut:]


def compacted_count(older: Sequence[ChatMessage]) -> int:
    """How many original messages ``older`` stands for (an earlier ``Summary`` counts its own)."""
    return sum(max(1, m.messages_compacted) if isinstance(m, Summary) else 1 for m in older)


def summary_request(older: Sequence[ChatMessage]) -> List[ChatMessage]:
    """The messages that ask a model to summarise ``older``: instructions, then a transcript.

    The transcript is plain text: the words, tool calls with their arguments, tool
    results and earlier summaries. Reasoning is left out, and with it the
    encrypted reasoning and signatures that only the model that wrote them may read
    back; images, audio and documents are named, not sent. A transcript needs no
    tool definitions and fits every provider's message rules.
    """
    return [System(SUMMARY_INSTRUCTIONS), User(transcript(older) + "\n\nWrite the summary now.")]


def summarise(ask: Callable[[List[ChatMessage]], str], older: Sequence[ChatMessage]) -> str:
    """A summary of ``older`` from ``ask`` (messages -> the model's answer), in portions when needed.

    One request when the transcript fits. When the model answers ``ContextOverflowError``,
    the messages are halved: the first half is summarised, then that summary and the
    next portion together, and so on, so a history many times the window is still
    summarised. A single message too large for the window raises the overflow.
    """
    return _fold(ask, None, list(older))


def _fold(ask: Callable[[List[ChatMessage]], str], before: Optional[str], rest: List[ChatMessage]) -> str:
    portion: List[ChatMessage] = [Summary(before)] if before is not None else []
    try:
        return ask(summary_request(portion + rest))
    except ContextOverflowError:
        if len(rest) < 2:
            raise
    mid = len(rest) // 2
    return _fold(ask, _fold(ask, before, rest[:mid]), rest[mid:])


def transcript(older: Sequence[ChatMessage]) -> str:
    """``older`` as a plain-text transcript, one entry per message."""
    lines: List[str] = ["<conversation>"]
    for m in older:
        if isinstance(m, User):
            parts = [b.text if isinstance(b, Text) else f"[{describe(b)}]" for b in m.content]
            lines.append("User: " + "\n".join(parts))
        elif isinstance(m, Assistant):
            if m.content:
                lines.append("Assistant: " + m.content)
            for call in m.tool_calls:
                lines.append(f"Assistant called tool {call.name} (call {call.id}) with arguments: {call.arguments or '{}'}")
        elif isinstance(m, ToolCallResultMessage):
            r = m.result
            if isinstance(r, ToolCallError):
                lines.append(f"Tool {r.name} (call {r.id}) failed: {r.error}")
            else:
                lines.append(f"Tool {r.name} (call {r.id}) returned: {r.result}")
        elif isinstance(m, Summary):
            lines.append("Summary of the conversation before this point: " + m.content)
        elif isinstance(m, Error):
            lines.append("Error noted: " + m.message)
        else:  # pragma: no cover - ChatMessage has exactly these variants (System is kept apart)
            lines.append(json.dumps(m.to_dict(), ensure_ascii=False))
    lines.append("</conversation>")
    return "\n\n".join(lines)
