"""Bedrock request building, configuration and frame parsing, without a network."""

from __future__ import annotations

import base64
import json
import os
import pickle
from pathlib import Path
from typing import Any, Dict, List

import pytest

from llm_sync import (
    ApiError,
    ApiRequestError,
    AssistantReasoning,
    ChatMessage,
    ContentBlock,
    Context,
    ContextOverflowError,
    EncryptedReasoningContent,
    InvalidApiKeyError,
    JsonParsingError,
    LlmResponse,
    MissingApiKeyError,
    RateLimitedError,
    ReasoningEffort,
    ServerError,
    StopReason,
    ToolCallError,
    ToolCallRequest,
    ToolCallResult,
    ToolDefinition,
    UnsupportedContentError,
)
from llm_sync._transport._eventstream import event_frame, exception_frame, iter_eventstream
from llm_sync._transport._frame import Frame
from llm_sync.providers.bedrock import (
    AwsCredentials,
    BedrockProvider,
    build_request,
    classify_error,
    parse_events,
)
from llm_sync.providers.bedrock import error_from_event as stream_exception

CLAUDE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA = "us.amazon.nova-lite-v1:0"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-secret-access-key")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.chdir(tmp_path)


def body(*messages: ChatMessage, tools: Any = (), model: str = NOVA, **kw: Any) -> Dict[str, Any]:
    return build_request(messages, tools, model=model, **kw)


# ---------------------------------------------------------------------------
# Request mapping


def test_every_system_message_is_a_system_block() -> None:
    got = body(ChatMessage.System("one"), ChatMessage.User("hi"), ChatMessage.System("two"))
    assert got["system"] == [{"text": "one"}, {"text": "two"}]
    assert got["messages"] == [{"role": "user", "content": [{"text": "hi"}]}]
    assert got["inferenceConfig"] == {"maxTokens": 16384}
    assert "toolConfig" not in got and "additionalModelRequestFields" not in got


def test_no_system_key_without_system_messages() -> None:
    assert "system" not in body(ChatMessage.User("hi"))


def test_images_go_as_base64_bytes_with_the_format_of_their_mime_type() -> None:
    blocks = [
        ContentBlock.Text("look"),
        ContentBlock.Image(PNG, "image/jpeg"),
        ContentBlock.Image(PNG, "image/jpg"),
        ContentBlock.Image(PNG, "image/gif"),
        ContentBlock.Image(PNG, "image/webp"),
        ContentBlock.Image(PNG, "image/heic"),
    ]
    content = body(ChatMessage.User(blocks))["messages"][0]["content"]
    assert content[0] == {"text": "look"}
    assert [b["image"]["format"] for b in content[1:]] == ["jpeg", "jpeg", "gif", "webp", "png"]
    assert content[1]["image"]["source"] == {"bytes": PNG}


def test_invalid_base64_image_is_refused_before_sending() -> None:
    with pytest.raises(ApiRequestError, match="Invalid base64 image data"):
        body(ChatMessage.User([ContentBlock.Image("not base64!!", "image/png")]))


def test_audio_is_unsupported() -> None:
    with pytest.raises(UnsupportedContentError, match="audio"):
        body(ChatMessage.User([ContentBlock.Audio("AAAA", "audio/wav")]))


def test_assistant_with_tool_calls_and_coalesced_results() -> None:
    calls = [ToolCallRequest("t1", "read", '{"path":"a"}'), ToolCallRequest("t2", "list", ""), ToolCallRequest("t3", "bad", "{oops")]
    got = body(
        ChatMessage.User("go"),
        ChatMessage.Assistant("Working on it.", tool_calls=calls),
        ChatMessage.ToolCallResult(ToolCallResult("t1", "read", '{"path":"a"}', "file a")),
        ChatMessage.ToolCallResult(ToolCallError("t2", "list", None, "permission denied")),
        ChatMessage.ToolCallResult(ToolCallResult("t3", "bad", "{oops", "")),
        ChatMessage.User("and?"),
    )
    assert got["messages"] == [
        {"role": "user", "content": [{"text": "go"}]},
        {
            "role": "assistant",
            "content": [
                {"text": "Working on it."},
                {"toolUse": {"toolUseId": "t1", "name": "read", "input": {"path": "a"}}},
                {"toolUse": {"toolUseId": "t2", "name": "list", "input": {}}},
                {"toolUse": {"toolUseId": "t3", "name": "bad", "input": {}}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"toolResult": {"toolUseId": "t1", "content": [{"text": "file a"}], "status": "success"}},
                {"toolResult": {"toolUseId": "t2", "content": [{"text": "permission denied"}], "status": "error"}},
                {"toolResult": {"toolUseId": "t3", "content": [{"text": "(empty)"}], "status": "success"}},
                {"text": "and?"},
            ],
        },
    ]


