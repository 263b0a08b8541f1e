"""Structured output and tool control, the same for every provider: the schema, reading the reply, the forced-tool route."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Dict, FrozenSet, Iterator, Optional, Set, Tuple, Union

from ._errors import ApiRequestError, OutputSchemaError, StructuredOutputError
from ._response import (
    Done,
    LlmResponse,
    StopReason,
    ToolRequestArg,
    ToolRequestComplete,
    ToolRequestStart,
    text,
)
from ._tools import ToolDefinition, _best_error, _canonical, _pointer, _schema_problem, _validator
from ._values import value

if TYPE_CHECKING:
    from ._call import Parser
    from ._context import Context
    from ._stream import CollectedResponse
    from ._transport._frame import Frame
    from .providers._base import StreamingModelProvider

__all__ = [
    "CHOICE_WORDS",
    "OutputSchema",
    "StructuredSupport",
    "answer_as_json",
    "json_instruction",
    "parse_reply",
    "plan",
    "read_answer",
]

#: The tool_choice words; anything else names a tool.
CHOICE_WORDS = frozenset({"auto", "none", "required"})
#: What a provider may say it can send, besides those words: "tool", a named tool.
_ALL_CHOICES = frozenset({"auto", "none", "required", "tool"})
_ROUTES = ("native", "tool", "json")
# The tool-name rule of OpenAI, Anthropic, Gemini and Bedrock alike: the forced-tool
# route turns the name into a tool name, so it is checked once, here.
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ANSWER_DESCRIPTION = (
    "Give your final answer by calling this tool: its arguments are the answer, and they "
    "must match its schema."
)


@value(eq=False)
class OutputSchema:
    """The JSON Schema a reply must match: ``Context.set_output_schema(schema, name, strict)``.

    ``schema`` is the parsed schema (a private copy: treat it as read-only), given as
    a dict or as JSON text; ``name`` names it where a provider wants a name (1-64
    letters, digits, ``_`` or ``-``); ``strict`` asks providers that have the switch
    (OpenAI, Codex, OpenRouter, chat-completions servers) to hold the model to the
    schema exactly. A schema that is not a JSON object or not valid under its
    metaschema (Draft 2020-12 unless ``$schema`` says otherwise) raises
    :class:`OutputSchemaError` naming the path in the schema. Equal schemas are equal
    values with equal hashes.
    """

    name: str
    schema: Dict[str, Any]
    strict: bool = True

    def __init__(
        self, name: str, schema: Union[str, bytes, Mapping[str, Any]], strict: bool = True
    ) -> None:
        if not isinstance(name, str):
            raise TypeError(f"the output schema's name must be a str, got {type(name).__name__}")
        if not _NAME.fullmatch(name):
            raise OutputSchemaError(
                f"output schema name {name!r} is not usable: give 1-64 letters, digits, '_' or '-' "
                "(providers use it as a tool or format name)",
                schema_name=name,
            )
        if not isinstance(strict, bool):
            raise TypeError(f"strict must be True or False, got {strict!r}")
        if isinstance(schema, (str, bytes, bytearray)):
            try:
                parsed = json.loads(schema)
            except ValueError as e:
                raise OutputSchemaError(
                    f"output schema {name!r} is not valid JSON: {e}", schema_name=name
                ) from None
        elif isinstance(schema, Mapping):
            parsed = schema
        else:
            raise TypeError(
                f"an output schema is JSON text or a dict, got {type(schema).__name__}"
            )
        if not isinstance(parsed, Mapping):
            raise OutputSchemaError(
                f"output schema {name!r} must be a JSON object, got {type(parsed).__name__}",
                schema_name=name,
                path="/",
            )
        try:
            canonical = _canonical(parsed)
        except (TypeError, ValueError) as e:
            raise OutputSchemaError(
                f"output schema {name!r} is not JSON-serialisable: {e}", schema_name=name
            ) from None
        problem = _schema_problem(canonical)
        if problem is not None:
            path, why = problem
            raise OutputSchemaError(
                f"output schema {name!r} is not a valid JSON Schema at {path}: {why}",
                schema_name=name,
                path=path,
            )
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "schema", json.loads(canonical))
        object.__setattr__(self, "strict", strict)
        self.__dict__["_text"] = canonical

    @property
    def text(self) -> str:
        """The schema as compact JSON text."""
        return self.__dict__["_text"]  # type: ignore[no-any-return]

    def _key(self) -> Tuple[str, str, bool]:
        return (self.name, self.text, self.strict)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OutputSchema):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def is_object(self) -> bool:
        """True when the schema describes a JSON object (what a tool's input must be)."""
        kind = self.schema.get("type")
        return kind == "object" or (kind is None and "properties" in self.schema)

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "schema": json.loads(self.text), "strict": self.strict}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OutputSchema:
        return cls(data.get("name", "output"), data["schema"], data.get("strict", True))


