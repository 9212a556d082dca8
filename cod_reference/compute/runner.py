"""Running one accepted execution: its inputs, the Wasm executor, its results, and the
report of how it ended (Bacalhau's compute-side executor).

The steps, each a verb of its own: :meth:`ExecutionRunner.run` (the ``execution`` span,
metrics, the report) → :meth:`~ExecutionRunner._attempt` → :meth:`~ExecutionRunner._prepare`
(inputs, modules, result paths, environment) → the Wasm executor's ``run`` →
:meth:`~ExecutionRunner._conclude` (the outcome as a report) → :meth:`~ExecutionRunner._publish`.
"""
from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.trace import Status, StatusCode

from ..executor.output import read_tail, shrink_file
from ..executor.types import ExecutionOutcome, ExecutionRequest, Mount
from ..models import AllowedPath, ComputeError, PublisherType, RunResult, parse_size, report_to_dict
from ..states import ComputeState
from ..transport import messages as msg
from .buffer import Admitted
from .config import ComputeConfig, Executor
from .download import Cancelled, Deadline, UrlGuard
from .inputs import InputContext, InputError, InputTimeout, module_name, prepare_inputs, read_module
from .paths import open_nofollow, plain_name, remove_tree
from .publisher import publish_local
from .store import ExecutionStore

log = logging.getLogger(__name__)

OUTPUT_HEAD_BYTES = 4096
#: the node's own files in a published result: a result path may not take their names
RESERVED_RESULT_NAMES = ("stdout", "stderr", "exitCode")
STDERR_TAIL_BYTES = 512

Send = Callable[[str, dict[str, Any]], None]
#: how an attempt ended: the report to send, or None when there is nothing to report (cancelled)
Ending = RunResult | ComputeError | None


class _Stop(Exception):
    """The attempt ends here with ``ending`` (an input failed, the execution was cancelled...)."""

    def __init__(self, ending: Ending) -> None:
        super().__init__(type(ending).__name__)
        self.ending = ending


