"""The ``llm-sync`` command line, run as a real subprocess against the loopback server."""

from __future__ import annotations

import configparser
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import pytest

from llm_sync import ApiError, ChatMessage, LlmResponse, StopReason
from llm_sync.testing import FakeLlmProvider
from tests.support.server import LoopbackServer, Reply

REPO = Path(__file__).resolve().parents[1]

_DROP = ("ANTHROPIC_", "OPENAI_", "GEMINI_", "OPENROUTER_", "DEEPSEEK_", "MOONSHOT_", "ZAI_", "AWS_",
         "CODEX_", "OLLAMA_", "LLAMA_CPP_", "LLM_SYNC_", "NO_COLOR")


def run(
    args: Sequence[str],
    tmp_path: Path,
    *,
    env: Optional[Dict[str, str]] = None,
    input: Optional[str] = None,
) -> subprocess.CompletedProcess[str]:
    """``python -m llm_sync ARGS`` in an empty directory with no provider settings inherited."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(_DROP)}
    clean.update(PYTHONPATH=str(REPO), HOME=str(tmp_path), PYTHONIOENCODING="utf-8")
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "llm_sync", *args],
        cwd=tmp_path,
        env=clean,
        input=input,
        stdin=subprocess.DEVNULL if input is None else None,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _chat_chunks(*deltas: Dict[str, Any], finish: str = "stop") -> List[Any]:
    """A chat-completions SSE stream: the deltas, the finish, a usage chunk, [DONE]."""
    events: List[Any] = [
        {"id": "c1", "object": "chat.completion.chunk", "model": "m1", "choices": [{"index": 0, "delta": d}]}
        for d in deltas
    ]
    events.append({"id": "c1", "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    events.append({"id": "c1", "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}})
    events.append("[DONE]")
    return events


def _compatible(server: LoopbackServer) -> str:
    pytest.importorskip("llm_sync.providers.openai_compatible")
    return f"openai-compatible:m1@{server.url}/v1"


def _user_text(body: Dict[str, Any]) -> str:
    """The last message's text, whether sent as a string or as content parts."""
    content = body["messages"][-1]["content"]
    if isinstance(content, str):
        return content
    return "".join(part["text"] for part in content if part.get("type") == "text")


HELLO = _chat_chunks({"role": "assistant", "content": "Hello"}, {"content": " world"})


# -- chat ----------------------------------------------------------------------------------


def test_chat_streams_text(server: LoopbackServer, tmp_path: Path) -> None:
    model = _compatible(server)
    server.reply(Reply.event_stream(*HELLO))
    done = run(["chat", "-m", model, "Say", "hi"], tmp_path)
    assert (done.returncode, done.stdout) == (0, "Hello world\n"), done.stderr
    body = server.requests[0].json()
    assert server.requests[0].path_only == "/v1/chat/completions"
    assert body["model"] == "m1"
    assert _user_text(body) == "Say hi"


def test_chat_json_prints_one_object_per_chunk(server: LoopbackServer, tmp_path: Path) -> None:
    model = _compatible(server)
    server.reply(Reply.event_stream(*HELLO))
    done = run(["chat", "--json", "-m", model, "hi"], tmp_path)
    assert done.returncode == 0, done.stderr
    chunks = [json.loads(line) for line in done.stdout.splitlines()]
    assert [c["type"] for c in chunks] == ["start", "text", "text", "usage", "done"]
    assert "".join(c["chunk"] for c in chunks if c["type"] == "text") == "Hello world"
    assert chunks[3]["input_tokens"] == 12 and chunks[3]["output_tokens"] == 3
    assert chunks[-1]["stop_reason"] == "end_turn"
    assert LlmResponse.from_dict(chunks[1]) == LlmResponse.Text("Hello")


