"""The recorders side by side in one run: the fast path (in-wasm) vs the Python recorder.

    .venv/bin/python benchmarks/bench_recorders.py            # table with ratios
    .venv/bin/python benchmarks/bench_recorders.py --quick    # one round, fib(22)
    .venv/bin/python -m pytest benchmarks/bench_recorders.py --benchmark-only

For fib(25) (guest-examples/build/fib*.wasm, 242,785 calls) and the C
printf/malloc example (hello*.wasm), each of:

  plain    the uninstrumented module
  noop     the instrumented module, every Observe import a no-op Python function
  python   the SDK with the Python recorder
  wasm     the SDK with the fast path

is timed for the guest's run alone ("exec") and for the run plus trace
assembly plus OTLP/JSON encoding ("total"), with the minimum span duration at
0 and at 20 us; best of N rounds.  Then the peak Python memory per buffered
event (tracemalloc, min 0).
"""
from __future__ import annotations

import functools
import gc
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import wasmtime

from observe_sdk import Options
from observe_sdk.abi import IMPORTS
from observe_sdk.adapters.base import Adapter
from observe_sdk.adapters.otlp_json import traces_data_json

BUILD = Path(__file__).resolve().parent.parent / "guest-examples" / "build"
ENGINE = wasmtime.Engine()
MODES = ("plain", "noop", "python", "wasm")


class NullAdapter(Adapter):
    """Drops what it gets: the benchmark measures the guest side only."""

    def export(self, traces: list[Any]) -> None:
        pass


@dataclass
class Guest:
    name: str
    argv: list[str]
    plain: wasmtime.Module
    instrumented: wasmtime.Module
    instrumented_bytes: bytes


@functools.cache
def _compiled(path: Path) -> tuple[bytes, wasmtime.Module]:
    data = path.read_bytes()
    return data, wasmtime.Module(ENGINE, data)


def load(name: str, argv: list[str]) -> Guest:
    _, plain = _compiled(BUILD / f"{name}.wasm")
    instr_bytes, instr = _compiled(BUILD / f"{name}.instr.wasm")
    return Guest(name, argv, plain, instr, instr_bytes)


class Prepared:
    """One guest instance, set up (not timed) for one mode."""

    def __init__(self, guest: Guest, mode: str, min_us: float, tmp: Path) -> None:
        self.store = wasmtime.Store(ENGINE)
        wasi = wasmtime.WasiConfig()
        wasi.argv = guest.argv
        wasi.stdout_file = str(tmp / "stdout")
        self.store.set_wasi(wasi)
        linker = wasmtime.Linker(ENGINE)
        linker.define_wasi()
        self.ctx = None
        self.adapter: Adapter | None = None
        if mode == "noop":
            for (ns, name), (params, _) in IMPORTS.items():
                ty = wasmtime.FuncType([getattr(wasmtime.ValType, p)() for p in params], [])
                linker.define_func(ns, name, ty, lambda *a: None)
        elif mode in ("python", "wasm"):
            self.adapter = NullAdapter()
            self.ctx = self.adapter.start(linker, guest.instrumented_bytes,
                                          Options(min_span_duration_us=min_us, recorder=mode,
                                                  max_events=50_000_000),
                                          store=self.store)
            assert self.ctx.recorder_name == mode
        module = guest.plain if mode == "plain" else guest.instrumented
        self.start = linker.instantiate(self.store, module).exports(self.store)["_start"]

    def exec(self) -> None:
        try:
            self.start(self.store)
        except wasmtime.ExitTrap as exc:
            if exc.code != 0:
                raise

    def finish(self) -> int:
        """Assemble and encode the trace; the number of spans kept."""
        if self.ctx is None:
            return 0
        trace = self.ctx.finish()
        traces_data_json([trace])
        return sum(1 for _ in trace.spans())

    def close(self) -> None:
        if self.adapter is not None:
            self.adapter.shutdown()


