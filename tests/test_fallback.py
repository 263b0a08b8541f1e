"""FallbackProvider over real HTTP: each provider has its own loopback server, so "no request" is what that server saw."""

from __future__ import annotations

import gc
import pickle
import threading
import time
import weakref
from typing import Iterator, List

import pytest

from llm_sync import (
    AlloyedModelProvider,
    AllProvidersFailedError,
    ChatMessage,
    ContentBlock,
    Context,
    ContextOverflowError,
    FallbackProvider,
    InvalidApiKeyError,
    LlmResponse,
    LlmResponseStream,
    RateLimitedError,
    ServerError,
    StreamingModelProvider,
    StreamInterruptedError,
    UnknownModelError,
    parse_model,
)
from llm_sync.providers import AnthropicProvider, GeminiProvider, OpenAiProvider
from tests.support.faults import FLAVORS, fast_retries
from tests.support.server import LoopbackServer, Reply, Reset, Stall

ANTHROPIC, OPENAI, GEMINI = FLAVORS["anthropic"], FLAVORS["openai"], FLAVORS["gemini"]


@pytest.fixture
def servers() -> Iterator[List[LoopbackServer]]:
    with LoopbackServer() as a, LoopbackServer() as b, LoopbackServer() as c:
        yield [a, b, c]


def ctx() -> Context:
    return Context([ChatMessage.User("Hello")])


def anthropic(server: LoopbackServer, retries: int = 0, model: str = "claude-test") -> AnthropicProvider:
    return AnthropicProvider("sk-ant-test", model=model, base_url=server.url, max_retries=retries)


def openai(server: LoopbackServer, retries: int = 0, model: str = "gpt-test") -> OpenAiProvider:
    return OpenAiProvider("sk-test", model=model, base_url=server.url, max_retries=retries)


def gemini(server: LoopbackServer, model: str = "gemini-test") -> GeminiProvider:
    return GeminiProvider("AIza-test", model=model, base_url=server.url, max_retries=0)


def error(status: int, kind: str, message: str, **headers: str) -> Reply:
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return Reply.json(body, status=status, headers=headers)


def test_a_503_before_content_goes_to_the_next_provider_after_its_own_retries(servers: List[LoopbackServer]) -> None:
    a, b, _ = servers
    a.reply(error(503, "api_error", "down"), error(503, "api_error", "still down"))
    b.reply(OPENAI.reply("Hi", " there"))
    fallback = FallbackProvider([fast_retries(anthropic(a), max_retries=1), openai(b)])
    with fallback.stream_response(ctx()) as stream:
        assert isinstance(stream, LlmResponseStream)
        chunks = list(stream)
    assert len(a.requests) == 2 and len(b.requests) == 1  # its own retry first, then the next provider
    assert [type(c).__name__ for c in chunks] == ["Start", "Text", "Text", "Usage", "Done"]
    assert chunks[0] == LlmResponse.Start("resp_fault_1")  # one Start: the answering provider's
    assert (stream.provider, stream.model) == ("openai", "gpt-test")
    reply = stream.partial()
    assert reply.text == "Hi there" and reply.complete and reply.provider == "openai"


def test_a_reset_after_content_is_raised_and_the_next_provider_sees_no_request(servers: List[LoopbackServer]) -> None:
    a, b, _ = servers
    a.reply(ANTHROPIC.reply(steps=[*ANTHROPIC.start, ANTHROPIC.text("one"), ANTHROPIC.text("two"), Reset()]))
    stream = FallbackProvider([anthropic(a), openai(b)]).stream_response(ctx())
    texts = []
    with pytest.raises(StreamInterruptedError) as info:
        for chunk in stream:
            if isinstance(chunk, LlmResponse.Text):
                texts.append(chunk.chunk)
    assert texts == ["one", "two"]
    assert info.value.provider == "anthropic"
    assert b.requests == [] and stream.closed
    assert stream.partial().text == "onetwo"


