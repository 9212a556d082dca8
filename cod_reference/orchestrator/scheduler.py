"""The scheduler: turns one evaluation of a job into new executions, bids approved or
rejected, retries, queueing, and the job's next state.

It reads the whole job (spec, executions, nodes) each time, so any evaluation of a job —
however it was triggered — brings the job to where it should be; several pending
evaluations of the same job are handled by one pass.

Node selection: a node must be connected, run the ``wasm`` engine, match every
constraint, hold the job's ``local`` inputs (data locality: such nodes also rank first),
have the resources in its maximum capacity, and not have failed or refused this
partition before (a retry goes elsewhere). Among those with free capacity now, nodes
rank by data locality, free capacity and how few executions of this job they hold.
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace

from ..models import Allocation, Execution, Job, JobType, NodeInfo, execution_to_dict, holds_path, job_to_dict
from ..states import ComputeState, DesiredState, JobState
from ..transport import messages as msg
from .nodes import NodeManager
from .store import JobStore


def past_total_timeout(job: Job, now_ns: int | None = None) -> float:
    """The job's TotalTimeout in seconds when it has run past it, else 0."""
    total = job.Task.Timeouts.TotalTimeout
    now_ns = time.time_ns() if now_ns is None else now_ns
    return total if total and now_ns - job.CreateTime > total * 1e9 else 0


@dataclass
class SchedulerConfig:
    max_retries: int = 2            # new executions after the first for one partition
    queue_backoff_s: float = 1.0    # re-check of a queued job (capacity changes also wake it)
    # The QueueTimeout of jobs that set none (Bacalhau's JobDefaults in the node config): how long
    # a job waits for a node with room before it fails with "not enough nodes". 0: it fails at once.
    default_queue_timeout_s: float = 0.0


