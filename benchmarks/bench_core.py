"""Core SDK costs, side by side in one run.

    .venv/bin/python benchmarks/bench_core.py          # prints a table with ratios
    .venv/bin/python -m pytest benchmarks/bench_core.py --benchmark-only

1. One enter/exit pair: uninstrumented loop vs no-op Python hooks vs the SDK's
   Python recorder (and the default recorder, whichever ``auto`` picks).
2. Assembling and OTLP/JSON-encoding a 250,000-span trace.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import wasmtime

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import wat_modules as W  # noqa: E402
from observe_sdk import Options  # noqa: E402
from observe_sdk.adapters.memory import InMemoryAdapter  # noqa: E402
from observe_sdk.adapters.otlp_json import traces_data_json  # noqa: E402
from observe_sdk.assemble import assemble  # noqa: E402
from observe_sdk.host.recorder import EventLog  # noqa: E402
from observe_sdk.names import FunctionNames  # noqa: E402

N_PAIRS = 200_000
PLAIN_LOOP = f'''(module (memory (export "memory") 1)
  (func $leaf) (func (export "_start") (local i32)
    (loop $l (call $leaf) (local.set 0 (i32.add (local.get 0) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get 0) (i32.const {N_PAIRS}))))))'''


def _setup(wat: str, mode: str):
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    store.set_wasi(wasmtime.WasiConfig())
    wasm = wasmtime.wat2wasm(wat)
    ctx = adapter = None
    if mode == "noop":
        linker.allow_shadowing = True
        for (ns, name), (params, _) in __import__("observe_sdk.abi", fromlist=["IMPORTS"]).IMPORTS.items():
            ty = wasmtime.FuncType([getattr(wasmtime.ValType, p)() for p in params], [])
            linker.define_func(ns, name, ty, lambda *a: None)
    elif mode in ("python", "auto"):
        adapter = InMemoryAdapter()
        ctx = adapter.start(linker, wasm, Options(recorder=mode, max_events=10_000_000), store=store)
    inst = linker.instantiate(store, wasmtime.Module(engine, wasm))
    return store, inst.exports(store)["_start"], ctx, adapter


def time_pairs(mode: str) -> float:
    wat = PLAIN_LOOP if mode == "plain" else W.loop_module(N_PAIRS)
    store, start, ctx, adapter = _setup(wat, mode)
    t0 = time.perf_counter()
    start(store)
    elapsed = time.perf_counter() - t0
    if ctx is not None:
        ctx.finish()
        adapter.shutdown()
    return elapsed / N_PAIRS


def synthetic_log(n_spans: int) -> EventLog:
    """A 250k-span log: a root with 500 children of 499 leaves each, 30 us apart."""
    log = EventLog(10 * n_spans)
    ev = log.events
    t = 1_700_000_000_000_000_000
    ev += (1, 1, t)
    made = 1
    while made < n_spans:
        ev += (1, 2, t)
        made += 1
        for _ in range(min(499, n_spans - made)):
            ev += (1, 3, t)
            t += 30_000
            ev += (3, 1, t)  # an allocation inside
            ev += (2, 3, t)
            made += 1
        t += 30_000
        ev += (2, 2, t)
    ev += (2, 1, t + 1)
    return log


def time_assembly(n_spans: int = 250_000) -> tuple[float, float, int]:
    log = synthetic_log(n_spans)
    names = FunctionNames({1: "main", 2: "_ZN3foo3barEv", 3: "leaf"})
    t0 = time.perf_counter()
    trace = assemble(log, names, min_span_duration_ns=20_000)
    t1 = time.perf_counter()
    text = traces_data_json([trace])
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, sum(1 for _ in trace.spans()) + 0 * len(text)


def main() -> None:
    rows = {mode: time_pairs(mode) for mode in ("plain", "noop", "python", "auto")}
    base = rows["plain"]
    print(f"one enter/exit pair ({N_PAIRS:,} pairs, best of one run each, side by side):")
    for mode, label in (("plain", "uninstrumented call"), ("noop", "no-op Python hooks"),
                        ("python", "SDK, Python recorder"), ("auto", "SDK, default recorder")):
        print(f"  {label:24s} {rows[mode] * 1e9:9.0f} ns   x{rows[mode] / base:8.1f} vs uninstrumented"
              f"   x{rows[mode] / rows['noop']:5.2f} vs no-op hooks")
    asm, enc, spans = time_assembly()
    print(f"250,000-span trace: assemble {asm:.3f} s, OTLP/JSON encode {enc:.3f} s, "
          f"{spans / (asm + enc):,.0f} spans/s ({spans:,} spans kept)")


# pytest-benchmark entry points
def test_pair_python_recorder(benchmark):
    benchmark.pedantic(time_pairs, args=("python",), rounds=3)


def test_pair_noop_hooks(benchmark):
    benchmark.pedantic(time_pairs, args=("noop",), rounds=3)


def test_assemble_encode_250k(benchmark):
    benchmark.pedantic(time_assembly, rounds=2)


if __name__ == "__main__":
    main()
