"""DatadogAdapter: ddapm-test-agent for traces, a UDP socket for DogStatsD, an HTTP
server standing in for the Logs API."""
from __future__ import annotations

import msgpack
import pytest
from adapter_traces import deep_trace, sample_trace
from receivers import DdTestAgent, HttpCapture, UdpListener

from observe_sdk.adapters.datadog import DatadogAdapter, normalize_metadata, parse_dd_tags
from observe_sdk.adapters.datadog_msgpack import payload
from observe_sdk.adapters.traceinfo import TRACEPARENT

HOST_TRACE = 0x0AF7651916CD43DD8448EB211C80319C
HOST_SPAN = 0xB7AD6B7169203331
LOW = HOST_TRACE & ((1 << 64) - 1)


@pytest.fixture(scope="module")
def agent():
    if not DdTestAgent.available():
        pytest.skip("ddapm-test-agent is not installed: run `make ddagent` (creates .venv-ddagent)")
    a = DdTestAgent().start()
    yield a
    a.stop()


@pytest.fixture
def statsd():
    listener = UdpListener()
    yield listener
    listener.close()


@pytest.fixture
def logs_api():
    with HttpCapture() as server:
        yield server


def adapter_for(agent_url: str, statsd: UdpListener, logs_api: HttpCapture, **kw) -> DatadogAdapter:
    kw.setdefault("flush_interval", 0.01)
    return DatadogAdapter(agent_url=agent_url, service="wasm-svc", env="test", version="1.2",
                          tags="team:wasm", dogstatsd_url=statsd.url, api_key="secret-key",
                          logs_url=logs_api.url, **kw)


def test_traces_metrics_logs(agent, statsd, logs_api) -> None:
    agent.clear()
    adapter = adapter_for(agent.url, statsd, logs_api)
    trace = sample_trace()
    trace.metadata[TRACEPARENT] = f"00-{HOST_TRACE:032x}-{HOST_SPAN:016x}-01"
    trace.metadata["datadog"] = {"resource_name": "GET /run", "http_url": "http://example/run",
                                 "http_status_code": 200, "http_client_ip": "10.0.0.7",
                                 "http_request_content_length": 12, "span_kind": "server"}
    adapter.submit(trace)
    report = adapter.shutdown(20)
    assert report.complete, report

    (received,) = agent.traces(1)
    assert agent.check_failures() in ("", "200: OK", None, [], {})   # header checks passed
    spans = {s["name"]: s for s in received}
    assert set(spans) == {"run", "main", "statsd", "log_write", "grow", "crash"}
    run = spans["run"]
    assert run["trace_id"] == LOW and run["meta"]["_dd.p.tid"] == f"{HOST_TRACE >> 64:016x}"
    assert run["parent_id"] == HOST_SPAN and spans["crash"]["parent_id"] == HOST_SPAN
    assert spans["main"]["parent_id"] == run["span_id"] == trace.roots[1].span_id
    assert spans["statsd"]["parent_id"] == spans["main"]["span_id"]
    assert run["service"] == "wasm-svc" and run["resource"] == "GET /run" and run["type"] == "web"
    assert run["meta"]["http.url"] == "http://example/run" and run["meta"]["http.status_code"] == "200"
    assert run["meta"]["http.client_ip"] == "10.0.0.7"
    assert run["meta"]["http.request.content_length"] == "12"
    assert run["meta"]["span.kind"] == "server"
    assert run["meta"]["env"] == "test" and run["meta"]["version"] == "1.2" and run["meta"]["team"] == "wasm"
    assert run["meta"]["user"] == "alice" and run["meta"]["wasm.module"] == "demo.wasm"
    assert run["start"] == trace.roots[1].start_ns and run["duration"] == trace.roots[1].duration_ns
    assert spans["grow"]["metrics"]["allocation"] == 2
    assert spans["main"]["resource"] == "main" and spans["main"]["type"] == "wasm"
    assert spans["crash"]["error"] == 1 and spans["crash"]["meta"]["error.msg"] == "trap: unreachable"
    assert run["error"] == 0

    lines = statsd.lines(1)
    assert lines == ["vowels.count:1|c|#lang:en,service:wasm-svc,env:test,version:1.2,team:wasm"]

    (request,) = logs_api.wait(1)
    assert request.path == "/api/v2/logs" and request.headers["dd-api-key"] == "secret-key"
    items = {item["message"]: item for item in request.json()}
    err = items["Vowels Counted: 3"]
    assert err["status"] == "error" and err["dd.trace_id"] == str(LOW)
    assert err["dd.span_id"] == str(spans["log_write"]["span_id"])
    assert err["service"] == "wasm-svc" and err["ddsource"] == "wasm" and "env:test" in err["ddtags"]
    assert items["starting"]["dd.span_id"] == str(HOST_SPAN)


