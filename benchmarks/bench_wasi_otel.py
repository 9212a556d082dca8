"""What one guest span costs the host: through wasi:otel (a component) against the
core-module Observe API (``span-enter``/``span-exit``), side by side in one run.

    .venv/bin/python benchmarks/bench_wasi_otel.py          # prints the table
    .venv/bin/python -m pytest benchmarks/bench_wasi_otel.py --benchmark-only

Each path runs N spans twice: with the SDK's host functions and with no-op host
functions of the same signatures.  The difference over N is the host's cost per
span (the host calls plus turning them into the Trace), apart from what the
guest itself spends making the span (a Python guest's own interpreter time is
large and is the same in both runs).
"""
from __future__ import annotations

import importlib.util
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import wasmtime
from wasmtime import component

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import wat_modules as W  # noqa: E402
from observe_sdk import Options  # noqa: E402
from observe_sdk.abi import IMPORTS  # noqa: E402
from observe_sdk.adapters.memory import InMemoryAdapter  # noqa: E402
from observe_sdk.component import ComponentTraceContext  # noqa: E402
from observe_sdk.component.linking import span_context_record  # noqa: E402
from observe_sdk.component.run import compile_component  # noqa: E402
from observe_sdk.component.wit import FUNCTIONS  # noqa: E402

N_SPANS = 2_000
REPEATS = 5
OPTIONS = Options(min_span_duration_us=0, max_events=10_000_000)


def manual_span_loop(n: int) -> str:
    """A core module making n manual spans named "step" (span-enter/span-exit)."""
    return W.module(rf'''
  (func $main (export "_start") (local i32)
    (loop $l
      (call $span_enter (i32.const 0) (i32.const 4)) (call $span_exit)
      (local.set 0 (i32.add (local.get 0) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get 0) (i32.const {n})))))
''', data="step")


def time_core(observed: bool, n: int = N_SPANS) -> float:
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    store.set_wasi(wasmtime.WasiConfig())
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    wasm = wasmtime.wat2wasm(manual_span_loop(n))
    adapter = ctx = None
    if observed:
        adapter = InMemoryAdapter()
        ctx = adapter.start(linker, wasm, OPTIONS, store=store)
    else:
        for (ns, name), (params, _) in IMPORTS.items():
            ty = wasmtime.FuncType([getattr(wasmtime.ValType, p)() for p in params], [])
            linker.define_func(ns, name, ty, lambda *a: None)
    start = linker.instantiate(store, wasmtime.Module(engine, wasm)).exports(store)["_start"]
    t0 = time.perf_counter()
    assert isinstance(start, wasmtime.Func)
    start(store)
    if ctx is not None:
        ctx.finish()
    elapsed = time.perf_counter() - t0
    if adapter is not None:
        adapter.shutdown()
    return elapsed


def _otel_guest() -> tuple[wasmtime.Engine, component.Component]:
    spec = importlib.util.spec_from_file_location("otel_guest_build", ROOT / "guest-examples/component/build.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    engine = wasmtime.Engine()
    return engine, compile_component(engine, build.build().read_bytes())


def _link_noop(linker: component.Linker) -> None:
    context = span_context_record("0af7651916cd43dd8448eb211c80319c", 0xB7AD6B7169203331)
    with linker.root() as root:
        for interface, names in FUNCTIONS.items():
            with root.add_instance(interface) as instance:
                for name in names:
                    result = context if name == "current-span-context" else None
                    instance.add_func(name, lambda _store, *args, result=result: result)


def time_component(guest: tuple[wasmtime.Engine, component.Component], observed: bool, n: int = N_SPANS) -> float:
    engine, compiled = guest
    linker = component.Linker(engine)
    linker.add_wasip2()
    adapter = ctx = None
    if observed:
        adapter = InMemoryAdapter()
        ctx = ComponentTraceContext(adapter, linker, OPTIONS)
    else:
        _link_noop(linker)
    store = wasmtime.Store(engine)
    store.set_wasi(wasmtime.WasiConfig())
    work = linker.instantiate(store, compiled).get_func(store, "work")
    assert work is not None
    t0 = time.perf_counter()
    if ctx is not None:
        ctx.call(store, work, n, name="work")
    else:
        work(store, n)
        work.post_return(store)
    elapsed = time.perf_counter() - t0
    if adapter is not None:
        adapter.shutdown()
    return elapsed


def measure() -> dict[str, float]:
    """Minimum seconds of REPEATS interleaved runs of each of the four cases."""
    guest = _otel_guest()
    runs: dict[str, list[float]] = {"core plain": [], "core observed": [], "otel plain": [], "otel observed": []}
    for _ in range(REPEATS):
        runs["core plain"].append(time_core(False))
        runs["core observed"].append(time_core(True))
        runs["otel plain"].append(time_component(guest, False))
        runs["otel observed"].append(time_component(guest, True))
    return {k: min(v) for k, v in runs.items()} | {f"{k} median": statistics.median(v) for k, v in runs.items()}


def report(t: dict[str, float]) -> str:
    core = (t["core observed"] - t["core plain"]) / N_SPANS * 1e6
    otel = (t["otel observed"] - t["otel plain"]) / N_SPANS * 1e6
    lines = [f"{N_SPANS} spans, min of {REPEATS} interleaved runs",
             f"{'':34}{'no-op host':>12}{'SDK host':>12}{'host µs/span':>14}",
             f"{'core module, span-enter/exit':34}{t['core plain'] * 1e3:>10.1f}ms{t['core observed'] * 1e3:>10.1f}ms"
             f"{core:>14.2f}",
             f"{'component, wasi:otel':34}{t['otel plain'] * 1e3:>10.1f}ms{t['otel observed'] * 1e3:>10.1f}ms"
             f"{otel:>14.2f}",
             f"wasi:otel host cost per span = {otel / core:.1f}x the core ABI's; "
             f"the Python guest's own cost per span: {t['otel plain'] / N_SPANS * 1e6:.0f} µs"]
    return "\n".join(lines)


def test_wasi_otel_span_cost(benchmark: Any) -> None:
    timings = benchmark.pedantic(measure, rounds=1, iterations=1)
    print("\n" + report(timings))


if __name__ == "__main__":
    print(report(measure()))
