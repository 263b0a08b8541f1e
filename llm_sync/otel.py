"""OpenTelemetry for every stream: one GenAI span, the GenAI client metrics, opt-in content (extra ``otel``).

``instrument()`` makes each stream started from then on one span following the
OpenTelemetry GenAI semantic conventions (docs/observability.rst lists every
attribute, metric and event, and the values each provider gets). Only
``opentelemetry-api`` is needed; the application brings the SDK and exporters.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from . import _observe
from ._messages import ChatMessage
from ._observe import Observer, StreamInfo, describe, last_usage
from ._redact import redact
from ._response import Reasoning, Start, Text, ToolRequestComplete
from ._version import __version__

if TYPE_CHECKING:
    from ._context import Context

__all__ = ["CAPTURE_VARIABLE", "instrument", "is_instrumented", "uninstrument"]

#: The environment variable that opts in to capturing prompts and answers (read by
#: ``instrument()``): ``NO_CONTENT`` (the default), ``SPAN_ONLY``, ``EVENT_ONLY`` or
#: ``SPAN_AND_EVENT``; ``true`` means ``SPAN_ONLY`` and ``false`` ``NO_CONTENT``.
CAPTURE_VARIABLE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_CAPTURE_MODES = {
    "no_content": (False, False),
    "false": (False, False),
    "": (False, False),
    "span_only": (True, False),
    "true": (True, False),
    "event_only": (False, True),
    "span_and_event": (True, True),
}

#: The event that carries captured content (EVENT_ONLY, SPAN_AND_EVENT), as the convention names it.
DETAILS_EVENT = "gen_ai.client.inference.operation.details"
#: The span event for each retry before content (not a convention name: it has none).
RETRY_EVENT = "llm_sync.retry"

# The bucket boundaries the convention gives for each histogram.
_SECONDS_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_TOKEN_BUCKETS = tuple(float(4**n) for n in range(14))  # 1, 4, 16, ... 67108864

_lock = threading.Lock()


def instrument(
    tracer_provider: Any = None, meter_provider: Any = None, *, logger_provider: Any = None
) -> None:
    """Make every stream started from now on one GenAI span, and record the GenAI client metrics.

    The providers default to the global ones OpenTelemetry was configured with.
    ``logger_provider`` is used only for content events (``EVENT_ONLY`` or
    ``SPAN_AND_EVENT`` in :data:`CAPTURE_VARIABLE`). Calling it again replaces the
    previous instrumentation; streams already running keep theirs.
    """
    try:
        from opentelemetry import metrics, trace
    except ImportError:
        raise ImportError(
            "llm_sync.otel needs opentelemetry-api: pip install 'llm-sync[otel]' "
            "(and an OpenTelemetry SDK to export what it records)"
        ) from None
    raw = os.environ.get(CAPTURE_VARIABLE, "").strip()
    mode = _CAPTURE_MODES.get(raw.lower())
    if mode is None:
        raise ValueError(
            f"{CAPTURE_VARIABLE}={raw!r} is not one of NO_CONTENT, SPAN_ONLY, EVENT_ONLY, SPAN_AND_EVENT "
            "(or true/false); unset it to capture no content"
        )
    tracer = trace.get_tracer("llm_sync", __version__, tracer_provider=tracer_provider)
    meter = metrics.get_meter("llm_sync", __version__, meter_provider=meter_provider)
    events = None
    if mode[1]:
        from opentelemetry import _logs

        events = _logs.get_logger("llm_sync", __version__, logger_provider=logger_provider)
    with _lock:
        _observe.set_watcher(_Instruments(tracer, meter, events, capture_span=mode[0]))


def uninstrument() -> None:
    """Stop watching streams started from now on (running ones finish their spans)."""
    with _lock:
        _observe.set_watcher(None)


def is_instrumented() -> bool:
    """Whether :func:`instrument` is in force."""
    return isinstance(_observe.watcher(), _Instruments)


class _Instruments:
    """The tracer, the three histograms and the content settings: makes each stream's observer."""

    def __init__(self, tracer: Any, meter: Any, events: Any, *, capture_span: bool) -> None:
        self.tracer = tracer
        self.events = events
        self.capture_span = capture_span
        self.duration = _histogram(
            meter, "gen_ai.client.operation.duration", "s", "GenAI operation duration.", _SECONDS_BUCKETS
        )
        self.tokens = _histogram(
            meter, "gen_ai.client.token.usage", "{token}", "Number of input and output tokens used.", _TOKEN_BUCKETS
        )
        self.first_chunk = _histogram(
            meter,
            "gen_ai.client.operation.time_to_first_chunk",
            "s",
            "Time to receive the first chunk, from when the request is issued.",
            _SECONDS_BUCKETS,
        )

    def __call__(self, info: StreamInfo) -> Observer:
        return _SpanObserver(self, info)


