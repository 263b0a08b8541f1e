"""How hard a model should think: ``ReasoningEffort``."""

from __future__ import annotations

import enum
from typing import Optional, Sequence

__all__ = ["ReasoningEffort"]


class ReasoningEffort(str, enum.Enum):
    """Reasoning effort, lowest first; each provider maps it to its own knob."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    XHIGH = "xhigh"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def all(cls) -> tuple[ReasoningEffort, ...]:
        return tuple(cls)

    def ordinal(self) -> int:
        """Position in :meth:`all` (LOW is 0)."""
        return _ORDER.index(self)

    @classmethod
    def parse(cls, text: Optional[str]) -> Optional[ReasoningEffort]:
        """``"none"`` or ``""`` give None; the four names give a level; anything else raises ValueError."""
        if text is None:
            return None
        t = text.strip().lower()
        if t in ("", "none"):
            return None
        try:
            return cls(t)
        except ValueError:
            raise ValueError(
                f"Unknown reasoning effort: {text!r}; use one of none, low, medium, high, xhigh"
            ) from None

    @staticmethod
    def config_str(effort: Optional[ReasoningEffort]) -> str:
        return "none" if effort is None else effort.value

    @staticmethod
    def cycle_within(
        current: Optional[ReasoningEffort], levels: Sequence[ReasoningEffort]
    ) -> Optional[ReasoningEffort]:
        """The next level after ``current`` in ``levels``; None after the last (or when unknown)."""
        if not levels:
            return None
        if current is None:
            return levels[0]
        if current not in levels:
            return None
        i = list(levels).index(current)
        return levels[i + 1] if i + 1 < len(levels) else None

    def clamp_to(self, levels: Sequence[ReasoningEffort]) -> ReasoningEffort:
        """This level if offered, else the highest offered level below it, else the lowest offered."""
        if not levels:
            raise ValueError("clamp_to needs at least one level")
        if self in levels:
            return self
        below = [lv for lv in levels if lv.ordinal() <= self.ordinal()]
        if below:
            return max(below, key=lambda lv: lv.ordinal())
        return levels[0]


_ORDER = tuple(ReasoningEffort)
