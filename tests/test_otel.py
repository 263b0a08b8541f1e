"""llm_sync.otel with the real OpenTelemetry SDK: one GenAI span per stream, the client metrics, content opt-in.

Every stream goes over HTTP on 127.0.0.1 to a server speaking the provider's wire format.
"""

from __future__ import annotations

import contextvars
import json
import logging
import threading
import time
from typing import Any, Dict, Iterator, List

import pytest

from llm_sync import ChatMessage, Context, InvalidApiKeyError, LlmResponseStream
from tests.support.faults import (
    FLAVORS,
    Flavor,
    Gate,
    fast_retries,
    flavor_params,
    silent_before_headers,
)
from tests.support.otel import Telemetry, telemetry_of
from tests.support.secrets import leaks
from tests.support.server import LoopbackServer, Reply, sse_event

pytest.importorskip("opentelemetry.sdk")

# What each provider family's span says: gen_ai.provider.name, gen_ai.operation.name, openai.api.type.
NAMES: Dict[str, Any] = {
    "anthropic": ("anthropic", "chat", None),
    "openai": ("openai", "chat", "responses"),
    "codex": ("openai", "chat", "responses"),
    "openai_compatible": ("openai_compatible", "chat", None),
    "gemini": ("gcp.gemini", "generate_content", None),
    "bedrock": ("aws.bedrock", "chat", None),
    "ollama": ("ollama", "chat", None),
}


@pytest.fixture
def otel(monkeypatch: pytest.MonkeyPatch) -> Iterator[Telemetry]:
    yield from telemetry_of(monkeypatch)


def _ask(provider: Any, text: str = "Hello") -> Any:
    with provider.stream_response(Context([ChatMessage.User(text)])) as stream:
        return stream.collect()


@pytest.mark.parametrize("flavor", flavor_params())
def test_one_span_per_stream_with_the_conventions_attributes(
    otel: Telemetry, server: LoopbackServer, flavor: Flavor
) -> None:
    server.reply(flavor.reply("Hello", " world"))
    provider = flavor.provider(server)
    collected = _ask(provider)
    assert collected.text == "Hello world"
    [span] = otel.spans
    a = dict(span.attributes)
    name, operation, api = NAMES[flavor.name]
    from opentelemetry.trace import SpanKind, StatusCode

    assert span.name == f"{operation} {provider.model_name}"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert a["gen_ai.operation.name"] == operation
    assert a["gen_ai.provider.name"] == name
    assert a["gen_ai.request.model"] == provider.model_name
    assert a["gen_ai.request.stream"] is True
    assert (a["server.address"], a["server.port"]) == ("127.0.0.1", server.port)
    assert a.get("openai.api.type") == api
    assert a["gen_ai.response.id"] == collected.message_id
    assert a["gen_ai.response.finish_reasons"] == (collected.raw_stop_reason or collected.stop_reason.value,)
    assert a["llm_sync.stop_reason"] == "end_turn"
    assert collected.usage is not None
    assert a["gen_ai.usage.input_tokens"] == collected.usage.input_tokens
    assert a["gen_ai.usage.output_tokens"] == collected.usage.output_tokens
    assert a["gen_ai.response.time_to_first_chunk"] > 0
    assert "error.type" not in a
    assert not [k for k in a if k in ("gen_ai.input.messages", "gen_ai.output.messages")]  # off by default
    # The three client metrics, with the convention's names, units and attributes.
    common = {"gen_ai.operation.name": operation, "gen_ai.provider.name": name,
              "gen_ai.request.model": provider.model_name, "server.address": "127.0.0.1", "server.port": server.port}
    [duration] = otel.points("gen_ai.client.operation.duration")
    assert _without(dict(duration.attributes), "gen_ai.response.model") == common and duration.count == 1
    assert otel.metric("gen_ai.client.operation.duration").unit == "s"
    assert 0.0 < duration.sum < 10.0
    tokens = {p.attributes["gen_ai.token.type"]: p for p in otel.points("gen_ai.client.token.usage")}
    assert tokens["input"].sum == collected.usage.input_tokens
    assert tokens["output"].sum == collected.usage.output_tokens
    assert otel.metric("gen_ai.client.token.usage").unit == "{token}"
    [first] = otel.points("gen_ai.client.operation.time_to_first_chunk")
    assert first.count == 1 and first.sum == pytest.approx(a["gen_ai.response.time_to_first_chunk"])
    assert first.sum <= duration.sum


