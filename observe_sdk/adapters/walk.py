"""One walk of a :class:`~observe_sdk.trace.Trace`, for the adapters that emit as they go.

:func:`walk` yields, in the order the guest produced them, ``(step, item, span)``:

``SPAN_START``, a span, its parent span (None for a root)
``SPAN_END``, a span, its parent span (after every step below the span)
``LOG``, a log entry, the innermost open span (None when no span was open)
``METRIC``, a metric, likewise

Allocations are skipped (they are attributes of their span).  The
in-process OpenTelemetry adapter turns the steps into SDK spans, log records
and metric points; the OTLP adapter into protobuf batches.  Both see the
same tree in the same order.
"""
from __future__ import annotations

from collections.abc import Iterator

from ..trace import Event, Log, Metric, Span, Trace

SPAN_START = 0
SPAN_END = 1
LOG = 2
METRIC = 3

Step = tuple[int, Span | Log | Metric, Span | None]


def walk(trace: Trace) -> Iterator[Step]:
    """The steps of ``trace``, depth first, events in recorded order (see the module docs)."""
    for event in trace.roots:
        if type(event) is Span:
            yield from _walk_tree(event)
        elif type(event) is Log:
            yield LOG, event, None
        elif type(event) is Metric:
            yield METRIC, event, None


def _walk_tree(root: Span) -> Iterator[Step]:
    yield SPAN_START, root, None
    stack: list[tuple[Span, Span | None, Iterator[Event]]] = [(root, None, iter(root.events))]
    while stack:
        span, parent, events = stack[-1]
        for ev in events:
            if type(ev) is Span:
                yield SPAN_START, ev, span
                stack.append((ev, span, iter(ev.events)))
                break
            if type(ev) is Log:
                yield LOG, ev, span
            elif type(ev) is Metric:
                yield METRIC, ev, span
        else:
            stack.pop()
            yield SPAN_END, span, parent
