"""AzureOpenAiProvider over loopback: both URL forms, both APIs, Azure's filter annotations and errors, Entra ID tokens.

The streams and error bodies below are written by hand in the shapes Azure sends, as
public recordings and Microsoft's docs show them: the prompt-annotation chunk with an
empty id and no choices, ``content_filter_results`` on every choice, the
asynchronous filter's annotation chunks (MicrosoftDocs azure-ai-docs,
``content-streaming.md``), the 400 ``content_filter`` body with
``innererror.content_filter_result`` (openai/openai-dotnet#55), ``DeploymentNotFound``,
and 429s whose wait is in ``retry-after-ms``, ``x-ratelimit-reset-tokens`` or only the
message.
"""

from __future__ import annotations

import json
import os
import pickle
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

from llm_sync import (
    ApiError,
    AzureOpenAiProvider,
    ChatMessage,
    Context,
    ContextOverflowError,
    InvalidApiKeyError,
    LlmError,
    LlmResponse,
    MissingApiKeyError,
    OAuthError,
    RateLimitedError,
    StopReason,
    parse_model,
)
from llm_sync.providers.azure import ENTRA_SCOPE, filtered_categories
from tests.support.replay import kinds
from tests.support.secrets import CaptureLogs, error_texts, leaks, traceback_locals_text
from tests.support.server import LoopbackServer, Reply, sse_chunks

KEY = "azkey-0f9e8d7c6b5a49382716a5b4c3d2e1f0"
TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOi.entra-token-Qz81Lm47Xa"
DEPLOYMENT = "chat-prod-4o"
SAFE = {
    "hate": {"filtered": False, "severity": "safe"},
    "self_harm": {"filtered": False, "severity": "safe"},
    "sexual": {"filtered": False, "severity": "safe"},
    "violence": {"filtered": False, "severity": "safe"},
}
PROMPT_ANNOTATION = {
    "choices": [],
    "created": 0,
    "id": "",
    "model": "",
    "object": "",
    "prompt_filter_results": [
        {"prompt_index": 0, "content_filter_results": {**SAFE, "jailbreak": {"filtered": False, "detected": False}}}
    ],
}
CHAT_ID = "chatcmpl-BeRMQ69PcNQmy9a0f0C0VlLsdOy9H"

