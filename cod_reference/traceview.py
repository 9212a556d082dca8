"""A job's stored spans as the SDK's views: tree, OTLP/JSON, chrome-trace, folded stacks, HTML.

The network keeps its spans as flat records (:func:`cod_reference.telemetry.span_record`):
the orchestrator's and compute node's own spans and, inside ``call``, the guest's spans that
the Observe SDK's OpenTelemetry adapter emitted.  :func:`records_to_trace` rebuilds one
:class:`~observe_sdk.trace.Trace` from them (the guest's function spans keep their raw names
and function indices; logs, metrics, memory growth and faults come back from the span
events and attributes), so that one renderer, :mod:`observe_sdk.views`, draws both.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from observe_sdk.abi import LogLevel, MetricFormat
from observe_sdk.adapters.common import (
    ATTR_ALLOCATION,
    ATTR_ERROR_MESSAGE,
    ATTR_FAULT_MESSAGE,
    ATTR_FUNCTION_INDEX,
    ATTR_FUNCTION_RAW_NAME,
    ATTR_LOG_MESSAGE,
    ATTR_LOG_SEVERITY,
    ATTR_METRIC_FORMAT,
    ATTR_METRIC_VALUE,
    ATTR_SPAN_KIND,
    EVENT_LOG,
    EVENT_METRIC,
    FAULT_EVENT,
    STATUS_ERROR,
)
from observe_sdk.adapters.stdout import format_trace
from observe_sdk.trace import Allocation, Event, Log, Metric, Span, Trace
from observe_sdk.views import chrome_trace_json, folded_text, render_html

from .telemetry import ATTR_GUEST_SPANS_DROPPED, GUEST_SCOPE, RECORD_DEFAULTS, otlp_json

FORMATS = ("tree", "json", "chrome-trace", "folded", "html")
_NOT_TAGS = {ATTR_SPAN_KIND, ATTR_FUNCTION_INDEX, ATTR_FUNCTION_RAW_NAME, ATTR_ALLOCATION, ATTR_ERROR_MESSAGE,
             ATTR_GUEST_SPANS_DROPPED}


def _level(name: str) -> int:
    try:
        return int(LogLevel[name.upper()])
    except KeyError:
        return int(LogLevel.INFO)


def _metric_format(name: str) -> int:
    try:
        return int(MetricFormat[name.upper()])
    except KeyError:
        return int(MetricFormat.STATSD)


def _hex_id(text: str) -> int:
    try:
        return int(text, 16) if text else 0
    except ValueError:    # not an id this network wrote: the span stays, without it
        return 0


def _span(record: dict[str, Any], faults: list[str]) -> Span:
    attrs = record["attributes"]
    status = record.get("status") or RECORD_DEFAULTS["status"]
    error = attrs.get(ATTR_ERROR_MESSAGE)
    if error is None and status["code"] == STATUS_ERROR:
        error = status["message"] or "error"
    function = attrs.get(ATTR_SPAN_KIND) == "function"
    span = Span(name=record["name"], raw_name=str(attrs.get(ATTR_FUNCTION_RAW_NAME, record["name"])),
                function_index=int(attrs.get(ATTR_FUNCTION_INDEX, 0)) if function else 0,
                start_ns=int(record["startTimeUnixNano"]), end_ns=int(record["endTimeUnixNano"]),
                manual=not function, error=None if error is None else str(error),
                span_id=_hex_id(record["spanId"]), parent_id=_hex_id(record["parentSpanId"]))
    # a guest's function span has identity attributes only: no tags (the quick test, for 100k-span traces)
    span.tags = [] if attrs.keys() <= _NOT_TAGS else [f"{k}:{v}" for k, v in attrs.items() if k not in _NOT_TAGS]
    if record.get("service"):
        span.tags.append(f"service:{record['service']}")
    pages = attrs.get(ATTR_ALLOCATION)
    if pages:
        span.events.append(Allocation(int(pages), span.start_ns))
    for event in record.get("events", ()):
        span.events.append(_event(event, faults))
    return span


def _event(event: dict[str, Any], faults: list[str]) -> Event:
    attrs, when = event["attributes"], int(event["timeUnixNano"])
    if event["name"] == EVENT_LOG:
        return Log(_level(str(attrs.get(ATTR_LOG_SEVERITY, "INFO"))), str(attrs.get(ATTR_LOG_MESSAGE, "")), when)
    if event["name"] == EVENT_METRIC:
        return Metric(_metric_format(str(attrs.get(ATTR_METRIC_FORMAT, "statsd"))),
                      str(attrs.get(ATTR_METRIC_VALUE, "")), when)
    if event["name"] == FAULT_EVENT:
        faults.append(str(attrs.get(ATTR_FAULT_MESSAGE, "fault")))
        return Log(int(LogLevel.ERROR), f"fault: {attrs.get(ATTR_FAULT_MESSAGE, '')}", when)
    # any other span event (an exception, say) is shown as a log line
    text = ", ".join(f"{k}={v}" for k, v in attrs.items())
    level = LogLevel.ERROR if event["name"] == "exception" else LogLevel.INFO
    return Log(int(level), f"{event['name']}: {text}" if text else event["name"], when)


def records_to_trace(records: list[dict[str, Any]], title: str = "") -> Trace:
    """One trace of the network's span records: each span under its parent, in time order.

    Every record becomes a span: one whose parent is missing, or that sits on a cycle of
    parents (a corrupt store), becomes a root; a repeated span id keeps both spans."""
    faults: list[str] = []
    spans = [_span(r, faults) for r in records]
    faults.extend(f"{r['attributes'][ATTR_GUEST_SPANS_DROPPED]} guest span(s) of one execution dropped "
                  f"(over the limit of spans an execution keeps)"
                  for r in records if r.get("scope") == GUEST_SCOPE and ATTR_GUEST_SPANS_DROPPED in r["attributes"])
    by_id: dict[str, int] = {}
    for i, record in enumerate(records):
        by_id.setdefault(record["spanId"], i)
    children: dict[int, list[int]] = defaultdict(list)
    root_rows: list[int] = []
    for i, record in enumerate(records):
        parent = by_id.get(record["parentSpanId"]) if record["parentSpanId"] else None
        if parent is None or parent == i:
            root_rows.append(i)
        else:
            children[parent].append(i)
    placed = _reachable(root_rows, children)
    for i in range(len(spans)):     # on a cycle: nothing above reaches it
        if i not in placed:
            root_rows.append(i)
            placed |= _reachable([i], children)
            for kids in children.values():
                if i in kids:
                    kids.remove(i)
    for parent, kids in children.items():
        events: list[Event] = spans[parent].events + [spans[k] for k in kids]
        events.sort(key=lambda e: e.start_ns if isinstance(e, Span) else e.time_ns)
        spans[parent].events = events
    root_spans = sorted((spans[i] for i in root_rows), key=lambda s: s.start_ns)
    roots: list[Event] = list(root_spans)
    trace_id = bytes.fromhex(records[0]["traceId"]) if records else bytes(16)
    return Trace(trace_id=trace_id, roots=roots, errors=faults, module_name=title,
                 start_ns=min((s.start_ns for s in spans), default=0), end_ns=max((s.end_ns for s in spans), default=0))


def _reachable(rows: list[int], children: dict[int, list[int]]) -> set[int]:
    seen: set[int] = set()
    stack = list(rows)
    while stack:
        row = stack.pop()
        if row not in seen:
            seen.add(row)
            stack.extend(children.get(row, ()))
    return seen


# Attributes every span of a job repeats, or too long for a line of the tree.
_TREE_HIDDEN = ("cod.job_id:", "cod.execution.id:", "wasm.module.sha256:")


def tree_text(records: list[dict[str, Any]], title: str = "") -> str:
    """The job's trace as the SDK's text tree (:func:`observe_sdk.adapters.stdout.format_trace`,
    the one printer of ``observe-sdk run`` and ``cod job trace``): the guest's tags, allocations,
    logs and metrics included; a span's service only where it changes."""
    if not records:
        return "(no spans)"
    trace = records_to_trace(records, title)
    stack: list[tuple[Event, str]] = [(event, "") for event in trace.roots]
    while stack:
        event, outer_service = stack.pop()
        if not isinstance(event, Span):
            continue
        tags = event.tags
        if len(tags) == 1 and tags[0] == outer_service:  # the common case: only the service, as above it
            service = outer_service
            event.tags = []
        else:
            service = next((tag for tag in tags if tag.startswith("service:")), outer_service)
            event.tags = [tag for tag in tags if not tag.startswith(_TREE_HIDDEN)
                          and not (tag.startswith("service:") and tag == outer_service)]
        stack.extend((child, service) for child in event.events)
    return format_trace(trace)


def render(records: list[dict[str, Any]], fmt: str, title: str = "") -> str:
    """The spans of one job's trace in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "tree":
        return tree_text(records, title)
    if fmt == "json":
        return json.dumps(json.loads(otlp_json(records)), indent=2)
    trace = records_to_trace(records, title)
    if fmt == "chrome-trace":
        return chrome_trace_json([trace])
    if fmt == "folded":
        return folded_text([trace])
    if fmt == "html":
        return render_html([trace], title)
    raise ValueError(f"unknown trace format {fmt!r}; use one of {', '.join(FORMATS)}")


def write_trace_page(records: list[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Write the HTML view of ``records`` to ``path``; returns its absolute path."""
    out = Path(path).resolve()
    out.write_text(render(records, "html", title), encoding="utf-8")
    return out

