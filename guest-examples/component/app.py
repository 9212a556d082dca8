"""A Python guest (built into a component by componentize-py) that reports its
work through wasi:otel: nested spans, a log record and a metric."""
from __future__ import annotations

import json
import os
from types import TracebackType

from wit_world import WitWorld as WitWorldBase
from wit_world.exports import Run as RunBase
from wit_world.imports import logs, metrics, tracing, types, wall_clock

SCOPE = types.InstrumentationScope(name="otel-guest", version="1.0", schema_url=None, attributes=[])


class span:
    """``with span("name", key=value):`` starts a child of the current span and ends it on exit."""

    def __init__(self, name: str, **attributes: object) -> None:
        self.name = name
        self.attributes = [types.KeyValue(key=k, value=json.dumps(v)) for k, v in attributes.items()]

    def __enter__(self) -> span:
        parent = tracing.current_span_context()
        self.parent_id = parent.span_id
        self.context = tracing.SpanContext(trace_id=parent.trace_id, span_id=os.urandom(8).hex(),
                                           trace_flags=parent.trace_flags, is_remote=False, trace_state=[])
        self.start = wall_clock.now()
        tracing.on_start(self.context)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        status = tracing.Status_Unset() if error is None else tracing.Status_Error(str(error))
        tracing.on_end(tracing.SpanData(
            span_context=self.context, parent_span_id=self.parent_id, span_kind=tracing.SpanKind.INTERNAL,
            name=self.name, start_time=self.start, end_time=wall_clock.now(), attributes=self.attributes,
            events=[], links=[], status=status, instrumentation_scope=SCOPE,
            dropped_attributes=0, dropped_events=0, dropped_links=0))


def log(level: str, number: int, message: str) -> None:
    context = tracing.current_span_context()
    logs.on_emit(logs.LogRecord(
        timestamp=wall_clock.now(), observed_timestamp=None, severity_text=level, severity_number=number,
        body=json.dumps(message), attributes=None, event_name=None, resource=None, instrumentation_scope=SCOPE,
        trace_id=context.trace_id, span_id=context.span_id, trace_flags=context.trace_flags))


def count(name: str, value: int) -> None:
    now = wall_clock.now()
    point = metrics.SumDataPoint(attributes=[], value=metrics.MetricNumber_U64(value), exemplars=[])
    data = metrics.MetricData_U64Sum(metrics.Sum(data_points=[point], start_time=now, time=now,
                                                 temporality=metrics.Temporality.CUMULATIVE, is_monotonic=True))
    metrics.export(metrics.ResourceMetrics(
        resource=types.Resource(attributes=[], schema_url=None),
        scope_metrics=[metrics.ScopeMetrics(scope=SCOPE, metrics=[
            metrics.Metric(name=name, description="", unit="1", data=data)])]))


def vowels(text: str) -> int:
    with span("count-vowels", text=text):
        found = sum(ch in "aeiou" for ch in text.lower())
    count("vowels.count", found)
    return found


class Run(RunBase):
    def run(self) -> None:
        with span("main"):
            with span("greet"):
                print("hello from a wasi:otel component")
            log("INFO", 9, f"{vowels('Hello, WebAssembly')} vowels")


def _context(span_id: str, trace_id: str | None = None) -> tracing.SpanContext:
    parent = tracing.current_span_context()
    return tracing.SpanContext(trace_id=trace_id or parent.trace_id, span_id=span_id,
                               trace_flags=parent.trace_flags, is_remote=False, trace_state=[])


def _end(span_id: str, parent_id: str, name: str = "bad", start: wall_clock.Datetime | None = None,
         end: wall_clock.Datetime | None = None, attributes: list[types.KeyValue] | None = None) -> None:
    now = wall_clock.now()
    tracing.on_end(tracing.SpanData(
        span_context=_context(span_id), parent_span_id=parent_id, span_kind=tracing.SpanKind.INTERNAL,
        name=name, start_time=start or now, end_time=end or now, attributes=attributes or [], events=[], links=[],
        status=tracing.Status_Unset(), instrumentation_scope=SCOPE,
        dropped_attributes=0, dropped_events=0, dropped_links=0))


def misbehave(how: str, n: int) -> None:
    top = tracing.current_span_context().span_id
    if how == "bad-id":
        tracing.on_start(_context("not-hex!"))
        _end("123", top)
    elif how == "end-without-start":
        _end("00000000000000aa", top, "orphan-end")
    elif how == "unknown-parent":
        tracing.on_start(_context("00000000000000bb"))
        _end("00000000000000bb", "00000000000000cc", "lost-parent")
    elif how == "end-before-start":
        tracing.on_start(_context("00000000000000dd"))
        _end("00000000000000dd", top, "backwards", start=wall_clock.Datetime(seconds=2_000_000_000, nanoseconds=0),
             end=wall_clock.Datetime(seconds=1_000_000_000, nanoseconds=0))
    elif how == "cycle":
        tracing.on_start(_context("00000000000000e1"))
        tracing.on_start(_context("00000000000000e2"))
        _end("00000000000000e2", "00000000000000e1", "e2")
        _end("00000000000000e1", "00000000000000e2", "e1")
    elif how == "huge":
        tracing.on_start(_context("00000000000000f1"))
        _end("00000000000000f1", top, "x" * n, attributes=[types.KeyValue(key=f"k{i}", value="v" * n)
                                                           for i in range(1000)])
    elif how == "flood":
        for i in range(n):
            with span("flood"):
                pass
    elif how == "never-ended":
        tracing.on_start(_context("00000000000000ab"))
    elif how == "trap":
        with span("doomed"):
            os._exit(3)  # no unwinding: the span stays open and the host must close it


class WitWorld(WitWorldBase):
    def misbehave(self, how: str, n: int) -> int:
        misbehave(how, n)
        return 0

    def work(self, n: int) -> int:
        total = 0
        with span("work", n=n):
            for i in range(n):
                with span("step"):
                    total += i
        return total
