"""``cod devstack``: an orchestrator and compute nodes in this process."""
from __future__ import annotations

import argparse
import os


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dev = sub.add_parser("devstack", help="run an orchestrator and compute nodes in this process")
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
    dev.set_defaults(func=devstack)


def devstack(args: argparse.Namespace) -> int:
    from ..devstack import run_devstack  # the server side (fastapi, uvicorn) only when asked for

    return run_devstack(computes=args.computes, port=args.port, data_dir=args.data_dir,
                        bad_computes=args.bad_computes, allowed_local_paths=args.allow_local_path,
                        default_queue_timeout_s=args.default_queue_timeout, host=args.host,
                        auth_token=args.auth_token, insecure=args.insecure)
