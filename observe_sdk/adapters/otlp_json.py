"""A Trace as an OTLP/JSON ``TracesData`` document.

Follows the OTLP/JSON encoding: lowerCamelCase field names, trace and span
ids as hex (16 and 8 bytes), 64-bit integers as decimal strings, enum values
as integers.  Guest logs become span events named ``log``, metrics span
events named ``metric``; faults recorded on the trace become events named
``observe.fault`` on the first root span.  Events recorded while no span was
open go on a synthetic root span named ``wasm:<module>`` so nothing is lost.

The JSON text is written directly (no intermediate dicts): encoding is on
every trace's path and large traces have hundreds of thousands of spans.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import islice
from typing import Any

from ..gcpause import gc_paused
from ..trace import Event, Log, Metric, Span, Trace, new_span_id
from ..version import __version__
from .common import (
    ATTR_ALLOCATION,
    ATTR_ERROR_MESSAGE,
    ATTR_FAULT_MESSAGE,
    DEFAULT_SERVICE_NAME,
    EVENT_LOG,
    EVENT_METRIC,
    FAULT_EVENT,
    STATUS_ERROR,
    AttrValue,
    identity_attributes,
    log_attributes,
    metric_attributes,
    span_attributes,
)
from .traceinfo import effective_trace_id, host_parent, trace_attributes

SPAN_KIND_INTERNAL = 1
SCOPE_NAME = "observe_sdk"

_dumps = json.JSONEncoder(ensure_ascii=False).encode
_INF = float("inf")


class _Strings(dict[str, str]):
    """JSON string literals, encoded once each (names and keys repeat a lot);
    ``identities`` holds the encoded identity attributes of each function."""

    def __init__(self) -> None:
        super().__init__()
        self.identities: dict[tuple[bool, int, str], str] = {}

    def __missing__(self, text: str) -> str:
        out = self[text] = _dumps(text)
        return out


def any_value_json(value: AttrValue | list[AttrValue] | tuple[AttrValue, ...], q: _Strings) -> str:
    if isinstance(value, (list, tuple)):
        return f'{{"arrayValue":{{"values":[{",".join(any_value_json(v, q) for v in value)}]}}}}'
    if isinstance(value, bool):
        return '{"boolValue":true}' if value else '{"boolValue":false}'
    if isinstance(value, int):
        return f'{{"intValue":"{value}"}}'
    if isinstance(value, float):
        if value != value or value in (_INF, -_INF):  # JSON has no NaN or infinity; protobuf's JSON spells them
            return f'{{"doubleValue":"{"NaN" if value != value else "Infinity" if value > 0 else "-Infinity"}"}}'
        return f'{{"doubleValue":{json.dumps(value)}}}'
    return f'{{"stringValue":{q[value] if len(value) < 64 else _dumps(value)}}}'


def key_values_json(attrs: dict[str, Any], q: _Strings | None = None) -> str:
    """OTLP/JSON ``KeyValue`` objects (comma-separated text) for ``attrs``; ``q`` caches string literals."""
    if q is None:
        q = _Strings()
    return ",".join(f'{{"key":{q[k]},"value":{any_value_json(v, q)}}}' for k, v in attrs.items())


def _event_json(name: str, t_ns: int, attrs: dict[str, AttrValue], q: _Strings) -> str:
    return f'{{"timeUnixNano":"{t_ns}","name":{q[name]},"attributes":[{key_values_json(attrs, q)}]}}'


def _attributes_json(span: Span, q: _Strings, extra_attrs: dict[str, AttrValue]) -> str:
    if span.tags or span.error is not None or extra_attrs:
        attrs = span_attributes(span)
        if span.error is not None:
            attrs[ATTR_ERROR_MESSAGE] = span.error
        attrs.update(extra_attrs)
        return key_values_json(attrs, q)
    # the common case: identity attributes (cached per function) and maybe an allocation
    key = (span.manual, span.function_index, span.raw_name)
    out = q.identities.get(key)
    if out is None:
        out = q.identities[key] = key_values_json(identity_attributes(span), q)
    pages = span.allocated_pages
    if pages:
        out += f',{{"key":"{ATTR_ALLOCATION}","value":{{"intValue":"{pages}"}}}}'
    return out


def _span_json(span: Span, trace_hex: str, parent_id: int, q: _Strings, extra_events: list[str],
               extra_attrs: dict[str, AttrValue]) -> str:
    events = []
    for e in span.events:
        if type(e) is Log:
            events.append(_event_json(EVENT_LOG, e.time_ns, log_attributes(e), q))
        elif type(e) is Metric:
            events.append(_event_json(EVENT_METRIC, e.time_ns, metric_attributes(e), q))
    events.extend(extra_events)
    parts = [f'{{"traceId":"{trace_hex}","spanId":"{span.span_id:016x}"']
    if parent_id:
        parts.append(f',"parentSpanId":"{parent_id:016x}"')
    parts.append(f',"name":{q[span.name]},"kind":{SPAN_KIND_INTERNAL},'
                 f'"startTimeUnixNano":"{span.start_ns}","endTimeUnixNano":"{span.end_ns}",'
                 f'"attributes":[{_attributes_json(span, q, extra_attrs)}]')
    if events:
        parts.append(f',"events":[{",".join(events)}]')
    if span.error is not None:
        parts.append(f',"status":{{"code":{STATUS_ERROR},"message":{_dumps(span.error)}}}')
    parts.append("}")
    return "".join(parts)


def _roots_with_loose_events(trace: Trace) -> list[Span]:
    roots = [e for e in trace.roots if type(e) is Span]
    loose: list[Event] = []
    start = 0
    for e in trace.roots:
        if not isinstance(e, Span):
            start = min(start, e.time_ns) if loose else e.time_ns
            loose.append(e)
    if loose:  # events with no span open: a synthetic root keeps them
        roots.append(Span(f"wasm:{trace.module_name or 'module'}", "", 0, start,
                          max(trace.end_ns, start), True, loose, [], None, new_span_id()))
    return roots


def trace_spans_json(trace: Trace, q: _Strings | None = None) -> list[str]:
    """Every span of ``trace`` as an OTLP/JSON span object (text).

    When the trace has a host parent (``traceparent`` in its metadata, see
    :mod:`.traceinfo`) its spans take the host's trace id and its roots are
    parented on the host span.
    """
    with gc_paused():
        return list(iter_trace_spans_json(trace, q))


def iter_trace_spans_json(trace: Trace, q: _Strings | None = None) -> Iterator[str]:
    """:func:`trace_spans_json`, one span at a time (the caller decides about the GC)."""
    q = q if q is not None else _Strings()
    host = host_parent(trace)
    trace_hex = f"{effective_trace_id(trace):032x}"
    roots = _roots_with_loose_events(trace)
    faults = [_event_json(FAULT_EVENT, trace.end_ns, {ATTR_FAULT_MESSAGE: m}, q) for m in trace.errors]
    root_attrs: dict[str, AttrValue] = dict(trace_attributes(trace))
    root_parent = host.span_id if host else 0
    stack: list[tuple[Span, int]] = [(r, root_parent) for r in reversed(roots)]
    while stack:
        span, parent = stack.pop()
        if parent == root_parent:   # a root: the trace's attributes (wasm.module, ...); faults on the first
            yield _span_json(span, trace_hex, parent, q, faults, root_attrs)
            faults = []
        else:
            yield _span_json(span, trace_hex, parent, q, [], {})
        sid = span.span_id
        for child in reversed(span.events):
            if type(child) is Span:
                stack.append((child, sid))


def traces_data_json(traces: list[Trace], service_name: str = DEFAULT_SERVICE_NAME,
                     resource_attributes: dict[str, AttrValue] | None = None) -> str:
    """One ``TracesData`` document (JSON text, one line) holding ``traces`` under one resource."""
    with gc_paused():
        return "".join(traces_data_json_parts(traces, service_name, resource_attributes))


def traces_data_json_parts(traces: list[Trace], service_name: str = DEFAULT_SERVICE_NAME,
                           resource_attributes: dict[str, AttrValue] | None = None,
                           spans_per_part: int = 2048) -> Iterator[str]:
    """:func:`traces_data_json` in pieces of up to ``spans_per_part`` spans, for writing a
    large document without holding it (the caller decides about the GC)."""
    q = _Strings()
    attrs: dict[str, AttrValue] = {"service.name": service_name}
    attrs.update(resource_attributes or {})
    yield (f'{{"resourceSpans":[{{"resource":{{"attributes":[{key_values_json(attrs, q)}]}},'
           f'"scopeSpans":[{{"scope":{{"name":"{SCOPE_NAME}","version":"{__version__}"}},'
           f'"spans":[')
    sep = ""
    for trace in traces:
        spans = iter_trace_spans_json(trace, q)
        while part := list(islice(spans, spans_per_part)):
            yield sep + ",".join(part)
            sep = ","
    yield "]}]}]}"


def traces_data(traces: list[Trace], service_name: str = DEFAULT_SERVICE_NAME,
                resource_attributes: dict[str, AttrValue] | None = None) -> dict[str, Any]:
    """The same document as :func:`traces_data_json`, parsed into dicts."""
    document: dict[str, Any] = json.loads(traces_data_json(traces, service_name, resource_attributes))
    return document
