"""``cod node ...``: the nodes of the network."""
from __future__ import annotations

import argparse
from typing import Any

from ..client import Client
from .common import api_flags, with_client
from .output import Column, list_flags, object_flags, print_object, print_rows, when


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    node = sub.add_parser("node", help="nodes of the network")
    nsub = node.add_subparsers(dest="node_command", required=True, metavar="COMMAND")
    p = nsub.add_parser("list", parents=[api_flags(), list_flags()], help="list nodes")
    p.set_defaults(func=with_client(node_list))
    p = nsub.add_parser("describe", parents=[api_flags(), object_flags()],
                        help="one node: what it runs, holds and has free")
    p.add_argument("id", help="node ID")
    p.set_defaults(func=with_client(node_describe))


def node_list(args: argparse.Namespace, client: Client) -> int:
    nodes = client.nodes()
    print_rows(args, nodes, [Column("ID"), Column("TYPE"), Column("APPROVAL"), Column("STATUS"), Column("LABELS"),
                             Column("FREE"), Column("MAX")],
               [[n["Info"]["NodeID"], n["Info"].get("NodeType", ""), n.get("Membership", ""),
                 n.get("Connection", ""),
                 ",".join(f"{k}={v}" for k, v in sorted((n["Info"].get("Labels") or {}).items())),
                 _capacity(n["Info"].get("AvailableCapacity")), _capacity(n["Info"].get("MaxCapacity"))]
                for n in nodes])
    return 0


def node_describe(args: argparse.Namespace, client: Client) -> int:
    node = client.node(args.id)
    print_object(args, node, lambda: _describe(node))
    return 0


def _describe(node: dict[str, Any]) -> None:
    info = node["Info"]
    rows = [("ID", info["NodeID"]), ("Type", info.get("NodeType", "")), ("Approval", node.get("Membership", "")),
            ("Status", node.get("Connection", "")),
            ("Last heartbeat", when(node["LastHeartbeat"]) if node.get("LastHeartbeat") else ""),
            ("Labels", ", ".join(f"{k}={v}" for k, v in sorted((info.get("Labels") or {}).items())))]
    if info.get("NodeType", "Compute") == "Compute":
        rows += [("Engines", ", ".join(info.get("Engines") or [])),
                 ("Publishers", ", ".join(info.get("Publishers") or [])),
                 ("Inputs from", ", ".join(info.get("StorageSources") or [])),
                 ("Local paths", ", ".join(info.get("LocalPaths") or []) or "none"),
                 ("Free", _capacity(info.get("AvailableCapacity"))), ("Max", _capacity(info.get("MaxCapacity"))),
                 ("Executions", f"{info.get('RunningExecutions', 0)} running, "
                                f"{info.get('EnqueuedExecutions', 0)} enqueued")]
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        print(f"{key.ljust(width)} = {value}")


def _capacity(cap: dict[str, float] | None) -> str:
    if not cap:
        return ""
    return f"{cap.get('CPU', 0):g} CPU / {cap.get('Memory', 0) / 2**20:.0f} MiB"