def test_summary_and_error_messages_are_user_text_and_roles_alternate() -> None:
    got = body(
        ChatMessage.Summary("We talked about cats.", messages_compacted=4),
        ChatMessage.User("continue"),
        ChatMessage.Assistant(""),  # an empty turn has nothing Bedrock would accept
        ChatMessage.Error("the tool crashed"),
    )
    assert got["messages"] == [
        {
            "role": "user",
            "content": [
                {"text": "[Previous conversation handoff]\n\nWe talked about cats."},
                {"text": "continue"},
                {"text": "Error: the tool crashed"},
            ],
        }
    ]


def test_tools_become_tool_specs() -> None:
    tool = ToolDefinition("search", "Search the web", '{"type":"object","properties":{"q":{"type":"string"}},"required":["q"]}')
    bare = ToolDefinition("noop", "", {"type": "object"})
    got = body(ChatMessage.User("x"), tools=[tool, bare])
    assert got["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "search",
                    "description": "Search the web",
                    "inputSchema": {"json": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}},
                }
            },
            {"toolSpec": {"name": "noop", "inputSchema": {"json": {"type": "object"}}}},
        ]
    }


def test_temperature_and_max_tokens() -> None:
    got = body(ChatMessage.User("x"), max_tokens=512, temperature=0.2)
    assert got["inferenceConfig"] == {"maxTokens": 512, "temperature": 0.2}


@pytest.mark.parametrize(
    "effort, budget", [(ReasoningEffort.LOW, 1024), (ReasoningEffort.MEDIUM, 4096), (ReasoningEffort.HIGH, 10240), (ReasoningEffort.XHIGH, 10240)]
)
def test_reasoning_effort_is_a_thinking_budget_on_claude(effort: ReasoningEffort, budget: int) -> None:
    got = body(ChatMessage.User("x"), model=CLAUDE, temperature=0.5, reasoning_effort=effort)
    assert got["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": budget}}
    # Claude refuses a temperature with thinking on.
    assert got["inferenceConfig"] == {"maxTokens": 16384}


def test_thinking_budget_raises_a_small_max_tokens() -> None:
    got = body(ChatMessage.User("x"), model=CLAUDE, max_tokens=2000, reasoning_effort=ReasoningEffort.MEDIUM)
    assert got["inferenceConfig"]["maxTokens"] == 4096 + 1024


def test_reasoning_effort_is_ignored_for_other_models() -> None:
    got = body(ChatMessage.User("x"), model=NOVA, temperature=0.3, reasoning_effort=ReasoningEffort.HIGH)
    assert "additionalModelRequestFields" not in got
    assert got["inferenceConfig"] == {"maxTokens": 16384, "temperature": 0.3}


def saved_reasoning(model: str) -> AssistantReasoning:
    content = json.dumps({"blocks": [{"text": "think", "signature": "SIG=="}, {"redactedContent": "AAEC"}]})
    return AssistantReasoning("think", EncryptedReasoningContent("m1", f"bedrock:{model}", content))


def test_reasoning_is_replayed_first_only_to_the_model_that_wrote_it() -> None:
    turn = ChatMessage.Assistant("Answer.", saved_reasoning(CLAUDE), tool_calls=[ToolCallRequest("t", "f", "{}")])
    mine = body(ChatMessage.User("q"), turn, model=CLAUDE)["messages"][1]["content"]
    assert mine == [
        {"reasoningContent": {"reasoningText": {"text": "think", "signature": "SIG=="}}},
        {"reasoningContent": {"redactedContent": "AAEC"}},
        {"text": "Answer."},
        {"toolUse": {"toolUseId": "t", "name": "f", "input": {}}},
    ]
    other = body(ChatMessage.User("q"), turn, model="us.anthropic.claude-opus-4-1-20250805-v1:0")
    assert other["messages"][1]["content"] == [{"text": "Answer."}, {"toolUse": {"toolUseId": "t", "name": "f", "input": {}}}]


