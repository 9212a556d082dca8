"""The network's own telemetry: OTEL_* configuration, the trace kept on disk, the tree."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from cod_helpers import EXAMPLES, run, tool_job

from cod_reference.client import Client
from cod_reference.devstack import Devstack
from cod_reference.models import wasm_job
from cod_reference.procstack import ProcessDevstack
from cod_reference.telemetry import otlp_json
from cod_reference.traceview import tree_text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "adapters"))
from otlp_receiver import OtlpReceiver  # noqa: E402


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
