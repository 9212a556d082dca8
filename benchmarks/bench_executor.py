"""Costs of cod_reference's Wasm executor, side by side in one run.

    .venv/bin/python benchmarks/bench_executor.py      # prints a table with ratios

1. One small execution (WASI command printing its argv): ``WasmExecutor.run`` (temp
   output files, mounts, spans, outcome) vs bare wasmtime (store + WASI + instantiate +
   call of an already compiled module).
2. An instrumented guest through the Observe SDK's OpenTelemetry adapter vs the same
   guest with the SDK turned off.
3. Epoch interruption (needed for timeouts) on a CPU-bound loop: on vs off.
4. Compiling a 4.5 MB Go module vs a memory cache hit vs loading wasmtime's serialized
   form from the disk cache (a restarted node).
5. Executions per second with 1 and 2 worker threads (CPU-bound guest).
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import wasmtime
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: measure this checkout, not whatever is installed

from cod_reference.executor.types import ExecutionRequest  # noqa: E402 (after the sys.path line above)
from cod_reference.executor.wasm import WasmExecutor  # noqa: E402

TOOL = (ROOT / "tests" / "cod" / "test_executor_data" / "tool.wasm").read_bytes()
NESTED = (ROOT / "guest-examples" / "wat" / "nested.instr.wat").read_bytes()
BIG = ROOT / "guest-examples" / "build" / "inventory.wasm"
LOOP = """(module (func (export "_start") (local i32)
  (loop $l (local.set 0 (i32.add (local.get 0) (i32.const 1)))
    (br_if $l (i32.lt_u (local.get 0) (i32.const {n}))))))"""


def pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))]


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def bare_wasmtime(module_bytes: bytes, args: list[str], tmp: str):
    engine = wasmtime.Engine()
    module = wasmtime.Module(engine, module_bytes)
    Path(tmp).mkdir(parents=True, exist_ok=True)
    runs = iter(range(10**9))

    def run() -> None:
        store = wasmtime.Store(engine)
        wasi = wasmtime.WasiConfig()
        wasi.argv = ["main.wasm", *args]
        wasi.stdout_file = f"{tmp}/{next(runs)}.out"   # a fresh file per run, as in a compute node
        store.set_wasi(wasi)
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        try:
            linker.instantiate(store, module).exports(store)["_start"](store)
        except wasmtime.ExitTrap:
            pass
    return run


def row(name: str, samples: list[float], base: float | None = None) -> None:
    med = statistics.median(samples)
    ratio = f"{med / base:6.2f}x" if base else "   base"
    print(f"  {name:<44} median {med * 1e3:8.3f} ms   p99 {pct(samples, 0.99) * 1e3:8.3f} ms   {ratio}")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-executor-") as scratch:  # the runs' output files
        measure(scratch)


def measure(scratch: str) -> None:
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    executor = WasmExecutor(tracer_provider=tp)
    n = 300

    print("1. one small execution (tool args a b c)")
    bare = timed(bare_wasmtime(TOOL, ["args", "a", "b", "c"], f"{scratch}/bare"), n)
    out_dir = f"{scratch}/executor"
    runs = iter(range(10**9))

    def fresh(module: bytes, args: list[str]) -> ExecutionRequest:
        i = next(runs)  # output files of their own, as a compute node gives them
        return ExecutionRequest(f"b{i}", module, args=args,
                                stdout_path=f"{out_dir}/{i}/stdout", stderr_path=f"{out_dir}/{i}/stderr")
    executor.run(fresh(TOOL, ["args"]))
    ours = timed(lambda: executor.run(fresh(TOOL, ["args", "a", "b", "c"])), n)
    mem = timed(lambda: executor.run(ExecutionRequest("m", TOOL, args=["args", "a", "b", "c"])), n)
    row("bare wasmtime (compiled module)", bare)
    row("WasmExecutor.run, output files", ours, statistics.median(bare))
    row("WasmExecutor.run, output kept in memory", mem, statistics.median(bare))

    print("2. instrumented guest (nested.instr.wat, 6 function spans)")
    plain_exec = WasmExecutor(tracer_provider=tp)
    plain_exec._observe_adapter = lambda: None   # the SDK off, for comparison only
    plain_exec.run(fresh(NESTED, []))
    executor.run(fresh(NESTED, []))
    off = timed(lambda: plain_exec.run(fresh(NESTED, [])), n)
    on = timed(lambda: executor.run(fresh(NESTED, [])), n)
    row("Observe SDK off", off)
    row("Observe SDK on (OpenTelemetry adapter, flushed)", on, statistics.median(off))

    print("3. epoch interruption on a CPU-bound loop (100M iterations)")
    loop = LOOP.format(n=100_000_000)
    cfg = wasmtime.Config()
    no_epoch = wasmtime.Engine(cfg)
    module = wasmtime.Module(no_epoch, loop)

    def run_no_epoch() -> None:
        store = wasmtime.Store(no_epoch)
        wasmtime.Linker(no_epoch).instantiate(store, module).exports(store)["_start"](store)
    req = ExecutionRequest("l", loop.encode(), timeout_s=60)
    executor.run(req)
    base = timed(run_no_epoch, 5)
    row("epoch interruption off", base)
    row("WasmExecutor (epoch on, 60 s timeout)", timed(lambda: executor.run(req), 5), statistics.median(base))

    if BIG.exists():
        print(f"4. module cache ({BIG.name}, {BIG.stat().st_size / 1e6:.1f} MB)")
        data = BIG.read_bytes()
        with tempfile.TemporaryDirectory() as cache:
            first = WasmExecutor(cache_dir=cache)
            t0 = time.perf_counter()
            first.modules.get(data)
            compile_s = time.perf_counter() - t0
            hits = timed(lambda: first.modules.get(data), 20)
            second = WasmExecutor(cache_dir=cache)
            t0 = time.perf_counter()
            assert second.modules.get(data).source == "disk"
            disk_s = time.perf_counter() - t0
        row("compile", [compile_s])
        row("disk cache (restarted node)", [disk_s], compile_s)
        row("memory cache hit (sha256 + lookup)", hits, compile_s)

    print("5. throughput, CPU-bound guest (200M iterations), 20 executions")
    req = ExecutionRequest("t", LOOP.format(n=200_000_000).encode())
    executor.run(req)
    for workers in (1, 2):
        t0 = time.perf_counter()
        per_thread = 20 // workers
        threads = [threading.Thread(target=lambda n=per_thread: [executor.run(req) for _ in range(n)])
                   for _ in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(f"  {workers} worker thread(s): {20 / (time.perf_counter() - t0):8.1f} executions/s")
    executor.close()
    plain_exec.close()


if __name__ == "__main__":
    main()
