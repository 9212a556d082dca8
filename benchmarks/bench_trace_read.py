"""Reading a job's trace back: `cod job trace ID` on a 124k-span guest (issue #11).

    .venv/bin/python benchmarks/bench_trace_read.py [SPANS]

Runs a job whose guest makes SPANS (default 124,000) spans through a devstack that keeps
every span, then times what `cod job trace ID` does: the API call (the orchestrator reads
the trace's files and serves them; the client decodes them) and the tree it prints.  Side
by side, in the same run: `cod job trace ID` as a user runs it, in a process of its own
(Python's start and imports included), and the layout the network used before, one
spans.jsonl for every trace, read by a scan of every line and decoded line by line (the
124k spans of the job between the same number of another job's).  Wall and CPU seconds are both shown: the
devstack runs in this process, so CPU time counts the server's work and the client's, and
is what a busy machine does not inflate.
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cod_reference.client import Client  # noqa: E402
from cod_reference.devstack import Devstack  # noqa: E402
from cod_reference.models import wasm_job  # noqa: E402
from cod_reference.telemetry import Telemetry  # noqa: E402
from cod_reference.traceview import tree_text  # noqa: E402
from observe_sdk import Options  # noqa: E402


def wide(spans: int) -> bytes:
    """_start -> 400 branches -> leaves: ``spans`` function spans in all."""
    branches = 400
    leaves = max(1, (spans - 1 - branches) // branches)
    return f'''(module
  (import "dylibso:observe/instrument" "enter" (func $enter (param i32)))
  (import "dylibso:observe/instrument" "exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func $leaf (call $enter (i32.const 2)) (call $exit (i32.const 2)))
  (func $branch (local $i i32) (call $enter (i32.const 3))
    (loop $l (call $leaf) (local.set $i (i32.add (local.get $i) (i32.const 1)))
             (br_if $l (i32.lt_u (local.get $i) (i32.const {leaves})))) (call $exit (i32.const 3)))
  (func (export "_start") (local $i i32) (call $enter (i32.const 4))
    (loop $l (call $branch) (local.set $i (i32.add (local.get $i) (i32.const 1)))
             (br_if $l (i32.lt_u (local.get $i) (i32.const {branches})))) (call $exit (i32.const 4))))'''.encode()


def every_span_executor(node_dir: Path, telemetry: Telemetry):  # type: ignore[no-untyped-def]
    from cod_reference.executor.wasm import WasmExecutor

    return WasmExecutor(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider,
                        guest_span_sink=telemetry.guest_span_sink,
                        observe_options=Options(min_span_duration_us=0, max_events=10_000_000))


def old_layout_read(records: list[dict], tmp: Path) -> float:
    """The previous store: every trace in one spans.jsonl, scanned and decoded line by line."""
    path = tmp / "spans.jsonl"
    other = [dict(r, traceId="f" * 32) for r in records]
    with open(path, "w", encoding="utf-8") as fh:
        for r in (*other, *records):
            fh.write(json.dumps(r, separators=(",", ":")) + "\n")
    t0 = time.perf_counter()
    needle = f'"traceId":"{records[0]["traceId"]}"'
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if needle in line:
                out.append(json.loads(line))
    out.sort(key=lambda s: (s["startTimeUnixNano"], s["endTimeUnixNano"]))
    body = json.dumps({"Spans": out})   # the API then encoded them again...
    json.loads(body)                    # ...and the client decoded them
    return time.perf_counter() - t0


def cli_job_trace(job_id: str, port: int) -> tuple[float, float, float]:
    """`cod job trace ID` as a user runs it (a process of its own, Python's start and imports
    included): wall seconds, its CPU seconds, and this process's (the server's) CPU seconds."""
    r0, c0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.process_time(), time.perf_counter()
    subprocess.run([sys.executable, "-m", "cod_reference", "job", "trace", job_id, "--api-port", str(port)],
                   cwd=ROOT, stdout=subprocess.DEVNULL, check=True)
    t1, c1, r1 = time.perf_counter(), time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    return t1 - t0, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime), c1 - c0


def main() -> int:
    spans = int(sys.argv[1]) if len(sys.argv) > 1 else 124_000
    with tempfile.TemporaryDirectory() as tmp:
        stack = Devstack(data_dir=Path(tmp) / "stack", computes=1, port=0, executor_factory=every_span_executor)
        stack.start()
        try:
            with Client(port=stack.port) as client:
                job_id = client.submit(wasm_job(wide(spans)))["JobID"]
                client.wait(job_id, timeout=600, interval=0.05)
                while not any(s["name"] == "publish" for s in client.trace(job_id, "records")["Spans"]):
                    time.sleep(0.2)
                t0, c0 = time.perf_counter(), time.process_time()
                records = client.trace(job_id, "records")["Spans"]
                t1, c1 = time.perf_counter(), time.process_time()
                text = tree_text(records, f"job {job_id}")
                t2, c2 = time.perf_counter(), time.process_time()
                del records
                cli_wall, cli_cpu, cli_server_cpu = cli_job_trace(job_id, stack.port)
                records = client.trace(job_id, "records")["Spans"]
        finally:
            stack.stop()
        store = Path(tmp) / "stack" / "traces"
        size = sum(f.stat().st_size for f in store.glob("*/*.jsonl"))
        c3 = time.process_time()
        old = old_layout_read(records, Path(tmp))
        old_cpu = time.process_time() - c3
    print(f"{len(records):,} spans, {size / 1e6:.1f} MB stored")
    print(f"job trace, API call (read + serve + decode): {t1 - t0:6.2f} s wall {c1 - c0:6.2f} s CPU")
    print(f"job trace, tree printed ({len(text) / 1e6:.1f} MB):   {t2 - t1:6.2f} s wall {c2 - c1:6.2f} s CPU")
    print(f"job trace, total:                          {t2 - t0:6.2f} s wall {c2 - c0:6.2f} s CPU")
    print(f"`cod job trace ID` in a process of its own: {cli_wall:6.2f} s wall {cli_cpu:6.2f} s CPU "
          f"(+ {cli_server_cpu:.2f} s CPU in the server)")
    print(f"before: one spans.jsonl, scanned and decoded line by line, encoded and decoded again: {old:6.2f} s wall "
          f"{old_cpu:6.2f} s CPU (the API call's part only; {old_cpu / (c1 - c0):.1f}x its CPU now)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
