"""The shipped catalog: lookups, round trips, staleness against the snapshot, costs, availability."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator, Optional

import pytest

from llm_sync import LlmModel, LlmResponse, ReasoningEffort
from llm_sync import _catalog as catalog
from llm_sync._model import ModelPrices

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = REPO.parent / "shared" / "data" / "models.dev.json"
CATALOG = REPO / "llm_sync" / "catalog.json"

_KEY_VARS = (
    "ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY", "OPENROUTER_API_KEY",
    "DEEPSEEK_API_KEY", "MOONSHOT_API_KEY", "ZAI_API_KEY", "CODEX_HOME",
    "AWS_BEARER_TOKEN_BEDROCK", "AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AZURE_OPENAI_API_KEY",
    "GOOGLE_CLOUD_PROJECT", "GOOGLE_VERTEX_PROJECT", "ANTHROPIC_VERTEX_PROJECT_ID",
    "GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_CONFIG",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No keys in the environment, no .env above the working directory, an empty HOME."""
    for name in _KEY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    yield tmp_path


# -- the crate's examples and the shape of entries --------------------------------------


@pytest.mark.parametrize(
    "spec, window",
    [
        ("anthropic:claude-opus-4-6", 1_000_000),
        ("codex:gpt-5.5", 1_050_000),
        ("openrouter:anthropic/claude-opus-4", 200_000),
        ("zai:glm-4.6", 204_800),
    ],
)
def test_crate_examples(spec: str, window: int) -> None:
    m = LlmModel.parse(spec)
    found = catalog.lookup(m.provider, m.model_id)
    assert found is not None and found.context_window == window
    assert str(found) == spec


def test_entry_carries_every_fact() -> None:
    m = catalog.lookup("anthropic", "claude-opus-4-6")
    assert m is not None
    assert m.display_name == "Claude Opus 4.6"
    assert m.max_output_tokens == 128_000
    assert m.reasoning_levels == (ReasoningEffort.LOW, ReasoningEffort.MEDIUM, ReasoningEffort.HIGH)
    assert m.supports_reasoning and m.supports_image and m.supports_tools and not m.supports_audio
    assert m.required_env_var == "ANTHROPIC_API_KEY"
    assert m.prices == ModelPrices(input=5.0, output=25.0, cache_read=0.5, cache_write=6.25)


def test_codex_has_xhigh_and_needs_no_key_variable() -> None:
    m = catalog.lookup("codex", "gpt-5.5")
    assert m is not None
    assert m.reasoning_levels[-1] is ReasoningEffort.XHIGH
    assert m.required_env_var is None
    assert all(
        "codex" in x.model_id or x.model_id == "gpt-5" or x.model_id.startswith("gpt-5.")
        for x in catalog.all_models("codex")
    )


def test_counts_follow_the_crate_filters() -> None:
    counts = {p: len(catalog.all_models(p)) for p in catalog.catalog_providers()}
    # seed.md §6: the crate's counts for the same snapshot.
    assert counts == {
        "anthropic": 22, "codex": 16, "deepseek": 4, "gemini": 25, "moonshot": 7,
        "openai": 37, "openrouter": 148, "zai": 13, "bedrock": 93,
        # Not in the crate: Azure's (no Claude: it speaks Anthropic's API there) and Vertex's
        # Gemini and Claude models.
        "azure": 71, "vertex": 29,
    }
    assert len(catalog.all_models()) == sum(counts.values())
    assert not any(m.model_id.endswith("-latest") for m in catalog.all_models())
    assert all(m.supports_tools for m in catalog.all_models())


def test_zai_merges_the_coding_plan_without_duplicates() -> None:
    ids = catalog.model_ids("zai")
    assert len(ids) == len(set(ids)) and list(ids) == sorted(ids)
    assert "glm-4.6" in ids and "glm-5-turbo" in ids


def test_every_model_round_trips_through_its_string() -> None:
    for m in catalog.all_models():
        again = LlmModel.parse(str(m))
        assert again == m
        assert catalog.lookup(again.provider, again.model_id) is m


def test_ids_are_sorted_within_each_provider_in_catalog_order() -> None:
    assert catalog.catalog_providers() == (
        "anthropic", "codex", "deepseek", "gemini", "moonshot", "openai", "openrouter", "zai", "bedrock",
        "azure", "vertex",
    )
    for p in catalog.catalog_providers():
        ids = list(catalog.model_ids(p))
        assert ids == sorted(ids)
    assert catalog.provider_label("openrouter") == "OpenRouter"
    assert catalog.provider_label("ollama") is None


# -- tolerant lookups ---------------------------------------------------------------------


def test_case_is_tolerated_and_answers_with_the_catalog_id() -> None:
    m = catalog.lookup("zai", "GLM-4.6")  # the crate README's example
    assert m is not None and m.model_id == "glm-4.6" and m.context_window == 204_800


