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
from itertools import repeat
from operator import attrgetter
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
from observe_sdk.gcpause import gc_paused
from observe_sdk.trace import Allocation, Event, Log, Metric, Span, Trace
from observe_sdk.views import chrome_trace_json, folded_text, render_html

from .telemetry import ATTR_GUEST_SPANS_DROPPED, GUEST_SCOPE, otlp_json

FORMATS = ("tree", "json", "chrome-trace", "folded", "html")
_NOT_TAGS = {ATTR_SPAN_KIND, ATTR_FUNCTION_INDEX, ATTR_FUNCTION_RAW_NAME, ATTR_ALLOCATION, ATTR_ERROR_MESSAGE,
             ATTR_GUEST_SPANS_DROPPED}
_FUNCTION_ATTRS = {ATTR_SPAN_KIND, ATTR_FUNCTION_INDEX, ATTR_FUNCTION_RAW_NAME}


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


def _span(record: dict[str, Any], faults: list[str], service_tags: dict[str, str]) -> Span:
    """The span of one record (run once per span of 100k-span traces: the common case is kept short).

    ``service_tags`` holds each service's tag text once, shared by every span of that service."""
    attrs = record["attributes"]
    name = record["name"]
    start_ns = int(record["startTimeUnixNano"])
    events: list[Event] = []
    if attrs.keys() == _FUNCTION_ATTRS and attrs[ATTR_SPAN_KIND] == "function":
        # the common case, a guest's function span: identity attributes only (no tags, error, allocation)
        manual = False
        function_index = int(attrs[ATTR_FUNCTION_INDEX])
        raw_name = str(attrs[ATTR_FUNCTION_RAW_NAME])
        error = None
        tags: list[str] = []
    else:
        manual = attrs.get(ATTR_SPAN_KIND) != "function"
        function_index = 0 if manual else int(attrs.get(ATTR_FUNCTION_INDEX, 0))
        raw_name = str(attrs.get(ATTR_FUNCTION_RAW_NAME, name))
        error = attrs.get(ATTR_ERROR_MESSAGE)
        tags = [] if attrs.keys() <= _NOT_TAGS else [f"{k}:{v}" for k, v in attrs.items() if k not in _NOT_TAGS]
        pages = attrs.get(ATTR_ALLOCATION)
        if pages:
            events.append(Allocation(int(pages), start_ns))
    if error is not None:
        error = str(error)
    else:
        status = record.get("status")
        if status and status["code"] == STATUS_ERROR:
            error = str(status["message"] or "error")
    service = record.get("service")
    if service:
        tag = service_tags.get(service)
        if tag is None:
            tag = service_tags[service] = f"service:{service}"
        tags.append(tag)
    record_events = record.get("events")
    if record_events:
        events.extend(_event(event, faults) for event in record_events)
    span_id, parent_id = record["spanId"], record["parentSpanId"]
    try:
        ids = (int(span_id, 16) if span_id else 0, int(parent_id, 16) if parent_id else 0)
    except ValueError:
        ids = (_hex_id(span_id), _hex_id(parent_id))
    return Span(name, raw_name, function_index, start_ns, int(record["endTimeUnixNano"]), manual, events, tags,
                error, *ids)


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
    with gc_paused():
        return _records_to_trace(records, title)


def _records_to_trace(records: list[dict[str, Any]], title: str) -> Trace:
    faults: list[str] = []
    service_tags: dict[str, str] = {}
    spans = [_span(r, faults, service_tags) for r in records]
    faults.extend(f"{r['attributes'][ATTR_GUEST_SPANS_DROPPED]} guest span(s) of one execution dropped "
                  f"(over the limit of spans an execution keeps)"
                  for r in records if r.get("scope") == GUEST_SCOPE and ATTR_GUEST_SPANS_DROPPED in r["attributes"])
    n = len(records)
    ids = [r["spanId"] for r in records]
    by_id = dict(zip(reversed(ids), range(n - 1, -1, -1), strict=True))  # a repeated id: its first record
    by_id.pop("", None)  # an empty parent id means a root
    parents: list[int | None] = list(map(by_id.get, (r["parentSpanId"] for r in records)))
    children: dict[int, list[int]] = defaultdict(list)
    root_rows: list[int] = []
    for i, parent in enumerate(parents):
        if parent is None or parent == i:
            root_rows.append(i)
        else:
            children[parent].append(i)
    if len(_reachable(root_rows, children)) < n:
        _break_cycles(root_rows, children, parents)
    by_start = attrgetter("start_ns")
    for parent, kids in children.items():
        span = spans[parent]
        kid_spans: list[Event] = [spans[k] for k in kids]
        if span.events:
            events = span.events + kid_spans
            events.sort(key=lambda e: e.start_ns if isinstance(e, Span) else e.time_ns)
            span.events = events
        else:  # the common case (a guest's function span): children only
            kid_spans.sort(key=by_start)
            span.events = kid_spans
    roots: list[Event] = sorted((spans[i] for i in root_rows), key=by_start)
    trace_id = bytes.fromhex(records[0]["traceId"]) if records else bytes(16)
    return Trace(trace_id=trace_id, roots=roots, errors=faults, module_name=title,
                 start_ns=min(map(by_start, spans), default=0),
                 end_ns=max(map(attrgetter("end_ns"), spans), default=0))


def _reachable(rows: list[int], children: dict[int, list[int]]) -> list[int]:
    """The rows under ``rows`` (them included), each once: a row's only way down is from its one parent."""
    seen = list(rows)
    for row in seen:  # grows as it goes: a breadth-first walk
        kids = children.get(row)
        if kids:
            seen.extend(kids)
    return seen


def _break_cycles(root_rows: list[int], children: dict[int, list[int]], parents: list[int | None]) -> None:
    """Rows no root reaches sit on (or under) a cycle of parents: the first of each such group becomes a root."""
    placed = set(_reachable(root_rows, children))
    for i in range(len(parents)):
        if i not in placed:
            root_rows.append(i)
            parent = parents[i]
            assert parent is not None, "a row no root reaches has a parent"
            children[parent].remove(i)
            placed.update(_reachable([i], children))


# Attributes every span of a job repeats, or too long for a line of the tree.
_TREE_HIDDEN = ("cod.job_id:", "cod.execution.id:", "wasm.module.sha256:")


def tree_text(records: list[dict[str, Any]], title: str = "") -> str:
    """The job's trace as the SDK's text tree (:func:`observe_sdk.adapters.stdout.format_trace`,
    the one printer of ``observe-sdk run`` and ``cod job trace``): the guest's tags, allocations,
    logs and metrics included; a span's service only where it changes."""
    if not records:
        return "(no spans)"
    with gc_paused():  # the tree is some 500k objects and no cycles
        trace = records_to_trace(records, title)
        stack: list[tuple[Event, str]] = [(event, "") for event in trace.roots]
        while stack:
            event, outer_service = stack.pop()
            if not isinstance(event, Span):
                continue
            tags = event.tags
            if len(tags) == 1 and tags[0] == outer_service:  # the common case: only the service, as above it
                service = outer_service
                tags.clear()
            else:
                service = next((tag for tag in tags if tag.startswith("service:")), outer_service)
                event.tags = [tag for tag in tags if not tag.startswith(_TREE_HIDDEN)
                              and not (tag.startswith("service:") and tag == outer_service)]
            stack.extend(zip(event.events, repeat(service)))
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

