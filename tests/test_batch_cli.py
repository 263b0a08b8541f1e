"""``llm-sync batch``: JSONL in, JSONL out in input order, resumable; over loopback HTTP, in a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Sequence

from tests.support.echo import EchoModel
from tests.support.paths import REPO
from tests.support.server import LoopbackServer


def batch(args: Sequence[str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), NO_PROXY="127.0.0.1")
    env.pop("LLM_SYNC_MODEL", None)
    return subprocess.run(
        [sys.executable, "-c", "import sys; from llm_sync._batch_cli import main; sys.exit(main(sys.argv[1:]))", *args],
        input=stdin, capture_output=True, text=True, env=env, timeout=60,
    )


def model(server: LoopbackServer) -> str:
    return f"openai-compatible:m@{server.url}/v1"


def read(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_every_line_form_goes_through_and_comes_back_in_order(server: LoopbackServer, tmp_path: Path) -> None:
    echo = EchoModel(server, delay=0.01)
    ctx = {"messages": [{"type": "user", "content": "from a context"}], "tools": []}
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join([
        json.dumps("a bare string"),
        json.dumps({"id": "q1", "prompt": "with an id", "system": "be brief"}),
        "",
        json.dumps({"id": 7, **ctx}),
    ] + [json.dumps({"prompt": f"p{i}"}) for i in range(20)]) + "\n")
    out = tmp_path / "out.jsonl"
    done = batch(["-m", model(server), str(src), "-o", str(out), "-j", "8", "--no-progress"])
    assert done.returncode == 0, done.stderr
    lines = read(out)
    assert [x["index"] for x in lines] == list(range(23))
    assert [x["response"]["text"] for x in lines[:3]] == ["echo: a bare string", "echo: with an id", "echo: from a context"]
    assert [x.get("id") for x in lines[:3]] == [None, "q1", 7]
    assert all(x["attempts"] == 1 and "error" not in x for x in lines)
    assert not (tmp_path / "out.jsonl.checkpoint").exists()  # every item succeeded
    system = next(r for r in server.requests if r.json()["messages"][-1]["content"] == "with an id")
    assert system.json()["messages"][0] == {"role": "system", "content": "be brief"}
    assert len(echo.snapshot()) == 23


def test_failures_exit_1_keep_the_checkpoint_and_a_rerun_retries_only_them(server: LoopbackServer, tmp_path: Path) -> None:
    echo = EchoModel(server, fail_prompts={"p3": 503})
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(f"p{i}") + "\n" for i in range(6)))
    out = tmp_path / "out.jsonl"
    first = batch(["-m", model(server), str(src), "-o", str(out), "--retries", "0"])
    assert first.returncode == 1 and "1 of 6 items failed" in first.stderr
    assert read(out)[3]["error"]["type"] == "ServerError" and read(out)[3]["error"]["retryable"] is True
    assert (tmp_path / "out.jsonl.checkpoint").exists()
    echo.fail_prompts.clear()
    before = len(echo.snapshot())
    again = batch(["-m", model(server), str(src), "-o", str(out)])
    assert again.returncode == 0, again.stderr
    assert echo.prompts(status=200)[-1] == "p3" and len(echo.snapshot()) == before + 1
    assert [x["response"]["text"] for x in read(out)] == [f"echo: p{i}" for i in range(6)]


def test_a_malformed_line_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('"fine"\n{"prompt": 3}\n')
    done = batch(["-m", "openai-compatible:m@http://127.0.0.1:9/v1", str(src), "-o", str(tmp_path / "o.jsonl")])
    assert done.returncode == 2
    assert 'in.jsonl, line 2: an object needs "prompt" (a string) or "messages"' in done.stderr
    assert "Traceback" not in done.stderr


def test_no_model_is_a_usage_error(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('"hi"\n')
    done = batch([str(src), "-o", str(tmp_path / "o.jsonl")])
    assert done.returncode == 2 and "no model given: pass -m" in done.stderr


def test_progress_goes_to_stderr_and_answers_only_to_the_file(server: LoopbackServer, tmp_path: Path) -> None:
    EchoModel(server)
    out = tmp_path / "out.jsonl"
    done = batch(["-m", model(server), "-", "-o", str(out), "--progress"], stdin='"a"\n"b"\n')
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "2/2" in done.stderr and "0 failed" in done.stderr


def test_dash_writes_the_lines_to_stdout(server: LoopbackServer) -> None:
    EchoModel(server)
    done = batch(["-m", model(server), "-", "-o", "-"], stdin='"a"\n{"id": "b", "prompt": "b"}\n')
    assert done.returncode == 0, done.stderr
    lines = [json.loads(x) for x in done.stdout.splitlines()]
    assert [(x.get("id"), x["response"]["text"]) for x in lines] == [(None, "echo: a"), ("b", "echo: b")]


def test_ctrl_c_exits_130_and_the_same_command_goes_on(server: LoopbackServer, tmp_path: Path) -> None:
    echo = EchoModel(server, delay=0.3)
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(f"p{i}") + "\n" for i in range(24)))
    out = tmp_path / "out.jsonl"
    env = dict(os.environ, PYTHONPATH=str(REPO), NO_PROXY="127.0.0.1")
    code = "import sys; from llm_sync._batch_cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "-m", model(server), str(src), "-o", str(out), "-j", "4"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        server.wait_for_requests(9, timeout=30)  # two rounds of four answered, a third under way
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "items are in" in err and "run the same command again" in err and "Traceback" not in err
    assert not out.exists()
    finished = len((tmp_path / "out.jsonl.checkpoint").read_text().splitlines()) - 1
    assert 4 <= finished < 24
    before = len(echo.snapshot())
    again = batch(["-m", model(server), str(src), "-o", str(out), "-j", "8"])
    assert again.returncode == 0, again.stderr
    assert len(echo.snapshot()) - before == 24 - finished
    assert [x["response"]["text"] for x in read(out)] == [f"echo: p{i}" for i in range(24)]


def test_llm_sync_batch_is_a_subcommand_of_the_cli(server: LoopbackServer, tmp_path: Path) -> None:
    EchoModel(server)
    env = dict(os.environ, PYTHONPATH=str(REPO), NO_PROXY="127.0.0.1")
    done = subprocess.run(
        [sys.executable, "-m", "llm_sync", "batch", "-m", model(server), "-", "-o", "-"],
        input='"via the cli"\n', capture_output=True, text=True, env=env, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["response"]["text"] == "echo: via the cli"
    listed = subprocess.run([sys.executable, "-m", "llm_sync", "--help"], capture_output=True, text=True, env=env, timeout=60)
    assert "batch" in listed.stdout
