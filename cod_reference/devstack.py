"""A whole network in one process: an orchestrator, N compute nodes and the HTTP API.

``python -m cod_reference devstack [--computes N] [--port 1234] [--data-dir DIR]``. Nodes
are ``orchestrator`` and ``node-1`` ... ``node-N``, labelled ``id``, ``name`` and
``env=devstack``; state lives under the data dir (a temporary one by default), so a
devstack restarted on the same dir finds its jobs again. Ctrl-C stops it cleanly.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from .api import create_app
from .api_guard import check_exposure, is_loopback
from .apiserver import ApiServer, reachable_host
from .compute.node import ComputeConfig, ComputeNode, Executor, default_capacity
from .compute.policy import NodePolicy
from .models.limits import DEFAULT_MAX_UNFINISHED_JOBS, DEFAULT_SUBMIT_BURST, DEFAULT_SUBMIT_RATE
from .orchestrator import Orchestrator, OrchestratorConfig, SchedulerConfig
from .signals import wait_for_stop
from .telemetry import Telemetry
from .transport import InProcessTransport

log = logging.getLogger(__name__)

ExecutorFactory = Callable[[Path, Telemetry], Executor]


def wasm_executor(node_dir: Path, telemetry: Telemetry) -> Executor:
    """The real Wasm executor, with its module cache in the node's data dir."""
    from .executor.wasm import WasmExecutor

    return WasmExecutor(cache_dir=str(node_dir / "module-cache"), tracer_provider=telemetry.tracer_provider,
                        meter_provider=telemetry.meter_provider, guest_span_sink=telemetry.guest_span_sink,
                        guest_trace_exporter=telemetry.guest_trace_exporter)


