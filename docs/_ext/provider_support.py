"""Provider facts for the docs, found by asking the code, not typed by hand.

``provider_rows()`` imports every provider the model-string registry names
(``llm_sync._parse.PROVIDERS``), reads its class attributes (key and base-URL
variables, defaults) and *probes* it: it builds (never sends) the request for a
few small contexts and compares the bodies, so the table says what a reasoning
effort, a prompt cache key, an output schema, a tool choice or a strict tool
actually turns into on the wire (``prepare_call``: what ``stream_response`` sends). ``catalog_rows()``
summarises the shipped catalog per provider. The Sphinx directives
``provider-table``, ``catalog-table`` and ``provider-classes`` render them.
"""

from __future__ import annotations

import importlib
import json
from typing import Any, Dict, List, Optional, Sequence, Tuple

from docutils import nodes
from docutils.parsers.rst import Directive
from docutils.statemachine import StringList

# Nothing is sent: build_call only builds the request. The address is a closed port anyway.
_PROBE_URL = "http://127.0.0.1:9"
_PROBE_KEY = "probe-key-not-a-secret"
# A 1x1 transparent PNG and a few bytes of WAV header, base64: enough for the mappers.
_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
_WAV = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQAAAAA="


def _registry() -> List[Tuple[str, str, str]]:
    """``(key, module, class)`` per registry entry, then the classes an entry builds for some
    models (``vertex``: VertexGeminiProvider, VertexAnthropicProvider), under that entry's key."""
    from llm_sync._parse import PROVIDERS
    from llm_sync.providers import _VARIANTS

    out = []
    for key, target in PROVIDERS.items():
        module, _, cls = target.partition(":")
        out.append((key, module, cls))
        out += [(key, m, name) for name, m in sorted(_VARIANTS.items()) if m == module]
    return out


def _load(module: str, cls: str) -> Optional[type]:
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return None
    found = getattr(mod, cls, None)
    return found if isinstance(found, type) else None


def _probe_model(key: str, cls: type) -> str:
    """The default model, or the first catalog model that can reason when the default cannot."""
    from llm_sync._catalog import all_models, lookup

    default = getattr(cls, "default_model", "") or "probe-model"
    catalog_key = getattr(cls, "catalog_provider", None) or key
    entry = lookup(catalog_key, default)
    if entry is not None and entry.reasoning_levels:
        return default
    for m in all_models(catalog_key):
        if m.reasoning_levels and m.supports_tools:
            return m.model_id
    return default


def _instance(cls: type, model: str) -> Any:
    import inspect

    kwargs: Dict[str, Any] = {"api_key": _PROBE_KEY, "base_url": _PROBE_URL, "model": model}
    if "project" in inspect.signature(cls.__init__).parameters:
        kwargs["project"] = "probe-project"  # Vertex AI needs one; nothing is sent
    return cls(**kwargs)


def _body(provider: Any, context: Any) -> Tuple[Optional[Dict[str, Any]], Optional[str], str]:
    """``(json body, error class name, framing)`` of the request for ``context``."""
    from llm_sync import LlmError

    try:
        call, _parser = provider.prepare_call(context)
    except LlmError as err:
        return None, type(err).__name__, ""
    body = json.loads(call.body) if call.body else {}
    return body, None, call.framing


