"""Bedrock over loopback HTTP: the real recordings, hand-built event streams, SigV4 and bearer auth, errors."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import os
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.parse import quote

import pytest

from llm_sync import (
    ApiError,
    ApiRequestError,
    ChatMessage,
    Context,
    ContextOverflowError,
    InvalidApiKeyError,
    JsonParsingError,
    LlmResponse,
    MissingApiKeyError,
    RateLimitedError,
    ReasoningEffort,
    RequestTimeoutError,
    RetryPolicy,
    ServerError,
    StopReason,
    StreamInterruptedError,
    ToolCallRequest,
    ToolCallResult,
    ToolDefinition,
)
from llm_sync._transport._eventstream import event_frame, exception_frame
from llm_sync.providers.bedrock import BedrockProvider
from tests.support.replay import kinds, only, split_every, stream_body
from tests.support.server import LoopbackServer, Reply

AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
NOVA = "us.amazon.nova-micro-v1:0"
CLAUDE = "us.anthropic.claude-sonnet-4-20250514-v1:0"
EVENTSTREAM = {"content-type": "application/vnd.amazon.eventstream"}
FIXED = datetime.datetime(2025, 1, 2, 3, 4, 5)


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake static credentials, no config files, no instance metadata: nothing leaves 127.0.0.1."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AKID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.chdir(tmp_path)  # no .env from the repository


def bedrock(server: LoopbackServer, **kw: Any) -> BedrockProvider:
    kw.setdefault("model", NOVA)
    return BedrockProvider(base_url=server.url, **kw)


def ask(text: str = "hi") -> Context:
    return Context([ChatMessage.User(text)])


def ev(name: str, **payload: Any) -> bytes:
    return event_frame(name, json.dumps(payload))


def text_turn(*texts: str, stop: str = "end_turn", usage: Optional[Dict[str, int]] = None) -> bytes:
    frames = [ev("messageStart", role="assistant")]
    frames += [ev("contentBlockDelta", contentBlockIndex=0, delta={"text": t}) for t in texts]
    frames.append(ev("contentBlockStop", contentBlockIndex=0))
    frames.append(ev("messageStop", stopReason=stop))
    frames.append(ev("metadata", usage=usage or {"inputTokens": 5, "outputTokens": 2, "totalTokens": 7}))
    return b"".join(frames)


def eventstream_reply(body: bytes, status: int = 200) -> Reply:
    return Reply(status=status, headers=EVENTSTREAM, body=[body], chunked=True)


def aws_error(status: int, kind: str, message: str, **headers: str) -> Reply:
    hdrs = {"content-type": "application/json", "x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"}
    hdrs.update(headers)
    return Reply(status=status, headers=hdrs, body=[json.dumps({"message": message}).encode()])


# ---------------------------------------------------------------------------
# Reading the recordings independently of the provider's parser: botocore's own decoder.


def botocore_events(body: bytes) -> List[Tuple[str, str, Dict[str, Any]]]:
    from botocore.eventstream import EventStreamBuffer

    buf = EventStreamBuffer()
    buf.add_data(body)
    out = []
    for message in buf:
        h = message.headers
        kind = h[":message-type"]
        name = h[":event-type"] if kind == "event" else h[":exception-type"]
        out.append((kind, name, json.loads(message.payload)))
    return out


def expected_from(events: List[Tuple[str, str, Dict[str, Any]]]) -> Dict[str, Any]:
    text, thought, calls, usage, stop = "", "", [], None, None
    names: Dict[int, Tuple[str, str]] = {}
    args: Dict[int, str] = {}
    signatures = []
    for _, name, p in events:
        if name == "contentBlockStart" and "toolUse" in p.get("start", {}):
            names[p["contentBlockIndex"]] = (p["start"]["toolUse"]["toolUseId"], p["start"]["toolUse"]["name"])
            args[p["contentBlockIndex"]] = ""
        elif name == "contentBlockDelta":
            d = p["delta"]
            text += d.get("text", "")
            if "toolUse" in d:
                args[p["contentBlockIndex"]] += d["toolUse"]["input"]
            thought += d.get("reasoningContent", {}).get("text", "")
            if "signature" in d.get("reasoningContent", {}):
                signatures.append(d["reasoningContent"]["signature"])
        elif name == "contentBlockStop" and p["contentBlockIndex"] in names:
            i = p["contentBlockIndex"]
            calls.append(ToolCallRequest(names[i][0], names[i][1], args[i]))
        elif name == "messageStop":
            stop = p["stopReason"]
        elif name == "metadata":
            usage = p["usage"]
    return {"text": text, "reasoning": thought, "calls": calls, "usage": usage, "stop": stop, "signatures": signatures}


BINS = ["pyd_converse_stream_nova_text", "pyd_converse_stream_nova_tool_use", "pyd_converse_stream_claude_reasoning"]


@pytest.mark.parametrize("name", BINS)
@pytest.mark.parametrize("piece", [None, 7])
def test_every_binary_recording_replays_exactly(
    server: LoopbackServer, wire: Path, name: str, piece: Optional[int]
) -> None:
    body = (wire / "bedrock" / f"{name}.bin").read_bytes()
    want = expected_from(botocore_events(body))
    sent = split_every(body, piece) if piece else body
    chunks = stream_body(server, bedrock(server), sent, framing="eventstream", context=ask())
    assert isinstance(chunks[0], LlmResponse.Start) and chunks[0].message_id.startswith("bedrock-")
    assert isinstance(chunks[-1], LlmResponse.Done)
    assert "".join(c.chunk for c in only(chunks, LlmResponse.Text)) == want["text"]
    assert "".join(c.chunk for c in only(chunks, LlmResponse.Reasoning)) == want["reasoning"]
    assert [c.tool_call for c in only(chunks, LlmResponse.ToolRequestComplete)] == want["calls"]
    usage = only(chunks, LlmResponse.Usage)
    assert usage == [LlmResponse.Usage(want["usage"]["inputTokens"], want["usage"]["outputTokens"])]
    assert kinds(chunks)[-2:] == ["Usage", "Done"]
    assert chunks[-1].raw_stop_reason == want["stop"]
    assert kinds(chunks).count("Start") == kinds(chunks).count("Done") == 1


def test_nova_text_recording_literal_values(server: LoopbackServer, wire: Path) -> None:
    body = (wire / "bedrock" / "pyd_converse_stream_nova_text.bin").read_bytes()
    got = bedrock_collect(server, body)
    assert got.text.startswith("The capital of France is Paris. Paris is not only the capital city but")
    assert got.text.endswith('often referred to as "The City of Light" or "The City of Love."')
    assert (got.usage.input_tokens, got.usage.output_tokens) == (13, 82)
    assert (got.stop_reason, got.raw_stop_reason) == (StopReason.END_TURN, "end_turn")
    assert got.reasoning == "" and got.tool_calls == ()
    assert server.requests[0].path == "/model/us.amazon.nova-micro-v1%3A0/converse-stream"


def test_nova_tool_use_recording_literal_values(server: LoopbackServer, wire: Path) -> None:
    body = (wire / "bedrock" / "pyd_converse_stream_nova_tool_use.bin").read_bytes()
    got = bedrock_collect(server, body)
    assert [(c.id, c.name, c.parsed_arguments()) for c in got.tool_calls] == [
        ("tooluse_lAG_zP8QRHmSYOwZzzaCqA", "get_temperature", {"city": "Paris"})
    ]
    assert got.text.startswith("<thinking> To find the temperature of the capital of France")
    assert (got.usage.input_tokens, got.usage.output_tokens) == (471, 91)
    assert (got.stop_reason, got.raw_stop_reason) == (StopReason.TOOL_CALLS, "tool_use")


def bedrock_collect(server: LoopbackServer, body: bytes, **kw: Any) -> Any:
    server.reply(eventstream_reply(body))
    return bedrock(server, **kw).stream_response(ask()).collect()


def test_claude_reasoning_recording_keeps_the_signature_and_replays_it(server: LoopbackServer, wire: Path) -> None:
    body = (wire / "bedrock" / "pyd_converse_stream_claude_reasoning.bin").read_bytes()
    signature = expected_from(botocore_events(body))["signatures"][0]
    assert signature.startswith("Eu0CCkgIBxABGAIqQJDccbDQkr81n7Qj")
    provider = bedrock(server, model=CLAUDE)
    server.reply(eventstream_reply(body))
    ctx = ask("Hello")
    ctx.set_reasoning_effort(ReasoningEffort.LOW)
    got = provider.stream_response(ctx).collect()
    assert got.reasoning.startswith('The user has greeted me with a simple "Hello".')
    assert got.text == "Hello! It's nice to meet you. How can I help you today?"
    assert (got.usage.input_tokens, got.usage.output_tokens) == (36, 73)
    first = server.requests[0].json()
    assert first["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 1024}}
    # Second turn: the thinking block goes back first, with its exact signature.
    ctx.add_message(got.to_message())
    ctx.add_message(ChatMessage.User("And again?"))
    server.reply(eventstream_reply(text_turn("ok")))
    provider.stream_response(ctx).collect()
    replay = server.requests[1].json()["messages"][1]
    assert replay["role"] == "assistant"
    assert replay["content"] == [
        {"reasoningContent": {"reasoningText": {"text": got.reasoning, "signature": signature}}},
        {"text": got.text},
    ]
    # Another model never receives this model's signed reasoning.
    server.reply(eventstream_reply(text_turn("ok")))
    provider.with_model("us.anthropic.claude-opus-4-20250514-v1:0").stream_response(ctx).collect()
    assert server.requests[2].json()["messages"][1]["content"] == [{"text": got.text}]


def decoded_recording(path: Path) -> bytes:
    """A vercel-decoded recording (one ``{eventType: payload}`` per line) re-encoded as an event stream."""
    frames = []
    for line in path.read_text().splitlines():
        if line.strip():
            ((name, payload),) = json.loads(line).items()
            frames.append(event_frame(name, json.dumps(payload)))
    return b"".join(frames)


def test_decoded_reasoning_recording(server: LoopbackServer, wire: Path) -> None:
    got = bedrock_collect(server, decoded_recording(wire / "bedrock" / "vercel_decoded_reasoning.ndjson"), model=CLAUDE)
    assert got.reasoning == (
        "Let me count the r's in \"strawberry\":\n\ns-t-r-a-w-b-e-r-r-y\n\nr appears at positions 3, 8, and 9.\n\n"
        "So there are 3 r's."
    )
    assert got.text == "There are **3** r's in \"strawberry\":\n\n1. st**r**awbe**r****r**y"
    assert (got.usage.input_tokens, got.usage.output_tokens, got.stop_reason) == (51, 94, StopReason.END_TURN)
    saved = json.loads(got.to_message().reasoning.encrypted_content.content)
    assert saved["blocks"][0]["signature"].startswith("Ep0CCkgICxABGAIqQOWPB6")
    assert saved["blocks"][0]["text"] == got.reasoning


def test_decoded_tool_without_arguments_and_usage_before_stop(server: LoopbackServer, wire: Path) -> None:
    body = decoded_recording(wire / "bedrock" / "vercel_decoded_tool_no_args.ndjson")
    chunks = stream_body(server, bedrock(server), body, framing="eventstream", context=ask())
    assert kinds(chunks) == [
        "Start", "Text", "ToolRequestStart", "ToolRequestComplete", "Usage", "Done",
    ]
    assert chunks[1] == LlmResponse.Text("I'll update the issue list for you.")
    assert chunks[3].tool_call == ToolCallRequest("tool-use-id", "updateIssueList", "")
    assert chunks[3].tool_call.parsed_arguments() == {}
    assert chunks[4] == LlmResponse.Usage(100, 25)
    assert chunks[5] == LlmResponse.Done(StopReason.TOOL_CALLS, "tool_use")


# ---------------------------------------------------------------------------
# Recorded error bodies.


def recorded_error(wire: Path, name: str, status: int, kind: Optional[str]) -> Reply:
    headers = {"content-type": "application/json"}
    if kind:
        headers["x-amzn-ErrorType"] = f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"
    return Reply(status=status, headers=headers, body=[(wire / "bedrock" / name).read_bytes()])


def test_recorded_prompt_too_long_is_context_overflow_with_numbers(server: LoopbackServer, wire: Path) -> None:
    server.reply(recorded_error(wire, "issue_err_validation_prompt_too_long.json", 400, "ValidationException"))
    with pytest.raises(ContextOverflowError) as info:
        list(bedrock(server, model=CLAUDE).stream_response(ask()))
    err = info.value
    assert (err.requested_tokens, err.max_tokens, err.status, err.retryable) == (903884, 200000, 400, False)
    assert "prompt is too long" in str(err)
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "name", ["err_400_converse_stream_invalid_model.json", "err_400_invalid_model_id.json"]
)
def test_recorded_invalid_model_is_a_plain_api_error(server: LoopbackServer, wire: Path, name: str) -> None:
    server.reply(recorded_error(wire, name, 400, None))
    with pytest.raises(ApiError) as info:
        list(bedrock(server, model="us.does-not-exist-model-v1:0").stream_response(ask()))
    err = info.value
    assert type(err) is ApiError and err.status == 400 and not err.retryable
    assert "The provided model identifier is invalid." in str(err) and "check model=" in str(err)
    assert len(server.requests) == 1


def test_recorded_model_errors_passthrough(server: LoopbackServer, wire: Path) -> None:
    server.reply(recorded_error(wire, "err_400_model_returned_errors.json", 400, "ValidationException"))
    with pytest.raises(ApiError) as info:
        list(bedrock(server).stream_response(ask()))
    assert type(info.value) is ApiError
    assert "extraneous key [toolResult] is not permitted" in str(info.value)
    assert "ValidationException" in str(info.value)


def test_recorded_403_access_denied_is_invalid_key_not_retried(server: LoopbackServer, wire: Path) -> None:
    server.reply(recorded_error(wire, "lcgo_err_403_invalid_token.json", 403, "AccessDeniedException"))
    with pytest.raises(InvalidApiKeyError) as info:
        list(bedrock(server, max_retries=2).stream_response(ask()))
    assert "You don't have access to the model" in str(info.value)
    assert "bedrock:InvokeModelWithResponseStream" in str(info.value)
    assert len(server.requests) == 1


# ---------------------------------------------------------------------------
# Hand-built event streams.


def test_parallel_tool_calls_streamed_in_pieces(server: LoopbackServer) -> None:
    body = b"".join(
        [
            ev("messageStart", role="assistant"),
            ev("contentBlockStart", contentBlockIndex=0, start={"toolUse": {"toolUseId": "t1", "name": "a"}}),
            ev("contentBlockStart", contentBlockIndex=1, start={"toolUse": {"toolUseId": "t2", "name": "b"}}),
            ev("contentBlockDelta", contentBlockIndex=0, delta={"toolUse": {"input": '{"x"'}}),
            ev("contentBlockDelta", contentBlockIndex=1, delta={"toolUse": {"input": '{"y":'}}),
            ev("contentBlockDelta", contentBlockIndex=0, delta={"toolUse": {"input": ":1}"}}),
            ev("contentBlockDelta", contentBlockIndex=1, delta={"toolUse": {"input": "2}"}}),
            ev("contentBlockDelta", contentBlockIndex=7, delta={"toolUse": {"input": "lost"}}),
            ev("contentBlockStop", contentBlockIndex=1),
            ev("contentBlockStop", contentBlockIndex=0),
            ev("messageStop", stopReason="tool_use"),
            ev("metadata", usage={"inputTokens": 9, "outputTokens": 4, "totalTokens": 13}),
        ]
    )
    chunks = stream_body(server, bedrock(server), body, framing="eventstream", context=ask())
    assert only(chunks, LlmResponse.ToolRequestArg) == [
        LlmResponse.ToolRequestArg("t1", '{"x"'),
        LlmResponse.ToolRequestArg("t2", '{"y":'),
        LlmResponse.ToolRequestArg("t1", ":1}"),
        LlmResponse.ToolRequestArg("t2", "2}"),
    ]
    assert [c.tool_call for c in only(chunks, LlmResponse.ToolRequestComplete)] == [
        ToolCallRequest("t2", "b", '{"y":2}'),
        ToolCallRequest("t1", "a", '{"x":1}'),
    ]


def test_cache_reads_and_writes_count_in_input_tokens(server: LoopbackServer) -> None:
    usage = {"inputTokens": 10, "outputTokens": 3, "cacheReadInputTokens": 1000, "cacheWriteInputTokens": 200, "totalTokens": 1213}
    chunks = stream_body(server, bedrock(server), text_turn("x", usage=usage), framing="eventstream", context=ask())
    assert only(chunks, LlmResponse.Usage) == [
        LlmResponse.Usage(1210, 3, cached_input_tokens=1000, cache_creation_tokens=200)
    ]


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("end_turn", StopReason.END_TURN),
        ("stop_sequence", StopReason.END_TURN),
        ("tool_use", StopReason.TOOL_CALLS),
        ("max_tokens", StopReason.LENGTH),
        ("model_context_window_exceeded", StopReason.LENGTH),
        ("guardrail_intervened", StopReason.CONTENT_FILTER),
        ("content_filtered", StopReason.CONTENT_FILTER),
        ("something_new", StopReason.UNKNOWN),
    ],
)
def test_stop_reasons(server: LoopbackServer, raw: str, reason: StopReason) -> None:
    chunks = stream_body(server, bedrock(server), text_turn("x", stop=raw), framing="eventstream", context=ask())
    assert chunks[-1] == LlmResponse.Done(reason, raw)


def test_redacted_reasoning_empty_deltas_and_unknown_events(server: LoopbackServer) -> None:
    body = b"".join(
        [
            ev("messageStart", role="assistant"),
            ev("contentBlockDelta", contentBlockIndex=0, delta={"reasoningContent": {"redactedContent": "AAE="}}),
            ev("contentBlockDelta", contentBlockIndex=0, delta={"reasoningContent": {"redactedContent": "AgME"}}),
            ev("contentBlockStop", contentBlockIndex=0),
            ev("contentBlockDelta", contentBlockIndex=1, delta={}),
            ev("contentBlockDelta", contentBlockIndex=1, delta={"text": ""}),
            ev("somethingNew", whatever=1),
            ev("contentBlockDelta", contentBlockIndex=1, delta={"text": "hi"}),
            ev("messageStop", stopReason="end_turn"),
            ev("metadata", usage={"inputTokens": 1, "outputTokens": 1}),
        ]
    )
    chunks = stream_body(server, bedrock(server, model=CLAUDE), body, framing="eventstream", context=ask())
    assert kinds(chunks) == ["Start", "Text", "EncryptedReasoning", "Usage", "Done"]
    assert json.loads(chunks[2].content) == {"blocks": [{"redactedContent": "AAECAwQ="}]}


def test_a_stream_cut_before_message_stop_is_interrupted(server: LoopbackServer) -> None:
    body = b"".join([ev("messageStart", role="assistant"), ev("contentBlockDelta", contentBlockIndex=0, delta={"text": "par"})])
    with pytest.raises(StreamInterruptedError):
        stream_body(server, bedrock(server), body, framing="eventstream", context=ask())


def test_done_without_metadata_when_the_stream_ends_after_message_stop(server: LoopbackServer) -> None:
    body = b"".join(
        [
            ev("contentBlockStart", contentBlockIndex=0, start={"toolUse": {"toolUseId": "t", "name": "f"}}),
            ev("contentBlockDelta", contentBlockIndex=0, delta={"toolUse": {"input": "{}"}}),
            ev("messageStop", stopReason="tool_use"),
        ]
    )
    chunks = stream_body(server, bedrock(server), body, framing="eventstream", context=ask())
    # The unfinished block is completed at the end rather than lost.
    assert kinds(chunks) == ["Start", "ToolRequestStart", "ToolRequestArg", "ToolRequestComplete", "Done"]


def test_invalid_json_in_an_event_names_it(server: LoopbackServer) -> None:
    body = ev("messageStart", role="assistant") + event_frame("contentBlockDelta", b"{not json")
    with pytest.raises(JsonParsingError, match="contentBlockDelta"):
        stream_body(server, bedrock(server), body, framing="eventstream", context=ask())


# ---------------------------------------------------------------------------
# Exception frames, checked against botocore's own decoder.

EXCEPTIONS = [
    ("throttlingException", "Too many requests, please wait before trying again.", RateLimitedError, True),
    ("serviceUnavailableException", "Bedrock is unable to process your request.", ServerError, True),
    ("internalServerException", "The server encountered an internal error.", ServerError, True),
    ("modelStreamErrorException", "The model stream failed.", ServerError, True),
    ("modelTimeoutException", "The model took too long.", RequestTimeoutError, True),
    ("validationException", "Input is too long for requested model.", ContextOverflowError, False),
    ("validationException", "Malformed input request.", ApiError, False),
]


@pytest.mark.parametrize("name, message, cls, retryable", EXCEPTIONS)
def test_exception_frames_before_content(
    server: LoopbackServer, name: str, message: str, cls: type, retryable: bool
) -> None:
    frame = exception_frame(name, json.dumps({"message": message}))
    assert botocore_events(frame) == [("exception", name, {"message": message})]
    server.reply(eventstream_reply(frame))
    if retryable:
        server.reply(eventstream_reply(text_turn("recovered")))
    # A short backoff keeps the test fast; the exception frame carries no retry-after.
    provider = bedrock(server)._replace(_retry=RetryPolicy(max_retries=1, backoff_base=0.01))
    if retryable:
        got = provider.stream_response(ask()).collect()
        assert got.text == "recovered"
        assert len(server.requests) == 2
        # A retry is a new signature over a fresh timestamp, not a replayed header.
        assert all(r.headers["authorization"].startswith("AWS4-HMAC-SHA256") for r in server.requests)
    else:
        with pytest.raises(cls) as info:
            list(provider.stream_response(ask()))
        assert type(info.value) is cls and not info.value.retryable
        assert message in str(info.value)
        assert len(server.requests) == 1


def test_retried_attempts_are_signed_again(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import botocore.auth

    times = iter([FIXED, FIXED + datetime.timedelta(seconds=3)])
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: next(times))
    server.reply(aws_error(429, "ThrottlingException", "Rate exceeded", **{"retry-after": "0"}))
    server.reply(eventstream_reply(text_turn("ok")))
    assert bedrock(server).stream_response(ask()).collect().text == "ok"
    first, second = server.requests
    assert (first.headers["x-amz-date"], second.headers["x-amz-date"]) == ("20250102T030405Z", "20250102T030408Z")
    assert first.headers["authorization"] != second.headers["authorization"]


@pytest.mark.parametrize("name, message, cls, retryable", EXCEPTIONS)
def test_exception_frames_after_content_are_raised_and_not_retried(
    server: LoopbackServer, name: str, message: str, cls: type, retryable: bool
) -> None:
    body = b"".join(
        [
            ev("messageStart", role="assistant"),
            ev("contentBlockDelta", contentBlockIndex=0, delta={"text": "partial"}),
            exception_frame(name, json.dumps({"message": message})),
        ]
    )
    server.reply(eventstream_reply(body))
    got: List[LlmResponse] = []
    with pytest.raises(cls) as info:
        for chunk in bedrock(server, max_retries=2).stream_response(ask()):
            got.append(chunk)
    assert type(info.value) is cls and info.value.retryable is retryable
    assert got[1:] == [LlmResponse.Text("partial")]
    assert len(server.requests) == 1


def test_prompt_too_long_exception_frame_has_the_numbers(server: LoopbackServer) -> None:
    frame = exception_frame(
        "validationException",
        json.dumps({"message": "The model returned the following errors: prompt is too long: 210000 tokens > 200000 maximum"}),
    )
    server.reply(eventstream_reply(frame))
    with pytest.raises(ContextOverflowError) as info:
        list(bedrock(server, model=CLAUDE).stream_response(ask()))
    assert (info.value.requested_tokens, info.value.max_tokens) == (210000, 200000)


# ---------------------------------------------------------------------------
# HTTP errors and retries.


def test_http_400_overflow_with_numbers(server: LoopbackServer) -> None:
    server.reply(aws_error(400, "ValidationException", "prompt is too long: 300000 tokens > 200000 maximum"))
    with pytest.raises(ContextOverflowError) as info:
        list(bedrock(server).stream_response(ask()))
    assert (info.value.requested_tokens, info.value.max_tokens) == (300000, 200000)
    assert len(server.requests) == 1


def test_http_401_and_403_are_not_retried(server: LoopbackServer) -> None:
    server.reply(aws_error(403, "UnrecognizedClientException", "The security token included in the request is invalid."))
    with pytest.raises(InvalidApiKeyError):
        list(bedrock(server, max_retries=3).stream_response(ask()))
    server.reply(Reply(status=401, headers={"content-type": "application/json"}, body=[b'{"message":"nope"}']))
    with pytest.raises(InvalidApiKeyError):
        list(bedrock(server, max_retries=3).stream_response(ask()))
    assert len(server.requests) == 2


def test_http_429_with_retry_after_is_retried(server: LoopbackServer) -> None:
    server.reply(aws_error(429, "ThrottlingException", "Too many tokens", **{"retry-after": "0"}))
    server.reply(eventstream_reply(text_turn("after the wait")))
    got = bedrock(server, max_retries=1).stream_response(ask()).collect()
    assert got.text == "after the wait" and len(server.requests) == 2


def test_http_429_gives_up_after_max_retries(server: LoopbackServer) -> None:
    for _ in range(2):
        server.reply(aws_error(429, "ThrottlingException", "Too many tokens", **{"retry-after": "0"}))
    with pytest.raises(RateLimitedError) as info:
        list(bedrock(server, max_retries=1).stream_response(ask()))
    assert info.value.retry_after == 0 and len(server.requests) == 2


@pytest.mark.parametrize("status, kind", [(500, "InternalServerException"), (503, "ServiceUnavailableException")])
def test_http_5xx_is_retried(server: LoopbackServer, status: int, kind: str) -> None:
    server.reply(aws_error(status, kind, "try again", **{"retry-after": "0"}))
    server.reply(eventstream_reply(text_turn("fine")))
    assert bedrock(server, max_retries=1).stream_response(ask()).collect().text == "fine"
    assert len(server.requests) == 2


# ---------------------------------------------------------------------------
# SigV4 and bearer authentication.


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def verify_sigv4(req: Any, secret: str, url: str) -> Dict[str, str]:
    """Recompute the SigV4 signature from what the server received (independently of botocore)."""
    auth = req.headers["authorization"]
    algo, _, rest = auth.partition(" ")
    assert algo == "AWS4-HMAC-SHA256"
    parts = dict(p.strip().split("=", 1) for p in rest.split(","))
    key_id, date, region, service, term = parts["Credential"].split("/")
    signed = parts["SignedHeaders"].split(";")
    assert "host" in signed and "x-amz-date" in signed
    # Non-S3 services sign the path URI-encoded once more (so "%3A" becomes "%253A").
    path = quote(req.path_only, safe="/~")
    canonical_headers = "".join(f"{h}:{' '.join(req.headers[h].split())}\n" for h in signed)
    canonical = "\n".join(
        [req.method, path, "", canonical_headers, ";".join(signed), hashlib.sha256(req.body).hexdigest()]
    )
    stamp = req.headers["x-amz-date"]
    scope = f"{date}/{region}/{service}/{term}"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    k = _hmac(f"AWS4{secret}".encode(), date)
    for piece in (region, service, term):
        k = _hmac(k, piece)
    assert hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest() == parts["Signature"]
    return {"key_id": key_id, "date": date, "region": region, "service": service, "signed": ";".join(signed)}


def test_sigv4_headers_for_a_fixed_clock(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: FIXED)
    server.reply(eventstream_reply(text_turn("signed")))
    assert bedrock(server).stream_response(ask()).collect().text == "signed"
    req = server.requests[0]
    assert req.headers["authorization"].startswith(
        f"AWS4-HMAC-SHA256 Credential={AKID}/20250102/us-east-1/bedrock/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date, Signature="
    )
    assert req.headers["x-amz-date"] == "20250102T030405Z"
    assert "x-amz-security-token" not in req.headers
    info = verify_sigv4(req, SECRET, server.url)
    assert (info["key_id"], info["region"], info["service"]) == (AKID, "us-east-1", "bedrock")
    # And botocore's signer, given the same request at the same instant, agrees.
    theirs = AWSRequest(
        method="POST", url=server.url + req.path, data=req.body, headers={"content-type": "application/json"}
    )
    botocore.auth.SigV4Auth(Credentials(AKID, SECRET), "bedrock", "us-east-1").add_auth(theirs)
    assert theirs.headers["Authorization"] == req.headers["authorization"]


def test_sigv4_with_a_session_token_and_an_arn_model_id(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SESSION_TOKEN", "FwoGZXIvYXdzEXAMPLETOKEN")
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-7-sonnet-20250219-v1:0"
    server.reply(eventstream_reply(text_turn("ok")))
    bedrock(server, model=arn).stream_response(ask()).collect()
    req = server.requests[0]
    assert req.path == "/model/" + quote(arn, safe="") + "/converse-stream"
    assert "%2F" in req.path and "%3A" in req.path
    assert req.headers["x-amz-security-token"] == "FwoGZXIvYXdzEXAMPLETOKEN"
    assert verify_sigv4(req, SECRET, server.url)["signed"] == "content-type;host;x-amz-date;x-amz-security-token"


def test_static_credentials_win_over_the_environment(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "ABSKenvironmenttoken1234")
    server.reply(eventstream_reply(text_turn("ok")))
    provider = bedrock(server, credentials=("AKIDSTATIC", "static-secret-key"), region="eu-west-1")
    provider.stream_response(ask()).collect()
    req = server.requests[0]
    info = verify_sigv4(req, "static-secret-key", server.url)
    assert (info["key_id"], info["region"]) == ("AKIDSTATIC", "eu-west-1")
    assert "static-secret-key" not in repr(provider)


def test_bearer_token_from_the_environment(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "ABSKbedrockapikey0123456789")
    server.reply(eventstream_reply(text_turn("ok")))
    provider = bedrock(server)
    assert provider.uses_api_key
    provider.stream_response(ask()).collect()
    req = server.requests[0]
    assert req.headers["authorization"] == "Bearer ABSKbedrockapikey0123456789"
    assert "x-amz-date" not in req.headers
    assert "ABSKbedrockapikey0123456789" not in repr(provider)


def test_bearer_key_never_appears_in_errors(server: LoopbackServer) -> None:
    key = "ABSKsecretbedrockkey98765"
    server.reply(aws_error(403, "AccessDeniedException", f"bad key {key}"))
    with pytest.raises(InvalidApiKeyError) as info:
        list(bedrock(server, api_key=key).stream_response(ask()))
    assert key not in str(info.value) and key not in (info.value.body or "")
    assert server.requests[0].headers["authorization"] == f"Bearer {key}"


@pytest.fixture
def no_botocore(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make ``import botocore`` fail, as in an install without the extra."""
    for name in list(sys.modules):
        if name == "botocore" or name.startswith("botocore."):
            monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "botocore", None)
    yield


