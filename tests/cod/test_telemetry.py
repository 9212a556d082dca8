"""The network's own telemetry: OTEL_* configuration, the trace kept on disk, the tree."""
from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cod_helpers import EXAMPLES, run, tool_job, wait_for, wide_guest

from cod_reference.client import Client
from cod_reference.devstack import Devstack
from cod_reference.guest_otlp import DROPPED_METRIC
from cod_reference.models import wasm_job
from cod_reference.procstack import ProcessDevstack
from cod_reference.telemetry import (
    ATTR_GUEST_SPANS_DROPPED,
    GUEST_SCOPE,
    RECORD_DEFAULTS,
    Telemetry,
    guest_span_records,
    otlp_json,
)
from cod_reference.traceview import tree_text
from observe_sdk import Options, TransientExportError
from observe_sdk.adapters.common import ATTR_FUNCTION_INDEX
from observe_sdk.trace import Allocation, Log, Metric, Span, Trace, new_span_id

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "adapters"))
from otlp_receiver import OtlpReceiver, attrs  # noqa: E402


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_otel_env_sends_spans_and_metrics_to_a_collector(protocol, tmp_path, monkeypatch) -> None:
    with OtlpReceiver() as receiver:
        endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
        monkeypatch.setenv("OTEL_SERVICE_NAME", "cod-under-test")
        monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
        with Devstack(data_dir=tmp_path, computes=1, port=0) as stack:
            assert stack.telemetry.trace_store is None  # spans go to the collector, not the data dir
            with Client(port=stack.port) as client:
                job = run(client, tool_job("args"))
                assert job["State"]["StateType"] == "Completed"
                assert client.trace(job["ID"], "records")["Spans"] == []
        assert receiver.store.wait(lambda s: {"submit", "execution", "call"} <= {sp.name for sp in s.spans()})
        resource = receiver.store.resources()[0]
        assert resource["service.name"] == "cod-under-test"
        assert resource["deployment.environment"] == "test"
        assert receiver.store.wait(lambda s: "cod.jobs.finished" in s.metrics())
        assert "cod.executions.active" in receiver.store.metrics()
        spans = receiver.store.spans()
        assert len({sp.trace_id for sp in spans if sp.name in ("submit", "execution")}) == 1


def test_telemetry_can_be_turned_off(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    with Devstack(data_dir=tmp_path, computes=1, port=0) as stack, Client(port=stack.port) as client:
        job = run(client, tool_job("args"))
        assert job["State"]["StateType"] == "Completed"
        assert client.trace(job["ID"], "records")["Spans"] == []
    assert not (tmp_path / "traces").exists()


def record(span_id: str, parent: str, name: str, start: int, end: int, **extra) -> dict:
    return {"traceId": "ab" * 16, "spanId": span_id, "parentSpanId": parent, "name": name, "kind": 1,
            "startTimeUnixNano": start, "endTimeUnixNano": end, "attributes": extra, "events": [],
            "status": {"code": 0, "message": ""}, "service": "cod", "scope": "s"}


def test_tree_and_otlp_json() -> None:
    spans = [record("01", "", "submit", 0, 1_000_000), record("02", "01", "execution", 10, 3_000_000,
                                                                **{"cod.node_id": "node-1"}),
             record("03", "02", "call", 20, 2_000_000), record("04", "01", "evaluation", 30, 40)]
    tree = tree_text(spans).splitlines()   # the SDK's printer: the service once, where it starts
    assert tree[1:] == ["  submit  1.000 ms  [service:cod]", "    execution  3.000 ms  [cod.node_id:node-1]",
                        "      call  2.000 ms", "    evaluation  10 ns"]
    doc = json.loads(otlp_json(spans))   # JSON text, values encoded by the SDK's OTLP/JSON encoder
    (rs,) = doc["resourceSpans"]
    assert rs["resource"]["attributes"] == [{"key": "service.name", "value": {"stringValue": "cod"}}]
    otlp_spans = rs["scopeSpans"][0]["spans"]
    assert [s["name"] for s in otlp_spans] == ["submit", "execution", "call", "evaluation"]
    assert otlp_spans[1]["attributes"] == [{"key": "cod.node_id", "value": {"stringValue": "node-1"}}]
    assert otlp_spans[0]["startTimeUnixNano"] == "0"
    assert tree_text([]) == "(no spans)"


def test_tree_deeper_than_the_recursion_limit() -> None:
    depth = sys.getrecursionlimit() + 100  # a recursive guest's function spans nest this deep
    spans = [record(f"{i:04x}", f"{i - 1:04x}" if i else "", f"f{i}", i, i + 1) for i in range(depth)]
    lines = tree_text(spans).splitlines()
    assert len(lines) == depth + 1 and lines[-1].endswith(f"[depth {depth}] f{depth - 1}  1 ns")


def test_every_process_of_a_network_exports_to_the_collector(tmp_path, monkeypatch) -> None:
    with OtlpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.http_endpoint)  # inherited by every process
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        with ProcessDevstack(data_dir=tmp_path, computes=1, port=0) as stack, Client(port=stack.port) as client:
            job = run(client, wasm_job((EXAMPLES / "hello.instr.wasm").read_bytes()))
            assert job["State"]["StateType"] == "Completed"
            assert client.trace(job["ID"], "records")["Spans"] == []  # nothing kept: the collector has it all
        assert receiver.store.wait(lambda s: {"submit", "execution", "call", "main"} <= {sp.name for sp in s.spans()})
        assert {r.get("service.instance.id") for r in receiver.store.resources()} == {"orchestrator", "node-1"}
        spans = {sp.name: sp for sp in receiver.store.spans()}
        assert len({spans[name].trace_id for name in ("submit", "bid", "execution", "call", "main")}) == 1
        by_id = {sp.span_id: sp for sp in receiver.store.spans()}
        assert by_id[spans["execution"].parent_span_id].name == "scheduling"  # written by the orchestrator


