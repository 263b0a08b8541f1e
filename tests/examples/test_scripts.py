"""Each script in examples/ runs in a subprocess against the stand-in model on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

from tests.examples.fake_llm import FakeLlmServer
from tests.support.local_model import needs_local
from tests.support.server import Reply

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
KEY = "sk-ant-scripts-test-key-0123456789"


@pytest.fixture(scope="module", autouse=True)
def cache_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One cache folder for the module's scripts (the local model's checked-parts stamp)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        yield


def run(script: str, args: List[str], env: Optional[Dict[str, str]] = None, stdin: str = "") -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL")) and k != "LLM_SYNC_MODEL"}
    full["PYTHONPATH"] = str(REPO)
    full.update(env or {})
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        env=full, input=stdin, capture_output=True, text=True, timeout=120, cwd=str(REPO),
    )


def compatible(server: FakeLlmServer) -> str:
    return f"openai-compatible:demo@{server.url}/v1"


def anthropic_env(server: FakeLlmServer) -> Dict[str, str]:
    return {"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": server.url}


@pytest.fixture
def llm() -> Iterator[FakeLlmServer]:
    with FakeLlmServer() as server:
        yield server


def test_every_script_is_tested() -> None:
    scripts = sorted(p.name for p in EXAMPLES.glob("*.py"))
    assert scripts == ["batch.py", "fallback.py", "hello.py", "offline_demo.py", "reasoning.py", "tools_loop.py"]


def test_offline_demo_streams_without_a_key() -> None:
    done = run("offline_demo.py", [])
    assert done.returncode == 0, done.stderr
    assert "Anthropic (demo) says: Rivers carve their valleys slowly" in done.stdout
    assert "[stop: end_turn, tokens in/out:" in done.stdout


@pytest.mark.parametrize("kind", ["anthropic", "compatible"])
def test_hello(llm: FakeLlmServer, kind: str) -> None:
    if kind == "anthropic":
        done = run("hello.py", ["-m", "anthropic:claude-sonnet-4-5", "Name", "two", "lakes."], anthropic_env(llm))
    else:
        done = run("hello.py", ["-m", compatible(llm), "Name", "two", "lakes."])
    assert done.returncode == 0, done.stderr
    assert "You said: Name two lakes." in done.stdout
    assert "tokens in," in done.stdout
    body = llm.requests[0].json()
    assert body["stream"] is True
    assert KEY not in done.stdout + done.stderr


def test_tools_loop_round_trip(llm: FakeLlmServer) -> None:
    done = run("tools_loop.py", ["-m", "anthropic:claude-sonnet-4-5", "Weather in Paris?"], anthropic_env(llm))
    assert done.returncode == 0, done.stderr
    assert "-> get_weather({'city': 'Paris'}) = sunny and 21 degrees in Paris" in done.stdout
    assert done.stdout.strip().endswith("The tool says: sunny and 21 degrees in Paris")
    first, second = llm.requests
    assert [t["name"] for t in first.json()["tools"]] == ["get_weather", "add"]
    result = second.json()["messages"][-1]["content"][0]
    assert result["type"] == "tool_result" and result["tool_use_id"] == "toolu_1"


def test_tools_loop_over_chat_completions(llm: FakeLlmServer) -> None:
    done = run("tools_loop.py", ["-m", compatible(llm), "Weather?"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("The tool says: sunny and 21 degrees in Paris")
    assert llm.requests[1].json()["messages"][-1]["role"] == "tool"


def test_reasoning_replays_signed_thinking(llm: FakeLlmServer) -> None:
    done = run("reasoning.py", ["-m", "anthropic:claude-sonnet-4-5", "--effort", "medium", "Is 7 prime?"], anthropic_env(llm))
    assert done.returncode == 0, done.stderr
    assert "[reasoning] Let me think about that step by step." in done.stdout
    assert "[answer] You said: Is 7 prime?" in done.stdout
    assert "[opaque reasoning kept for replay: True]" in done.stdout
    first, second = (r.json() for r in llm.requests)
    assert first["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    replayed = second["messages"][1]["content"][0]
    assert replayed == {"type": "thinking", "thinking": "Let me think about that step by step.", "signature": "c2lnbmVk"}


def test_fallback_moves_on_before_content(llm: FakeLlmServer) -> None:
    # The first provider's server refuses every request with a 503 (retried once, then given up).
    llm.reply(*[Reply.json({"error": {"message": "down", "type": "server_error"}}, status=503)] * 2)
    models = f"{compatible(llm)},anthropic:claude-sonnet-4-5"
    done = run("fallback.py", ["-m", models, "--max-retries", "1", "Hello", "there"], anthropic_env(llm))
    assert done.returncode == 0, done.stderr
    assert "failed: ServerError; trying the next provider" in done.stderr
    assert "You said: Hello there" in done.stdout
    assert "[answered by Anthropic (claude-sonnet-4-5)]" in done.stdout
    paths = [r.path_only for r in llm.requests]
    assert paths == ["/v1/chat/completions", "/v1/chat/completions", "/v1/messages"]


def test_fallback_first_provider_answers(llm: FakeLlmServer) -> None:
    done = run("fallback.py", ["-m", f"anthropic:claude-sonnet-4-5,{compatible(llm)}", "Hi"], anthropic_env(llm))
    assert done.returncode == 0, done.stderr
    assert "trying the next provider" not in done.stderr
    assert [r.path_only for r in llm.requests] == ["/v1/messages"]


def test_batch_over_a_thread_pool(llm: FakeLlmServer, tmp_path: Path) -> None:
    prompts = [f"Question number {i}" for i in range(12)]
    (tmp_path / "prompts.txt").write_text("\n".join(prompts) + "\n\n")
    done = run("batch.py", ["-m", "anthropic:claude-sonnet-4-5", "-j", "4", str(tmp_path / "prompts.txt")], anthropic_env(llm))
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["prompt"] for line in lines] == prompts  # input order kept
    assert all(line["answer"] == f"You said: {line['prompt']}" for line in lines)
    assert "[##############################] 12/12" in done.stderr
    assert len(llm.requests) == 12


def test_batch_reports_failures_and_reads_stdin(llm: FakeLlmServer) -> None:
    llm.reply(Reply.json({"error": {"message": "bad request", "type": "invalid_request_error"}}, status=400))
    done = run("batch.py", ["-m", compatible(llm), "-j", "1"], stdin="first\nsecond\n")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[0]["error"].startswith("ApiError:")
    assert lines[1]["answer"] == "You said: second"
    assert "2/2, 1 failed" in done.stderr


def test_fallback_skips_a_model_without_a_key(llm: FakeLlmServer) -> None:
    done = run("fallback.py", ["-m", f"anthropic:claude-sonnet-4-5,{compatible(llm)}", "Hi"])
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("[anthropic:claude-sonnet-4-5 skipped: no API key for Anthropic")
    assert "You said: Hi" in done.stdout
    assert [r.path_only for r in llm.requests] == ["/v1/chat/completions"]


@pytest.mark.parametrize("script", ["hello.py", "reasoning.py", "tools_loop.py", "batch.py", "fallback.py"])
def test_without_a_key_a_script_exits_with_one_clear_line(script: str) -> None:
    done = run(script, ["-m", "anthropic:claude-sonnet-4-5"], stdin="a question\n")
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()[-1:]
    assert line.startswith(f"{script}: ") and "ANTHROPIC_API_KEY" in line, done.stderr
    assert "Traceback" not in done.stderr


def test_tools_loop_says_the_local_model_cannot_call_tools() -> None:
    done = run("tools_loop.py", [])  # no key: the default is the local model
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("tools_loop.py: the embedded local model cannot call tools; pass -m")


@needs_local
def test_with_no_key_the_scripts_use_the_local_model() -> None:
    hello = run("hello.py", ["What", "is", "the", "capital", "of", "France?"])
    assert hello.returncode == 0, hello.stderr
    assert hello.stdout.startswith("[llama.cpp (gemma-3-270m)]\n") and "Paris" in hello.stdout
    fallback = run("fallback.py", ["What is the capital of France?"])
    assert fallback.returncode == 0, fallback.stderr
    assert "Paris" in fallback.stdout and "[answered by llama.cpp (gemma-3-270m)]" in fallback.stdout
    assert fallback.stderr.count("skipped: no API key") == 2  # anthropic, then openai
    reasoning = run("reasoning.py", ["What is the capital of Japan?"])
    assert reasoning.returncode == 0, reasoning.stderr
    assert "[answer]" in reasoning.stdout and "Tokyo" in reasoning.stdout
    batch = run("batch.py", ["-j", "2"], stdin="What is the capital of France?\nWhat is the capital of Japan?\n")
    assert batch.returncode == 0, batch.stderr
    answers = [json.loads(line)["answer"] for line in batch.stdout.splitlines()]
    assert "Paris" in answers[0] and "Tokyo" in answers[1]
