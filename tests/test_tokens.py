"""Token counts and fit checks: each provider's count endpoint over loopback, the shared call rules, cancelling."""

from __future__ import annotations

import threading
import time
from concurrent.futures import CancelledError
from typing import Any, List

import pytest

from llm_sync import (
    ApiError,
    ChatMessage,
    Context,
    ContextOverflowError,
    InvalidApiKeyError,
    JsonParsingError,
    RateLimitedError,
    ReasoningEffort,
    RequestTimeoutError,
    Timeouts,
    TokenCount,
    ToolDefinition,
)
from llm_sync.providers.anthropic import AnthropicProvider
from llm_sync.providers.bedrock import BedrockProvider
from llm_sync.providers.codex import CodexProvider
from llm_sync.providers.gemini import GeminiProvider
from llm_sync.providers.llamacpp import LlamaCppProvider
from llm_sync.providers.ollama import OllamaProvider, show_window
from llm_sync.providers.openai import OpenAiProvider
from llm_sync.providers.openrouter import OpenRouterProvider
from llm_sync.testing import FakeLlmProvider
from tests.support.server import LoopbackServer, Reply, Stall

KEY = "sk-test-count-0123456789abcdef"
# Headers, then silence: the answer (of a declared length, as a JSON answer has) never comes.
SILENT = Reply(200, {"content-type": "application/json", "content-length": "40"}, [Stall(10)])
WEATHER = ToolDefinition(
    "get_weather",
    "Weather for a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def conversation() -> Context:
    return Context(
        [
            ChatMessage.System("Be brief."),
            ChatMessage.User("What is the weather in Oslo?"),
        ],
        [WEATHER],
    )


# -- each provider's count endpoint ---------------------------------------------------------


def test_anthropic_messages_count_tokens(server: LoopbackServer) -> None:
    server.reply(Reply.json({"input_tokens": 412}))
    p = AnthropicProvider(KEY, base_url=server.url, max_tokens=100, temperature=0.5, max_retries=0)
    ctx = conversation()
    ctx.set_reasoning_effort(ReasoningEffort.LOW)
    assert p.count_tokens(ctx) == TokenCount(412, exact=True)
    req = server.requests[0]
    assert (req.method, req.path) == ("POST", "/v1/messages/count_tokens")
    assert req.headers["x-api-key"] == KEY and req.headers["anthropic-version"] == "2023-06-01"
    assert req.headers["accept"] == "application/json"
    body = req.json()
    assert set(body) == {"model", "system", "messages", "tools", "thinking"}
    assert body["model"] == "claude-sonnet-4-5" and body["messages"][0]["content"][0]["text"].startswith("What")
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}


def test_openai_responses_input_tokens(server: LoopbackServer) -> None:
    server.reply(Reply.json({"object": "response.input_tokens", "input_tokens": 97}))
    p = OpenAiProvider(KEY, model="gpt-5", base_url=f"{server.url}/v1", max_tokens=50, max_retries=0)
    assert p.count_tokens(conversation()) == TokenCount(97, exact=True)
    req = server.requests[0]
    assert req.path == "/v1/responses/input_tokens" and req.headers["authorization"] == f"Bearer {KEY}"
    body = req.json()
    # stream, store, include and max_output_tokens only steer generation: the endpoint refuses them.
    assert set(body) == {"model", "input", "instructions", "tools"}
    assert body["instructions"] == "Be brief." and body["tools"][0]["name"] == "get_weather"


