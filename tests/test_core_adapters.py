"""StdoutAdapter and OtelStdoutAdapter output; the adapter base's delivery rules."""
from __future__ import annotations

import base64
import io
import json
import threading
import time

import pytest
import wasmtime
from google.protobuf import json_format
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

import wat_modules as W
from observe_sdk import Options
from observe_sdk.adapters.base import Adapter, TransientExportError
from observe_sdk.adapters.otel_stdout import OtelStdoutAdapter
from observe_sdk.adapters.stdout import StdoutAdapter, format_trace
from sdk_helpers import wasm_of


def observed(guest_factory, adapter, wat, calls=("_start",), opts=None):
    g = guest_factory(wasm_of(wat), adapter, opts or Options(min_span_duration_us=0, recorder="python"))
    for name in calls:
        try:
            g.call(name)
        except (wasmtime.Trap, wasmtime.ExitTrap):  # a guest that traps or exits still leaves its trace
            pass
    return g.ctx.finish()


def test_stdout_tree_is_readable(guest_factory):
    out = io.StringIO()
    adapter = StdoutAdapter(out)
    observed(guest_factory, adapter, W.MIXED)
    observed(guest_factory, adapter, W.NESTED)
    assert adapter.shutdown().complete
    text = out.getvalue()
    lines = text.splitlines()
    assert lines[0].startswith("trace ") and "(4 spans)" in lines[0]
    assert any(line.startswith("  main  ") for line in lines)
    assert "    run  " in text and "[user:alice, role:x]" in text
    assert "      metric statsd: vowels.count:1|c" in text
    assert "    log ERROR: Vowels Counted: 3" in text
    assert "        three  " in text and "alloc 1 page" in text


def test_stdout_shows_errors(guest_factory):
    out = io.StringIO()
    adapter = StdoutAdapter(out)
    trace = observed(guest_factory, adapter, W.TRAP)
    adapter.shutdown()
    text = format_trace(trace)
    assert "1 error" in text and "ERROR: trap:" in text


def parse_otlp(line: str) -> TracesData:
    """Parse OTLP/JSON with opentelemetry-proto's messages.

    OTLP/JSON writes ids as hex where protobuf's JSON mapping expects base64,
    so ids are re-encoded first (and must be valid hex of the right length).
    """
    doc = json.loads(line)
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                for key, size in (("traceId", 16), ("spanId", 8), ("parentSpanId", 8)):
                    if key in span:
                        raw = bytes.fromhex(span[key])
                        assert len(raw) == size
                        span[key] = base64.b64encode(raw).decode()
    return json_format.Parse(json.dumps(doc), TracesData())


def test_otel_stdout_is_valid_otlp_json(guest_factory, tmp_path):
    path = tmp_path / "traces.jsonl"
    adapter = OtelStdoutAdapter(str(path), service_name="my-svc")
    t1 = observed(guest_factory, adapter, W.MIXED)
    t2 = observed(guest_factory, adapter, W.TRAP)
    assert adapter.shutdown().complete
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    doc = json.loads(lines[0])
    msg = parse_otlp(lines[0])
    rs = msg.resource_spans[0]
    assert {a.key: a.value.string_value for a in rs.resource.attributes}["service.name"] == "my-svc"
    spans = rs.scope_spans[0].spans
    assert [s.name for s in spans] == ["main", "run", "helper", "statsd"]
    raw = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    for s in raw:
        assert len(s["traceId"]) == 32 and len(s["spanId"]) == 16 and s["traceId"] == t1.trace_id_hex
        assert isinstance(s["startTimeUnixNano"], str) and s["kind"] == 1
    assert "parentSpanId" not in raw[0]
    assert raw[1]["parentSpanId"] == raw[0]["spanId"] and raw[3]["parentSpanId"] == raw[1]["spanId"]
    attrs = {a.key: a.value for a in spans[0].attributes}
    assert attrs["function.index"].int_value == 8 and attrs["function.raw_name"].string_value == "main"
    assert {a["key"]: a["value"] for a in raw[0]["attributes"]}["function.index"] == {"intValue": "8"}
    run_attrs = {a.key: a.value.string_value for a in spans[1].attributes}
    assert run_attrs["user"] == "alice" and run_attrs["role"] == "x"
    (log_event,) = spans[0].events
    assert log_event.name == "log"
    assert {a.key: a.value.string_value for a in log_event.attributes} == {
        "log.severity": "ERROR", "log.message": "Vowels Counted: 3"}
    (metric_event,) = spans[3].events
    assert {a.key: a.value.string_value for a in metric_event.attributes} == {
        "metric.format": "statsd", "metric.value": "vowels.count:1|c"}
    err = parse_otlp(lines[1]).resource_spans[0].scope_spans[0].spans
    assert all(s.status.code == 2 and s.status.message.startswith("trap:") for s in err)
    assert err[0].trace_id.hex() == t2.trace_id_hex