def test_an_overflow_goes_to_a_provider_with_a_larger_window(servers: List[LoopbackServer]) -> None:
    a, b, c = servers
    a.reply(error(400, "invalid_request_error", "prompt is too long: 250000 tokens > 200000 maximum"))
    c.reply(GEMINI.reply("Fits."))
    small = openai(b, model="gpt-4o")  # 128k: not tried
    fallback = FallbackProvider([anthropic(a, model="claude-sonnet-4-5"), small, gemini(c, model="gemini-2.5-flash")])
    assert small.context_window() == 128_000 and fallback.context_window() == 1_048_576
    reply = fallback.stream_response(ctx()).collect()
    assert reply.text == "Fits." and reply.provider == "gemini"
    assert len(a.requests) == 1 and b.requests == [] and len(c.requests) == 1


def test_an_overflow_goes_to_a_provider_whose_window_is_unknown(servers: List[LoopbackServer]) -> None:
    a, b, _ = servers
    a.reply(error(400, "invalid_request_error", "prompt is too long: 250000 tokens > 200000 maximum"))
    b.reply(OPENAI.reply("Maybe."))
    unknown = openai(b, model="gpt-test")  # not in the catalog: its window may be larger
    assert unknown.context_window() is None
    reply = FallbackProvider([anthropic(a, model="claude-sonnet-4-5"), unknown]).stream_response(ctx()).collect()
    assert reply.text == "Maybe." and len(b.requests) == 1


def test_an_overflow_skips_every_smaller_window_and_says_so(servers: List[LoopbackServer]) -> None:
    a, b, _ = servers
    a.reply(error(400, "invalid_request_error", "prompt is too long: 250000 tokens > 200000 maximum"))
    fallback = FallbackProvider([anthropic(a, model="claude-sonnet-4-5"), openai(b, model="gpt-4o")])
    with pytest.raises(AllProvidersFailedError) as info:
        fallback.stream_response(ctx()).collect()
    first, second = info.value.errors
    assert isinstance(first, ContextOverflowError) and first.requested_tokens == 250_000
    assert isinstance(second, ContextOverflowError) and second.max_tokens == 128_000
    assert "not tried" in second.message and b.requests == []
    assert not info.value.retryable and info.value.retry_after is None


def test_content_the_first_provider_cannot_take_goes_to_one_that_can(servers: List[LoopbackServer]) -> None:
    a, b, _ = servers
    b.reply(GEMINI.reply("I hear it."))
    audio = Context([ChatMessage.User([ContentBlock.Text("Listen"), ContentBlock.Audio("UklGRg==", "audio/wav")])])
    reply = FallbackProvider([anthropic(a), gemini(b)]).stream_response(audio).collect()
    assert reply.text == "I hear it." and a.requests == []  # refused before anything was sent


def test_an_error_about_the_request_is_raised_as_it_is(servers: List[LoopbackServer]) -> None:
    a, b, _ = servers
    a.reply(error(401, "authentication_error", "invalid x-api-key"))
    with pytest.raises(InvalidApiKeyError):
        FallbackProvider([anthropic(a), openai(b)]).stream_response(ctx()).collect()
    assert b.requests == []


def test_when_every_provider_fails_the_error_carries_each_one(servers: List[LoopbackServer]) -> None:
    a, b, c = servers
    a.reply(error(529, "overloaded_error", "Overloaded"))
    b.reply(Reply.json({"error": {"message": "slow down", "type": "requests"}}, status=429, headers={"retry-after": "20"}))
    c.reply(Reply.json({"error": {"code": 503, "message": "unavailable", "status": "UNAVAILABLE"}}, status=503))
    fallback = FallbackProvider([anthropic(a), openai(b), gemini(c)], cooldown=7.0)
    stream = fallback.stream_response(ctx())
    with pytest.raises(AllProvidersFailedError) as info:
        list(stream)
    err = info.value
    assert [type(e) for e in err.errors] == [ServerError, RateLimitedError, ServerError]
    assert [e.provider for e in err.errors] == ["anthropic", "openai", "gemini"]
    text = str(err)
    for name in ("Anthropic (claude-test): ServerError (HTTP 529)", "OpenAI (gpt-test): RateLimitedError (HTTP 429)",
                 "Gemini (gemini-test): ServerError (HTTP 503)"):
        assert name in text
    assert err.retryable and err.retry_after is not None and 3.0 < err.retry_after <= 7.0  # the first to cool off
    assert stream.closed and stream.partial().text == ""
    # Now every one cools down: the next request sends nothing and says how long to wait.
    with pytest.raises(AllProvidersFailedError) as again:
        fallback.stream_response(ctx()).collect()
    assert all("not tried: cooling down" in e.message for e in again.value.errors)
    assert [len(s.requests) for s in servers] == [1, 1, 1]