def test_gemini_count_tokens_with_the_whole_request(server: LoopbackServer) -> None:
    server.reply(Reply.json({"totalTokens": 31, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 31}]}))
    p = GeminiProvider(KEY, model="gemini-2.5-flash", base_url=server.url + "/v1beta", max_retries=0)
    assert p.count_tokens(conversation()) == TokenCount(31, exact=True)
    req = server.requests[0]
    assert req.path == "/v1beta/models/gemini-2.5-flash:countTokens" and req.headers["x-goog-api-key"] == KEY
    inner = req.json()["generateContentRequest"]
    assert inner["model"] == "models/gemini-2.5-flash"
    assert inner["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert inner["tools"][0]["functionDeclarations"][0]["name"] == "get_weather"
    assert inner["contents"][0]["role"] == "user"


def test_bedrock_count_tokens_with_the_converse_input(server: LoopbackServer) -> None:
    server.reply(Reply.json({"inputTokens": 58}))
    model = "anthropic.claude-sonnet-4-5-20250929-v1:0"
    p = BedrockProvider(KEY, model=model, region="us-east-1", base_url=server.url, max_retries=0)
    assert p.count_tokens(conversation()) == TokenCount(58, exact=True)
    req = server.requests[0]
    assert req.path == "/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/count-tokens"
    assert req.headers["authorization"] == f"Bearer {KEY}"
    converse = req.json()["input"]["converse"]
    assert set(converse) == {"messages", "system", "toolConfig"}  # no inferenceConfig
    assert converse["system"] == [{"text": "Be brief."}]


def test_bedrock_count_request_is_signed_like_a_stream(server: LoopbackServer) -> None:
    pytest.importorskip("botocore")
    server.reply(Reply.json({"inputTokens": 9}))
    p = BedrockProvider(
        model="anthropic.claude-sonnet-4-5-20250929-v1:0",
        region="us-east-1",
        base_url=server.url,
        credentials=("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        max_retries=0,
    )
    assert p.count_tokens(conversation()).input_tokens == 9
    auth = server.requests[0].headers["authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") and "/us-east-1/bedrock/aws4_request" in auth


def test_llamacpp_applies_the_template_then_tokenizes(server: LoopbackServer) -> None:
    server.reply(Reply.json({"prompt": "<s>system: Be brief.\nuser: What is the weather in Oslo?\nassistant:"}))
    server.reply(Reply.json({"tokens": [1, 2, 3, 4, 5, 6, 7]}))
    p = LlamaCppProvider(base_url=server.url, max_tokens=10, max_retries=0)
    assert p.count_tokens(conversation()) == TokenCount(7, exact=True)
    template, tokenize = server.requests
    assert template.path == "/apply-template" and tokenize.path == "/tokenize"
    body = template.json()
    assert body["messages"][0] == {"role": "system", "content": "Be brief."} and body["tools"]
    assert "stream" not in body and "max_tokens" not in body
    assert tokenize.json() == {
        "content": "<s>system: Be brief.\nuser: What is the weather in Oslo?\nassistant:",
        "add_special": True,
        "parse_special": True,
    }


def test_llamacpp_with_media_gives_the_estimate(server: LoopbackServer) -> None:
    from llm_sync import ContentBlock

    ctx = Context([ChatMessage.User([ContentBlock.Text("what is it?"), ContentBlock.Image("iVBORw0KGgo=", "image/png")])])
    count = LlamaCppProvider(base_url=server.url).count_tokens(ctx)
    assert count == TokenCount(ctx.estimated_token_count(), exact=False)
    assert server.requests == []  # images become embeddings the tokenizer does not see


@pytest.mark.parametrize(
    "make",
    [
        lambda url: OpenRouterProvider(KEY, base_url=url),
        lambda url: OllamaProvider(base_url=url, model="qwen3:8b"),
        lambda url: CodexProvider("token", base_url=url),
        lambda url: FakeLlmProvider(),
    ],
)
def test_providers_without_a_count_endpoint_give_the_estimate(server: LoopbackServer, make: Any) -> None:
    ctx = conversation()
    assert make(server.url).count_tokens(ctx) == TokenCount(ctx.estimated_token_count(), exact=False)
    assert server.requests == []


# -- the shared call rules: retries, typed errors, bounded waits, cancel --------------------


def test_count_retries_a_429_then_answers(server: LoopbackServer) -> None:
    server.reply(Reply.json({"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}}, 429, {"retry-after": "0"}))
    server.reply(Reply.json({"input_tokens": 5}))
    p = AnthropicProvider(KEY, base_url=server.url, max_retries=1)
    assert p.count_tokens(conversation()).input_tokens == 5
    assert len(server.requests) == 2


def test_count_errors_are_typed_and_name_the_provider(server: LoopbackServer) -> None:
    server.reply(Reply.json({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}, 401))
    p = AnthropicProvider(KEY, base_url=server.url, max_retries=3)
    with pytest.raises(InvalidApiKeyError) as info:
        p.count_tokens(conversation())
    assert info.value.provider == "anthropic" and info.value.model == "claude-sonnet-4-5"
    assert "invalid x-api-key" in str(info.value) and len(server.requests) == 1  # never retried

    server.reply(Reply.json({"error": {"code": 404, "message": "models/nope is not found", "status": "NOT_FOUND"}}, 404))
    with pytest.raises(ApiError, match="NOT_FOUND"):
        GeminiProvider(KEY, model="nope", base_url=server.url + "/v1beta").count_tokens(conversation())

    server.reply(Reply.json({"error": {"message": "quota", "type": "insufficient_quota", "code": "insufficient_quota"}}, 429))
    with pytest.raises(RateLimitedError) as limited:
        OpenAiProvider(KEY, base_url=f"{server.url}/v1").count_tokens(conversation())
    assert limited.value.retryable is False

    server.reply(Reply(200, {"content-type": "text/html"}, b"<html>proxy login</html>"))
    with pytest.raises(JsonParsingError, match="not JSON"):
        AnthropicProvider(KEY, base_url=server.url, max_retries=0).count_tokens(conversation())

    server.reply(Reply.json({"tokens": 12}))
    with pytest.raises(JsonParsingError, match="input_tokens"):
        AnthropicProvider(KEY, base_url=server.url, max_retries=0).count_tokens(conversation())


def test_a_silent_count_endpoint_times_out(server: LoopbackServer) -> None:
    server.reply(SILENT)
    p = AnthropicProvider(KEY, base_url=server.url, max_retries=0, timeout=Timeouts(first_event=0.3))
    started = time.monotonic()
    with pytest.raises(RequestTimeoutError) as info:
        p.count_tokens(conversation())
    assert info.value.phase == "first_event" and info.value.provider == "anthropic"
    assert time.monotonic() - started < 2.0


def test_cancel_from_another_thread_stops_the_request(server: LoopbackServer) -> None:
    server.reply(SILENT)
    p = AnthropicProvider(KEY, base_url=server.url, max_retries=0)
    cancel = threading.Event()
    timer = threading.Timer(0.2, cancel.set)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(CancelledError):
            p.count_tokens(conversation(), cancel=cancel)
    finally:
        timer.join()
    assert 0.2 <= time.monotonic() - started < 1.0
    assert len(server.requests) == 1  # it was under way; the no_leaks check sees no thread or socket left


def test_a_cancel_already_set_sends_nothing(server: LoopbackServer) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CancelledError):
        AnthropicProvider(KEY, base_url=server.url).count_tokens(conversation(), cancel=cancel)
    with pytest.raises(CancelledError):
        LlamaCppProvider(base_url=server.url).check_fits(conversation(), cancel=cancel)
    assert server.requests == []


def test_counts_are_thread_safe_on_one_provider(server: LoopbackServer) -> None:
    for _ in range(8):
        server.reply(Reply.json({"input_tokens": 21}))
    p = AnthropicProvider(KEY, base_url=server.url, max_retries=0)
    got: List[int] = []
    threads = [threading.Thread(target=lambda: got.append(p.count_tokens(conversation()).input_tokens)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert got == [21] * 8


# -- fit checks --------------------------------------------------------------------------------


def test_check_fits_against_the_catalog_window(server: LoopbackServer) -> None:
    p = AnthropicProvider(KEY, base_url=server.url, max_retries=0)
    assert p.context_window() == 200_000
    server.reply(Reply.json({"input_tokens": 199_000}))
    assert p.check_fits(conversation()) == TokenCount(199_000, exact=True)
    server.reply(Reply.json({"input_tokens": 199_000}))
    with pytest.raises(ContextOverflowError) as info:
        p.check_fits(conversation(), max_output=2_000)
    err = info.value
    assert (err.requested_tokens, err.max_tokens) == (201_000, 200_000)
    assert err.provider == "anthropic" and err.model == "claude-sonnet-4-5" and not err.retryable
    assert "nothing was sent" in str(err) and "compact" in str(err)
    # Only the two counts went out: no completion request.
    assert [r.path for r in server.requests] == ["/v1/messages/count_tokens"] * 2


def test_check_fits_asks_llamacpp_for_its_n_ctx(server: LoopbackServer) -> None:
    server.reply(Reply.json({"prompt": "x"}))
    server.reply(Reply.json({"tokens": list(range(600))}))
    server.reply(Reply.json({"default_generation_settings": {"n_ctx": 512}, "total_slots": 1}))
    p = LlamaCppProvider(base_url=server.url, max_retries=0)
    with pytest.raises(ContextOverflowError) as info:
        p.check_fits(conversation())
    assert (info.value.requested_tokens, info.value.max_tokens) == (600, 512)
    assert [r.path for r in server.requests] == ["/apply-template", "/tokenize", "/props"]
    assert server.requests[2].method == "GET"
    # A window given to the provider wins: /props is not asked.
    server.reply(Reply.json({"prompt": "x"}))
    server.reply(Reply.json({"tokens": list(range(600))}))
    assert p.with_context_window(1000).check_fits(conversation()) == TokenCount(600, exact=True)
    assert [r.path for r in server.requests[3:]] == ["/apply-template", "/tokenize"]


def test_check_fits_asks_ollama_what_api_show_says(server: LoopbackServer) -> None:
    server.reply(Reply.json({"parameters": "temperature 0.7\nnum_ctx 8", "model_info": {"qwen3.context_length": 40960}}))
    p = OllamaProvider(base_url=server.url, model="qwen3:8b", max_retries=0)
    ctx = Context([ChatMessage.User("a long enough question to pass eight tokens of estimate")])
    with pytest.raises(ContextOverflowError) as info:
        p.check_fits(ctx)
    assert info.value.max_tokens == 8 and "estimated" in str(info.value)
    req = server.requests[0]
    assert (req.method, req.path, req.json()) == ("POST", "/api/show", {"model": "qwen3:8b"})
    # num_ctx set on the provider is the window: the server is not asked.
    assert p.with_options(num_ctx=4096).check_fits(ctx).exact is False
    assert len(server.requests) == 1


def test_show_window_reads_num_ctx_then_the_context_length() -> None:
    assert show_window({"parameters": "num_ctx 2048", "model_info": {"llama.context_length": 8192}}) == 2048
    assert show_window({"parameters": "stop <eos>", "model_info": {"gemma3.context_length": 131072}}) == 131072
    assert show_window({"model_info": {"general.architecture": "x"}}) is None
    assert show_window([]) is None


def test_check_fits_without_a_known_window_returns_the_count() -> None:
    ctx = conversation()
    assert FakeLlmProvider().check_fits(ctx) == TokenCount(ctx.estimated_token_count(), exact=False)
    with pytest.raises(ContextOverflowError) as info:
        FakeLlmProvider().with_context_window(3).check_fits(ctx)
    assert info.value.max_tokens == 3


def test_token_count_is_a_frozen_value() -> None:
    count = TokenCount(3, exact=True)
    with pytest.raises(AttributeError):
        count.input_tokens = 4  # type: ignore[misc]
    assert count == TokenCount(3, True) and hash(count) == hash(TokenCount(3, True))
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError):
            TokenCount(bad, exact=True)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        TokenCount(1, exact=1)  # type: ignore[arg-type]
