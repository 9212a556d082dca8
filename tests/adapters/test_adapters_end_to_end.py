"""A real guest (guest-examples/wat/mixed.instr.wat: manual and function spans, tags,
a statsd metric, an error log) run under a host span, through each adapter."""
from __future__ import annotations

from pathlib import Path

import pytest
from otel_pipeline import Pipeline
from otlp_receiver import OtlpReceiver, attrs
from receivers import DdTestAgent, HttpCapture, UdpListener

from observe_sdk import Options
from observe_sdk.adapters.datadog import DatadogAdapter
from observe_sdk.adapters.otlp import OtlpAdapter
from observe_sdk.adapters.zipkin import ZipkinAdapter

ROOT = Path(__file__).resolve().parents[2]
MIXED = ROOT / "guest-examples" / "wat" / "mixed.instr.wat"
SPANS = {"_start", "main", "run", "count_vowels", "printf", "emit_stat", "write_stat", "statsd",
         "emit_log", "write_log", "log_write"}
OPTIONS = Options(min_span_duration_us=0)


def run_guest(guest_factory, adapter, host_tracer) -> None:
    """What a host does: run the guest's export inside its own span, finish the trace."""
    import wasmtime

    guest = guest_factory(wasmtime.wat2wasm(MIXED.read_text()), adapter, OPTIONS)
    with host_tracer.start_as_current_span("job"):
        guest.call("_start")
        guest.ctx.finish()


@pytest.fixture
def host() -> Pipeline:
    return Pipeline()


def test_opentelemetry(guest_factory, host) -> None:
    adapter = host.adapter(python_logging=False)
    run_guest(guest_factory, adapter, host.tracer_provider.get_tracer("host"))
    assert adapter.shutdown(10).complete
    spans = host.spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}
    job = next(s for s in spans if s.name == "job")
    assert {s.name for s in spans} == SPANS | {"job"}
    start = next(s for s in spans if s.name == "_start")
    assert start.parent.span_id == job.context.span_id
    assert {s.context.trace_id for s in spans} == {job.context.trace_id}
    statsd = next(s for s in spans if s.name == "statsd")
    chain = []
    node = statsd
    while node.parent is not None:
        node = by_id[node.parent.span_id]
        chain.append(node.name)
    assert chain == ["write_stat", "emit_stat", "run", "main", "_start", "job"]
    tagged = next(s for s in spans if s.name == "printf" and "vowels" in s.attributes)
    assert tagged.attributes["vowels"] == "3" and tagged.attributes["input"] == "hello-world"
    (record,) = [r.log_record for r in host.logs.get_finished_logs()]
    log_write = next(s for s in spans if s.name == "log_write")
    assert record.body == "Vowels Counted: 3" and record.span_id == log_write.context.span_id
    (point,) = host.metrics()["vowels.count"]
    assert point.value == 1


def test_otlp(guest_factory, host) -> None:
    with OtlpReceiver() as receiver:
        adapter = OtlpAdapter(protocol="http/protobuf", endpoint=receiver.http_endpoint, flush_interval=0.01)
        run_guest(guest_factory, adapter, host.tracer_provider.get_tracer("host"))
        assert adapter.shutdown(20).complete
        job = next(s for s in host.spans.get_finished_spans() if s.name == "job")
        spans = receiver.store.spans()
        assert {s.name for s in spans} == SPANS
        assert {int.from_bytes(s.trace_id, "big") for s in spans} == {job.context.trace_id}
        start = next(s for s in spans if s.name == "_start")
        assert int.from_bytes(start.parent_span_id, "big") == job.context.span_id
        (record,) = receiver.store.log_records()
        assert record.span_id == next(s for s in spans if s.name == "log_write").span_id
        (point,) = receiver.store.metrics()["vowels.count"]
        assert attrs(point.attributes).get("wasm.module") == "mixed"


def test_zipkin(guest_factory, host) -> None:
    with HttpCapture() as zipkin:
        adapter = ZipkinAdapter(endpoint=zipkin.url + "/api/v2/spans", flush_interval=0.01)
        run_guest(guest_factory, adapter, host.tracer_provider.get_tracer("host"))
        assert adapter.shutdown(10).complete
        job = next(s for s in host.spans.get_finished_spans() if s.name == "job")
        spans = [s for r in zipkin.requests for s in r.json()]
        assert {s["name"] for s in spans} == SPANS
        assert {s["traceId"] for s in spans} == {f"{job.context.trace_id:032x}"}
        start = next(s for s in spans if s["name"] == "_start")
        assert start["parentId"] == f"{job.context.span_id:016x}"


def test_datadog(guest_factory, host) -> None:
    if not DdTestAgent.available():
        pytest.skip("ddapm-test-agent is not installed: run `make ddagent` (creates .venv-ddagent)")
    agent = DdTestAgent().start()
    statsd = UdpListener()
    try:
        with HttpCapture() as logs_api:
            adapter = DatadogAdapter(agent_url=agent.url, service="mixed-svc", dogstatsd_url=statsd.url,
                                     api_key="k", logs_url=logs_api.url, flush_interval=0.01)
            run_guest(guest_factory, adapter, host.tracer_provider.get_tracer("host"))
            assert adapter.shutdown(20).complete
            job = next(s for s in host.spans.get_finished_spans() if s.name == "job")
            (trace,) = agent.traces(1)
            assert {s["name"] for s in trace} == SPANS
            start = next(s for s in trace if s["name"] == "_start")
            assert start["parent_id"] == job.context.span_id
            assert start["trace_id"] == job.context.trace_id & ((1 << 64) - 1)
            assert statsd.lines(1)[0].startswith("vowels.count:1|c|#service:mixed-svc")
            (item,) = logs_api.wait(1)[0].json()
            log_write = next(s for s in trace if s["name"] == "log_write")
            assert item["dd.span_id"] == str(log_write["span_id"]) and item["status"] == "error"
    finally:
        statsd.close()
        agent.stop()