# ---------------------------------------------------------------------------
# Reading the reply.


def _snippet(s: str) -> str:
    return repr(s if len(s) <= 120 else s[:117] + "...")


def _unfenced(s: str) -> str:
    """``s`` without one surrounding Markdown code fence (```json ... ```), which prompted models add."""
    body = s.strip()
    if not (body.startswith("```") and body.endswith("```") and len(body) >= 6):
        return s
    first_line_end = body.find("\n")
    if first_line_end < 0:
        return s
    return body[first_line_end + 1 : -3]


def _closed(body: str) -> bool:
    """True when ``body`` is already a whole JSON value that more text could not have continued.

    Grammar-constrained servers (llama.cpp) let a model pad a finished object with
    whitespace until the token limit; such a reply is complete. A bare number is not:
    ``12`` may be the start of ``123``.
    """
    try:
        found = json.loads(body)
    except ValueError:
        return False
    return isinstance(found, (dict, list, str, bool)) or found is None


def parse_reply(
    reply: str,
    *,
    stop_reason: Optional[StopReason],
    complete: bool,
    schema: Optional[OutputSchema],
) -> Any:
    """The JSON value of ``reply``, checked against ``schema``; :class:`StructuredOutputError` if it is not one.

    Refused (a ``CONTENT_FILTER`` stop) and cut (a stream that ended before ``Done``,
    or a ``LENGTH`` stop before the JSON value closed) replies are reported as such
    before any parsing, so a truncated reply is never called invalid JSON; a value
    that had closed before the limit (a model padding with whitespace) is read. Without
    a schema the text is only parsed. One surrounding Markdown code fence is tolerated.
    """
    if stop_reason is StopReason.CONTENT_FILTER:
        raise StructuredOutputError(
            "the model (or the provider's filter) refused to answer, so there is no JSON to "
            f"read; its text: {_snippet(reply)}",
            reason="refused",
            text=reply,
        )
    body = _unfenced(reply)
    if not complete or (stop_reason is StopReason.LENGTH and not _closed(body)):
        cause = "the token limit stopped it" if stop_reason is StopReason.LENGTH else "the stream ended early"
        raise StructuredOutputError(
            f"the reply was cut off after {len(reply)} characters ({cause}), so its JSON is "
            "incomplete; raise max_tokens (with_max_tokens) or ask for less",
            reason="truncated",
            text=reply,
        )
    if not body.strip():
        why = "the reply has no text"
        if stop_reason is StopReason.TOOL_CALLS:
            why += "; the turn ended in tool calls: send their results and read the next turn"
        raise StructuredOutputError(why, reason="invalid_json", text=reply)
    try:
        found = json.loads(body)
    except ValueError as e:
        raise StructuredOutputError(
            f"the reply is not valid JSON ({e}): {_snippet(reply)}", reason="invalid_json", text=reply
        ) from None
    if schema is not None:
        error = _best_error(_validator(schema.text), found)
        if error is not None:
            path = _pointer(error.absolute_path)
            raise StructuredOutputError(
                f"the reply does not match output schema {schema.name!r} at {path}: {error.message}",
                reason="schema_mismatch",
                path=path,
                text=reply,
            )
    return found


# ---------------------------------------------------------------------------
# The request: what a provider can send, and the plan that fits the context to it.


