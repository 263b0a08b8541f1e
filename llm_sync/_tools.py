"""Tools a model may call (``ToolDefinition``), its calls, and their results."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from typing import Any, Optional, Union

from ._errors import ToolArgumentsError, ToolParameterParsingError
from ._values import value

__all__ = ["ToolCallError", "ToolCallRequest", "ToolCallResult", "ToolDefinition"]


def _canonical(obj: Any) -> str:
    # Compact and key-order preserving (models read properties in the order given);
    # one spelling per schema, so equal schemas make equal, equally hashed tools.
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _pointer(parts: Iterable[Any]) -> str:
    # RFC 6901 JSON pointer, the form the error message and ``.path`` promise.
    out = "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)
    return out or "/"


@functools.lru_cache(maxsize=256)
def _schema_problem(text: str) -> Optional[tuple[str, str]]:
    # Checking against the metaschema costs milliseconds; the same tools are built
    # over and over (once per turn in many agents), so the verdict is cached by text.
    # Imported here, not at module level: ``import llm_sync`` must stay cheap.
    from jsonschema.exceptions import SchemaError  # type: ignore[import-untyped,unused-ignore]
    from jsonschema.validators import (  # type: ignore[import-untyped,unused-ignore]
        Draft202012Validator,
        validator_for,
    )

    schema = json.loads(text)
    cls = validator_for(schema, default=Draft202012Validator)
    try:
        cls.check_schema(schema)
    except SchemaError as e:
        return (_pointer(e.absolute_path), e.message)
    return None


@functools.lru_cache(maxsize=256)
def _validator(text: str) -> Any:
    from jsonschema.validators import (  # type: ignore[import-untyped,unused-ignore]
        Draft202012Validator,
        validator_for,
    )

    schema = json.loads(text)
    cls = validator_for(schema, default=Draft202012Validator)
    return cls(schema)


@value
class ToolDefinition:
    """A tool the model may call.

    ``parameters`` is the JSON Schema of the arguments, given as JSON text or as a
    dict; it is kept as compact JSON text, and :attr:`schema` is the parsed dict
    (shared: treat it as read-only). A schema that is not JSON, not an object,
    whose top-level ``type`` is not ``"object"`` (providers refuse those), or not
    valid under its metaschema (Draft 2020-12 unless ``$schema`` says otherwise)
    raises :class:`ToolParameterParsingError` naming the tool and the path in the
    schema. ``server`` names the MCP server the tool came from, if any.
    ``strict`` asks the provider to hold the model's arguments to the schema exactly
    (OpenAI's and Anthropic's ``strict``, Bedrock's ``toolSpec.strict``, Gemini's
    ``VALIDATED`` mode); a provider that cannot enforce it refuses the request with
    ``ApiRequestError`` rather than ignore it.
    """

    name: str
    description: str
    parameters: str
    server: Optional[str] = None
    strict: bool = False

    def __init__(
        self,
        name: str,
        description: str,
        parameters: Union[str, Mapping[str, Any]],
        server: Optional[str] = None,
        strict: bool = False,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"ToolDefinition.name must be a non-empty str, got {name!r}")
        if not isinstance(description, str):
            raise TypeError(f"ToolDefinition.description must be str, got {type(description).__name__}")
        if server is not None and not isinstance(server, str):
            raise TypeError(f"ToolDefinition.server must be str or None, got {type(server).__name__}")
        if not isinstance(strict, bool):
            raise TypeError(f"ToolDefinition.strict must be True or False, got {strict!r}")
        if isinstance(parameters, (str, bytes, bytearray)):
            try:
                parsed = json.loads(parameters)
            except ValueError as e:
                raise ToolParameterParsingError(
                    f"Failed to parse tool parameters for {name}: not valid JSON: {e}",
                    tool_name=name,
                ) from None
        elif isinstance(parameters, Mapping):
            parsed = parameters
        else:
            raise TypeError(
                f"ToolDefinition.parameters must be JSON text or a dict, got {type(parameters).__name__}"
            )
        if not isinstance(parsed, Mapping):
            raise ToolParameterParsingError(
                f"Failed to parse tool parameters for {name}: the schema must be a JSON object, "
                f"got {type(parsed).__name__}",
                tool_name=name,
                path="/",
            )
        kind = parsed.get("type")
        if kind is not None and kind != "object":
            # Arguments always arrive as one JSON object; providers refuse the tool outright.
            raise ToolParameterParsingError(
                f"Failed to parse tool parameters for {name}: the top-level schema must describe "
                f'an object ("type": "object"), not "type": {json.dumps(kind)}; a model passes '
                "arguments as one JSON object, and providers refuse other shapes (Anthropic: "
                "input_schema.type must be 'object'; OpenAI: invalid_function_parameters). Wrap "
                'the value in a property: {"type": "object", "properties": {"value": ...}}',
                tool_name=name,
                path="/type",
            )
        try:
            text = _canonical(parsed)
        except (TypeError, ValueError) as e:
            raise ToolParameterParsingError(
                f"Failed to parse tool parameters for {name}: not JSON-serialisable: {e}",
                tool_name=name,
            ) from None
        problem = _schema_problem(text)
        if problem is not None:
            path, why = problem
            raise ToolParameterParsingError(
                f"Failed to parse tool parameters for {name}: invalid JSON Schema at {path}: {why}",
                tool_name=name,
                path=path,
            )
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "description", description)
        object.__setattr__(self, "parameters", text)
        object.__setattr__(self, "server", server)
        object.__setattr__(self, "strict", strict)

    @property
    def schema(self) -> dict[str, Any]:
        """The parsed ``parameters`` (cached; do not mutate it)."""
        got: Optional[dict[str, Any]] = self.__dict__.get("_schema")
        if got is None:
            got = json.loads(self.parameters)
            # A frozen dataclass refuses setattr; the instance dict takes a cache entry
            # without touching the fields (equality and hashing ignore it).
            self.__dict__["_schema"] = got
        return got

    def estimated_bytes(self) -> int:
        return sum(len(s.encode("utf-8")) for s in (self.name, self.description, self.parameters))

    def validate_arguments(self, arguments: Union[str, Mapping[str, Any]]) -> dict[str, Any]:
        """Check ``arguments`` (JSON text or a dict) against :attr:`schema`; return them parsed."""
        if isinstance(arguments, Mapping):
            args = dict(arguments)
        else:
            args = _parse_arguments(self.name, arguments)
        error = _best_error(_validator(self.parameters), args)
        if error is not None:
            path = _pointer(error.absolute_path)
            raise ToolArgumentsError(
                f"Arguments for tool {self.name} do not match its schema at {path}: {error.message}",
                tool_name=self.name,
                path=path,
            )
        return args

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
            "server": self.server,
        }
        if self.strict:
            # Only when set: the crate's reader (which ignores unknown keys) loads either way.
            out["strict"] = True
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolDefinition:
        return cls(
            data["name"],
            data.get("description", ""),
            data["parameters"],
            data.get("server"),
            data.get("strict", False),
        )


def _best_error(validator: Any, instance: Any) -> Any:
    from jsonschema.exceptions import best_match  # type: ignore[import-untyped,unused-ignore]

    return best_match(validator.iter_errors(instance))


def _parse_arguments(tool_name: str, arguments: str) -> dict[str, Any]:
    if not arguments.strip():
        # Models send "" for a call without arguments (the crate keeps it as is).
        return {}
    try:
        parsed = json.loads(arguments)
    except ValueError as e:
        raise ToolArgumentsError(
            f"Arguments for tool {tool_name} are not valid JSON: {e}", tool_name=tool_name
        ) from None
    if not isinstance(parsed, dict):
        raise ToolArgumentsError(
            f"Arguments for tool {tool_name} must be a JSON object, got {type(parsed).__name__}",
            tool_name=tool_name,
            path="/",
        )
    return parsed


@value
class ToolCallRequest:
    """A tool call the model made; ``arguments`` is the raw JSON text as streamed."""

    id: str
    name: str
    arguments: str

    def parsed_arguments(self) -> dict[str, Any]:
        """The arguments as a dict (``{}`` when empty); :class:`ToolArgumentsError` if not a JSON object."""
        return _parse_arguments(self.name, self.arguments)

    def validate(self, tool: ToolDefinition) -> dict[str, Any]:
        """Check the arguments against ``tool``'s schema; return them parsed.

        Raises :class:`ToolArgumentsError` whose message and ``.path`` name the
        failing field (``/location/city``).
        """
        if tool.name != self.name:
            raise ToolArgumentsError(
                f"Tool call for {self.name} cannot be validated against tool {tool.name}",
                tool_name=self.name,
            )
        return tool.validate_arguments(self.arguments)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolCallRequest:
        return cls(data["id"], data["name"], data.get("arguments", ""))


@value
class ToolCallResult:
    """The output of a tool call that succeeded."""

    id: str
    name: str
    arguments: str
    result: str

    @classmethod
    def from_request(cls, request: ToolCallRequest, result: str) -> ToolCallResult:
        return cls(request.id, request.name, request.arguments, result)

    def estimated_bytes(self) -> int:
        return sum(len(s.encode("utf-8")) for s in (self.name, self.arguments, self.result))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments, "result": self.result}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolCallResult:
        return cls(data["id"], data["name"], data.get("arguments", ""), data["result"])


@value
class ToolCallError:
    """A tool call that failed; ``error`` is what the model is told.

    ``arguments`` is None when the call never had usable arguments.
    """

    id: str
    name: str
    arguments: Optional[str]
    error: str

    @classmethod
    def from_request(cls, request: ToolCallRequest, error: str) -> ToolCallError:
        return cls(request.id, request.name, request.arguments, error)

    def estimated_bytes(self) -> int:
        return sum(len(s.encode("utf-8")) for s in (self.name, self.arguments or "", self.error))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments, "error": self.error}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolCallError:
        return cls(data["id"], data["name"], data.get("arguments"), data["error"])
