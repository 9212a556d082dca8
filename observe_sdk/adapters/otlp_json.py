"""A Trace as an OTLP/JSON ``TracesData`` document.

Follows the OTLP/JSON encoding: lowerCamelCase field names, trace and span
ids as hex (16 and 8 bytes), 64-bit integers as decimal strings, enum values
as integers.  Guest logs become span events named ``log``, metrics span
events named ``metric``; faults recorded on the trace become events named
``observe.fault`` on the first root span.  Events recorded while no span was
open go on a synthetic root span named ``wasm:<module>`` so nothing is lost.
"""
from __future__ import annotations

from typing import Any

from ..trace import Allocation, Log, Metric, Span, Trace, new_span_id, span_id_hex
from .common import (
    ATTR_ERROR_MESSAGE,
    DEFAULT_SERVICE_NAME,
    EVENT_LOG,
    EVENT_METRIC,
    STATUS_ERROR,
    AttrValue,
    log_attributes,
    metric_attributes,
    span_attributes,
)

SPAN_KIND_INTERNAL = 1
SCOPE_NAME = "observe_sdk"
FAULT_EVENT = "observe.fault"


def any_value(value: AttrValue) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": str(value)}


def key_values(attrs: dict[str, AttrValue]) -> list[dict[str, Any]]:
    return [{"key": k, "value": any_value(v)} for k, v in attrs.items()]


def _event(name: str, t_ns: int, attrs: dict[str, AttrValue]) -> dict[str, Any]:
    return {"timeUnixNano": str(t_ns), "name": name, "attributes": key_values(attrs)}


def _span_json(span: Span, trace_hex: str, parent_hex: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "traceId": trace_hex,
        "spanId": span_id_hex(span.span_id),
        "name": span.name,
        "kind": SPAN_KIND_INTERNAL,
        "startTimeUnixNano": str(span.start_ns),
        "endTimeUnixNano": str(span.end_ns),
        "attributes": key_values(span_attributes(span)),
    }
    if parent_hex:
        out["parentSpanId"] = parent_hex
    events = []
    for e in span.events:
        te = type(e)
        if te is Log:
            events.append(_event(EVENT_LOG, e.time_ns, log_attributes(e)))
        elif te is Metric:
            events.append(_event(EVENT_METRIC, e.time_ns, metric_attributes(e)))
    if events:
        out["events"] = events
    if span.error is not None:
        out["status"] = {"code": STATUS_ERROR, "message": span.error}
        out["attributes"].append({"key": ATTR_ERROR_MESSAGE, "value": {"stringValue": span.error}})
    return out


def trace_spans_json(trace: Trace, parent_span_id: str = "") -> list[dict[str, Any]]:
    """Every span of ``trace`` as OTLP/JSON span objects (roots get ``parent_span_id``)."""
    trace_hex = trace.trace_id.hex()
    roots = trace.roots
    loose = [e for e in roots if type(e) is not Span]
    if loose:  # events with no span open: a synthetic root keeps them
        start = min(e.time_ns for e in loose)
        holder = Span(f"wasm:{trace.module_name or 'module'}", "", 0, start,
                      max(trace.end_ns, start), True, loose, [], None, new_span_id())
        roots = [e for e in roots if type(e) is Span] + [holder]
    out: list[dict[str, Any]] = []
    stack: list[tuple[Span, str]] = [(r, parent_span_id) for r in reversed(roots) if type(r) is Span]
    while stack:
        span, parent_hex = stack.pop()
        out.append(_span_json(span, trace_hex, parent_hex))
        my_hex = out[-1]["spanId"]
        for child in reversed(span.events):
            if type(child) is Span:
                stack.append((child, my_hex))
    if out and (trace.errors or trace.dropped_events):
        first = out[0]
        faults = first.setdefault("events", [])
        for message in trace.errors:
            faults.append(_event(FAULT_EVENT, trace.end_ns, {"message": message}))
        if trace.dropped_events:
            first["attributes"].append({"key": "observe.dropped_events",
                                        "value": {"intValue": str(trace.dropped_events)}})
    return out


def traces_data(traces: list[Trace], service_name: str = DEFAULT_SERVICE_NAME,
                resource_attributes: dict[str, AttrValue] | None = None) -> dict[str, Any]:
    """One ``TracesData`` document holding ``traces`` under one resource."""
    from .. import __version__

    attrs: dict[str, AttrValue] = {"service.name": service_name}
    attrs.update(resource_attributes or {})
    spans: list[dict[str, Any]] = []
    for trace in traces:
        spans.extend(trace_spans_json(trace, trace.metadata.get("otel_parent_span_id", "")))
    return {
        "resourceSpans": [{
            "resource": {"attributes": key_values(attrs)},
            "scopeSpans": [{"scope": {"name": SCOPE_NAME, "version": __version__}, "spans": spans}],
        }]
    }


__all__ = ["traces_data", "trace_spans_json", "any_value", "key_values", "Allocation"]