def test_latest_alias_and_missing_date_find_the_single_dated_entry() -> None:
    dated = catalog.lookup("anthropic", "claude-3-5-haiku-20241022")
    assert dated is not None
    for alias in ("claude-3-5-haiku-latest", "claude-3-5-haiku", "Claude-3-5-Haiku-Latest"):
        m = catalog.lookup("anthropic", alias)
        assert m is not None, alias
        # The id as written is what the provider is sent; the facts are the entry's.
        assert m.model_id == alias
        assert (m.context_window, m.prices) == (dated.context_window, dated.prices)


def test_a_dated_snapshot_finds_the_undated_entry_when_it_is_the_only_one() -> None:
    base = catalog.lookup("openai", "gpt-4.1")
    dated = catalog.lookup("openai", "gpt-4.1-2025-04-14")
    assert base is not None and dated is not None
    assert dated.model_id == "gpt-4.1-2025-04-14" and dated.context_window == base.context_window
    # gpt-4o has several dated entries of its own: an unknown date is ambiguous.
    assert catalog.lookup("openai", "gpt-4o-2031-01-01") is None


def test_ambiguous_or_unknown_ids_find_nothing() -> None:
    # Two dated Claude 3.5 Sonnets share the stem: no guessing.
    assert len([i for i in catalog.model_ids("anthropic") if i.startswith("claude-3-5-sonnet-")]) == 2
    assert catalog.lookup("anthropic", "claude-3-5-sonnet-latest") is None
    assert catalog.lookup("anthropic", "claude-nonexistent") is None
    assert catalog.lookup("ollama", "qwen3:8b") is None
    assert catalog.lookup("nope", "x") is None


# -- staleness ----------------------------------------------------------------------------


def test_catalog_json_is_current_with_the_snapshot(tmp_path: Path) -> None:
    if not SNAPSHOT.is_file():
        pytest.skip(f"{SNAPSHOT} is absent")
    out = tmp_path / "catalog.json"
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "build_catalog.py"), str(SNAPSHOT), "-o", str(out)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert out.read_bytes() == CATALOG.read_bytes(), (
        "llm_sync/catalog.json is stale: run python scripts/build_catalog.py"
    )


def test_catalog_json_is_small_and_valid() -> None:
    data = CATALOG.read_bytes()
    assert len(data) < 120_000
    doc = json.loads(data)
    assert doc["format"] == 1 and {p["key"] for p in doc["providers"]} == set(catalog.catalog_providers())


def test_the_catalog_loads_lazily() -> None:
    code = (
        "import llm_sync, llm_sync._catalog as c, llm_sync.providers._base\n"
        "assert c._loaded is None\n"
        "c.lookup('anthropic', 'claude-opus-4-6')\n"
        "assert c._loaded is not None\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


# -- cost -----------------------------------------------------------------------------------


def test_cost_prices_cache_reads_and_writes_separately() -> None:
    m = catalog.lookup("anthropic", "claude-opus-4-6")
    assert m is not None
    usage = LlmResponse.Usage(
        input_tokens=1_000_000, output_tokens=10_000, cached_input_tokens=200_000, cache_creation_tokens=100_000
    )
    # 700k uncached at $5, 200k read at $0.5, 100k written at $6.25, 10k out at $25.
    expected = (700_000 * 5 + 200_000 * 0.5 + 100_000 * 6.25 + 10_000 * 25) / 1e6
    assert catalog.estimate_cost(m, usage) == pytest.approx(expected)
    assert expected == pytest.approx(4.475)


def test_cost_of_a_bare_model_or_string_uses_the_catalog() -> None:
    usage = LlmResponse.Usage(input_tokens=2_000, output_tokens=1_000)
    want = (2_000 * 5 + 1_000 * 25) / 1e6
    assert catalog.estimate_cost(LlmModel("anthropic", "claude-opus-4-6"), usage) == pytest.approx(want)
    assert catalog.estimate_cost("anthropic:claude-opus-4-6", usage) == pytest.approx(want)


def test_cost_without_prices_is_none_and_missing_cache_prices_fall_back_to_input() -> None:
    usage = LlmResponse.Usage(input_tokens=100, output_tokens=10, cached_input_tokens=40)
    assert catalog.estimate_cost(LlmModel("ollama", "qwen3:8b"), usage) is None
    partial = LlmModel("x", "y", prices=ModelPrices(input=1.0, output=2.0))
    assert catalog.estimate_cost(partial, usage) == pytest.approx((100 * 1 + 10 * 2) / 1e6)
    no_output = LlmModel("x", "y", prices=ModelPrices(input=1.0))
    assert catalog.estimate_cost(no_output, usage) is None


def test_cost_never_counts_negative_uncached_tokens() -> None:
    m = LlmModel("x", "y", prices=ModelPrices(input=1.0, output=1.0, cache_read=0.0))
    odd = LlmResponse.Usage(input_tokens=10, output_tokens=0, cached_input_tokens=50)
    assert catalog.estimate_cost(m, odd) == 0.0


# -- availability --------------------------------------------------------------------------


def test_available_models_follow_keys_in_the_environment(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert catalog.available_models() == []
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    assert {m.provider for m in catalog.available_models()} == {"anthropic"}
    assert len(catalog.available_models()) == 22


def test_available_models_read_a_dotenv(clean_env: Path) -> None:
    (clean_env / ".env").write_text("OPENROUTER_API_KEY=or-test\n")
    assert {m.provider for m in catalog.available_models()} == {"openrouter"}
    assert "OPENROUTER_API_KEY" not in os.environ  # read, not applied


def test_codex_and_bedrock_count_when_signed_in(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean_env / ".codex").mkdir()
    (clean_env / ".codex" / "auth.json").write_text("{}")
    assert {m.provider for m in catalog.available_models()} == {"codex"}
    monkeypatch.setenv("AWS_PROFILE", "dev")
    assert {m.provider for m in catalog.available_models()} == {"codex", "bedrock"}


def test_vertex_counts_with_a_project_and_adc_and_azure_never(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Azure's callable models are the user's deployments, which no file shows.
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "az-test")
    assert catalog.available_models() == []
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p")
    assert catalog.available_models() == []  # a project, but no credentials
    adc = clean_env / ".config" / "gcloud" / "application_default_credentials.json"
    adc.parent.mkdir(parents=True)
    adc.write_text("{}")
    assert {m.provider for m in catalog.available_models()} == {"vertex"}
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))
    assert catalog.available_models() == []  # credentials, but no project


