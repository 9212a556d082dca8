"""wasi:otel hosted for a real component (Python in Wasm, built by componentize-py)."""
from __future__ import annotations

import re
from typing import Any

import pytest
import wasmtime

from observe_sdk import Options, Span, Trace
from observe_sdk.adapters.memory import InMemoryAdapter
from observe_sdk.adapters.otlp_json import traces_data
from observe_sdk.component import ComponentTraceContext, is_component
from observe_sdk.component.run import ComponentArgumentError, describe, run_component
from observe_sdk.component.wit import LOGS, METRICS, TRACING


def run(otel_guest: Any, options: Options | None = None, **kw: Any) -> tuple[Any, Trace]:
    engine, compiled = otel_guest
    store = wasmtime.Store(engine)
    store.set_wasi(wasmtime.WasiConfig())
    sink = InMemoryAdapter()
    outcome = run_component(engine, compiled, store, sink, options, module_name="otel_guest.wasm", **kw)
    [trace] = sink.wait_for(1)
    sink.shutdown()
    return outcome, trace


def shape(span: Span) -> tuple[str, list[Any]]:
    return span.name, [shape(c) for c in span.children]


def test_the_guest_is_a_component_that_imports_wasi_otel(otel_guest_path_fixture: Any, otel_guest: Any) -> None:
    engine, compiled = otel_guest
    assert is_component(otel_guest_path_fixture.read_bytes())
    info = describe(engine, compiled)
    assert {TRACING, LOGS, METRICS} <= set(info.otel_imports)
    assert {"wasi:cli/run@0.2.0", "work"} <= set(info.exports)


def test_run_gives_nested_spans_a_log_and_a_metric(otel_guest: Any) -> None:
    outcome, trace = run(otel_guest, Options(min_span_duration_us=0))
    assert outcome.exit_code == 0
    assert trace.errors == []
    [root] = trace.root_spans
    assert shape(root) == ("wasi:cli/run", [("main", [("greet", []), ("count-vowels", [])])])
    main = root.children[0]
    assert [type(e).__name__ for e in main.events] == ["Span", "Span", "Metric", "Log"]
    assert main.events[2].value == "vowels.count:5|c"
    assert (main.events[3].severity, main.events[3].message) == ("INFO", "5 vowels")
    assert root.children[0].children[1].tags == ["text:Hello, WebAssembly"]
    assert trace.module_name == "otel_guest.wasm"
    for span in trace.spans():  # the guest's own ids and parent links are kept
        for child in span.children:
            assert child.parent_id == span.span_id


def test_invoke_passes_arguments_and_returns_the_result(otel_guest: Any) -> None:
    outcome, trace = run(otel_guest, invoke="work", arguments=["3"])
    assert outcome.result == 3
    [root] = trace.root_spans
    assert shape(root) == ("work", [("work", [("step", [])] * 3)])
    assert root.children[0].tags == ["n:3"]


@pytest.mark.parametrize("invoke, arguments, message", [
    ("nope", [], "has no export 'nope'"),
    ("work", [], "takes 1 argument(s), 0 given"),
    ("work", ["x"], "'x' is not a U32"),
    (None, ["1"], "takes no arguments"),
])
def test_bad_exports_and_arguments_are_refused_before_running(otel_guest: Any, invoke: str | None,
                                                              arguments: list[str], message: str) -> None:
    engine, compiled = otel_guest
    store = wasmtime.Store(engine)
    store.set_wasi(wasmtime.WasiConfig())
    sink = InMemoryAdapter()
    with pytest.raises(ComponentArgumentError, match=re.escape(message)):
        run_component(engine, compiled, store, sink, invoke=invoke, arguments=arguments)
    assert sink.traces == []


def call_work(otel_guest: Any, **metadata: Any) -> Trace:
    engine, compiled = otel_guest
    linker = wasmtime.component.Linker(engine)
    linker.add_wasip2()
    sink = InMemoryAdapter()
    ctx = ComponentTraceContext(sink, linker)
    ctx.set_metadata(**metadata)
    store = wasmtime.Store(engine)
    store.set_wasi(wasmtime.WasiConfig())
    instance = linker.instantiate(store, compiled)
    ctx.call(store, instance.get_func(store, "work"), 2, name="work")
    [trace] = sink.wait_for(1)
    sink.shutdown()
    return trace