def measure(guest: Guest, mode: str, min_us: float, rounds: int, tmp: Path) -> tuple[float, float, int]:
    """Best exec time and best exec+assembly+encoding time over ``rounds``; spans kept."""
    best_exec = best_total = float("inf")
    spans = 0
    for _ in range(rounds):
        run = Prepared(guest, mode, min_us, tmp)
        gc.collect()
        t0 = time.perf_counter()
        run.exec()
        t1 = time.perf_counter()
        spans = run.finish()
        t2 = time.perf_counter()
        run.close()
        del run
        best_exec = min(best_exec, t1 - t0)
        best_total = min(best_total, t2 - t0)
    return best_exec, best_total, spans


def bytes_per_event(guest: Guest, mode: str, tmp: Path) -> tuple[float, int]:
    """Peak Python memory (tracemalloc) during the run, per event buffered (min 0)."""
    run = Prepared(guest, mode, 0, tmp)
    gc.collect()
    tracemalloc.start()
    run.exec()
    run.ctx._recorder.sync()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    events = len(run.ctx._recorder.log)
    run.close()
    return peak / max(events, 1), events


def table(guest: Guest, rounds: int, tmp: Path, say: Callable[[str], None]) -> dict[str, Any]:
    say(f"\n{guest.name} ({' '.join(guest.argv)}), best of {rounds}:")
    say(f"  {'mode':8s} {'min':>5s} {'exec s':>9s} {'x plain':>9s} {'exec+asm+OTLP s':>16s} {'spans':>8s}")
    out: dict[str, Any] = {}
    for mode in MODES:
        for min_us in ((0.0,) if mode in ("plain", "noop") else (0.0, 20.0)):
            ex, total, spans = measure(guest, mode, min_us, rounds, tmp)
            out[mode, min_us] = (ex, total, spans)
            plain = out["plain", 0.0][0]
            say(f"  {mode:8s} {min_us:5.0f} {ex:9.4f} {ex / plain:9.1f} {total:16.4f} {spans:8d}")
    py0, py20 = out["python", 0.0], out["python", 20.0]
    w0, w20 = out["wasm", 0.0], out["wasm", 20.0]
    say(f"  fast path vs Python recorder, exec:      x{py0[0] / w0[0]:.1f} (min 0)   "
        f"x{py20[0] / w20[0]:.1f} (min 20us)")
    say(f"  fast path vs Python recorder, exec+asm+OTLP: x{py0[1] / w0[1]:.1f} (min 0)   "
        f"x{py20[1] / w20[1]:.1f} (min 20us)")
    say(f"  fast path vs no-op Python hooks, exec:   x{out['noop', 0.0][0] / w0[0]:.1f}")
    return out


def main(argv: list[str]) -> None:
    import tempfile
    quick = "--quick" in argv
    rounds = 1 if quick else 3
    n = "22" if quick else "25"
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        fib = load("fib", ["fib", n])
        hello = load("hello", ["hello"])
        print(f"recorders side by side (one process, {sys.platform}, wasmtime-py)")
        table(fib, rounds, tmp, print)
        table(hello, rounds, tmp, print)
        print("\npeak Python memory per buffered event (tracemalloc, fib, min 0):")
        for mode in ("python", "wasm"):
            per, events = bytes_per_event(fib, mode, tmp)
            print(f"  {mode:8s} {per:6.1f} bytes/event  ({events:,} events)")


# pytest-benchmark entry points: fib(25), min 20 us, exec + assembly + OTLP/JSON (setup not timed)
def _bench_fib(benchmark: Any, mode: str, tmp: Path, rounds: int) -> None:
    guest = load("fib", ["fib", "25"])
    runs: list[Prepared] = []

    def setup() -> tuple[tuple[Prepared], dict[str, Any]]:
        runs.append(Prepared(guest, mode, 20.0, tmp))
        return (runs[-1],), {}

    def target(run: Prepared) -> None:
        run.exec()
        run.finish()

    benchmark.pedantic(target, setup=setup, rounds=rounds)
    for run in runs:
        run.close()


def test_fib_fast_path(benchmark: Any, tmp_path: Path) -> None:
    _bench_fib(benchmark, "wasm", tmp_path, 5)


def test_fib_python_recorder(benchmark: Any, tmp_path: Path) -> None:
    _bench_fib(benchmark, "python", tmp_path, 2)


if __name__ == "__main__":
    main(sys.argv[1:])
