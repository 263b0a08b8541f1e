"""GeminiProvider streams: the real recordings and hand-written bodies over loopback HTTP, and errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import pytest

from llm_sync import (
    ApiError,
    Context,
    ContextOverflowError,
    InvalidApiKeyError,
    JsonParsingError,
    LlmResponse,
    RateLimitedError,
    ServerError,
    StopReason,
    StreamInterruptedError,
    StreamReadError,
)
from llm_sync._transport._frame import Frame
from llm_sync.providers.gemini import GeminiProvider, classify_error, parse_events
from tests.support.replay import kinds, only, split_every, stream_body
from tests.support.server import LoopbackServer, Reply

KEY = "gm-test-key-0123456789"


def provider(server: LoopbackServer, model: str = "gemini-2.5-flash", **kw: Any) -> GeminiProvider:
    return GeminiProvider(KEY, model=model, base_url=server.url + "/v1beta", **kw)


def data(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\r\n\r\n"


def chunk(
    parts: Optional[List[Dict[str, Any]]] = None,
    finish: Optional[str] = None,
    usage: Optional[Dict[str, Any]] = None,
    rid: str = "resp-1",
) -> Dict[str, Any]:
    cand: Dict[str, Any] = {"content": {"role": "model", "parts": parts or []}, "index": 0}
    if finish:
        cand["finishReason"] = finish
    out: Dict[str, Any] = {"candidates": [cand], "modelVersion": "gemini-2.5-flash", "responseId": rid}
    if usage:
        out["usageMetadata"] = usage
    return out


def joined(chunks: Sequence[LlmResponse], cls: Any) -> str:
    return "".join(c.chunk for c in only(chunks, cls))  # type: ignore[attr-defined]


def calls(chunks: Sequence[LlmResponse]) -> List[Any]:
    return [c.tool_call for c in only(chunks, LlmResponse.ToolRequestComplete)]  # type: ignore[attr-defined]


def assert_shape(chunks: Sequence[LlmResponse]) -> None:
    """Start first, Done last, each once; at most one Usage, right before Done."""
    names = kinds(chunks)
    assert names[0] == "Start" and names.count("Start") == 1
    assert names[-1] == "Done" and names.count("Done") == 1
    assert names.count("Usage") <= 1
    if "Usage" in names:
        assert names[-2] == "Usage"
    assert names.count("EncryptedReasoning") <= 1
    # Every call: Start, at least one Arg whose pieces make the arguments, Complete.
    for call in calls(chunks):
        starts = [c for c in only(chunks, LlmResponse.ToolRequestStart) if c.id == call.id]  # type: ignore[attr-defined]
        assert len(starts) == 1 and starts[0].name == call.name  # type: ignore[attr-defined]
        args = "".join(c.chunk for c in only(chunks, LlmResponse.ToolRequestArg) if c.id == call.id)  # type: ignore[attr-defined]
        assert args == call.arguments


# ---------------------------------------------------------------------------
# Conformance: every recording in ../shared/wire/gemini.


def recorded_events(path: Path) -> List[Dict[str, Any]]:
    """The recording's GenerateContentResponse objects, read without the provider's parser."""
    raw = path.read_text(encoding="utf-8")
    if path.suffix == ".sse":
        return [json.loads(line[5:]) for line in raw.splitlines() if line.startswith("data:")]
    if path.suffix == ".ndjson":
        return [json.loads(line) for line in raw.splitlines() if line.strip()]
    parsed = json.loads(raw)
    return parsed if isinstance(parsed, list) else [parsed]


def as_sse(path: Path) -> bytes:
    """The recording as Gemini's SSE body (the .ndjson ones store one event per line)."""
    if path.suffix == ".sse":
        return path.read_bytes()
    return b"".join(data(e) for e in recorded_events(path))