# ----------------------------------------------------------------------------- a guest's spans to a collector
# With a collector, a guest's spans of one execution go as one unit through an exporter of the
# network's own (cod_reference/guest_otlp.py), not through the SDK's span queue (2,048 spans).

GUEST_SPANS = wide_guest(10, 499)              # 1 + 10 + 4,990 = 5,001 spans in one execution
N_GUEST = 5001


def observed_executor(max_guest_spans: int | None = None):  # type: ignore[no-untyped-def]
    def factory(node_dir: Path, telemetry: Telemetry):  # type: ignore[no-untyped-def]
        from cod_reference.executor.wasm import WasmExecutor

        return WasmExecutor(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider,
                            guest_span_sink=telemetry.guest_span_sink,
                            guest_trace_exporter=telemetry.guest_trace_exporter, max_guest_spans=max_guest_spans,
                            observe_options=Options(min_span_duration_us=0, max_events=1_000_000))
    return factory


def guest_spans(store) -> list:  # type: ignore[no-untyped-def]
    return [s for s in store.spans() if any(kv.key == ATTR_FUNCTION_INDEX for kv in s.attributes)]


def index_of(span) -> int:  # type: ignore[no-untyped-def]
    return next(kv.value.int_value for kv in span.attributes if kv.key == ATTR_FUNCTION_INDEX)


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_a_guest_with_more_spans_than_the_sdk_queue_reaches_the_collector_whole(protocol, tmp_path,
                                                                                monkeypatch) -> None:
    with OtlpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT",
                           receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
        monkeypatch.setenv("OTEL_SERVICE_NAME", "cod-under-test")
        with Devstack(data_dir=tmp_path, computes=1, port=0, executor_factory=observed_executor()) as stack, \
                Client(port=stack.port) as client:
            assert stack.telemetry is not None and stack.telemetry.guest_span_sink is None
            job = run(client, wasm_job(GUEST_SPANS), timeout=60)
            assert job["State"]["StateType"] == "Completed", job["State"]
            assert receiver.store.wait(lambda s: len(guest_spans(s)) >= N_GUEST, timeout=60)
            assert DROPPED_METRIC not in client.metrics()
        assert receiver.store.wait(lambda s: {"submit", "execution", "call"} <= {sp.name for sp in s.spans()})
        guest = guest_spans(receiver.store)
        counts = {i: 0 for i in (3, 4, 5)}
        for span in guest:
            counts[index_of(span)] += 1
        assert counts == {5: 1, 4: 10, 3: 4990} and len({s.span_id for s in guest}) == N_GUEST
        # one trace: the guest's root under `call`, `call` under `execution`, every parent there
        spans = {s.span_id: s for s in receiver.store.spans()}
        (submit,) = [s for s in spans.values() if s.name == "submit"]
        job_spans = [s for s in spans.values() if s.trace_id == submit.trace_id]
        assert {s.span_id for s in guest} <= {s.span_id for s in job_spans}
        assert all(s.parent_span_id in spans for s in job_spans if s is not submit) and not submit.parent_span_id
        (start,) = [s for s in guest if index_of(s) == 5]
        call = spans[start.parent_span_id]
        assert call.name == "call" and spans[call.parent_span_id].name == "execution"
        assert all(index_of(spans[s.parent_span_id]) == index_of(s) + 1 for s in guest if s is not start)
        # the node's resource, the Observe SDK's scope; requests of at most 2,048 spans
        for request in receiver.store.requests["traces"]:
            for rs in request.resource_spans:
                for ss in rs.scope_spans:
                    if ss.scope.name == GUEST_SCOPE:
                        assert attrs(rs.resource.attributes)["service.name"] == "cod-under-test"
                        assert 0 < len(ss.spans) <= 2048


