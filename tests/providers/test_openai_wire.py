"""Every real OpenAI Responses recording in ../shared/wire replayed through OpenAiProvider over loopback HTTP.

Expectations are computed from the recording itself (its final ``response`` object and
its ``*.done`` events), independently of the parser's delta handling, plus literal values
checked by reading the files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

import pytest

from llm_sync import ApiError, ContextOverflowError, LlmResponse, StopReason
from llm_sync.providers.openai import OpenAiProvider
from tests.support.replay import kinds, split_every, stream_body
from tests.support.server import LoopbackServer, Reply

FOLDER = "openai_responses"
SSE_FILES = [
    "aether_01_minimal.sse",
    "aether_02_reasoning.sse",
    "llm_gpt55_tool_use_stream.sse",
    "pyd_function_call_gpt4o.sse",
    "pyd_reasoning_summary_code_interpreter.sse",
    "pyd_reasoning_summary_o3mini.sse",
    "pyd_text_after_tool_gpt4o.sse",
    "pyd_web_search_cached.sse",
]
NDJSON_FILES = ["vercel_phase.ndjson", "vercel_reasoning_encrypted.ndjson"]
HTTP_ERROR_FILES = [
    # (folder, file, expected class)
    (FOLDER, "err_400_decimal_below_min.json", ApiError),
    (FOLDER, "err_400_model_not_found.json", ApiError),
    (FOLDER, "err_400_reasoning_item_without_following.json", ApiError),
    ("openai", "err_400_unsupported_value.json", ApiError),
    ("openai", "err_404_model_not_found.json", ApiError),
    ("openai", "issue_err_400_context_length_exceeded.json", ContextOverflowError),
]
STREAM_ERROR_FILES = ["issue_stream_error_context_length_exceeded.json"]


def provider(server: LoopbackServer, model: str = "gpt-5", **kw: Any) -> OpenAiProvider:
    return OpenAiProvider("sk-test-wire-000000", model=model, base_url=f"{server.url}/v1", **kw)


def sse_events(body: bytes) -> List[Dict[str, Any]]:
    """The JSON of every ``data:`` line (these recordings have one data line per event)."""
    return [
        json.loads(line[5:])
        for line in body.decode("utf-8").splitlines()
        if line.startswith("data:") and line[5:].strip() not in ("", "[DONE]")
    ]


def expected(events: List[Dict[str, Any]]) -> Dict[str, Any]:
    """What the stream must yield, read from the recording's own summaries."""
    created = next(e for e in events if e["type"] == "response.created")
    final = next(e for e in events if e["type"] in ("response.completed", "response.incomplete"))
    response = final["response"]
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    summaries = [e["text"] for e in events if e["type"] == "response.reasoning_summary_text.done"]
    calls = [
        (e["item"]["call_id"], e["item"]["name"], json.loads(e["item"]["arguments"]))
        for e in events
        if e["type"] == "response.output_item.done" and e["item"]["type"] == "function_call"
    ]
    encrypted = [
        (e["item"]["id"], e["item"]["encrypted_content"])
        for e in events
        if e["type"] == "response.output_item.done"
        and e["item"]["type"] == "reasoning"
        and e["item"].get("encrypted_content")
    ]
    u = response["usage"]
    usage = LlmResponse.Usage(
        input_tokens=u["input_tokens"],
        output_tokens=u["output_tokens"],
        cached_input_tokens=u["input_tokens_details"]["cached_tokens"],
        reasoning_tokens=u["output_tokens_details"]["reasoning_tokens"],
    )
    any_call = any(o["type"] == "function_call" for o in response["output"])
    return {
        "id": created["response"]["id"],
        "text": text,
        "reasoning": "\n\n".join(summaries),
        "calls": calls,
        "encrypted": encrypted,
        "usage": usage,
        "stop": StopReason.TOOL_CALLS if any_call else StopReason.END_TURN,
    }


