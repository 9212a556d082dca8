"""Traces as one flat table of spans: what every view draws from.

:func:`flatten` walks a list of :class:`~observe_sdk.trace.Trace` once, depth first,
and gives each span a row: its parent's row, its self time (duration minus its
children's), and an index into a table of distinct identities (display name, raw
name, function index, kind), so that a view of 250k calls of one function names it
once.  Each trace is a track: a range of consecutive rows.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..trace import Allocation, Event, Span, Trace


@dataclass(frozen=True, slots=True)
class Identity:
    name: str
    raw_name: str
    function_index: int
    manual: bool


@dataclass(slots=True)
class Track:
    """One trace: its title and the rows ``first .. first + count - 1`` of its spans."""
    title: str
    trace_id: str
    module: str
    errors: list[str]
    dropped_events: int
    start_ns: int
    end_ns: int
    root_events: list[Event] = field(default_factory=list)   # logs, metrics, growth outside any span
    first: int = 0
    count: int = 0


@dataclass(slots=True)
class FlatTrace:
    """Every span of every track, in depth-first order (a parent before its children)."""
    identities: list[Identity] = field(default_factory=list)
    tracks: list[Track] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    identity: list[int] = field(default_factory=list)
    parent: list[int] = field(default_factory=list)     # row of the parent span, -1 for a root
    self_ns: list[int] = field(default_factory=list)
    with_events: list[int] = field(default_factory=list)  # rows whose span holds logs, metrics or growth

    @property
    def start_ns(self) -> int:
        return min((t.start_ns for t in self.tracks), default=0)


def track_title(trace: Trace, number: int) -> str:
    return trace.module_name or f"trace {number + 1} ({trace.trace_id_hex[:8]})"


def flatten(traces: list[Trace]) -> FlatTrace:
    flat = FlatTrace()
    ids: dict[tuple[str, str, int, bool], int] = {}
    # the loop runs once per span (a quarter of a million for fib(25)): bound methods, no per-span objects
    spans, identity, parents = flat.spans.append, flat.identity.append, flat.parent.append
    self_ns, with_events = flat.self_ns.append, flat.with_events.append
    for number, trace in enumerate(traces):
        roots = trace.root_spans
        track = Track(title=track_title(trace, number), trace_id=trace.trace_id_hex, module=trace.module_name,
                      errors=list(trace.errors), dropped_events=trace.dropped_events,
                      start_ns=trace.start_ns or min((s.start_ns for s in roots), default=0),
                      end_ns=max([trace.end_ns, *(s.end_ns for s in roots)]),
                      root_events=[e for e in trace.roots if type(e) is not Span], first=len(flat.spans))
        flat.tracks.append(track)
        stack: list[tuple[Span, int]] = [(s, -1) for s in reversed(roots)]
        row = track.first
        while stack:
            span, parent = stack.pop()
            key = (span.name, span.raw_name, span.function_index, span.manual)
            ident = ids.get(key)
            if ident is None:
                ident = ids[key] = len(flat.identities)
                flat.identities.append(Identity(*key))
            spans(span)
            identity(ident)
            parents(parent)
            own = span.end_ns - span.start_ns
            children = []
            other = False
            for event in span.events:
                if type(event) is Span:
                    children.append(event)
                    own -= event.end_ns - event.start_ns
                else:
                    other = True
            self_ns(own if own > 0 else 0)
            if other:
                with_events(row)
            stack.extend([(c, row) for c in reversed(children)])
            row += 1
        track.count = len(flat.spans) - track.first
    return flat


def growth_events(flat: FlatTrace, track: int) -> list[Allocation]:
    """The memory growth of one track, in time order."""
    t = flat.tracks[track]
    found = [e for e in t.root_events if type(e) is Allocation]
    for row in flat.with_events:
        if t.first <= row < t.first + t.count:
            found.extend(e for e in flat.spans[row].events if type(e) is Allocation)
    found.sort(key=lambda a: a.time_ns)
    return found
