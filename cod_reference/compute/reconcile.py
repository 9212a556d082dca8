"""A compute node's side of reconciliation: answering the orchestrator's view of its executions.

On every (re)connection the orchestrator sends ``Reconcile`` with the executions it believes this
node holds. Whatever a lost message left out of step is settled here: an execution the node
finished is reported again (its stored result), one the node never heard of is reported lost (the
orchestrator retries it elsewhere), one approved while the approval was lost starts, and one the
node still runs although the orchestrator no longer counts it is cancelled.
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from ..models import ComputeError, RunResult, report_to_dict
from ..states import ComputeState
from ..transport import messages as msg

if TYPE_CHECKING:
    from .node import ComputeNode

log = logging.getLogger(__name__)

#: executions younger than this are left alone: the messages about them may still be on their way
SETTLE_S = 5.0


def reconcile(node: ComputeNode, message: msg.Message) -> None:
    listed: dict[str, dict[str, Any]] = {e["ID"]: e for e in message.payload.get("Executions") or []}
    now = time.time_ns()
    for exec_id, theirs in listed.items():
        rec = node.store.get(exec_id)
        if rec is None:
            if (message.time_ns - int(theirs.get("CreateTime") or 0)) / 1e9 > SETTLE_S:
                node.report(msg.COMPUTE_ERROR, {"ExecutionID": exec_id, "Retryable": True,
                                                "Error": f"node {node.node_id} does not know this execution"})
            continue
        state = rec.state
        if state == ComputeState.COMPLETED and isinstance(rec.result, RunResult):
            node.report(msg.RUN_RESULT, report_to_dict(rec.result))
        elif state == ComputeState.FAILED:
            failure = rec.result if isinstance(rec.result, ComputeError) \
                else ComputeError(exec_id, rec.message or "failed")
            node.report(msg.COMPUTE_ERROR, report_to_dict(failure))
        elif state == ComputeState.ASK_FOR_BID_REJECTED:
            node.report(msg.BID_RESULT, {"ExecutionID": exec_id, "Accepted": False, "Reason": rec.message})
        elif state.terminal:  # cancelled or rejected here while the orchestrator still counts on it
            node.report(msg.COMPUTE_ERROR, {"ExecutionID": exec_id, "Retryable": True,
                                            "Error": f"execution was {state.value.lower()} on {node.node_id}"})
        elif state == ComputeState.ASK_FOR_BID_ACCEPTED and theirs.get("DesiredState") == "Running":
            node.approve(exec_id, message)  # the BidAccepted message was lost
    for rec in node.store.live():
        if rec.ID not in listed and (now - rec.create_time) / 1e9 > SETTLE_S:
            log.info("%s: cancelling %s, which the orchestrator no longer counts on", node.node_id, rec.ID)
            node.cancel(rec.ID, "the orchestrator no longer counts on this execution")
