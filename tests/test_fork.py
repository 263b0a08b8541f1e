"""A provider created (and used) before ``os.fork()`` works in the child and, afterwards, in the parent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings

import pytest

from tests.support.faults import FLAVORS, Flavor, flavor_params, run
from tests.support.paths import REPO
from tests.support.server import LoopbackServer

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _fork() -> int:
    with warnings.catch_warnings():
        # Python 3.12+ warns that forking a process with threads may deadlock; the point
        # of this test is that llm_sync's own state survives it.
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()


def _wait(pid: int, limit: float = 10.0) -> int:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail(f"the child did not finish within {limit} s")


@pytest.mark.parametrize("flavor", flavor_params())
def test_a_provider_made_before_fork_works_in_child_and_parent(server: LoopbackServer, flavor: Flavor) -> None:
    provider = flavor.provider(server)
    server.reply(flavor.reply("before ", "fork"))
    assert run(provider).text == "before fork"  # the parent now holds a pooled connection
    server.reply(flavor.reply("in ", "child"), flavor.reply("parent ", "again"))
    read_end, write_end = os.pipe()
    pid = _fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        code = 1
        try:
            os.close(read_end)
            result = run(provider)
            os.write(write_end, json.dumps({"text": result.text, "complete": result.complete}).encode())
            code = 0
        except BaseException as exc:
            try:
                os.write(write_end, json.dumps({"error": repr(exc)}).encode())
            except BaseException:
                pass
        finally:
            os._exit(code)
    os.close(write_end)
    exit_code = _wait(pid)
    with os.fdopen(read_end, "rb") as pipe:
        report = json.loads(pipe.read() or b"{}")
    assert exit_code == 0, report
    assert report == {"text": "in child", "complete": True}
    # The child used a connection of its own, not the parent's pooled one.
    assert server.connections_accepted == 2
    # And the parent's provider still works, never on the child's connection.
    assert run(provider).text == "parent again"
    ids = [r.connection_id for r in server.requests]
    assert ids[:2] == [1, 2] and ids[2] != 2, ids


def test_providers_of_every_kind_survive_fork_without_being_used_first(server: LoopbackServer) -> None:
    flavor = FLAVORS["anthropic"]
    provider = flavor.provider(server)  # no Session exists yet: the child makes the first
    server.reply(flavor.reply("child only"))
    pid = _fork()
    if pid == 0:
        code = 1
        try:
            code = 0 if run(provider).text == "child only" else 3
        except BaseException:
            code = 2
        finally:
            os._exit(code)
    assert _wait(pid) == 0
    server.reply(flavor.reply("parent"))
    assert run(provider).text == "parent"


def test_a_child_that_exits_normally_leaves_the_parents_live_stream_alone() -> None:
    # The child inherits the parent's stream object; at a normal exit (atexit runs the
    # stream's finalizer) or a close() it must not shut down the socket the two
    # processes share. Run in a fresh interpreter: a forked pytest must not exit normally.
    script = """
import json, os, sys, time, warnings
from llm_sync import Context, LlmError
from tests.support.faults import FLAVORS
from tests.support.server import LoopbackServer, Stall

flavor = FLAVORS["anthropic"]
server = LoopbackServer()  # no `with`: the child must not run the server's cleanup
server.reply(flavor.reply(steps=[*flavor.start, flavor.text("before "), Stall(10), flavor.text("after"), *flavor.end]))
stream = flavor.provider(server).stream_response(Context())
chunks = [next(stream), next(stream)]
time.sleep(0.1)  # the parent's reader is blocked on the stalled socket
warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
statuses = []
for closing in (False, True):
    pid = os.fork()
    if pid == 0:
        if closing:
            stream.close()
        sys.exit(0)  # a normal exit: atexit runs the inherited stream's finalizer
    statuses.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
server.release()
try:
    chunks += list(stream)
    outcome = "complete"
except LlmError as exc:
    outcome = repr(exc)
text = "".join(c.chunk for c in chunks if type(c).__name__ == "Text")
server.close()
print(json.dumps({"children": statuses, "outcome": outcome, "text": text}))
"""
    # One child exits without touching the stream, a second closes it first.
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"children": [0, 0], "outcome": "complete", "text": "before after"}, report
