"""ZipkinAdapter against a small HTTP server standing in for Zipkin's /api/v2/spans."""
from __future__ import annotations

import pytest
from adapter_traces import deep_trace, sample_trace
from receivers import HttpCapture

from observe_sdk.adapters import traceinfo
from observe_sdk.adapters.traceinfo import TRACEPARENT
from observe_sdk.adapters.zipkin import ZipkinAdapter
from observe_sdk.trace import span_id_hex


@pytest.fixture
def zipkin():
    with HttpCapture() as server:
        yield server


def spans_of(server: HttpCapture) -> dict[str, dict]:
    return {s["name"]: s for r in server.requests for s in r.json()}


def test_v2_json(zipkin) -> None:
    adapter = ZipkinAdapter(endpoint=zipkin.url + "/api/v2/spans", service_name="wasm-svc", flush_interval=0.01)
    trace = sample_trace()
    trace.metadata[TRACEPARENT] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    adapter.submit(trace)
    assert adapter.shutdown(10).complete
    (request,) = zipkin.requests
    assert request.path == "/api/v2/spans" and request.headers["content-type"] == "application/json"
    spans = spans_of(zipkin)
    run, main = spans["run"], spans["main"]
    assert {s["traceId"] for s in spans.values()} == {"0af7651916cd43dd8448eb211c80319c"}
    assert run["parentId"] == "b7ad6b7169203331" and spans["crash"]["parentId"] == "b7ad6b7169203331"
    assert run["id"] == span_id_hex(trace.roots[1].span_id) and main["parentId"] == run["id"]
    assert run["timestamp"] == trace.roots[1].start_ns // 1000
    assert run["duration"] == 110
    assert run["localEndpoint"] == {"serviceName": "wasm-svc"}
    assert run["tags"]["user"] == "alice" and run["tags"]["wasm.module"] == "demo.wasm"
    assert run["annotations"][0]["value"] == "log INFO: starting"       # logged before any span opened
    assert spans["grow"]["tags"]["allocation"] == "2"
    assert spans["crash"]["tags"]["error"] == "trap: unreachable"
    assert [a["value"] for a in spans["log_write"]["annotations"]] == ["log ERROR: Vowels Counted: 3"]
    assert [a["value"] for a in spans["statsd"]["annotations"]] == ["metric statsd: vowels.count:1|c|#lang:en"]


def test_environment_and_chunking(zipkin, monkeypatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_ZIPKIN_ENDPOINT", zipkin.url + "/api/v2/spans")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "env-svc")
    monkeypatch.setenv("OTEL_EXPORTER_ZIPKIN_TIMEOUT", "2000")
    adapter = ZipkinAdapter.from_env(flush_interval=0.01)
    assert adapter.timeout == 2.0
    adapter.max_spans_per_request = 400
    trace = deep_trace(1000)
    zipkin.refuse(1)            # the first request fails; the retry resumes, nothing twice
    adapter.submit(trace)
    assert adapter.shutdown(10).complete
    sizes = [len(r.json()) for r in zipkin.requests]
    assert sizes == [400, 400, 200]
    ids = [s["id"] for r in zipkin.requests for s in r.json()]
    assert len(set(ids)) == 1000 and {s["localEndpoint"]["serviceName"] for r in zipkin.requests
                                      for s in r.json()} == {"env-svc"}
    roots = [s for r in zipkin.requests for s in r.json() if "parentId" not in s]
    assert len(roots) == 1 and roots[0]["traceId"] == trace.trace_id_hex


def test_bad_configuration(monkeypatch) -> None:
    with pytest.raises(ValueError, match="Zipkin endpoint"):
        ZipkinAdapter(endpoint="localhost:9411")
    with pytest.raises(ValueError, match="Zipkin timeout"):
        ZipkinAdapter(timeout=0)
    for raw in ("abc", "nan", "-5"):        # nan failed every export with a traceback
        monkeypatch.setenv("OTEL_EXPORTER_ZIPKIN_TIMEOUT", raw)
        with pytest.raises(ValueError, match="OTEL_EXPORTER_ZIPKIN_TIMEOUT"):
            ZipkinAdapter()


def test_bad_traceparent_is_ignored_and_its_warnings_bounded(caplog, monkeypatch) -> None:
    monkeypatch.setattr(traceinfo, "_warned_bad_parent", set())     # as in a fresh process
    adapter = ZipkinAdapter(endpoint="http://127.0.0.1:9/api/v2/spans")
    for i in range(300):                  # values from outside: each distinct, none valid
        trace = sample_trace()
        trace.metadata[TRACEPARENT] = f"00-not-a-parent-{i}"
        roots = [s for s in adapter.encode(trace) if "parentId" not in s]
        assert {s["name"] for s in roots} == {"run", "crash"} and roots[0]["traceId"] == trace.trace_id_hex
    warnings = [r for r in caplog.records if "traceparent" in r.getMessage() and r.levelname == "WARNING"]
    assert 1 <= len(warnings) <= 256


def test_template_spans_are_the_spans_as_dicts() -> None:
    """A span written from its function's template is the span the dict path writes."""
    adapter = ZipkinAdapter(endpoint="http://127.0.0.1:9/api/v2/spans", service_name="svc")
    trace = deep_trace(50)
    by_id = {f"{s.span_id:016x}": s for s in trace.spans()}
    trace_hex = trace.trace_id.hex()
    encoded = adapter.encode(trace)
    assert [s["id"] for s in encoded] == [f"{s.span_id:016x}" for s in trace.spans()]
    for span in encoded[1:]:
        source = by_id[span["id"]]
        assert span == adapter._span(source, trace_hex, f"{source.parent_id:016x}", {"serviceName": "svc"})