def test_with_the_collector_down_the_job_completes_and_the_drop_is_counted(tmp_path, monkeypatch, caplog) -> None:
    with socket.socket() as s:          # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")     # the exporter's retries give up after a second
    with Devstack(data_dir=tmp_path, computes=1, port=0, executor_factory=observed_executor()) as stack, \
            Client(port=stack.port) as client:
        job = run(client, wasm_job(GUEST_SPANS), timeout=60)
        assert job["State"]["StateType"] == "Completed", job["State"]

        def dropped():  # type: ignore[no-untyped-def]
            points = client.metrics().get(DROPPED_METRIC, [])
            return {p["attributes"]["reason"]: p["value"] for p in points}

        assert wait_for(dropped, timeout=60, what="the dropped guest spans counted") == {"export_failed": N_GUEST}
    assert any(f"{N_GUEST} guest span(s) dropped" in r.getMessage() and "reason=export_failed" in r.getMessage()
               for r in caplog.records if r.levelname == "WARNING")


def test_the_cap_of_spans_an_execution_keeps_applies_with_a_collector(tmp_path, monkeypatch) -> None:
    with OtlpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.http_endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        factory = observed_executor(max_guest_spans=100)
        with Devstack(data_dir=tmp_path, computes=1, port=0, executor_factory=factory) as stack, \
                Client(port=stack.port) as client:
            job = run(client, wasm_job(GUEST_SPANS), timeout=60)
            assert job["State"]["StateType"] == "Completed", job["State"]
            assert DROPPED_METRIC not in client.metrics()     # the cap is not a delivery failure
        assert receiver.store.wait(lambda s: {"execution", "call"} <= {sp.name for sp in s.spans()}
                                   and len(guest_spans(s)) >= 100)
        guest = guest_spans(receiver.store)
        assert len(guest) == 100
        spans = {s.name: s for s in receiver.store.spans()}
        ids = {s.span_id for s in guest}
        (start,) = [s for s in guest if index_of(s) == 5]
        assert all(s.parent_span_id in ids for s in guest if s is not start)    # parents first: all kept
        for span in (start, spans["call"], spans["execution"]):
            assert attrs(span.attributes)[ATTR_GUEST_SPANS_DROPPED] == N_GUEST - 100


def sample_trace() -> Trace:
    """A guest's trace with what the network adds to its first root: a host parent, faults,
    events with no span open (a ``wasm:`` root), tags, allocations, logs, metrics, an error."""
    t = 1_700_000_000_000_000_000

    def leaf(i: int) -> Span:
        return Span(f"leaf{i % 3}", f"_Z4leaf{i % 3}", 3 + i % 3, t + 10 * i, t + 10 * i + 5, span_id=new_span_id(),
                    events=[Allocation(2, t + 10 * i + 1)] if i % 4 == 0 else [])

    inner = Span("inner", "inner", 2, t + 1, t + 90, events=[Log(2, "hello", t + 2), *[leaf(i) for i in range(7)],
                                                              Metric(1, "n:1|c", t + 80)],
                 tags=["tenant:a", "bare"], span_id=new_span_id())
    failed = Span("boom", "", 0, t + 91, t + 99, manual=True, error="trap: unreachable", span_id=new_span_id())
    root = Span("_start", "_start", 1, t, t + 100, events=[inner, failed], span_id=new_span_id())
    second = Span("second", "second", 9, t + 101, t + 120, span_id=new_span_id())
    return Trace(b"\x07" * 16, roots=[root, second, Log(3, "loose", t + 121)], errors=["fault: bad pointer"],
                 metadata={"traceparent": "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"},
                 module_name="main.wasm", dropped_events=3, start_ns=t, end_ns=t + 130)


