"""StdoutAdapter: each trace as a readable indented tree."""
from __future__ import annotations

import re
from typing import IO, Any

from ..gcpause import gc_paused
from ..trace import Allocation, Event, Log, Metric, Span, Trace
from .base import Adapter
from .sink import TextSink


def format_duration(ns: int) -> str:
    if ns >= 1_000_000_000:
        return f"{ns / 1e9:.3f} s"
    if ns >= 1_000_000:
        return f"{ns / 1e6:.3f} ms"
    if ns >= 1_000:
        return f"{ns / 1e3:.1f} us"
    return f"{ns} ns"


MAX_INDENT = 40
"""Deeper lines are indented this much and show their depth: a guest that nests
a million spans must not make the text grow with the square of its depth."""


def _indent(depth: int) -> str:
    if depth <= MAX_INDENT:
        return "  " * depth
    return f"{'  ' * MAX_INDENT}[depth {depth}] "


_CONTROL = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")


def _one_line(line: str) -> str:
    """Control characters (a guest's newlines, say) escaped: one line stays one line."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], line) if _CONTROL.search(line) else line


_PADS = ["  " * depth for depth in range(MAX_INDENT + 1)]


def _pages(pages: int) -> str:
    return f"alloc {pages} page{'s' if pages != 1 else ''}"


def format_trace(trace: Trace) -> str:
    """The trace as text: one line per span and event, children indented.

    Every piece of guest text is escaped (:func:`_one_line`) on its own; span
    names, which repeat, once each.
    """
    with gc_paused():
        return _format_trace(trace)


def _format_trace(trace: Trace) -> str:
    lines = [""]        # the head line, once the spans are counted
    lines += [_one_line(f"  ! {message}") for message in trace.errors]
    add = lines.append
    names: dict[str, str] = {}
    durations: dict[int, str] = {}  # spans of a trace share few distinct durations; each is formatted once
    n_spans = 0
    stack: list[tuple[Event, int]] = [(e, 1) for e in reversed(trace.roots)]
    pop, push = stack.pop, stack.append
    while stack:
        event, depth = pop()
        pad = _PADS[depth] if depth <= MAX_INDENT else _indent(depth)
        if type(event) is Span:
            n_spans += 1
            name = names.get(event.name)
            if name is None:
                name = names[event.name] = _one_line(event.name)
            ns = event.end_ns - event.start_ns
            duration = durations.get(ns)
            if duration is None:
                duration = durations[ns] = format_duration(ns)
            line = f"{pad}{name}  {duration}"
            events = event.events
            if events or event.tags or event.error is not None:
                pages = 0
                for e in reversed(events):
                    if type(e) is Allocation:
                        pages += e.pages
                    else:
                        push((e, depth + 1))
                if pages:
                    line += "  " + _pages(pages)
                if event.tags:
                    line += "  [" + _one_line(", ".join(event.tags)) + "]"
                if event.error is not None:
                    line += "  ERROR: " + _one_line(event.error)
            add(line)
        elif type(event) is Log:
            add(_one_line(f"{pad}log {event.severity}: {event.message}"))
        elif type(event) is Metric:
            add(_one_line(f"{pad}metric {event.format_name}: {event.value}"))
        elif type(event) is Allocation:
            add(pad + _pages(event.pages))
    head = f"trace {trace.trace_id_hex}"
    if trace.module_name:
        head += f" module {trace.module_name}"
    head += f" ({n_spans} span{'s' if n_spans != 1 else ''}"
    if trace.errors:
        head += f", {len(trace.errors)} error{'s' if len(trace.errors) != 1 else ''}"
    if trace.dropped_events:
        head += f", {trace.dropped_events} events dropped"
    lines[0] = _one_line(head + ")")
    return "\n".join(lines)


class StdoutAdapter(Adapter):
    """Prints each finished trace as an indented tree to stdout (or a stream/file)."""

    name = "stdout"

    def __init__(self, out: str | IO[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._sink = TextSink(out)

    @classmethod
    def from_env(cls, out: str | None = None, **kwargs: Any) -> StdoutAdapter:
        return cls(out, **kwargs)

    def export(self, traces: list[Trace]) -> None:
        self._sink.write_lines(format_trace(trace) for trace in traces)

    def close(self) -> None:
        self._sink.close()
