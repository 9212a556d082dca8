"""``cod wasm run MODULE.wasm [ARGS...]``: upload a local module inline and run it as a job."""
from __future__ import annotations

import argparse

from ..client import Client
from .common import api_flags, with_client
from .output import object_flags
from .specs import wasm_spec
from .submit import submit_and_follow, wait_flags


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    wasm = sub.add_parser("wasm", help="run a local Wasm module as a job")
    wsub = wasm.add_subparsers(dest="wasm_command", required=True, metavar="COMMAND")
    run = wsub.add_parser("run", parents=[api_flags(), object_flags(), wait_flags()],
                          help="upload MODULE.wasm inline and run it")
    run.add_argument("module")
    run.add_argument("args", nargs="*", help="arguments for the module (after -- if they start with -)")
    run.add_argument("--entry-point", default="_start")
    run.add_argument("-e", "--env", action="append", default=[], metavar="K=V")
    run.add_argument("-i", "--input", action="append", default=[], metavar="SRC:TARGET",
                     help="local file/dir (sent inline), http(s) URL or file://host/path, mounted at TARGET")
    run.add_argument("-I", "--import-module", action="append", default=[], metavar="FILE.wasm",
                     help="module instantiated first; importable under its file name without .wasm")
    run.add_argument("-o", "--result-path", dest="result_path", action="append", default=[], metavar="NAME:PATH",
                     help="result path the module writes to")
    run.add_argument("-p", "--publisher", choices=("local", "noop"))
    run.add_argument("--name")
    run.add_argument("--count", type=int, default=1)
    run.add_argument("--target", choices=("any", "all"), default="any", help="all = an ops job on every node")
    run.add_argument("--constraints", action="append", default=[], metavar="QUERY",
                     help="only nodes whose labels match: KEY=V, KEY!=V or KEY, comma-separated (as Bacalhau)")
    run.add_argument("--constraint", dest="constraints", action="append", metavar="KEY=VALUE",
                     help="one constraint; repeatable (-c is not short for it: in Bacalhau -c is --config)")
    run.add_argument("--cpu")
    run.add_argument("--memory", help="memory cap, e.g. 64MiB")
    run.add_argument("--timeout", type=float, metavar="SECONDS",
                     help="the job's TotalTimeout (as Bacalhau's --timeout): queueing and running included")
    run.add_argument("--execution-timeout", type=float, metavar="SECONDS", help="the ExecutionTimeout of each run")
    run.add_argument("--queue-timeout", type=float, metavar="SECONDS",
                     help="how long to wait for a node with room (QueueTimeout; default: the orchestrator's)")
    run.set_defaults(func=with_client(wasm_run), takes_module_args=True)


def wasm_run(args: argparse.Namespace, client: Client) -> int:
    return submit_and_follow(client, wasm_spec(args), args)