def _histogram(meter: Any, name: str, unit: str, description: str, buckets: Sequence[float]) -> Any:
    try:
        return meter.create_histogram(name, unit, description, explicit_bucket_boundaries_advisory=list(buckets))
    except TypeError:  # an API older than the bucket advisory (1.23)
        return meter.create_histogram(name, unit, description)


class _SpanObserver(Observer):
    """One stream's span, from its start on the caller's thread to its end on whichever thread ends it."""

    def __init__(self, instruments: _Instruments, info: StreamInfo) -> None:
        from opentelemetry.trace import SpanKind

        self.instruments = instruments
        self.info = info
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.done = False
        common: Dict[str, Any] = {
            "gen_ai.operation.name": info.operation,
            "gen_ai.provider.name": info.genai_provider,
            "gen_ai.request.model": info.model,
        }
        if info.url:
            parts = urlsplit(info.url)
            if parts.hostname:
                common["server.address"] = parts.hostname
                common["server.port"] = parts.port or (443 if parts.scheme == "https" else 80)
        self.common = common
        attributes = dict(common)
        attributes["gen_ai.request.stream"] = True
        if info.max_tokens is not None:
            attributes["gen_ai.request.max_tokens"] = info.max_tokens
        if info.temperature is not None:
            attributes["gen_ai.request.temperature"] = info.temperature
        if info.api is not None and info.genai_provider == "openai":
            attributes["openai.api.type"] = info.api
        self.request_attributes = attributes
        # Started here, on the thread that called stream_response: its current span is the parent.
        self.span = instruments.tracer.start_span(
            f"{info.operation} {info.model}", kind=SpanKind.CLIENT, attributes=attributes
        )

    def enter(self) -> None:
        from opentelemetry import context, trace

        # In the reader thread's own copy of the caller's context, which is dropped
        # with the thread: nothing to detach.
        context.attach(trace.set_span_in_context(self.span))

    def retry(self, error: BaseException, wait: float, attempt: int) -> None:
        if self.done:
            return
        attributes: Dict[str, Any] = {
            "error.type": type(error).__name__,
            "llm_sync.retry.attempt": attempt,
            "llm_sync.retry.wait": wait,
        }
        status = getattr(error, "status", None)
        if isinstance(status, int):
            attributes["http.response.status_code"] = status
        self.span.add_event(RETRY_EVENT, attributes)

    def first_chunk(self) -> None:
        if self.done:
            return
        seconds = time.monotonic() - self.started
        self.span.set_attribute("gen_ai.response.time_to_first_chunk", seconds)
        self.instruments.first_chunk.record(seconds, self.common)

    def end(self, seen: Sequence[Any], error: Optional[BaseException], cancelled: bool) -> None:
        with self.lock:
            if self.done:
                return
            self.done = True
        from opentelemetry.trace import StatusCode

        duration = time.monotonic() - self.started
        span = self.span
        start = seen[0] if seen and seen[0].__class__ is Start else None
        usage, done = last_usage(seen)
        metric_attributes = dict(self.common)
        attributes: Dict[str, Any] = {}
        if start is not None:
            attributes["gen_ai.response.id"] = start.message_id
            if start.model:
                attributes["gen_ai.response.model"] = metric_attributes["gen_ai.response.model"] = start.model
        if done is not None:
            reason = done.raw_stop_reason or (done.stop_reason.value if done.stop_reason is not None else None)
            if reason:
                attributes["gen_ai.response.finish_reasons"] = [reason]
            if done.stop_reason is not None:
                attributes["llm_sync.stop_reason"] = done.stop_reason.value
        if usage is not None:
            attributes["gen_ai.usage.input_tokens"] = usage.input_tokens
            attributes["gen_ai.usage.output_tokens"] = usage.output_tokens
            for name, count in (
                ("gen_ai.usage.cache_read.input_tokens", usage.cached_input_tokens),
                ("gen_ai.usage.cache_creation.input_tokens", usage.cache_creation_tokens),
                ("gen_ai.usage.reasoning.output_tokens", usage.reasoning_tokens),
                ("gen_ai.usage.audio.input_tokens", usage.input_audio_tokens),
                ("gen_ai.usage.audio.output_tokens", usage.output_audio_tokens),
                ("gen_ai.usage.video.input_tokens", usage.input_video_tokens),
            ):
                if count is not None:
                    attributes[name] = count
        error_type = None
        if error is not None:
            error_type = type(error).__name__
            span.set_status(StatusCode.ERROR, describe(error))
        elif cancelled:
            error_type = "cancelled"  # the caller closed the stream: not a failure, so no ERROR status
        if error_type is not None:
            attributes["error.type"] = metric_attributes["error.type"] = error_type
        content = self._content(seen, done) if self.instruments.capture_span or self.instruments.events else None
        if content is not None and self.instruments.capture_span:
            for name, value in content.items():
                attributes[name] = json.dumps(value, ensure_ascii=False)
        span.set_attributes(attributes)
        if content is not None and self.instruments.events is not None:
            self._emit_details({**self.request_attributes, **attributes, **content})
        span.end()
        instruments = self.instruments
        instruments.duration.record(duration, metric_attributes)
        if usage is not None:
            token_attributes = {k: v for k, v in metric_attributes.items() if k != "error.type"}
            instruments.tokens.record(usage.input_tokens, {**token_attributes, "gen_ai.token.type": "input"})
            instruments.tokens.record(usage.output_tokens, {**token_attributes, "gen_ai.token.type": "output"})

    # -- content (opt-in) ------------------------------------------------------------------

    def _content(self, seen: Sequence[Any], done: Any) -> Dict[str, Any]:
        """The convention's ``gen_ai.system_instructions``, ``input.messages`` and ``output.messages``, redacted."""
        out: Dict[str, Any] = {}
        context = self.info.context
        if context is not None:
            system, messages = _input_messages(context)
            if system:
                out["gen_ai.system_instructions"] = system
            out["gen_ai.input.messages"] = messages
        text: List[str] = []
        reasoning: List[str] = []
        calls: List[Dict[str, Any]] = []
        for item in seen:
            cls = item.__class__
            if cls is str:
                text.append(item)
            elif cls is tuple:
                reasoning.append(item[0])
            elif cls is Text or cls is Reasoning:  # the first one is queued as itself
                (text if cls is Text else reasoning).append(item.chunk)
            elif cls is ToolRequestComplete:
                call = item.tool_call
                calls.append({"type": "tool_call", "id": call.id, "name": call.name, "arguments": _json_or_text(call.arguments)})
        parts: List[Dict[str, Any]] = []
        if reasoning:
            parts.append({"type": "reasoning", "content": "".join(reasoning)})
        if text:
            parts.append({"type": "text", "content": "".join(text)})
        parts += calls
        finish = None
        if done is not None:
            finish = done.raw_stop_reason or (done.stop_reason.value if done.stop_reason is not None else None)
        out["gen_ai.output.messages"] = [{"role": "assistant", "parts": parts, "finish_reason": finish or ""}]
        # Keys a user pasted into a prompt stay out of telemetry too.
        redacted: Dict[str, Any] = json.loads(redact(json.dumps(out, ensure_ascii=False)))
        return redacted

    def _emit_details(self, attributes: Dict[str, Any]) -> None:
        from opentelemetry import trace
        from opentelemetry._logs import LogRecord

        self.instruments.events.emit(
            LogRecord(
                event_name=DETAILS_EVENT,
                attributes=attributes,
                context=trace.set_span_in_context(self.span),
            )
        )


