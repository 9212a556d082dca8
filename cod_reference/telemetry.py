"""OpenTelemetry for the network itself: spans, metrics, and the trace kept on disk.

Configuration follows the standard ``OTEL_*`` variables: with
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT`` / ``..._METRICS_ENDPOINT``)
set, spans and metrics go to that collector over ``OTEL_EXPORTER_OTLP_PROTOCOL``
(``http/protobuf`` by default, or ``grpc``); ``OTEL_SERVICE_NAME`` and
``OTEL_RESOURCE_ATTRIBUTES`` name the resource; ``OTEL_SDK_DISABLED=true`` or
``DO_NOT_TRACK=1`` turn everything off. With no exporter configured, finished spans are
kept in ``<data dir>/traces/`` (a :class:`TraceStore`) so that ``job trace ID`` can print a
job's whole trace without any APM; the store holds about ``max_spans_bytes`` (256 MiB), at
most twice that: past it, the oldest traces are removed (guests choose how many spans they
make). Telemetry never breaks the network: export errors are logged and dropped.

A guest's spans never go through the OpenTelemetry SDK's span queue (``BatchSpanProcessor``,
2,048 spans, which drops what does not fit): the executor hands the spans of one execution
over as one unit, walked by :class:`GuestSpans` (parents first, roots under the executor's
``call`` span, at most ``max_guest_spans``, :data:`DEFAULT_MAX_GUEST_SPANS` by default; what
that cap drops is recorded on the execution's span as :data:`ATTR_GUEST_SPANS_DROPPED`):

- without a collector, as records (:func:`guest_span_records`) to
  :attr:`Telemetry.guest_span_sink`: the store writes a unit as one file, a compute node
  forwards it to its orchestrator;
- with a collector, as the finished trace to :attr:`Telemetry.guest_trace_exporter`
  (:class:`cod_reference.guest_otlp.GuestSpanExporter`), which encodes it with the Observe
  SDK's OTLP span encoder and sends it from a bounded queue of its own, over the protocol and
  with the settings of the ``OTEL_*`` variables. What it cannot deliver (queue full, the
  collector still failing after the exporter's retries, telemetry stopped first) is counted
  in the ``cod.telemetry.guest_spans_dropped`` metric, by ``reason``, and logged. :meth:`Telemetry.flush`
  and :meth:`Telemetry.shutdown` deliver what is queued, waiting 30 s at most each (not at all
  for a collector that refuses connections).
"""
from __future__ import annotations

import contextlib
import importlib
import itertools
import json
import logging
import os
import re
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from observe_sdk.adapters.common import (
    ATTR_ERROR_MESSAGE,
    ATTR_FAULT_MESSAGE,
    EVENT_LOG,
    EVENT_METRIC,
    FAULT_EVENT,
    STATUS_ERROR,
    log_attributes,
    metric_attributes,
    span_attributes,
)
from observe_sdk.adapters.otlp_json import key_values_json
from observe_sdk.adapters.otlp_transport import signal_protocol
from observe_sdk.adapters.traceinfo import host_parent, trace_attributes
from observe_sdk.trace import Log, Metric, Span, Trace, new_span_id

if TYPE_CHECKING:
    from .guest_otlp import GuestSpanExporter

log = logging.getLogger(__name__)

SERVICE_NAME = "cod"
MAX_SPANS_BYTES = 256 * 2**20
GUEST_SCOPE = "observe_sdk"
ATTR_GUEST_SPANS_DROPPED = "cod.guest.spans_dropped"
RECORD_DEFAULTS: dict[str, Any] = {"kind": 1, "events": (), "status": {"code": 0, "message": ""}}
"""A span record's optional fields and their values when absent (see :func:`span_record`)."""
DEFAULT_MAX_GUEST_SPANS = 2_000_000
"""Spans of one execution the network keeps: a guest may make billions; past this many the
rest are dropped (counted on the execution span and on the trace)."""


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
    """A finished span as one JSON-ready record (OTLP/JSON names, ids in hex).

    A guest's records (:func:`guest_span_records`) leave out what is at its default, as a
    100k-span trace is read back whole: ``kind`` (1, internal), ``events`` (none) and
    ``status`` (unset); readers take :data:`RECORD_DEFAULTS` for those."""
    ctx = span.get_span_context()
    assert ctx is not None, "a finished span has a context"
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


