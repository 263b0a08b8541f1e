"""DeepSeek, Moonshot and Z.ai: preset configurations of the OpenAI-compatible chat provider."""

from __future__ import annotations

from typing import Any, ClassVar, Dict, FrozenSet, List, Optional, Type

from ._chat import SchemaTransform
from .openai_compatible import OpenAiCompatibleProvider

__all__ = [
    "PRESETS",
    "DeepSeekProvider",
    "MoonshotProvider",
    "ZaiProvider",
    "normalize_for_moonshot",
    "preset",
]


class DeepSeekProvider(OpenAiCompatibleProvider):
    """DeepSeek's API (``DEEPSEEK_API_KEY``; base ``https://api.deepseek.com``).

    DeepSeek has JSON mode but no ``json_schema`` response format, and it takes a named
    ``tool_choice``: an output schema is sent as a forced tool and read back as text.
    Strict tools are enforced on the beta base URL (``https://api.deepseek.com/beta``).
    """

    provider_id: ClassVar[str] = "deepseek"
    genai_provider_name: ClassVar[Optional[str]] = "deepseek"
    label: ClassVar[str] = "DeepSeek"
    default_model: ClassVar[str] = "deepseek-chat"
    default_base_url: ClassVar[str] = "https://api.deepseek.com"
    key_variable: ClassVar[Optional[str]] = "DEEPSEEK_API_KEY"
    key_required: ClassVar[bool] = True
    base_url_variable: ClassVar[Optional[str]] = "DEEPSEEK_BASE_URL"
    # Thinking mode rejects a tool-call turn sent back without reasoning_content.
    reasoning_placeholder: ClassVar[bool] = True
    output_schema_route: ClassVar[Optional[str]] = "tool"


# ---------------------------------------------------------------------------
# Moonshot's tool-schema dialect.

_DROPPED = ("$schema", "title", "format", "$comment")
# Keywords whose value is one schema, a list of schemas, or a map of name -> schema.
_ONE = (
    "additionalProperties",
    "items",
    "additionalItems",
    "contains",
    "propertyNames",
    "not",
    "if",
    "then",
    "else",
    "unevaluatedItems",
    "unevaluatedProperties",
)
_MANY = ("allOf", "anyOf", "oneOf", "prefixItems", "items")
_MAP = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")


def normalize_for_moonshot(schema: Dict[str, Any]) -> Dict[str, Any]:
    """Rewrite a tool schema into the subset Moonshot's API accepts (in place; returned).

    On every (sub)schema: a ``$ref`` with sibling keywords moves into
    ``allOf: [{"$ref": ...}]`` (the siblings stay); then ``$schema``, ``title``,
    ``format`` and ``$comment`` are removed, and a ``type`` list becomes
    ``anyOf: [{"type": t}, ...]``. Property *names* are never touched.
    """
    _normalize(schema)
    return schema


def _normalize(node: Any) -> None:
    if not isinstance(node, dict):
        return
    if "$ref" in node and len(node) > 1:
        ref = node.pop("$ref")
        all_of = node.get("allOf")
        if isinstance(all_of, list):
            all_of.append({"$ref": ref})
        else:
            node["allOf"] = [{"$ref": ref}]
    for k in _DROPPED:
        node.pop(k, None)
    kind = node.get("type")
    if isinstance(kind, list):
        del node["type"]
        options: List[Any] = [{"type": t} for t in kind]
        existing = node.get("anyOf")
        if isinstance(existing, list):
            # Both must hold: keep the old anyOf and require one of the types too.
            node.setdefault("allOf", []).append({"anyOf": options})
        else:
            node["anyOf"] = options
    for k in _ONE:
        _normalize(node.get(k))
    for k in _MANY:
        sub = node.get(k)
        if isinstance(sub, list):
            for s in sub:
                _normalize(s)
    for k in _MAP:
        sub = node.get(k)
        if isinstance(sub, dict):
            for s in sub.values():
                _normalize(s)


class MoonshotProvider(OpenAiCompatibleProvider):
    """Moonshot's Kimi API (``MOONSHOT_API_KEY``; base ``https://api.moonshot.ai/v1``).

    Tool schemas pass through :func:`normalize_for_moonshot`, since Moonshot rejects
    ``$ref`` siblings, ``type`` lists and some annotation keywords. Kimi takes JSON mode
    but no ``json_schema``, and refuses a forced ``tool_choice`` while thinking: an
    output schema goes as JSON mode plus the schema in a system instruction (checked by
    ``.parsed`` only), and ``tool_choice`` is ``auto`` or ``none``.
    """

    provider_id: ClassVar[str] = "moonshot"
    genai_provider_name: ClassVar[Optional[str]] = "moonshot_ai"
    label: ClassVar[str] = "Moonshot"
    default_model: ClassVar[str] = "moonshot-v1-8k"
    default_base_url: ClassVar[str] = "https://api.moonshot.ai/v1"
    key_variable: ClassVar[Optional[str]] = "MOONSHOT_API_KEY"
    key_required: ClassVar[bool] = True
    base_url_variable: ClassVar[Optional[str]] = "MOONSHOT_BASE_URL"
    reasoning_placeholder: ClassVar[bool] = True
    schema_transform: ClassVar[Optional[SchemaTransform]] = normalize_for_moonshot
    output_schema_route: ClassVar[Optional[str]] = "json"
    tool_choices: ClassVar[FrozenSet[str]] = frozenset({"auto", "none"})
    strict_tools: ClassVar[bool] = False


class ZaiProvider(OpenAiCompatibleProvider):
    """Z.ai's GLM models on the coding-plan endpoint (``ZAI_API_KEY``).

    The base is ``https://api.z.ai/api/coding/paas/v4`` (the GLM Coding Plan), not the
    general ``/api/paas/v4``; set ``base_url`` (or ``ZAI_BASE_URL``) for the latter.
    GLM takes JSON mode but no ``json_schema`` and only ``tool_choice: auto``: an output
    schema goes as JSON mode plus the schema in a system instruction.
    """

    provider_id: ClassVar[str] = "zai"
    label: ClassVar[str] = "Z.ai"
    default_model: ClassVar[str] = "glm-4.6"
    default_base_url: ClassVar[str] = "https://api.z.ai/api/coding/paas/v4"
    key_variable: ClassVar[Optional[str]] = "ZAI_API_KEY"
    key_required: ClassVar[bool] = True
    base_url_variable: ClassVar[Optional[str]] = "ZAI_BASE_URL"
    reasoning_placeholder: ClassVar[bool] = True
    output_schema_route: ClassVar[Optional[str]] = "json"
    tool_choices: ClassVar[FrozenSet[str]] = frozenset({"auto"})
    strict_tools: ClassVar[bool] = False


#: Preset name -> class; :func:`preset` also takes the aliases in ``_ALIASES``.
PRESETS: Dict[str, Type[OpenAiCompatibleProvider]] = {
    "deepseek": DeepSeekProvider,
    "moonshot": MoonshotProvider,
    "zai": ZaiProvider,
}
_ALIASES = {"z.ai": "zai", "z-ai": "zai", "z_ai": "zai", "kimi": "moonshot"}


def preset(name: str, api_key: Optional[str] = None, **kwargs: Any) -> OpenAiCompatibleProvider:
    """The preset provider called ``name`` (``"deepseek"``, ``"moonshot"``, ``"zai"``).

    Keyword arguments are the provider's own (``model=``, ``base_url=``, ...).
    """
    key = name.strip().lower()
    cls = PRESETS.get(_ALIASES.get(key, key))
    if cls is None:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(sorted(PRESETS))}")
    return cls(api_key, **kwargs)
