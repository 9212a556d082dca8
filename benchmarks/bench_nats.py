"""The network over NATS with separate processes against the in-process devstack, in one run.

    .venv/bin/python benchmarks/bench_nats.py          # prints a table with ratios

Both devstacks have 3 compute nodes and run the same small instrumented module
(guest-examples/build/hello.instr.wasm):

1. submit -> Completed latency of one job at a time (p50, p99), through the HTTP API;
2. jobs per second of a burst submitted from 8 threads (the jobs queue for room);
3. over NATS only: a compute node killed (kill -9) while it runs a job — the time until the
   orchestrator marks it DISCONNECTED and until the job completes on another node, with
   heartbeats every 0.5 s and a 2 s disconnect timeout (the defaults are 1 s and 10 s).

Goals (issue #10): p50 over NATS <= 2x in-process, throughput >= 0.5x in-process.
"""
from __future__ import annotations

import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_cod import MODULE, pct, wait_final  # noqa: E402

from cod_reference.client import Client  # noqa: E402
from cod_reference.devstack import Devstack  # noqa: E402
from cod_reference.models import wasm_job  # noqa: E402
from cod_reference.procstack import ProcessDevstack  # noqa: E402

BUSY_SECOND = 3 * 10**9  # iterations of the busy loop below in about a second


def busy(iterations: int) -> bytes:
    return (f'(module (func (export "_start") (local $i i64) (loop $l '
            f'(local.set $i (i64.add (local.get $i) (i64.const 1))) '
            f'(br_if $l (i64.lt_u (local.get $i) (i64.const {iterations}))))))').encode()


def measure(stack: Any, n_latency: int, n_burst: int) -> tuple[list[float], float]:
    doc = wasm_job(MODULE.read_bytes())
    with Client(port=stack.port) as client:
        for _ in range(6):  # warm every node's module cache
            wait_final(client, client.submit(doc)["JobID"])
        latencies = []
        for _ in range(n_latency):
            t0 = time.perf_counter()
            assert wait_final(client, client.submit(doc)["JobID"]) == "Completed"
            latencies.append(time.perf_counter() - t0)
        queued = wasm_job(MODULE.read_bytes(), Timeouts={"QueueTimeout": 120})
        t0 = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(lambda _: client.submit(queued)["JobID"], range(n_burst)))
        states = [wait_final(client, job_id, 0.02) for job_id in ids]
        rate = n_burst / (time.perf_counter() - t0)
        assert states.count("Completed") == n_burst, states
    return latencies, rate


def dead_node(rounds: int) -> list[tuple[float, float]]:
    """(seconds to DISCONNECTED, seconds to the job Completed elsewhere) after a kill -9."""
    out = []
    with ProcessDevstack(computes=3, port=0, heartbeat_interval_s=0.5, disconnect_timeout_s=2.0,
                         capacity={"CPU": 1.0, "Memory": 2**30}) as stack, Client(port=stack.port) as client:
        for _ in range(rounds):
            job_id = client.submit(wasm_job(busy(BUSY_SECOND)))["JobID"]
            node = ""
            while not node:
                node = next((e["NodeID"] for e in client.executions(job_id)
                             if e["ComputeState"]["StateType"] == "Running"), "")
                time.sleep(0.005)
            stack.kill(node)
            t0 = time.perf_counter()
            detected = 0.0
            while True:
                if not detected and any(n["Info"]["NodeID"] == node and n["Connection"] == "DISCONNECTED"
                                        for n in client.nodes()):
                    detected = time.perf_counter() - t0
                if client.get_job(job_id)["Job"]["State"]["StateType"] == "Completed":
                    out.append((detected, time.perf_counter() - t0))
                    break
                time.sleep(0.01)
            stack.start_process(node)
            stack.wait_ready()
    return out


def main() -> None:
    if not MODULE.is_file():
        sys.exit(f"{MODULE} is missing; build the guest examples first (make guests)")
    n_latency, n_burst = 40, 60
    print(f"module: {MODULE.relative_to(ROOT)}; {n_latency} jobs one at a time, then a burst of {n_burst}\n")
    results = {}
    for name, kind in (("in-process devstack", Devstack), ("NATS, separate processes", ProcessDevstack)):
        with kind(computes=3, port=0) as stack:
            results[name] = measure(stack, n_latency, n_burst)
    (base_lat, base_rate), (nats_lat, nats_rate) = results.values()
    print(f"  {'':<28} {'p50':>9} {'p99':>9} {'jobs/s':>8}")
    for name, (lat, rate) in results.items():
        print(f"  {name:<28} {statistics.median(lat) * 1e3:7.1f}ms {pct(lat, 0.99) * 1e3:7.1f}ms {rate:8.1f}")
    p50 = statistics.median(nats_lat) / statistics.median(base_lat)
    print(f"\n  NATS / in-process: p50 {p50:.2f}x (goal <= 2x), "
          f"throughput {nats_rate / base_rate:.2f}x (goal >= 0.5x)")
    print("\na compute node killed mid-job (heartbeat 0.5 s, disconnect timeout 2 s)")
    for detected, done in dead_node(3):
        print(f"  DISCONNECTED after {detected:5.2f} s, job Completed elsewhere after {done:5.2f} s")


if __name__ == "__main__":
    main()