def _input_messages(context: Context) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    system: List[Dict[str, Any]] = []
    messages: List[Dict[str, Any]] = []
    for m in context.messages:
        if isinstance(m, ChatMessage.System):
            system.append({"type": "text", "content": m.content})
        elif isinstance(m, ChatMessage.User):
            parts: List[Dict[str, Any]] = []
            for block in m.content:
                text = getattr(block, "text", None)
                if isinstance(text, str):
                    parts.append({"type": "text", "content": text})
                else:  # media: its kind and type, never its bytes
                    parts.append({"type": block.type, "mime_type": getattr(block, "mime_type", None)})
            messages.append({"role": "user", "parts": parts})
        elif isinstance(m, ChatMessage.Assistant):
            parts = []
            if m.reasoning.summary_text:
                parts.append({"type": "reasoning", "content": m.reasoning.summary_text})
            if m.content:
                parts.append({"type": "text", "content": m.content})
            for call in m.tool_calls:
                parts.append({"type": "tool_call", "id": call.id, "name": call.name, "arguments": _json_or_text(call.arguments)})
            messages.append({"role": "assistant", "parts": parts})
        elif isinstance(m, ChatMessage.ToolCallResult):
            result = m.result
            response = getattr(result, "result", None)
            if response is None:
                response = getattr(result, "error", "")
            messages.append(
                {"role": "tool", "parts": [{"type": "tool_call_response", "id": result.id, "response": response}]}
            )
        elif isinstance(m, ChatMessage.Summary):
            messages.append({"role": "user", "parts": [{"type": "text", "content": m.content}]})
    return system, messages


def _json_or_text(arguments: Optional[str]) -> Any:
    if not arguments:
        return {}
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments
