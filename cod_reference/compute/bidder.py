"""The bidder: whether this node will run a job, and its answer to ``AskForBid``.

A bid is refused with a reason the orchestrator records (the engine is missing, the job
needs more than the node's whole capacity, a ``local`` input is not allow-listed here).
Free capacity right now is not a reason: accepted work waits in the executor buffer.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from opentelemetry import metrics, trace

from ..models import Allocation, AllowedPath, Job, execution_from_dict, job_from_dict
from ..states import ComputeState, DesiredState
from ..transport import messages as msg
from .inputs import MAX_MOUNTS
from .paths import PathError, resolve_allowed
from .store import ExecutionStore, LocalExecution

Report = Callable[[str, dict[str, Any]], None]
log = logging.getLogger("cod_reference.compute")


class Bidder:
    def __init__(self, node_id: str, capacity: Allocation, allowed: list[AllowedPath], store: ExecutionStore,
                 report: Report, tracer: trace.Tracer, meter: metrics.Meter,
                 accepted: Callable[[LocalExecution, msg.Message], None]) -> None:
        self.node_id = node_id
        self.capacity = capacity
        self.allowed = allowed
        self.store = store
        self.report = report
        self.tracer = tracer
        #: called with an execution to run now (an ops job: its bid needs no approval)
        self.accepted = accepted
        self._bids = meter.create_counter("cod.bids.made", description="bids made by compute nodes")

    def refusal(self, job: Job) -> str:
        """Why this node will not run ``job`` ("" if it will)."""
        need = job.needs()
        for key in ("CPU", "Memory"):
            if getattr(need, key) > getattr(self.capacity, key):
                return f"job needs {key} {getattr(need, key):g} but this node has {getattr(self.capacity, key):g}"
        mounts = len(job.Task.InputSources) + len(job.Task.ResultPaths)
        if mounts > MAX_MOUNTS:
            return f"job has {mounts} inputs and result paths; this node mounts at most {MAX_MOUNTS}"
        for path in job.local_inputs():
            try:
                resolve_allowed(path, self.allowed, writable=False)
            except PathError:
                return f"local input {path} is not allow-listed on this node"
        return ""

    def _answer_again(self, known: LocalExecution | None) -> None:
        """Send a decided bid again (the orchestrator ignores a repeated one)."""
        if known is not None and known.state in (ComputeState.ASK_FOR_BID_ACCEPTED, ComputeState.ASK_FOR_BID_REJECTED):
            accepted = known.state is ComputeState.ASK_FOR_BID_ACCEPTED
            self.report(msg.BID_RESULT, {"ExecutionID": known.execution.ID, "Accepted": accepted,
                                         "Reason": "" if accepted else known.message})

    def ask_for_bid(self, message: msg.Message) -> None:
        execution = execution_from_dict(message.payload["Execution"])
        job = job_from_dict(message.payload["Job"])
        with self.tracer.start_as_current_span("bid", context=message.context(),
                                               attributes={"cod.node_id": self.node_id,
                                                           "cod.execution_id": execution.ID,
                                                           "cod.job_id": job.ID}) as span:
            if not self.store.add(execution, job, message.trace_context):
                known = self.store.get(execution.ID)
                if known is None or known.state is not ComputeState.NEW:
                    self._answer_again(known)  # a repeated message: the first answer may have been lost
                    return
                # else the node stopped between recording the request and answering it: answer now
            try:
                reason = self.refusal(job)
            except Exception as exc:  # an answer must go back, or the job waits for this node forever
                log.exception("node %s: cannot decide on execution %s", self.node_id, execution.ID)
                reason = f"this node could not check the job: {type(exc).__name__}: {exc}"
            accepted = not reason
            span.set_attribute("cod.bid", "accepted" if accepted else "rejected")
            if reason:
                span.set_attribute("cod.bid_reason", reason)
            self._bids.add(1, {"accepted": accepted})
            run_now = execution.DesiredState is DesiredState.RUNNING  # ops jobs skip the bid round
            if not accepted:
                self.store.set_state(execution.ID, ComputeState.ASK_FOR_BID_REJECTED, reason)
            else:
                self.store.set_state(execution.ID,
                                     ComputeState.BID_ACCEPTED if run_now else ComputeState.ASK_FOR_BID_ACCEPTED)
            self.report(msg.BID_RESULT, {"ExecutionID": execution.ID, "Accepted": accepted, "Reason": reason})
        if accepted and run_now:
            local = self.store.get(execution.ID)
            if local:
                self.accepted(local, message)