CLOUD = {
    # provider class, its keywords, the flavor whose wire format it speaks, and what its span says
    # (openai.api.type belongs to the convention's OpenAI provider only, not Azure's)
    "azure-chat": ("AzureOpenAiProvider", {"model": "dep"}, "openai_compatible",
                   ("azure.ai.openai", "chat", None)),
    "azure-responses": ("AzureOpenAiProvider", {"model": "dep", "api": "responses"}, "openai",
                        ("azure.ai.openai", "chat", None)),
    "vertex-gemini": ("VertexGeminiProvider", {"model": "gemini-2.5-flash", "project": "p", "location": "us-east5"}, "gemini",
                      ("gcp.vertex_ai", "generate_content", None)),
    "vertex-claude": ("VertexAnthropicProvider", {"model": "claude-sonnet-4-5", "project": "p", "location": "us-east5"}, "anthropic",
                      ("gcp.vertex_ai", "chat", None)),
}


@pytest.mark.parametrize("cloud", sorted(CLOUD))
def test_cloud_deployments_name_their_platform(otel: Telemetry, server: LoopbackServer, cloud: str) -> None:
    import llm_sync

    cls, kw, wire, (name, operation, api) = CLOUD[cloud]
    server.reply(FLAVORS[wire].reply("Hi"))
    provider = getattr(llm_sync, cls)("secret-token", base_url=server.url, max_retries=0, **kw)
    assert _ask(provider).text == "Hi"
    [span] = otel.spans
    a = dict(span.attributes)
    assert (a["gen_ai.provider.name"], a["gen_ai.operation.name"], a.get("openai.api.type")) == (name, operation, api)
    assert span.name == f"{operation} {provider.model_name}"
    assert a["gen_ai.usage.output_tokens"] > 0


def _without(d: Dict[str, Any], *keys: str) -> Dict[str, Any]:
    return {k: v for k, v in d.items() if k not in keys}


def test_histograms_use_the_conventions_buckets(otel: Telemetry, server: LoopbackServer) -> None:
    flavor = FLAVORS["anthropic"]
    server.reply(flavor.reply("Hi"))
    _ask(flavor.provider(server))
    [duration] = otel.points("gen_ai.client.operation.duration")
    assert list(duration.explicit_bounds) == [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12,
                                              10.24, 20.48, 40.96, 81.92]
    token = otel.points("gen_ai.client.token.usage")[0]
    assert list(token.explicit_bounds) == [4.0**n for n in range(14)]
    assert list(otel.points("gen_ai.client.operation.time_to_first_chunk")[0].explicit_bounds) == list(
        duration.explicit_bounds
    )


def test_response_model_and_cached_tokens(otel: Telemetry, server: LoopbackServer) -> None:
    start = {"type": "message_start", "message": {
        "id": "msg_cached", "type": "message", "role": "assistant", "model": "claude-test-20260101", "content": [],
        "usage": {"input_tokens": 5, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20,
                  "output_tokens": 1}}}
    flavor = FLAVORS["anthropic"]
    server.reply(flavor.reply(steps=[sse_event("message_start", start), *flavor.start[1:], flavor.text("Hi"),
                                     *flavor.end]))
    collected = _ask(flavor.provider(server).with_max_tokens(77).with_temperature(0.5))
    a = dict(otel.spans[0].attributes)
    assert a["gen_ai.response.model"] == "claude-test-20260101"
    assert a["gen_ai.usage.input_tokens"] == collected.usage.input_tokens == 125  # cached ones included
    assert a["gen_ai.usage.cache_read.input_tokens"] == 100
    assert a["gen_ai.usage.cache_creation.input_tokens"] == 20
    assert (a["gen_ai.request.max_tokens"], a["gen_ai.request.temperature"]) == (77, 0.5)
    [duration] = otel.points("gen_ai.client.operation.duration")
    assert duration.attributes["gen_ai.response.model"] == "claude-test-20260101"