class ExecutionRunner:
    def __init__(self, node_dir: Path, config: ComputeConfig, executor: Executor, store: ExecutionStore,
                 allowed: list[AllowedPath], report: Send, tracer: trace.Tracer, meter: metrics.Meter) -> None:
        self.dir = node_dir
        self.results_dir = node_dir / "results"
        self.config = config
        self.node_id = config.node_id
        self.executor = executor
        self.store = store
        self.allowed = allowed
        self.url_guard = UrlGuard(config.policy.allow_url_hosts)
        self.report = report
        self.tracer = tracer
        self._active = meter.create_up_down_counter("cod.executions.active",
                                                    description="executions running on compute nodes")
        self._duration = meter.create_histogram("cod.execution.duration", unit="s",
                                                description="time executions spent running")

    def run(self, admitted: Admitted) -> None:
        """Run ``admitted`` to its end and report it; never raises (one execution cannot take the node down)."""
        local = admitted.local
        exec_id = local.ID
        self._active.add(1)
        t0 = time.monotonic()
        try:
            with self.tracer.start_as_current_span(
                    "execution", context=msg.extract_context(admitted.trace),
                    attributes={"cod.node_id": self.node_id, "cod.execution_id": exec_id, "cod.job_id": local.job.ID,
                                "cod.partition": local.execution.PartitionIndex}) as span:
                try:
                    ending = self._attempt(admitted)
                except Exception as exc:
                    log.exception("execution %s crashed", exec_id)
                    ending = ComputeError(exec_id, f"internal error: {exc}")
                finally:  # the inputs were copies (inline data, downloads) needed only while the guest ran
                    admitted.keep_open.close()
                    _remove_quietly(self.dir / "executions" / exec_id / "inputs")
                if isinstance(ending, ComputeError):
                    span.set_status(Status(StatusCode.ERROR, ending.Error))
                    if self.store.set_state(exec_id, ComputeState.FAILED, ending.Error, result=ending):
                        self.report(msg.COMPUTE_ERROR, report_to_dict(ending))
                elif isinstance(ending, RunResult):
                    if self.store.set_state(exec_id, ComputeState.COMPLETED, "", result=ending):
                        self.report(msg.RUN_RESULT, report_to_dict(ending))
                # None: cancelled, and the orchestrator already knows
        finally:
            self._active.add(-1)
            self._duration.record(time.monotonic() - t0, {"node_id": self.node_id})

    def _attempt(self, admitted: Admitted) -> Ending:
        exec_id = admitted.ID
        if not self.store.set_state(exec_id, ComputeState.RUNNING, ""):
            return None  # cancelled while queued
        self.report(msg.EXECUTION_RUNNING, {"ExecutionID": exec_id})
        if self.config.bad:
            return ComputeError(exec_id, "i am a bad node")
        exec_dir = self.dir / "executions" / exec_id
        exec_dir.mkdir(parents=True, exist_ok=True)
        # the execution's clock starts now: downloading its inputs is part of it
        policy = self.config.policy
        timeout = admitted.local.job.Task.Timeouts.execution_timeout() or policy.default_execution_timeout_s
        if policy.max_execution_timeout_s is not None:
            timeout = min(timeout, policy.max_execution_timeout_s)
        deadline = Deadline(time.monotonic() + timeout, admitted.cancel)
        try:
            request = self._prepare(admitted, exec_dir, deadline, timeout)
        except _Stop as stop:
            return stop.ending
        outcome = self.executor.run(request, admitted.cancel)
        _write_node_file(exec_dir / "exitCode", "" if outcome.exit_code is None else str(outcome.exit_code))
        if outcome.error_kind == "cancelled" or admitted.cancel.is_set():
            return None
        ending = self._conclude(exec_id, outcome, exec_dir, timeout)
        if isinstance(ending, RunResult) and admitted.local.job.Task.Publisher is PublisherType.LOCAL:
            if not self.store.set_state(exec_id, ComputeState.PUBLISHING, ""):
                return None
            ending.PublishedResult = self._publish(exec_id, exec_dir)
        return ending

    def _prepare(self, admitted: Admitted, exec_dir: Path, deadline: Deadline, timeout: float) -> ExecutionRequest:
        """What the executor needs: the mounts, the modules, argv, the environment and the limits."""
        exec_id, job, execution = admitted.ID, admitted.local.job, admitted.local.execution
        task = job.Task
        try:
            ctx = InputContext(self.allowed, self.url_guard, self.config.policy, deadline, admitted.keep_open)
            mounts = prepare_inputs(task.InputSources, exec_dir / "inputs", ctx)
            module = read_module(task.Engine.EntryModule, mounts)
            imports = [(module_name(p), read_module(p, mounts)) for p in task.Engine.ImportModules]
        except Cancelled:
            raise _Stop(None) from None
        except InputTimeout as exc:
            raise _Stop(ComputeError(exec_id, f"timeout after {timeout:g}s while preparing inputs: {exc}",
                                     Retryable=False)) from None
        except InputError as exc:
            raise _Stop(ComputeError(exec_id, str(exc))) from None
        for result in task.ResultPaths:
            bad_name = plain_name(result.Name, reserved=RESERVED_RESULT_NAMES)
            if bad_name:
                raise _Stop(ComputeError(exec_id, f"result path name {bad_name}", Retryable=False))
            host = exec_dir / "outputs" / result.Name
            host.mkdir(parents=True, exist_ok=True)
            mounts.append(Mount(str(host), result.Path, readonly=False))
        env = dict(task.Env)
        env.update({"BACALHAU_JOB_ID": job.ID, "BACALHAU_EXECUTION_ID": exec_id, "BACALHAU_JOB_TYPE": job.Type.value,
                    "BACALHAU_PARTITION_INDEX": str(execution.PartitionIndex),
                    "BACALHAU_PARTITION_COUNT": str(job.partitions), "BACALHAU_NODE_ID": self.node_id})
        return ExecutionRequest(
            execution_id=exec_id, module=module, entrypoint=task.Engine.Entrypoint or "_start",
            args=list(task.Engine.Parameters), env=env, mounts=mounts, import_modules=imports,
            memory_limit_bytes=int(job.needs().Memory),  # what the scheduler charged, default included
            max_written_bytes=self._result_cap(task.Resources.Disk),
            timeout_s=max(deadline.remaining() or 0.0, 0.001), stdout_path=str(exec_dir / "stdout"),
            stderr_path=str(exec_dir / "stderr"), output_head_bytes=OUTPUT_HEAD_BYTES,
            module_name=posixpath.basename(task.Engine.EntryModule.rstrip("/")))

    def _result_cap(self, disk: str) -> int:
        """What the guest may write in its result paths: the job's Resources.Disk within the node's cap."""
        cap = self.config.policy.max_result_bytes
        return min(cap, parse_size(disk)) if disk else cap

    def _conclude(self, exec_id: str, outcome: ExecutionOutcome, exec_dir: Path, timeout: float) -> Ending:
        """The report of a guest that ran: RunResult when it exited 0, else ComputeError with the reason."""
        run_output = {"Stdout": outcome.stdout_head, "StdoutTruncated": outcome.stdout_truncated,
                      "stderr": outcome.stderr_head, "StderrTruncated": outcome.stderr_truncated,
                      "ExitCode": outcome.exit_code, "ErrorMsg": outcome.error or "",
                      "ErrorKind": outcome.error_kind or "", "DurationSeconds": round(outcome.duration_s, 6)}
        if outcome.succeeded:
            return RunResult(exec_id, run_output)
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
        return ComputeError(exec_id, error, Retryable=False, RunOutput=run_output)

    def _publish(self, exec_id: str, exec_dir: Path) -> dict[str, Any]:
        with self.tracer.start_as_current_span("publish", attributes={"cod.publisher": "local",
                                                                      "cod.execution_id": exec_id}):
            return publish_local(exec_id, exec_dir, self.results_dir, self.config.results_url)


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