def check(chunks: List[LlmResponse], want: Dict[str, Any]) -> None:
    assert chunks[0] == LlmResponse.Start(want["id"])
    assert chunks[-1] == LlmResponse.Done(want["stop"], "completed")
    assert isinstance(chunks[-2], LlmResponse.Usage)
    assert chunks[-2] == want["usage"]
    assert kinds(chunks).count("Usage") == 1
    text = "".join(c.chunk for c in chunks if isinstance(c, LlmResponse.Text))
    assert text == want["text"]
    reasoning = "".join(c.chunk for c in chunks if isinstance(c, LlmResponse.Reasoning))
    assert reasoning == want["reasoning"]
    done = [c.tool_call for c in chunks if isinstance(c, LlmResponse.ToolRequestComplete)]
    assert [(t.id, t.name, t.parsed_arguments()) for t in done] == want["calls"]
    for t in done:
        # The streamed argument pieces add up to the completed arguments.
        pieces = [
            c.chunk for c in chunks if isinstance(c, LlmResponse.ToolRequestArg) and c.id == t.id
        ]
        assert "".join(pieces) == t.arguments
    enc = [c for c in chunks if isinstance(c, LlmResponse.EncryptedReasoning)]
    if want["encrypted"]:
        assert len(enc) == 1
        assert enc[0].id == want["encrypted"][0][0]
        items = json.loads(enc[0].content)
        assert [(i["id"], i["encrypted_content"]) for i in items] == want["encrypted"]
        assert all(i["type"] == "reasoning" for i in items)
    else:
        assert enc == []


def test_every_recording_is_covered(wire: Path) -> None:
    names = {p.name for p in (wire / FOLDER).iterdir() if not p.name.endswith(".meta.json")}
    covered = set(SSE_FILES) | set(NDJSON_FILES) | set(STREAM_ERROR_FILES)
    covered |= {f for folder, f, _ in HTTP_ERROR_FILES if folder == FOLDER}
    assert names == covered


@pytest.mark.parametrize("name", SSE_FILES)
def test_sse_recording(server: LoopbackServer, wire: Path, name: str) -> None:
    body = (wire / FOLDER / name).read_bytes()
    want = expected(sse_events(body))
    # Small HTTP chunks: events split across reads must still come out whole.
    chunks = stream_body(server, provider(server), split_every(body, 997))
    check(chunks, want)
    assert server.requests[0].path == "/v1/responses"


def test_minimal_recording_literal_values(server: LoopbackServer, wire: Path) -> None:
    body = (wire / FOLDER / "aether_01_minimal.sse").read_bytes()
    chunks = stream_body(server, provider(server), body)
    assert chunks == [
        LlmResponse.Start("resp_0462ce8cec917eba0069d492bedbe48195a74b5558a4090008"),
        LlmResponse.Text("hi"),
        LlmResponse.Usage(11, 123, cached_input_tokens=0, reasoning_tokens=64),
        LlmResponse.Done(StopReason.END_TURN, "completed"),
    ]


def test_tool_call_recording_literal_values(server: LoopbackServer, wire: Path) -> None:
    body = (wire / FOLDER / "llm_gpt55_tool_use_stream.sse").read_bytes()
    result = _collect(server, body, "gpt-5.5")
    assert [(t.id, t.name, t.parsed_arguments()) for t in result.tool_calls] == [
        ("call_sVidsfFJ6zlzRpelrPkTPlpd", "multiply", {"a": 1231, "b": 2331})
    ]
    assert result.stop_reason is StopReason.TOOL_CALLS
    assert result.usage == LlmResponse.Usage(58, 23, cached_input_tokens=0, reasoning_tokens=0)


def test_reasoning_summary_recordings_literal_values(server: LoopbackServer, wire: Path) -> None:
    body = (wire / FOLDER / "pyd_reasoning_summary_o3mini.sse").read_bytes()
    result = _collect(server, body, "o3-mini")
    assert result.reasoning.startswith("**Providing street crossing instructions**\n\n")
    # Four summary parts, kept apart by blank lines.
    assert result.reasoning.count("\n\n**") == 3
    assert result.usage.reasoning_tokens == 1408
    body = (wire / FOLDER / "pyd_web_search_cached.sse").read_bytes()
    result = _collect(server, body, "gpt-5")
    assert result.usage.cached_input_tokens == 8320
    assert result.usage.input_tokens == 9463
    # Two reasoning items around the hosted web search travel as one opaque record.
    assert len(json.loads(result.encrypted_reasoning.content)) == 2


def _ctx() -> Any:
    from llm_sync import ChatMessage, Context

    return Context([ChatMessage.User("hi")])


