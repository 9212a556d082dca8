"""What the robustness tests share: running a module observed, and comparing what came out."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import wasmtime

import wat_modules as W
from observe_sdk import Options
from observe_sdk.adapters.memory import InMemoryAdapter
from observe_sdk.adapters.otlp_json import traces_data_json
from observe_sdk.adapters.stdout import format_trace
from observe_sdk.trace import Allocation, Log, Metric, Span, Trace
from test_core_adapters import parse_otlp

ENGINE = wasmtime.Engine()
PAGE = 65536


@dataclass
class Outcome:
    trace: Trace
    raised: BaseException | None
    adapter: InMemoryAdapter


def run_observed(module: wasmtime.Module, wasm: bytes, recorder: str, min_us: float,
                 adapter: InMemoryAdapter | None = None, calls: int = 1, **opts: Any) -> Outcome:
    """Run ``_start`` observed ``calls`` times in one trace, with WASI and store= (so both recorders can work)."""
    store = wasmtime.Store(ENGINE)
    store.set_wasi(wasmtime.WasiConfig())
    linker = wasmtime.Linker(ENGINE)
    linker.define_wasi()
    adapter = adapter or InMemoryAdapter()
    ctx = adapter.start(linker, wasm, Options(min_span_duration_us=min_us, recorder=recorder, **opts), store=store)
    assert ctx.recorder_name == recorder
    instance = linker.instantiate(store, module)
    raised = None
    for _ in range(calls):
        try:
            ctx.call(store, instance.exports(store)["_start"])
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:   # the guest's own trap or exit, nothing else
            raised = exc
    trace = ctx.finish()
    assert isinstance(trace, Trace)
    return Outcome(trace, raised, adapter)


def shape(events: list[Any]) -> list[Any]:
    """Everything about a trace's events but times and ids."""
    out: list[Any] = []
    for e in events:
        te = type(e)
        if te is Span:
            out.append(("span", e.name, e.raw_name, e.function_index, e.manual, tuple(e.tags), e.error,
                        shape(e.events)))
        elif te is Allocation:
            out.append(("alloc", e.pages))
        elif te is Log:
            out.append(("log", e.level, e.message))
        elif te is Metric:
            out.append(("metric", e.format, e.value))
        else:  # pragma: no cover
            raise AssertionError(f"unknown event {e!r}")
    return out


def flat(events: list[Any]) -> list[Any]:
    """Every non-span event of a forest, depth first."""
    out: list[Any] = []
    for e in events:
        if type(e) is Span:
            assert e.start_ns <= e.end_ns
            out.extend(flat(e.events))
        else:
            out.append(e)
    return out


def check_exports(trace: Trace) -> None:
    """The stdout tree and OTLP/JSON encodings of ``trace`` work, and the JSON is valid OTLP."""
    text = format_trace(trace)
    assert text.startswith(f"trace {trace.trace_id_hex}")
    # one line per error, span, log, metric and loose allocation, whatever the guest's text holds
    events = flat(trace.roots)
    lines = (1 + len(trace.errors) + sum(1 for _ in trace.spans()) + sum(1 for e in events if type(e) in (Log, Metric))
             + sum(1 for e in trace.roots if type(e) is Allocation))
    assert len(text.split("\n")) == lines
    doc = parse_otlp(traces_data_json([trace]))
    spans = doc.resource_spans[0].scope_spans[0].spans
    assert len(spans) >= sum(1 for _ in trace.spans())
    assert all(s.trace_id == trace.trace_id for s in spans)


def engine_with(**config: Any) -> wasmtime.Engine:
    cfg = wasmtime.Config()
    for key, value in config.items():
        setattr(cfg, key, value)
    return wasmtime.Engine(cfg)


def started(recorder: str = "python", adapter: Any = None, wat: str = W.NESTED
            ) -> tuple[Any, wasmtime.Store, wasmtime.Linker, Any, Any]:
    store = wasmtime.Store(ENGINE)
    store.set_wasi(wasmtime.WasiConfig())
    linker = wasmtime.Linker(ENGINE)
    linker.define_wasi()
    adapter = adapter or InMemoryAdapter()
    wasm = wasmtime.wat2wasm(wat)
    ctx = adapter.start(linker, wasm, Options(min_span_duration_us=0, recorder=recorder), store=store)
    instance = linker.instantiate(store, wasmtime.Module(ENGINE, wasm))
    return ctx, store, linker, instance.exports(store), adapter
