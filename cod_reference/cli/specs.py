"""Job specs from the command line: a YAML/JSON file (or stdin), or ``wasm run``'s flags."""
from __future__ import annotations

import argparse
import io
import sys
import tarfile
from pathlib import Path
from typing import Any

from ..models import Job, SpecError, encode_data_url, load_job_text, parse_job, wasm_job
from .common import UsageError


def read_spec(path: str) -> Job:
    """The job in a YAML/JSON file (``-``: stdin), parsed once: a bad file is a clear local error."""
    text = sys.stdin.read() if path == "-" else _read_text(path)
    return load_job_text(text, path)


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


def wasm_spec(args: argparse.Namespace) -> Job:
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
        task["ResultPaths"] = [dict(zip(("Name", "Path"), _split_pair(o, "result path"), strict=True))
                               for o in args.result_path]
    if args.publisher:
        task["Publisher"] = {"Type": args.publisher}
    resources = {k: v for k, v in (("CPU", args.cpu), ("Memory", args.memory)) if v}
    if resources:
        task["Resources"] = resources
    timeouts = {k: v for k, v in (("TotalTimeout", args.timeout), ("ExecutionTimeout", args.execution_timeout),
                                  ("QueueTimeout", args.queue_timeout)) if v}
    if timeouts:
        task["Timeouts"] = timeouts
    doc = wasm_job(module, name=args.name or "", args=args.args, entrypoint=args.entry_point, env=env,
                   inputs=inputs, count=args.count, job_type="ops" if args.target == "all" else "batch", **task)
    doc["Tasks"][0]["Engine"]["Params"]["ImportModules"] = imports
    constraints = []
    for c in (item for query in args.constraints for item in query.split(",") if item.strip()):
        for op in ("!=", "==", "="):
            if op in c:
                key, value = c.split(op, 1)
                constraints.append({"Key": key.strip(), "Operator": op, "Values": [value.strip()]})
                break
        else:
            constraints.append({"Key": c.strip(), "Operator": "exists"})
    if constraints:
        doc["Constraints"] = constraints
    return parse_job(doc)
