"""Run a bad case in a child interpreter under a hard CPU, memory and wall-clock limit.

A regression in these cases freezes or exhausts the process that hits it; in a child it
fails one test instead of the whole run. The child sets its own ``RLIMIT_CPU`` and
``RLIMIT_AS`` first thing (no ``preexec_fn``: the test process has threads), runs
``code`` from the repository root (so ``tests.support`` imports) and must print one JSON
object as its last line of output, which :func:`run_limited` returns.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any, Dict

import pytest

from tests.support.paths import REPO

__all__ = ["run_limited"]

# The address-space limit also counts each thread's reserved stack (8 MiB by default):
# with a loopback server's thread per connection, Python 3.13 ran out of address space
# for threads before any heap grew. Small stacks keep the limit about the heap.
_PRELUDE = """\
import resource, threading
resource.setrlimit(resource.RLIMIT_CPU, ({cpu}, {cpu}))
resource.setrlimit(resource.RLIMIT_AS, ({memory}, {memory}))
threading.stack_size(1024 * 1024)
"""


def run_limited(code: str, *, cpu_seconds: int, memory_mb: int, wall_seconds: float) -> Dict[str, Any]:
    """Run ``code`` in a child under the limits; the JSON object it printed last.

    Fails the test, with the child's output, when the child is killed by a limit, runs
    past ``wall_seconds``, exits non-zero or prints no JSON.
    """
    source = _PRELUDE.format(cpu=cpu_seconds, memory=memory_mb * 1024 * 1024) + textwrap.dedent(code)
    try:
        done = subprocess.run(
            [sys.executable, "-c", source],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=wall_seconds,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the child ran past {wall_seconds} s of wall-clock time; output: {exc.stdout!r} {exc.stderr!r}")
    if done.returncode != 0:
        why = {-9: "SIGKILL", -24: "SIGXCPU: the CPU limit"}.get(done.returncode, f"exit code {done.returncode}")
        pytest.fail(f"the child failed ({why}) under cpu={cpu_seconds} s, memory={memory_mb} MiB:\n"
                    f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    lines = done.stdout.strip().splitlines()
    try:
        result: Dict[str, Any] = json.loads(lines[-1])
    except (IndexError, ValueError):
        pytest.fail(f"the child printed no JSON result:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return result
