"""OtlpAdapter against a real OTLP receiver (gRPC and HTTP/protobuf) on 127.0.0.1."""
from __future__ import annotations

import pytest
from adapter_traces import sample_trace
from otlp_receiver import OtlpReceiver, attrs

from observe_sdk.adapters.otlp import OtlpAdapter, default_resource, parse_headers
from observe_sdk.adapters.traceinfo import TRACEPARENT
from observe_sdk.trace import span_id_hex

PROTOCOLS = ["grpc", "http/protobuf"]


@pytest.fixture(scope="module")
def receiver():
    with OtlpReceiver() as r:
        yield r


@pytest.fixture
def store(receiver):
    receiver.store.__init__()    # a clean slate per test; same ports
    return receiver.store


def endpoint(receiver: OtlpReceiver, protocol: str) -> str:
    return receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_traces_metrics_logs_arrive(receiver, store, protocol) -> None:
    adapter = OtlpAdapter(protocol=protocol, endpoint=endpoint(receiver, protocol), timeout=5,
                          headers={"x-test": "yes"}, service_name="wasm-svc", flush_interval=0.01)
    trace = sample_trace()
    trace.metadata[TRACEPARENT] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    adapter.submit(trace)
    report = adapter.shutdown(20)
    assert report.complete, report

    spans = {s.name: s for s in store.spans()}
    assert set(spans) == {"run", "main", "statsd", "log_write", "grow", "crash"}
    # ids: the host's trace id, the assembler's span ids, parents as in the tree
    run_span = trace.roots[1]
    for s in spans.values():
        assert s.trace_id.hex() == "0af7651916cd43dd8448eb211c80319c"
    assert spans["run"].span_id.hex() == span_id_hex(run_span.span_id)
    assert spans["run"].parent_span_id.hex() == "b7ad6b7169203331"
    assert spans["crash"].parent_span_id.hex() == "b7ad6b7169203331"
    assert spans["main"].parent_span_id == spans["run"].span_id
    assert spans["statsd"].parent_span_id == spans["main"].span_id
    assert spans["run"].start_time_unix_nano == run_span.start_ns
    assert spans["run"].end_time_unix_nano == run_span.end_ns
    assert attrs(spans["run"].attributes)["user"] == "alice"
    assert attrs(spans["grow"].attributes)["allocation"] == 2
    assert spans["crash"].status.code == 2 and spans["crash"].status.message == "trap: unreachable"
    assert store.resources()[0]["service.name"] == "wasm-svc"
    assert all(h.get("x-test") == "yes" for h in store.headers)

    logs = {r.body.string_value: r for r in store.log_records()}
    err = logs["Vowels Counted: 3"]
    assert err.severity_text == "ERROR" and err.severity_number == 17
    assert err.span_id == spans["log_write"].span_id and err.trace_id == spans["log_write"].trace_id
    assert logs["starting"].span_id.hex() == "b7ad6b7169203331"   # root-level: the host span

    metrics = store.metrics()
    (point,) = metrics["vowels.count"]
    assert point.as_double == 1 or point.as_int == 1
    assert attrs(point.attributes)["lang"] == "en"
    assert point.exemplars and point.exemplars[0].span_id == spans["statsd"].span_id


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_retries_after_refusal_without_duplicates(receiver, store, protocol) -> None:
    adapter = OtlpAdapter(protocol=protocol, endpoint=endpoint(receiver, protocol), timeout=2,
                          flush_interval=0.01, backoff=0.05, signals=["traces", "logs"])
    store.refuse(1)   # the first request (traces) fails; logs were never tried
    adapter.submit(sample_trace())
    report = adapter.shutdown(30)
    assert report.complete, report
    assert store.refused >= 1
    assert len(store.spans()) == 6                # sent again, exactly once
    assert len(store.log_records()) == 2
    assert store.requests["metrics"] == []        # not asked for


def test_environment_configuration(receiver, store, monkeypatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.grpc_endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "api-key=secret%20value")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test,team=wasm")
    adapter = OtlpAdapter.from_env(flush_interval=0.01)
    assert adapter.protocol == "grpc"
    trace = sample_trace()
    adapter.submit(trace)
    assert adapter.shutdown(20).complete
    res = store.resources()[0]
    assert res["service.name"] == "from-env" and res["team"] == "wasm"
    assert res["deployment.environment"] == "test"
    assert store.headers[0]["api-key"] == "secret value"
    # no host parent: the Wasm trace's own id, roots without parents
    spans = {s.name: s for s in store.spans()}
    assert spans["run"].trace_id == trace.trace_id and spans["run"].parent_span_id == b""


def test_per_signal_protocol(receiver, store, monkeypatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.http_endpoint + "/v1/traces")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", receiver.grpc_endpoint)
    adapter = OtlpAdapter(signals=["traces", "logs"], flush_interval=0.01)
    assert adapter.protocols == {"traces": "http/protobuf", "logs": "grpc"}
    adapter.submit(sample_trace())
    assert adapter.shutdown(20).complete
    assert len(store.spans()) == 6 and len(store.log_records()) == 2
    assert store.headers[0].get("content-type") == "application/x-protobuf"     # traces over HTTP


def test_bad_configuration_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="protocol"):
        OtlpAdapter(protocol="carrier-pigeon")
    with pytest.raises(ValueError, match="signal"):
        OtlpAdapter(signals=["traces", "profiles"])
    with pytest.raises(ValueError, match="key=value"):
        parse_headers("novalue")
    with pytest.raises(ValueError, match="OTLP endpoint 'localhost:4318'"):    # was retried at every export
        OtlpAdapter(protocol="http/protobuf", endpoint="localhost:4318")
    with pytest.raises(ValueError, match="OTLP timeout"):
        OtlpAdapter(timeout=-1)


def test_bad_endpoint_in_the_environment_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "notaurl")
    with pytest.raises(ValueError, match="OTEL_EXPORTER_OTLP_LOGS_ENDPOINT 'notaurl'"):
        OtlpAdapter()


def test_default_service_name(monkeypatch) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    assert default_resource().attributes["service.name"] == "observe-sdk"


def test_unsampled_host_parent_sends_no_spans(receiver, store) -> None:
    adapter = OtlpAdapter(protocol="http/protobuf", endpoint=receiver.http_endpoint, flush_interval=0.01)
    trace = sample_trace()
    trace.metadata[TRACEPARENT] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
    trace.errors.append("span-exit with no open span")
    adapter.submit(trace)
    assert adapter.shutdown(20).complete
    assert store.spans() == []
    assert len(store.log_records()) == 2          # logs still go, with the host's trace id
    assert {r.trace_id.hex() for r in store.log_records()} == {"0af7651916cd43dd8448eb211c80319c"}


def test_guest_faults_become_events_on_the_first_root(receiver, store) -> None:
    adapter = OtlpAdapter(protocol="http/protobuf", endpoint=receiver.http_endpoint, flush_interval=0.01)
    trace = sample_trace()
    trace.errors.append("span-exit with no open span")
    trace.dropped_events = 7
    adapter.submit(trace)
    assert adapter.shutdown(20).complete
    spans = {s.name: s for s in store.spans()}
    faults = [e for e in spans["run"].events if e.name == "observe.fault"]
    assert [attrs(e.attributes)["message"] for e in faults] == ["span-exit with no open span"]
    assert attrs(spans["run"].attributes)["observe.dropped_events"] == 7
    assert not [e for e in spans["crash"].events if e.name == "observe.fault"]
