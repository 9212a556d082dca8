"""Hand-built traces for the adapter tests (what the assembler would produce)."""
from __future__ import annotations

import itertools
import time
from typing import Any

from observe_sdk.abi import LogLevel, MetricFormat
from observe_sdk.trace import Allocation, Log, Metric, Span, Trace, new_span_id, new_trace_id

_T0 = time.time_ns()
_counter = itertools.count(1)


def make_span(name: str, start_us: int, end_us: int, *events: Any, tags: list[str] | None = None,
              manual: bool = False, error: str | None = None, index: int | None = None) -> Span:
    """A span with times in microseconds after a fixed origin."""
    return Span(name=name, raw_name=f"raw_{name}", function_index=0 if manual else (index or next(_counter)),
                start_ns=_T0 + start_us * 1000, end_ns=_T0 + end_us * 1000, manual=manual,
                events=list(events), tags=list(tags or []), error=error)


def at(us: int) -> int:
    return _T0 + us * 1000


def assign_ids(trace: Trace) -> Trace:
    """What the assembler does: span ids, and parent ids within the trace."""
    stack = [(r, 0) for r in trace.roots if type(r) is Span]
    while stack:
        span, parent = stack.pop()
        span.span_id = new_span_id()
        span.parent_id = parent
        stack.extend((c, span.span_id) for c in span.events if type(c) is Span)
    return trace


def sample_trace(module: str = "demo.wasm") -> Trace:
    """A trace like the spec's 'mixed' guest: manual and function spans, a metric, a log.

    run (manual, tags)
      main
        statsd (manual) -> metric vowels.count:1|c|#lang:en
        log_write (manual) -> log ERROR "Vowels Counted: 3"
        grow (allocation 2 pages)
    plus a root-level log and a second root span that trapped.
    """
    statsd = make_span("statsd", 20, 40,
                       Metric(MetricFormat.STATSD, "vowels.count:1|c|#lang:en", at(30)), manual=True)
    log_write = make_span("log_write", 50, 70,
                          Log(LogLevel.ERROR, "Vowels Counted: 3", at(60)), manual=True)
    grow = make_span("grow", 75, 90, Allocation(2, at(80)))
    main = make_span("main", 10, 100, statsd, log_write, grow)
    run = make_span("run", 0, 110, main, tags=["user:alice", "region:eu"], manual=True)
    trapped = make_span("crash", 200, 230, error="trap: unreachable")
    trace = Trace(trace_id=new_trace_id(),
                  roots=[Log(LogLevel.INFO, "starting", at(-5)), run, trapped],
                  module_name=module, start_ns=at(-10), end_ns=at(240))
    return assign_ids(trace)


def deep_trace(n_spans: int, fanout: int = 4) -> Trace:
    """A synthetic trace of ``n_spans`` spans: a tree ``fanout`` wide (depth ~log_fanout n)."""
    t = _T0
    spans = [Span(f"f{i % 97}", f"f{i % 97}", i % 97, t + i * 100, t + i * 100 + 50) for i in range(n_spans)]
    for i in range(1, n_spans):
        spans[(i - 1) // fanout].events.append(spans[i])
    spans[0].end_ns = t + n_spans * 100 + 50
    # parents must enclose children in time
    for i in range(n_spans - 1, 0, -1):
        parent = spans[(i - 1) // fanout]
        parent.end_ns = max(parent.end_ns, spans[i].end_ns + 1)
    trace = Trace(trace_id=new_trace_id(), roots=[spans[0]], module_name="synthetic.wasm",
                  start_ns=t, end_ns=spans[0].end_ns)
    return assign_ids(trace)
