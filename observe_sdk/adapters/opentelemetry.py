"""The in-process OpenTelemetry adapter: guest telemetry through the host's OTel SDK.

Each :class:`~observe_sdk.trace.Trace` becomes real spans of the host's
``TracerProvider`` (start and end times from the guest), so they flow through
whatever span processors and exporters the host configured.  The Wasm root
spans are children of the host span that was current when the trace finished
(or of an explicit ``traceparent``, see :mod:`.traceinfo`), in the same trace.

Guest metrics (StatsD lines) go to metric instruments of a ``MeterProvider``:
counters to ``Counter`` (value divided by the sample rate), gauges to
``Gauge`` (``+N``/``-N`` change the last value), timers, histograms and
distributions to ``Histogram`` (timers in ``ms``), sets to a ``Gauge`` of the
number of distinct values seen.  StatsD tags become attributes.  Measurements
carry the span's context, so exemplars link them to the span.

Guest logs go to the OpenTelemetry logs pipeline of a ``LoggerProvider``,
correlated with the span they were emitted in, and to the Python logger
``observe_sdk.guest`` (with ``otelTraceID``/``otelSpanID`` on the record and
the span's context current while handlers run).  A host that already bridges
Python ``logging`` into OpenTelemetry (``LoggingHandler``) should pass
``python_logging=False`` or ``logger_provider=False`` to avoid duplicates.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics as otel_metrics
from opentelemetry import trace as otel_trace
from opentelemetry._logs import LogRecord, SeverityNumber, get_logger
from opentelemetry.trace import (
    NonRecordingSpan,
    ProxyTracerProvider,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)

from ..abi import LogLevel
from ..trace import Log, Metric, Span, Trace
from ..version import __version__
from .base import Adapter
from .common import (
    ATTR_ERROR_MESSAGE,
    ATTR_FAULT_MESSAGE,
    ATTR_MODULE,
    ATTR_SPAN_KIND,
    EVENT_LOG,
    EVENT_METRIC,
    FAULT_EVENT,
    AttrValue,
    log_attributes,
    metric_attributes,
    span_attributes,
)
from .statsd import IgnoredMetrics, StatsdError, StatsdMetric, parse_metric
from .traceinfo import CapturesHostParent, host_parent, trace_attributes
from .walk import SPAN_END, walk

log = logging.getLogger("observe_sdk.adapters")

SCOPE_NAME = "observe_sdk"
GUEST_LOGGER = "observe_sdk.guest"

_SEVERITY = {
    LogLevel.ERROR: (SeverityNumber.ERROR, logging.ERROR),
    LogLevel.WARN: (SeverityNumber.WARN, logging.WARNING),
    LogLevel.INFO: (SeverityNumber.INFO, logging.INFO),
    LogLevel.DEBUG: (SeverityNumber.DEBUG, logging.DEBUG),
    LogLevel.TRACE: (SeverityNumber.TRACE, 5),
}
# Guests choose metric names, tags and set members: these bound what the adapter keeps.
_MAX_INSTRUMENTS = 1_000          # distinct (kind, metric name)
_MAX_SERIES = 10_000              # gauge/set series whose state is kept
_MAX_SET_MEMBERS = 100_000        # per set series...
_MAX_SET_MEMBERS_TOTAL = 1_000_000   # ...and over all of them


def severity_of(level: int) -> tuple[SeverityNumber, int]:
    """(OpenTelemetry severity, Python logging level) for a guest log level."""
    try:
        return _SEVERITY[LogLevel(level)]
    except ValueError:
        return (SeverityNumber.UNSPECIFIED, logging.INFO)


def instrument_name(name: str) -> str:
    """A StatsD name made into a valid OpenTelemetry instrument name."""
    cleaned = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "_.-/") else "_" for ch in name)
    if not cleaned[:1].isalpha():
        cleaned = "m_" + cleaned
    return cleaned[:255]


def log_to_python(logger: logging.Logger, entry: Log, pylevel: int, ctx: Any, module: str) -> None:
    """A guest log line to a Python logger, at the guest's time, with ``ctx`` (an OpenTelemetry
    context holding the guest span) current while handlers run and its ids on the record."""
    span_ctx = otel_trace.get_current_span(ctx).get_span_context()
    fields = {
        "otelTraceID": f"{span_ctx.trace_id:032x}" if span_ctx.is_valid else "0",
        "otelSpanID": f"{span_ctx.span_id:016x}" if span_ctx.is_valid else "0",
        "wasm_module": module,
    }
    record = logger.makeRecord(logger.name, pylevel, "(wasm)", 0, entry.message, (), None, extra=fields)
    record.created = entry.time_ns / 1e9
    record.msecs = (entry.time_ns // 1_000_000) % 1000
    token = otel_context.attach(ctx)
    try:
        logger.handle(record)
    finally:
        otel_context.detach(token)


_Attrs = frozenset[tuple[str, str]]


class _MetricRecorder:
    """StatsD lines to OpenTelemetry instruments, with the state gauges and sets need."""

    def __init__(self, meter: Any, who: str) -> None:
        self._meter = meter
        self._instruments: dict[tuple[str, str], Any] = {}
        self._gauges: dict[tuple[str, _Attrs], float] = {}
        self._sets: dict[tuple[str, _Attrs], set[str]] = {}
        self._set_members = 0     # over all sets
        self.ignored = IgnoredMetrics(who)   # lines that could not be used
        self.recorded = 0      # lines recorded

    def _instrument(self, kind: str, name: str) -> Any:
        """The instrument for ``name``; None (and counted) past :data:`_MAX_INSTRUMENTS`."""
        key = (kind, name)
        inst = self._instruments.get(key)
        if inst is None:
            if len(self._instruments) >= _MAX_INSTRUMENTS:
                self.ignored.add(f"too many metric names (> {_MAX_INSTRUMENTS}); {name} dropped")
                return None
            m = self._meter
            desc = f"guest statsd {kind}"
            if kind == "counter":
                inst = m.create_counter(name, description=desc)
            elif kind in ("gauge", "set"):
                inst = m.create_gauge(name, description=desc)
            elif kind == "timer":
                inst = m.create_histogram(name, unit="ms", description=desc)
            else:
                inst = m.create_histogram(name, description=desc)
            self._instruments[key] = inst
        return inst

    def record_text(self, metric: Metric, ctx: Any, extra_attrs: Mapping[str, str]) -> None:
        try:
            lines = parse_metric(metric)
        except StatsdError as exc:
            self.ignored.add(str(exc))
            return
        for line in lines:
            self.record(line, ctx, extra_attrs)

    def record(self, m: StatsdMetric, ctx: Any, extra_attrs: Mapping[str, str]) -> None:
        name = instrument_name(m.name)
        kind = m.kind
        inst = self._instrument("histogram" if kind == "distribution" else kind, name)
        if inst is None:
            return
        self.recorded += 1
        attrs = {**extra_attrs, **m.tag_dict}
        numbers = [v for v in m.values if not isinstance(v, str)]     # strings are set members only
        if kind == "counter":
            for v in numbers:
                if v < 0:
                    self.ignored.add(f"counter {m.name}: negative increment {v:g} skipped "
                                     "(OpenTelemetry counters only go up)")
                    continue
                inst.add(v / m.sample_rate, attrs, context=ctx)
        elif kind == "gauge":
            key = (name, frozenset(attrs.items()))
            room = key in self._gauges or len(self._gauges) < _MAX_SERIES
            if m.delta and not room:
                self.ignored.add(f"too many gauge series (> {_MAX_SERIES}); change to {m.name} dropped")
                return
            for v in numbers:
                value = self._gauges.get(key, 0.0) + v if m.delta else v
                if room:
                    self._gauges[key] = value
                inst.set(value, attrs, context=ctx)
        elif kind == "set":
            key = (name, frozenset(attrs.items()))
            if key not in self._sets and len(self._sets) >= _MAX_SERIES:
                self.ignored.add(f"too many set series (> {_MAX_SERIES}); {m.name} dropped")
                return
            members = self._sets.setdefault(key, set())
            for raw in m.values:
                member = str(raw)
                if (member not in members and len(members) < _MAX_SET_MEMBERS
                        and self._set_members < _MAX_SET_MEMBERS_TOTAL):
                    members.add(member)
                    self._set_members += 1
            inst.set(len(members), attrs, context=ctx)
        else:
            for v in numbers:
                inst.record(v, attrs, context=ctx)


class OpenTelemetryAdapter(CapturesHostParent, Adapter):
    """Guest spans, metrics and logs through the host's OpenTelemetry SDK.

    ``tracer_provider``, ``meter_provider``, ``logger_provider``: the providers
    to use; ``None`` means the global ones, ``False`` turns that signal off.
    ``python_logging``: also send guest logs to the ``observe_sdk.guest``
    Python logger.  ``span_events``: also attach logs and metrics to their span
    as span events (names and attributes from :mod:`.common`).  Other keywords
    configure the queue (see :class:`~observe_sdk.adapters.base.Adapter`).
    """

    name = "opentelemetry"

    def __init__(
        self,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        logger_provider: Any = None,
        *,
        python_logging: bool = True,
        span_events: bool = True,
        **queue_options: Any,
    ) -> None:
        super().__init__(**queue_options)
        self._tracer = (None if tracer_provider is False
                        else otel_trace.get_tracer(SCOPE_NAME, __version__, tracer_provider=tracer_provider))
        meter = (None if meter_provider is False
                 else otel_metrics.get_meter(SCOPE_NAME, __version__, meter_provider=meter_provider))
        self._metrics = _MetricRecorder(meter, self.name) if meter is not None else None
        self._logger = (None if logger_provider is False
                        else get_logger(SCOPE_NAME, __version__, logger_provider=logger_provider))
        self._pylog = logging.getLogger(GUEST_LOGGER) if python_logging else None
        self._span_events = span_events
        self._emit_lock = threading.Lock()
        # the global provider is looked at on the first export (the host may set it after us)
        self._check_global_provider = tracer_provider is None

    @classmethod
    def from_env(cls, **kwargs: Any) -> OpenTelemetryAdapter:
        """The global providers (configure them with the OTel SDK or its auto-configuration)."""
        return cls(**kwargs)

    @property
    def invalid_metrics(self) -> int:
        """Guest metric lines that could not be parsed (logged, never raised)."""
        return self._metrics.ignored.count if self._metrics else 0

    def export(self, traces: list[Trace]) -> None:
        if self._check_global_provider:
            self._check_global_provider = False
            if isinstance(otel_trace.get_tracer_provider(), ProxyTracerProvider):
                log.warning("%s: no OpenTelemetry TracerProvider is set (opentelemetry.trace.set_tracer_provider"
                            " or opentelemetry-instrument); guest spans go nowhere", self.name)
        with self._emit_lock:
            for trace in traces:
                self.emit_trace(trace)

    # -- one trace -----------------------------------------------------
    def emit_trace(self, trace: Trace) -> None:
        parent = host_parent(trace)
        if parent is not None:
            parent_span = NonRecordingSpan(SpanContext(
                parent.trace_id, parent.span_id, is_remote=True,
                trace_flags=TraceFlags(TraceFlags.SAMPLED if parent.sampled else TraceFlags.DEFAULT)))
            root_ctx = otel_trace.set_span_in_context(parent_span, otel_context.Context())
        else:
            root_ctx = otel_context.Context()   # never the exporter thread's own context
        extra = {ATTR_MODULE: trace.module_name} if trace.module_name else {}
        root_attrs = trace_attributes(trace)
        tracer = self._tracer
        if parent is None and len(trace.root_spans) > 1 and tracer is not None:
            # The SDK gives every parentless span a trace of its own; one
            # holder span keeps the roots of this trace together.
            holder = tracer.start_span(
                f"wasm:{trace.module_name or 'module'}", context=root_ctx, kind=SpanKind.INTERNAL,
                attributes={ATTR_SPAN_KIND: "module", **root_attrs},
                start_time=min(trace.start_ns or r.start_ns for r in trace.root_spans))
            root_ctx = otel_trace.set_span_in_context(holder, root_ctx)
            root_attrs = {}
        else:
            holder = None
        faults = trace.errors
        open_spans: list[tuple[Any, Any]] = []     # (SDK span, its context), innermost last
        for step, item, owner in walk(trace):
            if type(item) is Span:
                if tracer is None:
                    continue
                if step == SPAN_END:
                    open_spans.pop()[0].end(end_time=item.end_ns)
                    continue
                ctx = open_spans[-1][1] if owner is not None else root_ctx
                otel_span = self._start(tracer, item, ctx, root_attrs if owner is None else None)
                if owner is None:
                    for message in faults:   # guest faults recorded on the trace, as in OTLP/JSON
                        otel_span.add_event(FAULT_EVENT, {ATTR_FAULT_MESSAGE: message},
                                            timestamp=trace.end_ns or item.end_ns)
                    faults = []
                open_spans.append((otel_span, otel_trace.set_span_in_context(otel_span, ctx)))
                continue
            otel_span, ctx = open_spans[-1] if open_spans else (None, root_ctx)
            if type(item) is Log:
                self._emit_log(item, ctx, otel_span, extra)
            elif type(item) is Metric:
                self._emit_metric(item, ctx, otel_span, extra)
        if holder is not None:
            holder.end(end_time=max(trace.end_ns, max(r.end_ns for r in trace.root_spans)))

    @staticmethod
    def _start(tracer: Any, span: Span, ctx: Any, extra_attrs: Mapping[str, AttrValue] | None) -> Any:
        attrs = span_attributes(span)
        if extra_attrs:
            attrs.update(extra_attrs)
        if span.error:
            attrs[ATTR_ERROR_MESSAGE] = span.error
        otel_span = tracer.start_span(span.name, context=ctx, kind=SpanKind.INTERNAL,
                                      attributes=attrs, start_time=span.start_ns)
        if span.error:
            otel_span.set_status(Status(StatusCode.ERROR, span.error))
        return otel_span

    def _emit_log(self, entry: Log, ctx: Any, otel_span: Any, extra: dict[str, str]) -> None:
        if otel_span is not None and self._span_events:
            otel_span.add_event(EVENT_LOG, log_attributes(entry), timestamp=entry.time_ns)
        severity, pylevel = severity_of(entry.level)
        if self._logger is not None:
            self._logger.emit(LogRecord(
                timestamp=entry.time_ns, context=ctx, severity_text=entry.severity,
                severity_number=severity, body=entry.message, attributes=extra or None))
        if self._pylog is not None and self._pylog.isEnabledFor(pylevel):
            log_to_python(self._pylog, entry, pylevel, ctx, extra.get(ATTR_MODULE, ""))

    def _emit_metric(self, metric: Metric, ctx: Any, otel_span: Any, extra: dict[str, str]) -> None:
        if otel_span is not None and self._span_events:
            otel_span.add_event(EVENT_METRIC, metric_attributes(metric), timestamp=metric.time_ns)
        if self._metrics is not None:
            self._metrics.record_text(metric, ctx, extra)