def test_a_retry_after_cools_the_provider_down_for_every_thread(servers: List[LoopbackServer]) -> None:
    a, b, _ = servers
    a.reply(error(429, "rate_limit_error", "slow down", **{"retry-after": "30"}))
    b.reply(*[OPENAI.reply(f"answer {i}") for i in range(9)])
    # Its own policy would wait the 30 s (twice); within the fallback it gives up at once.
    fallback = FallbackProvider([anthropic(a, retries=2), openai(b)])
    started = time.monotonic()
    assert fallback.stream_response(ctx()).collect().provider == "openai"
    assert time.monotonic() - started < 2.0
    left, why = fallback.cooling(0)  # type: ignore[misc]
    assert 28 < left <= 30 and isinstance(why, RateLimitedError)

    answered: List[str] = []
    barrier = threading.Barrier(8)

    def ask() -> None:
        barrier.wait(5)
        answered.append(fallback.stream_response(ctx()).collect().provider)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert answered == ["openai"] * 8
    assert len(a.requests) == 1 and len(b.requests) == 9  # nothing more went to the cooling provider


def test_a_provider_is_tried_again_once_its_cooldown_ends(servers: List[LoopbackServer]) -> None:
    a, b, _ = servers
    a.reply(error(429, "rate_limit_error", "slow down", **{"retry-after-ms": "300"}), ANTHROPIC.reply("back"))
    b.reply(OPENAI.reply("meanwhile"))
    fallback = FallbackProvider([anthropic(a), openai(b)])
    assert fallback.stream_response(ctx()).collect().text == "meanwhile"
    # (Skipping it while it cools down is the test above; a second request here would race the 0.3 s.)
    left, _ = fallback.cooling(0)  # type: ignore[misc]
    assert 0 < left <= 0.3 and len(a.requests) == 1
    deadline = time.monotonic() + 2.0
    while fallback.cooling(0) is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fallback.cooling(0) is None
    assert fallback.stream_response(ctx()).collect().text == "back"
    assert len(a.requests) == 2


def test_a_switch_leaves_nothing_for_the_garbage_collector(servers: List[LoopbackServer]) -> None:
    # The errors a fallback keeps (for its cooldowns and the final error) hold no frames:
    # otherwise the stream, the providers and their pooled sockets would wait for a collection.
    a, b, _ = servers
    a.reply(error(503, "api_error", "down"), error(503, "api_error", "down"))
    b.reply(OPENAI.reply("Hi"), Reply.json({"error": {"message": "down", "type": "server_error"}}, status=503))
    fallback = FallbackProvider([anthropic(a), openai(b)], cooldown=0.0)
    gc.collect()
    gc.disable()
    try:
        stream = fallback.stream_response(ctx())
        assert stream.collect().text == "Hi"
        answered = weakref.ref(stream)
        del stream
        assert answered() is None
        stream = fallback.stream_response(ctx())
        try:
            list(stream)
        except AllProvidersFailedError as err:
            kinds = [type(e).__name__ for e in err.errors]
        assert kinds == ["ServerError", "ServerError"]
        failed = weakref.ref(stream)
        del stream
        assert failed() is None
        provider = weakref.ref(fallback.providers[0])
        del fallback
        assert provider() is None
    finally:
        gc.enable()


class Gated(StreamingModelProvider):
    """A real provider whose stream_response waits for a gate first: the moment of a switch, held open."""

    def __init__(self, inner: StreamingModelProvider) -> None:
        self.inner = inner
        self.entered = threading.Event()
        self.gate = threading.Event()

    def stream_response(self, context: Context) -> LlmResponseStream:
        self.entered.set()
        assert self.gate.wait(5)
        return self.inner.stream_response(context)

    def display_name(self) -> str:
        return self.inner.display_name()