class Scheduler:
    def __init__(self, store: JobStore, nodes: NodeManager, send: Callable[[msg.Message], None],
                 tracer: trace.Tracer, config: SchedulerConfig, metrics: Any) -> None:
        self.store = store
        self.nodes = nodes
        self.send = send
        self.tracer = tracer
        self.config = config
        self.metrics = metrics
        self._random = random.Random()  # ties between equal nodes; the module's shared state is left alone

    # ------------------------------------------------------------------ entry point

    def process(self, job_id: str) -> None:
        outbox: list[msg.Message] = []
        with self.tracer.start_as_current_span("scheduling", attributes={"cod.job_id": job_id}) as span:
            with self.store.tx():
                job = self.store.get_job(job_id)
                span.set_attribute("cod.job_type", job.Type.value)
                state = job.State.StateType
                if state.terminal:
                    self._stop_remaining(job, outbox, "job is " + state.value.lower())
                elif self._timed_out(job, outbox):
                    pass
                elif job.Type is JobType.OPS:
                    self._ops(job, outbox)
                else:
                    self._batch(job, outbox)
                span.set_attribute("cod.job_state", self.store.get_job(job_id).State.StateType.value)
            for message in outbox:
                self.send(message)

    # ------------------------------------------------------------------ helpers

    def _message(self, type_: str, ex: Execution, payload: dict[str, Any]) -> msg.Message:
        return msg.make_message(type_, msg.ORCHESTRATOR, ex.NodeID, payload)

    def _fail_job(self, job: Job, message: str, outbox: list[msg.Message]) -> None:
        self.store.set_job_state(job.ID, JobState.FAILED, message)
        self.metrics.job_finished(job, JobState.FAILED)
        self._stop_remaining(job, outbox, message)

    def _stop_remaining(self, job: Job, outbox: list[msg.Message], reason: str) -> None:
        for ex in self.store.executions(job.ID):
            if ex.state.terminal:
                continue
            self.store.update_execution(ex.ID, compute=ComputeState.CANCELLED,
                                        desired=DesiredState.STOPPED, message=f"cancelled: {reason}")
            outbox.append(self._message(msg.CANCEL_EXECUTION, ex, {"ExecutionID": ex.ID, "Reason": reason}))

    def _timed_out(self, job: Job, outbox: list[msg.Message]) -> bool:
        total = past_total_timeout(job)
        if total:
            self._fail_job(job, f"job exceeded its TotalTimeout of {total:g}s", outbox)
            return True
        return False

    def _executions(self, job: Job) -> list[Execution]:
        """The job's executions, those on nodes that have disappeared failed (retryable) first."""
        execs = self.store.executions(job.ID)
        lost = [ex for ex in execs if not ex.state.terminal and not self.nodes.is_connected(ex.NodeID)]
        for ex in lost:
            self.store.update_execution(ex.ID, compute=ComputeState.FAILED,
                                        message=f"node {ex.NodeID} has disappeared", retryable=True)
        return self.store.executions(job.ID) if lost else execs

    def _set_running(self, job: Job) -> None:
        if self.store.get_job(job.ID).State.StateType != JobState.RUNNING:
            self.store.set_job_state(job.ID, JobState.RUNNING, "")

    def _candidates(self, job: Job, exclude: set[str], *, need_free: bool = True
                    ) -> tuple[list[tuple[float, NodeInfo]], list[str]]:
        """Nodes that can run ``job`` now, best first, and why the others cannot. Without
        ``need_free`` a busy node still qualifies (its executor buffer queues the work)."""
        need = job.needs()
        paths = job.local_inputs()
        used: dict[str, Allocation] = {}
        for ex in self.store.active_executions():
            used[ex.NodeID] = used.get(ex.NodeID, Allocation()) + ex.AllocatedResources
        mine: dict[str, int] = {}
        for ex in self.store.executions(job.ID):
            if not ex.state.terminal:
                mine[ex.NodeID] = mine.get(ex.NodeID, 0) + 1
        ranked: list[tuple[float, NodeInfo]] = []
        reasons: list[str] = []
        nodes = self.nodes.compute_nodes()
        if not nodes:
            reasons.append("no compute nodes are connected")
        for state in nodes:
            info = state.Info
            node_id = info.NodeID
            cap = info.MaxCapacity or Allocation()
            free = cap - used.get(node_id, Allocation())
            why = ""
            if node_id in exclude:
                why = "already failed or refused this job"
            elif "wasm" not in info.Engines:
                why = "does not run the wasm engine"
            elif not all(c.matches(info.Labels) for c in job.Constraints):
                why = "labels do not match the job's constraints"
            elif any(not holds_path(info.LocalPaths, p) for p in paths):
                why = "does not hold the job's local inputs"
            else:
                for key in ("CPU", "Memory"):
                    if getattr(need, key) > getattr(cap, key):
                        why = f"job needs {key} {getattr(need, key):g}, node has at most {getattr(cap, key):g}"
                        break
                    if need_free and getattr(need, key) > getattr(free, key) + 1e-9:
                        why = f"not enough free {key} right now"
                        break
            if why:
                reasons.append(f"{node_id}: {why}")
                continue
            free_frac = max(0.0, min(getattr(free, k) / getattr(cap, k) for k in ("CPU", "Memory")
                                     if getattr(cap, k)))
            score = 80 * free_frac + (30 if paths else 0) - 20 * mine.get(node_id, 0) + self._random.uniform(0, 5)
            ranked.append((score, info))
        ranked.sort(key=lambda item: -item[0])
        return ranked, reasons

    def _no_node(self, job: Job, reasons: list[str], outbox: list[msg.Message], waiting: bool) -> None:
        """No node can take (part of) the job now: queue it, or fail it past its QueueTimeout."""
        own_timeout = job.Task.Timeouts.QueueTimeout
        queue_timeout = own_timeout or self.config.default_queue_timeout_s
        waited = (time.time_ns() - job.CreateTime) / 1e9
        detail = "; ".join(reasons) or "no compute nodes"
        if waited >= queue_timeout:
            if queue_timeout:
                why = f"waited its QueueTimeout of {queue_timeout:g}s" + ("" if own_timeout else " (the default)")
            else:
                why = ("it has no QueueTimeout to wait for room (set Timeouts.QueueTimeout, cod wasm run "
                       "--queue-timeout, or the orchestrator's --default-queue-timeout)")
            self._fail_job(job, f"not enough nodes to run job: {detail}; {why}", outbox)
            self.metrics.scheduling_outcome(job, "queue_timeout" if queue_timeout else "no_nodes")
            return
        if not waiting:
            if not job.State.StateType.terminal:  # nothing of the job runs anywhere: it waits in the queue
                self.store.set_job_state(job.ID, JobState.QUEUED, f"waiting for a node: {detail}")
        delay = min(self.config.queue_backoff_s, max(0.05, queue_timeout - waited + 0.01))
        self.store.create_evaluation(job.ID, "job-queue", job.TraceParent, delay_s=delay)
        self.metrics.scheduling_outcome(job, "queueing")

    def _new_execution(self, job: Job, info: NodeInfo, partition: int, desired: DesiredState,
                       outbox: list[msg.Message]) -> None:
        ex = self.store.create_execution(job.ID, info.NodeID, partition, desired, job.needs())
        ex = self.store.update_execution(ex.ID, compute=ComputeState.ASK_FOR_BID) or ex
        outbox.append(self._message(msg.ASK_FOR_BID, ex, {"Execution": execution_to_dict(ex),
                                                          "Job": job_to_dict(job)}))

    # ------------------------------------------------------------------ batch

    def _batch(self, job: Job, outbox: list[msg.Message]) -> None:
        execs = self._executions(job)
        count = job.Count
        by_partition: dict[int, list[Execution]] = {}
        for e in execs:
            by_partition.setdefault(e.PartitionIndex, []).append(e)
        missing: list[tuple[int, set[str]]] = []
        done = 0
        for p in range(count):
            mine = by_partition.get(p, [])
            if any(e.state is ComputeState.COMPLETED for e in mine):
                done += 1
                continue
            failed = [e for e in mine if e.state is ComputeState.FAILED]
            hard = [e for e in failed if not e.Retryable]
            if hard:
                self._fail_job(job, f"partition {p} failed: {hard[-1].message}", outbox)
                return
            if len(failed) > self.config.max_retries:
                self._fail_job(job, f"partition {p} failed {len(failed)} times, last on {failed[-1].NodeID}: "
                                    f"{failed[-1].message}", outbox)
                self.metrics.scheduling_outcome(job, "exhausted_retries")
                return
            active = [e for e in mine if not e.state.terminal]
            if active:
                self._approve(job, active, outbox)
                continue
            missing.append((p, {e.NodeID for e in mine if e.state.discarded}))
        if count and done == count or count == 0:
            self.store.set_job_state(job.ID, JobState.COMPLETED, "")
            self.metrics.job_finished(job, JobState.COMPLETED)
            return
        if not missing:
            return
        waiting = any(not e.state.terminal for e in execs)
        for p, exclude in missing:
            ranked, reasons = self._candidates(job, exclude)
            if not ranked:
                self._no_node(job, reasons, outbox, waiting)
                return
            self._new_execution(job, ranked[0][1], p, DesiredState.PENDING, outbox)
            if p == missing[0][0] and job.State.StateType == JobState.QUEUED:
                self.metrics.queue_time(job)

    def _approve(self, job: Job, active: list[Execution], outbox: list[msg.Message]) -> None:
        """Approve the oldest accepted bid of a partition, reject the others."""
        if any(e.DesiredState is DesiredState.RUNNING for e in active):
            return
        accepted = [e for e in active if e.state is ComputeState.ASK_FOR_BID_ACCEPTED]
        if not accepted:
            return
        winner, losers = accepted[0], accepted[1:]
        ex = self.store.update_execution(winner.ID, compute=ComputeState.BID_ACCEPTED,
                                         desired=DesiredState.RUNNING, message="bid accepted")
        if ex is not None:
            outbox.append(self._message(msg.BID_ACCEPTED, ex, {"ExecutionID": ex.ID}))
            self._set_running(job)
        for loser in losers:
            self.store.update_execution(loser.ID, compute=ComputeState.BID_REJECTED,
                                        desired=DesiredState.STOPPED, message="another bid won")
            outbox.append(self._message(msg.BID_REJECTED, loser, {"ExecutionID": loser.ID}))

    # ------------------------------------------------------------------ ops

    def _ops(self, job: Job, outbox: list[msg.Message]) -> None:
        execs = self._executions(job)
        if not execs:
            ranked, reasons = self._candidates(job, set(), need_free=False)  # every matching node, busy or not
            if not ranked:
                self._no_node(job, reasons, outbox, waiting=False)
                return
            for i, (_, info) in enumerate(sorted(ranked, key=lambda item: item[1].NodeID)):
                self._new_execution(job, info, i, DesiredState.RUNNING, outbox)
            self._set_running(job)
            return
        if not all(e.state.terminal for e in execs):
            return
        bad = [e for e in execs if e.state.discarded]
        if bad:
            self._fail_job(job, f"{len(bad)} of {len(execs)} executions did not complete; {bad[0].NodeID}: "
                                f"{bad[0].message}", outbox)
        else:
            self.store.set_job_state(job.ID, JobState.COMPLETED, "")
            self.metrics.job_finished(job, JobState.COMPLETED)