def test_foreign_encrypted_reasoning_is_not_sent() -> None:
    alien = AssistantReasoning("hm", EncryptedReasoningContent("r", "anthropic:claude-sonnet-4-5", "opaque"))
    got = body(ChatMessage.User("q"), ChatMessage.Assistant("A", alien), model=CLAUDE)
    assert got["messages"][1] == {"role": "assistant", "content": [{"text": "A"}]}


def test_prompt_cache_key_changes_nothing() -> None:
    provider = BedrockProvider(model=NOVA)
    ctx = Context([ChatMessage.User("x")])
    plain, _ = provider.build_call(ctx)
    ctx.set_prompt_cache_key("session-1")
    keyed, _ = provider.build_call(ctx)
    assert plain.body == keyed.body


# ---------------------------------------------------------------------------
# The provider: configuration, headers, copies


def test_defaults_and_endpoint() -> None:
    p = BedrockProvider()
    assert p.model_name == "anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert p.base_url == "https://bedrock-runtime.us-east-1.amazonaws.com"
    assert p.endpoint() == (
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream"
    )
    assert p.display_name() == "Bedrock (anthropic.claude-sonnet-4-5-20250929-v1:0)"
    assert (p.max_tokens, p.temperature, p.region, p.uses_api_key) == (16384, None, "us-east-1", False)


