"""A conversation to send to a model: ``Context`` (messages, tools and per-request settings)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Optional, Union

from ._compact import compacted_count, split_history, summarise
from ._errors import ApiError
from ._messages import Assistant as _Assistant
from ._messages import (
    AssistantReasoning,
    ChatMessage,
    ToolCallResultMessage,
    now,
)
from ._messages import Summary as _Summary
from ._model import LlmModel
from ._reasoning import ReasoningEffort
from ._structured import OutputSchema
from ._tools import ToolCallError, ToolCallRequest, ToolCallResult, ToolDefinition

if TYPE_CHECKING:
    from .providers._base import StreamingModelProvider

__all__ = ["Context"]

# The reference crate returns a u32 and saturates.
_MAX_TOKENS = 2**32 - 1


def _messages(items: Iterable[ChatMessage]) -> list[ChatMessage]:
    out = list(items)
    for m in out:
        if not isinstance(m, ChatMessage):
            raise TypeError(f"Context messages must be ChatMessages, got {type(m).__name__}")
    return out


def _tools(items: Iterable[ToolDefinition]) -> list[ToolDefinition]:
    out = list(items)
    for t in out:
        if not isinstance(t, ToolDefinition):
            raise TypeError(f"Context tools must be ToolDefinitions, got {type(t).__name__}")
    return out


def _effort(effort: Union[ReasoningEffort, str, None]) -> Optional[ReasoningEffort]:
    if effort is None or isinstance(effort, ReasoningEffort):
        return effort
    if isinstance(effort, str):
        return ReasoningEffort.parse(effort)
    raise TypeError(f"reasoning effort must be a ReasoningEffort, a str or None, got {type(effort).__name__}")


def _output_schema(schema: Optional[OutputSchema]) -> Optional[OutputSchema]:
    if schema is not None and not isinstance(schema, OutputSchema):
        raise TypeError(f"output_schema must be an OutputSchema or None, got {type(schema).__name__}")
    return schema


def _tool_choice(choice: Optional[str]) -> Optional[str]:
    if choice is None:
        return None
    if not isinstance(choice, str) or not choice:
        raise TypeError(
            f"tool_choice must be 'auto', 'none', 'required', a tool's name or None, got {choice!r}"
        )
    return choice


class Context:
    """The messages, tools and settings for one request; the caller owns and mutates it.

    A provider snapshots the context when a stream starts (:meth:`copy`), so changing
    it afterwards never affects a stream in flight. Not locked: share one between
    threads only with your own lock.

    Structured output and tool control (:meth:`set_output_schema`,
    :meth:`set_tool_choice`) are settings like the others: kept by :meth:`copy`,
    :meth:`to_dict` and equality, and checked against the provider when a request is
    built (a provider that cannot carry one raises ``ApiRequestError`` before sending).
    """

    def __init__(
        self,
        messages: Iterable[ChatMessage] = (),
        tools: Iterable[ToolDefinition] = (),
        *,
        reasoning_effort: Union[ReasoningEffort, str, None] = None,
        prompt_cache_key: Optional[str] = None,
        output_schema: Optional[OutputSchema] = None,
        tool_choice: Optional[str] = None,
    ) -> None:
        self._messages = _messages(messages)
        self._tools = _tools(tools)
        self._reasoning_effort = _effort(reasoning_effort)
        self._prompt_cache_key = prompt_cache_key
        self._output_schema = _output_schema(output_schema)
        self._tool_choice = _tool_choice(tool_choice)

    # -- reading ---------------------------------------------------------------

    @property
    def messages(self) -> tuple[ChatMessage, ...]:
        return tuple(self._messages)

    @property
    def tools(self) -> tuple[ToolDefinition, ...]:
        return tuple(self._tools)

    @property
    def reasoning_effort(self) -> Optional[ReasoningEffort]:
        return self._reasoning_effort

    @property
    def prompt_cache_key(self) -> Optional[str]:
        return self._prompt_cache_key

    @property
    def output_schema(self) -> Optional[OutputSchema]:
        """The schema the reply must match (:meth:`set_output_schema`), or None."""
        return self._output_schema

    @property
    def tool_choice(self) -> Optional[str]:
        """``"auto"``, ``"none"``, ``"required"``, a tool's name, or None (the provider's default)."""
        return self._tool_choice

    @property
    def message_count(self) -> int:
        return len(self._messages)

    def estimated_token_count(self) -> int:
        """A rough token count: UTF-8 bytes of messages and tools, divided by 4."""
        total = sum(m.estimated_bytes() for m in self._messages)
        total += sum(t.estimated_bytes() for t in self._tools)
        return min(total // 4, _MAX_TOKENS)

    def messages_for_summary(self) -> tuple[ChatMessage, ...]:
        """Every message but the system prompts: what a summary has to cover."""
        return tuple(m for m in self._messages if not m.is_system)

    # -- changing --------------------------------------------------------------

    def add_message(self, message: ChatMessage) -> None:
        if not isinstance(message, ChatMessage):
            raise TypeError(f"add_message takes a ChatMessage, got {type(message).__name__}")
        self._messages.append(message)

    def set_tools(self, tools: Iterable[ToolDefinition]) -> None:
        self._tools = _tools(tools)

    def set_reasoning_effort(self, effort: Union[ReasoningEffort, str, None]) -> None:
        """Set the effort; None leaves it to the provider. ``"none"`` and ``""`` mean None."""
        self._reasoning_effort = _effort(effort)

    def set_prompt_cache_key(self, key: Optional[str]) -> None:
        if key is not None and not isinstance(key, str):
            raise TypeError(f"prompt cache key must be str or None, got {type(key).__name__}")
        self._prompt_cache_key = key

    def set_output_schema(
        self,
        schema: Union[str, bytes, Mapping[str, Any], None],
        name: str = "output",
        strict: bool = True,
    ) -> None:
        """Ask for a reply that is JSON matching ``schema`` (a dict or JSON text); None clears it.

        The schema is checked now: one that is not a valid JSON Schema raises
        ``OutputSchemaError`` naming the path in it. Each provider sends it in its own
        structured-output field, or as a forced tool where it has none (the answer
        still arrives as text); ``stream.collect().parsed`` is the validated value.
        ``name`` and ``strict`` go where the provider takes them (OpenAI's
        ``json_schema``).
        """
        self._output_schema = None if schema is None else OutputSchema(name, schema, strict)

    def set_tool_choice(self, choice: Optional[str]) -> None:
        """Whether and which tool the model must call: ``"auto"``, ``"none"``, ``"required"`` or a tool's name.

        None leaves it to the provider (``"auto"`` everywhere). A tool's name is
        checked when a request is built, not here (tools and choice may be set in
        either order): one that names no tool of the context then raises
        ``ApiRequestError`` before anything is sent, as does a choice the provider
        cannot express. The three words win over tools of the same name.
        """
        self._tool_choice = _tool_choice(choice)

    def push_assistant_turn(
        self,
        content: str,
        reasoning: Optional[AssistantReasoning] = None,
        completed_tools: Iterable[Union[ToolCallResult, ToolCallError]] = (),
    ) -> None:
        """Append an assistant turn and the results of its tool calls, in the given order.

        The assistant message's ``tool_calls`` are rebuilt from the results, so the
        two can never disagree.
        """
        results = list(completed_tools)
        calls = []
        for r in results:
            if not isinstance(r, (ToolCallResult, ToolCallError)):
                raise TypeError(f"completed_tools must hold ToolCallResult or ToolCallError, got {type(r).__name__}")
            calls.append(ToolCallRequest(r.id, r.name, r.arguments or ""))
        self._messages.append(_Assistant(content, reasoning, now(), calls))
        self._messages.extend(ToolCallResultMessage(r) for r in results)

    def clear_conversation(self) -> None:
        """Drop every message except the system prompts."""
        self._messages = [m for m in self._messages if m.is_system]

    # -- deriving --------------------------------------------------------------

    def copy(self) -> Context:
        """A snapshot: later changes to either side do not show in the other."""
        # Messages and tools are immutable, so copying the lists is a full snapshot.
        return Context(
            self._messages,
            self._tools,
            reasoning_effort=self._reasoning_effort,
            prompt_cache_key=self._prompt_cache_key,
            output_schema=self._output_schema,
            tool_choice=self._tool_choice,
        )

    __copy__ = copy

    def filter_encrypted_reasoning(self, model: Union[str, LlmModel]) -> Context:
        """A copy without encrypted reasoning from models other than ``model``.

        Encrypted reasoning is opaque state only the model that wrote it can read;
        another model rejects it. Summary text is kept.
        """
        target = str(model)
        out = self.copy()
        kept: list[ChatMessage] = []
        for m in out._messages:
            if isinstance(m, _Assistant):
                enc = m.reasoning.encrypted_content
                if enc is not None and enc.model != target:
                    m = _Assistant(
                        m.content,
                        AssistantReasoning(m.reasoning.summary_text, None),
                        m.timestamp,
                        m.tool_calls,
                    )
            kept.append(m)
        out._messages = kept
        return out

    def with_compacted_summary(self, summary: str) -> Context:
        """A new context: the system prompts, then one ``Summary`` of everything else.

        Tools and every setting are kept. Without anything to compact no ``Summary``
        is added.
        """
        systems = [m for m in self._messages if m.is_system]
        compacted = len(self._messages) - len(systems)
        out = Context(
            systems,
            self._tools,
            reasoning_effort=self._reasoning_effort,
            prompt_cache_key=self._prompt_cache_key,
            output_schema=self._output_schema,
            tool_choice=self._tool_choice,
        )
        if compacted > 0:
            out._messages.append(_Summary(summary, now(), compacted))
        return out

    def compact(self, provider: StreamingModelProvider, keep_last: int = 2) -> Context:
        """A new context in which a summary written by ``provider``'s model replaces the older turns.

        Returns a new ``Context`` (this one is left as it was, as with
        :meth:`with_compacted_summary`): every System message, then one
        ``ChatMessage.Summary`` (``messages_compacted`` says how many messages it
        stands for, counting those an earlier summary stood for), then the last
        ``keep_last`` messages verbatim. Tools, reasoning effort, prompt cache key and
        the other settings are kept.

        The cut never separates an assistant turn's tool calls from their results
        (the turn is kept with them, so slightly more may be kept). The summary
        request is one plain-text transcript of the older turns: no tools, no
        reasoning, so no encrypted reasoning or thinking signatures (which only the
        model that wrote them may read) go out, and images and documents are named
        rather than sent. A transcript too long for the model's window is summarised
        in portions (the summary so far carried into the next), each one request.
        With nothing older than the kept messages, no request is made and a copy is
        returned.

        Raises what the stream raises (``LlmError`` subclasses), and ``ApiError``
        when the model answers without any text.
        """
        if isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 0:
            raise ValueError(f"keep_last must be a non-negative int, got {keep_last!r}")
        older, kept = split_history(self._messages, keep_last)
        out = self.copy()
        if not older:
            return out

        def ask(request: list[ChatMessage]) -> str:
            with provider.stream_response(Context(request)) as stream:
                return stream.collect().text.strip()

        text = summarise(ask, older)
        if not text:
            raise ApiError(
                f"{provider.display_name()} answered the summary request without any text; "
                "nothing was compacted (try again, or a model that follows instructions better)"
            )
        systems = [m for m in self._messages if m.is_system]
        out._messages = [*systems, _Summary(text, now(), compacted_count(older)), *kept]
        return out

    # -- persistence -----------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form: ``{"messages": [...], "tools": [...]}``, plus the settings when set."""
        out: dict[str, Any] = {
            "messages": [m.to_dict() for m in self._messages],
            "tools": [t.to_dict() for t in self._tools],
        }
        # The crate drops these two; kept here (only when set, so the crate's own
        # reader, which ignores unknown keys, still loads the result).
        if self._reasoning_effort is not None:
            out["reasoning_effort"] = self._reasoning_effort.value
        if self._prompt_cache_key is not None:
            out["prompt_cache_key"] = self._prompt_cache_key
        if self._output_schema is not None:
            out["output_schema"] = self._output_schema.to_dict()
        if self._tool_choice is not None:
            out["tool_choice"] = self._tool_choice
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Context:
        """Inverse of :meth:`to_dict`; also reads the crate's JSON."""
        schema = data.get("output_schema")
        return cls(
            [ChatMessage.from_dict(m) for m in data.get("messages") or ()],
            [ToolDefinition.from_dict(t) for t in data.get("tools") or ()],
            reasoning_effort=data.get("reasoning_effort"),
            prompt_cache_key=data.get("prompt_cache_key"),
            output_schema=OutputSchema.from_dict(schema) if schema is not None else None,
            tool_choice=data.get("tool_choice"),
        )

    # -- dunder ----------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Context):
            return NotImplemented
        return (
            self._messages == other._messages
            and self._tools == other._tools
            and self._reasoning_effort == other._reasoning_effort
            and self._prompt_cache_key == other._prompt_cache_key
            and self._output_schema == other._output_schema
            and self._tool_choice == other._tool_choice
        )

    # Mutable: equal contexts may stop being equal, so they must not be hashed.
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        extra = ""
        if self._reasoning_effort is not None:
            extra += f", reasoning_effort={self._reasoning_effort.value!r}"
        if self._prompt_cache_key is not None:
            extra += f", prompt_cache_key={self._prompt_cache_key!r}"
        if self._output_schema is not None:
            extra += f", output_schema={self._output_schema!r}"
        if self._tool_choice is not None:
            extra += f", tool_choice={self._tool_choice!r}"
        return f"Context(messages={self._messages!r}, tools={self._tools!r}{extra})"