def test_otel_stdout_allocation_attribute(guest_factory):
    out = io.StringIO()
    adapter = OtelStdoutAdapter(out)
    observed(guest_factory, adapter, W.NESTED)
    adapter.shutdown()
    spans = parse_otlp(out.getvalue().strip()).resource_spans[0].scope_spans[0].spans
    three = next(s for s in spans if s.name == "three")
    assert {a.key: a.value.int_value for a in three.attributes}["allocation"] == 1


def test_root_level_events_and_faults_are_kept(guest_factory):
    out = io.StringIO()
    adapter = OtelStdoutAdapter(out)
    observed(guest_factory, adapter, W.BAD)
    adapter.shutdown()
    spans = parse_otlp(out.getvalue().strip()).resource_spans[0].scope_spans[0].spans
    assert [s.name for s in spans] == ["<unreadable span name>"] * 2 + ["wasm:module"]
    holder = spans[-1]  # the events recorded with no span open
    assert [e.name for e in holder.events] == ["log"]
    faults = [e for s in spans for e in s.events if e.name == "observe.fault"]
    assert len(faults) == 8 and all(e.name == "observe.fault" for e in spans[0].events)


class Flaky(Adapter):
    name = "flaky"

    def __init__(self, **kw):
        super().__init__(**kw)
        self.up = threading.Event()
        self.got = []

    def export(self, traces):
        if not self.up.is_set():
            raise TransientExportError("backend down")
        self.got.extend(traces)


def test_backend_down_then_up_loses_nothing_and_never_blocks(guest_factory):
    adapter = Flaky(backoff=0.01, max_backoff=0.05, max_retries=1000, batch_size=4)
    started = time.monotonic()
    traces = [observed(guest_factory, adapter, W.NESTED) for _ in range(20)]
    assert time.monotonic() - started < 15  # the guest side only enqueues (retries would take far longer)
    time.sleep(0.1)
    assert adapter.got == []
    adapter.up.set()
    report = adapter.shutdown(timeout=10)
    assert report.complete and report.exported == 20
    assert [t.trace_id for t in adapter.got] == [t.trace_id for t in traces]


def test_queue_bound_drops_oldest_and_shutdown_reports(guest_factory):
    adapter = Flaky(backoff=0.01, max_backoff=0.02, max_retries=10_000, max_queue=5, batch_size=1)
    for _ in range(12):
        observed(guest_factory, adapter, W.NESTED)
    report = adapter.shutdown(timeout=0.3)
    assert report.dropped >= 6 and report.pending + report.failed >= 1
    assert not report.complete


def test_permanent_failure_is_counted(guest_factory):
    class Broken(Adapter):
        def export(self, traces):
            raise RuntimeError("bad config")
    adapter = Broken()
    observed(guest_factory, adapter, W.NESTED)
    report = adapter.shutdown(timeout=5)
    assert report.failed == 1 and report.exported == 0


def test_options_validate():
    with pytest.raises(ValueError):
        Options(min_span_duration_us=-1)
    with pytest.raises(ValueError):
        Options(recorder="fast")


def test_otel_stdout_nests_in_the_host_span(guest_factory):
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("host")
    out = io.StringIO()
    adapter = OtelStdoutAdapter(out)
    g = guest_factory(wasm_of(W.NESTED), adapter, Options(min_span_duration_us=0))
    with tracer.start_as_current_span("job") as job:
        g.call("_start")
    g.ctx.finish()  # after the host span ended: the parent was captured at the call
    adapter.shutdown()
    spans = json.loads(out.getvalue())["resourceSpans"][0]["scopeSpans"][0]["spans"]
    ctx = job.get_span_context()
    assert {s["traceId"] for s in spans} == {f"{ctx.trace_id:032x}"}
    assert spans[0]["name"] == "main" and spans[0]["parentSpanId"] == f"{ctx.span_id:016x}"