_TRACE_ID = re.compile(r"[0-9a-f]{32}")


class TraceStore:
    """Span records on disk, one directory per trace, one file per unit (a batch of the
    network's own spans, or every span of one execution), each written whole: files are
    made under a temporary name and renamed, so a reader - in this process or another -
    never sees half a unit.  Reading a trace reads only its own files.

    Disk: once the store holds more than twice ``max_bytes``, the traces written least
    recently are removed until it holds ``max_bytes`` (the trace just written stays).
    """

    def __init__(self, root: str | os.PathLike[str], max_bytes: int = MAX_SPANS_BYTES) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._seq = itertools.count()
        self._prefix = f"{os.getpid()}-{os.urandom(4).hex()}"
        self._lock = threading.Lock()
        self._bytes = sum(f.stat().st_size for f in self.root.glob("*/*.jsonl"))

    def write(self, records: list[dict[str, Any]]) -> None:
        """Keep ``records`` (of any traces): one unit per trace, records in the order given."""
        by_trace: dict[str, list[str]] = defaultdict(list)
        for r in records:
            by_trace[r["traceId"]].append(json.dumps(r, separators=(",", ":")))
        for trace_id, lines in by_trace.items():
            if not _TRACE_ID.fullmatch(trace_id):
                log.warning("not keeping %d span(s) of a malformed trace id %r", len(lines), trace_id[:64])
                continue
            folder = self.root / trace_id
            folder.mkdir(exist_ok=True)
            name = f"{self._prefix}-{next(self._seq):09d}.jsonl"
            tmp = folder / f".{name}.tmp"
            data = ("\n".join(lines) + "\n").encode("utf-8")
            tmp.write_bytes(data)
            os.replace(tmp, folder / name)
            with self._lock:
                self._bytes += len(data)
                if self._bytes > 2 * self.max_bytes:
                    self._evict(keep=trace_id)

    def _evict(self, keep: str) -> None:
        """Remove the least recently written traces until the store holds ``max_bytes``."""
        folders = sorted((p for p in self.root.iterdir() if p.is_dir() and p.name != keep),
                         key=lambda p: p.stat().st_mtime)
        for folder in folders:
            if self._bytes <= self.max_bytes:
                break
            for f in folder.iterdir():
                try:
                    self._bytes -= f.stat().st_size
                    f.unlink()
                except FileNotFoundError:
                    continue
            with contextlib.suppress(OSError):
                folder.rmdir()

    def read_json(self, trace_id: str) -> str:
        """Every stored record of one trace as one JSON array (text), units in the order written."""
        if not _TRACE_ID.fullmatch(trace_id):
            return "[]"
        try:
            names = sorted(p.name for p in (self.root / trace_id).iterdir() if p.suffix == ".jsonl")
        except FileNotFoundError:
            return "[]"
        texts = []
        for name in names:
            try:
                text = (self.root / trace_id / name).read_text(encoding="utf-8").strip()
            except FileNotFoundError:
                continue
            if text:
                texts.append(text.replace("\n", ","))
        return "[" + ",".join(texts) + "]"

    def read(self, trace_id: str) -> list[dict[str, Any]]:
        """Every stored record of one trace, units in the order written."""
        records: list[dict[str, Any]] = json.loads(self.read_json(trace_id))
        return records


class FileSpanExporter(SpanExporter):
    """Keeps finished spans, as records, in a :class:`TraceStore`."""

    def __init__(self, store: TraceStore) -> None:
        self.store = store

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            self.store.write([span_record(s) for s in spans])
            return SpanExportResult.SUCCESS
        except Exception:
            log.exception("could not write spans to %s", self.store.root)
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


# ----------------------------------------------------------------------------- a guest's spans