def test_the_callers_span_is_the_parent_and_the_reader_thread_runs_under_the_stream_span(
    otel: Telemetry, server: LoopbackServer
) -> None:
    from opentelemetry import trace

    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
    seen: List[Any] = []

    class OnReader(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if getattr(record, "llm_sync_event", None) == "request":
                seen.append((threading.current_thread().name,
                             trace.get_current_span().get_span_context().span_id, request_id.get()))

    log = logging.getLogger("llm_sync")
    handler = OnReader(logging.DEBUG)
    log.addHandler(handler)
    level = log.level
    log.setLevel(logging.DEBUG)
    flavor = FLAVORS["openai"]
    server.reply(flavor.reply("Hi"))
    try:
        tracer = otel.tracer_provider.get_tracer("test")
        with tracer.start_as_current_span("handle request") as parent:
            request_id.set("req-42")
            # Read on another thread than the one that started it: the parent is the starter's span.
            stream = flavor.provider(server).stream_response(Context([ChatMessage.User("Hi")]))
        box: List[Any] = []
        reader = threading.Thread(target=lambda: box.append(stream.collect()))
        reader.start()
        reader.join(10)
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
    assert box and box[0].text == "Hi"
    genai = next(s for s in otel.spans if s.name.startswith("chat "))
    assert genai.parent is not None and genai.parent.span_id == parent.get_span_context().span_id
    assert genai.context.trace_id == parent.get_span_context().trace_id
    [(thread, current, rid)] = seen
    assert thread.startswith("llm_sync-openai-")
    assert current == genai.context.span_id  # the reader's requests would be children of the stream's span
    assert rid == "req-42"  # and it sees the caller's context variables


def test_run_many_streams_are_children_of_the_span_current_when_it_was_called(
    otel: Telemetry, server: LoopbackServer
) -> None:
    from llm_sync import run_many

    flavor = FLAVORS["anthropic"]
    server.reply(*(flavor.reply("Hi") for _ in range(3)))
    contexts = [Context([ChatMessage.User(f"q{i}")]) for i in range(3)]
    with otel.tracer_provider.get_tracer("test").start_as_current_span("batch") as parent:
        results = run_many(flavor.provider(server), contexts, max_workers=3)
    assert [r.response.text for r in sorted(results, key=lambda r: r.index)] == ["Hi"] * 3  # read outside it
    genai = [s for s in otel.spans if s.name.startswith("chat ")]
    assert len(genai) == 3
    assert {s.parent.span_id for s in genai if s.parent is not None} == {parent.get_span_context().span_id}


def test_close_from_another_thread_ends_the_span_within_100_ms(otel: Telemetry, server: LoopbackServer) -> None:
    flavor = FLAVORS["anthropic"]
    gate = Gate()
    server.reply(silent_before_headers(gate, flavor.reply("late")))
    stream = flavor.provider(server, timeout=30).stream_response(Context([ChatMessage.User("Hi")]))
    ended = threading.Event()
    consumer = threading.Thread(target=lambda: (list(stream), ended.set()))
    consumer.start()
    try:
        server.wait_for_requests(1)
        time.sleep(0.05)  # the consumer is blocked waiting for the first event
        assert not otel.spans
        started = time.monotonic()
        stream.close()
        took = time.monotonic() - started
        assert otel.spans, "the span did not end with close()"
        assert took < 0.1, took
        consumer.join(2)
        assert ended.is_set()
    finally:
        gate.open()
        consumer.join(5)
    [span] = otel.spans
    from opentelemetry.trace import StatusCode

    assert span.attributes["error.type"] == "cancelled"
    assert span.status.status_code is StatusCode.UNSET  # a cancel is the caller's choice, not a failure
    assert span.end_time - span.start_time < 5e9
    [duration] = otel.points("gen_ai.client.operation.duration")
    assert duration.attributes["error.type"] == "cancelled"
    assert not otel.points("gen_ai.client.token.usage")


def test_a_401_sets_error_type_and_the_error_status(otel: Telemetry, server: LoopbackServer) -> None:
    flavor = FLAVORS["openai_compatible"]
    server.reply(Reply.json(flavor.error_json(401), status=401))
    with pytest.raises(InvalidApiKeyError):
        _ask(flavor.provider(server))
    [span] = otel.spans
    from opentelemetry.trace import StatusCode

    assert span.attributes["error.type"] == "InvalidApiKeyError"
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "InvalidApiKeyError (HTTP 401)"
    [duration] = otel.points("gen_ai.client.operation.duration")
    assert duration.attributes["error.type"] == "InvalidApiKeyError"
    assert not otel.points("gen_ai.client.operation.time_to_first_chunk")


def test_retries_are_events_of_the_one_span(otel: Telemetry, server: LoopbackServer) -> None:
    flavor = FLAVORS["anthropic"]
    server.reply(Reply.json(flavor.error_json(529), status=529), Reply.json(flavor.error_json(500), status=500),
                 flavor.reply("Hi"))
    assert _ask(fast_retries(flavor.provider(server))).text == "Hi"
    [span] = otel.spans
    events = [e for e in span.events if e.name == "llm_sync.retry"]
    assert [(e.attributes["llm_sync.retry.attempt"], e.attributes["http.response.status_code"],
             e.attributes["error.type"]) for e in events] == [(1, 529, "ServerError"), (2, 500, "ServerError")]
    assert all(0 <= e.attributes["llm_sync.retry.wait"] < 0.1 for e in events)
    assert "error.type" not in span.attributes


def test_an_error_before_sending_is_one_failed_span(otel: Telemetry, server: LoopbackServer) -> None:
    from llm_sync import ContentBlock, UnsupportedContentError

    flavor = FLAVORS["openai_compatible"]
    audio = ContentBlock.Audio.from_bytes(b"RIFF....WAVE", "audio/wav")
    with pytest.raises(UnsupportedContentError):
        with flavor.provider(server).stream_response(Context([ChatMessage.User([audio])])) as stream:
            stream.collect()
    [span] = otel.spans
    assert span.attributes["error.type"] == "UnsupportedContentError"
    assert not server.requests


def test_a_dropped_stream_still_ends_its_span(otel: Telemetry, server: LoopbackServer) -> None:
    import gc

    flavor = FLAVORS["anthropic"]
    server.reply(flavor.reply("Hi"))
    stream = flavor.provider(server).stream_response(Context([ChatMessage.User("Hi")]))
    next(stream)
    del stream
    gc.collect()
    deadline = time.monotonic() + 2
    while not otel.spans and time.monotonic() < deadline:
        time.sleep(0.01)
    [span] = otel.spans
    assert span.attributes["error.type"] == "cancelled"


# -- content capture ------------------------------------------------------------------------


def test_content_capture_on_the_span(monkeypatch: pytest.MonkeyPatch, server: LoopbackServer) -> None:
    flavor = FLAVORS["anthropic"]
    server.reply(flavor.reply("Paris", " is rainy"))
    context = Context([ChatMessage.System("Be brief."), ChatMessage.User("Weather in Paris?")])
    for t in telemetry_of(monkeypatch, "SPAN_ONLY"):
        with flavor.provider(server).stream_response(context) as stream:
            stream.collect()
        a = dict(t.spans[0].attributes)
        assert json.loads(a["gen_ai.system_instructions"]) == [{"type": "text", "content": "Be brief."}]
        assert json.loads(a["gen_ai.input.messages"]) == [
            {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]}
        ]
        assert json.loads(a["gen_ai.output.messages"]) == [
            {"role": "assistant", "parts": [{"type": "text", "content": "Paris is rainy"}], "finish_reason": "end_turn"}
        ]
        assert not t.log_records()