_ENV = (
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_AD_TOKEN",
    "AZURE_OPENAI_DEPLOYMENT",
    "OPENAI_API_VERSION",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    saved = dict(os.environ)
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env from the working tree
    yield
    # from_env applies a .env to os.environ: put the environment back as it was.
    os.environ.clear()
    os.environ.update(saved)


def chunk(delta: Optional[Dict[str, Any]] = None, finish: Optional[str] = None, filters: Any = SAFE) -> Dict[str, Any]:
    return {
        "choices": [
            {
                "content_filter_results": filters,
                "delta": delta if delta is not None else {},
                "finish_reason": finish,
                "index": 0,
                "logprobs": None,
            }
        ],
        "created": 1748977994,
        "id": CHAT_ID,
        "model": "gpt-4o-2024-05-13",
        "object": "chat.completion.chunk",
        "system_fingerprint": "fp_ee1d74bde0",
    }


USAGE_CHUNK = {
    "choices": [],
    "created": 1748977994,
    "id": CHAT_ID,
    "model": "gpt-4o-2024-05-13",
    "object": "chat.completion.chunk",
    "usage": {
        "completion_tokens": 9,
        "completion_tokens_details": {"accepted_prediction_tokens": 0, "reasoning_tokens": 0},
        "prompt_tokens": 12,
        "prompt_tokens_details": {"audio_tokens": 0, "cached_tokens": 0},
        "total_tokens": 21,
    },
}


def chat_reply(*events: Any, headers: Optional[Dict[str, str]] = None) -> Reply:
    merged = {"content-type": "text/event-stream", "apim-request-id": "b7c1a0f2", "x-ms-region": "Sweden Central"}
    merged.update(headers or {})
    return Reply(status=200, headers=merged, body=sse_chunks(*events, "[DONE]"), chunked=True)


HELLO = [
    PROMPT_ANNOTATION,
    chunk({"content": "", "refusal": None, "role": "assistant"}, filters={}),
    chunk({"content": "Hello"}),
    chunk({"content": "! How can I help?"}),
    chunk({}, "stop", filters={}),
    USAGE_CHUNK,
]


def azure(server: LoopbackServer, **kw: Any) -> AzureOpenAiProvider:
    kw.setdefault("max_retries", 0)
    if "token_provider" not in kw:
        kw.setdefault("api_key", KEY)
    return AzureOpenAiProvider(model=kw.pop("model", DEPLOYMENT), base_url=server.url, **kw)


def chunks_of(provider: AzureOpenAiProvider, ctx: Optional[Context] = None) -> List[LlmResponse]:
    with provider.stream_response(ctx or Context([ChatMessage.User("hi")])) as stream:
        return list(stream)


def failure(provider: AzureOpenAiProvider) -> LlmError:
    with pytest.raises(LlmError) as info:
        chunks_of(provider)
    return info.value


# ---------------------------------------------------------------------------
# URLs, headers and bodies.


def test_the_v1_form_is_the_default_and_puts_the_deployment_in_the_body(server: LoopbackServer) -> None:
    server.reply(chat_reply(*HELLO))
    chunks_of(azure(server, max_tokens=300))
    req = server.requests[0]
    assert req.path == "/openai/v1/chat/completions"
    assert req.headers["api-key"] == KEY
    assert "authorization" not in req.headers
    body = req.json()
    assert body["model"] == DEPLOYMENT
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["max_completion_tokens"] == 300 and "max_tokens" not in body


def test_a_dated_api_version_uses_the_deployment_url(server: LoopbackServer) -> None:
    server.reply(chat_reply(*HELLO), chat_reply(*HELLO))
    chunks_of(azure(server, api_version="2024-10-21", max_tokens=300))
    chunks_of(azure(server, api_version="2024-02-01", max_tokens=300))
    new, old = server.requests
    assert new.path == f"/openai/deployments/{DEPLOYMENT}/chat/completions?api-version=2024-10-21"
    assert new.json()["max_completion_tokens"] == 300 and "stream_options" in new.json()
    # Before 2024-09-01 Azure refuses stream_options and knows only max_tokens.
    assert old.path == f"/openai/deployments/{DEPLOYMENT}/chat/completions?api-version=2024-02-01"
    assert old.json()["max_tokens"] == 300 and "stream_options" not in old.json()


def test_openai_api_version_comes_from_the_environment(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_VERSION", "2025-04-01-preview")
    server.reply(chat_reply(*HELLO))
    provider = azure(server)
    assert provider.api_version == "2025-04-01-preview"
    chunks_of(provider)
    assert server.requests[0].query == {"api-version": ["2025-04-01-preview"]}
    assert server.requests[0].path_only == f"/openai/deployments/{DEPLOYMENT}/chat/completions"


def test_the_responses_api_in_both_forms(server: LoopbackServer) -> None:
    events = [
        ("response.created", {"type": "response.created", "response": {"id": "resp_az1", "status": "in_progress"}}),
        ("response.output_text.delta", {"type": "response.output_text.delta", "item_id": "m1", "delta": "Hi there"}),
        (
            "response.completed",
            {
                "type": "response.completed",
                "response": {"id": "resp_az1", "status": "completed", "usage": {"input_tokens": 8, "output_tokens": 2}},
            },
        ),
    ]
    server.reply(
        Reply(status=200, headers={"content-type": "text/event-stream"}, body=sse_chunks(*events), chunked=True),
        Reply(status=200, headers={"content-type": "text/event-stream"}, body=sse_chunks(*events), chunked=True),
        Reply(status=200, headers={"content-type": "text/event-stream"}, body=sse_chunks(*events), chunked=True),
    )
    for provider in (
        azure(server, api="responses"),
        azure(server, api="responses", api_version="2025-04-01-preview"),
        azure(server, api_version="preview").with_api("responses"),
    ):
        chunks = chunks_of(provider)
        assert kinds(chunks) == ["Start", "Text", "Usage", "Done"]
        assert chunks[0] == LlmResponse.Start("resp_az1")
    v1, dated, preview = server.requests
    assert v1.path == "/openai/v1/responses"
    assert dated.path == "/openai/responses?api-version=2025-04-01-preview"
    assert preview.path == "/openai/v1/responses?api-version=preview"
    for req in server.requests:
        body = req.json()
        assert body["model"] == DEPLOYMENT and body["store"] is False and body["stream"] is True
        assert body["input"][0]["content"][0] == {"type": "input_text", "text": "hi"}


def test_endpoints_are_read_as_the_portal_shows_them(server: LoopbackServer) -> None:
    assert azure(server).base_url == server.url
    v1 = AzureOpenAiProvider(KEY, model=DEPLOYMENT, base_url=server.url + "/openai/v1/")
    assert v1.base_url == server.url and v1.request_url() == server.url + "/openai/v1/chat/completions"
    with pytest.raises(ValueError, match="names the v1 API"):
        AzureOpenAiProvider(KEY, model=DEPLOYMENT, base_url=server.url + "/openai/v1", api_version="2024-10-21")
    with pytest.raises(ValueError, match="resource endpoint"):
        AzureOpenAiProvider(
            KEY,
            model=DEPLOYMENT,
            base_url=server.url + f"/openai/deployments/{DEPLOYMENT}/chat/completions?api-version=2024-10-21",
        )
    with pytest.raises(ValueError, match="'chat' or 'responses'"):
        azure(server, api="completions")
    # A deployment name is quoted into the path, never able to change it.
    odd = azure(server, model="a b/../c", api_version="2024-10-21")
    assert "/deployments/a%20b%2F..%2Fc/chat/completions" in odd.request_url()


# ---------------------------------------------------------------------------
# Streams with Azure's annotations.


def test_the_prompt_annotation_does_not_start_the_turn(server: LoopbackServer) -> None:
    server.reply(chat_reply(*HELLO))
    chunks = chunks_of(azure(server))
    assert kinds(chunks) == ["Start", "Text", "Text", "Usage", "Done"]
    assert chunks[0] == LlmResponse.Start(CHAT_ID)  # the response's id, not a made-up one
    assert "".join(c.chunk for c in chunks if isinstance(c, LlmResponse.Text)) == "Hello! How can I help?"
    assert chunks[-2] == LlmResponse.Usage(
        input_tokens=12, output_tokens=9, cached_input_tokens=0, reasoning_tokens=0,
        input_audio_tokens=0, accepted_prediction_tokens=0,
    )
    assert chunks[-1] == LlmResponse.Done(StopReason.END_TURN, "stop")


def test_an_answer_the_filter_stopped_ends_with_content_filter(server: LoopbackServer) -> None:
    stopped = {**SAFE, "self_harm": {"filtered": False, "severity": "low"}, "violence": {"filtered": True, "severity": "medium"}}
    server.reply(chat_reply(PROMPT_ANNOTATION, chunk({"role": "assistant", "content": "The"}), chunk({}, "content_filter", stopped)))
    chunks = chunks_of(azure(server))
    assert kinds(chunks) == ["Start", "Text", "Done"]
    assert chunks[-1] == LlmResponse.Done(StopReason.CONTENT_FILTER, "content_filter")
    assert filtered_categories(stopped) == ["violence (medium)"]


def _annotation(finish: Optional[str], results: Dict[str, Any], offsets: Dict[str, int]) -> Dict[str, Any]:
    # The asynchronous filter's annotation: id "", no delta, the offsets it checked.
    return {
        "id": "",
        "object": "",
        "created": 0,
        "model": "",
        "choices": [
            {"index": 0, "finish_reason": finish, "content_filter_results": results, "content_filter_offsets": offsets}
        ],
        "usage": None,
    }


def _async_chunk(delta: Dict[str, Any], finish: Optional[str] = None) -> Dict[str, Any]:
    return {
        "id": "chatcmpl-8JCbt5d4luUIhYCI7YH4dQK7hnHx2",
        "object": "chat.completion.chunk",
        "created": 1699587397,
        "model": "gpt-35-turbo",
        "choices": [{"index": 0, "finish_reason": finish, "delta": delta}],
        "usage": None,
    }


def test_the_asynchronous_filter_passing_and_blocking(server: LoopbackServer) -> None:
    prompt = {**PROMPT_ANNOTATION, "usage": None}
    passed = [
        prompt,
        _async_chunk({"role": "assistant"}),
        _async_chunk({"content": "Color"}),
        _async_chunk({"content": " is"}),
        _annotation(None, SAFE, {"check_offset": 44, "start_offset": 44, "end_offset": 198}),
        _async_chunk({}, "stop"),
        # Annotations go on after the answer's finish_reason.
        _annotation(None, SAFE, {"check_offset": 506, "start_offset": 44, "end_offset": 571}),
    ]
    blocked = [
        prompt,
        _async_chunk({"role": "assistant"}),
        _async_chunk({"content": "Hey"}),
        _async_chunk({"content": " Jude"}),
        _annotation(None, SAFE, {"check_offset": 65, "start_offset": 65, "end_offset": 1056}),
        _annotation(
            "content_filter",
            {"protected_material_text": {"detected": True, "filtered": True}},
            {"check_offset": 65, "start_offset": 65, "end_offset": 1056},
        ),
    ]
    server.reply(chat_reply(*passed), chat_reply(*blocked))
    ok = chunks_of(azure(server))
    assert kinds(ok) == ["Start", "Text", "Text", "Done"]
    assert ok[0] == LlmResponse.Start("chatcmpl-8JCbt5d4luUIhYCI7YH4dQK7hnHx2")
    assert ok[-1] == LlmResponse.Done(StopReason.END_TURN, "stop")
    stopped = chunks_of(azure(server))
    assert "".join(c.chunk for c in stopped if isinstance(c, LlmResponse.Text)) == "Hey Jude"
    assert stopped[-1] == LlmResponse.Done(StopReason.CONTENT_FILTER, "content_filter")
    assert filtered_categories(blocked[-1]["choices"][0]["content_filter_results"]) == ["protected_material_text"]


def test_responses_cut_by_the_filter_end_with_content_filter(server: LoopbackServer) -> None:
    events = [
        ("response.created", {"type": "response.created", "response": {"id": "resp_az2", "status": "in_progress"}}),
        ("response.output_text.delta", {"type": "response.output_text.delta", "item_id": "m1", "delta": "Once"}),
        (
            "response.incomplete",
            {
                "type": "response.incomplete",
                "response": {"id": "resp_az2", "status": "incomplete", "incomplete_details": {"reason": "content_filter"}},
            },
        ),
    ]
    server.reply(Reply(status=200, headers={"content-type": "text/event-stream"}, body=sse_chunks(*events), chunked=True))
    chunks = chunks_of(azure(server, api="responses"))
    assert chunks[-1] == LlmResponse.Done(StopReason.CONTENT_FILTER, "content_filter")


# ---------------------------------------------------------------------------
# Errors.

FILTERED_PROMPT = {
    "error": {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management "
        "policy. Please modify your prompt and retry. To learn more about our content filtering policies "
        "please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
        "type": None,
        "param": "prompt",
        "code": "content_filter",
        "status": 400,
        "innererror": {
            "code": "ResponsibleAIPolicyViolation",
            "content_filter_result": {**SAFE, "sexual": {"filtered": True, "severity": "high"}},
        },
    }
}


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_a_filtered_prompt_is_an_api_error_naming_the_category(server: LoopbackServer, api: str) -> None:
    server.reply(Reply.json(FILTERED_PROMPT, status=400))
    err = failure(azure(server, api=api, max_retries=2))
    assert type(err) is ApiError and not err.retryable and err.status == 400
    assert "content filter" in err.message and "sexual (high)" in err.message
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "message, requested, maximum",
    [
        (
            "This model's maximum context length is 32768 tokens. However, you requested 35969 tokens "
            "(9969 in the messages, 26000 in the completion). Please reduce the length of the messages or completion.",
            35969,
            32768,
        ),
        (
            "Input tokens exceed the configured limit of 272000 tokens. Your messages resulted in 509178 tokens. "
            "Please reduce the length of the messages.",
            509178,
            272000,
        ),
    ],
)
@pytest.mark.parametrize("api", ["chat", "responses"])
def test_overflows_carry_the_numbers(server: LoopbackServer, api: str, message: str, requested: int, maximum: int) -> None:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}
    server.reply(Reply.json(body, status=400))
    err = failure(azure(server, api=api))
    assert isinstance(err, ContextOverflowError)
    assert (err.requested_tokens, err.max_tokens) == (requested, maximum)


