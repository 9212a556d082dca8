"""OpenTelemetry for the network itself: spans, metrics, and the trace kept on disk.

Configuration follows the standard ``OTEL_*`` variables: with
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT`` / ``..._METRICS_ENDPOINT``)
set, spans and metrics go to that collector over ``OTEL_EXPORTER_OTLP_PROTOCOL``
(``http/protobuf`` by default, or ``grpc``); ``OTEL_SERVICE_NAME`` and
``OTEL_RESOURCE_ATTRIBUTES`` name the resource; ``OTEL_SDK_DISABLED=true`` or
``DO_NOT_TRACK=1`` turn everything off. With no exporter configured, finished spans are
appended to ``<data dir>/traces/spans.jsonl`` so that ``job trace ID`` can print a job's
whole trace without any APM; the file holds at most ``max_spans_bytes`` (256 MiB) before
it is rotated to ``spans.1.jsonl``, which replaces the previous one, so spans take at
most twice that on disk (guests choose how many spans they make). Telemetry never
breaks the network: export errors are logged and dropped.
"""
from __future__ import annotations

import importlib
import json
import logging
import os
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from observe_sdk.adapters.otlp_transport import signal_protocol

log = logging.getLogger(__name__)

SERVICE_NAME = "cod"
SPANS_FILE = "spans.jsonl"
ROTATED_SPANS_FILE = "spans.1.jsonl"
MAX_SPANS_BYTES = 256 * 2**20


def _env(name: str) -> str:
    return os.environ.get(name, "").strip()


def _disabled() -> bool:
    return _env("OTEL_SDK_DISABLED").lower() == "true" or _env("DO_NOT_TRACK") not in ("", "0", "false")


def _otlp_exporter(signal: str, module: str, name: str) -> Any:
    """An instance of the OTLP exporter ``name`` for ``signal`` (TRACES or METRICS) over the
    configured protocol, or None when no endpoint is configured or the exporter is unavailable."""
    if not (_env("OTEL_EXPORTER_OTLP_ENDPOINT") or _env(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")):
        return None
    try:
        transport = "grpc" if signal_protocol(signal.lower()) == "grpc" else "http"
        exporter = getattr(importlib.import_module(f"opentelemetry.exporter.otlp.proto.{transport}.{module}"), name)
        return exporter()
    except Exception as exc:  # missing package or bad settings: telemetry must not stop the network
        log.warning("OTLP %s export is configured but unavailable (%s)%s", signal.lower(), exc,
                    "; keeping spans locally" if signal == "TRACES" else "")
        return None


def _otlp_span_exporter() -> SpanExporter | None:
    return _otlp_exporter("TRACES", "trace_exporter", "OTLPSpanExporter")


def _otlp_metric_reader() -> MetricReader | None:
    exporter = _otlp_exporter("METRICS", "metric_exporter", "OTLPMetricExporter")
    return None if exporter is None else PeriodicExportingMetricReader(exporter)


# ----------------------------------------------------------------------------- spans on disk

def span_record(span: ReadableSpan) -> dict[str, Any]:
    """A finished span as one JSON-ready record (OTLP/JSON names, ids in hex)."""
    ctx = span.get_span_context()
    parent = span.parent
    return {
        "traceId": format(ctx.trace_id, "032x"),
        "spanId": format(ctx.span_id, "016x"),
        "parentSpanId": format(parent.span_id, "016x") if parent is not None else "",
        "name": span.name,
        "kind": int(span.kind.value) + 1,  # OTLP numbers kinds from 1 (internal)
        "startTimeUnixNano": span.start_time or 0,
        "endTimeUnixNano": span.end_time or 0,
        "attributes": {k: _plain(v) for k, v in (span.attributes or {}).items()},
        "events": [{"name": e.name, "timeUnixNano": e.timestamp,
                    "attributes": {k: _plain(v) for k, v in (e.attributes or {}).items()}} for e in span.events],
        "status": {"code": int(span.status.status_code.value), "message": span.status.description or ""},
        "service": str((span.resource.attributes if span.resource else {}).get("service.name", SERVICE_NAME)),
        "scope": span.instrumentation_scope.name if span.instrumentation_scope else "",
    }


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


_append_lock = threading.Lock()


def append_records(path: Path, records: list[dict[str, Any]], max_bytes: int = MAX_SPANS_BYTES) -> None:
    """Append span records to a spans file, one JSON line each, in one write; a file past
    ``max_bytes`` is first rotated (:data:`ROTATED_SPANS_FILE`, the older one dropped)."""
    lines = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
    with _append_lock:
        try:
            if path.stat().st_size > max_bytes:
                path.replace(path.with_name(ROTATED_SPANS_FILE))
        except FileNotFoundError:
            pass
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(lines)


class FileSpanExporter(SpanExporter):
    """Appends finished spans, one JSON record a line, to a file."""

    def __init__(self, path: str | os.PathLike[str], max_bytes: int = MAX_SPANS_BYTES) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            append_records(self.path, [span_record(s) for s in spans], self.max_bytes)
            return SpanExportResult.SUCCESS
        except Exception:
            log.exception("could not write spans to %s", self.path)
            return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        pass


class ForwardingSpanExporter(SpanExporter):
    """Hands finished spans, as records, to ``sink`` (a compute node sends them to its orchestrator)."""

    def __init__(self, sink: Callable[[list[dict[str, Any]]], None]) -> None:
        self.sink = sink

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            self.sink([span_record(s) for s in spans])
            return SpanExportResult.SUCCESS
        except Exception:
            log.exception("could not forward %d span(s)", len(spans))
            return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        pass


def read_trace(spans_file: str | os.PathLike[str], trace_id: str) -> list[dict[str, Any]]:
    """Every stored span of one trace (in the spans file and the one rotated before it), by start time."""
    out = []
    needle = f'"traceId":"{trace_id}"'
    current = Path(spans_file)
    for path in (current.with_name(ROTATED_SPANS_FILE), current):
        try:
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    if needle in line:
                        try:
                            out.append(json.loads(line))
                        except ValueError:
                            continue  # a line being written right now
        except FileNotFoundError:
            continue
    out.sort(key=lambda s: (s["startTimeUnixNano"], s["endTimeUnixNano"]))
    return out


def _any_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [_any_value(v) for v in value]}}
    return {"stringValue": str(value)}


