"""Keys: explicit argument, then the environment, then a ``.env`` that never overrides."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llm_sync import MissingApiKeyError
from tests.support.toy import ToyProvider


class KeyedToy(ToyProvider):
    key_variable = "TOY_API_KEY"
    key_required = True


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.delenv("TOY_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_missing_key_names_the_variable_and_the_argument(clean: Path) -> None:
    with pytest.raises(MissingApiKeyError) as info:
        KeyedToy()
    assert info.value.variable == "TOY_API_KEY"
    assert "TOY_API_KEY" in str(info.value) and "api_key=" in str(info.value)


def test_explicit_beats_environment(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOY_API_KEY", "sk-from-environment-123456")
    assert KeyedToy(api_key="sk-explicit-key-123456")._api_key == "sk-explicit-key-123456"
    assert KeyedToy()._api_key == "sk-from-environment-123456"


def test_dotenv_found_upwards_is_read_without_touching_the_environment(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean / ".env").write_text("TOY_API_KEY=sk-from-dotenv-file-123456\n")
    sub = clean / "a" / "b"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    assert KeyedToy()._api_key == "sk-from-dotenv-file-123456"
    assert "TOY_API_KEY" not in os.environ


def test_from_env_loads_dotenv_but_never_overrides(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean / ".env").write_text("TOY_API_KEY=sk-from-dotenv-file-123456\nTOY_OTHER=x\n")
    monkeypatch.setenv("TOY_API_KEY", "sk-already-set-123456")
    monkeypatch.delenv("TOY_OTHER", raising=False)
    try:
        assert KeyedToy.from_env()._api_key == "sk-already-set-123456"
        assert os.environ["TOY_OTHER"] == "x"
    finally:
        os.environ.pop("TOY_OTHER", None)


def test_the_key_never_shows_in_repr(clean: Path) -> None:
    p = KeyedToy(api_key="sk-secret-value-abcdef123456")
    assert "secret-value" not in repr(p)
    assert "sk-...456" in repr(p)
