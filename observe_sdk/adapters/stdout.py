"""StdoutAdapter: each trace as a readable indented tree."""
from __future__ import annotations

import re
from typing import IO, Any

from ..trace import Allocation, Log, Metric, Span, Trace
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


def format_trace(trace: Trace) -> str:
    """The trace as text: one line per span and event, children indented."""
    n_spans = sum(1 for _ in trace.spans())
    head = f"trace {trace.trace_id_hex}"
    if trace.module_name:
        head += f" module {trace.module_name}"
    head += f" ({n_spans} span{'s' if n_spans != 1 else ''}"
    if trace.errors:
        head += f", {len(trace.errors)} error{'s' if len(trace.errors) != 1 else ''}"
    if trace.dropped_events:
        head += f", {trace.dropped_events} events dropped"
    lines = [head + ")"]
    for message in trace.errors:
        lines.append(f"  ! {message}")
    stack: list[tuple[Any, int]] = [(e, 1) for e in reversed(trace.roots)]
    while stack:
        event, depth = stack.pop()
        pad = _indent(depth)
        te = type(event)
        if te is Span:
            line = f"{pad}{event.name}  {format_duration(event.duration_ns)}"
            pages = event.allocated_pages
            if pages:
                line += f"  alloc {pages} page{'s' if pages != 1 else ''}"
            if event.tags:
                line += "  [" + ", ".join(event.tags) + "]"
            if event.error is not None:
                line += f"  ERROR: {event.error}"
            lines.append(line)
            stack.extend((e, depth + 1) for e in reversed(event.events) if type(e) is not Allocation)
        elif te is Log:
            lines.append(f"{pad}log {event.severity}: {event.message}")
        elif te is Metric:
            lines.append(f"{pad}metric {event.format_name}: {event.value}")
        elif te is Allocation:
            lines.append(f"{pad}alloc {event.pages} page{'s' if event.pages != 1 else ''}")
    return "\n".join(map(_one_line, lines))


class StdoutAdapter(Adapter):
    """Prints each finished trace as an indented tree to stdout (or a stream/file)."""

    name = "stdout"

    def __init__(self, out: str | IO[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._sink = TextSink(out)

    @classmethod
    def from_env(cls, out: str | None = None, **kwargs: Any) -> "StdoutAdapter":
        return cls(out, **kwargs)

    def export(self, traces: list[Trace]) -> None:
        self._sink.write_lines(format_trace(trace) for trace in traces)

    def close(self) -> None:
        self._sink.close()
