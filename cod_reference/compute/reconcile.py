"""A compute node's side of reconciliation: answering the orchestrator's view of its executions.

On every (re)connection the orchestrator sends a round of ``Reconcile`` messages with the executions
it believes this node holds. Whatever a lost message left out of step is settled here: an execution
the node finished is reported again (its stored result), one the node never heard of is reported
lost (the orchestrator retries it elsewhere), one approved while the approval was lost starts, and
one the node still runs although the orchestrator no longer counts it is cancelled.

A round comes in numbered parts (``Round``, ``Part``, ``Parts``: see
:mod:`cod_reference.orchestrator.reconcile`). Each part's executions are settled as it arrives; the
cancelling waits for every part of the round, since only then is "not listed" known.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..models import ComputeError, RunResult, report_to_dict
from ..states import ComputeState
from ..transport import messages as msg

if TYPE_CHECKING:
    from .node import ComputeNode

log = logging.getLogger(__name__)

#: executions younger than this are left alone: the messages about them may still be on their way
SETTLE_S = 5.0


class Rounds:
    """The executions listed by the parts received so far of the latest round, until it has every part.

    Rounds are sent one after the other, so a part of a new round forgets an older incomplete one
    (a part of it was lost): that round cancels nothing, and the next one (within seconds) does.
    """

    def __init__(self) -> None:
        self.round_id = ""
        self.parts: dict[int, set[str]] = {}

    def add(self, message: msg.Message, listed: Iterable[str]) -> set[str] | None:
        """Record one part; once its round has every part, forget the round and return all it listed."""
        round_id, index, count = part_of(message)
        if round_id != self.round_id:
            self.round_id, self.parts = round_id, {}
        self.parts[index] = set(listed)
        if set(self.parts) != set(range(count)):
            return None
        whole = set().union(*self.parts.values())
        self.round_id, self.parts = "", {}
        return whole


def part_of(message: msg.Message) -> tuple[str, int, int]:
    """A part's round id, index and the round's number of parts; a message without them is a whole round."""
    payload = message.payload
    if "Round" not in payload:
        return message.id, 0, 1
    return str(payload["Round"]), int(payload["Part"]), int(payload["Parts"])


def reconcile(node: ComputeNode, message: msg.Message) -> None:
    """One part of a round: settle each execution it lists; once the round is whole, cancel the unlisted."""
    listed: dict[str, dict[str, Any]] = {e["ID"]: e for e in message.payload.get("Executions") or []}
    for exec_id, theirs in listed.items():
        settle(node, message, exec_id, theirs)
    whole = node.reconcile_rounds.add(message, listed)
    if whole is not None:
        cancel_unlisted(node, whole)


def settle(node: ComputeNode, message: msg.Message, exec_id: str, theirs: dict[str, Any]) -> None:
    """Bring one execution the orchestrator counts on in step with what this node knows of it."""
    rec = node.store.get(exec_id)
    if rec is None:
        if (message.time_ns - int(theirs.get("CreateTime") or 0)) / 1e9 > SETTLE_S:
            node.report(msg.COMPUTE_ERROR, {"ExecutionID": exec_id, "Retryable": True,
                                            "Error": f"node {node.node_id} does not know this execution"})
        return
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


def cancel_unlisted(node: ComputeNode, listed: set[str]) -> None:
    """Cancel every live execution a whole round did not list (unless too young to judge)."""
    now = time.time_ns()
    for rec in node.store.live():
        if rec.ID not in listed and (now - rec.create_time) / 1e9 > SETTLE_S:
            log.info("%s: cancelling %s, which the orchestrator no longer counts on", node.node_id, rec.ID)
            node.cancel(rec.ID, "the orchestrator no longer counts on this execution")