@value
class StructuredSupport:
    """What one provider, for one model, can put in a request.

    ``output``: how an output schema travels: ``"native"`` (the provider's own
    structured-output field), ``"tool"`` (a forced single tool whose input schema is
    the output schema, read back as the answer text), ``"json"`` (JSON mode with the
    schema in the instructions, checked only by ``.parsed``), or None (it cannot: the
    request is refused). ``choices``: the ``tool_choice`` values it can carry, from
    ``"auto"``, ``"none"``, ``"required"`` and ``"tool"`` (a named tool). ``strict``:
    whether it can ask for strict tool schemas.
    """

    output: Optional[str] = None
    choices: FrozenSet[str] = frozenset({"auto"})
    strict: bool = False

    def __post_init__(self) -> None:
        if self.output is not None and self.output not in _ROUTES:
            raise ValueError(f"output must be one of {_ROUTES} or None, got {self.output!r}")
        unknown = set(self.choices) - _ALL_CHOICES
        if unknown:
            raise ValueError(f"unknown tool choices {sorted(unknown)}; use {sorted(_ALL_CHOICES)}")
        object.__setattr__(self, "choices", frozenset(self.choices))


def _names(names: Any) -> str:
    listed = ", ".join(repr(n) for n in names)
    return listed or "none"


def plan(context: Context, support: StructuredSupport, label: str) -> Tuple[Context, Optional[str]]:
    """Fit ``context``'s output schema, tool choice and strict tools to what the provider can send.

    Returns the context to build the request from (``context`` itself when nothing
    changes) and, on the forced-tool route, the name of the tool whose call is the
    answer. Raises :class:`ApiRequestError` (nothing is sent) for a tool choice that
    names no tool of the context, ``"required"`` with no tool, strict tools or a
    choice the provider cannot express, and an output schema it cannot carry.
    """
    tools = context.tools
    names = [t.name for t in tools]
    choice = context.tool_choice
    if choice is not None and choice not in CHOICE_WORDS and choice not in names:
        raise ApiRequestError(
            f"tool_choice {choice!r} names no tool of the context (its tools: {_names(names)}); "
            "set_tools() with it, or choose 'auto', 'none' or 'required'"
        )
    strict = [t.name for t in tools if t.strict]
    if strict and not support.strict:
        raise ApiRequestError(
            f"{label} cannot hold tool arguments to their schema (strict=True on {_names(strict)}); "
            "build those tools with strict=False, or use a provider that enforces strict tools"
        )
    out = context
    answer: Optional[str] = None
    schema = context.output_schema
    if schema is not None:
        route = support.output
        if route is None:
            raise ApiRequestError(
                f"{label} has no way to send an output schema; use a provider that supports "
                "structured output, or clear it with set_output_schema(None)"
            )
        if route == "tool":
            out, choice = _forced_tool(context, schema, choice, names, label, support.strict)
            answer = schema.name
    if choice is None:
        return out, answer
    if not out.tools:
        if choice == "required":
            raise ApiRequestError(
                "tool_choice 'required' needs at least one tool, and the context has none; "
                "set_tools() first or choose 'auto'"
            )
        return out, answer  # "auto" or "none" without tools: nothing to say
    kind = choice if choice in CHOICE_WORDS else "tool"
    if kind in support.choices:
        return out, answer
    if kind == "tool" and "required" in support.choices:
        # A named tool where only "required" exists: offer that one tool and require a call.
        if out is context:
            out = context.copy()
        out.set_tools([t for t in out.tools if t.name == choice])
        out.set_tool_choice("required")
        return out, answer
    raise ApiRequestError(
        f"{label} cannot express tool_choice {choice!r} (it takes "
        f"{_names(sorted(support.choices))}); choose one of those"
    )


