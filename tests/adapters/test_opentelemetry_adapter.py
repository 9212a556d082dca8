"""OpenTelemetryAdapter against the OTel SDK's in-memory exporters."""
from __future__ import annotations

import logging

import pytest
from adapter_traces import at, make_span, sample_trace
from opentelemetry.trace import StatusCode
from otel_pipeline import Pipeline

from observe_sdk.abi import LogLevel, MetricFormat
from observe_sdk.adapters.opentelemetry import OpenTelemetryAdapter
from observe_sdk.adapters.traceinfo import TRACEPARENT
from observe_sdk.trace import Log, Metric, Trace, new_trace_id


@pytest.fixture
def pipe() -> Pipeline:
    return Pipeline()


def run(adapter: OpenTelemetryAdapter, *traces: Trace) -> None:
    for t in traces:
        adapter.submit(t)
    report = adapter.shutdown(10)
    assert report.complete, report


def test_host_span_is_parent_of_wasm_roots(pipe: Pipeline) -> None:
    adapter = pipe.adapter()
    tracer = pipe.tracer_provider.get_tracer("host")
    trace = sample_trace()
    with tracer.start_as_current_span("job") as job:
        adapter.submit(trace)          # what TraceContext.finish() does on the guest's thread
    run(adapter)
    spans = {s.name: s for s in pipe.spans.get_finished_spans()}
    job_ctx = job.get_span_context()
    assert set(spans) == {"job", "run", "main", "statsd", "log_write", "grow", "crash"}
    for name in ("run", "crash"):
        assert spans[name].parent.span_id == job_ctx.span_id
        assert spans[name].context.trace_id == job_ctx.trace_id
    assert spans["main"].parent.span_id == spans["run"].context.span_id
    assert spans["statsd"].parent.span_id == spans["main"].context.span_id
    assert spans["log_write"].parent.span_id == spans["main"].context.span_id
    # guest times, attributes and status
    run_span = spans["run"]
    assert run_span.start_time == trace.roots[1].start_ns and run_span.end_time == trace.roots[1].end_ns
    assert run_span.attributes["user"] == "alice" and run_span.attributes["region"] == "eu"
    assert run_span.attributes["wasm.span.kind"] == "manual"
    assert run_span.attributes["wasm.module"] == "demo.wasm"
    assert spans["main"].attributes["function.raw_name"] == "raw_main"
    assert spans["grow"].attributes["allocation"] == 2
    assert spans["crash"].status.status_code is StatusCode.ERROR
    assert spans["crash"].status.description == "trap: unreachable"
    assert [e.name for e in spans["log_write"].events] == ["log"]
    assert [e.name for e in spans["statsd"].events] == ["metric"]


def test_without_host_span_roots_are_roots(pipe: Pipeline) -> None:
    adapter = pipe.adapter()
    run(adapter, sample_trace())
    spans = {s.name: s for s in pipe.spans.get_finished_spans()}
    # two roots and no host span: one holder span keeps them in one trace
    holder = spans["wasm:demo.wasm"]
    assert holder.parent is None and holder.attributes["wasm.span.kind"] == "module"
    assert spans["run"].parent.span_id == spans["crash"].parent.span_id == holder.context.span_id
    assert spans["run"].context.trace_id == spans["crash"].context.trace_id == holder.context.trace_id


def test_single_root_without_host_span(pipe: Pipeline) -> None:
    adapter = pipe.adapter()
    trace = sample_trace()
    trace.roots = [r for r in trace.roots if getattr(r, "name", "") != "crash"]
    run(adapter, trace)
    spans = {s.name: s for s in pipe.spans.get_finished_spans()}
    assert "wasm:demo.wasm" not in spans and spans["run"].parent is None


def test_explicit_traceparent(pipe: Pipeline) -> None:
    adapter = pipe.adapter()
    trace = sample_trace()
    trace.metadata[TRACEPARENT] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    run(adapter, trace)
    run_span = next(s for s in pipe.spans.get_finished_spans() if s.name == "run")
    assert run_span.context.trace_id == 0x0af7651916cd43dd8448eb211c80319c
    assert run_span.parent.span_id == 0xb7ad6b7169203331


def test_unsampled_host_parent_records_nothing(pipe: Pipeline) -> None:
    adapter = pipe.adapter()
    trace = sample_trace()
    trace.metadata[TRACEPARENT] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
    run(adapter, trace)
    assert pipe.spans.get_finished_spans() == ()


def test_logs_correlated_with_their_span(pipe: Pipeline, caplog: pytest.LogCaptureFixture) -> None:
    adapter = pipe.adapter()
    with caplog.at_level(logging.DEBUG, logger="observe_sdk.guest"):
        run(adapter, sample_trace())
    spans = {s.name: s for s in pipe.spans.get_finished_spans()}
    records = [r.log_record for r in pipe.logs.get_finished_logs()]
    by_body = {r.body: r for r in records}
    err = by_body["Vowels Counted: 3"]
    assert err.severity_text == "ERROR" and err.severity_number.name == "ERROR"
    assert err.span_id == spans["log_write"].context.span_id
    assert err.trace_id == spans["log_write"].context.trace_id
    assert err.timestamp == at(60)
    root_log = by_body["starting"]
    assert root_log.severity_text == "INFO"
    assert root_log.span_id == spans["wasm:demo.wasm"].context.span_id   # the holder of the roots
    # and Python logging, with the ids on the record and the guest's time
    pyrec = next(r for r in caplog.records if r.getMessage() == "Vowels Counted: 3")
    assert pyrec.levelno == logging.ERROR and pyrec.name == "observe_sdk.guest"
    assert pyrec.otelSpanID == f"{spans['log_write'].context.span_id:016x}"
    assert abs(pyrec.created - at(60) / 1e9) < 1e-6


