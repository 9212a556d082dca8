"""A compute node: bids on executions, queues and runs them, publishes their results.

Flow of one execution: ``AskForBid`` -> the bidder accepts or rejects it with a reason
(``BidResult``); ``BidAccepted`` -> the executor buffer queues it until the node has
the CPU and memory free; a worker thread prepares the inputs, runs the module through
the Wasm executor inside an ``execution`` span, publishes the results (``publish``
span) and reports ``RunResult`` or ``ComputeError``. ``CancelExecution`` drops a queued
execution or interrupts a running one. All state lives in the node's SQLite execution
store; executions left unfinished by a previous run of the node are failed at start.
"""
from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from opentelemetry import context as otel_context
from opentelemetry.trace import Status, StatusCode

from ..executor.output import read_tail, shrink_file
from ..executor.types import ExecutionOutcome, ExecutionRequest, Mount
from ..models import AllowedPath, allocation_to_dict, job_from_dict
from ..states import ComputeState
from ..telemetry import Telemetry
from ..transport import Transport
from ..transport import messages as msg
from .download import Cancelled, Deadline, UrlGuard
from .inputs import InputContext, InputError, InputTimeout, module_name, prepare_inputs, read_module
from .paths import PathError, open_nofollow, plain_name, remove_tree, resolve_allowed
from .policy import NodePolicy
from .publisher import publish_local, result_archive
from .reconcile import reconcile
from .retention import Janitor
from .store import ExecutionStore

log = logging.getLogger(__name__)

TRACER_NAME = "cod_reference.compute"
OUTPUT_HEAD_BYTES = 4096
#: the node's own files in a published result: a result path may not take their names
RESERVED_RESULT_NAMES = ("stdout", "stderr", "exitCode")
STDERR_TAIL_BYTES = 512


class Executor(Protocol):
    def run(self, request: ExecutionRequest, cancel: threading.Event | None = None) -> ExecutionOutcome: ...


def default_capacity() -> dict[str, float]:
    """80 % of this machine's CPUs and memory, like Bacalhau's default allocation."""
    cpus = os.cpu_count() or 1
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = 4 * 2**30
    return {"CPU": round(cpus * 0.8, 2), "Memory": float(int(memory * 0.8))}


@dataclass
class ComputeConfig:
    node_id: str
    labels: dict[str, str] = field(default_factory=dict)
    capacity: dict[str, float] = field(default_factory=default_capacity)
    allowed_local_paths: list[str] = field(default_factory=list)
    heartbeat_interval_s: float = 1.0
    #: base URL under which the API serves this node's published results
    results_url: str = ""
    #: a node that fails every execution at start (Bacalhau's "bad actor", for testing retries)
    bad: bool = False
    #: the operator's limits on the jobs this node runs
    policy: NodePolicy = field(default_factory=NodePolicy)


@dataclass
class _LocalExecution:
    """An execution this node accepted: in the executor buffer's queue, then running."""

    record: dict[str, Any]
    resources: dict[str, float]
    cancel: threading.Event = field(default_factory=threading.Event)
    #: what must stay open while the guest runs (pinned local inputs); closed when it ends
    keep_open: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)


