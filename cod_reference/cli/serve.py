"""``cod serve``: one node of a network (orchestrator, compute node or both) in this process."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from .common import UsageError
from .stack import add_admission_flags, add_node_policy_flags, admission, node_policy


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run an orchestrator and/or a compute node in this process (over NATS)")
    p.add_argument("--orchestrator", action="store_true", help="serve the API, the job store and the scheduler")
    p.add_argument("--compute", action="store_true", help="run executions (with --orchestrator: a hybrid node)")
    p.add_argument("--data-dir", default=os.path.expanduser("~/.cod"), help="where state is kept (default ~/.cod)")
    p.add_argument("--node-id", default="",
                   help="compute node id (default: one generated once and kept in the data dir)")
    p.add_argument("--api-host", default="127.0.0.1", help="address the HTTP API listens on (default 127.0.0.1)")
    p.add_argument("--api-port", type=int, default=1234, help="API port; compute nodes serve results on it (0 = free)")
    p.add_argument("--public-host", default="", help="host name others reach this node's API at (for result URLs)")
    p.add_argument("--auth-token", default=os.environ.get("COD_AUTH_TOKEN", ""),
                   help="bearer token every API request must carry (env COD_AUTH_TOKEN); "
                        "required when --api-host is not loopback")
    p.add_argument("--insecure", action="store_true",
                   help="serve a non-loopback --api-host without a token (anyone who reaches it can run jobs)")
    nats = p.add_argument_group("NATS")
    nats.add_argument("--nats-host", default="127.0.0.1", help="orchestrator: where its nats-server listens")
    nats.add_argument("--nats-port", type=int, default=4222, help="orchestrator: its nats-server port (0 = free)")
    nats.add_argument("--nats-url", "--orchestrators", dest="nats_url", default="",
                      help="NATS server(s) to use instead of starting one, comma-separated (compute: required)")
    nats.add_argument("--nats-token", default=os.environ.get("COD_NATS_TOKEN", ""),
                      help="client token (env COD_NATS_TOKEN); the orchestrator's nats-server requires it")
    nats.add_argument("--nats-user", default="")
    nats.add_argument("--nats-password", default=os.environ.get("COD_NATS_PASSWORD", ""),
                      help="password for --nats-user (env COD_NATS_PASSWORD)")
    nats.add_argument("--nats-tls-cert", default="", help="server certificate (orchestrator) or client certificate")
    nats.add_argument("--nats-tls-key", default="")
    nats.add_argument("--nats-tls-ca", default="", help="CA that signed the server's certificate (clients)")
    p.add_argument("--disconnect-timeout", type=float, default=10.0,
                   help="orchestrator: seconds without heartbeats before a node is DISCONNECTED (default 10)")
    p.add_argument("--default-queue-timeout", type=float, default=0.0, metavar="SECONDS",
                   help="orchestrator: how long a job without a QueueTimeout waits for a node with room (default 0)")
    p.add_argument("--heartbeat-interval", type=float, default=1.0, help="compute: seconds between heartbeats")
    p.add_argument("--labels", default="", help="compute: node labels k=v,k2=v2")
    p.add_argument("--cpu", type=float, help="compute: CPU capacity (default 80%% of this machine)")
    p.add_argument("--memory", type=float, help="compute: memory capacity in bytes (default 80%% of this machine)")
    p.add_argument("--allow-local-path", action="append", default=[], metavar="PATH[:rw]",
                   help="compute: host path jobs may mount as a local input (repeatable)")
    p.add_argument("--bad", action="store_true", help=argparse.SUPPRESS)  # fails every execution (devstack)
    add_admission_flags(p)
    add_node_policy_flags(p)
    p.set_defaults(func=serve)


def _labels(text: str) -> dict[str, str]:
    labels = {}
    for item in filter(None, (i.strip() for i in text.split(","))):
        if "=" not in item:
            raise UsageError(f"--labels {item!r} must look like key=value")
        key, value = item.split("=", 1)
        labels[key.strip()] = value.strip()
    return labels


def serve(args: argparse.Namespace) -> int:
    from ..compute.node import default_capacity  # the server side only when asked for
    from ..natsserver import NatsAuth
    from ..serve import ServeConfig, run_service

    if not (args.orchestrator or args.compute):
        raise UsageError("cod serve needs --orchestrator, --compute or both")
    if args.disconnect_timeout <= 0 or args.heartbeat_interval <= 0:
        raise UsageError("--disconnect-timeout and --heartbeat-interval must be positive")
    capacity = default_capacity()
    if args.cpu:
        capacity["CPU"] = args.cpu
    if args.memory:
        capacity["Memory"] = args.memory
    auth = NatsAuth(token=args.nats_token, user=args.nats_user, password=args.nats_password,
                    tls_cert=args.nats_tls_cert, tls_key=args.nats_tls_key, tls_ca=args.nats_tls_ca)
    config = ServeConfig(
        data_dir=Path(args.data_dir), orchestrator=args.orchestrator, compute=args.compute, node_id=args.node_id,
        api_host=args.api_host, api_port=args.api_port, nats_host=args.nats_host, nats_port=args.nats_port,
        nats_urls=[u.strip() for u in args.nats_url.split(",") if u.strip()], auth=auth,
        disconnect_timeout_s=args.disconnect_timeout, heartbeat_interval_s=args.heartbeat_interval,
        default_queue_timeout_s=args.default_queue_timeout,
        labels=_labels(args.labels), capacity=capacity, allowed_local_paths=args.allow_local_path,
        public_host=args.public_host, bad=args.bad, auth_token=args.auth_token, insecure=args.insecure,
        policy=node_policy(args), **admission(args))
    return run_service(config)
