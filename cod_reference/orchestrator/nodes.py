"""The node manager: which compute nodes exist, what they offer, whether they are alive.

Compute nodes announce themselves with heartbeats carrying their :class:`NodeInfo`;
a node that stays silent longer than the disconnect timeout is DISCONNECTED and its
executions are treated as lost. Node states are saved in the job store so that a
restarted orchestrator knows its nodes before their next heartbeat.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace

from ..models import APPROVED, CONNECTED, DISCONNECTED, NodeInfo, NodeState
from .store import JobStore

__all__ = ["APPROVED", "CONNECTED", "DISCONNECTED", "NodeManager"]


class NodeManager:
    def __init__(self, store: JobStore, disconnect_timeout_s: float,
                 on_change: Callable[[str, str], None] | None = None, reconcile_interval_s: float = 10.0) -> None:
        self.store = store
        self.disconnect_timeout_s = disconnect_timeout_s
        self.reconcile_interval_s = reconcile_interval_s
        self.on_change = on_change
        self._lock = threading.Lock()
        self._nodes: dict[str, NodeState] = {}
        self._seen: dict[str, float] = {}
        self._reconciled: dict[str, float] = {}  # nodes reconciled with since they (re)joined, and when
        now = time.monotonic()
        for state in store.load_nodes():
            self._nodes[state.Info.NodeID] = state
            self._seen[state.Info.NodeID] = now  # give known nodes a full timeout to show up again

    def register_self(self, info: NodeInfo) -> None:
        with self._lock:
            self._nodes[info.NodeID] = NodeState(info)
            self._seen[info.NodeID] = float("inf")

    def heartbeat(self, info: NodeInfo) -> None:
        node_id = info.NodeID
        with self._lock:
            old = self._nodes.get(node_id)
            state = NodeState(info, LastHeartbeat=time.time_ns())
            self._nodes[node_id] = state
            self._seen[node_id] = time.monotonic()
            joined = old is None or old.Connection != CONNECTED
            changed = joined or old is None or old.Info.MaxCapacity != info.MaxCapacity
        if changed:
            self.store.save_node(state)
        if joined and self.on_change:
            self.on_change(node_id, CONNECTED)

    def check_liveness(self) -> list[str]:
        """Mark silent nodes DISCONNECTED; returns their ids."""
        now = time.monotonic()
        lost = []
        with self._lock:
            for node_id, state in self._nodes.items():
                if state.Connection == CONNECTED and now - self._seen.get(node_id, now) > self.disconnect_timeout_s:
                    state.Connection = DISCONNECTED
                    self._reconciled.pop(node_id, None)
                    lost.append(node_id)
        for node_id in lost:
            self.store.save_node(self._nodes[node_id])
            if self.on_change:
                self.on_change(node_id, DISCONNECTED)
        return lost

    def claim_reconcile(self, node_id: str, *, force: bool = False) -> bool:
        """Whether to reconcile with ``node_id`` now: always on its handshake (``force``), when it is
        heard from for the first time since it (re)joined or this orchestrator started, and again every
        ``reconcile_interval_s``. The periodic pass settles what one pass had to leave alone: an
        execution too young to judge then, whose request was lost when this orchestrator died."""
        now = time.monotonic()
        with self._lock:
            last = self._reconciled.get(node_id)
            if not force and last is not None and now - last < self.reconcile_interval_s:
                return False
            self._reconciled[node_id] = now
            return True

    def get(self, node_id: str) -> NodeState | None:
        with self._lock:
            state = self._nodes.get(node_id)
            return replace(state) if state else None

    def all(self) -> list[NodeState]:
        with self._lock:
            return [replace(s) for _, s in sorted(self._nodes.items())]

    def compute_nodes(self) -> list[NodeState]:
        """Connected, approved compute nodes."""
        return [s for s in self.all() if s.Info.NodeType == "Compute"
                and s.Connection == CONNECTED and s.Membership == APPROVED]

    def is_connected(self, node_id: str) -> bool:
        state = self.get(node_id)
        return bool(state and state.Connection == CONNECTED)