def test_a_missing_deployment_is_named(server: LoopbackServer) -> None:
    body = {
        "error": {
            "code": "DeploymentNotFound",
            "message": "The API deployment for this resource does not exist. If you created the deployment "
            "within the last 5 minutes, please wait a moment and try again.",
        }
    }
    server.reply(Reply.json(body, status=404))
    err = failure(azure(server, model="gpt4o-typo"))
    assert type(err) is ApiError and err.status == 404
    assert "'gpt4o-typo'" in err.message and "AZURE_OPENAI_DEPLOYMENT" in err.message


def test_a_refused_key_is_not_retried(server: LoopbackServer) -> None:
    body = {
        "error": {
            "code": "401",
            "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide "
            "a valid key for an active subscription and use a correct regional API endpoint for your resource.",
        }
    }
    server.reply(Reply.json(body, status=401))
    err = failure(azure(server, max_retries=3))
    assert isinstance(err, InvalidApiKeyError) and "AZURE_OPENAI_API_KEY" in err.message
    assert len(server.requests) == 1


RATE = {
    "error": {
        "code": "429",
        "message": "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have "
        "exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 6 seconds. Please go "
        "here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.",
    }
}


def test_a_429_waits_as_retry_after_ms_says(server: LoopbackServer) -> None:
    server.reply(Reply.json(RATE, status=429, headers={"retry-after-ms": "250", "retry-after": "1"}), chat_reply(*HELLO))
    t0 = time.monotonic()
    chunks = chunks_of(azure(server, max_retries=1))
    took = time.monotonic() - t0
    assert chunks[-1] == LlmResponse.Done(StopReason.END_TURN, "stop")
    assert 0.24 <= took < 0.9, took  # retry-after-ms, not Retry-After's whole second
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    "headers, wait",
    [
        ({"x-ratelimit-reset-tokens": "55"}, 55.0),
        ({}, 6.0),  # only the message says it
    ],
)
def test_a_429_wait_from_the_reset_header_or_the_message(server: LoopbackServer, headers: Dict[str, str], wait: float) -> None:
    server.reply(Reply.json(RATE, status=429, headers=headers))
    err = failure(azure(server))
    assert isinstance(err, RateLimitedError) and err.retryable
    assert err.retry_after == wait


