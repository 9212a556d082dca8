"""``cod job ...``: submit a job spec and inspect jobs."""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any

from ..client import Client, ResultsRemoved
from ..models import decode_data_url, job_from_dict
from ..traceview import FORMATS, render
from .common import UsageError, api_flags, with_client
from .output import Column, list_flags, object_flags, print_data, print_object, print_rows, short, table, when
from .specs import read_spec
from .submit import stream_logs, submit_and_follow, wait_flags

TAIL_LINES = 10
"""What ``job logs --tail`` shows of the output already there, unless ``--lines`` says."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    api = api_flags()
    job = sub.add_parser("job", help="submit and inspect jobs")
    jsub = job.add_subparsers(dest="job_command", required=True, metavar="COMMAND")

    p = jsub.add_parser("run", parents=[api, object_flags(), wait_flags()],
                        help="submit a job spec (YAML or JSON; - = stdin)")
    p.add_argument("file")
    p.set_defaults(func=with_client(job_run))

    p = jsub.add_parser("validate", help="check a job spec without submitting it")
    p.add_argument("file")
    p.set_defaults(func=job_validate)

    p = jsub.add_parser("list", parents=[api, list_flags()], help="list jobs")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--labels", default="", help="only jobs with these labels: k=v,k2=v2")
    p.set_defaults(func=with_client(job_list))

    def with_id(name: str, text: str, *parents: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p = jsub.add_parser(name, parents=[api, *parents], help=text)
        p.add_argument("id", help="job ID, unique ID prefix or name")
        return p

    p = with_id("rerun", "run a job's spec again, as a new job (cod has no job versions)", object_flags(),
                wait_flags())
    p.set_defaults(func=with_client(job_rerun))

    p = with_id("describe", "a job, its executions, history and output", object_flags())
    p.add_argument("--full", action="store_true",
                   help="with --output json|yaml: inline inputs (a wasm run's module) whole, not as size and digest")
    p.set_defaults(func=with_client(job_describe))

    p = with_id("executions", "the executions of a job", list_flags())
    p.set_defaults(func=with_client(job_executions))

    p = with_id("history", "the history of a job", list_flags())
    p.add_argument("--event-type", choices=("all", "job", "execution"), default="all")
    p.add_argument("--execution-id", "-e")
    p.set_defaults(func=with_client(job_history))

    p = with_id("logs", "the output of a job")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing while the job runs")
    p.add_argument("--tail", "-t", action="store_true",
                   help="only the last lines (10, or --lines) of what is there, then --follow from there")
    p.add_argument("--lines", "-n", type=int, metavar="N", help="with --tail: how many lines (implies --tail)")
    p.add_argument("--execution-id", "-e")
    p.set_defaults(func=with_client(job_logs))

    p = with_id("stop", "stop a job")
    p.add_argument("--reason", default="")
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(func=with_client(job_stop))

    p = with_id("get", "download a job's published results")
    p.add_argument("--output-dir", default=".", help="where to unpack the results (default .)")
    p.set_defaults(func=with_client(job_get))

    p = with_id("trace", "the whole trace of a job", object_flags())
    p.add_argument("--format", choices=FORMATS, help="tree (default), json (OTLP/JSON), chrome-trace "
                   "(Perfetto, speedscope), folded (flame graph tools) or html (one page to open in a browser)")
    p.add_argument("--out", metavar="FILE", help="write it to FILE instead of stdout")
    p.set_defaults(func=with_client(job_trace))


def job_run(args: argparse.Namespace, client: Client) -> int:
    return submit_and_follow(client, read_spec(args.file), args)


def job_rerun(args: argparse.Namespace, client: Client) -> int:
    """Bacalhau's rerun makes a new version of the job; cod submits the same spec again as a new job."""
    old = client.get_job(args.id)["Job"]
    print(f"Rerunning job {old['ID']}", file=sys.stderr)
    return submit_and_follow(client, job_from_dict(old), args)


def job_validate(args: argparse.Namespace) -> int:
    read_spec(args.file)
    print(f"{args.file}: valid")
    return 0


def job_list(args: argparse.Namespace, client: Client) -> int:
    jobs = client.list_jobs(args.limit, args.labels)
    print_rows(args, jobs, [Column("CREATED"), Column("ID", ident=True), Column("NAME", 30), Column("TYPE"),
                            Column("COUNT"), Column("STATE")],
               [[when(j["CreateTime"]), j["ID"], j["Name"], j["Type"], j["Count"], j["State"]["StateType"]]
                for j in jobs])
    return 0


def job_describe(args: argparse.Namespace, client: Client) -> int:
    data = client.get_job(args.id, include="executions,history")
    if not args.full:
        _summarize_inline_inputs(data["Job"])
    print_object(args, data, lambda: _describe(data))
    return 0


def job_executions(args: argparse.Namespace, client: Client) -> int:
    items = client.executions(args.id)
    print_rows(args, items, [Column("CREATED"), Column("MODIFIED"), Column("ID", ident=True), Column("NODE"),
                             Column("PART"), Column("STATE"), Column("DESIRED"), Column("COMMENT", 60)],
               [[when(e["CreateTime"]), when(e["ModifyTime"]), e["ID"], e["NodeID"], e["PartitionIndex"],
                 e["ComputeState"]["StateType"], e["DesiredState"]["StateType"], e["ComputeState"]["Message"]]
                for e in items])
    return 0


