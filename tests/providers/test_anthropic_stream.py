"""AnthropicProvider's stream over loopback HTTP: the real recordings in ../shared/wire/anthropic
(conformance) and hand-written fixtures of the same shapes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from llm_sync import (
    ApiError,
    ContextOverflowError,
    InvalidApiKeyError,
    JsonParsingError,
    LlmError,
    LlmResponse,
    RateLimitedError,
    ServerError,
    StopReason,
    StreamInterruptedError,
)
from llm_sync._transport._frame import Frame
from llm_sync.providers.anthropic import AnthropicProvider, parse_events
from tests.support.paths import WIRE
from tests.support.replay import kinds, only, split_every, stream_body
from tests.support.server import LoopbackServer, Reply, sse

FOLDER = WIRE / "anthropic"
KEY = "sk-ant-test-stream-0123456789"


def provider(server: LoopbackServer, **kw: Any) -> AnthropicProvider:
    kw.setdefault("max_retries", 0)
    return AnthropicProvider(KEY, base_url=server.url, **kw)


# ---------------------------------------------------------------------------
# An independent reading of a recording: what a correct parser must report.


def sse_payloads(body: str) -> List[Dict[str, Any]]:
    out = []
    for block in body.replace("\r\n", "\n").split("\n\n"):
        data = [line[5:].lstrip(" ") for line in block.split("\n") if line.startswith("data:")]
        if data:
            out.append(json.loads("\n".join(data)))
    return out


def recording_events(path: Path) -> List[Dict[str, Any]]:
    if path.suffix == ".ndjson":
        return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
    return sse_payloads(path.read_text("utf-8"))


def recording_body(path: Path) -> bytes:
    """The body to serve: .sse as recorded; .ndjson lines framed as the API frames them."""
    if path.suffix == ".ndjson":
        return sse(*[(e["type"], json.dumps(e)) for e in recording_events(path)])
    return path.read_bytes()


RAW_STOP = {
    "end_turn": StopReason.END_TURN,
    "stop_sequence": StopReason.END_TURN,
    "tool_use": StopReason.TOOL_CALLS,
    "max_tokens": StopReason.LENGTH,
    "refusal": StopReason.CONTENT_FILTER,
}


def expectations(events: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Text, reasoning, tool calls, usage and stop reason of the first message in ``events``."""
    text, thinking = [], []
    blocks: Dict[int, Dict[str, Any]] = {}
    tools: List[Dict[str, Any]] = []
    signed: List[Dict[str, Any]] = []
    usage: Dict[str, Any] = {}
    stop = None
    message_id = None
    for e in events:
        t = e["type"]
        if t == "message_start":
            message_id = e["message"]["id"]
            usage.update(e["message"]["usage"])
        elif t == "content_block_start":
            b = dict(e["content_block"], _json="", _text="", _sig=e["content_block"].get("signature", ""))
            blocks[e["index"]] = b
        elif t == "content_block_delta":
            b, d = blocks[e["index"]], e["delta"]
            if d["type"] == "text_delta":
                text.append(d["text"])
            elif d["type"] == "thinking_delta":
                thinking.append(d["thinking"])
                b["_text"] += d["thinking"]
            elif d["type"] == "signature_delta":
                b["_sig"] += d["signature"]
            elif d["type"] == "input_json_delta":
                b["_json"] += d["partial_json"]
        elif t == "content_block_stop":
            b = blocks.pop(e["index"])
            if b["type"] == "tool_use":
                args = json.loads(b["_json"]) if b["_json"] else b.get("input") or {}
                tools.append({"id": b["id"], "name": b["name"], "args": args})
            elif b["type"] == "thinking":
                signed.append({"type": "thinking", "thinking": b["_text"], "signature": b["_sig"]})
        elif t == "message_delta":
            stop = e["delta"]["stop_reason"]
            usage.update({k: v for k, v in e["usage"].items() if v is not None})
        elif t == "message_stop":
            break
    details = usage.get("output_tokens_details") or {}
    return {
        "message_id": message_id,
        "text": "".join(text),
        "reasoning": "".join(thinking),
        "tools": tools,
        "signed": signed,
        "usage": LlmResponse.Usage(
            usage["input_tokens"] + usage.get("cache_read_input_tokens", 0) + usage.get("cache_creation_input_tokens", 0),
            usage["output_tokens"],
            cached_input_tokens=usage.get("cache_read_input_tokens"),
            cache_creation_tokens=usage.get("cache_creation_input_tokens"),
            reasoning_tokens=details.get("thinking_tokens"),
        ),
        "stop": stop,
    }


