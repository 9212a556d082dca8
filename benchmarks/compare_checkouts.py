"""Two checkouts of this repository side by side: each exporter's cost, before and after a change.

    .venv/bin/python benchmarks/compare_checkouts.py BEFORE_DIR AFTER_DIR [--rounds N]

    git worktree add /tmp/before <commit>     # a checkout to compare with (or: git archive <commit> | tar -x)

fib(25) at a 0 us minimum span, run by each checkout's own code: the guest alone
(``none``), then assembly plus each adapter's encode (``json`` = otel-stdout's
OTLP/JSON, ``otlp``, ``datadog``, ``zipkin``, ``stdout``), and the whole
``observe-sdk run`` with the stdout and otel-stdout adapters. Every run is a process
of its own; in each round the two checkouts run back to back, in alternating order.
Printed: CPU seconds (the process's user + system time, which a busy machine
disturbs far less than wall time), min / median, wall seconds in brackets, peak RSS.

The worker (``--worker KIND``, run with a checkout as its working directory) uses
only what every checkout has: ``Adapter.start``, ``TraceContext.finish`` and each
adapter's encoding entry point as it was then (the OTLP adapter's older SDK-span
path included).
"""
from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from child_process import run_measured

KINDS = ["none", "json", "otlp", "datadog", "zipkin", "stdout", "run-stdout", "run-otel-stdout"]
GUEST = "guest-examples/build/fib.instr.wasm"
RUN_TIMEOUT_S = 600.0


# -- the worker: one measurement, in the checkout that is the working directory --------------

def _encoder(kind: str) -> Any:
    if kind == "json":
        from observe_sdk.adapters.otel_stdout import OtelStdoutAdapter

        sink = OtelStdoutAdapter(open(os.devnull, "w"))
        return lambda trace: sink.export([trace])
    if kind == "otlp":
        from observe_sdk.adapters.otlp import OtlpAdapter

        otlp = OtlpAdapter(protocol="http/protobuf", endpoint="http://127.0.0.1:9", signals=["traces", "logs"])
        if hasattr(otlp, "encode"):
            return lambda trace: otlp.encode([trace])
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

        def sdk_spans(trace: Any) -> list[bytes]:       # before the hand-written encoder
            otlp.emit_trace(trace)
            spans, otlp._spans = otlp._spans, []
            n = otlp.max_request_items
            return [encode_spans(spans[i:i + n]).SerializeToString() for i in range(0, len(spans), n)]
        return sdk_spans
    if kind == "datadog":
        from observe_sdk.adapters.datadog import DatadogAdapter

        dd = DatadogAdapter(agent_url="http://127.0.0.1:9", dogstatsd_url=False, logs=False)

        def packed(trace: Any) -> bytes:
            chunks, _, _ = dd.trace_chunks(trace)
            if chunks and isinstance(chunks[0], tuple):
                from observe_sdk.adapters.datadog_msgpack import payload

                return payload(chunks)
            import msgpack

            return bytes(msgpack.packb(chunks, use_bin_type=True))   # before: span maps as dicts
        return packed
    if kind == "zipkin":
        from observe_sdk.adapters.zipkin import ZipkinAdapter

        zipkin = ZipkinAdapter(endpoint="http://127.0.0.1:9/api/v2/spans")
        if hasattr(zipkin, "encode_json"):
            return lambda trace: "[" + ",".join(zipkin.encode_json(trace)) + "]"
        return lambda trace: json.dumps(zipkin.encode(trace), separators=(",", ":"))
    if kind == "stdout":
        from observe_sdk.adapters.stdout import format_trace

        return format_trace
    return None


def worker(kind: str) -> None:
    sys.path.insert(0, os.getcwd())
    import wasmtime

    from observe_sdk import Options
    from observe_sdk.adapters.base import Adapter

    class Discard(Adapter):
        name = "discard"

        def export(self, traces: list[Any]) -> None:
            pass

    engine = wasmtime.Engine()
    wasm = Path(GUEST).read_bytes()
    store = wasmtime.Store(engine)
    wasi = wasmtime.WasiConfig()
    wasi.argv = ["fib", "25"]
    wasi.stdout_file = os.devnull
    store.set_wasi(wasi)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    ctx = Discard().start(linker, wasm, Options(min_span_duration_us=0), store=store)
    start = linker.instantiate(store, wasmtime.Module(engine, wasm)).exports(store)["_start"]
    encode = _encoder(kind)
    clocks = [(time.perf_counter(), time.process_time())]
    try:
        start(store)
    except wasmtime.ExitTrap:
        pass
    clocks.append((time.perf_counter(), time.process_time()))
    trace = ctx.finish()
    clocks.append((time.perf_counter(), time.process_time()))
    if encode is not None:
        encode(trace)
    clocks.append((time.perf_counter(), time.process_time()))
    (w0, c0), (w1, c1), (w2, c2), (w3, c3) = clocks
    print(json.dumps({"exec": w1 - w0, "asm+enc": w3 - w1, "enc": w3 - w2, "cpu exec": c1 - c0,
                      "cpu asm+enc": c3 - c1, "cpu enc": c3 - c2,
                      "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


# -- the driver ---------------------------------------------------------------------------

def measure(checkout: str, kind: str) -> dict[str, float]:
    if kind.startswith("run-"):
        out = Path(checkout) / ".compare-run.out"
        wall, cpu, rss = run_measured([sys.executable, "-m", "observe_sdk", "run", GUEST, "--adapter", kind[4:],
                                       "--out", str(out), "--min-span-us", "0", "--", "25"], checkout, RUN_TIMEOUT_S)
        out.unlink()
        return {"wall": wall, "cpu": cpu, "rss": rss}
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", kind], cwd=checkout,
                          check=True, capture_output=True, text=True)
    values: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return values


def main(argv: list[str]) -> None:
    rounds = 3
    if "--rounds" in argv:
        at = argv.index("--rounds")
        rounds = int(argv[at + 1])
        del argv[at:at + 2]
    before, after = argv
    checkouts = {"before": before, "after": after}
    results: dict[tuple[str, str, str], list[float]] = {}
    for round_no in range(rounds):
        for i, kind in enumerate(KINDS):
            order = list(checkouts.items())
            if (round_no + i) % 2:
                order.reverse()
            for name, checkout in order:
                for what, value in measure(checkout, kind).items():
                    results.setdefault((name, kind, what), []).append(value)
        print(f"round {round_no + 1}/{rounds} done", file=sys.stderr)
    print(f"{'':18s} {'before CPU s (wall s)':>30s} {'after CPU s (wall s)':>30s} {'after/before':>12s}")
    for kind in KINDS:
        cpu = "cpu" if kind.startswith("run-") else "cpu asm+enc"
        wall = "wall" if kind.startswith("run-") else "asm+enc"
        if kind == "none":
            cpu, wall = "cpu exec", "exec"
        cells = []
        for name in checkouts:
            c, w = results[(name, kind, cpu)], results[(name, kind, wall)]
            cells.append(f"{min(c):.2f}/{statistics.median(c):.2f} ({min(w):.2f}/{statistics.median(w):.2f})")
        ratio = min(results[("after", kind, cpu)]) / min(results[("before", kind, cpu)])
        print(f"{kind:18s} {cells[0]:>30s} {cells[1]:>30s} {ratio:>12.2f}")
    for kind in KINDS:
        rss = [max(results[(name, kind, "rss")]) for name in checkouts]
        print(f"peak RSS {kind:15s} before {rss[0]:6.0f} MiB   after {rss[1]:6.0f} MiB")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker(sys.argv[2])
    else:
        main(sys.argv[1:])
