"""The orchestrator (Bacalhau's requester): accepts jobs, evaluates them, talks to compute nodes.

Submitting a job stores it with a ``job-register`` evaluation in one transaction; worker
threads take evaluations from the broker and run the scheduler; messages from compute
nodes (bid results, run results, errors, heartbeats) update executions and trigger new
evaluations. A housekeeping thread notices silent nodes and jobs past their TotalTimeout.
Every job has one trace: the ``submit`` span is its root and the trace context is stored
with the job, so each later ``evaluation`` span — and through the messages, the compute
node's spans — joins it.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate

from observe_sdk.adapters.traceinfo import parse_traceparent

from ..errors import CodError
from ..models import (
    Execution,
    Job,
    NodeInfo,
    Removal,
    Removed,
    compute_error_from_dict,
    node_info_from_dict,
    removal_from_dict,
    run_result_from_dict,
)
from ..models.limits import DEFAULT_MAX_UNFINISHED_JOBS
from ..states import ComputeState, DesiredState, JobState
from ..telemetry import Telemetry
from ..transport import Transport
from ..transport import messages as msg
from .broker import EvaluationBroker
from .node_api import NodeAPI
from .nodes import CONNECTED, NodeManager
from .reconcile import reconcile_messages
from .scheduler import Scheduler, SchedulerConfig, past_total_timeout
from .store import UNFINISHED, JobStore

log = logging.getLogger(__name__)

TRACER_NAME = "cod_reference.orchestrator"


class LogSource(Protocol):
    """Where the orchestrator reads an execution's output (a compute node, here in-process); it raises
    :class:`~cod_reference.models.Removed` when the node's retention removed it."""

    def read_output(self, execution_id: str, stream: str, offset: int, limit: int) -> tuple[bytes, bool]: ...


@dataclass
class OrchestratorConfig:
    node_id: str = msg.ORCHESTRATOR
    workers: int = 2
    disconnect_timeout_s: float = 10.0
    #: how often each node is sent the executions it should hold (besides on its handshake)
    reconcile_interval_s: float = 10.0
    housekeeping_interval_s: float = 0.5
    labels: dict[str, str] = field(default_factory=dict)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    #: the bearer token of compute nodes' APIs (to read the logs of nodes in other processes)
    node_api_token: str = ""
    #: a new job is refused while this many are Pending, Queued or Running (0: no cap)
    max_unfinished_jobs: int = DEFAULT_MAX_UNFINISHED_JOBS


def _deadline_ns(job: Job) -> int:
    """When ``job`` passes its TotalTimeout (ns since the epoch), 0 when it has none."""
    total = job.Task.Timeouts.TotalTimeout
    return job.CreateTime + int(total * 1e9) if total else 0


class StopError(CodError, ValueError):
    """A job that cannot be stopped (it has completed)."""


class OrchestratorMetrics:
    def __init__(self, meter: metrics.Meter, broker: EvaluationBroker) -> None:
        self.finished = meter.create_counter("cod.jobs.finished", description="jobs that reached a final state")
        self.job_duration = meter.create_histogram("cod.job.duration", unit="s",
                                                   description="submit to final state")
        self.queue_duration = meter.create_histogram("cod.job.queue_duration", unit="s",
                                                     description="time jobs spent queued for a node")
        self.outcomes = meter.create_counter("cod.scheduler.outcomes", description="scheduler decisions")
        self.bids = meter.create_counter("cod.bids", description="bid results received, by outcome")
        self.stale = meter.create_counter(
            "cod.messages.stale", description="late or repeated reports (about an execution already past them), "
                                              "ignored; by message type")
        self.retention_removed = meter.create_counter(
            "cod.retention.removed", description="finished executions whose logs and results a node's retention "
                                                 "removed; by reason (age, size)")
        meter.create_observable_gauge(
            "cod.evaluations.pending", callbacks=[lambda _opts: [metrics.Observation(broker.pending())]],
            description="evaluations waiting in the broker")

    def job_finished(self, job: Job, state: JobState) -> None:
        attrs = {"job_type": job.Type.value, "state": state.value}
        self.finished.add(1, attrs)
        self.job_duration.record((time.time_ns() - job.CreateTime) / 1e9, attrs)

    def scheduling_outcome(self, job: Job, outcome: str) -> None:
        self.outcomes.add(1, {"job_type": job.Type.value, "outcome": outcome})

    def queue_time(self, job: Job) -> None:
        self.queue_duration.record((time.time_ns() - job.CreateTime) / 1e9, {"job_type": job.Type.value})


