"""Generate ``llm_sync/catalog.json`` from a models.dev snapshot (``api.json``).

Usage::

    python scripts/build_catalog.py [SNAPSHOT] [-o OUTPUT]

SNAPSHOT defaults to ``../shared/data/models.dev.json`` next to the repository and OUTPUT to
``llm_sync/catalog.json``. The filters are the reference crate's: per catalog provider keep the
models that support tool calls, drop ``-latest`` aliases, apply the provider's id filter (Codex:
the GPT-5 family and ``*codex*``), merge the extra sources (Z.ai's coding plan) without
overriding ids already present, and sort by id. Azure and Vertex (not in the crate) keep the models
their providers serve (Azure: not Claude; Vertex: Gemini and Claude, with models.dev's ``@default``
dropped from undated Claude ids); Azure is marked ``deployments``: its model strings name
deployments, so any name is accepted. Unlike the crate, the output limit and the
prices (dollars per million tokens) are kept. The output is deterministic: one model per line,
keys sorted, so a regenerated file diffs cleanly and the staleness test can compare bytes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SNAPSHOT = REPO.parent / "shared" / "data" / "models.dev.json"
DEFAULT_OUTPUT = REPO / "llm_sync" / "catalog.json"

FORMAT = 1
_BASIC = ["low", "medium", "high"]
_XHIGH = ["low", "medium", "high", "xhigh"]


def _codex(model_id: str) -> bool:
    return "codex" in model_id or model_id.startswith("gpt-5.") or model_id == "gpt-5"


def _azure(model_id: str) -> bool:
    # Claude on Azure speaks the Anthropic Messages API, not Azure OpenAI's.
    return not model_id.startswith("claude")


def _vertex(model_id: str) -> bool:
    # What VertexGeminiProvider and VertexAnthropicProvider serve (not the OpenAI-style MaaS models).
    return model_id.startswith(("gemini-", "claude-"))


def _vertex_id(model_id: str) -> str:
    # models.dev writes Vertex's undated Claude ids as "claude-opus-4-6@default"; Vertex's own
    # model id (the one the URL takes) has no suffix.
    return model_id[: -len("@default")] if model_id.endswith("@default") else model_id


# (parser key, label, models.dev keys (first is the main source), env var, reasoning levels, filter)
PROVIDERS: List[Dict[str, Any]] = [
    {"key": "anthropic", "label": "Anthropic", "sources": ["anthropic"], "env": "ANTHROPIC_API_KEY"},
    {"key": "codex", "label": "Codex", "sources": ["openai"], "env": None, "levels": _XHIGH,
     "filter": _codex},
    {"key": "deepseek", "label": "DeepSeek", "sources": ["deepseek"], "env": "DEEPSEEK_API_KEY"},
    {"key": "gemini", "label": "Gemini", "sources": ["google"], "env": "GEMINI_API_KEY"},
    {"key": "moonshot", "label": "Moonshot", "sources": ["moonshotai"], "env": "MOONSHOT_API_KEY"},
    {"key": "openai", "label": "OpenAI", "sources": ["openai"], "env": "OPENAI_API_KEY"},
    {"key": "openrouter", "label": "OpenRouter", "sources": ["openrouter"],
     "env": "OPENROUTER_API_KEY"},
    {"key": "zai", "label": "Z.ai", "sources": ["zai", "zai-coding-plan"], "env": "ZAI_API_KEY"},
    {"key": "bedrock", "label": "AWS Bedrock", "sources": ["amazon-bedrock"], "env": None},
    # Azure model strings name deployments, which users name: any name is accepted, and the
    # catalog describes a deployment named after its model.
    {"key": "azure", "label": "Azure OpenAI", "sources": ["azure"], "env": "AZURE_OPENAI_API_KEY",
     "filter": _azure, "deployments": True},
    {"key": "vertex", "label": "Vertex AI", "sources": ["google-vertex", "google-vertex-anthropic"],
     "env": None, "filter": _vertex, "rename": _vertex_id},
]

_PRICE_FIELDS = ("input", "output", "cache_read", "cache_write")


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    # Integral prices are written as ints so the file stays short and stable.
    return int(value) if float(value).is_integer() else float(value)


def _entry(raw: Dict[str, Any], levels: Sequence[str]) -> Dict[str, Any]:
    limit = raw.get("limit") or {}
    modalities = raw.get("modalities")
    inputs = list(modalities.get("input") or ["text"]) if isinstance(modalities, dict) else ["text"]
    entry: Dict[str, Any] = {
        "id": raw["id"],
        "name": raw.get("name") or raw["id"],
        "context": int(limit.get("context") or 0),
        "input": sorted(set(inputs)),
        "tools": bool(raw.get("tool_call")),
    }
    if limit.get("output"):
        entry["output"] = int(limit["output"])
    if raw.get("reasoning") is True:
        entry["reasoning"] = list(levels)
    cost = raw.get("cost")
    if isinstance(cost, dict):
        prices = {f: _number(cost.get(f)) for f in _PRICE_FIELDS}
        prices = {f: p for f, p in prices.items() if p is not None}
        if prices:
            entry["cost"] = prices
    return entry


def build(data: Dict[str, Any]) -> Dict[str, Any]:
    """The catalog document for a parsed models.dev snapshot."""
    providers = []
    for spec in PROVIDERS:
        keep: Callable[[str], bool] = spec.get("filter") or (lambda _id: True)
        rename: Callable[[str], str] = spec.get("rename") or (lambda mid: mid)
        levels = spec.get("levels", _BASIC)
        models: Dict[str, Dict[str, Any]] = {}
        for source in spec["sources"]:
            if source not in data:
                raise SystemExit(f"models.dev snapshot has no provider {source!r}")
            for model_id, raw in sorted(data[source]["models"].items()):
                raw = dict(raw, id=rename(raw.get("id", model_id)))
                mid = raw["id"]
                if raw.get("tool_call") is not True or mid.endswith("-latest") or not keep(mid):
                    continue
                if mid in models:  # an extra source never overrides the main one
                    continue
                models[mid] = _entry(raw, levels)
        entry = {"key": spec["key"], "label": spec["label"], "env": spec["env"]}
        if spec.get("deployments"):
            entry["deployments"] = True
        entry["models"] = [models[k] for k in sorted(models)]
        providers.append(entry)
    return {"format": FORMAT, "source": "models.dev", "providers": providers}


def render(doc: Dict[str, Any]) -> str:
    """Compact, deterministic JSON with one model per line."""

    def dump(v: Any) -> str:
        return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    lines = ['{"format":' + str(doc["format"]) + ',"source":' + dump(doc["source"]) + ',"providers":[']
    for i, p in enumerate(doc["providers"]):
        head = {k: v for k, v in p.items() if k != "models"}
        lines.append(dump(head)[:-1] + ',"models":[')
        models = p["models"]
        for j, m in enumerate(models):
            lines.append(dump(m) + ("," if j + 1 < len(models) else ""))
        lines.append("]}" + ("," if i + 1 < len(doc["providers"]) else ""))
    lines.append("]}")
    return "\n".join(lines) + "\n"


def generate(snapshot: Path) -> str:
    with open(snapshot, encoding="utf-8") as f:
        return render(build(json.load(f)))


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("snapshot", nargs="?", type=Path, default=DEFAULT_SNAPSHOT)
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    text = generate(args.snapshot)
    args.output.write_text(text, encoding="utf-8")
    counts = ", ".join(
        f"{p['key']} {len(p['models'])}" for p in json.loads(text)["providers"]
    )
    print(f"wrote {args.output} ({len(text.encode())} bytes): {counts}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