def test_content_capture_as_the_conventions_event(monkeypatch: pytest.MonkeyPatch, server: LoopbackServer) -> None:
    flavor = FLAVORS["openai"]
    server.reply(flavor.reply("Hi"))
    for t in telemetry_of(monkeypatch, "EVENT_ONLY"):
        _ask(flavor.provider(server), "Say hi")
        span = t.spans[0]
        assert "gen_ai.input.messages" not in span.attributes
        [record] = t.log_records()
        assert record.event_name == "gen_ai.client.inference.operation.details"
        assert record.span_id == span.context.span_id
        a = dict(record.attributes)
        assert a["gen_ai.provider.name"] == "openai" and a["gen_ai.request.model"] == "gpt-test"
        assert a["gen_ai.input.messages"][0]["parts"][0]["content"] == "Say hi"
        # Structured on the event, as the convention asks (the SDK keeps sequences as tuples).
        [output] = a["gen_ai.output.messages"]
        assert [dict(p) for p in output["parts"]] == [{"type": "text", "content": "Hi"}]


def test_a_bad_capture_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from llm_sync import otel

    monkeypatch.setenv(otel.CAPTURE_VARIABLE, "everything")
    with pytest.raises(ValueError, match="NO_CONTENT, SPAN_ONLY, EVENT_ONLY, SPAN_AND_EVENT"):
        otel.instrument()
    assert not otel.is_instrumented()


