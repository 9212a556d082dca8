"""The cod network's overhead, side by side in one run.

    .venv/bin/python benchmarks/bench_cod.py           # prints a table with ratios
    .venv/bin/python -m pytest benchmarks/bench_cod.py --benchmark-only

The same small instrumented module (guest-examples/build/hello.instr.wasm) runs

1. directly: ``observe-sdk run`` in a fresh process (what a user would type), and
   in-process through the Wasm executor with a warm module cache (the floor);
2. as a job on a devstack with 3 compute nodes: submit-to-completed latency of one
   job at a time (median, p99), through the HTTP API, polling every 2 ms;
3. as many jobs submitted at once: jobs per second with 3 compute nodes, next to
   executions per second of the in-process executor on one thread.
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cod_reference.client import Client  # noqa: E402
from cod_reference.devstack import Devstack  # noqa: E402
from cod_reference.executor.types import ExecutionRequest  # noqa: E402
from cod_reference.executor.wasm import WasmExecutor  # noqa: E402
from cod_reference.models import wasm_job  # noqa: E402
from cod_reference.telemetry import Telemetry  # noqa: E402

MODULE = ROOT / "guest-examples" / "build" / "hello.instr.wasm"
FINAL = ("Completed", "Failed", "Stopped")


def pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))]


def row(name: str, samples: list[float], base: float | None = None) -> float:
    med = statistics.median(samples)
    ratio = f"{med / base:7.1f}x" if base else "    base"
    print(f"  {name:<52} median {med * 1e3:8.2f} ms   p99 {pct(samples, 0.99) * 1e3:8.2f} ms  {ratio}")
    return med


def observe_sdk_run(n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "observe_sdk.cli", "run", str(MODULE), "--out", "/dev/null"],
                       check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
        out.append(time.perf_counter() - t0)
    return out


def in_process(n: int) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="bench-cod-") as tmp:
        return _in_process(n, Path(tmp))


def _in_process(n: int, tmp: Path) -> list[float]:
    telemetry = Telemetry(tmp)
    executor = WasmExecutor(cache_dir=str(tmp / "cache"), tracer_provider=telemetry.tracer_provider,
                            meter_provider=telemetry.meter_provider)
    wasm = MODULE.read_bytes()
    out = []
    for i in range(n + 1):
        t0 = time.perf_counter()
        outcome = executor.run(ExecutionRequest(f"e{i}", wasm, stdout_path=str(tmp / "out"),
                                                stderr_path=str(tmp / "err")))
        assert outcome.succeeded, outcome.error
        if i:  # the first run compiles
            out.append(time.perf_counter() - t0)
    executor.close()
    telemetry.shutdown()
    return out


def wait_final(client: Client, job_id: str, interval: float = 0.002) -> str:
    while True:
        state = client.get_job(job_id)["Job"]["State"]["StateType"]
        if state in FINAL:
            return state
        time.sleep(interval)


def network(n_latency: int, n_burst: int) -> tuple[list[float], float]:
    doc = wasm_job(MODULE.read_bytes())
    with Devstack(computes=3, port=0) as stack, Client(port=stack.port) as client:
        for _ in range(3):  # warm every node's module cache
            wait_final(client, client.submit(doc)["JobID"])
        latencies = []
        for _ in range(n_latency):
            t0 = time.perf_counter()
            assert wait_final(client, client.submit(doc)["JobID"]) == "Completed"
            latencies.append(time.perf_counter() - t0)
        # more jobs than the nodes have room for at once: the rest wait in the queue (with no
        # QueueTimeout a job that finds every node full fails at once, as in Bacalhau)
        queued = wasm_job(MODULE.read_bytes(), Timeouts={"QueueTimeout": 120})
        t0 = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(lambda _: client.submit(queued)["JobID"], range(n_burst)))
        states = [wait_final(client, job_id, 0.02) for job_id in ids]
        burst = time.perf_counter() - t0
        assert states.count("Completed") == n_burst, states
    return latencies, n_burst / burst


def main() -> None:
    if not MODULE.is_file():
        sys.exit(f"{MODULE} is missing; build the guest examples first (make guests)")
    print(f"module: {MODULE.relative_to(ROOT)} ({MODULE.stat().st_size} bytes)\n")
    print("one small job, start to finish")
    cli = observe_sdk_run(5)
    direct = in_process(40)
    latencies, jobs_per_s = network(40, 60)
    base = row("in-process WasmExecutor.run (warm cache)", direct)
    row("`observe-sdk run` (fresh process)", cli, base)
    net = row("devstack: submit -> Completed (3 nodes, HTTP API)", latencies, base)
    print(f"\n  network latency / observe-sdk run: {net / statistics.median(cli):.2f}x;"
          f" network latency / in-process run: {net / base:.1f}x")
    print("\nthroughput")
    direct_rate = 1 / base
    cli_rate = 1 / statistics.median(cli)
    print(f"  in-process executor, 1 thread        {direct_rate:8.1f} runs/s")
    print(f"  `observe-sdk run`, one after another {cli_rate:8.1f} runs/s")
    print(f"  devstack, 3 compute nodes, 60 jobs   {jobs_per_s:8.1f} jobs/s   "
          f"({jobs_per_s / direct_rate:.2f}x in-process, {jobs_per_s / cli_rate:.1f}x observe-sdk run)")


def test_submit_to_completed(benchmark) -> None:  # pytest-benchmark entry point
    doc = wasm_job(MODULE.read_bytes())
    with Devstack(computes=3, port=0) as stack, Client(port=stack.port) as client:
        wait_final(client, client.submit(doc)["JobID"])
        benchmark(lambda: wait_final(client, client.submit(doc)["JobID"]))


if __name__ == "__main__":
    main()
