"""What ``llm_sync`` and ``llm_sync.providers`` export: the vocabulary, the kit, and exactly the registry's classes."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import List, Set

import llm_sync
from llm_sync import StreamingModelProvider, providers
from llm_sync.providers import REGISTRY
from tests.support.paths import REPO

# DESIGN.md's public names, besides the provider classes.
VOCABULARY = {
    "AllProvidersFailedError",
    "AlloyedModelProvider",
    "ApiError",
    "ApiRequestError",
    "AssistantReasoning",
    "BatchResult",
    "BatchRun",
    "ChatMessage",
    "CollectedResponse",
    "ContentBlock",
    "Context",
    "ContextOverflowError",
    "EncryptedReasoningContent",
    "FallbackProvider",
    "InvalidApiKeyError",
    "JsonParsingError",
    "LlmError",
    "LlmModel",
    "LlmResponse",
    "LlmResponseStream",
    "MissingApiKeyError",
    "ModelPrices",
    "NetworkError",
    "OAuthError",
    "OutputSchema",
    "OutputSchemaError",
    "RateLimitedError",
    "ReasoningEffort",
    "RequestTimeoutError",
    "RetryPolicy",
    "ServerError",
    "StopReason",
    "StreamInterruptedError",
    "StreamReadError",
    "StreamingModelProvider",
    "StructuredOutputError",
    "Timeouts",
    "TokenCount",
    "TokenUsage",
    "ToolArgumentsError",
    "ToolCallError",
    "ToolCallRequest",
    "ToolCallResult",
    "ToolDefinition",
    "ToolParameterParsingError",
    "UnknownModelError",
    "UnknownModelWarning",
    "UnsupportedContentError",
    "__version__",
    "all_models",
    "available_models",
    "estimate_cost",
    "get_local_models",
    "parse_model",
    "run_many",
}

# What llm_sync.providers offers for writing a provider (docs/adding-a-provider.rst).
KIT = {
    "EXTRAS",
    "REGISTRY",
    "ErrorClassifier",
    "Frame",
    "Framing",
    "HttpCall",
    "HttpProvider",
    "Parser",
    "StreamingModelProvider",
    "ToolCalls",
    "Turn",
    "decode_event",
    "default_classifier",
    "error_summary",
    "json_body",
    "new_id",
}

CLASSES = {target.partition(":")[2] for target in REGISTRY.values()}
# Classes a registry entry builds for some models (vertex:claude-... is a VertexAnthropicProvider):
# public (DESIGN.md 6.8 names them), exported beside the registry's classes.
VARIANTS = {"VertexAnthropicProvider", "VertexGeminiProvider"}
PROVIDER_CLASSES = CLASSES | VARIANTS


def _type_checking_imports(path: Path) -> Set[str]:
    """The names an ``if TYPE_CHECKING:`` block of ``path`` imports."""
    names: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom):
                    names.update(alias.asname or alias.name for alias in stmt.names)
    return names


def _missing_and_extra(listed: List[str], expected: Set[str]) -> str:
    return f"add {sorted(expected - set(listed))}, remove {sorted(set(listed) - expected)}"


def test_llm_sync_exports_the_vocabulary_and_the_registrys_classes() -> None:
    expected = VOCABULARY | PROVIDER_CLASSES
    assert set(llm_sync.__all__) == expected, _missing_and_extra(llm_sync.__all__, expected)
    assert len(llm_sync.__all__) == len(set(llm_sync.__all__))
    assert llm_sync.__all__ == sorted(llm_sync.__all__)  # by code point, as the file writes it
    for name in llm_sync.__all__:
        assert getattr(llm_sync, name) is not None, name


def test_providers_exports_the_kit_and_the_registrys_classes() -> None:
    expected = KIT | PROVIDER_CLASSES
    listed = providers.__all__
    assert set(listed) == expected, _missing_and_extra(listed, expected)
    assert len(listed) == len(set(listed))
    # EXTRAS and REGISTRY first (the data), then the names in code-point order.
    assert listed[2:] == sorted(listed[2:])
    for name in listed:
        assert getattr(providers, name) is not None, name


def test_the_type_checking_imports_name_exactly_the_registrys_classes() -> None:
    for path in (REPO / "llm_sync" / "__init__.py", REPO / "llm_sync" / "providers" / "__init__.py"):
        found = _type_checking_imports(path) - {"testing", "otel", "ToolCalls", "Turn", "decode_event", "new_id"}
        assert found == PROVIDER_CLASSES, f"{path.name}: " + _missing_and_extra(sorted(found), PROVIDER_CLASSES)


def test_every_registry_entry_is_a_provider_class_with_its_key() -> None:
    for key, target in REGISTRY.items():
        module, _, name = target.partition(":")
        cls = getattr(importlib.import_module(module), name)
        assert issubclass(cls, StreamingModelProvider), key
        assert cls.provider_id == key.replace("-", "_"), (key, cls.provider_id)
        assert getattr(llm_sync, name) is cls and getattr(providers, name) is cls
    assert len(CLASSES) == len(REGISTRY)  # one class per key


def test_every_variant_is_built_by_a_registry_entry() -> None:
    assert set(providers._VARIANTS) == VARIANTS
    registry_classes = [
        getattr(importlib.import_module(t.partition(":")[0]), t.partition(":")[2]) for t in REGISTRY.values()
    ]
    for name, module in providers._VARIANTS.items():
        cls = getattr(importlib.import_module(module), name)
        assert any(issubclass(cls, parent) and cls is not parent for parent in registry_classes), name
        assert getattr(llm_sync, name) is cls and getattr(providers, name) is cls
