"""How many tokens a context makes (``TokenCount``) and whether that fits a window."""

from __future__ import annotations

from typing import Any, Optional

from ._errors import ContextOverflowError, JsonParsingError
from ._values import value

__all__ = ["TokenCount", "overflow", "read_count"]


@value
class TokenCount:
    """The input tokens a context makes for one provider's model.

    ``exact`` is True when the provider's own count endpoint (or, for llama.cpp,
    the server's own template and tokenizer) gave the number, which is then what
    the provider reports as ``Usage.input_tokens`` for the same context; False
    when it is ``Context.estimated_token_count()`` (UTF-8 bytes / 4, media data
    included), a rough figure.
    """

    input_tokens: int
    exact: bool

    def __post_init__(self) -> None:
        n = self.input_tokens
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"TokenCount.input_tokens must be a non-negative int, got {n!r}")
        if not isinstance(self.exact, bool):
            raise TypeError(f"TokenCount.exact must be a bool, got {type(self.exact).__name__}")


def read_count(answer: Any, *path: str, where: str) -> int:
    """The non-negative int at ``path`` in a count endpoint's JSON ``answer``, or ``JsonParsingError``."""
    found: Any = answer
    for key in path:
        found = found.get(key) if isinstance(found, dict) else None
    if isinstance(found, bool) or not isinstance(found, int) or found < 0:
        raise JsonParsingError(
            f"{where} answered without a token count at {'.'.join(path)!r}: {str(answer)[:200]!r}"
        )
    return found


def overflow(
    count: TokenCount,
    window: Optional[int],
    *,
    max_output: Optional[int] = None,
    who: str,
) -> Optional[ContextOverflowError]:
    """The ``ContextOverflowError`` when ``count`` (plus ``max_output``) exceeds ``window``, else None."""
    if window is None:
        return None
    requested = count.input_tokens + (max_output or 0)
    if requested <= window:
        return None
    how = "counted" if count.exact else "estimated (UTF-8 bytes / 4)"
    plus = f" + {max_output} for the answer" if max_output else ""
    return ContextOverflowError(
        f"the context is {count.input_tokens} tokens ({how}){plus}, more than the "
        f"{window}-token window of {who}; nothing was sent: shorten it "
        "(Context.compact(provider, keep_last=N) summarises older turns) or use a model "
        "with a larger window",
        requested_tokens=requested,
        max_tokens=window,
    )
