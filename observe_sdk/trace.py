"""What a finished trace is: plain dataclasses handed to adapters.

A :class:`Trace` is a forest: its ``roots`` hold spans and the events that were
recorded while no span was open.  A :class:`Span` holds, in order, the events
recorded while it was the innermost open span: child spans, allocations, logs
and metrics.  Tags are kept on the span itself.
"""
from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .abi import LogLevel, MetricFormat

_rng = random.Random(os.urandom(16))


def new_trace_id() -> bytes:
    """A random, non-zero 128-bit trace id."""
    while True:
        tid = os.urandom(16)
        if any(tid):
            return tid


def new_span_id() -> int:
    """A random, non-zero 64-bit span id (as an int; ``span_id_hex`` formats it)."""
    return _rng.getrandbits(64) or 1


@dataclass(slots=True)
class Allocation:
    pages: int
    time_ns: int


@dataclass(slots=True)
class Log:
    level: int
    message: str
    time_ns: int

    @property
    def severity(self) -> str:
        try:
            return LogLevel(self.level).name
        except ValueError:
            return f"LEVEL{self.level}"


@dataclass(slots=True)
class Metric:
    format: int
    value: str
    time_ns: int

    @property
    def format_name(self) -> str:
        try:
            return MetricFormat(self.format).name.lower()
        except ValueError:
            return f"format{self.format}"


@dataclass(slots=True)
class Span:
    name: str                 # demangled display name
    raw_name: str             # the name as the module names it (possibly mangled)
    function_index: int       # index in the module's function space; 0 for manual spans
    start_ns: int             # wall clock, ns since the epoch
    end_ns: int
    manual: bool = False      # opened by span-enter rather than by an instrumented function
    events: list[Event] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    error: str | None = None  # set when the span was closed by a trap, exit or fault
    span_id: int = 0
    parent_id: int = 0        # 0 for a root span

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    @property
    def allocated_pages(self) -> int:
        """Pages of memory growth recorded directly in this span."""
        return sum(e.pages for e in self.events if type(e) is Allocation)

    @property
    def children(self) -> list[Span]:
        return [e for e in self.events if type(e) is Span]

    def tag_pairs(self) -> list[tuple[str, str]]:
        """Tags as (key, value); a tag without ``:`` has an empty value."""
        out = []
        for tag in self.tags:
            key, sep, value = tag.partition(":")
            out.append((key.strip(), value.strip()))
        return out

    def walk(self) -> Iterator[Span]:
        """This span and every span below it, depth first."""
        stack = [self]
        while stack:
            span = stack.pop()
            yield span
            stack.extend(reversed([e for e in span.events if type(e) is Span]))


Event = Span | Allocation | Log | Metric


@dataclass(slots=True)
class Trace:
    trace_id: bytes
    roots: list[Event] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # guest faults, in order
    dropped_events: int = 0                           # events not recorded (event cap)
    module_name: str = ""
    start_ns: int = 0
    end_ns: int = 0

    @property
    def trace_id_hex(self) -> str:
        return self.trace_id.hex()

    def spans(self) -> Iterator[Span]:
        """Every span of the trace, depth first, roots in order."""
        for root in self.roots:
            if type(root) is Span:
                yield from root.walk()

    @property
    def root_spans(self) -> list[Span]:
        return [e for e in self.roots if type(e) is Span]


def span_id_hex(span_id: int) -> str:
    return f"{span_id:016x}"