class Devstack:
    def __init__(self, *, data_dir: str | Path | None = None, computes: int = 3, port: int = 1234,
                 host: str = "127.0.0.1", bad_computes: int = 0, capacity: dict[str, float] | None = None,
                 allowed_local_paths: list[str] | None = None, executor_factory: ExecutorFactory | None = None,
                 orchestrator_config: OrchestratorConfig | None = None, heartbeat_interval_s: float = 1.0,
                 compute_labels: dict[int, dict[str, str]] | None = None, auth_token: str = "",
                 insecure: bool = False, node_policy: NodePolicy | None = None,
                 submit_rate: float = DEFAULT_SUBMIT_RATE, submit_burst: int = DEFAULT_SUBMIT_BURST,
                 max_unfinished_jobs: int | None = None) -> None:
        """``submit_rate``/``submit_burst``: the API's limit on each client address's job submissions
        (either 0: none); ``max_unfinished_jobs`` (0: no cap) replaces that of ``orchestrator_config``."""
        if computes < 0 or bad_computes < 0:
            raise ValueError("the number of compute nodes cannot be negative")
        if not 0 <= port <= 65535:
            raise ValueError(f"port {port} is not between 0 and 65535")
        check_exposure(host, auth_token, insecure)
        self.auth_token = auth_token
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="cod-devstack-"))
        self.n_computes = computes
        self.bad_computes = bad_computes
        self.host = host
        self.requested_port = port
        self.capacity = capacity or default_capacity()
        self.allowed_local_paths = list(allowed_local_paths or [])
        self.executor_factory = executor_factory or wasm_executor
        self.orchestrator_config = orchestrator_config or OrchestratorConfig(disconnect_timeout_s=10.0)
        if max_unfinished_jobs is not None:
            self.orchestrator_config = replace(self.orchestrator_config, max_unfinished_jobs=max_unfinished_jobs)
        self.submit_rate = submit_rate
        self.submit_burst = submit_burst
        self.heartbeat_interval_s = heartbeat_interval_s
        self.compute_labels = compute_labels or {}
        self.node_policy = node_policy or NodePolicy()
        self.telemetry: Telemetry | None = None
        self.transport = InProcessTransport()
        self.orchestrator: Orchestrator | None = None
        self.computes: dict[str, ComputeNode] = {}
        self._executors: list[Any] = []
        self._api: ApiServer | None = None
        self.port = port

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return f"http://{reachable_host(self.host)}:{self.port}"

    def start(self) -> Devstack:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.telemetry = Telemetry(self.data_dir)
        try:
            self._bind()
            self._start_orchestrator()
            for i in range(1, self.n_computes + self.bad_computes + 1):
                self.add_compute(bad=i > self.n_computes)
            self._start_server()
        except BaseException:  # e.g. the port is taken: stop what did start (threads, telemetry, temp dir)
            self.cleanup()
            raise
        return self

    def _bind(self) -> None:
        app = create_app(lambda: self.orchestrator, self.computes,  # type: ignore[arg-type, return-value]
                         auth_token=self.auth_token, loopback_only=is_loopback(self.host),
                         submit_rate=self.submit_rate, submit_burst=self.submit_burst)
        self._api = ApiServer(app, self.host, self.requested_port)
        self._api.bind()
        self.port = self._api.port

    def _start_orchestrator(self) -> None:
        assert self.telemetry is not None
        self.orchestrator = Orchestrator(self.data_dir, self.transport, self.telemetry, self.orchestrator_config)
        for node_id, compute in self.computes.items():
            self.orchestrator.log_sources[node_id] = compute
        self.orchestrator.start()

    def add_compute(self, *, bad: bool = False, labels: dict[str, str] | None = None,
                    allowed_local_paths: list[str] | None = None, policy: NodePolicy | None = None) -> ComputeNode:
        """Start one more compute node (``node-<n>``); ``allowed_local_paths`` replaces the
        devstack's allow-list for this node."""
        assert self.telemetry is not None and self.orchestrator is not None
        index = len(self.computes) + 1
        node_id = f"node-{index}"
        node_dir = self.data_dir / "compute" / node_id
        node_labels = {"id": node_id, "name": node_id, "env": "devstack"}
        node_labels.update(self.compute_labels.get(index, {}))
        node_labels.update(labels or {})
        executor = self.executor_factory(node_dir, self.telemetry)
        self._executors.append(executor)
        config = ComputeConfig(node_id=node_id, labels=node_labels, capacity=dict(self.capacity),
                               allowed_local_paths=self.allowed_local_paths if allowed_local_paths is None
                               else allowed_local_paths, bad=bad,
                               heartbeat_interval_s=self.heartbeat_interval_s,
                               results_url=f"{self.url}/api/v1/compute/{node_id}/results",
                               policy=policy or self.node_policy)
        node = ComputeNode(node_dir, self.transport, executor, self.telemetry, config)
        self.computes[node_id] = node
        self.orchestrator.log_sources[node_id] = node
        node.start()
        return node

    def _start_server(self) -> None:
        assert self._api is not None
        if not is_loopback(self.host) and not self.auth_token:
            log.warning("the API listens on %s without a token (--insecure): anyone who reaches it can run jobs",
                        self.host)
        self._api.start()

    def restart_orchestrator(self, downtime_s: float = 0.0) -> None:
        """Stop the orchestrator and start a new one on the same data dir (the API stays up
        but answers 503 while no orchestrator is there)."""
        assert self.orchestrator is not None
        self.orchestrator.stop()
        time.sleep(downtime_s)
        self._start_orchestrator()

    def stop(self) -> None:
        if self._api is not None:
            self._api.stop()
        for node in self.computes.values():
            node.stop()
        if self.orchestrator is not None:
            self.orchestrator.stop()
            self.orchestrator = None
        for executor in self._executors:
            close = getattr(executor, "close", None)
            if close:
                try:
                    close()
                except Exception:
                    log.exception("executor close failed")
        self.transport.close()
        if self.telemetry is not None:
            self.telemetry.flush()
            self.telemetry.shutdown()
        self._api = None

    def cleanup(self) -> None:
        """Stop, and remove the data dir if the devstack made it."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> Devstack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def describe(self) -> str:
        lines = [f"devstack: orchestrator + {len(self.computes)} compute node(s)",
                 f"  web UI:    {self.url}/",
                 f"  API:       {self.url}/api/v1/orchestrator  (OpenAPI: {self.url}/docs)",
                 f"  data dir:  {self.data_dir}"]
        if self.telemetry and self.telemetry.trace_store:
            lines.append(f"  traces:    {self.telemetry.trace_store.root}")
        lines.append(f"  try:       COD_API_PORT={self.port} python -m cod_reference node list")
        return "\n".join(lines)


def run_devstack(*, computes: int, port: int, data_dir: str | None, bad_computes: int = 0,
                 allowed_local_paths: list[str] | None = None, default_queue_timeout_s: float = 0.0,
                 host: str = "127.0.0.1", auth_token: str = "", insecure: bool = False,
                 node_policy: NodePolicy | None = None, transport: str = "nats",
                 submit_rate: float = DEFAULT_SUBMIT_RATE, submit_burst: int = DEFAULT_SUBMIT_BURST,
                 max_unfinished_jobs: int = DEFAULT_MAX_UNFINISHED_JOBS) -> int:
    """Run until Ctrl-C (SIGINT) or SIGTERM; returns the process exit code. ``transport="nats"``
    runs NATS and every node as separate processes, ``"inprocess"`` everything in this one."""
    from .procstack import ProcessDevstack

    stack: Devstack | ProcessDevstack
    if transport == "nats":
        stack = ProcessDevstack(data_dir=data_dir, computes=computes, port=port, bad_computes=bad_computes,
                                allowed_local_paths=allowed_local_paths, host=host, auth_token=auth_token,
                                insecure=insecure, node_policy=node_policy,
                                default_queue_timeout_s=default_queue_timeout_s, submit_rate=submit_rate,
                                submit_burst=submit_burst, max_unfinished_jobs=max_unfinished_jobs)
    elif transport == "inprocess":
        config = OrchestratorConfig(disconnect_timeout_s=10.0, max_unfinished_jobs=max_unfinished_jobs,
                                    scheduler=SchedulerConfig(default_queue_timeout_s=default_queue_timeout_s))
        stack = Devstack(data_dir=data_dir, computes=computes, port=port, bad_computes=bad_computes,
                         allowed_local_paths=allowed_local_paths, orchestrator_config=config, host=host,
                         auth_token=auth_token, insecure=insecure, node_policy=node_policy,
                         submit_rate=submit_rate, submit_burst=submit_burst)
    else:
        raise ValueError(f"--transport {transport!r} is not nats or inprocess")
    try:
        stack.start()
        print(stack.describe(), flush=True)
        wait_for_stop()
        print("stopping devstack...", flush=True)
    finally:
        if data_dir:
            stack.stop()  # the state stays in the user's data dir
        else:
            stack.cleanup()
    return 0
