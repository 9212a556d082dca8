"""The orchestrator's side of reconciliation: telling a (re)joining node which executions it should hold.

Sent on every handshake and whenever a node is heard from for the first time since it rejoined or
this orchestrator started; :mod:`cod_reference.compute.reconcile` answers it. Messages are
durable, so this only repairs what a crash between a state change and its message left behind.
"""
from __future__ import annotations

from ..transport import messages as msg
from .store import JobStore


def reconcile_message(store: JobStore, node_id: str) -> msg.Message:
    executions = [{"ID": ex.ID, "DesiredState": ex.DesiredState.value, "ComputeState": ex.state.value,
                   "CreateTime": ex.CreateTime}
                  for ex in store.active_executions() if ex.NodeID == node_id]
    return msg.make_message(msg.RECONCILE, msg.ORCHESTRATOR, node_id, {"Executions": executions})