# -- no secrets, no cost --------------------------------------------------------------------


@pytest.mark.parametrize("flavor", flavor_params())
def test_a_planted_key_appears_in_no_span_event_metric_or_log_record(
    monkeypatch: pytest.MonkeyPatch, server: LoopbackServer, flavor: Flavor, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.support.faults import KEYS

    key = KEYS[flavor.name]
    echo = json.loads(json.dumps(flavor.error_json(401)).replace("the field", f"Incorrect API key provided: {key}; the"))
    echo503 = json.loads(json.dumps(flavor.error_json(500)).replace("the field", f"key {key} overloaded; the"))
    caplog.set_level(logging.DEBUG, logger="llm_sync")
    for t in telemetry_of(monkeypatch, "SPAN_AND_EVENT"):
        server.reply(Reply.json(echo503, status=500), flavor.reply("Hi"), Reply.json(echo, status=401))
        provider = fast_retries(flavor.provider(server))
        assert _ask(provider, f"my key is {key}").text == "Hi"  # content capture on, the key in the prompt
        with pytest.raises(InvalidApiKeyError):
            _ask(provider)
        text = t.everything()
        assert "gen_ai.input.messages" in text and "llm_sync.retry" in text  # the check looks at all of it
        assert not leaks(text, key)
    records = [r for r in caplog.records if r.name.startswith("llm_sync")]
    assert {getattr(r, "llm_sync_event", None) for r in records} >= {"request", "retry", "end", "error"}
    for r in records:
        assert not leaks(r.getMessage() + repr(vars(r)), key), r.getMessage()


def test_streams_are_plain_when_not_instrumented(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    flavor = FLAVORS["anthropic"]
    server.reply(flavor.reply("a"), flavor.reply("b"), flavor.reply("c"))
    provider = flavor.provider(server)
    with provider.stream_response(Context()) as s:
        assert type(s) is LlmResponseStream and s._observer is None
        s.collect()
    for _ in telemetry_of(monkeypatch):
        with provider.stream_response(Context()) as s:
            assert type(s) is not LlmResponseStream and s._observer is not None
            s.collect()
    with provider.stream_response(Context()) as s:  # uninstrumented again
        assert type(s) is LlmResponseStream and s._observer is None
        s.collect()


def test_an_observer_that_raises_never_breaks_a_stream(
    server: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    from llm_sync import _observe

    class Broken(_observe.Observer):
        def first_chunk(self) -> None:
            raise RuntimeError("observer bug")

        def end(self, seen: Any, error: Any, cancelled: bool) -> None:
            raise RuntimeError("observer bug")

    flavor = FLAVORS["anthropic"]
    server.reply(flavor.reply("Hi"), flavor.reply("again"))
    old = _observe.set_watcher(lambda info: Broken())
    try:
        assert _ask(flavor.provider(server)).text == "Hi"
        assert _ask(flavor.provider(server)).text == "again"
    finally:
        _observe.set_watcher(old)
    warnings = [r for r in caplog.records if getattr(r, "llm_sync_event", None) == "observer_error"]
    assert len(warnings) == 2  # once per method, not once per stream
