"""Model strings: ``parse_model("anthropic:claude-sonnet-4-5")`` builds the provider for a spec.

Grammar (whitespace around pieces is ignored)::

    spec     := piece ("," piece)*          several pieces: AlloyedModelProvider (round-robin)
    piece    := provider [":" model]        split at the FIRST colon: ollama:qwen3:8b
              | "local" [":" model]          the embedded model (extra "local")
              | "openai-compatible:" model ["@" base_url]

An empty model means the provider's default model. Catalog providers (anthropic, openai,
codex, openrouter, gemini, deepseek, moonshot, zai, bedrock, vertex) look the model up in the
shipped catalog, tolerating case and a date suffix or ``-latest``; a model the catalog lacks is
sent as written, with an :class:`UnknownModelWarning` naming close matches (and no context window
or price known). ``azure`` model strings name deployments (``azure:<deployment>``) and are taken
as written; ``vertex:`` builds a ``VertexGeminiProvider`` for ``gemini-*`` and a
``VertexAnthropicProvider`` for ``claude-*``. Local and compatible servers accept any name;
``local:`` takes the bundled model's name or a path to a ``.gguf`` file. The base URL after ``@``
may omit its scheme (``@localhost:8000/v1`` means ``http://localhost:8000/v1``). An unknown
provider, or a ``local`` model that is neither, raises :class:`UnknownModelError` listing close
matches.
"""

from __future__ import annotations

import warnings
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from . import _catalog
from ._model import LlmModel
from .providers import EXTRAS, REGISTRY
from .providers._base import StreamingModelProvider

__all__ = ["PROVIDERS", "ProviderFactory", "UnknownModelError", "UnknownModelWarning", "parse_model"]

#: Builds a provider for a model id ("" means the provider's default model).
ProviderFactory = Callable[[str], StreamingModelProvider]

#: Provider key -> "module:ClassName", imported on first use (the registry of
#: ``llm_sync.providers``); the class's ``from_env(model=...)`` builds the provider.
PROVIDERS: Mapping[str, str] = REGISTRY

# The extras the embedded model and the providers with dependencies of their own need.
_EXTRAS = {**EXTRAS, "local": "local"}
_LOCAL = "local"
_COMPATIBLE = "openai-compatible"


