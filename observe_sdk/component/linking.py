"""Defining wasi:otel in a wasmtime component linker: guest records in, collector calls out.

wasmtime-py hands a host function the guest's WIT values as ``Record`` objects
whose attributes carry the WIT field names (``trace-id``), enums as strings,
flags as sets and variants as ``Variant(tag, payload)``.  The functions here
only translate; every check lives in :mod:`.collector`.  A Python exception
escaping a host function would trap the guest, so none does: an unexpected
value is a fault on the trace.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from wasmtime import component

from ..host.recorder import time_ns
from .collector import LogRecord, MetricPoint, OtelCollector, SpanEnd, SpanStart
from .wit import FUNCTIONS, LOGS, METRICS, TRACING

log = logging.getLogger("observe_sdk")


class CollectorSource(Protocol):
    """Where the linker's functions find the collector of the trace being recorded."""

    def current_collector(self) -> OtelCollector: ...


def field(record: Any, name: str) -> Any:
    return getattr(record, name)


def datetime_ns(value: Any) -> int:
    """A ``wasi:clocks/wall-clock.datetime`` record as ns since the epoch."""
    return int(field(value, "seconds")) * 1_000_000_000 + int(field(value, "nanoseconds"))


def key_values(items: Any) -> list[tuple[str, str]]:
    return [(str(field(kv, "key")), str(field(kv, "value"))) for kv in items or ()]


def span_start(context: Any) -> SpanStart:
    return SpanStart(str(field(context, "trace-id")), str(field(context, "span-id")))


def span_end(data: Any) -> SpanEnd:
    context = field(data, "span-context")
    status = field(data, "status")
    error = status.payload if status.tag == "error" else None
    events = [(str(field(e, "name")), datetime_ns(field(e, "time")), key_values(field(e, "attributes")))
              for e in field(data, "events")]
    links = [(str(field(field(link, "span-context"), "trace-id")), str(field(field(link, "span-context"), "span-id")))
             for link in field(data, "links")]
    return SpanEnd(str(field(context, "trace-id")), str(field(context, "span-id")), str(field(data, "parent-span-id")),
                   str(field(data, "name")), str(field(data, "span-kind")), datetime_ns(field(data, "start-time")),
                   datetime_ns(field(data, "end-time")), key_values(field(data, "attributes")), events, links,
                   None if error is None else str(error), status.tag == "ok")


def log_record(record: Any) -> LogRecord:
    timestamp = field(record, "timestamp")
    return LogRecord(None if timestamp is None else datetime_ns(timestamp), field(record, "severity-text"),
                     field(record, "severity-number"), field(record, "body"), field(record, "event-name"),
                     key_values(field(record, "attributes")), field(record, "span-id"))


def _number(value: Any) -> str:
    return repr(float(value.payload)) if value.tag == "f64" else str(int(value.payload))


def metric_points(resource_metrics: Any) -> list[MetricPoint]:
    """Every data point of a ``resource-metrics`` as statsd parts.

    Sums are counters (``c``) when monotonic, else gauges; gauges are ``g``;
    histograms (plain and exponential) become ``<name>.count`` and
    ``<name>.sum`` counters, the two aggregates statsd can carry.
    """
    points: list[MetricPoint] = []
    for scope_metrics in field(resource_metrics, "scope-metrics"):
        for metric in field(scope_metrics, "metrics"):
            name = str(field(metric, "name"))
            kind = field(metric, "data").tag.split("-", 1)[1]     # "u64-sum" -> "sum"
            data = field(metric, "data").payload
            when = datetime_ns(field(data, "time"))
            for point in field(data, "data-points"):
                attrs = key_values(field(point, "attributes"))
                if kind == "gauge":
                    points.append(MetricPoint(name, _number(field(point, "value")), "g", when, attrs))
                elif kind == "sum":
                    statsd = "c" if field(data, "is-monotonic") else "g"
                    points.append(MetricPoint(name, _number(field(point, "value")), statsd, when, attrs))
                else:
                    points.append(MetricPoint(f"{name}.count", str(int(field(point, "count"))), "c", when, attrs))
                    points.append(MetricPoint(f"{name}.sum", _number(field(point, "sum")), "c", when, attrs))
    return points


def span_context_record(trace_id_hex: str, span_id: int) -> Any:
    record = component.Record()
    for name, value in (("trace-id", trace_id_hex), ("span-id", f"{span_id:016x}"), ("trace-flags", {"sampled"}),
                        ("is-remote", False), ("trace-state", [])):
        setattr(record, name, value)
    return record


def _guarded(source: CollectorSource, op: str, body: Callable[[OtelCollector], Any], default: Any = None
             ) -> Callable[..., Any]:
    def host_function(_store: Any, *args: Any) -> Any:
        collector = source.current_collector()
        try:
            return body(collector, *args)
        except Exception as exc:  # a guest value we did not expect: a fault, never a trap
            collector.fault(f"{op}: {type(exc).__name__}: {exc}"[:500])
            log.debug("wasi:otel %s failed", op, exc_info=True)
            return default
    return host_function


def link_wasi_otel(linker: component.Linker, source: CollectorSource) -> None:
    """Define every wasi:otel function of :data:`.wit.FUNCTIONS` in ``linker``."""
    def on_start(c: OtelCollector, context: Any) -> None:
        c.on_start(span_start(context), time_ns())

    def on_end(c: OtelCollector, data: Any) -> None:
        c.on_end(span_end(data))

    def current(c: OtelCollector) -> Any:
        return span_context_record(c.trace_id_hex, c.current_span())

    def on_emit(c: OtelCollector, record: Any) -> None:
        c.on_emit(log_record(record), time_ns())

    def export(c: OtelCollector, metrics: Any) -> None:
        c.on_metrics(metric_points(metrics))
        return None  # result<_, error>: wasmtime-py lowers None to ok and a str to err

    bodies: dict[str, dict[str, tuple[Callable[..., Any], Any]]] = {
        TRACING: {"on-start": (on_start, None), "on-end": (on_end, None), "current-span-context": (current, None)},
        LOGS: {"on-emit": (on_emit, None)},
        METRICS: {"export": (export, "the host could not read these metrics")},
    }
    with linker.root() as root:
        for interface, names in FUNCTIONS.items():
            with root.add_instance(interface) as instance:
                for name in names:
                    body, default = bodies[interface][name]
                    instance.add_func(name, _guarded(source, f"{interface}#{name}", body, default))