def _diff(a: Any, b: Any, path: str = "") -> List[str]:
    """Dotted paths (at most two levels) where ``b`` differs from ``a``."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: List[str] = []
        for k in b:
            sub = f"{path}.{k}" if path else k
            if k not in a:
                out.append(sub)
            elif a[k] != b[k]:
                out.extend(_diff(a[k], b[k], sub) if sub.count(".") < 1 else [sub])
        return out
    return [path or "(body)"] if a != b else []


def _paths(a: Any, b: Any, path: str = "") -> List[str]:
    """Dotted paths (at most two levels) where ``b`` differs from ``a``.

    A new key holding a one-key object of an object (``text.format``) is named down
    to that key; a changed list of tools is named by what changed in its first tool
    (``tools[].strict``).
    """
    if isinstance(a, dict) and isinstance(b, dict):
        out: List[str] = []
        for k in b:
            sub = f"{path}.{k}" if path else k
            if k in a and a[k] == b[k]:
                continue
            new = b[k]
            deeper = (k in a and isinstance(a[k], list) and isinstance(new, list)) or (
                sub.count(".") < 1
                and (
                    (k in a and isinstance(a[k], dict))
                    or (isinstance(new, dict) and len(new) == 1 and isinstance(next(iter(new.values())), dict))
                )
            )
            out.extend(_paths(a.get(k, {} if isinstance(new, dict) else None), new, sub) if deeper else [sub])
        out.extend(f"{path}.{k}" if path else k for k in a if k not in b)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and a and isinstance(a[0], dict):
        return [f"{path}[].{p}" for p in _paths(a[0], b[0])] or [path]
    return [path or "(body)"] if a != b else []


def _fields(paths: List[str]) -> str:
    return ", ".join(f"``{p}``" for p in paths) if paths else "not sent"


_PROBE_SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
_ROUTE_WORDS = {"native": "native", "tool": "forced tool", "json": "JSON mode"}


def _structured(key: str, cls: type, provider: Any, plain: Any, base: Dict[str, Any]) -> Dict[str, str]:
    """The structured-output, tool-choice and strict-tool cells, from requests built for them."""
    from llm_sync import ToolDefinition
    from llm_sync._catalog import all_models

    ctx = plain.copy()
    ctx.set_output_schema(_PROBE_SCHEMA, name="answer")
    body, failure, _ = _body(provider, ctx)
    route = provider.structured_support(ctx).output
    if body is None:
        schema = f"refused ({failure})"
    else:
        schema = f"{_fields(_paths(base, body))} ({_ROUTE_WORDS.get(route, route)})"
    # Models of the catalog that take another route than the probed one (Claude before 4.5).
    other: Dict[str, List[str]] = {}
    for m in all_models(getattr(cls, "catalog_provider", None) or key):
        try:
            r = _instance(cls, m.model_id).structured_support(ctx).output
        except Exception:  # noqa: BLE001 - a model the class cannot be built for says nothing here
            continue
        if r != route:
            other.setdefault(_ROUTE_WORDS.get(r, str(r)), []).append(m.model_id)
    for word, models in sorted(other.items()):
        schema += f"; {word} for {len(models)} older catalog models (e.g. ``{models[0]}``)"

    tool = ToolDefinition("get_time", "The time.", {"type": "object", "properties": {}})
    with_tool = plain.copy()
    with_tool.set_tools([tool])
    tool_base, _, _ = _body(provider, with_tool)
    groups: Dict[str, List[str]] = {}
    for choice, label in (("auto", "auto"), ("none", "none"), ("required", "required"), ("get_time", "named")):
        probe = with_tool.copy()
        probe.set_tool_choice(choice)
        got, failure, _ = _body(provider, probe)
        cell = f"refused ({failure})" if got is None else _fields(_paths(tool_base, got))
        groups.setdefault(cell, []).append(label)
    choices = "; ".join(f"{', '.join(labels)}: {cell}" for cell, labels in groups.items())

    strict_ctx = plain.copy()
    strict_ctx.set_tools([ToolDefinition("get_time", "The time.", {"type": "object", "properties": {}}, strict=True)])
    got, failure, _ = _body(provider, strict_ctx)
    strict = f"refused ({failure})" if got is None else _fields(_paths(tool_base, got))
    return {"schema": schema, "choice": choices, "strict": strict}


def _marked(obj: Any, word: str) -> bool:
    return word in json.dumps(obj)


def _probe(key: str, cls: type) -> Dict[str, str]:
    from llm_sync import ChatMessage, ContentBlock, Context

    model = _probe_model(key, cls)
    provider = _instance(cls, model)
    plain = Context([ChatMessage.System("Be brief."), ChatMessage.User("Hi")])
    base, err, framing = _body(provider, plain)
    if base is None:
        raise RuntimeError(f"{cls.__name__}: a plain request failed to build ({err})")

    effort = plain.copy()
    effort.set_reasoning_effort("high")
    with_effort, _, _ = _body(provider, effort)
    cached = plain.copy()
    cached.set_prompt_cache_key("user-42")
    with_key, _, _ = _body(provider, cached)

    def media(block: Any) -> str:
        body, failure, _ = _body(provider, Context([ChatMessage.User([ContentBlock.Text("What is this?"), block])]))
        return "yes" if body is not None else f"no ({failure})"

    def paths(changed: Optional[Dict[str, Any]]) -> str:
        if changed is None:
            return "refused"
        found = _diff(base, changed)
        return ", ".join(f"``{p}``" for p in found) if found else "not sent"

    markers = [w for w in ("cache_control", "cachePoint") if _marked(base, w)]
    structured = _structured(key, cls, provider, plain, base)
    return {
        **structured,
        "probed": f"``{model}``",
        "framing": framing,
        "effort": paths(with_effort),
        "cache_key": paths(with_key),
        "auto_cache": ", ".join(f"``{m}``" for m in markers) if markers else "—",
        "image": media(ContentBlock.Image(_PNG, "image/png")),
        "audio": media(ContentBlock.Audio(_WAV, "audio/wav")),
    }


def provider_rows() -> Tuple[List[Dict[str, str]], List[str]]:
    """One row per importable provider, and the registry keys whose module is not importable."""
    rows: List[Dict[str, str]] = []
    missing: List[str] = []
    seen = set()
    for key, module, name in _registry():
        cls = _load(module, name)
        if cls is None:
            missing.append(key)
            continue
        seen.add(cls)
        key_var = getattr(cls, "key_variable", None)
        required = getattr(cls, "key_required", True)
        row = {
            "key": f"``{key}``",
            "class": f"``{name}``",
            "key_var": (f"``{key_var}``" + ("" if required else " (optional)")) if key_var else "—",
            "url_var": f"``{cls.base_url_variable}``" if getattr(cls, "base_url_variable", None) else "—",
            "default_url": f"``{cls.default_base_url}``" if getattr(cls, "default_base_url", "") else "(required)",
            "default_model": f"``{cls.default_model}``" if getattr(cls, "default_model", "") else "(required)",
        }
        row.update(_probe(key, cls))
        rows.append(row)
    return rows, missing


def catalog_rows() -> List[Dict[str, str]]:
    from llm_sync._catalog import all_models, catalog_providers, provider_label

    rows = []
    for key in catalog_providers():
        models = all_models(key)
        windows = [m.context_window for m in models if m.context_window]
        priced = [m for m in models if m.prices is not None and m.prices.input is not None]
        env = next((m.required_env_var for m in models if m.required_env_var), None)
        rows.append({
            "key": f"``{key}``",
            "label": provider_label(key) or key,
            "env": f"``{env}``" if env else "(sign-in or cloud credentials)",
            "models": str(len(models)),
            "reasoning": str(sum(1 for m in models if m.reasoning_levels)),
            "tools": str(sum(1 for m in models if m.supports_tools)),
            "image": str(sum(1 for m in models if m.supports_image)),
            "audio": str(sum(1 for m in models if m.supports_audio)),
            "window": f"{max(windows):,}" if windows else "—",
            "priced": str(len(priced)),
        })
    return rows


# -- rendering ---------------------------------------------------------------------------

_PROVIDER_COLUMNS = (
    ("key", "model string"),
    ("class", "class"),
    ("key_var", "key variable"),
    ("url_var", "base URL variable"),
    ("default_url", "default base URL"),
    ("default_model", "default model"),
    ("framing", "wire"),
    ("probed", "probed with"),
    ("effort", "reasoning effort sent as"),
    ("cache_key", "prompt cache key sent as"),
    ("auto_cache", "cache markers always sent"),
    ("image", "images"),
    ("audio", "audio"),
    ("schema", "structured output sent as"),
    ("choice", "tool_choice sent as"),
    ("strict", "strict tools sent as"),
)

_CATALOG_COLUMNS = (
    ("key", "provider"),
    ("label", "name"),
    ("env", "key variable"),
    ("models", "models"),
    ("reasoning", "reasoning"),
    ("tools", "tools"),
    ("image", "image input"),
    ("audio", "audio input"),
    ("window", "largest window"),
    ("priced", "priced"),
)


def list_table(rows: Sequence[Dict[str, str]], columns: Sequence[Tuple[str, str]]) -> List[str]:
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for i, (_, title) in enumerate(columns):
        lines.append(("   * - " if i == 0 else "     - ") + title)
    for row in rows:
        for i, (field, _) in enumerate(columns):
            lines.append(("   * - " if i == 0 else "     - ") + (row.get(field) or "—"))
    return lines


class _Generated(Directive):
    has_content = False

    def lines(self) -> List[str]:
        raise NotImplementedError

    def run(self) -> List[nodes.Node]:
        container = nodes.container()
        content = StringList(self.lines(), source="<generated by docs/_ext/provider_support.py>")
        from sphinx.util.nodes import nested_parse_with_titles

        # With titles: provider-classes makes one small section per provider.
        nested_parse_with_titles(self.state, content, container)
        return list(container.children)


class ProviderTable(_Generated):
    def lines(self) -> List[str]:
        rows, missing = provider_rows()
        out = list_table(rows, _PROVIDER_COLUMNS)
        if missing:
            out += ["", "Not in this build (their modules are absent): "
                    + ", ".join(f"``{m}``" for m in missing) + "."]
        return out


class CatalogTable(_Generated):
    def lines(self) -> List[str]:
        return list_table(catalog_rows(), _CATALOG_COLUMNS)


class ProviderClasses(_Generated):
    """``autoclass`` for every importable provider class, un-indexed (the API page indexes them)."""

    def lines(self) -> List[str]:
        out: List[str] = []
        done = set()
        for key, module, name in _registry():
            if (module, name) in done or _load(module, name) is None:
                continue
            done.add((module, name))
            title = f"``{key}``: {name}"
            out += [title, "~" * len(title), "", f".. autoclass:: {module}.{name}", "   :no-index:", ""]
        return out


def setup(app: Any) -> Dict[str, Any]:
    app.add_directive("provider-table", ProviderTable)
    app.add_directive("catalog-table", CatalogTable)
    app.add_directive("provider-classes", ProviderClasses)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
