"""``cod devstack``: NATS, an orchestrator and compute nodes, as separate processes or in this one."""
from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from typing import Any, TypeVar

from ..compute.policy import NodePolicy, parse_byte_size, parse_count, parse_duration, parse_optional
from ..models.limits import DEFAULT_MAX_UNFINISHED_JOBS, DEFAULT_SUBMIT_BURST, DEFAULT_SUBMIT_RATE

T = TypeVar("T")


def _flag(parse: Callable[[str], T]) -> Callable[[str], T]:
    """``parse`` for argparse: its ValueError message becomes the flag's error message."""
    def parse_flag(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return parse_flag


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dev = sub.add_parser("devstack", help="run NATS, an orchestrator and compute nodes (each its own process)")
    dev.add_argument("--computes", type=int, default=3, help="compute nodes (default 3)")
    dev.add_argument("--bad-computes", type=int, default=0, help="extra nodes that fail every execution")
    dev.add_argument("--port", type=int, default=1234, help="API port (default 1234; 0 = any free port)")
    dev.add_argument("--data-dir", help="where state is kept (default: a temporary dir removed at exit)")
    dev.add_argument("--allow-local-path", action="append", default=[], metavar="PATH[:rw]",
                     help="host path jobs may mount as a local input (repeatable)")
    dev.add_argument("--default-queue-timeout", type=float, default=0.0, metavar="SECONDS",
                     help="how long a job without a QueueTimeout waits for a node with room "
                          "(default 0: it fails at once when no node can take it)")
    dev.add_argument("--host", default="127.0.0.1",
                     help="address the API listens on (default 127.0.0.1; any other needs --auth-token or --insecure)")
    dev.add_argument("--auth-token", default=os.environ.get("COD_AUTH_TOKEN", ""),
                     help="bearer token every API request must carry (env COD_AUTH_TOKEN)")
    dev.add_argument("--insecure", action="store_true",
                     help="serve a non-loopback address without a token (anyone who reaches it can run jobs)")
    dev.add_argument("--transport", choices=("nats", "inprocess"), default="nats",
                     help="nats (default): NATS and each node as separate processes; inprocess: all in this process")
    add_admission_flags(dev)
    add_node_policy_flags(dev)
    dev.set_defaults(func=devstack)


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{text!r} must be 0 or more")
    return value


def _whole(text: str) -> int:
    return parse_count(text, minimum=0)


def add_admission_flags(parser: argparse.ArgumentParser) -> None:
    """What the orchestrator's API takes in (``devstack``, ``serve --orchestrator``): over a limit,
    a submission is refused with HTTP 429 and Retry-After."""
    api = parser.add_argument_group("orchestrator admission limits (docs/security.md)")
    api.add_argument("--submit-rate", type=_flag(_rate), metavar="PER_SECOND", default=DEFAULT_SUBMIT_RATE,
                     help=f"job submissions a second each client address may keep up after its burst "
                          f"(default {DEFAULT_SUBMIT_RATE:g}; 0 = no limit)")
    api.add_argument("--submit-burst", type=_flag(_whole), metavar="N", default=DEFAULT_SUBMIT_BURST,
                     help=f"job submissions a client address may make at once before --submit-rate applies "
                          f"(default {DEFAULT_SUBMIT_BURST}; 0 = no limit)")
    api.add_argument("--max-unfinished-jobs", type=_flag(_whole), metavar="N", default=DEFAULT_MAX_UNFINISHED_JOBS,
                     help=f"refuse new jobs while this many are Pending, Queued or Running, all clients together "
                          f"(default {DEFAULT_MAX_UNFINISHED_JOBS}; 0 = no limit)")


def admission(args: argparse.Namespace) -> dict[str, Any]:
    """The admission flags as keyword arguments of ``ServeConfig``, ``Devstack`` and ``ProcessDevstack``."""
    return {"submit_rate": args.submit_rate, "submit_burst": args.submit_burst,
            "max_unfinished_jobs": args.max_unfinished_jobs}


def add_node_policy_flags(parser: argparse.ArgumentParser) -> None:
    """The compute node limits of :class:`NodePolicy` (``devstack``, ``serve --compute``)."""
    node = parser.add_argument_group("compute node limits (docs/security.md)")
    default = NodePolicy()
    node.add_argument("--allow-url-host", action="append", default=[], metavar="HOST|IP|CIDR",
                      help="a loopback, private or link-local host or network urlDownload inputs may reach "
                           "(refused by default; repeatable)")
    node.add_argument("--default-execution-timeout", type=_flag(parse_duration), metavar="DURATION",
                      default=default.default_execution_timeout_s,
                      help="ExecutionTimeout of jobs that set none, e.g. 30m (default 30m)")
    node.add_argument("--max-execution-timeout", type=_flag(parse_optional(parse_duration)), metavar="DURATION|none",
                      default=default.max_execution_timeout_s,
                      help="the longest any execution may run, whatever its ExecutionTimeout (default none)")
    node.add_argument("--max-running-executions", type=_flag(parse_count), metavar="N",
                      default=default.max_running_executions,
                      help="executions a node runs at once, whatever their CPU requests (default 32)")
    node.add_argument("--max-result-size", type=_flag(parse_byte_size), metavar="SIZE",
                      default=default.max_result_bytes,
                      help="most an execution may write in its result paths (default 10GiB; less with Resources.Disk)")
    node.add_argument("--max-download-size", type=_flag(parse_byte_size), metavar="SIZE",
                      default=default.max_download_bytes, help="largest urlDownload input (default 512MiB)")
    node.add_argument("--download-timeout", type=_flag(parse_duration), metavar="DURATION",
                      default=default.download_timeout_s, help="longest urlDownload input (default 5m)")
    node.add_argument("--retention", type=_flag(parse_optional(parse_duration)), metavar="DURATION|none",
                      default=default.retention_s,
                      help="remove the logs, outputs and results of finished executions after this long (default 7d)")
    node.add_argument("--retention-size", type=_flag(parse_optional(parse_byte_size)), metavar="SIZE|none",
                      default=default.retention_bytes,
                      help="... and the oldest first while they take more than this on a node (default 10GiB)")
    node.add_argument("--retention-sweep", type=_flag(parse_duration), metavar="DURATION",
                      default=default.retention_sweep_s,
                      help="how often a node looks for finished executions to remove (default 1m)")


def node_policy(args: argparse.Namespace) -> NodePolicy:
    return NodePolicy(allow_url_hosts=args.allow_url_host, default_execution_timeout_s=args.default_execution_timeout,
                      max_running_executions=args.max_running_executions, max_download_bytes=args.max_download_size,
                      download_timeout_s=args.download_timeout, max_result_bytes=args.max_result_size,
                      max_execution_timeout_s=args.max_execution_timeout,
                      retention_s=args.retention, retention_bytes=args.retention_size,
                      retention_sweep_s=args.retention_sweep)


def devstack(args: argparse.Namespace) -> int:
    from ..devstack import run_devstack  # the server side (fastapi, uvicorn) only when asked for

    return run_devstack(computes=args.computes, port=args.port, data_dir=args.data_dir,
                        bad_computes=args.bad_computes, allowed_local_paths=args.allow_local_path,
                        default_queue_timeout_s=args.default_queue_timeout, host=args.host,
                        auth_token=args.auth_token, insecure=args.insecure, node_policy=node_policy(args),
                        transport=args.transport, **admission(args))
