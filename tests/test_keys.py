"""Keys: explicit argument, then the environment, then a ``.env`` that never overrides; checked where they come in."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llm_sync import InvalidApiKeyError, LlmError, MissingApiKeyError
from tests.support.faults import Flavor, flavor_params
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


# -- Key types and values are checked where keys come in ------------------------------


class LocalToy(ToyProvider):
    """A provider that may go without a key (as Ollama and llama.cpp do)."""

    key_variable = "TOY_API_KEY"
    key_required = False


BAD_VALUES = {
    "a line break inside": ("sk-abc123\ndef456ghi789", "a line break (\\n) at character 10 of 22"),
    "a carriage return inside": ("sk-abc123\rdef456ghi789", "a carriage return (\\r) at character 10"),
    "a space inside": ("sk-abc123 def456ghi789", "a space at character 10"),
    "a tab inside": ("sk-abc123\tdef456ghi789", "a tab at character 10"),
    "a control character": ("sk-abc123\x00def456ghi789", "a control character (U+0000) at character 10"),
    "a non-ASCII character": ("sk-abc123\u2013def456ghi789", "a non-ASCII character (U+2013) at character 10"),
}


@pytest.mark.parametrize("cls", [KeyedToy, LocalToy], ids=["required", "optional"])
@pytest.mark.parametrize("key", [b"sk-bytes-key-0123456789", bytearray(b"sk-bytes-key-0123456789"), 12345678])
def test_a_key_that_is_not_text_is_a_type_error_naming_the_fix(clean: Path, cls: type, key: object) -> None:
    with pytest.raises(TypeError) as info:
        cls(api_key=key)
    message = str(info.value)
    assert f"must be a str, not {type(key).__name__}" in message and "api_key=" in message
    if isinstance(key, (bytes, bytearray)):
        assert "key.decode()" in message and "0123456789" not in message
    # Error handling elsewhere in the process is unaffected (a bytes key used to make
    # every later error construction raise TypeError).
    assert str(LlmError("an unrelated failure", body="sk-elsewhere-0123456789")) == "an unrelated failure"


@pytest.mark.parametrize("cls", [KeyedToy, LocalToy], ids=["required", "optional"])
@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_a_malformed_key_is_refused_at_construction_without_echoing_it(clean: Path, cls: type, case: str) -> None:
    key, expected = BAD_VALUES[case]
    with pytest.raises(InvalidApiKeyError) as info:
        cls(api_key=key)
    text = f"{info.value}\n{info.value!r}"
    assert expected in text and "(api_key=)" in text and not info.value.retryable
    assert "abc123" not in text and "def456" not in text, text


def test_a_malformed_key_from_the_environment_names_the_variable(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOY_API_KEY", "sk-abc123\ndef456ghi789")
    for cls in (KeyedToy, LocalToy):
        with pytest.raises(InvalidApiKeyError, match=r"\(TOY_API_KEY\) has a line break"):
            cls()


def test_surrounding_whitespace_is_dropped(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A key read from a file usually ends in a newline: that is not part of the key.
    assert KeyedToy(api_key="  sk-padded-key-0123456789\n")._api_key == "sk-padded-key-0123456789"
    monkeypatch.setenv("TOY_API_KEY", "sk-env-padded-0123456789\r\n")
    assert LocalToy()._api_key == "sk-env-padded-0123456789"


@pytest.mark.parametrize("flavor", flavor_params())
def test_every_provider_checks_its_key(clean: Path, flavor: Flavor) -> None:
    with pytest.raises(InvalidApiKeyError, match="line break"):
        flavor.build("http://127.0.0.1:9", "sk-abc123\ndef456ghi789", None, 0)
    with pytest.raises(TypeError, match="decode"):
        flavor.build("http://127.0.0.1:9", b"sk-abc123def456ghi789", None, 0)