class GuestSpans:
    """The spans of one execution as the network exports them: the one walk behind
    :func:`guest_span_records` (the trace store, forwarding) and the OTLP guest exporter
    (:mod:`cod_reference.guest_otlp`), so both give the same tree.

    Iterating yields ``(span, parent span id or 0, is a root)`` for each kept span, parents
    before children (depth first, in the order the guest made them); past ``max_spans`` the
    rest are dropped, so every kept span's parent is kept, and :attr:`dropped` counts them
    once the walk is over. Roots are parented on the trace's host span (``traceparent`` in
    its metadata, as the Observe SDK's adapters do) and carry :attr:`root_attributes`
    (``wasm.module``, ...); events recorded with no span open go on a ``wasm:<module>`` root.
    """

    def __init__(self, trace: Trace, max_spans: int = DEFAULT_MAX_GUEST_SPANS) -> None:
        self.trace = trace
        self.parent = host_parent(trace)
        self.trace_id = self.parent.trace_id if self.parent else int.from_bytes(trace.trace_id, "big")
        self.root_attributes = trace_attributes(trace)
        self.max_spans = max_spans
        self.dropped = 0
        self.roots = [e for e in trace.roots if isinstance(e, Span)]
        loose = [e for e in trace.roots if not isinstance(e, Span)]
        if loose:
            start = min(e.time_ns for e in loose)
            self.roots.append(Span(f"wasm:{trace.module_name or 'module'}", "", 0, start, max(trace.end_ns, start),
                                   True, [*loose], [], None, new_span_id()))

    def __iter__(self) -> Iterator[tuple[Span, int, bool]]:
        root_parent = self.parent.span_id if self.parent else 0
        stack: list[tuple[Span, int, bool]] = [(r, root_parent, True) for r in reversed(self.roots)]
        kept = dropped = 0
        while stack:
            span, parent_id, root = stack.pop()
            if kept >= self.max_spans:
                dropped += sum(1 for _ in span.walk())
                continue
            kept += 1
            yield span, parent_id, root
            stack.extend((c, span.span_id, False) for c in reversed(span.events) if type(c) is Span)
        self.dropped = dropped


def guest_span_records(trace: Trace, max_spans: int = DEFAULT_MAX_GUEST_SPANS,
                       service: str = SERVICE_NAME) -> tuple[list[dict[str, Any]], int]:
    """The spans of a guest's trace as records, parents before children, and how many were
    dropped: past ``max_spans`` the rest are dropped, so every kept span's parent is kept.

    The spans are those of :class:`GuestSpans`: roots parented on the trace's host span and
    carrying the trace-level attributes; faults and the dropped count go on the first root.
    """
    spans = GuestSpans(trace, max_spans)
    trace_hex = f"{spans.trace_id:032x}"
    out: list[dict[str, Any]] = []
    for span, parent_id, root in spans:
        record = _guest_record(span, trace_hex, parent_id, service)
        if root:
            record["attributes"].update(spans.root_attributes)
        out.append(record)
    if out:
        first = out[0]
        first.setdefault("events", []).extend({"name": FAULT_EVENT, "timeUnixNano": trace.end_ns,
                                "attributes": {ATTR_FAULT_MESSAGE: m}} for m in trace.errors)
        if spans.dropped:
            first["attributes"][ATTR_GUEST_SPANS_DROPPED] = spans.dropped
    return out, spans.dropped


def _guest_record(span: Span, trace_hex: str, parent_id: int, service: str) -> dict[str, Any]:
    attrs: dict[str, Any] = span_attributes(span)
    if span.error is not None:
        attrs[ATTR_ERROR_MESSAGE] = span.error
    record: dict[str, Any] = {
        "traceId": trace_hex, "spanId": f"{span.span_id:016x}",
        "parentSpanId": f"{parent_id:016x}" if parent_id else "", "name": span.name,
        "startTimeUnixNano": span.start_ns, "endTimeUnixNano": span.end_ns, "attributes": attrs,
        "service": service, "scope": GUEST_SCOPE,
    }
    events = []
    for e in span.events:
        if type(e) is Log:
            events.append({"name": EVENT_LOG, "timeUnixNano": e.time_ns, "attributes": log_attributes(e)})
        elif type(e) is Metric:
            events.append({"name": EVENT_METRIC, "timeUnixNano": e.time_ns, "attributes": metric_attributes(e)})
    if events:
        record["events"] = events
    if span.error is not None:
        record["status"] = {"code": STATUS_ERROR, "message": span.error}
    return record


