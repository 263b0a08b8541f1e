"""Every real chat-completions recording replayed over loopback through the compatible engine.

Expectations are computed from the recording by a small reference reader written here
(independent of the parser), and a few are pinned to literal values read from the files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest

from llm_sync import (
    ApiError,
    ContextOverflowError,
    LlmResponse,
    RateLimitedError,
    StopReason,
)
from llm_sync.providers._chat import FINISH_REASONS
from llm_sync.providers.openai_compatible import OpenAiCompatibleProvider
from tests.support.replay import split_every, stream_body
from tests.support.server import LoopbackServer

# ---------------------------------------------------------------------------
# The reference reader (shared with test_openrouter.py and test_presets.py).


def wire_events(path: Path) -> List[Dict[str, Any]]:
    """The JSON objects of a recording's ``data:`` lines (or NDJSON lines), [DONE] left out."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if path.suffix == ".ndjson":
            data = line.strip()
        elif line.startswith("data:"):
            data = line[5:].strip()
        else:
            continue  # comments, blank lines, and " data:" (not a field name per the SSE spec)
        if data and data != "[DONE]":
            out.append(json.loads(data))
    return out


def sse_body(path: Path) -> bytes:
    """The body to serve: the SSE file as recorded, or NDJSON lines wrapped as SSE events."""
    if path.suffix == ".sse":
        return path.read_bytes()
    events = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return "".join(f"data: {e}\n\n" for e in [*events, "[DONE]"]).encode("utf-8")


class Expected:
    def __init__(self, events: List[Dict[str, Any]]) -> None:
        self.id = events[0]["id"]
        self.text = ""
        self.reasoning = ""
        self.calls: Dict[str, List[str]] = {}  # id -> [name, args]
        self.usage: Optional[Dict[str, Any]] = None
        self.finish: Optional[str] = None
        current: Dict[int, str] = {}
        for e in events:
            if e.get("usage"):
                self.usage = e["usage"]
            for ch in e.get("choices") or []:
                d = ch.get("delta") or {}
                self.text += d.get("content") or ""
                self.reasoning += d.get("reasoning_content") or d.get("reasoning") or ""
                for tc in d.get("tool_calls") or []:
                    fn = tc.get("function") or {}
                    if tc.get("id"):
                        current[tc["index"]] = tc["id"]
                        self.calls.setdefault(tc["id"], [fn.get("name") or "", ""])
                    self.calls[current[tc["index"]]][1] += fn.get("arguments") or ""
                if ch.get("finish_reason"):
                    self.finish = ch["finish_reason"]

    def usage_numbers(self) -> Tuple[Any, ...]:
        u = self.usage or {}
        ptd = u.get("prompt_tokens_details") or {}
        ctd = u.get("completion_tokens_details") or {}
        return (
            u.get("prompt_tokens"),
            u.get("completion_tokens"),
            ptd.get("cached_tokens"),
            ptd.get("cache_write_tokens"),
            ctd.get("reasoning_tokens"),
        )


def got_usage(u: LlmResponse.Usage) -> Tuple[Any, ...]:
    return (u.input_tokens, u.output_tokens, u.cached_input_tokens, u.cache_creation_tokens, u.reasoning_tokens)


def check_against_recording(chunks: List[LlmResponse], path: Path) -> Expected:
    """Assert the stream carries exactly what the recording holds; return the expectation."""
    exp = Expected(wire_events(path))
    assert isinstance(chunks[0], LlmResponse.Start) and chunks[0].message_id == exp.id
    assert isinstance(chunks[-1], LlmResponse.Done)
    assert "".join(c.chunk for c in chunks if isinstance(c, LlmResponse.Text)) == exp.text
    assert "".join(c.chunk for c in chunks if isinstance(c, LlmResponse.Reasoning)) == exp.reasoning
    completes = [c.tool_call for c in chunks if isinstance(c, LlmResponse.ToolRequestComplete)]
    assert {c.id: [c.name, c.arguments] for c in completes} == exp.calls
    assert len(completes) == len(exp.calls)
    for c in completes:
        assert isinstance(c.parsed_arguments(), dict)
        streamed = "".join(a.chunk for a in chunks if isinstance(a, LlmResponse.ToolRequestArg) and a.id == c.id)
        assert streamed == c.arguments
    starts = [c for c in chunks if isinstance(c, LlmResponse.ToolRequestStart)]
    assert [(s.id, s.name) for s in starts] == [(c.id, c.name) for c in completes]
    usages = [c for c in chunks if isinstance(c, LlmResponse.Usage)]
    if exp.usage is None:
        assert usages == []
    else:
        assert len(usages) == 1 and chunks[-2] is usages[0]
        assert got_usage(usages[0]) == exp.usage_numbers()
    done = chunks[-1]
    assert done.raw_stop_reason == exp.finish
    assert done.stop_reason == FINISH_REASONS[exp.finish or ""]
    assert sum(isinstance(c, LlmResponse.Start) for c in chunks) == 1
    return exp


