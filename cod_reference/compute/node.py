"""A compute node: bids on executions, queues and runs them, publishes their results.

Its parts, as in Bacalhau: the :class:`~.bidder.Bidder` answers ``AskForBid``; accepted
executions wait in the :class:`~.buffer.ExecutorBuffer` until the node has their CPU and
memory free; the :class:`~.runner.ExecutionRunner` prepares the inputs, runs the module
through the Wasm executor inside an ``execution`` span, publishes the results
(``publish`` span) and reports ``RunResult`` or ``ComputeError``; the
:class:`~.handler.MessageHandler` routes the orchestrator's messages to them.
``CancelExecution`` drops a queued execution or interrupts a running one. All state
lives in the node's SQLite execution store; executions left unfinished by a previous run
of the node are failed at start. This class wires the parts and owns the node's
lifecycle, heartbeats and what the API reads (logs, result archives).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from opentelemetry import context as otel_context

from ..models import AllowedPath, NodeInfo, Removal, Removed, node_info_to_dict, removal_to_dict
from ..states import ComputeState
from ..telemetry import Telemetry
from ..transport import Transport
from ..transport import messages as msg
from .bidder import Bidder
from .buffer import ExecutorBuffer
from .config import ComputeConfig, Executor, default_capacity
from .handler import MessageHandler
from .paths import open_nofollow, plain_name
from .publisher import result_archive
from .reconcile import Rounds, reconcile
from .retention import Janitor
from .runner import ExecutionRunner
from .store import ExecutionStore

__all__ = ["ComputeConfig", "ComputeNode", "Executor", "default_capacity"]

log = logging.getLogger(__name__)

TRACER_NAME = "cod_reference.compute"


class ComputeNode:
    def __init__(self, data_dir: str | Path, transport: Transport, executor: Executor, telemetry: Telemetry,
                 config: ComputeConfig) -> None:
        self.config = config
        self.node_id = config.node_id
        self.dir = Path(data_dir)
        self.transport = transport
        self.executor = executor
        tracer = telemetry.tracer(TRACER_NAME)
        meter = telemetry.meter(TRACER_NAME)
        self.store = ExecutionStore(self.dir / "executions.db")
        self.results_dir = self.dir / "results"
        self.allowed = [AllowedPath.parse(p) for p in config.allowed_local_paths]
        self.janitor = Janitor(self.dir, self.store, config.policy, self.node_id, self._removed)
        self.runner = ExecutionRunner(self.dir, config, executor, self.store, self.allowed, self.report, tracer, meter)
        self.buffer = ExecutorBuffer(config.max_capacity, config.policy.max_running_executions, self.runner.run)
        self.bidder = Bidder(self.node_id, config.max_capacity, self.allowed, self.store, self.report, tracer, meter,
                             accepted=lambda local, message: self.buffer.enqueue(local, message.trace_context))
        self.reconcile_rounds = Rounds()  # parts of a reconciliation round received so far
        self.handler = MessageHandler(self.node_id, {
            msg.ASK_FOR_BID: self.bidder.ask_for_bid,
            msg.BID_ACCEPTED: lambda m: self.approve(m.payload["ExecutionID"], m),
            msg.BID_REJECTED: lambda m: self.reject(m.payload["ExecutionID"]),
            msg.CANCEL_EXECUTION: lambda m: self.cancel(m.payload["ExecutionID"], m.payload.get("Reason", "")),
            msg.RECONCILE: lambda m: reconcile(self, m),
        })
        self._stop = threading.Event()
        self._heartbeat_thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        for local in self.store.live():  # the node went down while these were live
            self.store.set_state(local.ID, ComputeState.FAILED, "failed due to node restart")
            self.report(msg.COMPUTE_ERROR, {"ExecutionID": local.ID, "Error": "failed due to node restart",
                                            "Retryable": True})
        self.transport.subscribe(self.node_id, self.handler)
        self.handshake()
        self.transport.on_reconnect(self.handshake)
        self._heartbeat_thread = threading.Thread(target=self._heartbeats, name=f"cod-heartbeat-{self.node_id}",
                                                  daemon=True)
        self._heartbeat_thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.transport.unsubscribe(self.node_id)
        threads = self.buffer.stop()
        if self._heartbeat_thread is not None:
            threads.append(self._heartbeat_thread)
        for thread in threads:
            thread.join(timeout=10)
        self.store.close()

    def info(self) -> NodeInfo:
        available, queued, running = self.buffer.usage()
        return NodeInfo(self.node_id, NodeType="Compute", Labels=dict(self.config.labels), Engines=["wasm"],
                        Publishers=["local", "noop"], StorageSources=["inline", "local", "urlDownload"],
                        LocalPaths=[str(a) for a in self.allowed], MaxCapacity=self.config.max_capacity,
                        AvailableCapacity=available, RunningExecutions=running, EnqueuedExecutions=queued,
                        APIURL=self.config.api_url)

    def heartbeat(self) -> None:
        self.report(msg.HEARTBEAT, {"NodeInfo": node_info_to_dict(self.info())})

    def handshake(self) -> None:
        """Announce this node (at start, and after the transport reconnected): the orchestrator answers
        with the executions it believes are here, see :mod:`.reconcile`."""
        if not self._stop.is_set():
            self.report(msg.HANDSHAKE, {"NodeInfo": node_info_to_dict(self.info())})

    def _heartbeats(self) -> None:
        next_sweep = time.monotonic()
        while True:
            if time.monotonic() >= next_sweep:  # retention runs on this thread too
                next_sweep = time.monotonic() + self.config.policy.retention_sweep_s
                try:
                    self.janitor.sweep()
                except Exception:
                    log.exception("retention sweep of %s failed", self.node_id)
            if self._stop.wait(self.config.heartbeat_interval_s):
                return
            try:
                self.heartbeat()
            except Exception:
                log.exception("heartbeat of %s failed", self.node_id)

    def _removed(self, removal: Removal) -> None:
        """Retention removed an execution's files: the orchestrator shows it with the execution and counts it."""
        self.report(msg.FILES_REMOVED, removal_to_dict(removal), otel_context.Context())

    def report(self, type_: str, payload: dict[str, Any], ctx: otel_context.Context | None = None) -> None:
        """Send a message to the orchestrator."""
        self.transport.send(msg.make_message(type_, self.node_id, msg.ORCHESTRATOR, payload, ctx))

    # ------------------------------------------------------------------ what the orchestrator decides

    def approve(self, exec_id: str, message: msg.Message) -> None:
        """The orchestrator chose this node's bid: queue the execution (once, however often it is said)."""
        local = self.store.get(exec_id)
        if local and local.state is ComputeState.ASK_FOR_BID_ACCEPTED \
                and self.store.set_state(exec_id, ComputeState.BID_ACCEPTED, "bid accepted"):
            self.buffer.enqueue(local, message.trace_context)

    def reject(self, exec_id: str) -> None:
        """Another node's bid won."""
        self.store.set_state(exec_id, ComputeState.BID_REJECTED, "another bid won")

    def cancel(self, exec_id: str, reason: str) -> None:
        self.store.set_state(exec_id, ComputeState.CANCELLED, reason or "cancelled")
        self.buffer.cancel(exec_id)

    # ------------------------------------------------------------------ reading results and logs

    def read_output(self, execution_id: str, stream: str, offset: int, limit: int = 1 << 20) -> tuple[bytes, bool]:
        """Bytes of an execution's stdout/stderr from ``offset``, and whether it has ended; raises
        :class:`~cod_reference.models.Removed` when retention removed them."""
        if stream not in ("stdout", "stderr") or plain_name(execution_id):
            raise ValueError(f"no such stream {stream!r}")
        local = self.store.get(execution_id)
        done = local is None or local.state.terminal or local.state is ComputeState.PUBLISHING
        path = self.dir / "executions" / execution_id / stream
        try:
            with open(open_nofollow(path), "rb") as fh:
                if offset >= os.fstat(fh.fileno()).st_size:  # past the end (seek would refuse a huge offset)
                    return b"", done
                fh.seek(offset)
                return fh.read(limit), done
        except FileNotFoundError:
            self._check_removed(execution_id, "logs")
            return b"", done

    def result_archive(self, execution_id: str) -> Path | None:
        """The published archive of an execution, None when there is none; raises
        :class:`~cod_reference.models.Removed` when retention removed it."""
        path = result_archive(self.results_dir, execution_id)
        if path is None and not plain_name(execution_id):
            self._check_removed(execution_id, "results")
        return path

    def _check_removed(self, execution_id: str, what: str) -> None:
        removal = self.store.removal(execution_id)
        if removal is not None:
            raise Removed(removal, what)