def test_bearer_token_works_without_botocore(server: LoopbackServer, no_botocore: None) -> None:
    with pytest.raises(ImportError):
        import botocore  # noqa: F401
    server.reply(eventstream_reply(text_turn("no extra needed")))
    got = bedrock(server, api_key="ABSKbedrockapikey0123456789").stream_response(ask()).collect()
    assert got.text == "no extra needed"
    assert server.requests[0].headers["authorization"] == "Bearer ABSKbedrockapikey0123456789"


def test_without_botocore_or_token_the_error_names_the_extra(server: LoopbackServer, no_botocore: None) -> None:
    with pytest.raises(ApiRequestError, match=r"pip install 'llm-sync\[bedrock\]'"):
        bedrock(server)


def test_missing_credentials_is_a_clear_error_and_nothing_is_sent(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(MissingApiKeyError) as info:
        list(bedrock(server).stream_response(ask()))
    assert info.value.variable == "AWS_ACCESS_KEY_ID"
    assert "AWS_BEARER_TOKEN_BEDROCK" in str(info.value)
    assert server.requests == []


def test_the_endpoint_variable_is_honoured(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", server.url)
    server.reply(eventstream_reply(text_turn("via env")))
    provider = BedrockProvider.from_env(model=NOVA)
    assert provider.base_url == server.url
    assert provider.stream_response(ask()).collect().text == "via env"
    assert server.requests[0].path == "/model/us.amazon.nova-micro-v1%3A0/converse-stream"


def test_two_turn_tool_round_trip(server: LoopbackServer) -> None:
    weather = ToolDefinition("get_weather", "Weather in a city", {"type": "object", "properties": {"city": {"type": "string"}}})
    first = b"".join(
        [
            ev("messageStart", role="assistant"),
            ev("contentBlockStart", contentBlockIndex=0, start={"toolUse": {"toolUseId": "tu_1", "name": "get_weather"}}),
            ev("contentBlockDelta", contentBlockIndex=0, delta={"toolUse": {"input": '{"city":"Paris"}'}}),
            ev("contentBlockStop", contentBlockIndex=0),
            ev("messageStop", stopReason="tool_use"),
            ev("metadata", usage={"inputTokens": 20, "outputTokens": 10}),
        ]
    )
    server.reply(eventstream_reply(first), eventstream_reply(text_turn("Sunny.")))
    provider = bedrock(server)
    ctx = Context([ChatMessage.System("Be brief."), ChatMessage.User("Weather in Paris?")], [weather])
    got = provider.stream_response(ctx).collect()
    (call,) = got.tool_calls
    ctx.push_assistant_turn(got.text, None, [ToolCallResult.from_request(call, "18C and sunny")])
    assert provider.stream_response(ctx).collect().text == "Sunny."
    second = server.requests[1].json()
    assert second["system"] == [{"text": "Be brief."}]
    assert second["toolConfig"]["tools"][0]["toolSpec"]["name"] == "get_weather"
    assert second["messages"] == [
        {"role": "user", "content": [{"text": "Weather in Paris?"}]},
        {"role": "assistant", "content": [{"toolUse": {"toolUseId": "tu_1", "name": "get_weather", "input": {"city": "Paris"}}}]},
        {
            "role": "user",
            "content": [{"toolResult": {"toolUseId": "tu_1", "content": [{"text": "18C and sunny"}], "status": "success"}}],
        },
    ]
