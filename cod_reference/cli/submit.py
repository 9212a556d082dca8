"""Submit a job and see it through: progress events, the guest's output, the final state."""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from ..client import APIError, Client
from ..models import Job
from ..states import JobState
from .common import UsageError
from .output import print_data, short


def wait_flags() -> argparse.ArgumentParser:
    """The flags of the commands that submit a job (``job run``, ``wasm run``)."""
    flags = argparse.ArgumentParser(add_help=False)
    flags.add_argument("--wait", action=argparse.BooleanOptionalAction, default=True,
                       help="wait for the job to finish, showing progress (default)")
    flags.add_argument("--follow", "-f", action="store_true", help="stream the job's output while it runs")
    flags.add_argument("--id-only", action="store_true", help="print only the job ID")
    flags.add_argument("--wait-timeout", type=float, default=600, help="seconds to wait at most")
    flags.add_argument("--id", dest="idempotency_key", default="", metavar="KEY",
                       help="idempotency key: submitting again with the same KEY returns the first job (and a "
                            "submission whose answer was lost is retried for up to 30 s)")
    return flags


OUTPUT_TAIL_LINES = 10
"""How much of a failed execution's stdout ``job run``/``wasm run`` show (``job logs`` has it all)."""
OUTPUT_HEAD_TEXT = "4 KiB"
"""What a node sends of each stream with an execution's result (``compute.runner.OUTPUT_HEAD_BYTES``)."""


def submit_and_follow(client: Client, job: Job, args: argparse.Namespace) -> int:
    """Submit ``job`` (parsed once, here); then, as asked: print its ID, wait with progress, or stream its output.

    ``--output json|yaml`` prints the submission (with ``--no-wait``) or the finished job with
    its executions and history, as ``job describe`` does; progress stays on stderr."""
    data_output = args.output != "table"
    if data_output and (args.id_only or args.follow):
        raise UsageError(f"--output {args.output} prints the job as data; it cannot be combined with "
                         f"{'--id-only' if args.id_only else '--follow'}")
    key = getattr(args, "idempotency_key", "")
    result = client.submit(job, key, retry_s=30.0 if key else 0.0)
    job_id = result["JobID"]
    if data_output and not args.wait:
        print_data(result, args.output)
        return 0
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
        finished = client.wait(job_id, timeout=args.wait_timeout)
    else:
        t0 = time.monotonic()
        quiet = args.id_only

        def progress(event: dict[str, Any]) -> None:
            if not quiet:
                ev = event["Event"]
                where = f" [{short(event['ExecutionID'])}]" if event["ExecutionID"] else ""
                print(f"  {time.monotonic() - t0:6.2f}s  {ev['Topic']}{where}: {ev['Message']}", file=sys.stderr)

        finished = client.wait(job_id, timeout=args.wait_timeout, on_event=progress)
    if data_output:
        print_data(client.get_job(job_id, include="executions,history"), args.output)
        return _exit_status(finished)
    return _final(client, finished, show_output=not args.follow and not args.id_only)


def _exit_status(job: dict[str, Any]) -> int:
    return 0 if job["State"]["StateType"] == JobState.COMPLETED.value else 1


def _final(client: Client, job: dict[str, Any], show_output: bool) -> int:
    """The final state on stderr; the output on stdout (completed) or its tail on stderr (failed)."""
    state = job["State"]["StateType"]
    line = f"Job {job['ID']} {state}" + (f": {job['State']['Message']}" if job["State"]["Message"] else "")
    print(line, file=sys.stderr)
    if not show_output:
        return _exit_status(job)
    completed = state == JobState.COMPLETED.value
    for ex in client.executions(job["ID"]):
        out = (ex.get("RunOutput") or {}).get("Stdout")
        ex_state = ex["ComputeState"]["StateType"]
        if not out:
            continue
        if completed and ex_state == "Completed":
            sys.stdout.write(out)
        elif not completed and ex_state == "Failed":
            lines = out.splitlines()
            shown = lines[-OUTPUT_TAIL_LINES:]
            more = f"last {len(shown)} of {len(lines)} lines" if len(lines) > len(shown) else "all of it"
            print(f"Output of execution {short(ex['ID'])} on {ex['NodeID']} ({more}):", file=sys.stderr)
            for text in shown:
                print(f"  {text}", file=sys.stderr)
    sys.stdout.flush()
    ref = short(job["ID"])
    commands = [f"describe {ref}", f"logs {ref}", f"trace {ref}"]
    if completed:
        commands.append(f"get {ref} --output-dir DIR")
    print("To see more:", *(f"  cod job {command}" for command in commands), sep="\n", file=sys.stderr)
    return _exit_status(job)