def test_server_error_status_marks_root(agent, statsd, logs_api) -> None:
    agent.clear()
    adapter = adapter_for(agent.url, statsd, logs_api, logs=False)
    trace = sample_trace()
    trace.metadata["datadog"] = {"http.status_code": 503, "resource": "POST /x"}
    adapter.submit(trace)
    assert adapter.shutdown(20).complete
    (received,) = agent.traces(1)
    run = next(s for s in received if s["name"] == "run")
    assert run["error"] == 1 and run["parent_id"] == 0
    assert run["trace_id"] == int.from_bytes(trace.trace_id[8:], "big")
    assert logs_api.requests == []


def test_from_environment(agent, statsd, logs_api, monkeypatch) -> None:
    agent.clear()
    monkeypatch.setenv("DD_TRACE_AGENT_URL", agent.url)
    monkeypatch.setenv("DD_SERVICE", "env-svc")
    monkeypatch.setenv("DD_ENV", "staging")
    monkeypatch.setenv("DD_VERSION", "9")
    monkeypatch.setenv("DD_TAGS", "a:1 b:2")
    monkeypatch.setenv("DD_DOGSTATSD_URL", statsd.url)
    monkeypatch.delenv("DD_API_KEY", raising=False)
    adapter = DatadogAdapter.from_env(flush_interval=0.01)
    adapter.submit(sample_trace())
    assert adapter.shutdown(20).complete
    (received,) = agent.traces(1)
    assert {s["service"] for s in received} == {"env-svc"}
    meta = received[0]["meta"]
    assert meta["env"] == "staging" and meta["version"] == "9" and meta["a"] == "1" and meta["b"] == "2"
    assert statsd.lines(1)[0].endswith("|#lang:en,service:env-svc,env:staging,version:9,a:1,b:2")


def test_agent_down_then_up(statsd, logs_api) -> None:
    """Refused (503) twice, then accepted: delivered once, in order, nothing failed."""
    with HttpCapture(status=200) as fake_agent:
        fake_agent.refuse(2)
        adapter = adapter_for(fake_agent.url, statsd, logs_api, backoff=0.02)
        for _ in range(3):
            adapter.submit(sample_trace())
        report = adapter.shutdown(20)
        assert report.complete and report.exported == 3, report
        traces = []
        for request in fake_agent.requests:
            assert request.method == "PUT" and request.path == "/v0.4/traces"
            payload = msgpack.unpackb(request.body)
            assert request.headers["x-datadog-trace-count"] == str(len(payload))
            traces.extend(payload)
        assert len(traces) == 3 and len({t[0]["trace_id"] for t in traces}) == 3   # each once
        logs = [item for r in logs_api.requests for item in r.json()]
        assert len(logs) == 2 * 3                   # logs sent once each, after their traces


def test_invalid_payload_is_a_permanent_failure(statsd, logs_api) -> None:
    with HttpCapture(status=400) as fake_agent:
        adapter = adapter_for(fake_agent.url, statsd, logs_api, backoff=0.02)
        adapter.submit(sample_trace())
        report = adapter.shutdown(10)
        assert report.failed == 1 and len(fake_agent.requests) == 1   # not retried