def test_close_from_another_thread_during_a_switch_leaves_nothing_running(servers: List[LoopbackServer]) -> None:
    a, b, _ = servers
    a.reply(error(503, "api_error", "down"))
    b.reply(OPENAI.reply(steps=[Stall(10.0)]))
    second = Gated(openai(b))
    stream = FallbackProvider([anthropic(a), second]).stream_response(ctx())
    outcome: List[object] = []
    consumer = threading.Thread(target=lambda: outcome.append(list(stream)))
    consumer.start()
    assert second.entered.wait(5)  # the consumer is switching to the second provider now
    started = time.monotonic()
    stream.close()
    assert time.monotonic() - started < 0.5  # no wait for the switch in progress
    second.gate.set()  # its stream starts after the close: it must be closed at once
    consumer.join(5)
    assert outcome == [[]] and stream.closed
    b.wait_for_open_connections(0, timeout=2.0)


def test_close_from_another_thread_while_the_next_provider_is_silent(servers: List[LoopbackServer]) -> None:
    a, b, _ = servers
    a.reply(error(503, "api_error", "down"))
    b.reply(OPENAI.reply(steps=[Stall(10.0)]))
    stream = FallbackProvider([anthropic(a), openai(b)]).stream_response(ctx())
    outcome: List[object] = []
    consumer = threading.Thread(target=lambda: outcome.append(list(stream)))
    consumer.start()
    b.wait_for_requests(1)
    time.sleep(0.05)
    started = time.monotonic()
    stream.close()
    consumer.join(2)
    assert time.monotonic() - started < 0.5 and outcome == [[]]
    assert stream.provider == "openai"
    b.wait_for_open_connections(0, timeout=2.0)


def test_configuration_pickles_and_names_itself(servers: List[LoopbackServer]) -> None:
    a, b, _ = servers
    fallback = FallbackProvider([anthropic(a, model="claude-sonnet-4-5"), openai(b, model="gpt-4o")], cooldown=2.5)
    copy = pickle.loads(pickle.dumps(fallback))
    assert isinstance(copy, FallbackProvider) and copy.cooldown == 2.5 and copy.max_retry_after == 5.0
    assert [p.display_name() for p in copy.providers] == ["Anthropic (claude-sonnet-4-5)", "OpenAI (gpt-4o)"]
    assert fallback.display_name() == "Anthropic (claude-sonnet-4-5) > OpenAI (gpt-4o)"
    assert fallback.model() == fallback.providers[0].model()
    assert fallback.context_window() == 200_000
    assert "FallbackProvider([Anthropic" in repr(fallback)
    with pytest.raises(ValueError, match="at least one provider"):
        FallbackProvider([])
    with pytest.raises(TypeError, match="StreamingModelProvider"):
        FallbackProvider(["anthropic"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="cooldown"):
        FallbackProvider([fallback], cooldown=-1)


def test_model_strings_with_greater_than_and_commas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    provider, model = parse_model("anthropic:claude-sonnet-4-5 > openai:gpt-4o")
    assert isinstance(provider, FallbackProvider) and model.model_id == "claude-sonnet-4-5"
    assert [p.display_name() for p in provider.providers] == ["Anthropic (claude-sonnet-4-5)", "OpenAI (gpt-4o)"]
    both, _ = parse_model("anthropic:claude-sonnet-4-5>openai:gpt-4o,openai:gpt-4.1")
    assert isinstance(both, AlloyedModelProvider)
    assert [type(p) for p in both.providers] == [FallbackProvider, OpenAiProvider]
    three, _ = parse_model("openai:gpt-4o>anthropic:claude-sonnet-4-5>openai:gpt-4.1")
    assert isinstance(three, FallbackProvider)
    assert [p.display_name() for p in three.providers] == ["OpenAI (gpt-4o)", "Anthropic (claude-sonnet-4-5)", "OpenAI (gpt-4.1)"]
    with pytest.raises(UnknownModelError, match="empty piece between '>'"):
        parse_model("anthropic:claude-sonnet-4-5>>openai:gpt-4o")