def _forced_tool(
    context: Context,
    schema: OutputSchema,
    choice: Optional[str],
    names: Any,
    label: str,
    strict: bool,
) -> Tuple[Context, str]:
    if schema.name in names:
        raise ApiRequestError(
            f"output schema {schema.name!r} has the name of one of the context's tools; {label} "
            "sends the schema as a tool of that name, so pass another name= to set_output_schema"
        )
    if not schema.is_object():
        raise ApiRequestError(
            f"{label} sends the output schema as a tool's input, which must be a JSON object, but "
            f"schema {schema.name!r} is not an object schema; wrap the value in an object property"
        )
    if choice == "none":
        raise ApiRequestError(
            f"tool_choice 'none' rules out the forced tool that carries the output schema to "
            f"{label}; choose 'auto', or clear the output schema"
        )
    tool = ToolDefinition(schema.name, _ANSWER_DESCRIPTION, schema.schema, strict=schema.strict and strict)
    if names:
        # The caller's tools stay callable; a call is required, and the answer is one of them.
        forced = "required" if choice in (None, "auto", "required") else choice
    else:
        forced = schema.name
    assert forced is not None
    out = context.copy()
    out.set_tools([*context.tools, tool])
    out.set_tool_choice(forced)
    out.set_output_schema(None)
    return out, forced


def read_answer(parse: Parser, tool_name: str) -> Parser:
    """``parse`` with the calls of ``tool_name`` turned into the answer's ``Text`` (the forced-tool route).

    The call's argument pieces become ``Text`` chunks (so ``collect().text`` is the
    arguments, whole, and ``.parsed`` reads them); its start and completion are not
    passed on. A turn that made only that call ends with ``END_TURN`` (the provider's
    own word stays in ``raw_stop_reason``), not ``TOOL_CALLS``: nothing is left to run.
    """

    def read(frames: Iterator[Frame]) -> Iterator[LlmResponse]:
        answering: Set[str] = set()
        answered = False
        other_calls = False
        for chunk in parse(frames):
            cls = chunk.__class__
            if cls is ToolRequestArg:
                if chunk.id in answering:  # type: ignore[attr-defined]
                    yield text(chunk.chunk)  # type: ignore[attr-defined]
                    continue
            elif cls is ToolRequestStart:
                if chunk.name == tool_name:  # type: ignore[attr-defined]
                    answering.add(chunk.id)  # type: ignore[attr-defined]
                    continue
            elif cls is ToolRequestComplete:
                call = chunk.tool_call  # type: ignore[attr-defined]
                if call.id in answering or call.name == tool_name:
                    if call.id not in answering and call.arguments:
                        yield text(call.arguments)  # completed with no start: its text, whole
                    answered = True
                    continue
                other_calls = True
            elif cls is Done:
                if answered and not other_calls and chunk.stop_reason is StopReason.TOOL_CALLS:  # type: ignore[attr-defined]
                    chunk = Done(StopReason.END_TURN, chunk.raw_stop_reason)  # type: ignore[attr-defined]
            yield chunk

    return read


def json_instruction(schema: OutputSchema) -> str:
    """The instruction sent with JSON mode on the ``"json"`` route (the schema itself travels in it)."""
    return (
        "Answer with one JSON value and nothing else (no prose, no code fence). It must "
        f"match this JSON Schema, named {schema.name!r}:\n{schema.text}"
    )


def schema_argument(value: str) -> str:
    """The JSON text a ``--schema FILE_OR_JSON`` value stands for: the JSON itself, or the file it names."""
    if value.lstrip().startswith("{"):
        return value
    path = Path(value).expanduser()
    if not path.is_file():
        raise OutputSchemaError(
            f"--schema {value!r} is neither a JSON object nor a file; give the schema's JSON "
            "('{\"type\": \"object\", ...}') or the path of a file holding it"
        )
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise OutputSchemaError(f"--schema file {value!r} cannot be read: {e}") from None


def answer_as_json(
    provider: StreamingModelProvider, context: Context, schema: str, out: IO[str]
) -> CollectedResponse:
    """``llm-sync chat --schema``: ask for ``schema`` (JSON or a file), write the validated reply as one line of JSON.

    Raises ``OutputSchemaError`` for a bad schema (before any request) and
    ``StructuredOutputError`` for a reply that is not the JSON asked for.
    """
    context.set_output_schema(schema_argument(schema))
    reply = provider.stream_response(context).collect()
    out.write(json.dumps(reply.parsed, ensure_ascii=False) + "\n")
    out.flush()
    return reply
