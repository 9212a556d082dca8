"""``cod node ...``: the nodes of the network."""
from __future__ import annotations

import argparse

from ..client import Client
from .common import api_flags, with_client
from .output import Column, list_flags, print_rows


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    node = sub.add_parser("node", help="nodes of the network")
    nsub = node.add_subparsers(dest="node_command", required=True, metavar="COMMAND")
    p = nsub.add_parser("list", parents=[api_flags(), list_flags()], help="list nodes")
    p.set_defaults(func=with_client(node_list))


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


def _capacity(cap: dict[str, float] | None) -> str:
    if not cap:
        return ""
    return f"{cap.get('CPU', 0):g} CPU / {cap.get('Memory', 0) / 2**20:.0f} MiB"
