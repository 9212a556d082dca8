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
from dataclasses import dataclass
from typing import Any, Callable

from opentelemetry import trace

from ..models import allocation_to_dict, holds_path, job_from_dict
from ..states import ComputeState, DesiredState, JobState
from ..transport import messages as msg
from .nodes import NodeManager
from .store import JobStore, public_job


def past_total_timeout(job: dict[str, Any], now_ns: int | None = None) -> float:
    """The job's TotalTimeout in seconds when it has run past it, else 0."""
    total = job_from_dict(job).Task.Timeouts.TotalTimeout
    now_ns = time.time_ns() if now_ns is None else now_ns
    return total if total and now_ns - job["CreateTime"] > total * 1e9 else 0


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

    # ------------------------------------------------------------------ entry point

    def process(self, job_id: str) -> None:
        outbox: list[msg.Message] = []
        with self.tracer.start_as_current_span("scheduling", attributes={"cod.job_id": job_id}) as span:
            with self.store.tx():
                job = self.store.get_job(job_id)
                span.set_attribute("cod.job_type", job["Type"])
                state = JobState(job["State"]["StateType"])
                if state.terminal:
                    self._stop_remaining(job, outbox, "job is " + state.value.lower())
                elif self._timed_out(job, outbox):
                    pass
                elif job["Type"] == "ops":
                    self._ops(job, outbox)
                else:
                    self._batch(job, outbox)
                span.set_attribute("cod.job_state", self.store.get_job(job_id)["State"]["StateType"])
            for message in outbox:
                self.send(message)

    # ------------------------------------------------------------------ helpers

    def _message(self, type_: str, ex: dict[str, Any], payload: dict[str, Any]) -> msg.Message:
        return msg.make_message(type_, msg.ORCHESTRATOR, ex["NodeID"], payload)

    def _fail_job(self, job: dict[str, Any], message: str, outbox: list[msg.Message]) -> None:
        self.store.set_job_state(job["ID"], JobState.FAILED, message)
        self.metrics.job_finished(job, JobState.FAILED)
        self._stop_remaining(job, outbox, message)

    def _stop_remaining(self, job: dict[str, Any], outbox: list[msg.Message], reason: str) -> None:
        for ex in self.store.executions(job["ID"]):
            if ComputeState(ex["ComputeState"]["StateType"]).terminal:
                continue
            self.store.update_execution(ex["ID"], compute=ComputeState.CANCELLED,
                                        desired=DesiredState.STOPPED, message=f"cancelled: {reason}")
            outbox.append(self._message(msg.CANCEL_EXECUTION, ex, {"ExecutionID": ex["ID"], "Reason": reason}))

    def _timed_out(self, job: dict[str, Any], outbox: list[msg.Message]) -> bool:
        total = past_total_timeout(job)
        if total:
            self._fail_job(job, f"job exceeded its TotalTimeout of {total:g}s", outbox)
            return True
        return False

    def _executions(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        """The job's executions, those on nodes that have disappeared failed (retryable) first."""
        execs = self.store.executions(job["ID"])
        lost = [ex for ex in execs if not ComputeState(ex["ComputeState"]["StateType"]).terminal
                and not self.nodes.is_connected(ex["NodeID"])]
        for ex in lost:
            self.store.update_execution(ex["ID"], compute=ComputeState.FAILED,
                                        message=f"node {ex['NodeID']} has disappeared", retryable=True)
        return self.store.executions(job["ID"]) if lost else execs

    def _set_running(self, job: dict[str, Any]) -> None:
        if JobState(self.store.get_job(job["ID"])["State"]["StateType"]) != JobState.RUNNING:
            self.store.set_job_state(job["ID"], JobState.RUNNING, "")

    def _candidates(self, job: dict[str, Any], exclude: set[str], *, need_free: bool = True
                    ) -> tuple[list[tuple[float, dict]], list[str]]:
        """Nodes that can run ``job`` now, best first, and why the others cannot. Without
        ``need_free`` a busy node still qualifies (its executor buffer queues the work)."""
        spec = job_from_dict(job)
        need = allocation_to_dict(spec.needs())
        constraints = spec.Constraints
        paths = spec.local_inputs()
        used: dict[str, dict[str, float]] = {}
        for ex in self.store.active_executions():
            slot = used.setdefault(ex["NodeID"], {"CPU": 0.0, "Memory": 0.0})
            for key in slot:
                slot[key] += ex["AllocatedResources"].get(key, 0)
        mine: dict[str, int] = {}
        for ex in self.store.executions(job["ID"]):
            if not ComputeState(ex["ComputeState"]["StateType"]).terminal:
                mine[ex["NodeID"]] = mine.get(ex["NodeID"], 0) + 1
        ranked, reasons = [], []
        nodes = self.nodes.compute_nodes()
        if not nodes:
            reasons.append("no compute nodes are connected")
        for state in nodes:
            info = state["Info"]
            node_id = info["NodeID"]
            labels = info.get("Labels") or {}
            why = ""
            if node_id in exclude:
                why = "already failed or refused this job"
            elif "wasm" not in (info.get("Engines") or []):
                why = "does not run the wasm engine"
            elif not all(c.matches(labels) for c in constraints):
                why = "labels do not match the job's constraints"
            elif any(not holds_path(info.get("LocalPaths") or [], p) for p in paths):
                why = "does not hold the job's local inputs"
            else:
                cap = info.get("MaxCapacity") or {}
                for key in ("CPU", "Memory"):
                    if need[key] > cap.get(key, 0):
                        why = f"job needs {key} {need[key]:g}, node has at most {cap.get(key, 0):g}"
                        break
                    free = cap.get(key, 0) - used.get(node_id, {}).get(key, 0)
                    if need_free and need[key] > free + 1e-9:
                        why = f"not enough free {key} right now"
                        break
            if why:
                reasons.append(f"{node_id}: {why}")
                continue
            cap = info["MaxCapacity"]
            free_frac = max(0.0, min(1 - used.get(node_id, {}).get(k, 0) / cap[k]
                                     for k in ("CPU", "Memory") if cap.get(k)))
            score = 80 * free_frac + (30 if paths else 0) - 20 * mine.get(node_id, 0) + random.uniform(0, 5)
            ranked.append((score, info))
        ranked.sort(key=lambda item: -item[0])
        return ranked, reasons

    def _no_node(self, job: dict[str, Any], reasons: list[str], outbox: list[msg.Message], waiting: bool) -> None:
        """No node can take (part of) the job now: queue it, or fail it past its QueueTimeout."""
        own_timeout = job_from_dict(job).Task.Timeouts.QueueTimeout
        queue_timeout = own_timeout or self.config.default_queue_timeout_s
        waited = (time.time_ns() - job["CreateTime"]) / 1e9
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
            state = JobState(job["State"]["StateType"])
            if not state.terminal:  # nothing of the job runs anywhere: it waits in the queue
                self.store.set_job_state(job["ID"], JobState.QUEUED, f"waiting for a node: {detail}")
        delay = min(self.config.queue_backoff_s, max(0.05, queue_timeout - waited + 0.01))
        self.store.create_evaluation(job["ID"], "job-queue", job["TraceParent"], delay_s=delay)
        self.metrics.scheduling_outcome(job, "queueing")

    def _new_execution(self, job: dict[str, Any], info: dict[str, Any], partition: int, desired: DesiredState,
                       outbox: list[msg.Message]) -> None:
        ex = self.store.create_execution(job["ID"], info["NodeID"], partition, desired,
                                        allocation_to_dict(job_from_dict(job).needs()))
        ex = self.store.update_execution(ex["ID"], compute=ComputeState.ASK_FOR_BID) or ex
        outbox.append(self._message(msg.ASK_FOR_BID, ex, {"Execution": ex, "Job": public_job(job)}))

    # ------------------------------------------------------------------ batch

    def _batch(self, job: dict[str, Any], outbox: list[msg.Message]) -> None:
        execs = self._executions(job)
        count = job["Count"]
        by_partition: dict[int, list[dict[str, Any]]] = {}
        for e in execs:
            by_partition.setdefault(e["PartitionIndex"], []).append(e)
        missing: list[tuple[int, set[str]]] = []
        done = 0
        for p in range(count):
            mine = by_partition.get(p, [])
            states = [ComputeState(e["ComputeState"]["StateType"]) for e in mine]
            if ComputeState.COMPLETED in states:
                done += 1
                continue
            failed = [e for e, s in zip(mine, states) if s == ComputeState.FAILED]
            hard = [e for e in failed if not e["Retryable"]]
            if hard:
                self._fail_job(job, f"partition {p} failed: {hard[-1]['ComputeState']['Message']}", outbox)
                return
            if len(failed) > self.config.max_retries:
                self._fail_job(job, f"partition {p} failed {len(failed)} times, last on {failed[-1]['NodeID']}: "
                                    f"{failed[-1]['ComputeState']['Message']}", outbox)
                self.metrics.scheduling_outcome(job, "exhausted_retries")
                return
            active = [e for e, s in zip(mine, states) if not s.terminal]
            if active:
                self._approve(job, active, outbox)
                continue
            missing.append((p, {e["NodeID"] for e, s in zip(mine, states) if s.discarded}))
        if count and done == count or count == 0:
            self.store.set_job_state(job["ID"], JobState.COMPLETED, "")
            self.metrics.job_finished(job, JobState.COMPLETED)
            return
        if not missing:
            return
        waiting = any(not ComputeState(e["ComputeState"]["StateType"]).terminal for e in execs)
        for p, exclude in missing:
            ranked, reasons = self._candidates(job, exclude)
            if not ranked:
                self._no_node(job, reasons, outbox, waiting)
                return
            self._new_execution(job, ranked[0][1], p, DesiredState.PENDING, outbox)
            if p == missing[0][0] and job["State"]["StateType"] == JobState.QUEUED.value:
                self.metrics.queue_time(job)

    def _approve(self, job: dict[str, Any], active: list[dict[str, Any]], outbox: list[msg.Message]) -> None:
        """Approve the oldest accepted bid of a partition, reject the others."""
        if any(e["DesiredState"]["StateType"] == DesiredState.RUNNING.value for e in active):
            return
        accepted = [e for e in active if e["ComputeState"]["StateType"] == ComputeState.ASK_FOR_BID_ACCEPTED.value]
        if not accepted:
            return
        winner, losers = accepted[0], accepted[1:]
        ex = self.store.update_execution(winner["ID"], compute=ComputeState.BID_ACCEPTED,
                                         desired=DesiredState.RUNNING, message="bid accepted")
        if ex is not None:
            outbox.append(self._message(msg.BID_ACCEPTED, ex, {"ExecutionID": ex["ID"]}))
            self._set_running(job)
        for loser in losers:
            self.store.update_execution(loser["ID"], compute=ComputeState.BID_REJECTED,
                                        desired=DesiredState.STOPPED, message="another bid won")
            outbox.append(self._message(msg.BID_REJECTED, loser, {"ExecutionID": loser["ID"]}))

    # ------------------------------------------------------------------ ops

    def _ops(self, job: dict[str, Any], outbox: list[msg.Message]) -> None:
        execs = self._executions(job)
        if not execs:
            ranked, reasons = self._candidates(job, set(), need_free=False)  # every matching node, busy or not
            if not ranked:
                self._no_node(job, reasons, outbox, waiting=False)
                return
            for i, (_, info) in enumerate(sorted(ranked, key=lambda item: item[1]["NodeID"])):
                self._new_execution(job, info, i, DesiredState.RUNNING, outbox)
            self._set_running(job)
            return
        states = [ComputeState(e["ComputeState"]["StateType"]) for e in execs]
        if not all(s.terminal for s in states):
            return
        bad = [e for e, s in zip(execs, states) if s.discarded]
        if bad:
            self._fail_job(job, f"{len(bad)} of {len(execs)} executions did not complete; {bad[0]['NodeID']}: "
                                f"{bad[0]['ComputeState']['Message']}", outbox)
        else:
            self.store.set_job_state(job["ID"], JobState.COMPLETED, "")
            self.metrics.job_finished(job, JobState.COMPLETED)