def otlp_json(spans: Iterable[dict[str, Any]]) -> str:
    """One OTLP/JSON ``TracesData`` document (JSON text) holding ``spans`` (records of
    :func:`span_record`), one resource per service; values are encoded by the Observe SDK's
    OTLP/JSON encoder."""
    grouped: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for s in spans:
        events = ",".join(f'{{"name":{json.dumps(e["name"])},"timeUnixNano":"{e["timeUnixNano"]}",'
                          f'"attributes":[{key_values_json(e["attributes"])}]}}'
                          for e in s.get("events", ()))
        status = s.get("status") or RECORD_DEFAULTS["status"]
        message = f',"message":{json.dumps(status["message"])}' if status["message"] else ""
        grouped[s["service"]][s["scope"]].append(
            f'{{"traceId":"{s["traceId"]}","spanId":"{s["spanId"]}","parentSpanId":"{s["parentSpanId"]}",'
            f'"name":{json.dumps(s["name"])},"kind":{int(s.get("kind", 1))},'
            f'"startTimeUnixNano":"{s["startTimeUnixNano"]}","endTimeUnixNano":"{s["endTimeUnixNano"]}",'
            f'"attributes":[{key_values_json(s["attributes"])}],"events":[{events}],'
            f'"status":{{"code":{int(status["code"])}{message}}}}}')
    resources = (f'{{"resource":{{"attributes":[{key_values_json({"service.name": service})}]}},"scopeSpans":['
                 + ",".join(f'{{"scope":{{"name":{json.dumps(scope)}}},"spans":[{",".join(items)}]}}'
                            for scope, items in scopes.items()) + "]}"
                 for service, scopes in grouped.items())
    return '{"resourceSpans":[' + ",".join(resources) + "]}"


# ----------------------------------------------------------------------------- setup

