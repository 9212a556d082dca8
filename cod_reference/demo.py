"""``python -m cod_reference.demo``: the whole network in one go.

Starts a multi-process devstack (nats-server, the orchestrator and 3 compute nodes as separate
processes; a free port, a temporary data dir), submits an instrumented guest example as a Wasm job,
waits for it, prints its output and its whole trace — the orchestrator's
submit/evaluation/scheduling spans, the compute node's bid, execution and publish spans, the
executor's compile/instantiate/call spans and, inside ``call``, the guest's own function spans —,
writes the trace view (``trace.html``) and stops; with ``--keep`` (or ``COD_DEMO_KEEP=1``) the
devstack and its web UI stay up until Ctrl-C.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .client import Client
from .models import wasm_job
from .procstack import ProcessDevstack
from .signals import wait_for_stop
from .traceview import tree_text, write_trace_page

EXAMPLES = Path(__file__).resolve().parent.parent / "guest-examples" / "build"
PREFERRED = ("vowels.instr.wasm", "hello.instr.wasm", "fib.instr.wasm", "nested.instr.wasm")


def pick_example(directory: Path = EXAMPLES) -> Path:
    for name in PREFERRED:
        if (directory / name).is_file():
            return directory / name
    found = sorted(directory.glob("*.instr.wasm")) or sorted(directory.glob("*.wasm"))
    if not found:
        raise FileNotFoundError(f"no guest example in {directory}; build them with `make guests`")
    return found[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cod_reference.demo", description=__doc__.split("\n")[0])
    parser.add_argument("module", nargs="?", type=Path, help="a Wasm module (default: the vowels example)")
    parser.add_argument("--html", type=Path, default=Path("trace.html"), help="where to write the trace view")
    parser.add_argument("--keep", action="store_true", default=os.environ.get("COD_DEMO_KEEP", "") not in ("", "0"),
                        help="keep the devstack and its web UI running until Ctrl-C (or COD_DEMO_KEEP=1)")
    parser.add_argument("--computes", type=int, default=3, help="compute nodes (default 3)")
    ns = parser.parse_args(argv)
    module = ns.module or pick_example()
    print(f"== starting a devstack (NATS, an orchestrator and {ns.computes} compute node(s), each its own process)")
    with ProcessDevstack(computes=ns.computes, port=0) as stack:
        print(stack.describe())
        with Client(port=stack.port) as client:
            print(f"\n== submitting {module.name} as a Wasm job")
            submitted = client.submit(wasm_job(module.read_bytes(), name=f"demo-{module.stem}"))
            job_id = submitted["JobID"]
            print(f"job {job_id}")
            t0 = time.monotonic()
            job = client.wait(job_id, timeout=120, on_event=lambda e: print(
                f"  {time.monotonic() - t0:5.2f}s  {e['Event']['Topic']}: {e['Event']['Message']}"))
            print(f"\n== job {job['State']['StateType']} {job['State']['Message']}".rstrip())
            for ex in client.executions(job_id):
                out = ex.get("RunOutput") or {}
                print(f"-- output of {ex['ID'][:10]} on {ex['NodeID']} (exit code {out.get('ExitCode')}):")
                print((out.get("Stdout") or "").rstrip() or "(no output)")
                if out.get("stderr"):
                    print("-- stderr:\n" + out["stderr"].rstrip())
            spans: list = []
            for _ in range(20):  # the last spans are exported a moment after the job ends
                spans = client.trace(job_id, "records")["Spans"]
                if any(s["name"] == "publish" for s in spans) or job["State"]["StateType"] != "Completed":
                    break
                time.sleep(0.1)
            print(f"\n== the job's trace ({len(spans)} spans, one trace id)")
            print(tree_text(spans, f"job {job_id}"))
            page = write_trace_page(spans, ns.html, title=f"demo-{module.stem}")
            print(f"\n== the trace view (timeline, flame graph, span details; one file, works offline): {page}"
                  f"\n   open it in a browser: xdg-open {page}   or   file://{page}")
            print(f"\n== web UI: {stack.url}/   (this job: {stack.url}/#/jobs/{job_id})")
            if ns.keep:
                print("   the devstack keeps running until Ctrl-C")
                wait_for_stop()
            else:
                print("   up while the demo runs; to keep it: COD_DEMO_KEEP=1 make demo  (or --keep)")
    print("\n== devstack stopped")
    return 0 if job["State"]["StateType"] == "Completed" else 1


if __name__ == "__main__":
    sys.exit(main())
