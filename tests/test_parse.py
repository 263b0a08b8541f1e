"""parse_model: model strings to providers, with catalog checks and close-match errors."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Iterator, List

import pytest

from llm_sync import LlmModel, MissingApiKeyError
from llm_sync._alloyed import AlloyedModelProvider
from llm_sync._parse import PROVIDERS, UnknownModelError, UnknownModelWarning, parse_model
from llm_sync.providers._base import StreamingModelProvider
from tests.support.toy import ToyProvider

_KEYS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "ZAI_API_KEY", "OPENROUTER_API_KEY", "TOY_API_KEY",
         "OPENAI_COMPATIBLE_BASE_URL", "OPENAI_COMPATIBLE_API_KEY", "OLLAMA_HOST")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in _KEYS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env found above
    yield


class _Factory:
    """A registry entry that records the model ids it was asked for."""

    def __init__(self) -> None:
        self.calls: List[str] = []

    def __call__(self, model_id: str) -> StreamingModelProvider:
        self.calls.append(model_id)
        return ToyProvider(model=model_id or None)


def test_split_at_the_first_colon_only() -> None:
    toy = _Factory()
    provider, model = parse_model("toy:qwen3:8b", registry={"toy": toy})
    assert isinstance(provider, ToyProvider) and provider.model_name == "qwen3:8b"
    assert toy.calls == ["qwen3:8b"]
    assert model == LlmModel("toy", "qwen3:8b") and str(model) == "toy:qwen3:8b"


def test_no_model_means_the_default_model() -> None:
    provider, model = parse_model("toy", registry={"toy": _Factory()})
    assert provider.display_name() == "Toy (toy-1)"
    assert model == LlmModel("toy", "toy-1")


def test_class_path_entries_are_imported_lazily_and_built_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOY_API_KEY", "toy-key")
    provider, model = parse_model(" toy : abc ", registry={"toy": "tests.support.toy:ToyProvider"})
    assert isinstance(provider, ToyProvider)
    assert provider.model_name == "abc" and provider._api_key == "toy-key"
    assert str(model) == "toy:abc"


def test_commas_give_a_round_robin_over_the_pieces() -> None:
    toy = _Factory()
    provider, model = parse_model("toy:a, toy:b:c ,toy", registry={"toy": toy})
    assert isinstance(provider, AlloyedModelProvider)
    assert [p.display_name() for p in provider.providers] == ["Toy (a)", "Toy (b:c)", "Toy (toy-1)"]
    assert model == LlmModel("toy", "a")  # the first piece's model
    assert toy.calls == ["a", "b:c", ""]


def test_unknown_provider_lists_close_matches() -> None:
    with pytest.raises(UnknownModelError) as info:
        parse_model("antropic:claude-opus-4-6")
    err = info.value
    assert isinstance(err, ValueError)
    assert err.provider == "antropic" and err.model_id is None
    assert "anthropic" in err.suggestions
    assert "unknown provider 'antropic'" in str(err) and "did you mean anthropic" in str(err)


def test_a_bare_model_id_suggests_its_provider() -> None:
    with pytest.raises(UnknownModelError) as info:
        parse_model("claude-opus-4-6")
    assert "anthropic:claude-opus-4-6" in info.value.suggestions


def test_unknown_catalog_model_is_sent_with_a_warning_naming_close_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("llm_sync.providers.anthropic")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    with pytest.warns(UnknownModelWarning) as caught:
        provider, model = parse_model("anthropic:claude-sonet-4-5")
    warning = caught[0].message
    assert isinstance(warning, UnknownModelWarning)
    assert (warning.provider, warning.model_id) == ("anthropic", "claude-sonet-4-5")
    assert "anthropic:claude-sonnet-4-5" in warning.suggestions
    assert "did you mean anthropic:claude-sonnet-4-5" in str(warning)
    assert "llm-sync models --provider anthropic" in str(warning)
    assert caught[0].filename == __file__  # it points at the caller of parse_model
    # Sent as written, with nothing made up about it.
    assert provider.model_name == "claude-sonet-4-5"  # type: ignore[attr-defined]
    assert str(model) == "anthropic:claude-sonet-4-5"
    assert (model.context_window, model.prices) == (None, None)


def test_a_model_newer_than_the_catalog_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("llm_sync.providers.openrouter")
    monkeypatch.setenv("OPENROUTER_API_KEY", "or-test")
    with pytest.warns(UnknownModelWarning, match="openai/gpt-4o"):
        provider, model = parse_model("openrouter:openai/gpt-4o")
    assert provider.model_name == "openai/gpt-4o"  # type: ignore[attr-defined]
    assert provider.context_window() is None and model.prices is None


def test_every_piece_is_checked_before_any_provider_is_built() -> None:
    toy = _Factory()
    with pytest.raises(UnknownModelError, match="no-such-provider"):
        parse_model("toy:a,no-such-provider:x", registry={"toy": toy})
    assert toy.calls == []


def test_an_unknown_local_model_is_a_bad_model_string(tmp_path: Path) -> None:
    toy = _Factory()
    with pytest.raises(UnknownModelError, match="unknown local model 'foo'") as info:
        parse_model("toy:a,local:foo", registry={"toy": toy})
    assert (info.value.provider, info.value.model_id) == ("local", "foo")
    assert toy.calls == []  # checked before anything was built
    not_gguf = tmp_path / "bad.gguf"
    not_gguf.write_bytes(b"<html>not a model</html>")
    with pytest.raises(UnknownModelError, match="is not a GGUF file"):
        parse_model(f"local:{not_gguf}")


@pytest.mark.parametrize(
    "spec, model, base",
    [
        ("m1@localhost:8000/v1", "m1", "http://localhost:8000/v1"),
        ("m1@127.0.0.1:9", "m1", "http://127.0.0.1:9"),
        ("org/m:q4@models.example/v1", "org/m:q4", "http://models.example/v1"),
        ("m1@https://h.example/v1", "m1", "https://h.example/v1"),
    ],
)
def test_a_base_url_without_a_scheme_is_read_as_http(spec: str, model: str, base: str) -> None:
    pytest.importorskip("llm_sync.providers.openai_compatible")
    provider, _ = parse_model(f"openai-compatible:{spec}")
    assert (provider.model_name, provider.base_url) == (model, base)  # type: ignore[attr-defined]


def test_a_bare_word_after_at_stays_in_the_model_name(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("llm_sync.providers.openai_compatible")
    monkeypatch.setenv("OPENAI_COMPATIBLE_BASE_URL", "http://127.0.0.1:9/v1")
    provider, _ = parse_model("openai-compatible:name@v2")
    assert (provider.model_name, provider.base_url) == ("name@v2", "http://127.0.0.1:9/v1")  # type: ignore[attr-defined]


@pytest.mark.parametrize("bad", ["", "  ", "toy:a,,toy:b", "toy:a,"])
def test_empty_specs_and_pieces_are_refused(bad: str) -> None:
    with pytest.raises(UnknownModelError, match="empty"):
        parse_model(bad, registry={"toy": _Factory()})


def test_catalog_model_gets_its_provider_and_facts(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("llm_sync.providers.anthropic")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    provider, model = parse_model("anthropic:claude-opus-4-6")
    assert type(provider).__name__ == "AnthropicProvider"
    assert model.context_window == 1_000_000 and model.prices is not None
    assert provider.context_window() == 1_000_000
    assert provider.model() == model


def test_missing_key_is_the_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("llm_sync.providers.anthropic")
    with pytest.raises(MissingApiKeyError, match="ANTHROPIC_API_KEY"):
        parse_model("anthropic:claude-sonnet-4-5")


def test_readme_example_zai_upper_case(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("llm_sync.providers.presets")
    monkeypatch.setenv("ZAI_API_KEY", "zai-test")
    provider, model = parse_model("zai:GLM-4.6")
    assert str(model) == "zai:glm-4.6" and model.context_window == 204_800
    assert provider.model_name == "glm-4.6"  # the catalog's spelling is sent
    assert provider.context_window() == 204_800


def test_openrouter_ids_keep_their_slash(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("llm_sync.providers.openrouter")
    monkeypatch.setenv("OPENROUTER_API_KEY", "or-test")
    provider, model = parse_model("openrouter:anthropic/claude-opus-4")
    assert model.context_window == 200_000 and provider.context_window() == 200_000


def test_dynamic_providers_accept_any_name_with_colons() -> None:
    pytest.importorskip("llm_sync.providers.ollama")
    provider, model = parse_model("ollama:qwen3:8b")
    assert type(provider).__name__ == "OllamaProvider"
    assert provider.model_name == "qwen3:8b"
    assert str(model) == "ollama:qwen3:8b"


def test_openai_compatible_with_a_base_url_round_trips() -> None:
    pytest.importorskip("llm_sync.providers.openai_compatible")
    provider, model = parse_model("openai-compatible:org/my-model:q4@http://127.0.0.1:9/v1")
    assert provider.model_name == "org/my-model:q4"
    assert provider.base_url == "http://127.0.0.1:9/v1"
    assert str(model) == "openai-compatible:org/my-model:q4@http://127.0.0.1:9/v1"
    again, same = parse_model(str(model))
    assert same == model and again.base_url == "http://127.0.0.1:9/v1"


def test_openai_compatible_takes_the_base_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("llm_sync.providers.openai_compatible")
    monkeypatch.setenv("OPENAI_COMPATIBLE_BASE_URL", "http://127.0.0.1:9/v1")
    provider, model = parse_model("openai-compatible:m1")
    assert provider.base_url == "http://127.0.0.1:9/v1"
    assert str(model) == "openai-compatible:m1@http://127.0.0.1:9/v1"


def test_local_without_the_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "xllamacpp", None)  # as if the extra were not installed
    with pytest.raises(ImportError) as info:
        parse_model("local")
    message = str(info.value)
    if sys.version_info >= (3, 10):
        assert 'pip install "llm-sync[local]"' in message
        assert 'from a source checkout: pip install ".[local]"' in message
    else:  # the extra installs nothing on 3.9: repeating its command would not help
        assert "needs Python 3.10 or newer (this is Python 3.9" in message
        assert "pip install" not in message


def test_registry_entries_name_real_classes() -> None:
    assert set(PROVIDERS) >= {
        "anthropic", "openai", "openrouter", "gemini", "ollama", "llamacpp", "deepseek", "moonshot",
        "zai", "bedrock", "codex", "openai-compatible",
    }
    for key, target in PROVIDERS.items():
        module, _, name = target.partition(":")
        if importlib.util.find_spec(module) is None:
            continue  # written by another change
        cls = getattr(importlib.import_module(module), name)
        assert issubclass(cls, StreamingModelProvider), key
        assert callable(cls.from_env), key


def test_a_missing_provider_module_is_a_clear_import_error() -> None:
    with pytest.raises(ImportError, match="provider 'ghost' is not available"):
        parse_model("ghost:x", registry={"ghost": "llm_sync.providers.no_such_module:Ghost"})
