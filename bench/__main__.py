"""``python -m bench [--quick | --smoke] [--sections ...]``: run the benchmark and write bench/results/<stamp>.md/.json."""

from __future__ import annotations

import sys

from bench.run import main

if __name__ == "__main__":
    sys.exit(main())
