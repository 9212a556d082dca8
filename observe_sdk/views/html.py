"""One self-contained HTML file: a timeline, a flame graph and the details of a span.

The page (``static/trace.html``, ``trace.css``, ``trace.js``) is inlined with the
trace's data; it fetches nothing, so it opens offline from disk.  The data is
columnar and delta-encoded (a quarter of a million spans stay a few MB): per span,
in depth-first order, the distance back to its parent's row (``p``, 0 for a root),
its start after the previous span's start (``s``, ns), its duration (``d``, ns) and
its identity (``n``, an index into ``ids``); only spans that have tags, logs,
metrics, allocations or an error have an entry in ``x``.
"""
from __future__ import annotations

import html
import json
from importlib import resources
from typing import Any

from ..trace import Allocation, Log, Metric, Span, Trace
from .flat import flatten


def _static(name: str) -> str:
    return resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")


def view_data(traces: list[Trace], title: str = "") -> dict[str, Any]:
    """What the page draws, as a JSON-ready dict (see the module's docstring)."""
    flat = flatten(traces)
    t0 = flat.start_ns
    parents = [row - parent if parent >= 0 else 0 for row, parent in enumerate(flat.parent)]
    begins = [span.start_ns for span in flat.spans]
    starts = [b - a for a, b in zip([t0, *begins], begins, strict=False)]
    durations = [span.end_ns - span.start_ns for span in flat.spans]
    extra: dict[str, dict[str, Any]] = {}
    events = set(flat.with_events)
    for row, span in enumerate(flat.spans):
        if span.tags or span.error is not None or row in events:
            extra[str(row)] = _extra(span, t0)
    return {
        "v": 1,
        "title": title or ", ".join(dict.fromkeys(t.title for t in flat.tracks)) or "trace",
        "t0": str(t0),
        "ids": [[i.name, i.raw_name, i.function_index, int(i.manual)] for i in flat.identities],
        "tracks": [{"title": t.title, "traceId": t.trace_id, "module": t.module, "errors": t.errors,
                    "dropped": t.dropped_events, "start": t.start_ns - t0, "end": t.end_ns - t0,
                    "first": t.first, "count": t.count,
                    "events": _events(t.root_events, t0)} for t in flat.tracks],
        "p": parents, "s": starts, "d": durations, "n": flat.identity, "x": extra,
    }


def _events(events: list[Any], t0: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    pages = sum(e.pages for e in events if type(e) is Allocation)
    if pages:
        out["alloc"] = pages
    logs = [[e.time_ns - t0, e.severity, e.message] for e in events if type(e) is Log]
    if logs:
        out["logs"] = logs
    metrics = [[e.time_ns - t0, e.format_name, e.value] for e in events if type(e) is Metric]
    if metrics:
        out["metrics"] = metrics
    return out


def _extra(span: Span, t0: int) -> dict[str, Any]:
    out = _events(span.events, t0)
    if span.tags:
        out["tags"] = span.tags
    if span.error is not None:
        out["error"] = span.error
    return out


def render_html(traces: list[Trace], title: str = "") -> str:
    """The whole page for ``traces``, ready to write to a ``.html`` file."""
    data = view_data(traces, title)
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    # inside <script>, "</" could end the element and "<!--" start a comment
    payload = payload.replace("<", "\\u003c")
    page = _static("trace.html")
    page = page.replace("{{title}}", html.escape(data["title"]))
    page = page.replace("/*{{style}}*/", _static("trace.css"))
    page = page.replace("/*{{script}}*/", _static("trace.js"))
    head, _, tail = page.partition("{{data}}")
    return head + payload + tail