def stream_logs(client: Client, ref: str, execution_id: str, follow: bool = True, tail: int | None = None) -> bool:
    """Print an execution's stdout and stderr from where the last page ended, until it is done;
    ``tail``: of what is there already, only the last lines. False when not all of it could be
    printed: the node's retention removed it (then what the orchestrator kept of it is printed,
    and a line on stderr says what happened)."""
    out_off = err_off = 0
    current = execution_id
    held: list[str] | None = None if tail is None else ["", ""]  # catching up: only the last lines are kept
    while True:
        try:
            page = client.logs(ref, current, out_off, err_off)
            if page["ExecutionID"] and page["ExecutionID"] != current:
                current, out_off, err_off = page["ExecutionID"], 0, 0
                page = client.logs(ref, current, 0, 0)
        except APIError as exc:
            if exc.status != 410 or exc.body.get("Code") != "Removed":
                raise
            return _removed_logs(client, ref, exc, out_off, err_off, held, tail)
        out_off, err_off = page["StdoutOffset"], page["StderrOffset"]
        out, err = page["Stdout"], page["Stderr"]
        got = bool(out or err)
        if held is not None and tail is not None:
            held = [_last_lines(held[0] + out, tail), _last_lines(held[1] + err, tail)]
            if got:
                continue  # more pages of what is already there
            out, err = held
            held = None
        _write(out, err)
        if got:
            continue  # a page is at most 1 MiB: read on until there is nothing more
        if not follow or page["Done"]:
            return True
        time.sleep(0.2)


def _write(out: str, err: str) -> None:
    if out:
        sys.stdout.write(out)
        sys.stdout.flush()
    if err:
        sys.stderr.write(err)
        sys.stderr.flush()


def _removed_logs(client: Client, ref: str, gone: APIError, out_off: int, err_off: int, held: list[str] | None,
                  tail: int | None) -> bool:
    """The node's retention removed the logs: print the heads of stdout and stderr the orchestrator kept
    with the execution's result (past what was printed already), then one line on stderr saying so.
    True when those heads are the whole output (nothing was lost)."""
    exec_id = str((gone.body.get("FilesRemoved") or {}).get("ExecutionID", ""))
    run_output = next((ex.get("RunOutput") or {} for ex in client.executions(ref) if ex["ID"] == exec_id), {})
    heads = [(str(run_output.get("Stdout") or ""), bool(run_output.get("StdoutTruncated")), out_off),
             (str(run_output.get("stderr") or ""), bool(run_output.get("StderrTruncated")), err_off)]
    whole = bool(run_output) and not any(truncated for _, truncated, _ in heads)
    cut = " and ".join(name for name, (_, truncated, _) in zip(("stdout", "stderr"), heads, strict=True) if truncated)
    if tail is not None and not whole:  # the first bytes of a longer output are not its last lines
        kept = f"; only the first {OUTPUT_HEAD_TEXT} of {cut} was kept with the execution's result (cod job logs " \
               "without --tail shows it)" if run_output else ""
        print(f"Error: {gone}{kept}", file=sys.stderr)
        return False
    rest = [head.encode()[offset:].decode("utf-8", "replace") for head, _, offset in heads]
    if held is not None and tail is not None:
        rest = [_last_lines(kept + more, tail) for kept, more in zip(held, rest, strict=True)]
    _write(*rest)
    if whole:
        said = "all of it, as kept with the execution's result" if any(head for head, _, _ in heads) \
            else "the execution's result says it printed nothing"
        print(f"Note: {gone}; {said}", file=sys.stderr)
        return True
    kept = f"; only the first {OUTPUT_HEAD_TEXT} of {cut}, kept with the execution's result, is shown" \
        if run_output else ""
    print(f"Error: {gone}{kept}", file=sys.stderr)
    return False


def _last_lines(text: str, count: int) -> str:
    return "".join(text.splitlines(keepends=True)[-count:]) if count > 0 else ""