class ComputeNode:
    def __init__(self, data_dir: str | Path, transport: Transport, executor: Executor, telemetry: Telemetry,
                 config: ComputeConfig) -> None:
        self.config = config
        self.node_id = config.node_id
        self.dir = Path(data_dir)
        self.transport = transport
        self.executor = executor
        self.tracer = telemetry.tracer(TRACER_NAME)
        meter = telemetry.meter(TRACER_NAME)
        self._active_gauge = meter.create_up_down_counter("cod.executions.active",
                                                          description="executions running on compute nodes")
        self._exec_duration = meter.create_histogram("cod.execution.duration", unit="s",
                                                     description="time executions spent running")
        self._bids = meter.create_counter("cod.bids.made", description="bids made by compute nodes")
        self.store = ExecutionStore(self.dir / "executions.db")
        self.results_dir = self.dir / "results"
        self.allowed = [AllowedPath.parse(p) for p in config.allowed_local_paths]
        self.url_guard = UrlGuard(config.policy.allow_url_hosts)
        self.janitor = Janitor(self.dir, self.store, config.policy)
        self._lock = threading.Lock()
        self._queue: list[_LocalExecution] = []
        self._running: dict[str, _LocalExecution] = {}
        self._used = {"CPU": 0.0, "Memory": 0.0}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        for rec in self.store.live():  # the node went down while these were live
            self.store.set_state(rec["ID"], ComputeState.FAILED, "failed due to node restart")
            self._send(msg.COMPUTE_ERROR, {"ExecutionID": rec["ID"], "Error": "failed due to node restart",
                                           "Retryable": True})
        self.transport.subscribe(self.node_id, self._handle)
        self.handshake()
        self.transport.on_reconnect(self.handshake)
        thread = threading.Thread(target=self._heartbeats, name=f"cod-heartbeat-{self.node_id}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self.transport.unsubscribe(self.node_id)
        with self._lock:
            for run in list(self._running.values()):
                run.cancel.set()
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=10)
        self.store.close()

    def info(self) -> dict[str, Any]:
        with self._lock:
            available = {k: self.config.capacity[k] - self._used[k] for k in self._used}
            queued = len(self._queue)
            running = len(self._running)
        return {"NodeID": self.node_id, "NodeType": "Compute", "Labels": dict(self.config.labels),
                "Engines": ["wasm"], "Publishers": ["local", "noop"],
                "StorageSources": ["inline", "local", "urlDownload"],
                "LocalPaths": [str(a) for a in self.allowed],
                "MaxCapacity": dict(self.config.capacity), "AvailableCapacity": available,
                "RunningExecutions": running, "EnqueuedExecutions": queued}

    def heartbeat(self) -> None:
        self._send(msg.HEARTBEAT, {"NodeInfo": self.info()})

    def handshake(self) -> None:
        """Announce this node (at start, and after the transport reconnected): the orchestrator answers
        with the executions it believes are here, see :mod:`.reconcile`."""
        if not self._stop.is_set():
            self._send(msg.HANDSHAKE, {"NodeInfo": self.info()})

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

    def _send(self, type_: str, payload: dict[str, Any], ctx: otel_context.Context | None = None) -> None:
        self.transport.send(msg.make_message(type_, self.node_id, msg.ORCHESTRATOR, payload, ctx))

    report = _send

    # ------------------------------------------------------------------ messages

    def _handle(self, message: msg.Message) -> None:
        if message.type == msg.ASK_FOR_BID:
            self._ask_for_bid(message)
        elif message.type == msg.BID_ACCEPTED:
            self.approve(message.payload["ExecutionID"], message)
        elif message.type == msg.BID_REJECTED:
            self.store.set_state(message.payload["ExecutionID"], ComputeState.BID_REJECTED, "another bid won")
        elif message.type == msg.CANCEL_EXECUTION:
            self._cancel(message.payload["ExecutionID"], message.payload.get("Reason", ""))
        elif message.type == msg.RECONCILE:
            reconcile(self, message)
        else:
            log.warning("%s got unexpected message %s", self.node_id, message.type)

    def approve(self, exec_id: str, message: msg.Message) -> None:
        """The orchestrator chose this node's bid: queue the execution (once, however often it is said)."""
        rec = self.store.get(exec_id)
        if rec and rec["State"] == ComputeState.ASK_FOR_BID_ACCEPTED.value \
                and self.store.set_state(exec_id, ComputeState.BID_ACCEPTED, "bid accepted"):
            self._enqueue(rec, message)

    def bid(self, job: dict[str, Any]) -> str:
        """Why this node will not run ``job`` ("" if it will)."""
        task = job["Tasks"][0]
        if task["Engine"]["Type"] != "wasm":
            return f"engine {task['Engine']['Type']!r} is not installed"
        spec = job_from_dict(job)
        need = allocation_to_dict(spec.needs())
        for key in ("CPU", "Memory"):
            if need[key] > self.config.capacity[key]:
                return f"job needs {key} {need[key]:g} but this node has {self.config.capacity[key]:g}"
        for path in spec.local_inputs():
            try:
                resolve_allowed(path, self.allowed, writable=False)
            except PathError:
                return f"local input {path} is not allow-listed on this node"
        return ""

    def _ask_for_bid(self, message: msg.Message) -> None:
        execution, job = message.payload["Execution"], message.payload["Job"]
        exec_id = execution["ID"]
        with self.tracer.start_as_current_span("bid", context=message.context(),
                                               attributes={"cod.node_id": self.node_id, "cod.execution_id": exec_id,
                                                           "cod.job_id": job["ID"]}) as span:
            if not self.store.add(execution, job, message.trace_context):
                return
            reason = self.bid(job)
            accepted = not reason
            span.set_attribute("cod.bid", "accepted" if accepted else "rejected")
            if reason:
                span.set_attribute("cod.bid_reason", reason)
            self._bids.add(1, {"accepted": accepted})
            run_now = execution["DesiredState"]["StateType"] == "Running"
            if not accepted:
                self.store.set_state(exec_id, ComputeState.ASK_FOR_BID_REJECTED, reason)
            else:
                self.store.set_state(exec_id, ComputeState.BID_ACCEPTED if run_now else ComputeState.ASK_FOR_BID_ACCEPTED)
            self._send(msg.BID_RESULT, {"ExecutionID": exec_id, "Accepted": accepted, "Reason": reason})
        if accepted and run_now:  # ops jobs skip the bid round
            rec = self.store.get(exec_id)
            if rec:
                self._enqueue(rec, message)

    # ------------------------------------------------------------------ executor buffer

    def _enqueue(self, rec: dict[str, Any], message: msg.Message) -> None:
        rec = dict(rec, Trace=message.trace_context)
        run = _LocalExecution(rec, allocation_to_dict(job_from_dict(rec["Job"]).needs()))
        with self._lock:
            self._queue.append(run)
            self._queue.sort(key=lambda r: -int(r.record["Job"].get("Priority") or 0))
        self._start_fitting()

    def _start_fitting(self) -> None:
        """Start every queued execution that fits in the free capacity (smaller ones may overtake)."""
        with self._lock:
            if self._stop.is_set():
                return
            for run in list(self._queue):
                if len(self._running) >= self.config.policy.max_running_executions:
                    break  # tiny CPU requests must not start unbounded threads
                fits = all(self._used[k] + run.resources[k] <= self.config.capacity[k] + 1e-9 for k in self._used)
                if not fits:
                    continue
                self._queue.remove(run)
                for key in self._used:
                    self._used[key] += run.resources[key]
                self._running[run.record["ID"]] = run
                thread = threading.Thread(target=self._execute, args=(run,), daemon=True,
                                          name=f"cod-exec-{run.record['ID'][:10]}")
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)
                thread.start()

    def cancel(self, exec_id: str, reason: str) -> None:
        self._cancel(exec_id, reason)

    def _cancel(self, exec_id: str, reason: str) -> None:
        with self._lock:
            queued = next((r for r in self._queue if r.record["ID"] == exec_id), None)
            if queued:
                self._queue.remove(queued)
            running = self._running.get(exec_id)
        self.store.set_state(exec_id, ComputeState.CANCELLED, reason or "cancelled")
        if running:
            running.cancel.set()

    def _finish(self, run: _LocalExecution) -> None:
        with self._lock:
            self._running.pop(run.record["ID"], None)
            for key in self._used:
                self._used[key] = max(0.0, self._used[key] - run.resources[key])
        self._start_fitting()

    # ------------------------------------------------------------------ running one execution

    def _execute(self, run: _LocalExecution) -> None:
        rec = run.record
        exec_id, job = rec["ID"], rec["Job"]
        parent = msg.extract_context(rec["Trace"])
        self._active_gauge.add(1)
        t0 = time.monotonic()
        try:
            with self.tracer.start_as_current_span(
                    "execution", context=parent,
                    attributes={"cod.node_id": self.node_id, "cod.execution_id": exec_id, "cod.job_id": job["ID"],
                                "cod.partition": rec["Execution"]["PartitionIndex"]}) as span:
                try:
                    payload, kind = self._run(run)
                except Exception as exc:  # never let one execution take the node down
                    log.exception("execution %s crashed", exec_id)
                    payload, kind = {"ExecutionID": exec_id, "Error": f"internal error: {exc}",
                                     "Retryable": True}, msg.COMPUTE_ERROR
                finally:  # the inputs were copies (inline data, downloads) needed only while the guest ran
                    run.keep_open.close()
                    _remove_quietly(self.dir / "executions" / exec_id / "inputs")
                if kind == msg.COMPUTE_ERROR:
                    span.set_status(Status(StatusCode.ERROR, payload["Error"]))
                    if self.store.set_state(exec_id, ComputeState.FAILED, payload["Error"], result=payload):
                        self._send(kind, payload)
                elif kind == msg.RUN_RESULT:
                    if self.store.set_state(exec_id, ComputeState.COMPLETED, "", result=payload):
                        self._send(kind, payload)
                # cancelled: the orchestrator already knows
        finally:
            self._active_gauge.add(-1)
            self._exec_duration.record(time.monotonic() - t0, {"node_id": self.node_id})
            self._finish(run)

    def _run(self, run: _LocalExecution) -> tuple[dict[str, Any], str]:
        rec = run.record
        exec_id, job, execution = rec["ID"], rec["Job"], rec["Execution"]
        task = job["Tasks"][0]
        if not self.store.set_state(exec_id, ComputeState.RUNNING, ""):
            return {}, ""  # cancelled while queued
        self._send(msg.EXECUTION_RUNNING, {"ExecutionID": exec_id})
        if self.config.bad:
            return {"ExecutionID": exec_id, "Error": "i am a bad node", "Retryable": True}, msg.COMPUTE_ERROR
        exec_dir = self.dir / "executions" / exec_id
        outputs = exec_dir / "outputs"
        exec_dir.mkdir(parents=True, exist_ok=True)
        spec = job_from_dict(job)
        # the execution's clock starts now: downloading its inputs is part of it
        timeout = spec.Task.Timeouts.execution_timeout() or self.config.policy.default_execution_timeout_s
        deadline = Deadline(time.monotonic() + timeout, run.cancel)
        try:
            ctx = InputContext(self.allowed, self.url_guard, self.config.policy, deadline, run.keep_open)
            mounts = prepare_inputs(task.get("InputSources") or [], exec_dir / "inputs", ctx)
            params = task["Engine"]["Params"]
            module = read_module(params["EntryModule"], mounts)
            imports = [(module_name(p), read_module(p, mounts)) for p in params.get("ImportModules") or []]
        except Cancelled:
            return {}, ""
        except InputTimeout as exc:
            return {"ExecutionID": exec_id, "Error": f"timeout after {timeout:g}s while preparing inputs: {exc}",
                    "Retryable": False}, msg.COMPUTE_ERROR
        except InputError as exc:
            return {"ExecutionID": exec_id, "Error": str(exc), "Retryable": True}, msg.COMPUTE_ERROR
        for result in task.get("ResultPaths") or []:
            bad_name = plain_name(result["Name"], reserved=RESERVED_RESULT_NAMES)
            if bad_name:
                return {"ExecutionID": exec_id, "Error": f"result path name {bad_name}", "Retryable": False}, \
                    msg.COMPUTE_ERROR
            host = outputs / result["Name"]
            host.mkdir(parents=True, exist_ok=True)
            mounts.append(Mount(str(host), result["Path"], readonly=False))
        env = dict(task.get("Env") or {})
        count = job["Count"] if job["Type"] == "batch" else 1
        env.update({"BACALHAU_JOB_ID": job["ID"], "BACALHAU_EXECUTION_ID": exec_id, "BACALHAU_JOB_TYPE": job["Type"],
                    "BACALHAU_PARTITION_INDEX": str(execution["PartitionIndex"]),
                    "BACALHAU_PARTITION_COUNT": str(max(count, 1)), "BACALHAU_NODE_ID": self.node_id})
        request = ExecutionRequest(
            execution_id=exec_id, module=module, entrypoint=params.get("Entrypoint") or "_start",
            args=list(params.get("Parameters") or []), env=env, mounts=mounts, import_modules=imports,
            memory_limit_bytes=int(spec.needs().Memory),  # what the scheduler charged, default included
            timeout_s=max(deadline.remaining() or 0.0, 0.001), stdout_path=str(exec_dir / "stdout"),
            stderr_path=str(exec_dir / "stderr"), output_head_bytes=OUTPUT_HEAD_BYTES,
            module_name=posixpath.basename(str(params["EntryModule"]).rstrip("/")))
        outcome = self.executor.run(request, run.cancel)
        _write_node_file(exec_dir / "exitCode", "" if outcome.exit_code is None else str(outcome.exit_code))
        run_output = {"Stdout": outcome.stdout_head, "StdoutTruncated": outcome.stdout_truncated,
                      "stderr": outcome.stderr_head, "StderrTruncated": outcome.stderr_truncated,
                      "ExitCode": outcome.exit_code, "ErrorMsg": outcome.error or "",
                      "ErrorKind": outcome.error_kind or "", "DurationSeconds": round(outcome.duration_s, 6)}
        if outcome.error_kind == "cancelled" or run.cancel.is_set():
            return {}, ""
        if not outcome.succeeded:
            keep = self.config.policy.failed_stream_keep_bytes
            for stream in ("stdout", "stderr"):  # a failed run's logs are for diagnosis: their ends suffice
                with contextlib.suppress(FileNotFoundError):
                    shrink_file(exec_dir / stream, keep // 2, keep - keep // 2)
            if outcome.error_kind == "timeout":  # the executor had what was left after the inputs
                error = f"timeout after {timeout:g}s"
            elif outcome.error:
                error = outcome.error
            else:
                error = f"exited with code {outcome.exit_code}"
                tail = _stderr_line(exec_dir / "stderr")
                if tail:
                    error += f": {tail}"
            return {"ExecutionID": exec_id, "Error": error, "Retryable": False, "RunOutput": run_output}, \
                msg.COMPUTE_ERROR
        published: dict[str, Any] = {}
        if (task.get("Publisher") or {}).get("Type", "local") == "local":
            if not self.store.set_state(exec_id, ComputeState.PUBLISHING, ""):
                return {}, ""
            with self.tracer.start_as_current_span("publish", attributes={"cod.publisher": "local",
                                                                          "cod.execution_id": exec_id}):
                published = publish_local(exec_id, exec_dir, self.results_dir, self.config.results_url)
        return {"ExecutionID": exec_id, "RunOutput": run_output, "PublishedResult": published}, msg.RUN_RESULT

    # ------------------------------------------------------------------ reading results and logs

    def read_output(self, execution_id: str, stream: str, offset: int, limit: int = 1 << 20) -> tuple[bytes, bool]:
        """Bytes of an execution's stdout/stderr from ``offset``, and whether it has ended."""
        if stream not in ("stdout", "stderr") or plain_name(execution_id):
            raise ValueError(f"no such stream {stream!r}")
        rec = self.store.get(execution_id)
        done = rec is None or ComputeState(rec["State"]).terminal or ComputeState(rec["State"]) == ComputeState.PUBLISHING
        path = self.dir / "executions" / execution_id / stream
        try:
            with open(open_nofollow(path), "rb") as fh:
                if offset >= os.fstat(fh.fileno()).st_size:  # past the end (seek would refuse a huge offset)
                    return b"", done
                fh.seek(offset)
                return fh.read(limit), done
        except FileNotFoundError:
            return b"", done

    def result_archive(self, execution_id: str) -> Path | None:
        return result_archive(self.results_dir, execution_id)


def _remove_quietly(path: Path) -> None:
    try:
        remove_tree(path)
    except OSError as exc:
        log.warning("cannot remove %s: %s", path, exc)


def _write_node_file(path: Path, text: str) -> None:
    """Write a file of the node's own in an execution's directory (never through a link)."""
    with open(open_nofollow(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "w") as fh:
        fh.write(text)


def _stderr_line(path: Path) -> str:
    """The end of an execution's stderr on one line (for the error of a non-zero exit)."""
    try:
        text, _ = read_tail(str(path), STDERR_TAIL_BYTES)
    except OSError:
        return ""
    return text.strip().replace("\n", " | ")
