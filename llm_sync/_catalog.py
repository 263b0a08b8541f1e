"""The shipped model catalog (``catalog.json``): lookups, available models and cost estimates."""

from __future__ import annotations

import json
import os
import re
import threading
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple, Union

from ._model import LlmModel, ModelPrices
from ._reasoning import ReasoningEffort

if TYPE_CHECKING:
    from ._response import Usage

__all__ = [
    "all_models",
    "available_models",
    "catalog_providers",
    "estimate_cost",
    "get_local_models",
    "local_model",
    "local_models",
    "lookup",
    "model_ids",
    "names_deployments",
    "provider_label",
]

_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "catalog.json")

# A trailing release date (-20250929, -2024-08-06) or a moving alias (-latest):
# dropped when comparing ids tolerantly, so "claude-3-5-haiku-latest" finds the
# dated catalog entry when exactly one entry shares the stem.
_SUFFIX_PATTERN = r"(?:-latest|-\d{8}|-\d{4}-\d{2}-\d{2})$"


class _Provider:
    __slots__ = ("key", "label", "env", "deployments", "models", "by_lower", "by_stem")

    def __init__(
        self, key: str, label: str, env: Optional[str], models: List[LlmModel], deployments: bool = False
    ) -> None:
        self.key = key
        self.label = label
        self.env = env
        #: Model strings name the user's deployments (Azure): any name is accepted.
        self.deployments = deployments
        self.models: Dict[str, LlmModel] = {m.model_id: m for m in models}
        self.by_lower: Dict[str, List[str]] = {}
        self.by_stem: Dict[str, List[str]] = {}
        for mid in self.models:
            self.by_lower.setdefault(mid.lower(), []).append(mid)
            self.by_stem.setdefault(_stem(mid), []).append(mid)


class _Catalog:
    def __init__(self, doc: Mapping[str, Any]) -> None:
        self.providers: Dict[str, _Provider] = {}
        for p in doc["providers"]:
            models = [_model(p["key"], p["env"], m) for m in p["models"]]
            self.providers[p["key"]] = _Provider(
                p["key"], p["label"], p["env"], models, bool(p.get("deployments"))
            )


_lock = threading.Lock()
_loaded: Optional[_Catalog] = None


def _catalog() -> _Catalog:
    global _loaded
    cat = _loaded
    if cat is None:
        with _lock:
            cat = _loaded
            if cat is None:
                with open(_PATH, encoding="utf-8") as f:
                    cat = _loaded = _Catalog(json.load(f))
    return cat


def _stem(model_id: str) -> str:
    return re.sub(_SUFFIX_PATTERN, "", model_id.lower())


def _model(provider: str, env: Optional[str], m: Mapping[str, Any]) -> LlmModel:
    cost = m.get("cost")
    prices = None
    if cost:
        prices = ModelPrices(
            *(float(cost[k]) if k in cost else None for k in ("input", "output", "cache_read", "cache_write"))
        )
    inputs = m.get("input", ())
    return LlmModel(
        provider,
        m["id"],
        display_name=m.get("name", m["id"]),
        context_window=m.get("context") or None,  # 0 means models.dev gives no limit
        max_output_tokens=m.get("output"),
        reasoning_levels=tuple(ReasoningEffort(v) for v in m.get("reasoning", ())),
        supports_image="image" in inputs,
        supports_audio="audio" in inputs,
        supports_pdf="pdf" in inputs,
        supports_tools=bool(m.get("tools")),
        required_env_var=env,
        prices=prices,
    )


# -- lookups -----------------------------------------------------------------------


def catalog_providers() -> Tuple[str, ...]:
    """The catalog's provider keys, in catalog order (``"anthropic"``, ``"codex"``, ...)."""
    return tuple(_catalog().providers)


def provider_label(provider: str) -> Optional[str]:
    """The human name of a catalog provider (``"OpenRouter"``), None for others."""
    p = _catalog().providers.get(provider)
    return p.label if p else None


def names_deployments(provider: str) -> bool:
    """True when ``provider``'s model strings name deployments (``azure:<deployment>``), not catalog ids."""
    p = _catalog().providers.get(provider)
    return p.deployments if p else False


def model_ids(provider: str) -> Tuple[str, ...]:
    """The catalog's model ids for ``provider`` (empty for a provider not in the catalog)."""
    p = _catalog().providers.get(provider)
    return tuple(p.models) if p else ()