def expected(events: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Text, reasoning, whole function calls, usage and finish word, computed from the events."""
    out: Dict[str, Any] = {"text": "", "reasoning": "", "calls": [], "usage": None, "finish": None, "rid": None}
    for e in events:
        out["rid"] = out["rid"] or e.get("responseId")
        u = e.get("usageMetadata") or {}
        if "promptTokenCount" in u:
            out["usage"] = u
        for cand in e.get("candidates") or []:
            for p in (cand.get("content") or {}).get("parts") or []:
                if "text" in p:
                    out["reasoning" if p.get("thought") else "text"] += p["text"]
                fc = p.get("functionCall")
                if fc and fc.get("name") and not fc.get("willContinue"):
                    out["calls"].append((fc["name"], fc.get("args", {})))
            out["finish"] = cand.get("finishReason") or out["finish"]
    return out


STREAMS = [
    "pyd_function_call_20flash.sse",
    "pyd_text_20flash.sse",
    "pyd_text_after_function_g3.sse",
    "pyd_thoughts_25pro.sse",
    "vercel_reasoning_25.ndjson",
    "vercel_stream_no_args_tool_call.ndjson",
    "vercel_vertex_stream_fc_array_args_missing_terminal.ndjson",
    "vercel_vertex_stream_fc_partial_args.ndjson",
    "pyd_nonstream_cached_content_tokens.json",
    "pyd_nonstream_finish_max_tokens.json",
    "pyd_nonstream_max_tokens_empty_content_thinking.json",
    "pyd_nonstream_parallel_function_calls_g3.json",
    "pyd_nonstream_safety.json",
    "llmg_nonsse_array_function_call_25flash.json",
    "llmg_nonsse_array_function_call_g3.json",
]

# Streamed calls (Vertex's partialArgs) cannot be read off single parts; verified by hand.
PARTIAL_CALLS = {
    "vercel_stream_no_args_tool_call.ndjson": [
        ("read_theme", {}),
        ("read_screen", {"id": "A"}),
        ("read_screen", {"id": "B"}),
        ("read_screen", {"id": "C"}),
    ],
    "vercel_vertex_stream_fc_array_args_missing_terminal.ndjson": [
        (
            "writeItems",
            {
                "operations": [
                    {"action": "add", "description": "Fresh red apple", "itemid": "apple_001", "price": 0.5},
                    {"action": "add", "description": "Ripe yellow banana", "itemid": "banana_001", "price": 0.3},
                ]
            },
        )
    ],
    "vercel_vertex_stream_fc_partial_args.ndjson": [
        ("getWeather", {"location": "Boston"}),
        ("getWeather", {"location": "San Francisco"}),
    ],
}

FINISH = {"STOP": StopReason.END_TURN, "MAX_TOKENS": StopReason.LENGTH, "SAFETY": StopReason.CONTENT_FILTER}


def test_every_gemini_recording_is_covered(wire: Path) -> None:
    bodies = {p.name for p in (wire / "gemini").iterdir() if not p.name.endswith(".meta.json")}
    errors = {"err_404_model_not_found.json", "issue_err_400_input_token_count_exceeds.json", "lcgo_err_403.json"}
    assert bodies == set(STREAMS) | errors


@pytest.mark.parametrize("name", STREAMS)
def test_recording_replays_exactly(server: LoopbackServer, wire: Path, name: str) -> None:
    path = wire / "gemini" / name
    events = recorded_events(path)
    want = expected(events)
    chunks = stream_body(server, provider(server), split_every(as_sse(path), 257), framing="sse")
    assert_shape(chunks)
    assert chunks[0] == LlmResponse.Start(want["rid"])
    assert joined(chunks, LlmResponse.Text) == want["text"]
    assert joined(chunks, LlmResponse.Reasoning) == want["reasoning"]
    got_calls = [(c.name, json.loads(c.arguments)) for c in calls(chunks)]
    assert got_calls == PARTIAL_CALLS.get(name, want["calls"])
    ids = [c.id for c in calls(chunks)]
    assert len(set(ids)) == len(ids) and all(want["rid"] in i for i in ids)
    u = want["usage"]
    usage = only(chunks, LlmResponse.Usage)[0]
    assert usage.input_tokens == u["promptTokenCount"]  # type: ignore[attr-defined]
    assert usage.output_tokens == u.get("candidatesTokenCount", 0) + u.get("thoughtsTokenCount", 0)  # type: ignore[attr-defined]
    assert usage.reasoning_tokens == u.get("thoughtsTokenCount")  # type: ignore[attr-defined]
    assert usage.cached_input_tokens == u.get("cachedContentTokenCount")  # type: ignore[attr-defined]
    done = chunks[-1]
    stop = StopReason.TOOL_CALLS if got_calls and want["finish"] == "STOP" else FINISH[want["finish"]]
    assert done == LlmResponse.Done(stop, want["finish"])
    # Every signature in the recording is kept, each with the part it came on.
    sigs = [p["thoughtSignature"] for e in events for c in e["candidates"] for p in c["content"].get("parts", []) if "thoughtSignature" in p]
    enc = only(chunks, LlmResponse.EncryptedReasoning)
    if sigs:
        kept = json.loads(enc[0].content)  # type: ignore[attr-defined]
        assert sorted([*kept.get("calls", {}).values(), *([kept["text"]] if "text" in kept else [])]) == sorted(sigs)
    else:
        assert enc == []


@pytest.mark.parametrize("name", [n for n in STREAMS if n.endswith(".json")])
def test_unframed_json_bodies_are_read_too(server: LoopbackServer, wire: Path, name: str) -> None:
    # streamGenerateContent without alt=sse (a proxy that drops the query) answers with a
    # JSON array; generateContent with one object: the same chunks, served as recorded.
    path = wire / "gemini" / name
    want = expected(recorded_events(path))
    chunks = stream_body(
        server, provider(server), path.read_bytes(), framing="sse", headers={"content-type": "application/json"}
    )
    assert_shape(chunks)
    assert joined(chunks, LlmResponse.Text) == want["text"]
    assert [c.name for c in calls(chunks)] == [n for n, _ in want["calls"]]
    assert chunks[-1].raw_stop_reason == want["finish"]  # type: ignore[attr-defined]


def test_thoughts_recording_literal_values(server: LoopbackServer, wire: Path) -> None:
    # Literal values read off pyd_thoughts_25pro.sse: 4 thought parts, then the answer;
    # the signature rides on the first answer part.
    path = wire / "gemini" / "pyd_thoughts_25pro.sse"
    chunks = stream_body(server, provider(server, "gemini-2.5-pro"), path.read_bytes())
    reasoning = joined(chunks, LlmResponse.Reasoning)
    assert reasoning.startswith("**Clarifying User Goals**") and reasoning.count("**") == 8
    assert joined(chunks, LlmResponse.Text).startswith("This is a great question! Safely crossing")
    assert only(chunks, LlmResponse.Usage) == [
        LlmResponse.Usage(input_tokens=34, output_tokens=1256, reasoning_tokens=787)
    ]
    kept = json.loads(only(chunks, LlmResponse.EncryptedReasoning)[0].content)  # type: ignore[attr-defined]
    assert set(kept) == {"text"} and kept["text"].startswith("CiIB0e2Kb6Syj1a961Ef")


def test_cached_tokens_recording(server: LoopbackServer, wire: Path) -> None:
    path = wire / "gemini" / "pyd_nonstream_cached_content_tokens.json"
    chunks = stream_body(server, provider(server), as_sse(path))
    assert only(chunks, LlmResponse.Usage) == [
        LlmResponse.Usage(input_tokens=3520, output_tokens=44, cached_input_tokens=3512, reasoning_tokens=42)
    ]


def test_overflow_recording(server: LoopbackServer, wire: Path) -> None:
    body = (wire / "gemini" / "issue_err_400_input_token_count_exceeds.json").read_bytes()
    server.reply(Reply(status=400, headers={"content-type": "application/json"}, body=[body]))
    with pytest.raises(ContextOverflowError) as info:
        list(provider(server).stream_response(Context()))
    assert (info.value.requested_tokens, info.value.max_tokens) == (3475108, 1048576)
    assert info.value.status == 400 and info.value.provider == "gemini"
    assert len(server.requests) == 1


def test_model_not_found_recording(server: LoopbackServer, wire: Path) -> None:
    body = (wire / "gemini" / "err_404_model_not_found.json").read_bytes()
    server.reply(Reply(status=404, headers={"content-type": "application/json"}, body=[body]))
    with pytest.raises(ApiError) as info:
        list(provider(server, "gemini-3.6-flahs").stream_response(Context()))
    assert type(info.value) is ApiError and info.value.status == 404
    assert "gemini-3.6-flahs" in str(info.value) and "NOT_FOUND" in str(info.value)
    assert len(server.requests) == 1


def test_permission_denied_recording_is_not_retried(server: LoopbackServer, wire: Path) -> None:
    body = (wire / "gemini" / "lcgo_err_403.json").read_bytes()
    server.reply(Reply(status=403, headers={"content-type": "application/json"}, body=[body]))
    with pytest.raises(InvalidApiKeyError) as info:
        list(provider(server).stream_response(Context()))
    assert "PERMISSION_DENIED" in str(info.value) and not info.value.retryable
    assert len(server.requests) == 1


# ---------------------------------------------------------------------------
# Hand-written bodies.


def test_text_usage_reported_once_with_final_totals(server: LoopbackServer) -> None:
    body = [
        data(chunk([{"text": "Hel"}], usage={"promptTokenCount": 10, "totalTokenCount": 10})),
        data(chunk([{"text": "lo"}], usage={"promptTokenCount": 10, "candidatesTokenCount": 1})),
        data(chunk([{"text": ""}], "STOP", {"promptTokenCount": 12, "candidatesTokenCount": 2, "thoughtsTokenCount": 5, "cachedContentTokenCount": 4})),
    ]
    chunks = stream_body(server, provider(server), body)
    assert kinds(chunks) == ["Start", "Text", "Text", "Usage", "Done"]
    assert chunks[-2] == LlmResponse.Usage(
        input_tokens=12, output_tokens=7, cached_input_tokens=4, reasoning_tokens=5
    )
    assert chunks[-1] == LlmResponse.Done(StopReason.END_TURN, "STOP")


def test_usage_only_chunks_do_not_erase_counts(server: LoopbackServer) -> None:
    body = [
        data(chunk([{"text": "a"}], usage={"promptTokenCount": 3, "candidatesTokenCount": 1})),
        data(chunk([{"text": "b"}], "STOP", {"trafficType": "ON_DEMAND"})),
    ]
    chunks = stream_body(server, provider(server), body)
    assert only(chunks, LlmResponse.Usage) == [LlmResponse.Usage(input_tokens=3, output_tokens=1)]


def test_audio_and_tool_use_counts(server: LoopbackServer) -> None:
    usage = {
        "promptTokenCount": 100,
        "toolUsePromptTokenCount": 20,
        "candidatesTokenCount": 9,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 40}, {"modality": "AUDIO", "tokenCount": 60}],
    }
    chunks = stream_body(server, provider(server), [data(chunk([{"text": "x"}], "STOP", usage))])
    u = only(chunks, LlmResponse.Usage)[0]
    assert (u.input_tokens, u.output_tokens, u.input_audio_tokens) == (120, 9, 60)  # type: ignore[attr-defined]


def test_thought_parts_become_reasoning_and_signatures_are_kept(server: LoopbackServer) -> None:
    body = [
        data(chunk([{"text": "thinking...", "thought": True}])),
        data(chunk([{"text": "Answer", "thoughtSignature": "SIG-T"}])),
        data(chunk([{"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "SIG-F"}])),
        data(chunk([{"functionCall": {"name": "g", "args": {}}}], "STOP")),
    ]
    chunks = stream_body(server, provider(server), body)
    assert_shape(chunks)
    assert kinds(chunks) == [
        "Start",
        "Reasoning",
        "Text",
        "ToolRequestStart",
        "ToolRequestArg",
        "ToolRequestComplete",
        "ToolRequestStart",
        "ToolRequestArg",
        "ToolRequestComplete",
        "EncryptedReasoning",
        "Done",
    ]
    f, g = calls(chunks)
    assert (f.id, f.name, json.loads(f.arguments)) == ("call_resp-1_0", "f", {"a": 1})
    assert (g.id, g.arguments) == ("call_resp-1_1", "{}")
    enc = only(chunks, LlmResponse.EncryptedReasoning)[0]
    assert enc.id == "resp-1"  # type: ignore[attr-defined]
    assert json.loads(enc.content) == {"calls": {f.id: "SIG-F"}, "text": "SIG-T"}  # type: ignore[attr-defined]
    assert chunks[-1] == LlmResponse.Done(StopReason.TOOL_CALLS, "STOP")


def test_provider_call_ids_are_kept(server: LoopbackServer) -> None:
    body = [data(chunk([{"functionCall": {"id": "fc-9", "name": "f", "args": {"q": "é"}}}], "STOP"))]
    chunks = stream_body(server, provider(server), body)
    (call,) = calls(chunks)
    assert call.id == "fc-9" and call.arguments == '{"q": "é"}'


def test_made_up_ids_are_stable_across_replays(server: LoopbackServer) -> None:
    body = [data(chunk([{"functionCall": {"name": "f"}}, {"functionCall": {"name": "f"}}], "STOP", rid="R"))]
    first = [c.id for c in calls(stream_body(server, provider(server), body))]
    second = [c.id for c in calls(stream_body(server, provider(server), body))]
    assert first == second == ["call_R_0", "call_R_1"]


@pytest.mark.parametrize(
    "word, stop",
    [
        ("STOP", StopReason.END_TURN),
        ("MAX_TOKENS", StopReason.LENGTH),
        ("SAFETY", StopReason.CONTENT_FILTER),
        ("RECITATION", StopReason.CONTENT_FILTER),
        ("BLOCKLIST", StopReason.CONTENT_FILTER),
        ("PROHIBITED_CONTENT", StopReason.CONTENT_FILTER),
        ("SPII", StopReason.CONTENT_FILTER),
        ("MALFORMED_FUNCTION_CALL", StopReason.ERROR),
        ("OTHER", StopReason.UNKNOWN),
        ("SOMETHING_NEW", StopReason.UNKNOWN),
    ],
)
def test_finish_reasons(word: str, stop: StopReason) -> None:
    frames = [Frame("", "data: " + json.dumps(chunk([{"text": "x"}], word)))]
    out = list(parse_events(iter(frames)))
    assert out[-1] == LlmResponse.Done(stop, word)


def test_blocked_prompt_ends_with_content_filter(server: LoopbackServer) -> None:
    body = [data({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {"promptTokenCount": 7}, "responseId": "b1"})]
    chunks = stream_body(server, provider(server), body)
    assert kinds(chunks) == ["Start", "Usage", "Done"]
    assert chunks[-1] == LlmResponse.Done(StopReason.CONTENT_FILTER, "PROHIBITED_CONTENT")


def test_sse_comments_and_other_fields_are_ignored() -> None:
    lines = [": keep-alive", "event: message", "id: 3", "data:" + json.dumps(chunk([{"text": "x"}], "STOP"))]
    out = list(parse_events(iter([Frame("", ln) for ln in lines])))
    assert kinds(out) == ["Start", "Text", "Done"]


# ---------------------------------------------------------------------------
# Failures inside a 200 stream.

OVERLOADED = b'{\n  "error": {\n    "code": 503,\n    "message": "The model is overloaded. Please try again later.",\n    "status": "UNAVAILABLE"\n  }\n}\n'


def test_unframed_503_after_the_events_is_raised_not_swallowed(server: LoopbackServer) -> None:
    # The shape of vercel/ai#5217: a finishReason STOP chunk, then the error as bare JSON.
    body = [data(chunk([{"text": "Okay"}])), data(chunk([{"text": ""}], "STOP")), OVERLOADED]
    server.reply(Reply(status=200, headers={"content-type": "text/event-stream"}, body=body, chunked=True))
    got: List[LlmResponse] = []
    with pytest.raises(ServerError) as info:
        with provider(server).stream_response(Context()) as stream:
            for c in stream:
                got.append(c)
    assert "overloaded" in str(info.value) and "UNAVAILABLE" in str(info.value)
    assert info.value.status == 503 and info.value.model == "gemini-2.5-flash"
    assert kinds(got) == ["Start", "Text"]  # never a Done
    assert len(server.requests) == 1  # content had reached the caller: not re-sent


def test_unframed_503_before_content_is_retried(server: LoopbackServer) -> None:
    server.reply(Reply(status=200, headers={"content-type": "text/event-stream"}, body=[OVERLOADED], chunked=True))
    server.reply(Reply(status=200, headers={"content-type": "text/event-stream"}, body=[data(chunk([{"text": "hi"}], "STOP"))], chunked=True))
    with provider(server).stream_response(Context()) as stream:
        chunks = list(stream)
    assert kinds(chunks) == ["Start", "Text", "Done"]
    assert len(server.requests) == 2


def test_unframed_garbage_is_a_server_error(server: LoopbackServer) -> None:
    body = [data(chunk([{"text": "a"}])), b"upstream connect error or disconnect/reset before headers\n"]
    with pytest.raises(ServerError, match="not an event"):
        stream_body(server, provider(server), body)


def test_error_event_in_the_stream_is_typed(server: LoopbackServer) -> None:
    body = [data(chunk([{"text": "a"}])), data({"error": {"code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED"}})]
    with pytest.raises(RateLimitedError, match="RESOURCE_EXHAUSTED"):
        stream_body(server, provider(server), body)


def test_stream_without_finish_reason_is_interrupted(server: LoopbackServer) -> None:
    with pytest.raises(StreamInterruptedError):
        stream_body(server, provider(server), [data(chunk([{"text": "partial"}]))])


def test_cut_off_last_event_is_interrupted(server: LoopbackServer) -> None:
    body = [data(chunk([{"text": "a"}])), b'data: {"candidates": [{"content": {"par']
    with pytest.raises(StreamInterruptedError):
        stream_body(server, provider(server), body)


def test_invalid_json_event_names_the_event(server: LoopbackServer) -> None:
    body = [b"data: {not json}\r\n\r\n", data(chunk([{"text": "a"}], "STOP"))]
    with pytest.raises(JsonParsingError, match="not json"):
        stream_body(server, provider(server), body)


def test_lines_that_are_no_sse_fields_are_kept_only_up_to_the_event_limit(server: LoopbackServer) -> None:
    # Such lines are kept (an unframed JSON answer spans several), so a server sending
    # nothing else must meet the event limit instead of filling memory until the idle
    # timeout. 20 MiB here, sent past a first event; the limit is 16 MiB.
    line = b"x" * (64 * 1024 - 1) + b"\n"
    body = [data(chunk([{"text": "a"}])), *[line * 16] * 20]
    with pytest.raises(StreamReadError, match="lines that are not server-sent event fields") as info:
        stream_body(server, provider(server), body)
    assert str(16 * 1024 * 1024) in str(info.value)


# ---------------------------------------------------------------------------
# HTTP errors.

JSON = {"content-type": "application/json"}


def test_400_overflow_in_array_form(server: LoopbackServer) -> None:
    msg = "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."
    body = [{"error": {"code": 400, "message": msg, "status": "INVALID_ARGUMENT", "errors": [{"message": msg, "domain": "global", "reason": "badRequest"}]}}]
    server.reply(Reply.json(body, status=400))
    with pytest.raises(ContextOverflowError) as info:
        list(provider(server).stream_response(Context()))
    assert (info.value.requested_tokens, info.value.max_tokens) == (1200000, 1048576)


def test_401_is_not_retried_and_never_shows_the_key(server: LoopbackServer) -> None:
    server.reply(Reply.json({"error": {"code": 401, "message": f"bad key {KEY}", "status": "UNAUTHENTICATED"}}, status=401))
    with pytest.raises(InvalidApiKeyError) as info:
        list(provider(server).stream_response(Context()))
    assert len(server.requests) == 1
    assert KEY not in str(info.value) and KEY not in (info.value.body or "")


def test_invalid_key_400_is_an_invalid_key_error(server: LoopbackServer) -> None:
    body = {"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT", "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]}}
    server.reply(Reply.json(body, status=400))
    with pytest.raises(InvalidApiKeyError):
        list(provider(server).stream_response(Context()))
    assert len(server.requests) == 1


def test_429_with_retry_after_is_retried(server: LoopbackServer) -> None:
    server.reply(Reply.json({"error": {"code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED"}}, status=429, headers={"retry-after": "0.05"}))
    server.reply(Reply(status=200, headers={"content-type": "text/event-stream"}, body=[data(chunk([{"text": "ok"}], "STOP"))], chunked=True))
    with provider(server).stream_response(Context()) as stream:
        assert stream.collect().text == "ok"
    assert len(server.requests) == 2


def test_429_retry_delay_from_details() -> None:
    body = json.dumps({"error": {"code": 429, "message": "Quota", "status": "RESOURCE_EXHAUSTED", "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]}})
    err = classify_error(429, {}, body, "gemini-2.5-pro")
    assert isinstance(err, RateLimitedError) and err.retry_after == 37.0 and err.retryable


def test_5xx_is_retried_then_raised(server: LoopbackServer) -> None:
    for _ in range(2):
        server.reply(Reply.json({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}, status=503, headers={"retry-after": "0"}))
    with pytest.raises(ServerError, match="overloaded"):
        list(provider(server, max_retries=1).stream_response(Context()))
    assert len(server.requests) == 2


def test_non_json_error_body_still_classified() -> None:
    err = classify_error(502, {"content-type": "text/html"}, "<html><title>Bad Gateway</title></html>", "m")
    assert isinstance(err, ServerError) and "Bad Gateway" in str(err)


def test_streamed_arguments_split_strings_and_scalars(server: LoopbackServer) -> None:
    def piece(*pieces: Dict[str, Any], more: bool = True) -> bytes:
        fc: Dict[str, Any] = {"partialArgs": list(pieces)}
        if more:
            fc["willContinue"] = True
        return data(chunk([{"functionCall": fc}], rid="P"))

    body = [
        data(chunk([{"functionCall": {"name": "book", "willContinue": True}, "thoughtSignature": "S"}], rid="P")),
        piece({"jsonPath": "$.city", "stringValue": "San ", "willContinue": True}),
        piece({"jsonPath": "$.city", "stringValue": "Francisco", "willContinue": True}),
        piece({"jsonPath": "$.city", "stringValue": ""}),
        piece({"jsonPath": "$['two words'][1].ok", "boolValue": True}),
        piece({"jsonPath": "$.note", "nullValue": None}, more=False),
        data(chunk([{"text": "Booked."}], "STOP", rid="P")),
    ]
    chunks = stream_body(server, provider(server), body)
    assert_shape(chunks)
    (call,) = calls(chunks)
    assert json.loads(call.arguments) == {"city": "San Francisco", "two words": [None, {"ok": True}], "note": None}
    assert joined(chunks, LlmResponse.Text) == "Booked."
    assert json.loads(only(chunks, LlmResponse.EncryptedReasoning)[0].content) == {"calls": {call.id: "S"}}  # type: ignore[attr-defined]
    # The call is complete before the text that follows it.
    names = kinds(chunks)
    assert names.index("ToolRequestComplete") < names.index("Text")


def test_signature_on_a_thought_part_is_replayed_on_a_thought_part(server: LoopbackServer) -> None:
    from llm_sync.providers.gemini import build_request

    body = [
        data(chunk([{"text": "Let me think.", "thought": True, "thoughtSignature": "TS"}])),
        data(chunk([{"text": "Done."}], "STOP")),
    ]
    p = provider(server, "gemini-2.5-pro")
    server.reply(Reply(status=200, headers={"content-type": "text/event-stream"}, body=body, chunked=True))
    with p.stream_response(Context()) as stream:
        message = stream.collect().to_message()
    parts = build_request(Context([message]), "gemini-2.5-pro")["contents"][0]["parts"]
    assert parts == [{"text": "Let me think.", "thought": True, "thoughtSignature": "TS"}, {"text": "Done."}]