# ---------------------------------------------------------------------------
# Entra ID tokens.


class FakeAccessToken:
    def __init__(self, token: str, expires_on: int) -> None:
        self.token = token
        self.expires_on = expires_on


class Credential:
    """An azure-core TokenCredential as DefaultAzureCredential is one: get_token(*scopes) -> AccessToken."""

    def __init__(self, lifetime: float) -> None:
        self.lifetime = lifetime
        self.scopes: List[tuple] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> FakeAccessToken:
        self.scopes.append(scopes)
        return FakeAccessToken(f"{TOKEN}-{len(self.scopes)}", int(time.time() + self.lifetime))


def test_a_token_credential_is_asked_for_the_scope_and_reused_until_near_expiry(server: LoopbackServer) -> None:
    lasting, short = Credential(3600), Credential(60)  # 60 s is inside the renewal margin
    server.reply(*(chat_reply(*HELLO) for _ in range(4)))
    long_provider = azure(server, token_provider=lasting)
    chunks_of(long_provider)
    chunks_of(long_provider)
    short_provider = azure(server, token_provider=short)
    chunks_of(short_provider)
    chunks_of(short_provider)
    assert lasting.scopes == [(ENTRA_SCOPE,)]
    assert len(short.scopes) == 2  # renewed before each request: it would lapse in flight
    sent = [r.headers["authorization"] for r in server.requests]
    assert sent == [f"Bearer {TOKEN}-1", f"Bearer {TOKEN}-1", f"Bearer {TOKEN}-1", f"Bearer {TOKEN}-2"]
    assert all("api-key" not in r.headers for r in server.requests)


