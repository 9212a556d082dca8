"""The instrumenter's speed, and what instrumentation costs at run time, in one run.

    .venv/bin/python benchmarks/bench_instrument.py       # prints MB/s and overhead ratios
    .venv/bin/python -m pytest benchmarks/bench_instrument.py --benchmark-only

1. Pass speed on the largest module of the examples (the Go program, ~4.5 MB with a
   ~2.9 MB code section): read only, then read + instrument + write; MB/s of code
   section.  Target: under 3 s for a 2.5 MB module.
2. Run-time overhead of instrumented vs plain, side by side: ``fib`` (C, recursive,
   argv 20) and ``hello`` (C, printf and malloc), the instrumented module linked to
   counting no-op host functions; with and without ``min_instructions`` (small leaves
   left out); then under the SDK itself with its Python and its wasm recorder.  Times
   are for the ``_start`` call only (compiled and instantiated before).
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import wasmtime

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from observe_sdk.instrument import instrument_module, read_module  # noqa: E402
from observe_sdk.instrument.module import CODE  # noqa: E402

BUILD = ROOT / "guest-examples" / "build"
ENGINE = wasmtime.Engine()


def largest_module() -> Path:
    return max((p for p in BUILD.glob("*.wasm") if not p.name.endswith(".instr.wasm")),
               key=lambda p: p.stat().st_size)


def best_of(n: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(n):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def code_size(wasm: bytes) -> int:
    sec = read_module(wasm).section(CODE)
    return sec.payload_end - sec.payload_start if sec else 0


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    def hook(self, _value: int) -> None:
        self.calls += 1


def make_runner(wasm: bytes, argv: list[str], sdk_recorder: str | None = None) -> tuple[Callable[[], None], Counter]:
    """A function running ``_start`` in a fresh instance (instantiation not timed).

    Without ``sdk_recorder`` the hooks are counting no-op Python functions; with it, the
    SDK (InMemoryAdapter, that recorder) is attached and the trace finished after the run.
    """
    module = wasmtime.Module(ENGINE, wasm)
    counter = Counter()
    i32 = wasmtime.FuncType([wasmtime.ValType.i32()], [])

    def run() -> None:
        store = wasmtime.Store(ENGINE)
        wasi = wasmtime.WasiConfig()
        wasi.argv = ["guest", *argv]
        store.set_wasi(wasi)       # stdout discarded
        linker = wasmtime.Linker(ENGINE)
        linker.define_wasi()
        ctx = adapter = None
        if sdk_recorder is None:
            for name in ("enter", "exit", "memory-grow"):
                linker.define_func("dylibso:observe/instrument", name, i32, counter.hook)
        else:
            from observe_sdk import Options
            from observe_sdk.adapters.memory import InMemoryAdapter
            adapter = InMemoryAdapter()
            ctx = adapter.start(linker, wasm, Options(recorder=sdk_recorder), store=store)
        start = linker.instantiate(store, module).exports(store)["_start"]
        began = time.perf_counter()
        try:
            start(store)
        except wasmtime.ExitTrap:
            pass
        run.elapsed = time.perf_counter() - began  # type: ignore[attr-defined]
        if ctx is not None and adapter is not None:
            counter.calls = len(ctx.finish().roots)
            adapter.shutdown()
    return run, counter


def timed_run(wasm: bytes, argv: list[str], repeat: int = 5, sdk_recorder: str | None = None) -> tuple[float, int]:
    run, counter = make_runner(wasm, argv, sdk_recorder)
    best = float("inf")
    for _ in range(repeat):
        counter.calls = 0
        run()
        best = min(best, run.elapsed)  # type: ignore[attr-defined]
    return best, counter.calls


def pass_speed() -> None:
    path = largest_module()
    wasm = path.read_bytes()
    code = code_size(wasm)
    read_s = best_of(3, lambda: read_module(wasm))
    instr_s = best_of(3, lambda: instrument_module(wasm))
    summary = instrument_module(wasm).summary
    print(f"pass on {path.name}: {len(wasm) / 1e6:.2f} MB module, {code / 1e6:.2f} MB code section, "
          f"{summary.functions} functions")
    print(f"  read (parse + scan every body):   {read_s:6.3f} s   {code / 1e6 / read_s:6.1f} MB/s of code")
    print(f"  read + instrument + write:        {instr_s:6.3f} s   {code / 1e6 / instr_s:6.1f} MB/s of code")
    print(f"  scaled to 2.5 MB of code:         {instr_s * 2.5e6 / code:6.3f} s   (target < 3 s)")


def overhead() -> None:
    cases = [("fib", ["20"]), ("hello", [])]
    print("run-time overhead (best of 5, _start only; hooks are counting no-op Python functions)")
    print(f"  {'module':8} {'variant':22} {'time':>10} {'ratio':>7} {'hook calls':>11} {'instrumented':>13}")
    for name, argv in cases:
        plain = (BUILD / f"{name}.wasm").read_bytes()
        base, _ = timed_run(plain, argv)
        print(f"  {name:8} {'plain':22} {base * 1e3:8.2f}ms {1.0:7.2f} {0:11d} {'-':>13}")
        for label, options in (("instrumented", {}), ("min_instructions=20", {"min_instructions": 20}),
                               ("min_instructions=50", {"min_instructions": 50})):
            result = instrument_module(plain, **options)
            elapsed, calls = timed_run(result.wasm, argv)
            s = result.summary
            print(f"  {name:8} {label:22} {elapsed * 1e3:8.2f}ms {elapsed / base:7.2f} {calls:11d} "
                  f"{s.instrumented:6d}/{s.functions:<6d}")
        wasm = instrument_module(plain).wasm
        for recorder in ("python", "wasm"):
            elapsed, _ = timed_run(wasm, argv, sdk_recorder=recorder)
            print(f"  {name:8} {'SDK, ' + recorder + ' recorder':22} {elapsed * 1e3:8.2f}ms {elapsed / base:7.2f} "
                  f"{'-':>11} {'all':>13}")


# --- pytest-benchmark -----------------------------------------------------------

def test_bench_instrument_largest(benchmark) -> None:  # type: ignore[no-untyped-def]
    wasm = largest_module().read_bytes()
    benchmark.pedantic(instrument_module, args=(wasm,), rounds=3, iterations=1)


def test_bench_read_largest(benchmark) -> None:  # type: ignore[no-untyped-def]
    wasm = largest_module().read_bytes()
    benchmark.pedantic(read_module, args=(wasm,), rounds=3, iterations=1)


def test_bench_fib_plain(benchmark) -> None:  # type: ignore[no-untyped-def]
    run, _ = make_runner((BUILD / "fib.wasm").read_bytes(), ["20"])
    benchmark.pedantic(run, rounds=5, iterations=1)


def test_bench_fib_instrumented(benchmark) -> None:  # type: ignore[no-untyped-def]
    run, _ = make_runner(instrument_module((BUILD / "fib.wasm").read_bytes()).wasm, ["20"])
    benchmark.pedantic(run, rounds=5, iterations=1)


if __name__ == "__main__":
    pass_speed()
    print()
    overhead()
