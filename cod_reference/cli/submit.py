"""Submit a job and see it through: progress events, the guest's output, the final state."""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from ..client import Client
from ..states import JobState
from .output import short


def wait_flags() -> argparse.ArgumentParser:
    """The flags of the commands that submit a job (``job run``, ``wasm run``)."""
    flags = argparse.ArgumentParser(add_help=False)
    flags.add_argument("--wait", action=argparse.BooleanOptionalAction, default=True,
                       help="wait for the job to finish, showing progress (default)")
    flags.add_argument("--follow", "-f", action="store_true", help="stream the job's output while it runs")
    flags.add_argument("--id-only", action="store_true", help="print only the job ID")
    flags.add_argument("--wait-timeout", type=float, default=600, help="seconds to wait at most")
    return flags


def submit_and_follow(client: Client, doc: dict[str, Any], args: argparse.Namespace) -> int:
    result = client.submit(doc)
    job_id = result["JobID"]
    if args.id_only:
        print(job_id)
        if not args.wait:
            return 0
    elif not args.wait and not args.follow:
        print(f"Job submitted: {job_id}")
        return 0
    else:
        print(f"Job submitted: {job_id}", file=sys.stderr)
    if args.follow:
        stream_logs(client, job_id, "")
        job = client.wait(job_id, timeout=args.wait_timeout)
    else:
        t0 = time.monotonic()
        quiet = args.id_only

        def progress(event: dict[str, Any]) -> None:
            if not quiet:
                ev = event["Event"]
                where = f" [{short(event['ExecutionID'])}]" if event["ExecutionID"] else ""
                print(f"  {time.monotonic() - t0:6.2f}s  {ev['Topic']}{where}: {ev['Message']}", file=sys.stderr)

        job = client.wait(job_id, timeout=args.wait_timeout, on_event=progress)
    return _final(client, job, show_output=not args.follow and not args.id_only)


def _final(client: Client, job: dict[str, Any], show_output: bool) -> int:
    state = job["State"]["StateType"]
    line = f"Job {job['ID']} {state}" + (f": {job['State']['Message']}" if job["State"]["Message"] else "")
    print(line, file=sys.stderr)
    if show_output and state == JobState.COMPLETED.value:
        for ex in client.executions(job["ID"]):
            out = (ex.get("RunOutput") or {}).get("Stdout")
            if out and ex["ComputeState"]["StateType"] == "Completed":
                sys.stdout.write(out)
        sys.stdout.flush()
        print(f"To see more: cod job describe {short(job['ID'])} | job logs | job trace | job get --output-dir DIR",
              file=sys.stderr)
    return 0 if state == JobState.COMPLETED.value else 1


def stream_logs(client: Client, ref: str, execution_id: str, follow: bool = True) -> None:
    """Print an execution's stdout and stderr from where the last page ended, until it is done."""
    out_off = err_off = 0
    current = execution_id
    while True:
        page = client.logs(ref, current, out_off, err_off)
        if page["ExecutionID"] and page["ExecutionID"] != current:
            current, out_off, err_off = page["ExecutionID"], 0, 0
            page = client.logs(ref, current, 0, 0)
        if page["Stdout"]:
            sys.stdout.write(page["Stdout"])
            sys.stdout.flush()
        if page["Stderr"]:
            sys.stderr.write(page["Stderr"])
            sys.stderr.flush()
        out_off, err_off = page["StdoutOffset"], page["StderrOffset"]
        if not follow or page["Done"]:
            return
        time.sleep(0.2)