def test_a_401_renews_the_token_and_sends_once_more(server: LoopbackServer) -> None:
    cred = Credential(3600)
    refused = {"error": {"code": "PermissionDenied", "message": "Principal does not have access to API/Operation."}}
    server.reply(Reply.json(refused, status=401), chat_reply(*HELLO))
    chunks = chunks_of(azure(server, token_provider=cred))
    assert chunks[-1] == LlmResponse.Done(StopReason.END_TURN, "stop")
    assert [r.headers["authorization"] for r in server.requests] == [f"Bearer {TOKEN}-1", f"Bearer {TOKEN}-2"]
    # Refused twice: the second 401 is raised, nothing more is sent.
    server.reply(Reply.json(refused, status=401), Reply.json(refused, status=401), chat_reply(*HELLO))
    err = failure(azure(server, token_provider=Credential(3600)))
    assert isinstance(err, InvalidApiKeyError) and "even after refreshing" in err.message
    assert len(server.requests) == 4


def test_a_callable_token_provider_and_a_static_token(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: List[int] = []

    def provider_fn() -> str:
        calls.append(1)
        return TOKEN

    server.reply(chat_reply(*HELLO), chat_reply(*HELLO), chat_reply(*HELLO))
    p = azure(server, token_provider=provider_fn)
    chunks_of(p)
    chunks_of(p)
    assert len(calls) == 2  # asked before every request: it keeps its own cache
    monkeypatch.setenv("AZURE_OPENAI_AD_TOKEN", TOKEN + "-static")
    chunks_of(AzureOpenAiProvider(model=DEPLOYMENT, base_url=server.url))
    assert [r.headers["authorization"] for r in server.requests] == [f"Bearer {TOKEN}"] * 2 + [f"Bearer {TOKEN}-static"]


def test_a_failing_token_provider_is_an_oauth_error_sent_nowhere(server: LoopbackServer) -> None:
    class ClientAuthenticationError(Exception):
        pass

    def broken() -> str:
        raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token from the included credentials")

    err = failure(azure(server, token_provider=broken))
    assert isinstance(err, OAuthError) and "ClientAuthenticationError" in err.message and "az login" in err.message
    assert server.requests == []
    with pytest.raises(TypeError, match="token_provider"):
        azure(server, token_provider=42)
    with pytest.raises(ValueError, match="not both"):
        AzureOpenAiProvider(KEY, model=DEPLOYMENT, base_url=server.url, token_provider=broken)


def test_a_token_with_a_line_break_is_refused_without_being_shown(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A line break would otherwise reach the header; the error names where it is, never the token.
    err = failure(azure(server, token_provider=lambda: TOKEN[:10] + "\n" + TOKEN[10:]))
    assert isinstance(err, OAuthError) and "a line break (\\n) at character 11" in err.message, err.message
    assert server.requests == [] and not leaks(error_texts(err), TOKEN)
    monkeypatch.setenv("AZURE_OPENAI_AD_TOKEN", TOKEN + "\x7f")
    with pytest.raises(OAuthError, match="AZURE_OPENAI_AD_TOKEN has a control character") as info:
        AzureOpenAiProvider(model=DEPLOYMENT, base_url=server.url)
    assert not leaks(error_texts(info.value), TOKEN)


# ---------------------------------------------------------------------------
# Configuration from the environment, model strings, the catalog.


def test_from_env_names_every_missing_variable_at_once() -> None:
    with pytest.raises(MissingApiKeyError) as info:
        AzureOpenAiProvider.from_env()
    err = info.value
    assert err.variables == ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_DEPLOYMENT", "AZURE_OPENAI_API_KEY")
    for name in (*err.variables, "AZURE_OPENAI_AD_TOKEN"):
        assert name in err.message
    with pytest.raises(MissingApiKeyError) as only_key:
        AzureOpenAiProvider.from_env(base_url="https://res.openai.azure.com", model=DEPLOYMENT)
    assert only_key.value.variables == ("AZURE_OPENAI_API_KEY",)


def test_from_env_reads_a_dotenv_and_the_model_string_names_the_deployment(
    server: LoopbackServer, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(f"AZURE_OPENAI_ENDPOINT={server.url}\nAZURE_OPENAI_API_KEY={KEY}\n")
    server.reply(chat_reply(*HELLO))
    provider, model = parse_model("azure:my-team-gpt4o")
    assert isinstance(provider, AzureOpenAiProvider) and provider.deployment == "my-team-gpt4o"
    assert str(model) == "azure:my-team-gpt4o" and model.context_window is None
    chunks_of(provider)  # type: ignore[arg-type]
    assert server.requests[0].json()["model"] == "my-team-gpt4o"
    # A deployment named after its model is described by the catalog.
    named, described = parse_model("azure:gpt-4o")
    assert described.context_window == 128_000 and named.context_window() == 128_000


# ---------------------------------------------------------------------------
# Secrets.


def _echoing_errors(secret: str) -> List[Reply]:
    echoed = {"error": {"code": "401", "message": f"Access denied for key {secret}"}}
    return [
        Reply.json(echoed, status=401),
        Reply.json({"error": {"code": "BadRequest", "message": f"bad {secret}"}}, status=400),
        Reply.json({**FILTERED_PROMPT, "note": secret}, status=400),
        Reply.json({"error": {"code": "429", "message": f"slow down {secret}"}}, status=429, headers={"retry-after": "9999"}),
        chat_reply(PROMPT_ANNOTATION, chunk({"content": "x"}), {"error": {"message": f"oops {secret}", "code": 500}}),
    ]


@pytest.mark.parametrize("credential", ["api_key", "token_provider"])
def test_the_key_and_the_token_never_show(server: LoopbackServer, credential: str) -> None:
    secret = KEY if credential == "api_key" else TOKEN
    kw: Dict[str, Any] = {"api_key": KEY} if credential == "api_key" else {"token_provider": lambda: TOKEN}
    provider = azure(server, **kw)
    replies = _echoing_errors(secret)
    texts: List[str] = []
    with CaptureLogs() as logs:
        for reply in replies:
            # With a token, a 401 is sent once more with a renewed token.
            server.reply(*([reply, reply] if reply.status == 401 and credential == "token_provider" else [reply]))
            texts.append(error_texts(failure(provider)))
        # The frames' locals hold what was sent (headers, the provider, the token): all masked.
        # (That send() keeps a body echoing the secret out of its locals is tests/test_secrets.py's.)
        denied = Reply.json({"error": {"code": "401", "message": "Access denied"}}, status=401)
        server.reply(denied, denied)
        locals_text = traceback_locals_text(failure(provider))
    assert len(texts) == len(replies) and not locals_text.startswith("0 frames")
    assert "api-key" in locals_text or "authorization" in locals_text  # the headers were looked at
    for text in [*texts, locals_text, logs.text(), repr(provider), str(provider), provider.display_name()]:
        assert not leaks(text, secret), text
    call, _ = provider.build_call(Context([ChatMessage.User("hi")]))
    prepared = call.prepare(call) if call.prepare is not None else call
    assert not leaks(repr(call) + repr(prepared) + repr(dict(prepared.headers)), secret)
    # Not vacuous: the secret did go out.
    assert secret in json.dumps(dict(server.requests[0].headers))
    if credential == "api_key":
        again = pickle.loads(pickle.dumps(provider))
        assert not leaks(repr(again), secret) and again.api_key == KEY


# ---------------------------------------------------------------------------
# Live (LLM_SYNC_LIVE=1 and an Azure OpenAI resource in the environment).


@pytest.mark.live
@pytest.mark.parametrize("api", ["chat", "responses"])
def test_live_azure(api: str) -> None:
    for name in ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_DEPLOYMENT"):
        if not os.environ.get(name):
            pytest.skip(f"set {name}, and AZURE_OPENAI_API_KEY or AZURE_OPENAI_AD_TOKEN")
    provider = AzureOpenAiProvider.from_env(api=api)
    with provider.stream_response(Context([ChatMessage.User("Reply with the single word: pong")])) as stream:
        reply = stream.collect()
    assert "pong" in reply.text.lower()
    assert reply.stop_reason is StopReason.END_TURN and reply.usage is not None