def job_history(args: argparse.Namespace, client: Client) -> int:
    items = client.history(args.id, event_type=args.event_type, execution_id=args.execution_id or "")["Items"]
    print_rows(args, items, [Column("TIME"), Column("LEVEL"), Column("EXEC", ident=True), Column("TOPIC"),
                             Column("EVENT", 70)],
               [[h["Time"], h["Type"].replace("Level", ""), h["ExecutionID"], h["Event"]["Topic"],
                 h["Event"]["Message"]] for h in items])
    return 0


def job_logs(args: argparse.Namespace, client: Client) -> int:
    if args.lines is not None and args.lines < 0:
        raise UsageError(f"--lines {args.lines}: the number of lines cannot be negative")
    tail = args.lines if args.lines is not None else (TAIL_LINES if args.tail else None)
    return 0 if stream_logs(client, args.id, args.execution_id or "", follow=args.follow, tail=tail) else 1


def job_stop(args: argparse.Namespace, client: Client) -> int:
    result = client.stop(args.id, args.reason or "")
    if not args.quiet:
        print(f"Job {args.id} stopped" if result["EvaluationID"] else f"Job {args.id} was already finished")
    return 0


def job_get(args: argparse.Namespace, client: Client) -> int:
    try:
        dirs = client.download_results(args.id, args.output_dir)
    except ResultsRemoved as exc:  # what was there is written; each removed one is said
        for d in exc.written:
            print(f"Results written to {d}")
        sys.stdout.flush()
        for message in exc.messages:
            print(f"Error: {message}", file=sys.stderr)
        return 1
    if not dirs:
        raise UsageError(f"job {args.id} has no published results")
    for d in dirs:
        print(f"Results written to {d}")
    return 0


def job_trace(args: argparse.Namespace, client: Client) -> int:
    fmt = args.format or {"table": "tree"}.get(args.output, args.output)
    if fmt == "yaml":
        print_data(client.trace(args.id, "otlp"), "yaml")
        return 0
    data = client.trace(args.id, "records")
    if not data["Spans"]:
        print(f"no spans stored for job {args.id} (spans go to the collector when OTEL_EXPORTER_OTLP_* is set)")
        return 0
    text = render(data["Spans"], fmt, title=f"job {args.id}")
    if not args.out:
        print(text.rstrip("\n"))
        return 0
    try:
        Path(args.out).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    print(f"{fmt} trace of job {args.id} ({len(data['Spans'])} spans) written to {args.out}")
    return 0


def _summarize_inline_inputs(job: dict[str, Any]) -> None:
    """Each inline input's data URL (a ``wasm run`` module is ~100 KB of base64) replaced by its
    media type, size and digest."""
    for task in job.get("Tasks") or []:
        for source in task.get("InputSources") or []:
            params = (source.get("Source") or {}).get("Params") or {}
            url = params.get("URL")
            if isinstance(url, str) and url.startswith("data:"):
                try:
                    media, payload = decode_data_url(url)
                except ValueError:
                    continue
                params["URL"] = (f"data:{media} ({len(payload):,} bytes, sha256:{hashlib.sha256(payload).hexdigest()}; "
                                 "--full shows it)")


def _describe(data: dict[str, Any]) -> None:
    job = data["Job"]
    print(f"ID            = {job['ID']}\nName          = {job['Name']}\nNamespace     = {job['Namespace']}\n"
          f"Type          = {job['Type']}\nState         = {job['State']['StateType']}\n"
          f"Message       = {job['State']['Message']}\nCount         = {job['Count']}\n"
          f"Created       = {when(job['CreateTime'])}\nModified      = {when(job['ModifyTime'])}")
    execs = data.get("Executions", {}).get("Items", [])
    print("\nExecutions")
    table([[short(e["ID"]), e["NodeID"], e["PartitionIndex"], e["ComputeState"]["StateType"],
            (e.get("RunOutput") or {}).get("ExitCode", ""), e["ComputeState"]["Message"][:60]] for e in execs],
          ["ID", "NODE", "PART", "STATE", "EXIT", "COMMENT"])
    removed = [e for e in execs if e.get("FilesRemoved")]
    if removed:
        print("\nRemoved by retention (their logs and results can no longer be read; the output heads stay)")
        for e in removed:
            gone = e["FilesRemoved"]
            print(f"  {short(e['ID'])}  by node {gone.get('NodeID', '')}'s retention ({gone.get('Limit', '')}) "
                  f"at {when(int(gone.get('Time') or 0))}")
    print("\nHistory")
    table([[h["Time"], short(h["ExecutionID"]), h["Event"]["Topic"], h["Event"]["Message"][:70]]
           for h in data.get("History", {}).get("Items", [])], ["TIME", "EXEC", "TOPIC", "EVENT"])
    for e in execs:
        out = e.get("RunOutput") or {}
        if out.get("Stdout") or out.get("stderr"):
            print(f"\nStandard output of {short(e['ID'])} (partition {e['PartitionIndex']})")
            print(out.get("Stdout", "").rstrip())
            if out.get("stderr"):
                print(f"Standard error of {short(e['ID'])}\n{out['stderr'].rstrip()}")