@pytest.mark.parametrize("max_spans", [1000, 5])
def test_the_collector_gets_the_tree_the_trace_store_keeps(max_spans: int) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from cod_reference.guest_otlp import encode_guest_spans
    from observe_sdk.adapters import otlp_proto

    trace = sample_trace()
    records, dropped = guest_span_records(trace, max_spans)
    requests, dropped_too = encode_guest_spans(trace, max_spans, otlp_proto.attributes(0x0A, {"service.name": "x"}),
                                               otlp_proto.scope(GUEST_SCOPE, "1"), max_request_spans=3)
    assert dropped == dropped_too == (0 if max_spans > 100 else 12 - 5)
    sent = []
    for body, n in requests:
        (rs,) = ExportTraceServiceRequest.FromString(body).resource_spans
        (ss,) = rs.scope_spans
        assert len(ss.spans) == n <= 3 and ss.scope.name == GUEST_SCOPE
        sent.extend(ss.spans)
    assert sum(n for _, n in requests) == len(records) == min(12, max_spans)

    def from_record(r: dict) -> tuple:
        status = r.get("status", RECORD_DEFAULTS["status"])
        return (r["traceId"], r["parentSpanId"], r["name"], r["startTimeUnixNano"], r["endTimeUnixNano"],
                r["attributes"], [(e["name"], e["timeUnixNano"], e["attributes"]) for e in r.get("events", ())],
                (status["code"], status["message"]))

    def from_otlp(s) -> tuple:  # type: ignore[no-untyped-def]
        return (s.trace_id.hex(), s.parent_span_id.hex(), s.name, s.start_time_unix_nano, s.end_time_unix_nano,
                attrs(s.attributes), [(e.name, e.time_unix_nano, attrs(e.attributes)) for e in s.events],
                (s.status.code, s.status.message))

    assert [from_otlp(s) for s in sent] == [from_record(r) for r in records]
    loose = {r["spanId"] for r in records if r["name"].startswith("wasm:")}   # a new id each walk
    assert [s.span_id.hex() for s in sent if s.name != "wasm:main.wasm"] == \
        [r["spanId"] for r in records if r["spanId"] not in loose]
    assert records[0]["parentSpanId"] == "cd" * 8 and records[0]["traceId"] == "ab" * 16


class FakeSender:
    """Takes requests, or holds each until released (close() releases them, failing)."""

    def __init__(self, endpoint: str, hold: bool = False) -> None:
        self.endpoint = endpoint
        self.bodies: list[bytes] = []
        self.sending = threading.Event()
        self.release = threading.Event()
        self.closed = False
        if not hold:
            self.release.set()

    def send(self, body: bytes) -> None:
        self.sending.set()
        self.release.wait(30)
        if self.closed:
            raise TransientExportError("closed")
        self.bodies.append(body)

    def close(self) -> None:
        self.closed = True
        self.release.set()

    def usable(self) -> bool:
        return True


@contextlib.contextmanager
def listening() -> Iterator[str]:
    """An endpoint that takes connections (and answers nothing)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


class Counted:
    def __init__(self) -> None:
        self.points: list[tuple[int, str]] = []

    def add(self, n: int, attributes: dict) -> None:
        self.points.append((n, attributes["reason"]))


def test_the_guest_exporter_counts_a_full_queue_and_what_shutdown_leaves(caplog) -> None:
    from cod_reference.guest_otlp import GuestSpanExporter

    with listening() as endpoint:   # a collector that takes connections: shutdown waits its timeout
        sender = FakeSender(endpoint, hold=True)
        counter = Counted()
        exporter = GuestSpanExporter(sender, b"", counter, max_queue_bytes=1)
        assert exporter.export(sample_trace(), 1000, "e1") == 0        # queued (the queue was empty): being sent
        assert sender.sending.wait(10)
        assert exporter.export(sample_trace(), 5, "e2") == 7            # the queue is full: counted, not encoded
        assert counter.points == [(5, "queue_full")]
        assert not exporter.flush(timeout=0.1)
        exporter.shutdown(timeout=0.1)                                  # bounded: the send is given up
        assert exporter.export(sample_trace(), 1000, "e3") == 0
    assert counter.points == [(5, "queue_full"), (12, "shutdown"), (12, "shutdown")]
    lines = [r.getMessage() for r in caplog.records if r.name == "cod_reference.guest_otlp"]
    assert any(line.startswith("execution e2: 5 guest span(s) dropped: the queue") for line in lines)
    assert any(line.startswith("execution e3: 12 guest span(s) dropped: telemetry stopped") for line in lines)


def test_the_guest_exporter_sends_every_unit_in_order_and_flushes() -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from cod_reference.guest_otlp import GuestSpanExporter

    counter = Counted()
    with listening() as endpoint:
        sender = FakeSender(endpoint)
        exporter = GuestSpanExporter(sender, b"", counter)
        traces = [sample_trace() for _ in range(20)]
        for i, t in enumerate(traces):
            exporter.export(t, 1000, f"e{i}")
        assert exporter.flush(timeout=30) and exporter.queued_bytes == 0
        exporter.shutdown(timeout=30)
    roots = [s for body in sender.bodies for rs in ExportTraceServiceRequest.FromString(body).resource_spans
             for ss in rs.scope_spans for s in ss.spans if s.name == "_start"]
    assert [s.span_id for s in roots] == [t.roots[0].span_id.to_bytes(8, "big") for t in traces]
    assert counter.points == []