class Orchestrator:
    def __init__(self, data_dir: str | Path, transport: Transport, telemetry: Telemetry,
                 config: OrchestratorConfig | None = None) -> None:
        self.config = config or OrchestratorConfig()
        self.data_dir = Path(data_dir)
        self.transport = transport
        self.telemetry = telemetry
        self.tracer = telemetry.tracer(TRACER_NAME)
        self.store = JobStore(self.data_dir / "orchestrator" / "jobs.db")
        self.broker = EvaluationBroker()
        self.store.on_evaluation = self.broker.enqueue
        self.metrics = OrchestratorMetrics(telemetry.meter(TRACER_NAME), self.broker)
        self.nodes = NodeManager(self.store, self.config.disconnect_timeout_s, self._node_changed,
                                 self.config.reconcile_interval_s)
        self.nodes.register_self(NodeInfo(self.config.node_id, NodeType="Requester", Labels=dict(self.config.labels)))
        self.scheduler = Scheduler(self.store, self.nodes, transport.send, self.tracer, self.config.scheduler,
                                   self.metrics)
        self.log_sources: dict[str, LogSource] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        for ev in self.store.pending_evaluations():
            self.broker.enqueue(ev)
        self.transport.subscribe(self.config.node_id, self._handle)
        for i in range(self.config.workers):
            self._spawn(self._work, f"cod-eval-worker-{i}")
        self._spawn(self._housekeeping, "cod-housekeeping")

    def _spawn(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()
        self.broker.close()
        self.transport.unsubscribe(self.config.node_id)
        for thread in self._threads:
            thread.join(timeout=10)
        self.store.close()

    # ------------------------------------------------------------------ API operations

    def submit(self, job: Job, parent: otel_context.Context | None = None,
               idempotency_key: str = "") -> dict[str, Any]:
        with self.tracer.start_as_current_span("submit", context=parent or otel_context.Context()) as span:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            record, eval_id = self.store.create_job(job, carrier.get("traceparent", ""), idempotency_key,
                                                    self.config.max_unfinished_jobs)
            span.set_attributes({"cod.job_id": record.ID, "cod.job_name": record.Name,
                                 "cod.job_type": record.Type.value, "cod.count": record.Count})
        return {"JobID": record.ID, "EvaluationID": eval_id, "Warnings": []}

    def stop_job(self, ref: str, reason: str = "") -> dict[str, Any]:
        job = self.store.find_job(ref)
        state = job.State.StateType
        if state == JobState.COMPLETED:
            raise StopError(f"job {job.ID} has already completed")
        if state.terminal:
            return {"EvaluationID": ""}
        with self.store.tx():
            self.store.set_job_state(job.ID, JobState.STOPPED, reason or "stopped by the user")
            eval_id = self.store.create_evaluation(job.ID, "job-cancel", job.TraceParent)
        self.metrics.job_finished(job, JobState.STOPPED)
        return {"EvaluationID": eval_id}

    def trace_id(self, job: Job) -> str:
        """The job's trace id (32 hex digits), "" when it has no valid traceparent."""
        try:
            return parse_traceparent(job.TraceParent).trace_id_hex
        except ValueError:
            return ""

    def node_api(self, node_id: str) -> NodeAPI | None:
        """The API of ``node_id`` when it runs in a process of its own (it announced one)."""
        node = self.nodes.get(node_id)
        if node_id in self.log_sources or node is None or not node.Info.APIURL:
            return None
        return NodeAPI(node.Info.APIURL, node_id, self.config.node_api_token)

    def read_logs(self, execution: Execution, stream: str, offset: int, limit: int = 1 << 20) -> tuple[bytes, bool]:
        """Bytes of the execution's ``stream`` from ``offset`` and whether it has ended; raises
        :class:`~cod_reference.models.Removed` when the node's retention removed them."""
        if execution.FilesRemoved is not None:
            raise Removed(execution.FilesRemoved, "logs")
        source = self.log_sources.get(execution.NodeID)
        remote = self.node_api(execution.NodeID) if source is None else None
        try:
            if remote is not None:
                try:
                    return remote.read_output(execution.ID, stream, offset, limit)
                except httpx.HTTPError as exc:  # gone or unreachable: what its result brought, if anything
                    log.info("cannot read %s of %s on %s: %s", stream, execution.ID, execution.NodeID, exc)
            if source is None:  # the heads of the output come with the execution's result
                if not execution.state.terminal:
                    return b"", False
                out = (execution.RunOutput or {}).get("Stdout" if stream == "stdout" else "stderr", "")
                data = out.encode()[offset:]
                return data, True
            return source.read_output(execution.ID, stream, offset, limit)
        except Removed as exc:  # known here first: the node's FilesRemoved message is still on its way
            self.record_removal(exc.removal, execution.NodeID)
            raise

    def record_removal(self, removal: Removal, node_id: str) -> None:
        """Node ``node_id`` says its retention removed an execution's files: kept with the execution (and
        its history), counted once in ``cod.retention.removed``; ignored unless the execution is that node's."""
        try:
            ex = self.store.get_execution(removal.ExecutionID)
        except LookupError:
            log.warning("node %s removed the files of execution %s, which is not known here", node_id,
                        removal.ExecutionID)
            return
        if not ex.NodeID == removal.NodeID == node_id:
            log.warning("node %s says node %s removed the files of execution %s, which ran on %s: ignored", node_id,
                        removal.NodeID, ex.ID, ex.NodeID)
            return
        if self.store.record_removal(removal):
            self.metrics.retention_removed.add(1, {"reason": removal.Reason})
            log.debug("node %s removed the files of execution %s (%s)", removal.NodeID, removal.ExecutionID,
                     removal.Limit)

    # ------------------------------------------------------------------ evaluations

    def _work(self) -> None:
        while not self._stop.is_set():
            evals = self.broker.dequeue(timeout=0.5)
            if not evals:
                continue
            job_id = evals[0].JobID
            try:
                parent = msg.extract_context({"traceparent": evals[0].TraceParent})
                triggers = sorted({ev.TriggeredBy for ev in evals})
                with self.tracer.start_as_current_span(
                        "evaluation", context=parent,
                        attributes={"cod.job_id": job_id, "cod.triggered_by": triggers,
                                    "cod.evaluations": len(evals)}):
                    self.scheduler.process(job_id)
                status = "complete"
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("evaluation of job %s failed", job_id)
                status = "failed"
            finally:
                self.broker.done(job_id)
            try:
                for ev in evals:
                    self.store.set_evaluation_status(ev.ID, status)
            except Exception:
                if not self._stop.is_set():
                    log.exception("could not record evaluation status")

    def _housekeeping(self) -> None:
        #: unfinished job -> when it passes its TotalTimeout (ns, 0: never): each spec is decoded once,
        #: not on every pass (10,000 unfinished jobs holding a module each would take seconds a pass)
        deadlines: dict[str, int] = {}
        while not self._stop.wait(self.config.housekeeping_interval_s):
            try:
                self.nodes.check_liveness()
                now = time.time_ns()
                unfinished = set(self.store.job_ids_in_states(UNFINISHED))
                for gone in deadlines.keys() - unfinished:
                    del deadlines[gone]
                for job_id in unfinished - deadlines.keys():
                    deadlines[job_id] = _deadline_ns(self.store.get_job(job_id))
                for job_id, deadline in deadlines.items():
                    if deadline and now > deadline:
                        job = self.store.get_job(job_id)
                        if past_total_timeout(job, now):
                            self.store.create_evaluation(job.ID, "job-timeout", job.TraceParent)
            except Exception:
                if not self._stop.is_set():
                    log.exception("housekeeping failed")

    def _node_changed(self, node_id: str, connection: str) -> None:
        """A node joined (capacity for queued jobs) or left (its executions are lost)."""
        if connection == CONNECTED:
            refs = self.store.job_refs_in_states((JobState.QUEUED,))
        else:
            ids = {ex.JobID for ex in self.store.active_executions() if ex.NodeID == node_id}
            refs = [(job.ID, job.TraceParent) for job in map(self.store.get_job, ids)]
        for job_id, trace_parent in refs:
            self.store.create_evaluation(job_id, "node-join" if connection == CONNECTED else "node-leave",
                                         trace_parent)

    # ------------------------------------------------------------------ messages from compute nodes

    def _stale(self, message: msg.Message, exec_id: str) -> None:
        self.metrics.stale.add(1, {"type": message.type})
        log.info("ignored %s from %s: execution %s is past it", message.type, message.source, exec_id)

    def _files_removed(self, message: msg.Message) -> None:
        try:
            removal = removal_from_dict(message.payload)
        except ValueError as exc:
            log.warning("%s from %s not recorded: %s", message.type, message.source, exc)
            return
        self.record_removal(removal, message.source)  # once: a repeat (or one after the logs were read) changes nothing

    def _handle(self, message: msg.Message) -> None:
        if message.type in (msg.HEARTBEAT, msg.HANDSHAKE):
            info = node_info_from_dict(message.payload["NodeInfo"])
            self.nodes.heartbeat(info)
            if self.nodes.claim_reconcile(info.NodeID, force=message.type == msg.HANDSHAKE):
                for part in reconcile_messages(self.store, info.NodeID):
                    self.transport.send(part)
            return
        if message.type == msg.SPANS:
            self.telemetry.store_spans(message.payload.get("Spans") or [])
            return
        if message.type == msg.FILES_REMOVED:
            self._files_removed(message)
            return
        exec_id = message.payload.get("ExecutionID", "")
        try:
            ex = self.store.get_execution(exec_id)
        except LookupError:
            log.warning("%s for unknown execution %s", message.type, exec_id)
            return
        if ex.state.terminal or (message.type == msg.BID_RESULT and ex.state != ComputeState.ASK_FOR_BID):
            self._stale(message, exec_id)  # a repeated or late report: delivery is at-least-once
            return
        freed = False
        with self.store.tx():
            if message.type == msg.BID_RESULT:
                accepted = bool(message.payload.get("Accepted"))
                self.metrics.bids.add(1, {"accepted": accepted})
                if not accepted:
                    new = ComputeState.ASK_FOR_BID_REJECTED
                elif ex.DesiredState is DesiredState.RUNNING:
                    new = ComputeState.BID_ACCEPTED
                else:
                    new = ComputeState.ASK_FOR_BID_ACCEPTED
                reason = message.payload.get("Reason", "")
                updated = self.store.update_execution(exec_id, compute=new, message=reason or None)
                freed = not accepted
            elif message.type == msg.RUN_RESULT:
                result = run_result_from_dict(message.payload)
                updated = self.store.update_execution(
                    exec_id, compute=ComputeState.COMPLETED, desired=DesiredState.STOPPED, message="",
                    run_output=result.RunOutput, published=result.PublishedResult)
                freed = True
            elif message.type == msg.COMPUTE_ERROR:
                error = compute_error_from_dict(message.payload)
                updated = self.store.update_execution(
                    exec_id, compute=ComputeState.FAILED, desired=DesiredState.STOPPED,
                    message=error.Error or "execution failed", run_output=error.RunOutput, retryable=error.Retryable)
                freed = True
            elif message.type == msg.EXECUTION_RUNNING:
                # only recorded: the guest starting changes nothing the scheduler decides
                self.store.update_execution(exec_id, compute=ComputeState.RUNNING)
                return
            else:
                log.warning("unexpected message %s from %s", message.type, message.source)
                return
            if updated is None:  # it became final while this report was on its way
                self._stale(message, exec_id)
                return
            job = self.store.get_job(ex.JobID)
            self.store.create_evaluation(job.ID, "exec-update", job.TraceParent)
            if freed:  # capacity came free: queued jobs may fit now (unless a pass is due anyway)
                for queued_id, trace_parent in self.store.job_refs_in_states((JobState.QUEUED,)):
                    if queued_id != job.ID and not self.broker.has_due(queued_id):
                        self.store.create_evaluation(queued_id, "exec-limit", trace_parent)