def test_chat_reads_a_piped_prompt(server: LoopbackServer, tmp_path: Path) -> None:
    model = _compatible(server)
    server.reply(Reply.event_stream(*HELLO), Reply.event_stream(*HELLO))
    done = run(["chat", "-m", model], tmp_path, input="summarise this\nplease\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Hello world\n"
    assert _user_text(server.requests[0].json()) == "summarise this\nplease\n"
    # '-' puts standard input inside the prompt.
    done = run(["chat", "-m", model, "Translate:", "-"], tmp_path, input="bonjour\n")
    assert done.returncode == 0, done.stderr
    assert _user_text(server.requests[1].json()) == "Translate: bonjour"


def test_chat_options_reach_the_request(server: LoopbackServer, tmp_path: Path) -> None:
    model = _compatible(server)
    server.reply(Reply.event_stream(*HELLO))
    done = run(
        ["chat", "-m", model, "--system", "Be brief.", "--effort", "high", "--max-tokens", "50", "hi"],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    body = server.requests[0].json()
    assert body["messages"][0]["role"] == "system" and "Be brief." in json.dumps(body["messages"][0])
    assert body["reasoning_effort"] == "high"
    assert body["max_tokens"] == 50


def test_reasoning_is_shown_only_when_asked(server: LoopbackServer, tmp_path: Path) -> None:
    model = _compatible(server)
    stream = _chat_chunks({"reasoning_content": "Let me think."}, {"content": "42"})
    server.reply(Reply.event_stream(*stream), Reply.event_stream(*stream))
    plain = run(["chat", "-m", model, "q"], tmp_path)
    assert (plain.returncode, plain.stdout) == (0, "42\n"), plain.stderr
    shown = run(["chat", "--reasoning", "-m", model, "q"], tmp_path)
    # Not a terminal: no ANSI codes, reasoning set apart from the answer.
    assert (shown.returncode, shown.stdout) == (0, "Let me think.\n\n42\n"), shown.stderr


def test_usage_and_estimated_cost(server: LoopbackServer, tmp_path: Path) -> None:
    pytest.importorskip("llm_sync.providers.anthropic")
    events = [
        ("message_start", {"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-opus-4-6", "content": [],
            "stop_reason": None, "usage": {"input_tokens": 1000, "cache_read_input_tokens": 2000,
                                           "cache_creation_input_tokens": 400, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "Hi."}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                           "usage": {"output_tokens": 100}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    server.reply(Reply.event_stream(*events))
    env = {"ANTHROPIC_API_KEY": "sk-ant-cli-test", "ANTHROPIC_BASE_URL": server.url}
    done = run(["chat", "--usage", "-m", "anthropic:claude-opus-4-6", "hello"], tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Hi.\n"
    assert server.requests[0].headers["x-api-key"] == "sk-ant-cli-test"
    # Input counts every prompt token: 1000 uncached + 2000 read + 400 written.
    assert "3,400 input (2,000 cached, 400 written to cache)" in done.stderr
    assert "100 output" in done.stderr
    cost = (1000 * 5 + 2000 * 0.5 + 400 * 6.25 + 100 * 25) / 1e6
    assert f"estimated cost ${cost:.6f}" in done.stderr


def test_missing_key_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    pytest.importorskip("llm_sync.providers.anthropic")
    done = run(["chat", "-m", "anthropic:claude-sonnet-4-5", "hi"], tmp_path)
    assert done.returncode == 1
    assert "MissingApiKeyError" in done.stderr and "ANTHROPIC_API_KEY" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_provider_error_exits_1_with_the_typed_message(server: LoopbackServer, tmp_path: Path) -> None:
    model = _compatible(server)
    server.reply(Reply.json({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}, status=401))
    done = run(["chat", "-m", model, "hi"], tmp_path, env={"OPENAI_COMPATIBLE_API_KEY": "sk-secret-value-123"})
    assert done.returncode == 1
    assert "InvalidApiKeyError" in done.stderr
    assert "Traceback" not in done.stderr
    assert "sk-secret-value-123" not in done.stderr
    assert len(server.requests) == 1  # a 401 is never retried


def test_provider_error_in_json_mode_still_exits_1(server: LoopbackServer, tmp_path: Path) -> None:
    model = _compatible(server)
    server.reply(Reply.json({"error": {"message": "bad request: unknown field"}}, status=400))
    done = run(["chat", "--json", "-m", model, "hi"], tmp_path)
    assert done.returncode == 1 and "ApiError" in done.stderr and "Traceback" not in done.stderr


def test_unknown_model_is_a_usage_error(tmp_path: Path) -> None:
    done = run(["chat", "-m", "anthropic:claude-sonet-4-5", "hi"], tmp_path)
    assert done.returncode == 2
    assert "did you mean anthropic:claude-sonnet-4-5" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "args",
    [[], ["chat", "--max-tokens", "0", "hi"], ["chat", "--effort", "extreme", "-m", "ollama:x", "hi"], ["frobnicate"]],
)
def test_usage_errors_exit_2(args: List[str], tmp_path: Path) -> None:
    done = run(args, tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr


def test_empty_piped_prompt_is_a_usage_error(tmp_path: Path) -> None:
    done = run(["chat", "-m", "ollama:x"], tmp_path, input="  \n")
    assert done.returncode == 2 and "prompt is empty" in done.stderr


def test_no_model_and_nothing_configured(tmp_path: Path) -> None:
    done = run(["chat", "hi"], tmp_path)
    if done.returncode == 2:
        assert "ANTHROPIC_API_KEY" in done.stderr and 'llm-sync[local]' in done.stderr
    else:  # the embedded model is installed here: it was used (or failed to load) instead
        assert "Traceback" not in done.stderr


def test_default_model_is_the_first_configured_provider(server: LoopbackServer, tmp_path: Path) -> None:
    pytest.importorskip("llm_sync.providers.openai")
    server.reply(Reply.json({"error": {"message": "nope"}}, status=401))
    env = {"OPENAI_API_KEY": "sk-openai-test", "OPENAI_BASE_URL": f"{server.url}/v1"}
    done = run(["chat", "hi"], tmp_path, env=env)
    assert done.returncode == 1 and "InvalidApiKeyError" in done.stderr
    assert server.requests[0].headers["authorization"] == "Bearer sk-openai-test"


def test_version(tmp_path: Path) -> None:
    from llm_sync import __version__

    done = run(["--version"], tmp_path)
    assert (done.returncode, done.stdout.strip()) == (0, f"llm-sync {__version__}")


# -- models --------------------------------------------------------------------------------


def test_models_lists_windows_and_prices(tmp_path: Path) -> None:
    done = run(["models", "--provider", "zai"], tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["MODEL", "CONTEXT", "MAX"]
    row = next(line for line in lines if line.startswith("zai:glm-4.6 "))
    assert "204,800" in row and "131,072" in row and "0.6" in row and "2.2" in row
    assert len(lines) == 1 + 13


def test_models_json_and_available(tmp_path: Path) -> None:
    done = run(["models", "--json", "--available"], tmp_path, env={"DEEPSEEK_API_KEY": "ds-test"})
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert {r["model"].split(":")[0] for r in rows} == {"deepseek"} and len(rows) == 4
    assert all(r["required_env_var"] == "DEEPSEEK_API_KEY" for r in rows)
    priced = [r for r in rows if r["prices_per_million"]]
    assert priced and all(r["prices_per_million"]["input"] is not None for r in priced)


def test_models_unknown_provider(tmp_path: Path) -> None:
    done = run(["models", "--provider", "antropic"], tmp_path)
    assert done.returncode == 2 and "did you mean anthropic" in done.stderr


def test_login_codex_without_the_provider(tmp_path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("llm_sync.providers.codex") is not None:
        pytest.skip("the codex provider is present: login would open a browser")
    done = run(["login", "codex"], tmp_path)
    assert done.returncode == 1 and "codex" in done.stderr.lower() and "Traceback" not in done.stderr


def test_console_script_is_declared() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    assert "llm-sync = llm_sync.cli:main" in cfg["options.entry_points"]["console_scripts"]
    from llm_sync.cli import main

    assert main(["models", "--provider", "nope"]) == 2


# -- the interactive chat and the terminal view, in process ----------------------------------


def _answer(text: str) -> List[Any]:
    return [LlmResponse.Start("m"), LlmResponse.Text(text), LlmResponse.Usage(5, 2), LlmResponse.Done(StopReason.END_TURN)]


class _Lines:
    def __init__(self, *lines: str) -> None:
        self.lines = list(lines)

    def __call__(self, prompt: str) -> str:
        if not self.lines:
            raise EOFError
        line = self.lines.pop(0)
        if line == "^C":
            raise KeyboardInterrupt
        return line


class _InterruptingOut(io.StringIO):
    """Raises KeyboardInterrupt on the first write that contains ``trigger`` (Ctrl-C mid-answer)."""

    def __init__(self, trigger: str) -> None:
        super().__init__()
        self.trigger: Optional[str] = trigger

    def write(self, s: str) -> int:
        if self.trigger is not None and self.trigger in s:
            self.trigger = None
            raise KeyboardInterrupt
        return super().write(s)


def test_interactive_keeps_the_conversation(capsys: pytest.CaptureFixture[str]) -> None:
    from llm_sync import LlmModel
    from llm_sync.cli import _interactive, _View

    fake = FakeLlmProvider([_answer("Hi Ann."), _answer("Your name is Ann.")])
    out = io.StringIO()
    code = _interactive(
        fake, LlmModel("fake", "m"), "Be kind.", None, _View(out, show_reasoning=False, as_json=False),
        False, read_line=_Lines("I am Ann", "^C", "", "What is my name?"),
    )
    assert code == 0
    assert out.getvalue() == "Hi Ann.\nYour name is Ann.\n"
    second = fake.captured_contexts[1].messages
    assert [type(m).__name__ for m in second] == ["System", "User", "Assistant", "User"]
    assert isinstance(second[2], ChatMessage.Assistant) and second[2].content == "Hi Ann."
    assert "Ctrl-D" in capsys.readouterr().err


def test_interactive_ctrl_c_stops_the_answer_not_the_session() -> None:
    from llm_sync import LlmModel
    from llm_sync.cli import _interactive, _View

    fake = FakeLlmProvider([_answer("long answer"), _answer("second")])
    out = _InterruptingOut("long answer")
    code = _interactive(
        fake, LlmModel("fake", "m"), None, None, _View(out, show_reasoning=False, as_json=False),
        False, read_line=_Lines("first", "again", "/exit"),
    )
    assert code == 0 and fake.call_count == 2
    assert "second" in out.getvalue()


def test_interactive_reports_an_error_and_carries_on(capsys: pytest.CaptureFixture[str]) -> None:
    from llm_sync import LlmModel
    from llm_sync.cli import _interactive, _View

    fake = FakeLlmProvider([[LlmResponse.Start("m"), ApiError("the model refused")], _answer("ok")])
    out = io.StringIO()
    code = _interactive(
        fake, LlmModel("fake", "m"), None, None, _View(out, show_reasoning=False, as_json=False),
        False, read_line=_Lines("one", "two"),
    )
    assert code == 0 and out.getvalue().strip() == "ok"
    assert "ApiError: the model refused" in capsys.readouterr().err
    # The failed question was dropped from the conversation.
    assert [m.text for m in fake.captured_contexts[1].messages] == ["two"]  # type: ignore[attr-defined]


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_reasoning_is_dimmed_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from llm_sync.cli import _View

    monkeypatch.delenv("NO_COLOR", raising=False)
    chunks = [LlmResponse.Reasoning("hmm"), LlmResponse.Text("yes")]
    out = _Tty()
    view = _View(out, show_reasoning=True, as_json=False)
    for c in chunks:
        view.chunk(c)
    view.finish()
    assert out.getvalue() == "\x1b[2mhmm\x1b[22m\n\nyes\n"
    monkeypatch.setenv("NO_COLOR", "1")
    plain = _Tty()
    view = _View(plain, show_reasoning=True, as_json=False)
    for c in chunks:
        view.chunk(c)
    view.finish()
    assert plain.getvalue() == "hmm\n\nyes\n"
