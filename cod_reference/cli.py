"""``cod`` / ``python -m cod_reference``: run a devstack and talk to an orchestrator.

The client finds the orchestrator with ``--api-host``/``--api-port`` or
``COD_API_HOST``/``COD_API_PORT`` (default 127.0.0.1:1234). Errors are one line on
stderr and a non-zero exit status; a job that ends Failed or Stopped also exits non-zero
when waited for.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tarfile
import time
from pathlib import Path
from typing import Any, Sequence

import yaml

from .client import APIError, Client
from .models import SpecError, encode_data_url, load_job_text, wasm_job
from .states import JobState
from .telemetry import format_tree


class UsageError(Exception):
    pass


# ----------------------------------------------------------------------------- output

def _emit(data: Any, fmt: str, table: Any = None) -> None:
    if fmt == "json":
        print(json.dumps(data, indent=2, default=str))
    elif fmt == "yaml":
        print(yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip())
    elif callable(table):
        table()
    else:
        print(data)


def _table(rows: list[list[Any]], header: list[str]) -> None:
    cells = [header] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def _short(identifier: str) -> str:
    return identifier[:10] if identifier.startswith(("j-", "e-")) else identifier[:8]


def _when(ns: int) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ns / 1e9)) if ns else ""


# ----------------------------------------------------------------------------- job specs

def _read_spec(path: str) -> dict[str, Any]:
    text = sys.stdin.read() if path == "-" else _read_text(path)
    load_job_text(text, path)  # validate here first: a clear local error for bad files
    return yaml.safe_load(text)


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SpecError([("", f"{path} is not a text file (a job spec is YAML or JSON)")]) from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def _read_bytes(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def _split_pair(value: str, what: str) -> tuple[str, str]:
    """``SRC:TARGET`` where TARGET is an absolute path (SRC may be a URL holding ':')."""
    idx = value.rfind(":/")
    if idx <= 0:
        raise UsageError(f"{what} {value!r} must look like SOURCE:/target/path")
    return value[:idx], value[idx + 1:]


def _input_source(value: str) -> dict[str, Any]:
    src, target = _split_pair(value, "input")
    if src.startswith(("http://", "https://")):
        return {"Source": {"Type": "urlDownload", "Params": {"URL": src}}, "Target": target}
    if src.startswith("file://"):
        return {"Source": {"Type": "local", "Params": {"SourcePath": src[7:]}}, "Target": target}
    path = Path(src)
    if path.is_dir():
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for child in sorted(path.iterdir()):
                tar.add(child, arcname=child.name)
        url = encode_data_url(buf.getvalue(), "application/gzip")
    elif path.is_file():
        url = encode_data_url(_read_bytes(src), "application/octet-stream")
    else:
        raise UsageError(f"input {src!r} is not a file, a directory, an http(s) URL or file://path")
    return {"Source": {"Type": "inline", "Params": {"URL": url}}, "Target": target}


def _wasm_spec(args: argparse.Namespace) -> dict[str, Any]:
    module = _read_bytes(args.module)
    env = {}
    for item in args.env:
        if "=" not in item:
            raise UsageError(f"--env {item!r} must look like NAME=value")
        key, value = item.split("=", 1)
        env[key] = value
    inputs = [_input_source(v) for v in args.input]
    imports = []
    for path in args.import_module:
        target = f"/imports/{Path(path).name}"
        inputs.append({"Source": {"Type": "inline", "Params": {"URL": encode_data_url(_read_bytes(path))}},
                       "Target": target})
        imports.append(target)
    task: dict[str, Any] = {}
    if args.result_path:
        task["ResultPaths"] = [dict(zip(("Name", "Path"), _split_pair(o, "result path")))
                               for o in args.result_path]
    if args.publisher:
        task["Publisher"] = {"Type": args.publisher}
    resources = {k: v for k, v in (("CPU", args.cpu), ("Memory", args.memory)) if v}
    if resources:
        task["Resources"] = resources
    timeouts = {k: v for k, v in (("ExecutionTimeout", args.timeout), ("QueueTimeout", args.queue_timeout)) if v}
    if timeouts:
        task["Timeouts"] = timeouts
    doc = wasm_job(module, name=args.name or "", args=args.args, entrypoint=args.entry_point, env=env,
                   inputs=inputs, count=args.count, job_type="ops" if args.target == "all" else "batch", **task)
    doc["Tasks"][0]["Engine"]["Params"]["ImportModules"] = imports
    constraints = []
    for c in args.constraint:
        for op in ("!=", "==", "="):
            if op in c:
                key, value = c.split(op, 1)
                constraints.append({"Key": key.strip(), "Operator": op, "Values": [value.strip()]})
                break
        else:
            constraints.append({"Key": c.strip(), "Operator": "exists"})
    if constraints:
        doc["Constraints"] = constraints
    return doc


# ----------------------------------------------------------------------------- commands

def _submit_and_follow(client: Client, doc: dict[str, Any], args: argparse.Namespace) -> int:
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
        _follow_logs(client, job_id, "")
        job = client.wait(job_id, timeout=args.wait_timeout)
    else:
        t0 = time.monotonic()
        quiet = args.id_only

        def progress(event: dict[str, Any]) -> None:
            if not quiet:
                ev = event["Event"]
                where = f" [{_short(event['ExecutionID'])}]" if event["ExecutionID"] else ""
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
        print(f"To see more: cod job describe {_short(job['ID'])} | job logs | job trace | job get --output-dir DIR",
              file=sys.stderr)
    return 0 if state == JobState.COMPLETED.value else 1


def _follow_logs(client: Client, ref: str, execution_id: str, follow: bool = True) -> None:
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


def cmd_job(args: argparse.Namespace, client: Client) -> int:
    fmt = args.output
    action = args.job_command
    if action == "run":
        return _submit_and_follow(client, _read_spec(args.file), args)
    if action == "validate":
        _read_spec(args.file)
        print(f"{args.file}: valid")
        return 0
    if action == "list":
        jobs = client.list_jobs(args.limit, args.labels)
        _emit(jobs, fmt, lambda: _table(
            [[_when(j["CreateTime"]), _short(j["ID"]), j["Name"][:30], j["Type"], j["Count"], j["State"]["StateType"]]
             for j in jobs], ["CREATED", "ID", "NAME", "TYPE", "COUNT", "STATE"]))
        return 0
    ref = args.id
    if action == "describe":
        data = client.get_job(ref, include="executions,history")
        _emit(data, fmt, lambda: _describe(data))
        return 0
    if action == "executions":
        items = client.executions(ref)
        _emit(items, fmt, lambda: _table(
            [[_when(e["CreateTime"]), _when(e["ModifyTime"]), _short(e["ID"]), e["NodeID"], e["PartitionIndex"],
              e["ComputeState"]["StateType"], e["DesiredState"]["StateType"], e["ComputeState"]["Message"][:60]]
             for e in items], ["CREATED", "MODIFIED", "ID", "NODE", "PART", "STATE", "DESIRED", "COMMENT"]))
        return 0
    if action == "history":
        items = client.history(ref, event_type=args.event_type, execution_id=args.execution_id or "")["Items"]
        _emit(items, fmt, lambda: _table(
            [[h["Time"][11:23], h["Type"].replace("Level", ""), _short(h["ExecutionID"]), h["Event"]["Topic"],
              h["Event"]["Message"][:70]] for h in items], ["TIME", "LEVEL", "EXEC", "TOPIC", "EVENT"]))
        return 0
    if action == "logs":
        _follow_logs(client, ref, args.execution_id or "", follow=args.follow)
        return 0
    if action == "stop":
        result = client.stop(ref, args.reason or "")
        if not args.quiet:
            print(f"Job {ref} stopped" if result["EvaluationID"] else f"Job {ref} was already finished")
        return 0
    if action == "get":
        dirs = client.download_results(ref, args.output_dir)
        if not dirs:
            raise UsageError(f"job {ref} has no published results")
        for d in dirs:
            print(f"Results written to {d}")
        return 0
    if action == "trace":
        if fmt == "table":
            data = client.trace(ref, "records")
            print(format_tree(data["Spans"]) if data["Spans"] else
                  f"no spans stored for job {ref} (spans go to the collector when OTEL_EXPORTER_OTLP_* is set)")
        else:
            _emit(client.trace(ref, "otlp"), fmt)
        return 0
    raise UsageError(f"unknown job command {action!r}")


def _describe(data: dict[str, Any]) -> None:
    job = data["Job"]
    print(f"ID            = {job['ID']}\nName          = {job['Name']}\nNamespace     = {job['Namespace']}\n"
          f"Type          = {job['Type']}\nState         = {job['State']['StateType']}\n"
          f"Message       = {job['State']['Message']}\nCount         = {job['Count']}\n"
          f"Created       = {_when(job['CreateTime'])}\nModified      = {_when(job['ModifyTime'])}")
    execs = data.get("Executions", {}).get("Items", [])
    print("\nExecutions")
    _table([[_short(e["ID"]), e["NodeID"], e["PartitionIndex"], e["ComputeState"]["StateType"],
             (e.get("RunOutput") or {}).get("ExitCode", ""), e["ComputeState"]["Message"][:60]] for e in execs],
           ["ID", "NODE", "PART", "STATE", "EXIT", "COMMENT"])
    print("\nHistory")
    _table([[h["Time"][11:23], _short(h["ExecutionID"]), h["Event"]["Topic"], h["Event"]["Message"][:70]]
            for h in data.get("History", {}).get("Items", [])], ["TIME", "EXEC", "TOPIC", "EVENT"])
    for e in execs:
        out = e.get("RunOutput") or {}
        if out.get("Stdout") or out.get("stderr"):
            print(f"\nStandard output of {_short(e['ID'])} (partition {e['PartitionIndex']})")
            print(out.get("Stdout", "").rstrip())
            if out.get("stderr"):
                print(f"Standard error of {_short(e['ID'])}\n{out['stderr'].rstrip()}")


def cmd_node(args: argparse.Namespace, client: Client) -> int:
    nodes = client.nodes()
    _emit(nodes, args.output, lambda: _table(
        [[n["Info"]["NodeID"], n["Info"].get("NodeType", ""), n.get("Membership", ""), n.get("Connection", ""),
          ",".join(f"{k}={v}" for k, v in sorted((n["Info"].get("Labels") or {}).items())),
          _cap(n["Info"].get("AvailableCapacity")), _cap(n["Info"].get("MaxCapacity"))] for n in nodes],
        ["ID", "TYPE", "APPROVAL", "STATUS", "LABELS", "FREE", "MAX"]))
    return 0


def _cap(cap: dict[str, float] | None) -> str:
    if not cap:
        return ""
    return f"{cap.get('CPU', 0):g} CPU / {cap.get('Memory', 0) / 2**20:.0f} MiB"


# ----------------------------------------------------------------------------- parser

def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--api-host", help="orchestrator host (env COD_API_HOST, default 127.0.0.1)")
    common.add_argument("--api-port", help="orchestrator port (env COD_API_PORT, default 1234)")
    common.add_argument("--output", "-O", choices=("table", "json", "yaml"), default="table", help="output format")

    parser = argparse.ArgumentParser(prog="cod", description="A compute-over-data network running observed Wasm jobs.")
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("devstack", help="run an orchestrator and compute nodes in this process")
    dev.add_argument("--computes", type=int, default=3, help="compute nodes (default 3)")
    dev.add_argument("--bad-computes", type=int, default=0, help="extra nodes that fail every execution")
    dev.add_argument("--port", type=int, default=1234, help="API port (default 1234; 0 = any free port)")
    dev.add_argument("--data-dir", help="where state is kept (default: a temporary dir removed at exit)")
    dev.add_argument("--allow-local-path", action="append", default=[], metavar="PATH[:rw]",
                     help="host path jobs may mount as a local input (repeatable)")

    wait_flags = argparse.ArgumentParser(add_help=False)
    wait_flags.add_argument("--wait", action=argparse.BooleanOptionalAction, default=True,
                            help="wait for the job to finish, showing progress (default)")
    wait_flags.add_argument("--follow", "-f", action="store_true", help="stream the job's output while it runs")
    wait_flags.add_argument("--id-only", action="store_true", help="print only the job ID")
    wait_flags.add_argument("--wait-timeout", type=float, default=600, help="seconds to wait at most")

    job = sub.add_parser("job", help="submit and inspect jobs")
    jsub = job.add_subparsers(dest="job_command", required=True)
    run = jsub.add_parser("run", parents=[common, wait_flags], help="submit a job spec (YAML or JSON; - = stdin)")
    run.add_argument("file")
    val = jsub.add_parser("validate", parents=[common], help="check a job spec without submitting it")
    val.add_argument("file")
    lst = jsub.add_parser("list", parents=[common], help="list jobs")
    lst.add_argument("--limit", type=int, default=20)
    lst.add_argument("--labels", default="", help="only jobs with these labels: k=v,k2=v2")
    for name, text in (("describe", "a job, its executions, history and output"),
                       ("executions", "the executions of a job"), ("history", "the history of a job"),
                       ("logs", "the output of a job"), ("stop", "stop a job"),
                       ("get", "download a job's published results"), ("trace", "the whole trace of a job")):
        p = jsub.add_parser(name, parents=[common], help=text)
        p.add_argument("id", help="job ID, unique ID prefix or name")
        if name == "logs":
            p.add_argument("--follow", "-f", action="store_true", help="keep printing while the job runs")
            p.add_argument("--execution-id", "-e")
        if name == "history":
            p.add_argument("--event-type", choices=("all", "job", "execution"), default="all")
            p.add_argument("--execution-id", "-e")
        if name == "stop":
            p.add_argument("--reason", default="")
            p.add_argument("--quiet", "-q", action="store_true")
        if name == "get":
            p.add_argument("--output-dir", default=".", help="where to unpack the results (default .)")

    wasm = sub.add_parser("wasm", help="run a local Wasm module as a job")
    wsub = wasm.add_subparsers(dest="wasm_command", required=True)
    wrun = wsub.add_parser("run", parents=[common, wait_flags], help="upload MODULE.wasm inline and run it")
    wrun.add_argument("module")
    wrun.add_argument("args", nargs="*", help="arguments for the module (after -- if they start with -)")
    wrun.add_argument("--entry-point", default="_start")
    wrun.add_argument("-e", "--env", action="append", default=[], metavar="K=V")
    wrun.add_argument("-i", "--input", action="append", default=[], metavar="SRC:TARGET",
                      help="local file/dir (sent inline), http(s) URL or file://host/path, mounted at TARGET")
    wrun.add_argument("-I", "--import-module", action="append", default=[], metavar="FILE.wasm",
                      help="module instantiated first; importable under its file name without .wasm")
    wrun.add_argument("-o", "--result-path", dest="result_path", action="append", default=[], metavar="NAME:PATH",
                      help="result path the module writes to")
    wrun.add_argument("-p", "--publisher", choices=("local", "noop"))
    wrun.add_argument("--name")
    wrun.add_argument("--count", type=int, default=1)
    wrun.add_argument("--target", choices=("any", "all"), default="any", help="all = an ops job on every node")
    wrun.add_argument("-c", "--constraint", action="append", default=[], metavar="KEY=VALUE",
                      help="only nodes with this label (KEY=V, KEY!=V or KEY)")
    wrun.add_argument("--cpu")
    wrun.add_argument("--memory", help="memory cap, e.g. 64MiB")
    wrun.add_argument("--timeout", type=float, help="ExecutionTimeout in seconds")
    wrun.add_argument("--queue-timeout", type=float)

    node = sub.add_parser("node", help="nodes of the network")
    nsub = node.add_subparsers(dest="node_command", required=True)
    nsub.add_parser("list", parents=[common], help="list nodes")
    return parser


def _module_args(parser: argparse.ArgumentParser, extra: list[str]) -> list[str]:
    """The module's arguments that argparse left over from ``wasm run MODULE [flags] ARGS``
    (it binds positionals only before the first flag); unknown flags stay errors unless after ``--``."""
    split = extra.index("--") if "--" in extra else len(extra)
    flags = [a for a in extra[:split] if a.startswith("-")]
    if flags:
        parser.error(f"unrecognized arguments: {' '.join(flags)} (arguments for the module go after --)")
    return extra[:split] + extra[split + 1:]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        if getattr(args, "wasm_command", None) != "run":
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.args += _module_args(parser, extra)
    try:
        if args.command == "devstack":
            from .devstack import run_devstack

            return run_devstack(computes=args.computes, port=args.port, data_dir=args.data_dir,
                                bad_computes=args.bad_computes, allowed_local_paths=args.allow_local_path)
        with Client(args.api_host, args.api_port) as client:
            if args.command == "job":
                return cmd_job(args, client)
            if args.command == "wasm":
                return _submit_and_follow(client, _wasm_spec(args), args)
            if args.command == "node":
                return cmd_node(args, client)
    except SpecError as exc:
        print(f"Error: invalid job spec: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped to a command that stopped reading (| head): quietly done
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
        return 141
    except (APIError, UsageError, OSError, ValueError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
