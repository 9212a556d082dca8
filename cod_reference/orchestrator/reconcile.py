"""The orchestrator's side of reconciliation: telling a (re)joining node which executions it should hold.

Sent on every handshake and whenever a node is heard from for the first time since it rejoined or
this orchestrator started; :mod:`cod_reference.compute.reconcile` answers it. Messages are
durable, so this only repairs what a crash between a state change and its message left behind.

One round may list thousands of executions, more than one NATS message holds (1 MiB), so it goes
as numbered parts of at most :data:`PART_SIZE` executions, each carrying the round's id (``Round``),
its index (``Part``) and the number of parts (``Parts``); a node with nothing to hold gets one
empty part. The node cancels what no part lists only once it has every part of the round.
"""
from __future__ import annotations

import uuid

from ..transport import messages as msg
from .store import JobStore

#: executions per Reconcile message: a worst-case entry is ~140 bytes, so a full part is ~280 KB
PART_SIZE = 2000


def reconcile_messages(store: JobStore, node_id: str) -> list[msg.Message]:
    """One round: the executions the orchestrator believes ``node_id`` holds, in parts to send in order."""
    executions = [{"ID": ex.ID, "DesiredState": ex.DesiredState.value, "ComputeState": ex.state.value,
                   "CreateTime": ex.CreateTime}
                  for ex in store.active_executions() if ex.NodeID == node_id]
    parts = [executions[i:i + PART_SIZE] for i in range(0, len(executions), PART_SIZE)] or [[]]
    round_id = uuid.uuid4().hex
    return [msg.make_message(msg.RECONCILE, msg.ORCHESTRATOR, node_id,
                             {"Round": round_id, "Part": i, "Parts": len(parts), "Executions": part})
            for i, part in enumerate(parts)]