class UnknownModelError(ValueError):
    """A model string names a provider or a catalog model that does not exist.

    A ``ValueError`` (the argument is wrong, nothing was sent). ``provider`` and
    ``model_id`` are the parts as written (``model_id`` is None when the provider
    itself is unknown); ``suggestions`` holds close matches as model strings or
    provider keys.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        model_id: Optional[str] = None,
        suggestions: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.model_id = model_id
        self.suggestions = tuple(suggestions)


class UnknownModelWarning(UserWarning):
    """A catalog provider's model that the shipped catalog does not list: sent as written.

    It may be newer than the catalog, or a typo (the provider will answer with an
    error then). ``provider``, ``model_id`` and ``suggestions`` as in
    :class:`UnknownModelError`.
    """

    def __init__(self, message: str, *, provider: str, model_id: str, suggestions: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.provider = provider
        self.model_id = model_id
        self.suggestions = tuple(suggestions)


def parse_model(
    spec: str, *, registry: Optional[Mapping[str, Union[str, ProviderFactory]]] = None
) -> Tuple[StreamingModelProvider, LlmModel]:
    """The provider for ``spec`` and the ``LlmModel`` it names (the first one's, for several).

    ``"anthropic:claude-sonnet-4-5"`` → ``(AnthropicProvider, LlmModel(...))`` with the
    catalog facts filled in. Keys come from the environment or a ``.env`` (each
    provider's ``from_env``), so a missing key raises ``MissingApiKeyError``.
    ``registry`` adds or replaces providers: a key maps to ``"module:ClassName"`` or
    to a factory ``f(model_id) -> provider``. Every piece is checked against the
    catalog before any provider is built.
    """
    if not isinstance(spec, str):
        raise TypeError(f"parse_model takes a str, got {type(spec).__name__}")
    table: Dict[str, Union[str, ProviderFactory]] = dict(PROVIDERS)
    if registry:
        table.update(registry)
    pieces = [p.strip() for p in spec.split(",")]
    if not any(pieces):
        raise UnknownModelError(
            "empty model string; write 'provider:model', e.g. 'anthropic:claude-sonnet-4-5'",
            provider="",
        )
    if not all(pieces):
        raise UnknownModelError(
            f"model string {spec!r} has an empty piece between commas", provider=""
        )
    # Resolve every piece (catalog checks) before building any provider.
    notes: List[UnknownModelWarning] = []
    resolved = [_resolve(piece, table, notes) for piece in pieces]
    for note in notes:
        warnings.warn(note, stacklevel=2)
    built = [_build(key, model_id, entry, table) for key, model_id, entry in resolved]
    if len(built) == 1:
        return built[0]
    from ._alloyed import AlloyedModelProvider

    return AlloyedModelProvider([p for p, _ in built]), built[0][1]


def _resolve(
    piece: str, table: Mapping[str, Union[str, ProviderFactory]], notes: List[UnknownModelWarning]
) -> Tuple[str, str, Optional[LlmModel]]:
    """``(provider key, model id to send, catalog entry or None)`` for one piece.

    A model the catalog lacks adds its warning to ``notes``.
    """
    key, _, model_id = piece.partition(":")
    key = key.strip()
    model_id = model_id.strip()
    if key not in table and key != _LOCAL:
        raise _unknown_provider(key, model_id, table)
    if key == _LOCAL and key not in table and model_id:
        from . import local

        if not local._is_bundled(model_id):
            local._user_model(model_id)  # UnknownModelError unless it names a .gguf file
    if key not in _catalog.catalog_providers() or not model_id:
        return key, model_id, None
    if _catalog.names_deployments(key):
        # azure:<deployment>: the user named it; the provider describes it from the
        # catalog when it is named after its model.
        return key, model_id, None
    entry = _catalog.lookup(key, model_id)
    if entry is None:
        ids = _catalog.model_ids(key)
        close = _close(model_id, ids)
        hint = f" (did you mean {', '.join(f'{key}:{c}' for c in close)}?)" if close else ""
        notes.append(
            UnknownModelWarning(
                f"{key} model {model_id!r} is not in llm_sync's catalog{hint}: it is sent as "
                "written, with no context window or price known (`llm-sync models --provider "
                f"{key}` lists the {len(ids)} known ones)",
                provider=key,
                model_id=model_id,
                suggestions=[f"{key}:{c}" for c in close],
            )
        )
        return key, model_id, None
    return key, entry.model_id, entry


def _close(word: str, candidates: Sequence[str]) -> List[str]:
    lowered = {c.lower(): c for c in candidates}
    import difflib

    found = difflib.get_close_matches(word.lower(), list(lowered), n=5, cutoff=0.6)
    # A prefix match ("claude-sonnet" for "claude-sonnet-4-5") is close too.
    found += [low for low in lowered if low.startswith(word.lower()) and low not in found]
    return [lowered[f] for f in found[:5]]


def _unknown_provider(
    key: str, model_id: str, table: Mapping[str, Union[str, ProviderFactory]]
) -> UnknownModelError:
    keys = sorted(set(table) | {_LOCAL})
    suggestions = _close(key, keys)
    if not model_id:
        # "claude-sonnet-4-5" alone: name the providers whose catalog has that id.
        for p in _catalog.catalog_providers():
            entry = _catalog.lookup(p, key)
            if entry is not None:
                suggestions.append(str(entry))
    hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
    return UnknownModelError(
        f"unknown provider {key!r} in model string{hint} (write 'provider:model'; "
        f"providers: {', '.join(keys)})",
        provider=key,
        model_id=None,
        suggestions=suggestions,
    )


def _build(
    key: str,
    model_id: str,
    entry: Optional[LlmModel],
    table: Mapping[str, Union[str, ProviderFactory]],
) -> Tuple[StreamingModelProvider, LlmModel]:
    if key == _LOCAL and key not in table:
        provider = _local(model_id)
        name = getattr(provider, "model_name", None) or model_id
        return provider, _catalog.local_model(str(name), provider.context_window())
    target = table[key]
    if isinstance(target, str):
        provider = _from_class(key, target, model_id)
    else:
        provider = target(model_id)
    if entry is not None:
        return provider, entry
    name = getattr(provider, "model_name", None)
    name = name if isinstance(name, str) and name else model_id
    if key == _COMPATIBLE:
        base = getattr(provider, "base_url", None)
        # Written "<model>@<base_url>" so that str(model) parses back to the same server.
        shown = f"{name}@{base}" if isinstance(base, str) and base else name
        return provider, LlmModel(key, shown, display_name=provider.display_name())
    described = provider.model()
    if described is not None:
        return provider, described
    return provider, LlmModel(key, name, display_name=provider.display_name())


def _import(key: str, target: str) -> type:
    # importlib.util is a submodule: `import importlib` alone does not load it, and in a
    # regular (non-editable) install nothing else has loaded it before this runs.
    import importlib
    import importlib.util

    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        extra = _EXTRAS.get(key)
        if err.name == module_name or importlib.util.find_spec(module_name) is None:
            raise ImportError(
                f"provider {key!r} is not available in this installation ({module_name} is missing)"
            ) from err
        if extra:
            from ._install import extra_hint

            raise ImportError(f"provider {key!r} needs the {extra!r} extra: {extra_hint(extra)}") from err
        raise
    cls = getattr(module, class_name)
    if not isinstance(cls, type):
        raise TypeError(f"{target} is not a class")
    return cls


def _from_class(key: str, target: str, model_id: str) -> StreamingModelProvider:
    cls = _import(key, target)
    kwargs: Dict[str, str] = {}
    if key == _COMPATIBLE:
        model_id, base_url = _split_base_url(model_id)
        if base_url:
            kwargs["base_url"] = base_url
    if model_id:
        kwargs["model"] = model_id
    provider = cls.from_env(**kwargs)  # type: ignore[attr-defined]
    if not isinstance(provider, StreamingModelProvider):
        raise TypeError(f"{target}.from_env() did not return a StreamingModelProvider")
    return provider


def _split_base_url(model_id: str) -> Tuple[str, Optional[str]]:
    """``"qwen@http://host:8000/v1"`` → ``("qwen", "http://host:8000/v1")``.

    Without a scheme the address is read as http (``qwen@localhost:8000/v1``) when it
    has the shape of one: a port, a path, ``localhost`` or a dotted host name; a bare
    word after ``@`` stays part of the model name.
    """
    for scheme in ("@http://", "@https://"):
        at = model_id.find(scheme)
        if at >= 0:
            return model_id[:at], model_id[at + 1 :]
    at = model_id.rfind("@")
    if at > 0 and _looks_like_address(model_id[at + 1 :]):
        return model_id[:at], "http://" + model_id[at + 1 :]
    return model_id, None


def _looks_like_address(text: str) -> bool:
    from urllib.parse import urlsplit

    if not text or any(c.isspace() for c in text) or "://" in text:
        return False
    try:
        parts = urlsplit("http://" + text)
        port = parts.port
    except ValueError:
        return False
    host = parts.hostname or ""
    return bool(host) and (port is not None or bool(parts.path) or host == "localhost" or "." in host)


def _local(model_id: str) -> StreamingModelProvider:
    import importlib
    import importlib.util

    if importlib.util.find_spec("llm_sync.local") is None:
        from ._install import local_hint

        raise ImportError(
            f"the 'local' model needs the embedded-model extra: {local_hint()}; or name a "
            "provider such as 'ollama:qwen3:8b'"
        )
    local = importlib.import_module("llm_sync.local")
    provider = local.local_provider(model=model_id) if model_id else local.local_provider()
    if not isinstance(provider, StreamingModelProvider):
        raise TypeError("llm_sync.local.local_provider() did not return a StreamingModelProvider")
    return provider