class Telemetry:
    """The tracer and meter providers of one devstack (or one node), and where spans go."""

    def __init__(self, data_dir: str | os.PathLike[str] | None, service_name: str = SERVICE_NAME,
                 span_sink: Callable[[list[dict[str, Any]]], None] | None = None,
                 max_spans_bytes: int = MAX_SPANS_BYTES, instance_id: str = "",
                 max_guest_queue_bytes: int | None = None) -> None:
        """Spans go to the OTLP collector when one is configured, else to ``span_sink`` when given
        (a node whose orchestrator keeps the trace), else to a :class:`TraceStore` in
        ``<data_dir>/traces``. ``instance_id`` (a node's id) is the resource's ``service.instance.id``:
        which process wrote what. ``max_guest_queue_bytes``: the most guests' spans waiting for
        the collector hold (None: :data:`cod_reference.guest_otlp.DEFAULT_QUEUE_BYTES`)."""
        self.trace_store: TraceStore | None = None
        self._span_sink = span_sink
        self.metric_reader = InMemoryMetricReader()
        self._otlp = False
        self.guest_exporter: GuestSpanExporter | None = None
        if _disabled():
            self.tracer_provider: trace.TracerProvider = trace.NoOpTracerProvider()
            self.meter_provider: metrics.MeterProvider = metrics.NoOpMeterProvider()
            self._sdk_providers: list[Any] = []
            return
        identity = {"service.name": _env("OTEL_SERVICE_NAME") or service_name}
        if instance_id:
            identity["service.instance.id"] = instance_id
        resource = Resource.create(identity)
        tp = TracerProvider(resource=resource)
        exporter: SpanExporter | None = _otlp_span_exporter()
        self._otlp = exporter is not None
        if exporter is None and span_sink is not None:
            exporter = ForwardingSpanExporter(span_sink)
        elif exporter is None and data_dir is not None:
            self.trace_store = TraceStore(Path(data_dir) / "traces", max_spans_bytes)
            exporter = FileSpanExporter(self.trace_store)
        if exporter is not None:
            tp.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=200))
        readers: list[MetricReader] = [self.metric_reader]
        otlp_reader = _otlp_metric_reader()
        if otlp_reader is not None:
            readers.append(otlp_reader)
        mp = MeterProvider(resource=resource, metric_readers=readers)
        self.tracer_provider, self.meter_provider = tp, mp
        self._sdk_providers = [tp, mp]
        if self._otlp:
            self.guest_exporter = _guest_exporter(resource, mp, max_guest_queue_bytes)

    def tracer(self, name: str) -> trace.Tracer:
        return self.tracer_provider.get_tracer(name)

    def meter(self, name: str) -> metrics.Meter:
        return self.meter_provider.get_meter(name)

    def flush(self, *, spans_only: bool = False) -> None:
        if self.guest_exporter is not None and not self.guest_exporter.flush():
            log.warning("guest spans still queued for the OTLP collector at %s (%d bytes)",
                        self.guest_exporter.endpoint, self.guest_exporter.queued_bytes)
        for provider in self._sdk_providers:
            if spans_only and provider is not self.tracer_provider:
                continue
            try:
                provider.force_flush()
            except Exception:
                log.exception("telemetry flush failed")

    def trace_spans_json(self, trace_id: str) -> str:
        """The stored spans of one trace as a JSON array of records (``[]`` when spans go to a
        collector); served as it is read, with no decoding."""
        if self.trace_store is None:
            return "[]"
        self.flush(spans_only=True)  # the meter provider too would push metrics to a collector per call
        return self.trace_store.read_json(trace_id)

    def trace_spans(self, trace_id: str) -> list[dict[str, Any]]:
        """The stored spans of one trace (empty when spans go to a collector)."""
        records: list[dict[str, Any]] = json.loads(self.trace_spans_json(trace_id))
        return records

    def store_spans(self, records: list[dict[str, Any]]) -> None:
        """Keep span records another node forwarded (with this node's own, for ``job trace``)."""
        if self.trace_store is not None and records:
            self.trace_store.write(records)

    @property
    def guest_span_sink(self) -> Callable[[list[dict[str, Any]]], None] | None:
        """Where an executor hands the spans of one execution, as one unit of records (see
        :func:`guest_span_records`); None when spans go to an OTLP collector (see
        :attr:`guest_trace_exporter`) or nowhere."""
        if self._otlp or isinstance(self.tracer_provider, trace.NoOpTracerProvider):
            return None
        if self._span_sink is not None:
            return self._span_sink
        return self.store_spans if self.trace_store is not None else None

    @property
    def guest_trace_exporter(self) -> Callable[[Trace, int, str], int] | None:
        """Where an executor hands the finished trace of one execution when spans go to an OTLP
        collector: :meth:`GuestSpanExporter.export <cod_reference.guest_otlp.GuestSpanExporter.export>`
        (the trace, the cap, the execution's id; it returns how many spans the cap dropped).
        None otherwise."""
        return self.guest_exporter.export if self.guest_exporter is not None else None

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
        if self.guest_exporter is not None:   # first: what it drops is counted before the metrics go
            try:
                self.guest_exporter.shutdown()
            except Exception:
                log.exception("stopping the guest span exporter failed")
        for provider in providers:
            try:
                provider.shutdown()
            except Exception:
                log.exception("telemetry shutdown failed")


def _guest_exporter(resource: Resource, mp: MeterProvider, max_queue_bytes: int | None) -> GuestSpanExporter | None:
    """The exporter of guests' spans to the configured collector (the traces endpoint and
    protocol), counting what it drops on ``mp``; None, with a warning, when it cannot be made
    (guests' spans then go through the tracer provider)."""
    from observe_sdk.adapters import otlp_proto
    from observe_sdk.adapters.otlp_transport import make_sender

    from .guest_otlp import DEFAULT_QUEUE_BYTES, DROPPED_METRIC, REASONS, GuestSpanExporter

    try:
        sender = make_sender("traces", signal_protocol("traces"), None, None, None)
    except Exception as exc:
        log.warning("guest spans cannot be sent to the OTLP collector on their own (%s); "
                    "they go through the OpenTelemetry SDK's span queue", exc)
        return None
    counter = mp.get_meter("cod_reference.telemetry").create_counter(
        DROPPED_METRIC, unit="{span}",
        description=f"guest spans not delivered to the OTLP collector, by reason ({', '.join(REASONS)})")
    return GuestSpanExporter(sender, otlp_proto.attributes(0x0A, resource.attributes), counter,
                             max_queue_bytes=DEFAULT_QUEUE_BYTES if max_queue_bytes is None else max_queue_bytes)
