"""Components as cod jobs: WASI preview 2 and wasi:otel linked, their spans in the job's trace."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from cod_helpers import wait_for
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cod_reference.client import Client
from cod_reference.executor.component import nested_core_modules
from cod_reference.executor.types import ExecutionRequest
from cod_reference.executor.wasm import WasmExecutor
from component_guest import otel_guest_path
from observe_sdk import Options


@pytest.fixture(scope="module")
def guest() -> bytes:
    return otel_guest_path().read_bytes()


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Any:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    executor = WasmExecutor(tracer_provider=provider, observe_options=Options(min_span_duration_us=0),
                            cache_dir=str(tmp_path_factory.mktemp("cache")))
    yield executor, spans
    executor.close()


def test_a_component_runs_and_its_spans_nest_under_call(traced: Any, guest: bytes) -> None:
    executor, spans = traced
    spans.clear()
    out = executor.run(ExecutionRequest("comp-run", guest))
    assert out.error is None and out.exit_code == 0, out.error
    assert out.stdout_head == "hello from a wasi:otel component\n"
    executor.flush(5)
    by_name = {s.name: s for s in spans.get_finished_spans()}
    call, main = by_name["call"], by_name["main"]
    assert main.parent.span_id == call.context.span_id   # the executor's span is the guest's parent
    assert by_name["greet"].parent.span_id == main.context.span_id
    assert len({s.context.trace_id for s in spans.get_finished_spans()}) == 1


def test_the_entrypoint_names_a_root_export(traced: Any, guest: bytes) -> None:
    executor, _ = traced
    out = executor.run(ExecutionRequest("comp-bad-entry", guest, entrypoint="misbehave"))
    assert out.error_kind == "module" and "takes 2 argument(s)" in (out.error or "")
    out = executor.run(ExecutionRequest("comp-no-entry", guest, entrypoint="nope"))
    assert out.error_kind == "module" and "no exported function 'nope'" in (out.error or "")


def test_the_memory_limit_covers_the_components_memories(traced: Any, guest: bytes) -> None:
    executor, _ = traced
    assert len(nested_core_modules(guest)) >= 2
    out = executor.run(ExecutionRequest("comp-small", guest, memory_limit_bytes=8 << 20))
    assert out.error_kind == "memory", (out.error_kind, out.error)


def test_a_component_job_on_the_network(cod_client: Client, cod_local_dir: Path, guest: bytes) -> None:
    shutil.copy(otel_guest_path(), cod_local_dir / "otel_guest.wasm")
    doc = {"Type": "batch", "Count": 1, "Tasks": [{
        "Name": "main",
        "Engine": {"Type": "wasm", "Params": {"EntryModule": "/main.wasm", "Entrypoint": "_start"}},
        "InputSources": [{"Source": {"Type": "local", "Params": {"SourcePath": str(cod_local_dir / "otel_guest.wasm")}},
                          "Target": "/main.wasm"}]}]}
    job_id = cod_client.submit(doc)["JobID"]
    job = cod_client.wait(job_id, timeout=120, interval=0.1)
    assert job["State"]["StateType"] == "Completed", job["State"]

    expected = {"execution", "call", "publish", "main", "greet", "count-vowels"}

    def spans() -> Any:
        found = cod_client.trace(job_id, "records")["Spans"]
        return found if expected <= {s["name"] for s in found} else None

    records = wait_for(spans, timeout=30, what="the job's spans")
    by_id = {s["spanId"]: s for s in records}
    assert len({s["traceId"] for s in records}) == 1
    main = next(s for s in records if s["name"] == "main")
    assert by_id[main["parentSpanId"]]["name"] == "call"