def _attrs(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _any_value(v)} for k, v in attrs.items()]


def otlp_json(spans: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One OTLP/JSON ``TracesData`` document holding ``spans`` (records of :func:`span_record`)."""
    grouped: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for s in spans:
        otlp = {
            "traceId": s["traceId"], "spanId": s["spanId"], "parentSpanId": s["parentSpanId"], "name": s["name"],
            "kind": s["kind"], "startTimeUnixNano": str(s["startTimeUnixNano"]),
            "endTimeUnixNano": str(s["endTimeUnixNano"]), "attributes": _attrs(s["attributes"]),
            "events": [{"name": e["name"], "timeUnixNano": str(e["timeUnixNano"]),
                        "attributes": _attrs(e["attributes"])} for e in s["events"]],
            "status": {"code": s["status"]["code"], **({"message": s["status"]["message"]}
                                                       if s["status"]["message"] else {})},
        }
        grouped[s["service"]][s["scope"]].append(otlp)
    return {"resourceSpans": [
        {"resource": {"attributes": _attrs({"service.name": service})},
         "scopeSpans": [{"scope": {"name": scope}, "spans": items} for scope, items in scopes.items()]}
        for service, scopes in grouped.items()]}


# ----------------------------------------------------------------------------- setup

class Telemetry:
    """The tracer and meter providers of one devstack (or one node), and where spans go."""

    def __init__(self, data_dir: str | os.PathLike[str] | None, service_name: str = SERVICE_NAME,
                 span_sink: Callable[[list[dict[str, Any]]], None] | None = None,
                 max_spans_bytes: int = MAX_SPANS_BYTES) -> None:
        """Spans go to the OTLP collector when one is configured, else to ``span_sink`` when given
        (a node whose orchestrator keeps the trace), else to ``<data_dir>/traces/spans.jsonl``."""
        self.spans_file: Path | None = None
        self.max_spans_bytes = max_spans_bytes
        self.metric_reader = InMemoryMetricReader()
        if _disabled():
            self.tracer_provider: trace.TracerProvider = trace.NoOpTracerProvider()
            self.meter_provider: metrics.MeterProvider = metrics.NoOpMeterProvider()
            self._sdk_providers: list[Any] = []
            return
        resource = Resource.create({"service.name": _env("OTEL_SERVICE_NAME") or service_name})
        tp = TracerProvider(resource=resource)
        exporter: SpanExporter | None = _otlp_span_exporter()
        if exporter is None and span_sink is not None:
            exporter = ForwardingSpanExporter(span_sink)
        elif exporter is None and data_dir is not None:
            self.spans_file = Path(data_dir) / "traces" / SPANS_FILE
            exporter = FileSpanExporter(self.spans_file, max_spans_bytes)
        if exporter is not None:
            tp.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=200))
        readers: list[MetricReader] = [self.metric_reader]
        otlp_reader = _otlp_metric_reader()
        if otlp_reader is not None:
            readers.append(otlp_reader)
        mp = MeterProvider(resource=resource, metric_readers=readers)
        self.tracer_provider, self.meter_provider = tp, mp
        self._sdk_providers = [tp, mp]

    def tracer(self, name: str) -> trace.Tracer:
        return self.tracer_provider.get_tracer(name)

    def meter(self, name: str) -> metrics.Meter:
        return self.meter_provider.get_meter(name)

    def flush(self, *, spans_only: bool = False) -> None:
        for provider in self._sdk_providers:
            if spans_only and provider is not self.tracer_provider:
                continue
            try:
                provider.force_flush()
            except Exception:
                log.exception("telemetry flush failed")

    def trace_spans(self, trace_id: str) -> list[dict[str, Any]]:
        """The stored spans of one trace (empty when spans go to a collector)."""
        if self.spans_file is None:
            return []
        self.flush(spans_only=True)  # the meter provider too would push metrics to a collector per call
        return read_trace(self.spans_file, trace_id)

    def store_spans(self, records: list[dict[str, Any]]) -> None:
        """Keep span records another node forwarded (with this node's own, for ``job trace``)."""
        if self.spans_file is not None and records:
            append_records(self.spans_file, records, self.max_spans_bytes)

    def metrics_snapshot(self) -> dict[str, Any]:
        """Current values of the network's metrics, by instrument name."""
        out: dict[str, Any] = {}
        data = self.metric_reader.get_metrics_data()
        for rm in getattr(data, "resource_metrics", None) or []:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    points = []
                    for p in metric.data.data_points:
                        value = getattr(p, "value", None)
                        if value is None:
                            value = {"count": p.count, "sum": p.sum, "min": p.min, "max": p.max}
                        points.append({"attributes": dict(p.attributes or {}), "value": value})
                    out[metric.name] = points
        return out

    def shutdown(self) -> None:
        providers, self._sdk_providers = self._sdk_providers, []  # once: a second call is a no-op
        for provider in providers:
            try:
                provider.shutdown()
            except Exception:
                log.exception("telemetry shutdown failed")