def _names(*suffixes: str) -> List[str]:
    if not FOLDER.is_dir():
        return ["(absent)"]  # one case, skipped by the wire fixture
    return sorted(
        p.name
        for p in FOLDER.iterdir()
        if p.suffix in suffixes and not p.name.endswith(".meta.json") and "error" not in p.name
    )


STREAMS = _names(".sse", ".ndjson")
ERROR_BODIES = sorted(
    p.name for p in FOLDER.glob("*err*.json") if not p.name.endswith(".meta.json")
) if FOLDER.is_dir() else ["(absent)"]


@pytest.mark.parametrize("name", STREAMS)
def test_every_recorded_stream_replays_exactly(name: str, wire: Path, server: LoopbackServer) -> None:
    path = wire / "anthropic" / name
    want = expectations(recording_events(path))
    body = recording_body(path)
    chunks = stream_body(server, provider(server), split_every(body, 509))

    assert isinstance(chunks[0], LlmResponse.Start) and chunks[0].message_id == want["message_id"]
    assert isinstance(chunks[-1], LlmResponse.Done)
    assert isinstance(chunks[-2], LlmResponse.Usage)
    assert "".join(c.chunk for c in only(chunks, LlmResponse.Text)) == want["text"]  # type: ignore[attr-defined]
    assert "".join(c.chunk for c in only(chunks, LlmResponse.Reasoning)) == want["reasoning"]  # type: ignore[attr-defined]
    calls = [c.tool_call for c in only(chunks, LlmResponse.ToolRequestComplete)]  # type: ignore[attr-defined]
    assert [(c.id, c.name, c.parsed_arguments()) for c in calls] == [
        (t["id"], t["name"], t["args"]) for t in want["tools"]
    ]
    starts = only(chunks, LlmResponse.ToolRequestStart)
    assert [(s.id, s.name) for s in starts] == [(t["id"], t["name"]) for t in want["tools"]]  # type: ignore[attr-defined]
    assert chunks[-2] == want["usage"]
    done = chunks[-1]
    assert done.raw_stop_reason == want["stop"]  # type: ignore[attr-defined]
    assert done.stop_reason == RAW_STOP.get(want["stop"], StopReason.UNKNOWN)  # type: ignore[attr-defined]
    encrypted = only(chunks, LlmResponse.EncryptedReasoning)
    if want["signed"]:
        assert len(encrypted) == 1
        assert json.loads(encrypted[0].content) == want["signed"]  # type: ignore[attr-defined]
        assert encrypted[0].id == want["message_id"]  # type: ignore[attr-defined]
    else:
        assert encrypted == []
    assert kinds(chunks).count("Start") == 1 and kinds(chunks).count("Done") == 1


