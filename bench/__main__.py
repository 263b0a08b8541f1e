"""``python -m bench [--quick | --smoke] [--sections ...]``: run the benchmark and write bench/results/<stamp>.md/.json.

``python -m bench batch [...]`` runs the run_many benchmark instead (``bench/batch.py``);
``python -m bench observe [...]`` the cost of observability (``bench/observe.py``).
"""

from __future__ import annotations

import sys

if __name__ == "__main__":
    if sys.argv[1:2] == ["batch"]:
        from bench.batch import main as batch

        sys.exit(batch(sys.argv[2:]))
    if sys.argv[1:2] == ["observe"]:
        from bench.observe import main as observe

        sys.exit(observe(sys.argv[2:]))
    from bench.run import main

    sys.exit(main())
