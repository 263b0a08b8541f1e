"""``python -m llm_sync``: the same command line as the ``llm-sync`` console script."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