def test_azure_names_deployments_and_vertex_ids_are_vertexs() -> None:
    assert catalog.names_deployments("azure") and not catalog.names_deployments("openai")
    assert not any(m.model_id.startswith("claude") for m in catalog.all_models("azure"))
    ids = catalog.model_ids("vertex")
    assert "claude-sonnet-4-5@20250929" in ids and "claude-opus-4-6" in ids and "gemini-2.5-pro" in ids
    assert not any("@default" in i or "/" in i for i in ids)


def test_get_local_models_adds_discovered_ones(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if importlib.util.find_spec("llm_sync.providers.discovery") is None:
        pytest.skip("llm_sync.providers.discovery is not written yet")
    import llm_sync.providers.discovery as discovery

    local = [LlmModel("ollama", "qwen3:8b")]

    def fake(hosts: Optional[object] = None, timeout: float = 0.5) -> list[LlmModel]:
        return local

    monkeypatch.setattr(discovery, "discover_local_models", fake)
    monkeypatch.setenv("DEEPSEEK_API_KEY", "ds")
    got = catalog.get_local_models()
    assert got[-1] == LlmModel("ollama", "qwen3:8b")
    assert {m.provider for m in got} == {"deepseek", "ollama"}


# -- providers answer from the catalog --------------------------------------------------------


@pytest.mark.parametrize(
    "module, cls, model, window",
    [
        ("anthropic", "AnthropicProvider", "claude-opus-4-6", 1_000_000),
        ("openrouter", "OpenRouterProvider", "anthropic/claude-opus-4", 200_000),
        ("presets", "ZaiProvider", "glm-4.6", 204_800),
        ("presets", "ZaiProvider", "GLM-4.6", 204_800),
        ("openai", "OpenAiProvider", "gpt-5.5", 1_050_000),
        ("gemini", "GeminiProvider", "gemini-2.5-pro", None),
    ],
)
def test_providers_answer_context_window_from_the_catalog(
    module: str, cls: str, model: str, window: Optional[int]
) -> None:
    mod = pytest.importorskip(f"llm_sync.providers.{module}")
    provider = getattr(mod, cls)(api_key="k", model=model)
    expected = window
    if expected is None:
        found = catalog.lookup("gemini", model)
        assert found is not None
        expected = found.context_window
    assert provider.context_window() == expected


def test_http_provider_model_is_the_catalog_entry() -> None:
    mod = pytest.importorskip("llm_sync.providers.anthropic")
    p = mod.AnthropicProvider(api_key="k", model="claude-opus-4-6")
    m = p.model()
    assert m is not None and m.prices is not None and m.max_output_tokens == 128_000
    assert mod.AnthropicProvider(api_key="k", model="my-finetune").model() is None
    assert mod.AnthropicProvider(api_key="k", model="my-finetune").context_window() is None


def test_codex_provider_answers_from_the_catalog() -> None:
    mod = pytest.importorskip("llm_sync.providers.codex")
    p = mod.CodexProvider(model="gpt-5.5")
    assert p.context_window() == 1_050_000


def test_providers_outside_the_catalog_answer_none() -> None:
    from tests.support.toy import ToyProvider

    p = ToyProvider(model="claude-opus-4-6")
    assert p.context_window() is None and p.model() is None

    class Borrowing(ToyProvider):
        catalog_provider = "anthropic"

    assert Borrowing(model="claude-opus-4-6").context_window() == 1_000_000


def test_replace_keeps_equality_on_identity_only() -> None:
    m = catalog.lookup("anthropic", "claude-opus-4-6")
    assert m is not None
    assert dataclasses.replace(m, context_window=1) == m
