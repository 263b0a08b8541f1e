"""A model's identity and catalog facts: ``LlmModel``, written ``provider:model_id``."""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Optional, Tuple

from ._reasoning import ReasoningEffort
from ._values import value

__all__ = ["LlmModel", "ModelPrices"]


@value
class ModelPrices:
    """Dollars per million tokens; None where the catalog gives no price.

    ``cache_read`` prices prompt tokens served from the provider's cache and
    ``cache_write`` those written to it (both part of the prompt's input tokens).
    """

    input: Optional[float] = None
    output: Optional[float] = None
    cache_read: Optional[float] = None
    cache_write: Optional[float] = None


def _descriptive(default: Any) -> Any:
    return dataclasses.field(default=default, compare=False)


@value
class LlmModel:
    """A model at a provider, e.g. ``LlmModel("anthropic", "claude-sonnet-4-5")``.

    Identity is ``provider`` and ``model_id`` only: every other field is descriptive
    (filled from the shipped catalog by :func:`llm_sync.parse_model` and the
    providers' ``model()``) and takes no part in equality or hashing, so a parsed
    model equals the same model carrying its details.
    """

    provider: str
    model_id: str
    display_name: str = _descriptive("")
    context_window: Optional[int] = _descriptive(None)
    max_output_tokens: Optional[int] = _descriptive(None)
    reasoning_levels: Tuple[ReasoningEffort, ...] = _descriptive(())
    supports_image: bool = _descriptive(False)
    supports_audio: bool = _descriptive(False)
    supports_tools: bool = _descriptive(False)
    #: The variable that must hold a key for this model's provider; None when no
    #: key variable is needed (local servers, Codex sign-in, the AWS chain).
    required_env_var: Optional[str] = _descriptive(None)
    prices: Optional[ModelPrices] = _descriptive(None)
    #: The catalog lists PDF among the model's inputs (``ContentBlock.Document``).
    supports_pdf: bool = _descriptive(False)

    def __post_init__(self) -> None:
        if not isinstance(self.provider, str) or not self.provider:
            raise ValueError(f"LlmModel.provider must be a non-empty str, got {self.provider!r}")
        if not isinstance(self.model_id, str):
            raise TypeError(f"LlmModel.model_id must be str, got {type(self.model_id).__name__}")
        levels: Iterable[Any] = self.reasoning_levels
        if levels:
            # Accept any sequence of levels or their names; store a tuple of levels.
            object.__setattr__(self, "reasoning_levels", tuple(ReasoningEffort(v) for v in levels))

    def __str__(self) -> str:
        return f"{self.provider}:{self.model_id}"

    @property
    def supports_reasoning(self) -> bool:
        return bool(self.reasoning_levels)

    @classmethod
    def parse(cls, spec: str) -> LlmModel:
        """Split ``"provider:model_id"`` at the first colon only (``ollama:qwen3:8b``).

        This only splits; :func:`llm_sync.parse_model` also checks the catalog
        and builds the provider.
        """
        provider, sep, model_id = spec.strip().partition(":")
        if not sep or not provider:
            raise ValueError(f"expected 'provider:model_id', got {spec!r}")
        return cls(provider, model_id)
