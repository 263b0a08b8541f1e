"""Tests for the LlmModel identity value."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from llm_sync import LlmModel


def test_str_is_provider_colon_model_id() -> None:
    assert str(LlmModel("anthropic", "claude-sonnet-4-5")) == "anthropic:claude-sonnet-4-5"


def test_parse_splits_at_the_first_colon_only() -> None:
    m = LlmModel.parse("ollama:qwen3:8b")
    assert (m.provider, m.model_id) == ("ollama", "qwen3:8b")
    assert str(m) == "ollama:qwen3:8b"
    b = LlmModel.parse("bedrock:anthropic.claude-3-haiku-20240307-v1:0")
    assert b.model_id == "anthropic.claude-3-haiku-20240307-v1:0"


def test_parse_round_trips_through_str() -> None:
    for spec in ("openai:gpt-4.1", "openrouter:anthropic/claude-opus-4", "llamacpp:", "ollama:qwen3:8b"):
        assert str(LlmModel.parse(spec)) == spec


@pytest.mark.parametrize("bad", ["", "anthropic", ":model", "  "])
def test_parse_rejects_specs_without_provider_and_colon(bad: str) -> None:
    with pytest.raises(ValueError, match="provider:model_id"):
        LlmModel.parse(bad)


def test_identity_ignores_descriptive_fields() -> None:
    plain = LlmModel.parse("anthropic:claude-opus-4-6")
    rich = LlmModel("anthropic", "claude-opus-4-6", display_name="Claude Opus 4.6", context_window=1_000_000)
    assert plain == rich
    assert hash(plain) == hash(rich)
    assert rich.context_window == 1_000_000
    assert plain != LlmModel("openai", "claude-opus-4-6")


def test_frozen_and_picklable() -> None:
    m = LlmModel("gemini", "gemini-2.5-pro", "Gemini 2.5 Pro", 1_048_576)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.model_id = "x"  # type: ignore[misc]
    again = pickle.loads(pickle.dumps(m))
    assert again == m and again.display_name == "Gemini 2.5 Pro"


def test_empty_provider_is_refused() -> None:
    with pytest.raises(ValueError):
        LlmModel("", "x")