def recordings(wire: Path, folder: str, *patterns: str) -> List[Path]:
    found: List[Path] = []
    for p in patterns:
        found.extend(sorted((wire / folder).glob(p)))
    assert found, f"no recordings in {wire / folder}"
    return found


# ---------------------------------------------------------------------------


def compat(server: LoopbackServer, **kw: Any) -> OpenAiCompatibleProvider:
    return OpenAiCompatibleProvider(base_url=server.url, model="gpt-4o-mini", max_retries=0, **kw)


def test_every_openai_chat_recording_replays_exactly(server: LoopbackServer, wire: Path) -> None:
    paths = recordings(wire, "openai", "*.sse", "*.ndjson")
    assert len(paths) >= 8
    for path in paths:
        chunks = stream_body(server, compat(server), split_every(sse_body(path), 97))
        check_against_recording(chunks, path)


def test_llamacpp_chat_recordings_replay_through_the_compatible_engine(server: LoopbackServer, wire: Path) -> None:
    # llama.cpp's chunks carry "timings" and omit "object" on some events: tolerated.
    for path in recordings(wire, "llamacpp", "chat_*.sse", "tiny_forced_tool_call.sse"):
        chunks = stream_body(server, compat(server), sse_body(path))
        check_against_recording(chunks, path)


def test_recorded_values_pinned(server: LoopbackServer, wire: Path) -> None:
    got = compat(server).with_model("m")
    server_chunks = stream_body(server, got, (wire / "openai" / "aether_chat_02_tool_call.sse").read_bytes())
    done = server_chunks[-1]
    assert done == LlmResponse.Done(StopReason.TOOL_CALLS, "tool_calls")
    complete = next(c for c in server_chunks if isinstance(c, LlmResponse.ToolRequestComplete))
    assert complete.tool_call.id == "call_lIl1740SChVIzCzQUhLlNVBK"
    assert complete.tool_call.parsed_arguments() == {"city": "Tokyo"}
    assert server_chunks[-2] == LlmResponse.Usage(55, 14, 0, None, 0, 0, None, 0, 0, 0)

    reasoning = stream_body(server, got, (wire / "openai" / "aether_chat_03_reasoning.sse").read_bytes())
    usage = reasoning[-2]
    assert isinstance(usage, LlmResponse.Usage)
    assert (usage.input_tokens, usage.output_tokens, usage.reasoning_tokens) == (39, 634, 512)


def test_openai_error_bodies_map_to_typed_errors(server: LoopbackServer, wire: Path) -> None:
    folder = wire / "openai"
    p = compat(server)

    server.reply(_json_reply(folder / "issue_err_400_context_length_exceeded.json", 400))
    with pytest.raises(ContextOverflowError) as over:
        list(p.stream_response(_ctx()))
    assert (over.value.requested_tokens, over.value.max_tokens, over.value.status) == (6988, 4097, 400)
    assert not over.value.retryable

    server.reply(_json_reply(folder / "err_404_model_not_found.json", 404))
    with pytest.raises(ApiError) as missing:
        list(p.with_model("gpt-5.2-proo").stream_response(_ctx()))
    assert type(missing.value) is ApiError and missing.value.status == 404
    assert "gpt-5.2-proo" in str(missing.value) and "model" in str(missing.value)

    server.reply(_json_reply(folder / "err_400_unsupported_value.json", 400))
    with pytest.raises(ApiError) as bad:
        list(p.stream_response(_ctx()))
    assert type(bad.value) is ApiError and "does not support 'system'" in str(bad.value)
    assert len(server.requests) == 3  # nothing retried


def test_llamacpp_overflow_bodies_carry_their_numbers(server: LoopbackServer, wire: Path) -> None:
    p = compat(server)
    for name, numbers in (
        ("chat_overflow_400.json", (6010, 2048)),
        ("issue_err_context_size_old_wording.json", (14429, 8192)),
    ):
        server.reply(_json_reply(wire / "llamacpp" / name, 400))
        with pytest.raises(ContextOverflowError) as info:
            list(p.stream_response(_ctx()))
        assert (info.value.requested_tokens, info.value.max_tokens) == numbers


def test_a_recorded_429_is_rate_limited(server: LoopbackServer, wire: Path) -> None:
    server.reply(_json_reply(wire / "openrouter" / "lcgo_err_429_rate_limited.json", 429))
    with pytest.raises(RateLimitedError) as info:
        list(compat(server).stream_response(_ctx()))
    assert info.value.retryable and "Rate limit exceeded" in str(info.value)


def _json_reply(path: Path, status: int) -> Any:
    from tests.support.server import Reply

    return Reply(status=status, headers={"content-type": "application/json"}, body=path.read_bytes())


def _ctx() -> Any:
    from llm_sync import ChatMessage, Context

    return Context([ChatMessage.User("hi")])