def lookup(provider: str, model_id: str) -> Optional[LlmModel]:
    """The catalog entry for ``provider:model_id``, or None.

    Exact first; then, when exactly one entry matches, ignoring case and a trailing
    date or ``-latest``. A match that differs only in case answers with the
    catalog's own id (``zai:GLM-4.6`` is ``zai:glm-4.6``); one that names a dated
    or aliased id answers with the facts of the entry under the id as given, since
    that id is what the provider will be sent.
    """
    p = _catalog().providers.get(provider)
    if p is None:
        return None
    found = p.models.get(model_id)
    if found is not None:
        return found
    same = p.by_lower.get(model_id.lower(), ())
    if len(same) == 1:
        return p.models[same[0]]
    stem = p.by_stem.get(_stem(model_id), ())
    if len(stem) == 1:
        import dataclasses

        return dataclasses.replace(p.models[stem[0]], model_id=model_id)
    return None


def all_models(provider: Optional[str] = None) -> List[LlmModel]:
    """Every catalog model (or one provider's), in catalog order, ids sorted."""
    cat = _catalog()
    if provider is not None:
        p = cat.providers.get(provider)
        return list(p.models.values()) if p else []
    return [m for p in cat.providers.values() for m in p.models.values()]


def _has_credentials(provider: str) -> bool:
    """For providers without a key variable: what the provider's class says of its sign-in."""
    import importlib

    # The catalog is data; the providers know their credentials. The registry is imported
    # here, not at the top: the providers package imports this module.
    from .providers import REGISTRY

    module, _, name = REGISTRY[provider].partition(":")
    cls = getattr(importlib.import_module(module), name)
    return bool(cls.has_credentials())


def available_models() -> List[LlmModel]:
    """The catalog models you can call now.

    A provider counts when its key variable is set in the environment or in a
    ``.env`` found from the working directory upwards. Codex counts when a sign-in
    exists (``~/.codex/auth.json``, ``$CODEX_HOME``, or llm_sync's own store) and
    Bedrock when AWS credentials appear configured (variables or ``~/.aws``), Vertex
    when a project is set and application default credentials exist (a key file in
    ``GOOGLE_APPLICATION_CREDENTIALS`` or gcloud's). Azure's models are never listed:
    what can be called there is the deployments the user made, which no file shows.
    """
    from ._keys import setting

    out: List[LlmModel] = []
    for p in _catalog().providers.values():
        if p.deployments:
            continue
        ok = setting(None, p.env) is not None if p.env else _has_credentials(p.key)
        if ok:
            out.extend(p.models.values())
    return out


def get_local_models() -> List[LlmModel]:
    """:func:`available_models` plus the models found on local servers (Ollama, llama.cpp)."""
    models = available_models()
    import importlib
    import importlib.util

    # The discovery module is optional; an ImportError raised inside it is a real bug.
    if importlib.util.find_spec("llm_sync.providers.discovery") is not None:
        discovery = importlib.import_module("llm_sync.providers.discovery")
        models.extend(discovery.discover_local_models())
    return models


def local_model(name: Optional[str] = None, context_window: Optional[int] = None) -> LlmModel:
    """The ``local`` (embedded, ``llm_sync.local``) model ``name``: the bundled one by default.

    It runs on this machine, so its prices are zero; ``context_window`` is the
    server's ``n_ctx`` (8192 unless the server was started with another).
    """
    from .local import DEFAULT_MODEL

    bundled = name is None or name == DEFAULT_MODEL
    return LlmModel(
        "local",
        DEFAULT_MODEL if name is None else name,
        display_name="Gemma 3 270M (embedded, llama.cpp)" if bundled else f"{name} (embedded, llama.cpp)",
        context_window=context_window or (8192 if bundled else None),
        supports_tools=False,
        prices=ModelPrices(0.0, 0.0, 0.0, 0.0),
    )


def local_models() -> List[LlmModel]:
    """The embedded models ``local:`` offers without a path: the bundled one."""
    return [local_model()]


# -- cost --------------------------------------------------------------------------


def estimate_cost(model: Union[LlmModel, str], usage: Usage) -> Optional[float]:
    """The dollar cost of ``usage`` at the catalog prices of ``model``; None when unpriced.

    ``usage.input_tokens`` includes the cached and cache-creation tokens, so the
    uncached part is ``input - cached - creation``; cache reads and writes are
    priced at their own rates (at the input rate when the catalog gives none).
    ``model`` may be an ``LlmModel`` or a ``"provider:model_id"`` string.
    """
    m = LlmModel.parse(model) if isinstance(model, str) else model
    prices = m.prices
    if prices is None:
        entry = lookup(m.provider, m.model_id)
        prices = entry.prices if entry is not None else None
    if prices is None or prices.input is None or prices.output is None:
        return None
    cached = usage.cached_input_tokens or 0
    created = usage.cache_creation_tokens or 0
    uncached = max(usage.input_tokens - cached - created, 0)
    read = prices.cache_read if prices.cache_read is not None else prices.input
    write = prices.cache_write if prices.cache_write is not None else prices.input
    total = (
        uncached * prices.input
        + cached * read
        + created * write
        + usage.output_tokens * prices.output
    )
    return total / 1_000_000
