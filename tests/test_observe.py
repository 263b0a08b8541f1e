"""The standard-library log records of a stream, over loopback: request, retry, end, error, cancel; never content."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading
from typing import Any, List

import pytest

from llm_sync import ChatMessage, Context, InvalidApiKeyError
from llm_sync._observe import safe_url
from tests.support.faults import FLAVORS, KEYS, fast_retries
from tests.support.secrets import leaks
from tests.support.server import LoopbackServer, Reply, Stall

PROMPT = "PROMPT-TEXT-please-do-not-log"
ANSWER = "ANSWER-TEXT-please-do-not-log"


def _records(caplog: pytest.LogCaptureFixture) -> List[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("llm_sync")]


def _ask(provider: Any) -> Any:
    with provider.stream_response(Context([ChatMessage.User(PROMPT)])) as stream:
        return stream.collect()


def test_a_stream_logs_its_request_at_debug_and_its_end_with_usage(
    server: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="llm_sync")
    flavor = FLAVORS["anthropic"]
    server.reply(flavor.reply(ANSWER))
    collected = _ask(flavor.provider(server))
    request, end = _records(caplog)
    assert request.name == end.name == "llm_sync.providers.anthropic"
    assert (request.levelno, request.llm_sync_event) == (logging.DEBUG, "request")  # type: ignore[attr-defined]
    assert (request.llm_sync_provider, request.llm_sync_model) == ("anthropic", "claude-test")  # type: ignore[attr-defined]
    assert request.getMessage() == f"anthropic:claude-test: POST {server.url}/v1/messages"
    assert threading.current_thread().name != request.threadName  # logged by the reader thread
    assert (end.levelno, end.llm_sync_event) == (logging.DEBUG, "end")  # type: ignore[attr-defined]
    usage = collected.usage
    assert (end.llm_sync_input_tokens, end.llm_sync_output_tokens) == (usage.input_tokens, usage.output_tokens)  # type: ignore[attr-defined]
    assert 0 < end.llm_sync_duration < 10  # type: ignore[attr-defined]
    assert end.getMessage().startswith("anthropic:claude-test: done in ")
    assert f"; {usage.input_tokens} in, {usage.output_tokens} out; stop end_turn" in end.getMessage()


def test_each_retry_is_one_info_record_with_its_reason_and_wait(
    server: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="llm_sync")
    flavor = FLAVORS["openai_compatible"]
    server.reply(Reply.json(flavor.error_json(503), status=503), Reply.json({"error": "x"}, status=429), flavor.reply("ok"))
    assert _ask(fast_retries(flavor.provider(server), max_retries=3)).text == "ok"
    retries = _records(caplog)
    assert [(r.levelno, r.llm_sync_event, r.llm_sync_error, r.llm_sync_status, r.llm_sync_attempt,  # type: ignore[attr-defined]
             r.llm_sync_max_retries) for r in retries] == [  # type: ignore[attr-defined]
        (logging.INFO, "retry", "ServerError", 503, 1, 3),
        (logging.INFO, "retry", "RateLimitedError", 429, 2, 3),
    ]
    assert all(0 <= r.llm_sync_wait <= 0.02 for r in retries)  # type: ignore[attr-defined]
    assert retries[0].getMessage() == "openai_compatible:chat-test: ServerError (HTTP 503); retrying in 0.0 s (1 of 3)"


def test_a_failed_stream_is_one_warning_naming_the_error_type_only(
    server: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="llm_sync")
    flavor = FLAVORS["gemini"]
    body = flavor.error_json(401)
    server.reply(Reply.json(body, status=401))
    with pytest.raises(InvalidApiKeyError):
        _ask(flavor.provider(server))
    [warning] = [r for r in _records(caplog) if r.levelno >= logging.WARNING]
    assert warning.llm_sync_event == "error"  # type: ignore[attr-defined]
    assert (warning.llm_sync_error, warning.llm_sync_status) == ("InvalidApiKeyError", 401)  # type: ignore[attr-defined]
    assert warning.getMessage().endswith(": InvalidApiKeyError (HTTP 401)")
    assert "max_tokens" not in warning.getMessage()  # the server's own words stay in the exception


def test_a_cancel_is_a_debug_record(server: LoopbackServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="llm_sync")
    flavor = FLAVORS["anthropic"]
    server.reply(flavor.reply(steps=[*flavor.start, flavor.text("partial"), Stall(5)]))
    with flavor.provider(server).stream_response(Context()) as stream:
        for chunk in stream:
            if isinstance(chunk, type(chunk)) and getattr(chunk, "chunk", None) == "partial":
                break
    server.release()
    [cancel] = [r for r in _records(caplog) if getattr(r, "llm_sync_event", "") == "cancelled"]
    assert cancel.levelno == logging.DEBUG


def test_no_record_at_any_level_holds_the_prompt_the_answer_or_the_key(
    server: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="llm_sync")
    for flavor in FLAVORS.values():
        server.reply(Reply.json(flavor.error_json(500), status=500), flavor.reply(ANSWER))
        assert _ask(fast_retries(flavor.provider(server))).text == ANSWER
    records = _records(caplog)
    assert {r.llm_sync_event for r in records} == {"request", "retry", "end"}  # type: ignore[attr-defined]
    for r in records:
        text = r.getMessage() + repr(vars(r))
        assert PROMPT not in text and ANSWER not in text, text
        for key in KEYS.values():
            assert not leaks(text, key), text


def test_urls_are_logged_without_credentials() -> None:
    assert safe_url("https://generativelanguage.googleapis.com/v1beta/models/g:streamGenerateContent?alt=sse&key=AIzaSECRET12345678") == (
        "https://generativelanguage.googleapis.com/v1beta/models/g:streamGenerateContent?alt=sse&key=***"
    )
    assert safe_url("https://user:pw@proxy.example/v1/x?api-version=2025-01-01&sig=abc") == (
        "https://proxy.example/v1/x?api-version=2025-01-01&sig=***"
    )


def test_the_package_logger_has_a_null_handler_and_import_configures_no_logging() -> None:
    probe = textwrap.dedent(
        """
        import json, logging
        import llm_sync
        print(json.dumps([[type(h).__name__ for h in logging.getLogger("llm_sync").handlers],
                          logging.getLogger().handlers == []]))
        """
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == '[["NullHandler"], true]'
