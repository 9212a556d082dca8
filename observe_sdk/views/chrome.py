"""The Trace Event Format (Perfetto, ``chrome://tracing``, speedscope).

One process per trace (named after its module) with one thread of spans: a
complete event (``ph: "X"``) per span with its attributes in ``args``, logs
and metrics as instant events (``ph: "i"``) on that thread, and the memory the
trace grew as a counter (``ph: "C"``, cumulative pages).  ``args`` holds what the span's
attributes are in every other adapter, and no span id: speedscope tells frames apart by
name and args, and a flame graph must merge the calls of one function.  Times are
microseconds after the earliest trace start, which ``otherData`` gives in
nanoseconds since the epoch (absolute microseconds would lose precision).
"""
from __future__ import annotations

import json
from typing import Any

from ..adapters.common import (
    ATTR_ERROR_MESSAGE,
    identity_attributes,
    log_attributes,
    metric_attributes,
    span_attributes,
)
from ..trace import Log, Metric, Span, Trace
from .flat import flatten, growth_events

TID = 1


def chrome_trace(traces: list[Trace]) -> dict[str, Any]:
    """The traces as one Trace Event Format document (a JSON-ready dict)."""
    flat = flatten(traces)
    t0 = flat.start_ns
    events: list[dict[str, Any]] = []

    def us(ns: int) -> float:
        return round((ns - t0) / 1000, 3)

    # a span without tags, events or error has its identity's attributes: one dict per function
    plain_args = [identity_attributes(Span(i.name, i.raw_name, i.function_index, 0, 0, manual=i.manual))
                  for i in flat.identities]
    for number, track in enumerate(flat.tracks):
        pid = number + 1
        events.append({"ph": "M", "name": "process_name", "pid": pid, "tid": TID, "args": {"name": track.title}})
        events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": TID, "args": {"name": "spans"}})
        events.append({"ph": "M", "name": "process_sort_index", "pid": pid, "tid": TID,
                       "args": {"sort_index": number}})
        for message in track.errors:
            events.append({"ph": "i", "s": "p", "name": "fault", "cat": "fault", "pid": pid, "tid": TID,
                           "ts": us(track.end_ns), "args": {"message": message}})
        with_events = {row for row in flat.with_events if track.first <= row < track.first + track.count}
        for row in range(track.first, track.first + track.count):
            span = flat.spans[row]
            args = plain_args[flat.identity[row]]
            if span.tags or span.error is not None or row in with_events:
                args = dict(span_attributes(span))
                if span.error is not None:
                    args[ATTR_ERROR_MESSAGE] = span.error
            events.append({"ph": "X", "name": span.name, "cat": "manual" if span.manual else "function",
                           "pid": pid, "tid": TID, "ts": round((span.start_ns - t0) / 1000, 3),
                           "dur": round((span.end_ns - span.start_ns) / 1000, 3), "args": args})
            if row in with_events:
                events.extend(_instant(e, pid, us) for e in span.events if type(e) is Log or type(e) is Metric)
        events.extend(_instant(e, pid, us) for e in track.root_events if type(e) is Log or type(e) is Metric)
        pages = 0
        for growth in growth_events(flat, number):
            pages += growth.pages
            events.append({"ph": "C", "name": "memory", "pid": pid, "tid": TID, "ts": us(growth.time_ns),
                           "args": {"pages": pages}})
    return {"traceEvents": events, "displayTimeUnit": "ns",
            "otherData": {"start_unix_ns": t0, "traces": len(flat.tracks), "spans": len(flat.spans)}}


def _instant(event: Log | Metric, pid: int, us: Any) -> dict[str, Any]:
    if isinstance(event, Log):
        name, args = f"log {event.severity}", log_attributes(event)
    else:
        name, args = "metric", metric_attributes(event)
    return {"ph": "i", "s": "t", "name": name, "cat": name.split()[0], "pid": pid, "tid": TID,
            "ts": us(event.time_ns), "args": args}


def chrome_trace_json(traces: list[Trace]) -> str:
    return json.dumps(chrome_trace(traces), separators=(",", ":"))