def test_a_traceparent_makes_the_guest_join_the_hosts_trace(otel_guest: Any) -> None:
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    trace = call_work(otel_guest, traceparent=parent)
    [work] = trace.root_spans  # no invocation span: the host's span is the top
    assert work.name == "work" and work.parent_id == 0
    doc = traces_data([trace])
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert {s["traceId"] for s in spans} == {"0af7651916cd43dd8448eb211c80319c"}
    by_id = {s["spanId"]: s for s in spans}
    assert by_id[f"{work.span_id:016x}"]["parentSpanId"] == "b7ad6b7169203331"
    assert sorted(s["name"] for s in spans) == ["step", "step", "work"]


def test_the_current_opentelemetry_span_is_the_guests_parent(otel_guest: Any) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("host")
    with tracer.start_as_current_span("request") as host_span:
        trace = call_work(otel_guest)
    context = host_span.get_span_context()
    assert trace.trace_id == context.trace_id.to_bytes(16, "big")
    spans = traces_data([trace])["resourceSpans"][0]["scopeSpans"][0]["spans"]
    top = [s for s in spans if s["name"] == "work"]
    assert top[0]["parentSpanId"] == f"{context.span_id:016x}"


MISBEHAVIOURS = {
    "bad-id": ["on-start: span-id 'not-hex!' is not 16 hex digits", "on-end: span-id '123' is not 16 hex digits"],
    "end-without-start": ["was never started; kept"],
    "unknown-parent": ["names parent 00000000000000cc, which never existed"],
    "end-before-start": ["ends 1000000000000000000 ns before it starts"],
    "cycle": ["its parents form a cycle"],
    "huge": ["1000 attributes; 872 dropped", "cut to 65536"],
    "never-ended": ["was started but never ended"],
}


@pytest.mark.parametrize("how", sorted(MISBEHAVIOURS))
def test_a_guest_breaking_the_contract_is_a_fault_not_a_crash(otel_guest: Any, how: str) -> None:
    _, trace = run(otel_guest, invoke="misbehave", arguments=[how, "70000"])
    for expected in MISBEHAVIOURS[how]:
        assert any(expected in e for e in trace.errors), (expected, trace.errors)
    assert len(list(trace.spans())) >= 1   # whatever was valid is kept, under the invocation span
    [root] = trace.root_spans
    assert all(s.span_id for s in root.walk())


def test_a_flood_of_spans_stops_at_the_event_cap(otel_guest: Any) -> None:
    _, trace = run(otel_guest, Options(max_events=50), invoke="misbehave", arguments=["flood", "200"])
    assert len(list(trace.spans())) == 1 + 50
    assert trace.dropped_events >= 150


def test_a_trap_closes_the_open_spans_as_errors(otel_guest: Any) -> None:
    engine, compiled = otel_guest
    store = wasmtime.Store(engine)
    store.set_wasi(wasmtime.WasiConfig())
    sink = InMemoryAdapter()
    with pytest.raises(wasmtime.ExitTrap):
        run_component(engine, compiled, store, sink, invoke="misbehave", arguments=["trap", "0"])
    [trace] = sink.wait_for(1)
    sink.shutdown()
    [root] = trace.root_spans
    assert root.error == "exit code 1"  # wasi:cli/exit carries ok or err only
    [doomed] = root.children
    assert doomed.error == root.error


def cli(*args: str, cache: Any) -> Any:
    import os
    import subprocess
    import sys

    env = dict(os.environ, OBSERVE_SDK_CACHE_DIR=str(cache))
    return subprocess.run([sys.executable, "-m", "observe_sdk", *args], capture_output=True, text=True,
                          timeout=120, env=env)


def test_observe_sdk_run_and_inspect_take_a_component(otel_guest_path_fixture: Any, otel_guest: Any,
                                                      component_cache_dir: Any) -> None:
    import json

    path = str(otel_guest_path_fixture)
    ran = cli("run", path, "--adapter", "otel-stdout", cache=component_cache_dir)
    assert ran.returncode == 0, ran.stderr
    assert "hello from a wasi:otel component" in ran.stderr   # the telemetry owns stdout
    spans = json.loads(ran.stdout)["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert sorted(s["name"] for s in spans) == ["count-vowels", "greet", "main", "wasi:cli/run"]
    invoked = cli("run", path, "--invoke", "work:4", "--out", "/dev/null", cache=component_cache_dir)
    assert (invoked.returncode, invoked.stdout.strip()) == (0, "6")
    refused = cli("run", path, "--invoke", "work:x", cache=component_cache_dir)
    assert refused.returncode == 2
    assert refused.stderr.startswith("observe-sdk: error:") and "'x' is not a U32" in refused.stderr
    shown = json.loads(cli("inspect", path, "--json", cache=component_cache_dir).stdout)
    assert shown["component"] is True
    assert TRACING in shown["wasi_otel_imports"] and "wasi:cli/run@0.2.0" in shown["exports"]