def test_large_trace_is_split_into_payloads(statsd, logs_api) -> None:
    with HttpCapture(status=200) as fake_agent:
        adapter = adapter_for(fake_agent.url, statsd, logs_api)
        adapter.max_spans_per_payload = 1000
        trace = deep_trace(2500)
        adapter.submit(trace)
        assert adapter.shutdown(20).complete
        chunks = [c for r in fake_agent.requests for c in msgpack.unpackb(r.body)]
        assert [len(c) for c in chunks] == [1000, 1000, 500]
        ids = {s["span_id"] for c in chunks for s in c}
        assert len(ids) == 2500 and {s["trace_id"] for c in chunks for s in c} == {
            int.from_bytes(trace.trace_id[8:], "big")}
        assert all(c[0]["meta"]["_dd.p.tid"] == trace.trace_id[:8].hex() for c in chunks)


def test_bad_metadata_is_ignored_not_fatal(statsd, logs_api, caplog) -> None:
    with HttpCapture(status=200) as fake_agent:
        adapter = adapter_for(fake_agent.url, statsd, logs_api, logs=False)
        bad = sample_trace()
        bad.metadata["datadog"] = "GET /run"
        good = sample_trace()
        good.metadata["datadog"] = {"resource": "GET /ok", "http.status_code": "not a number"}
        adapter.submit(bad)
        adapter.submit(good)
        assert adapter.shutdown(10).complete
        chunks = [c for r in fake_agent.requests for c in msgpack.unpackb(r.body)]
        roots = {c[0]["trace_id"]: c[0] for c in chunks}
        assert roots[int.from_bytes(bad.trace_id[8:], "big")]["resource"] == "run"
        assert roots[int.from_bytes(good.trace_id[8:], "big")]["resource"] == "GET /ok"
        assert "must be a mapping" in caplog.text


def test_metadata_and_tags_parsing() -> None:
    assert parse_dd_tags("a:1,b:2 c") == [("a", "1"), ("b", "2"), ("c", "")]
    assert normalize_metadata({"span_kind": "SERVER", "http_url": "u"}) == {"span.kind": "server", "http.url": "u"}
    with pytest.raises(ValueError, match="mapping"):
        normalize_metadata(["not", "a", "mapping"])
    with pytest.raises(ValueError, match="agent URL"):
        DatadogAdapter(agent_url="ftp://nope", dogstatsd_url=False)
    with pytest.raises(ValueError, match="DogStatsD"):
        DatadogAdapter(dogstatsd_url="tcp://x:1")
    with pytest.raises(ValueError, match="logs URL"):
        DatadogAdapter(dogstatsd_url=False, api_key="k", logs_url="intake.example")


@pytest.mark.parametrize("var,value,what", [
    ("DD_TRACE_AGENT_PORT", "abc", "agent URL"),      # was a traceback at the first export
    ("DD_TRACE_AGENT_PORT", "99999", "agent URL"),
    ("DD_DOGSTATSD_PORT", "abc", "DogStatsD"),
])
def test_bad_port_in_the_environment_is_a_clear_error(var, value, what, monkeypatch) -> None:
    for name in ("DD_TRACE_AGENT_URL", "DD_DOGSTATSD_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(var, value)
    with pytest.raises(ValueError, match=what):
        DatadogAdapter(logs=False)


def test_packed_template_spans_decode_as_their_maps() -> None:
    """The per-function template path and the dict path pack the same span map."""
    adapter = DatadogAdapter(agent_url="http://127.0.0.1:9", service="svc", env="e", tags="team:wasm",
                             dogstatsd_url=False, logs=False)
    trace = deep_trace(50)
    tid_low = int.from_bytes(trace.trace_id[8:], "big")
    head = adapter._packer.head(tid_low)
    for span in list(trace.spans())[1:]:
        packed = adapter._packer.plain(span, head, span.parent_id, "svc")
        assert msgpack.unpackb(packed) == adapter._span_map(span, tid_low, span.parent_id, "svc")
    chunks, _, _ = adapter.trace_chunks(trace)
    (decoded,) = msgpack.unpackb(payload(chunks))
    assert [s["span_id"] for s in decoded] == [s.span_id for s in trace.spans()]
    assert decoded[0]["meta"]["_dd.p.tid"] == trace.trace_id[:8].hex() and "_dd.p.tid" not in decoded[1]["meta"]