def _collect(server: LoopbackServer, body: bytes, model: str) -> Any:
    server.reply(Reply(headers={"content-type": "text/event-stream"}, body=[body], chunked=True))
    return provider(server, model).stream_response(_ctx()).collect()


def _ndjson_responses(body: bytes) -> List[List[Dict[str, Any]]]:
    """The vercel fixtures hold one event per line, several responses back to back."""
    out: List[List[Dict[str, Any]]] = []
    for line in body.decode("utf-8").splitlines():
        if not line.strip():
            continue
        event = json.loads(line)
        if event["type"] == "response.created":
            out.append([])
        out[-1].append(event)
    return out


@pytest.mark.parametrize("name", NDJSON_FILES)
def test_ndjson_recording_as_sse(server: LoopbackServer, wire: Path, name: str) -> None:
    responses = _ndjson_responses((wire / FOLDER / name).read_bytes())
    assert responses
    for events in responses:
        body = b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)
        chunks = stream_body(server, provider(server, "gpt-5.1-codex-max"), body)
        check(chunks, expected(events))


def test_vercel_encrypted_multi_step_literal_values(server: LoopbackServer, wire: Path) -> None:
    responses = _ndjson_responses(
        (wire / FOLDER / "vercel_reasoning_encrypted.ndjson").read_bytes()
    )
    assert len(responses) == 4
    results = []
    for events in responses:
        body = b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events)
        results.append(_collect(server, body, "gpt-5.1-codex-max"))
    first = results[0]
    assert first.tool_calls[0].id == "call_AB6AaRZ1FYZB2RwS6A5vbdqn"
    assert first.tool_calls[0].parsed_arguments() == {"a": 12, "b": 7, "op": "add"}
    assert first.reasoning.startswith("**Calculating step-by-step using calculator**")
    assert first.encrypted_reasoning.id == "rs_01830d662ab3856501693c321405c88190be3ab04d5782d5f9"
    assert [r.stop_reason for r in results] == [StopReason.TOOL_CALLS] * 3 + [StopReason.END_TURN]
    assert results[3].text == "The final result is **570**."


@pytest.mark.parametrize(("folder", "name", "cls"), HTTP_ERROR_FILES)
def test_http_error_recording(
    server: LoopbackServer, wire: Path, folder: str, name: str, cls: type
) -> None:
    body = (wire / folder / name).read_bytes()
    meta = json.loads((wire / folder / name.replace(".json", ".meta.json")).read_text())
    status = int(meta["http_status"])
    server.reply(Reply.json(json.loads(body), status=status))
    with pytest.raises(cls) as info:
        list(provider(server, "gpt-5.2-proo", max_retries=2).stream_response(_ctx()))
    err = info.value
    assert type(err) is cls
    assert err.status == status
    assert json.loads(body)["error"]["message"] in str(err)
    assert len(server.requests) == 1  # 4xx: never re-sent
    if cls is ContextOverflowError:
        assert (err.requested_tokens, err.max_tokens) == (6988, 4097)
    if "model_not_found" in name:
        assert "gpt-5.2-proo" in str(err) and "model=" in str(err)


@pytest.mark.parametrize("name", STREAM_ERROR_FILES)
def test_in_stream_overflow_recording(server: LoopbackServer, wire: Path, name: str) -> None:
    error_event = json.loads((wire / FOLDER / name).read_text())
    created = {
        "type": "response.created",
        "sequence_number": 0,
        "response": {"id": "resp_x", "status": "in_progress"},
    }
    failed = {
        "type": "response.failed",
        "sequence_number": 3,
        "response": {"id": "resp_x", "status": "failed", "error": error_event["error"]},
    }
    body = b"".join(
        f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode()
        for e in (created, error_event, failed)
    )
    server.reply(Reply(headers={"content-type": "text/event-stream"}, body=[body], chunked=True))
    seen: List[LlmResponse] = []
    with pytest.raises(ContextOverflowError) as info:
        for c in provider(server, max_retries=2).stream_response(_ctx()):
            seen.append(c)
    assert seen == [LlmResponse.Start("resp_x")]
    assert "exceeds the context window" in str(info.value)
    assert info.value.retryable is False
    assert len(server.requests) == 1
