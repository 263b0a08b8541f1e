"""A model's identity: ``LlmModel``, written ``provider:model_id``."""

from __future__ import annotations

import dataclasses
from typing import Optional

from ._values import value

__all__ = ["LlmModel"]


@value
class LlmModel:
    """A model at a provider, e.g. ``LlmModel("anthropic", "claude-sonnet-4-5")``.

    Identity is ``provider`` and ``model_id`` only: ``display_name`` and
    ``context_window`` are descriptive and do not take part in equality or hashing,
    so a parsed model equals the same model carrying its details.
    """

    provider: str
    model_id: str
    display_name: str = dataclasses.field(default="", compare=False)
    context_window: Optional[int] = dataclasses.field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.provider, str) or not self.provider:
            raise ValueError(f"LlmModel.provider must be a non-empty str, got {self.provider!r}")
        if not isinstance(self.model_id, str):
            raise TypeError(f"LlmModel.model_id must be str, got {type(self.model_id).__name__}")

    def __str__(self) -> str:
        return f"{self.provider}:{self.model_id}"

    @classmethod
    def parse(cls, spec: str) -> LlmModel:
        """Split ``"provider:model_id"`` at the first colon only (``ollama:qwen3:8b``)."""
        provider, sep, model_id = spec.strip().partition(":")
        if not sep or not provider:
            raise ValueError(f"expected 'provider:model_id', got {spec!r}")
        return cls(provider, model_id)
