"""A real OpenTelemetry SDK pipeline held in memory, with llm_sync.otel instrumented into it."""

from __future__ import annotations

import json
from typing import Any, Dict, Iterator, List

import pytest

__all__ = ["Telemetry", "telemetry_of"]


class Telemetry:
    """The SDK's in-memory span exporter, metric reader and log exporter, and what they hold."""

    def __init__(self) -> None:
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs import export as log_export
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader], shutdown_on_exit=False)
        # Renamed in SDK 1.39; the old name warns.
        exporter = getattr(log_export, "InMemoryLogRecordExporter", None) or log_export.InMemoryLogExporter
        self.log_exporter = exporter()
        self.logger_provider = LoggerProvider(shutdown_on_exit=False)
        self.logger_provider.add_log_record_processor(log_export.SimpleLogRecordProcessor(self.log_exporter))

    def instrument(self) -> None:
        from llm_sync import otel

        otel.instrument(self.tracer_provider, self.meter_provider, logger_provider=self.logger_provider)

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
        self.logger_provider.shutdown()

    @property
    def spans(self) -> List[Any]:
        return list(self.exporter.get_finished_spans())

    def genai_spans(self) -> List[Any]:
        return [s for s in self.spans if "gen_ai.operation.name" in (s.attributes or {})]

    def points(self, name: str) -> List[Any]:
        """The data points of metric ``name`` (histograms: one per attribute set)."""
        data = self.reader.get_metrics_data()
        out: List[Any] = []
        for rm in data.resource_metrics if data is not None else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        out += list(metric.data.data_points)
        return out

    def metric(self, name: str) -> Any:
        data = self.reader.get_metrics_data()
        for rm in data.resource_metrics if data is not None else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        return metric
        return None

    def log_records(self) -> List[Any]:
        return [d.log_record for d in self.log_exporter.get_finished_logs()]

    def everything(self) -> str:
        """Every span, span event, metric point and log event as text: what a leak check searches."""
        parts: List[str] = []
        for s in self.spans:
            parts.append(s.to_json())
        data = self.reader.get_metrics_data()
        if data is not None:
            parts.append(data.to_json())
        for r in self.log_records():
            parts.append(json.dumps({"event": r.event_name, "body": repr(r.body), "attributes": _plain(r.attributes)}))
        return "\n".join(parts)


def _plain(attributes: Any) -> Dict[str, str]:
    return {k: repr(v) for k, v in dict(attributes or {}).items()}


def telemetry_of(monkeypatch: pytest.MonkeyPatch, capture: str = "") -> Iterator[Telemetry]:
    """Instrument llm_sync into a fresh in-memory pipeline (content capture as ``capture`` says)."""
    pytest.importorskip("opentelemetry.sdk")
    from llm_sync import otel

    if capture:
        monkeypatch.setenv(otel.CAPTURE_VARIABLE, capture)
    else:
        monkeypatch.delenv(otel.CAPTURE_VARIABLE, raising=False)
    t = Telemetry()
    t.instrument()
    try:
        yield t
    finally:
        otel.uninstrument()
        t.shutdown()