def test_recorded_values_read_by_hand(wire: Path, server: LoopbackServer) -> None:
    """Literal numbers checked by reading the files, so the oracle above is itself checked."""
    folder = wire / "anthropic"

    def play(name: str) -> Any:
        return stream_body(server, provider(server), recording_body(folder / name))

    got = play("aether_02_tool_call.sse")
    assert [c.chunk for c in only(got, LlmResponse.ToolRequestArg)] == ['{"c', 'ity": ', '"Tokyo"}']  # type: ignore[attr-defined]
    assert only(got, LlmResponse.ToolRequestComplete)[0].tool_call.arguments == '{"city": "Tokyo"}'  # type: ignore[attr-defined]
    assert got[-1] == LlmResponse.Done(StopReason.TOOL_CALLS, "tool_use")

    got = play("aether_03_cache_write.sse")
    assert got[-2] == LlmResponse.Usage(5517, 32, cached_input_tokens=0, cache_creation_tokens=5510)
    assert got[-1] == LlmResponse.Done(StopReason.LENGTH, "max_tokens")
    got = play("aether_04_cache_read.sse")
    assert got[-2] == LlmResponse.Usage(5517, 32, cached_input_tokens=5510, cache_creation_tokens=0)

    got = play("llma_thinking_then_tool_use.sse")
    assert got[-2] == LlmResponse.Usage(598, 92, 0, 0, reasoning_tokens=53)
    call = only(got, LlmResponse.ToolRequestComplete)[0].tool_call  # type: ignore[attr-defined]
    assert (call.id, call.name, call.arguments) == ("toolu_01825dXWLSoJwCst1qTsiWdb", "fixed_version", "")
    blocks = json.loads(only(got, LlmResponse.EncryptedReasoning)[0].content)  # type: ignore[attr-defined]
    assert blocks[0]["signature"].startswith("EoQDCm0IDhgCKkCDzGs2kL2P")
    assert blocks[0]["thinking"].startswith("The user wants me to:\n1. Use the fixed_version tool")

    got = play("sdk_refusal_after_thinking_sanitized.sse")
    assert got[-1] == LlmResponse.Done(StopReason.CONTENT_FILTER, "refusal")
    assert got[-2] == LlmResponse.Usage(28, 106, 0, 0, reasoning_tokens=67)

    got = play("pyd_pause_turn_web_search.sse")
    assert got[-1] == LlmResponse.Done(StopReason.UNKNOWN, "pause_turn")
    assert got[-2] == LlmResponse.Usage(404500, 943, 0, 0, reasoning_tokens=261)
    # 11 server_tool_use blocks with input_json_delta: none of them is the caller's to run.
    assert only(got, LlmResponse.ToolRequestStart) == []

    # vercel's file concatenates several responses; the first one ends at its message_stop.
    got = play("vercel_programmatic_tool_calling.ndjson")
    call = only(got, LlmResponse.ToolRequestComplete)[0].tool_call  # type: ignore[attr-defined]
    assert (call.id, call.name, call.parsed_arguments()) == (
        "toolu_019jKkXz4jAdwHweHBw92CVY",
        "rollDie",
        {"player": "player1"},
    )
    assert got[0] == LlmResponse.Start("msg_01ERcBqAvLTHWQDk9c9qJLWC")
    assert got[-1] == LlmResponse.Done(StopReason.TOOL_CALLS, "tool_use")


def test_recorded_midstream_overloaded_error(wire: Path, server: LoopbackServer) -> None:
    line = (wire / "anthropic" / "issue_midstream_overloaded_error_data_line.sse").read_bytes()
    # The quote lacks the "event: error" line and the blank line that ends the event.
    body = b"event: error\n" + line.rstrip(b"\n") + b"\n\n"
    with pytest.raises(ServerError) as info:
        stream_body(server, provider(server), body)
    assert info.value.retryable and "overloaded_error" in str(info.value)

    # Before any content the engine retries it, like an HTTP 529.
    server.reply(Reply.event_stream(b"event: error\n" + line.rstrip(b"\n") + b"\n\n"))
    ok = sse(("message_start", _start("msg_after_retry")), *_text_block(0, "fine"), *_end("end_turn"))
    chunks = stream_body(server, provider(server, max_retries=1), ok)
    assert chunks[0] == LlmResponse.Start("msg_after_retry")
    assert len(server.requests) == 3  # the first stream, then the failed and the retried attempt


@pytest.mark.parametrize("name", ERROR_BODIES)
def test_recorded_error_bodies(name: str, wire: Path, server: LoopbackServer) -> None:
    path = wire / "anthropic" / name
    meta = json.loads(path.with_name(name[: -len(".json")] + ".meta.json").read_text("utf-8"))
    status = meta["http_status"]
    body = path.read_bytes()
    server.reply(Reply(status=status, headers={"content-type": "application/json"}, body=body))
    expected = {
        "err_400_invalid_request.json": ApiError,
        "err_404_not_found_model.json": ApiError,
        "issue_err_400_prompt_too_long.json": ContextOverflowError,
        "issue_err_529_overloaded.json": ServerError,
    }[name]
    with pytest.raises(LlmError) as info:
        stream_body(server, provider(server), b"")
    err = info.value
    assert type(err) is expected
    assert err.status == status and err.provider == "anthropic"
    message = json.loads(body)["error"]["message"]
    assert message in str(err)
    if expected is ContextOverflowError:
        assert (err.requested_tokens, err.max_tokens) == (200251, 200000)  # type: ignore[attr-defined]
        assert not err.retryable
    if expected is ServerError:
        assert err.retryable
    assert len(server.requests) == 1  # max_retries=0


# ---------------------------------------------------------------------------
# Hand-written fixtures (the suite stands on its own without ../shared/wire).


def _start(id: str = "msg_hand_1", input_tokens: int = 10, **extra: int) -> Dict[str, Any]:
    usage = {"input_tokens": input_tokens, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 1}
    usage.update(extra)
    return {"type": "message_start", "message": {"id": id, "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "content": [], "usage": usage}}


def _text_block(index: int, *parts: str) -> List[Any]:
    return [
        ("content_block_start", {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}),
        *[
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": p}})
            for p in parts
        ],
        ("content_block_stop", {"type": "content_block_stop", "index": index}),
    ]


def _tool_block(index: int, id: str, name: str, *parts: str, stop: bool = True) -> List[Any]:
    events: List[Any] = [
        ("content_block_start", {"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
        *[
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": p}})
            for p in parts
        ],
    ]
    if stop:
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events


def _thinking_block(index: int, signature: str, *parts: str) -> List[Any]:
    return [
        ("content_block_start", {"type": "content_block_start", "index": index, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        *[
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": {"type": "thinking_delta", "thinking": p}})
            for p in parts
        ],
        ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": {"type": "signature_delta", "signature": signature}}),
        ("content_block_stop", {"type": "content_block_stop", "index": index}),
    ]


def _end(reason: Optional[str], output_tokens: int = 7, **usage: Any) -> List[Any]:
    u = {"output_tokens": output_tokens}
    u.update(usage)
    return [
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": None}, "usage": u}),
        ("message_stop", {"type": "message_stop"}),
    ]


PING = ("ping", {"type": "ping"})


def test_text_stream_in_order(server: LoopbackServer) -> None:
    body = sse(("message_start", _start()), PING, *_text_block(0, "Hel", "", "lo"), *_end("end_turn"))
    chunks = stream_body(server, provider(server), split_every(body, 3))
    assert chunks == [
        LlmResponse.Start("msg_hand_1"),
        LlmResponse.Text("Hel"),
        LlmResponse.Text("lo"),
        LlmResponse.Usage(10, 7, 0, 0),
        LlmResponse.Done(StopReason.END_TURN, "end_turn"),
    ]


def test_parallel_tool_calls_keyed_by_block_index(server: LoopbackServer) -> None:
    a = _tool_block(1, "toolu_a", "get_weather", stop=False)
    b = _tool_block(2, "toolu_b", "get_time", stop=False)
    deltas = [
        ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"city":'}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": '{"tz": "UTC"}'}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ' "Oslo"}'}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 2}),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    ]
    body = sse(("message_start", _start()), *_text_block(0, "Checking."), *a, *b, *deltas, *_end("tool_use"))
    got = provider(server)
    server.reply(Reply.event_stream(body))
    with got.stream_response(_ctx()) as stream:
        collected = stream.collect()
    assert collected.text == "Checking."
    assert [(c.id, c.name, c.parsed_arguments()) for c in collected.tool_calls] == [
        ("toolu_b", "get_time", {"tz": "UTC"}),
        ("toolu_a", "get_weather", {"city": "Oslo"}),
    ]
    assert collected.stop_reason == StopReason.TOOL_CALLS


def _ctx() -> Any:
    from llm_sync import ChatMessage, Context

    return Context([ChatMessage.User("hi")])


def test_thinking_and_redacted_thinking_become_one_encrypted_reasoning(server: LoopbackServer) -> None:
    redacted = ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {"type": "redacted_thinking", "data": "EmwKAhgBEgy-opaque"}})
    body = sse(
        ("message_start", _start("msg_think")),
        *_thinking_block(0, "sig-part-1", "Let me ", "think."),
        redacted,
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        *_tool_block(2, "toolu_x", "lookup", '{"q": 1}'),
        *_end("tool_use", 30, output_tokens_details={"thinking_tokens": 12}),
    )
    chunks = stream_body(server, provider(server), body)
    assert "".join(c.chunk for c in only(chunks, LlmResponse.Reasoning)) == "Let me think."  # type: ignore[attr-defined]
    enc = only(chunks, LlmResponse.EncryptedReasoning)
    assert len(enc) == 1 and enc[0].id == "msg_think"  # type: ignore[attr-defined]
    assert json.loads(enc[0].content) == [  # type: ignore[attr-defined]
        {"type": "thinking", "thinking": "Let me think.", "signature": "sig-part-1"},
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy-opaque"},
    ]
    assert kinds(chunks)[-3:] == ["EncryptedReasoning", "Usage", "Done"]
    assert chunks[-2] == LlmResponse.Usage(10, 30, 0, 0, reasoning_tokens=12)


def test_tool_use_cut_by_max_tokens_yields_no_complete(server: LoopbackServer) -> None:
    body = sse(
        ("message_start", _start()),
        *_tool_block(0, "toolu_ok", "first", '{"a": 1}'),
        *_tool_block(1, "toolu_cut", "write_file", '{"path": "x.txt", "content": "abc'),
        *_end("max_tokens"),
    )
    chunks = stream_body(server, provider(server), body)
    completes = [c.tool_call.id for c in only(chunks, LlmResponse.ToolRequestComplete)]  # type: ignore[attr-defined]
    assert completes == ["toolu_ok"]
    # The cut call was announced and streamed, and Done says why it has no Complete.
    assert [s.id for s in only(chunks, LlmResponse.ToolRequestStart)] == ["toolu_ok", "toolu_cut"]  # type: ignore[attr-defined]
    assert chunks[-1] == LlmResponse.Done(StopReason.LENGTH, "max_tokens")

    server.reply(Reply.event_stream(body))
    collected = provider(server).stream_response(_ctx()).collect()
    assert [c.id for c in collected.tool_calls] == ["toolu_ok"]
    assert collected.stop_reason == StopReason.LENGTH and collected.raw_stop_reason == "max_tokens"


def test_unparseable_arguments_without_a_cut_are_passed_on_as_streamed(server: LoopbackServer) -> None:
    body = sse(("message_start", _start()), *_tool_block(0, "toolu_bad", "f", '{"a": '), *_end("tool_use"))
    chunks = stream_body(server, provider(server), body)
    call = only(chunks, LlmResponse.ToolRequestComplete)[0].tool_call  # type: ignore[attr-defined]
    assert call.arguments == '{"a": '
    from llm_sync import ToolArgumentsError

    with pytest.raises(ToolArgumentsError, match="not valid JSON"):
        call.parsed_arguments()


def test_server_tools_and_unknown_blocks_and_events_are_ignored(server: LoopbackServer) -> None:
    body = sse(
        ("message_start", _start()),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": '{"query": "x"}'}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ("content_block_start", {"type": "content_block_start", "index": 2, "content_block": {"type": "hologram", "x": 1}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 2, "delta": {"type": "hologram_delta", "x": 2}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 2}),
        ("brand_new_event", {"type": "brand_new_event", "anything": True}),
        *_text_block(3, "Answer"),
        ("content_block_delta", {"type": "content_block_delta", "index": 3, "delta": {"type": "citations_delta", "citation": {}}}),
        *_end("pause_turn"),
    )
    chunks = stream_body(server, provider(server), body)
    assert kinds(chunks) == ["Start", "Text", "Usage", "Done"]
    assert chunks[-1] == LlmResponse.Done(StopReason.UNKNOWN, "pause_turn")


@pytest.mark.parametrize(
    ("raw", "mapped"),
    [
        ("end_turn", StopReason.END_TURN),
        ("stop_sequence", StopReason.END_TURN),
        ("tool_use", StopReason.TOOL_CALLS),
        ("max_tokens", StopReason.LENGTH),
        ("refusal", StopReason.CONTENT_FILTER),
        ("pause_turn", StopReason.UNKNOWN),
        ("something_new", StopReason.UNKNOWN),
    ],
)
def test_stop_reasons(raw: str, mapped: StopReason) -> None:
    frames = [Frame(e, json.dumps(d)) for e, d in [("message_start", _start()), *_end(raw)]]
    assert list(parse_events(iter(frames)))[-1] == LlmResponse.Done(mapped, raw)


def test_usage_counts_cache_reads_and_writes_as_input() -> None:
    events = [("message_start", _start(input_tokens=5, cache_read_input_tokens=100, cache_creation_input_tokens=20)), *_end("end_turn", 9)]
    got = list(parse_events(iter([Frame(e, json.dumps(d)) for e, d in events])))
    assert got[-2] == LlmResponse.Usage(125, 9, cached_input_tokens=100, cache_creation_tokens=20)


def test_prefilled_tool_input_without_deltas() -> None:
    start = {"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "toolu_p", "name": "roll", "input": {"player": "p1"}}}
    events = [("message_start", _start()), ("content_block_start", start), ("content_block_stop", {"type": "content_block_stop", "index": 0}), *_end("tool_use")]
    got = list(parse_events(iter([Frame(e, json.dumps(d)) for e, d in events])))
    call = only(got, LlmResponse.ToolRequestComplete)[0].tool_call  # type: ignore[attr-defined]
    assert call.parsed_arguments() == {"player": "p1"}


@pytest.mark.parametrize(
    ("etype", "message", "cls"),
    [
        ("overloaded_error", "Overloaded", ServerError),
        ("api_error", "Internal server error", ServerError),
        ("rate_limit_error", "Too many", RateLimitedError),
        ("authentication_error", "bad key", InvalidApiKeyError),
        ("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum", ContextOverflowError),
        ("invalid_request_error", "something else", ApiError),
    ],
)
def test_error_events_raise_typed_errors(etype: str, message: str, cls: type) -> None:
    frames = [Frame("error", json.dumps({"type": "error", "error": {"type": etype, "message": message}}))]
    with pytest.raises(cls) as info:
        list(parse_events(iter(frames)))
    assert type(info.value) is cls and message in str(info.value)
    if cls is ContextOverflowError:
        assert (info.value.requested_tokens, info.value.max_tokens) == (210000, 200000)


def test_overloaded_before_content_is_retried(server: LoopbackServer) -> None:
    err = ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    server.reply(Reply.event_stream(("message_start", _start("msg_first")), PING, err))
    body = sse(("message_start", _start("msg_second")), *_text_block(0, "ok"), *_end("end_turn"))
    chunks = stream_body(server, provider(server, max_retries=2), body)
    # One Start (the retry's duplicate is suppressed), then the second attempt's content.
    assert kinds(chunks) == ["Start", "Text", "Usage", "Done"]
    assert chunks[1] == LlmResponse.Text("ok")
    assert len(server.requests) == 2


def test_overloaded_after_content_is_raised_not_retried(server: LoopbackServer) -> None:
    err = ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    server.reply(Reply.event_stream(("message_start", _start()), *_text_block(0, "partial"), err))
    seen: List[LlmResponse] = []
    with pytest.raises(ServerError):
        with provider(server, max_retries=3).stream_response(_ctx()) as stream:
            for chunk in stream:
                seen.append(chunk)
    assert LlmResponse.Text("partial") in seen
    assert len(server.requests) == 1


def test_invalid_json_event_names_the_event() -> None:
    frames = [Frame("message_start", json.dumps(_start())), Frame("content_block_delta", "{not json")]
    with pytest.raises(JsonParsingError, match="content_block_delta"):
        list(parse_events(iter(frames)))


def test_a_body_cut_before_message_stop_is_interrupted(server: LoopbackServer) -> None:
    body = sse(("message_start", _start()), *_text_block(0, "half"))
    with pytest.raises(StreamInterruptedError):
        stream_body(server, provider(server), body)


def test_message_delta_without_message_stop_still_ends_the_turn() -> None:
    events = [("message_start", _start()), *_text_block(0, "x"), _end("end_turn")[0]]
    got = list(parse_events(iter([Frame(e, json.dumps(d)) for e, d in events])))
    assert got[-1] == LlmResponse.Done(StopReason.END_TURN, "end_turn")


def test_a_known_event_missing_its_fields_is_a_json_error_naming_it() -> None:
    frames = [Frame("message_start", json.dumps(_start())), Frame("content_block_delta", '{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta"}}')]
    with pytest.raises(JsonParsingError, match="content_block_delta"):
        list(parse_events(iter(frames)))


def test_start_comes_first_even_without_message_start() -> None:
    frames = [Frame("ping", '{"type": "ping"}'), *[Frame(e, json.dumps(d)) for e, d in [*_text_block(0, "x"), *_end("end_turn")]]]
    got = list(parse_events(iter(frames)))
    assert isinstance(got[0], LlmResponse.Start) and got[0].message_id.startswith("msg_")
    assert kinds(got) == ["Start", "Text", "Usage", "Done"]