def test_statsd_metrics_to_instruments(pipe: Pipeline) -> None:
    adapter = pipe.adapter()
    lines = [
        "vowels.count:1|c|#lang:en",
        "vowels.count:4|c|@0.5|#lang:en",       # counts as 8
        "queue.depth:10|g",
        "queue.depth:-3|g",                      # a change: 7
        "req.time:12.5|ms|#route:/a",
        "payload.size:100:300|h",                # two values at once
        "users.unique:alice|s", "users.unique:bob|s", "users.unique:alice|s",
        "not a metric",
    ]
    events = [Metric(MetricFormat.STATSD, line, at(i)) for i, line in enumerate(lines)]
    trace = Trace(trace_id=new_trace_id(), roots=[make_span("main", 0, 50, *events)])
    run(adapter, trace)
    m = pipe.metrics()
    (count,) = m["vowels.count"]
    assert count.value == 9 and dict(count.attributes)["lang"] == "en"
    assert [p.value for p in m["queue.depth"]] == [7]
    (timer,) = m["req.time"]
    assert timer.count == 1 and timer.sum == 12.5 and dict(timer.attributes)["route"] == "/a"
    (hist,) = m["payload.size"]
    assert hist.count == 2 and hist.sum == 400
    assert [p.value for p in m["users.unique"]] == [2]
    assert adapter.invalid_metrics == 1
    # exemplars link a measurement to the span it was made in
    main = next(s for s in pipe.spans.get_finished_spans() if s.name == "main")
    assert any(e.span_id == main.context.span_id for e in count.exemplars)


def test_guest_chosen_metric_names_and_set_members_are_bounded(pipe: Pipeline, monkeypatch) -> None:
    from observe_sdk.adapters import opentelemetry as otel_adapter

    monkeypatch.setattr(otel_adapter, "_MAX_INSTRUMENTS", 3)
    monkeypatch.setattr(otel_adapter, "_MAX_SET_MEMBERS_TOTAL", 4)
    adapter = pipe.adapter(python_logging=False)
    lines = [f"s:{m}|s" for m in "abcdef"]                           # a set of six, room for four
    lines += [f"name{i}:1|c" for i in range(5)]                      # with s, three names too many
    events = [Metric(MetricFormat.STATSD, line, at(i)) for i, line in enumerate(lines)]
    run(adapter, Trace(trace_id=new_trace_id(), roots=[make_span("main", 0, 50, *events)]))
    m = pipe.metrics()
    assert sorted(m) == ["name0", "name1", "s"]
    assert [p.value for p in m["s"]] == [4]
    assert adapter.invalid_metrics == 3


def test_negative_counter_increment_is_skipped_and_counted(pipe: Pipeline) -> None:
    adapter = pipe.adapter(python_logging=False)
    events = [Metric(MetricFormat.STATSD, line, at(i)) for i, line in enumerate(["c:-2|c", "c:3|c"])]
    run(adapter, Trace(trace_id=new_trace_id(), roots=[make_span("main", 0, 50, *events)]))
    assert [p.value for p in pipe.metrics()["c"]] == [3]
    assert adapter.invalid_metrics == 1


def test_signals_can_be_turned_off(pipe: Pipeline) -> None:
    adapter = OpenTelemetryAdapter(False, pipe.meter_provider, pipe.logger_provider,
                                   python_logging=False, flush_interval=0.01)
    trace = sample_trace()
    trace.metadata[TRACEPARENT] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    run(adapter, trace)
    assert pipe.spans.get_finished_spans() == ()
    logs = [r.log_record for r in pipe.logs.get_finished_logs()]
    assert {r.body for r in logs} == {"starting", "Vowels Counted: 3"}
    assert all(r.span_id == 0xb7ad6b7169203331 for r in logs)    # still in the host's trace
    assert "vowels.count" in pipe.metrics()


def test_global_providers_by_default() -> None:
    adapter = OpenTelemetryAdapter.from_env()
    assert adapter.name == "opentelemetry"
    assert adapter.shutdown(1).complete


def test_no_global_tracer_provider_is_said_once(monkeypatch, caplog) -> None:
    from opentelemetry import trace as otel_trace
    from opentelemetry.trace import ProxyTracerProvider

    monkeypatch.setattr(otel_trace, "get_tracer_provider", ProxyTracerProvider)   # nothing configured
    adapter = OpenTelemetryAdapter(None, False, False, python_logging=False, flush_interval=0.01)
    run(adapter, sample_trace(), sample_trace())
    assert [r.getMessage() for r in caplog.records if "TracerProvider" in r.getMessage()] == [
        "opentelemetry: no OpenTelemetry TracerProvider is set (opentelemetry.trace.set_tracer_provider"
        " or opentelemetry-instrument); guest spans go nowhere"]


def test_unknown_log_level_and_metric_format(pipe: Pipeline) -> None:
    adapter = pipe.adapter(python_logging=False)
    trace = Trace(trace_id=new_trace_id(), roots=[make_span(
        "main", 0, 10, Log(42, "odd level", at(1)), Metric(7, "x:1|c", at(2)))])
    run(adapter, trace)
    (rec,) = [r.log_record for r in pipe.logs.get_finished_logs()]
    assert rec.body == "odd level" and rec.severity_text == "LEVEL42"
    assert adapter.invalid_metrics == 1
    assert LogLevel.ERROR  # the enum is what maps known levels
