"""No span lost between a job and its trace (issue #11): a 300k-span guest through the network."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cod_helpers import run, wait_for, wide_guest

from cod_reference.client import Client
from cod_reference.devstack import Devstack
from cod_reference.models import wasm_job
from cod_reference.telemetry import ATTR_GUEST_SPANS_DROPPED, Telemetry
from observe_sdk import Options
from observe_sdk.adapters.common import ATTR_FUNCTION_INDEX

BRANCHES, LEAVES = 1000, 299       # 1 + 1000 + 299,000 = 300,001 guest spans
WIDE = wide_guest(BRANCHES, LEAVES)   # _start (5) -> branch (4) x BRANCHES -> leaf (3) x LEAVES each


def every_span_executor(node_dir: Path, telemetry: Telemetry):  # type: ignore[no-untyped-def]
    from cod_reference.executor.wasm import WasmExecutor

    return WasmExecutor(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider,
                        guest_span_sink=telemetry.guest_span_sink,
                        observe_options=Options(min_span_duration_us=0, max_events=10_000_000))


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    stack = Devstack(data_dir=tmp_path_factory.mktemp("cod-fidelity"), computes=1, port=0,
                     executor_factory=every_span_executor, heartbeat_interval_s=0.5)
    stack.start()
    try:
        with Client(port=stack.port) as c:
            yield c
    finally:
        stack.stop()


def test_a_300k_span_job_keeps_every_span_and_every_parent(client: Client) -> None:
    job = run(client, wasm_job(WIDE), timeout=120)
    assert job["State"]["StateType"] == "Completed", job["State"]

    def spans():  # the network's own spans arrive in batches; the guest's in one unit
        found = client.trace(job["ID"], "records")["Spans"]
        return found if {"publish", "execution"} <= {s["name"] for s in found} else None

    records = wait_for(spans, timeout=60, what="the job's spans")
    by_id = {s["spanId"]: s for s in records}
    assert len(by_id) == len(records)
    guest = [s for s in records if s["scope"] == "observe_sdk"]
    index = {s["spanId"]: s["attributes"][ATTR_FUNCTION_INDEX] for s in guest}
    counts = {i: 0 for i in (3, 4, 5)}
    for i in index.values():
        counts[i] += 1
    assert counts == {5: 1, 4: BRANCHES, 3: BRANCHES * LEAVES} and len(guest) == sum(counts.values())
    # every parent is there: one trace, one root (the orchestrator's), the guest's root under `call`
    roots = [s for s in records if not s["parentSpanId"]]
    assert len(roots) == 1 and all(s["parentSpanId"] in by_id for s in records if s is not roots[0])
    assert {s["traceId"] for s in records} == {roots[0]["traceId"]}
    (start,) = [s for s in guest if index[s["spanId"]] == 5]
    assert by_id[start["parentSpanId"]]["name"] == "call"
    assert start["attributes"]["wasm.module"] == "main.wasm"   # the entry module's file name (no name section)
    assert all(index[s["parentSpanId"]] == index[s["spanId"]] + 1 for s in guest if s is not start)
    assert not any(ATTR_GUEST_SPANS_DROPPED in s["attributes"] for s in records)


def test_a_limit_keeps_parents_first_and_says_how_many_it_dropped() -> None:
    from cod_reference.telemetry import GUEST_SCOPE, guest_span_records
    from cod_reference.traceview import tree_text
    from observe_sdk.trace import Span, Trace, new_span_id

    def tree(depth: int, width: int) -> Span:
        return Span("node", "node", 1, 0, 10, False, [tree(depth - 1, width) for _ in range(width)] if depth else [],
                    span_id=new_span_id())

    root = tree(4, 3)                                    # 1 + 3 + 9 + 27 + 81 = 121 spans
    records, dropped = guest_span_records(Trace(b"\x01" * 16, roots=[root]), max_spans=50)
    assert (len(records), dropped) == (50, 71)
    ids = {r["spanId"] for r in records}
    assert all(r["parentSpanId"] in ids for r in records[1:]) and not records[0]["parentSpanId"]
    assert records[0]["attributes"][ATTR_GUEST_SPANS_DROPPED] == 71 and records[0]["scope"] == GUEST_SCOPE
    assert "! 71 guest span(s) of one execution dropped (over the limit of spans an execution keeps)" in \
        tree_text(records)


def test_spans_dropped_over_the_limit_are_counted_on_the_execution_span() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from cod_reference.executor.types import ExecutionRequest
    from cod_reference.executor.wasm import WasmExecutor

    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    units: list[list[dict]] = []
    wasm = WIDE.replace(b"i32.const 1000", b"i32.const 10")       # 1 + 10 + 2,990 spans
    with WasmExecutor(tracer_provider=provider, guest_span_sink=units.append, max_guest_spans=100,
                      observe_options=Options(min_span_duration_us=0)) as ex:
        with provider.get_tracer("node").start_as_current_span("execution"):
            assert ex.run(ExecutionRequest("e1", wasm)).succeeded
    (unit,) = units
    assert len(unit) == 100 and unit[0]["attributes"][ATTR_GUEST_SPANS_DROPPED] == 3001 - 100
    spans = {s.name: s for s in exported.get_finished_spans()}
    assert spans["execution"].attributes[ATTR_GUEST_SPANS_DROPPED] == 2901
    assert spans["call"].attributes[ATTR_GUEST_SPANS_DROPPED] == 2901