def test_region_sources(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert BedrockProvider(region="eu-central-1").base_url == "https://bedrock-runtime.eu-central-1.amazonaws.com"
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    assert BedrockProvider().region == "ap-south-1"
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    config = tmp_path / "config"
    config.write_text("[default]\nregion = sa-east-1\n\n[profile work]\nregion = ca-central-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    assert BedrockProvider().region == "sa-east-1"
    assert BedrockProvider(profile="work").region == "ca-central-1"
    assert BedrockProvider(base_url="https://bedrock-runtime.us-west-2.amazonaws.com", profile="work").region == "us-west-2"


def test_no_region_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION")
    with pytest.raises(MissingApiKeyError) as info:
        BedrockProvider()
    assert info.value.variable == "AWS_REGION" and "region=" in str(info.value)


def test_custom_endpoint_without_region_signs_only_with_a_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION")
    p = BedrockProvider(base_url="http://127.0.0.1:9")
    assert p.region is None
    stream = p.stream_response(Context([ChatMessage.User("x")]))
    with pytest.raises(MissingApiKeyError, match="AWS_REGION"):
        list(stream)
    # A bearer token needs no region at all.
    call, _ = BedrockProvider("ABSKtoken123456", base_url="http://127.0.0.1:9").build_call(Context())
    assert call.headers["authorization"] == "Bearer ABSKtoken123456" and call.prepare is None


def test_with_copies() -> None:
    p = BedrockProvider(model=NOVA, max_tokens=100)
    q = p.with_model(CLAUDE).with_region("eu-west-3").with_max_tokens(200).with_temperature(0.7)
    assert (p.model_name, p.region, p.max_tokens, p.temperature) == (NOVA, "us-east-1", 100, None)
    assert (q.model_name, q.region, q.max_tokens, q.temperature) == (CLAUDE, "eu-west-3", 200, 0.7)
    assert q.base_url == "https://bedrock-runtime.eu-west-3.amazonaws.com"
    pinned = p.with_base_url("http://127.0.0.1:9/").with_region("eu-west-3")
    assert pinned.base_url == "http://127.0.0.1:9" and pinned.region == "eu-west-3"
    with pytest.raises(ValueError):
        p.with_max_tokens(0)


def test_pickling_keeps_configuration_and_drops_credentials_cache() -> None:
    p = BedrockProvider(model=NOVA, credentials=AwsCredentials("AKIDSTATIC", "static-secret-1234", "tok-123456"))
    q = pickle.loads(pickle.dumps(p))
    assert (q.model_name, q.region, repr(q)) == (p.model_name, p.region, repr(p))
    assert q._signer.static == p._signer.static


def test_repr_and_credentials_hide_secrets() -> None:
    creds = AwsCredentials("AKIDSTATIC", "static-secret-key-abcdef", "session-token-abcdef")
    p = BedrockProvider(credentials=creds)
    text = repr(p) + repr(creds)
    assert "static-secret-key-abcdef" not in text and "session-token-abcdef" not in text
    assert "AKIDSTATIC" in text
    t = BedrockProvider(api_key="ABSKverysecretkey987")
    assert "ABSKverysecretkey987" not in repr(t)


def test_credentials_forms() -> None:
    assert AwsCredentials.coerce(("a", "b")) == AwsCredentials("a", "b")
    assert AwsCredentials.coerce({"aws_access_key_id": "a", "aws_secret_access_key": "b", "aws_session_token": "c"}) == AwsCredentials("a", "b", "c")
    with pytest.raises(ValueError):
        AwsCredentials.coerce({"access_key_id": "a"})
    with pytest.raises(TypeError):
        AwsCredentials.coerce(42)


def test_bearer_header_and_body(monkeypatch: pytest.MonkeyPatch) -> None:
    p = BedrockProvider("ABSKkey0123456789", model=NOVA, temperature=0.1)
    call, parse = p.build_call(Context([ChatMessage.User("hé")]))
    assert call.framing == "eventstream" and parse is parse_events
    assert call.headers == {"content-type": "application/json", "authorization": "Bearer ABSKkey0123456789"}
    assert json.loads(call.body) == {
        "messages": [{"role": "user", "content": [{"text": "hé"}]}],
        "inferenceConfig": {"maxTokens": 16384, "temperature": 0.1},
    }


def test_sigv4_prepare_signs_each_attempt() -> None:
    p = BedrockProvider(model=NOVA)
    call, _ = p.build_call(Context([ChatMessage.User("x")]))
    assert "authorization" not in call.headers
    signed = call.prepare(call)  # type: ignore[misc]
    assert signed.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/us-east-1/bedrock/aws4_request" in signed.headers["Authorization"]
    assert signed.body == call.body and signed.url == call.url and "X-Amz-Date" in signed.headers
    assert "Authorization" not in call.headers  # the original stays unsigned for the next attempt


def test_from_env_reads_the_bearer_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "ABSKfromenv123456")
    assert BedrockProvider.from_env().uses_api_key
    monkeypatch.delenv("AWS_BEARER_TOKEN_BEDROCK")
    import importlib.util

    if importlib.util.find_spec("botocore") is None:  # the nobotocore tox environment
        with pytest.raises(ApiRequestError, match=r"llm-sync\[bedrock\]"):
            BedrockProvider.from_env()
    else:
        assert not BedrockProvider.from_env().uses_api_key


# ---------------------------------------------------------------------------
# Pure parsing and classification


def frames(*raw: bytes) -> List[Frame]:
    return list(iter_eventstream([b"".join(raw)]))


def ev(name: str, **payload: Any) -> bytes:
    return event_frame(name, json.dumps(payload))


def test_parse_events_from_a_list_of_frames() -> None:
    out = list(
        parse_events(
            iter(
                frames(
                    ev("messageStart", role="assistant"),
                    ev("contentBlockDelta", contentBlockIndex=0, delta={"reasoningContent": {"text": "hmm"}}),
                    ev("contentBlockDelta", contentBlockIndex=0, delta={"reasoningContent": {"signature": "S1"}}),
                    ev("contentBlockStop", contentBlockIndex=0),
                    ev("contentBlockDelta", contentBlockIndex=1, delta={"text": "Hi"}),
                    ev("metadata", usage={"inputTokens": 3, "outputTokens": 4, "cacheReadInputTokens": 7, "totalTokens": 14}),
                    ev("messageStop", stopReason="max_tokens"),
                )
            )
        )
    )
    start = out[0]
    assert out[1:] == [
        LlmResponse.Reasoning("hmm"),
        LlmResponse.Text("Hi"),
        LlmResponse.EncryptedReasoning(start.message_id, '{"blocks":[{"text":"hmm","signature":"S1"}]}'),
        LlmResponse.Usage(10, 4, cached_input_tokens=7),
        LlmResponse.Done(StopReason.LENGTH, "max_tokens"),
    ]


def test_usage_already_including_cache_is_not_counted_twice() -> None:
    out = list(
        parse_events(
            iter(
                frames(
                    ev("messageStop", stopReason="end_turn"),
                    ev("metadata", usage={"inputTokens": 100, "outputTokens": 5, "cacheReadInputTokens": 60, "totalTokens": 105}),
                )
            )
        )
    )
    assert out[-2] == LlmResponse.Usage(100, 5, cached_input_tokens=60)


def test_exception_frame_before_anything_raises_without_start() -> None:
    gen = parse_events(iter(frames(exception_frame("throttlingException", '{"message":"slow down"}'))))
    with pytest.raises(RateLimitedError, match="slow down"):
        next(gen)


def test_error_message_type_frame() -> None:
    from llm_sync._transport._eventstream import encode_message

    raw = encode_message({":message-type": "error", ":error-code": "InternalFailure", ":error-message": "boom"}, b"")
    err = stream_exception(frames(raw)[0])
    assert type(err) is ApiError and "InternalFailure" in str(err) and "boom" in str(err)


def test_model_stream_error_with_original_message() -> None:
    raw = exception_frame(
        "modelStreamErrorException",
        json.dumps({"message": "Model stream error", "originalStatusCode": 400, "originalMessage": "prompt is too long: 9 tokens > 8 maximum"}),
    )
    err = stream_exception(frames(raw)[0])
    assert isinstance(err, ContextOverflowError) and (err.requested_tokens, err.max_tokens) == (9, 8)
    plain = stream_exception(frames(exception_frame("modelStreamErrorException", '{"message":"flaky"}'))[0])
    assert type(plain) is ServerError and plain.retryable


def test_invalid_json_names_the_event() -> None:
    with pytest.raises(JsonParsingError, match="metadata"):
        list(parse_events(iter(frames(ev("messageStart"), event_frame("metadata", b"{")))))


@pytest.mark.parametrize(
    "status, kind, message, cls",
    [
        (400, "ValidationException", "Input is too long for requested model.", ContextOverflowError),
        (400, "ValidationException", "The model returned the following errors: too many input tokens", ContextOverflowError),
        (400, "ValidationException", "messages: roles must alternate", ApiError),
        (403, "AccessDeniedException", "no", InvalidApiKeyError),
        (400, "ExpiredTokenException", "The security token included in the request is expired", InvalidApiKeyError),
        (429, "ThrottlingException", "Too many requests", RateLimitedError),
        (503, "ServiceUnavailableException", "busy", ServerError),
        (429, "ModelNotReadyException", "warming up", ServerError),
        (404, "ResourceNotFoundException", "no such model", ApiError),
    ],
)
def test_classify_error(status: int, kind: str, message: str, cls: type) -> None:
    err = classify_error(status, {"X-Amzn-ErrorType": f"{kind}:http://internal"}, json.dumps({"message": message}), "m")
    assert type(err) is cls
    assert (err.status, err.provider, err.model) == (status, "bedrock", "m")
    assert message in str(err) and kind in str(err)


def test_classify_error_with_html_and_retry_after() -> None:
    err = classify_error(502, {"content-type": "text/html", "retry-after": "2"}, "<html><title>Bad Gateway</title></html>")
    assert isinstance(err, ServerError) and err.retry_after == 2.0 and "Bad Gateway" in str(err)


def test_endpoint_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://localhost:4566")
    assert BedrockProvider().base_url == "http://localhost:4566"
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "http://127.0.0.1:8000/")
    assert BedrockProvider().base_url == "http://127.0.0.1:8000"
    assert BedrockProvider(base_url="https://vpce.example.com").base_url == "https://vpce.example.com"


def test_importing_the_module_does_not_import_botocore() -> None:
    import subprocess
    import sys

    code = "import sys, llm_sync.providers.bedrock as b; print('botocore' in sys.modules)"
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True, cwd=repo
    )
    assert out.stdout.strip() == "False"
