"""One node of a network in this process (``cod serve``): an orchestrator, a compute node, or both.

The orchestrator serves the API, keeps the job store and runs the scheduler; unless given
``--nats-url`` it starts ``nats-server`` with JetStream under its data dir. A compute node connects
to the orchestrators' NATS, runs executions and serves its published results over HTTP; with no
OTLP collector configured it forwards its spans to the orchestrator, which keeps each job's whole
trace. Nodes on different machines need only reach NATS (and clients the API and the results).
"""
from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry import metrics

from .api import create_app
from .api_guard import check_exposure, is_loopback
from .apiserver import ApiServer, reachable_host
from .compute.node import ComputeConfig, ComputeNode, default_capacity
from .compute.policy import NodePolicy
from .models.limits import DEFAULT_MAX_UNFINISHED_JOBS, DEFAULT_SUBMIT_BURST, DEFAULT_SUBMIT_RATE
from .natsserver import NatsAuth, NatsServer
from .orchestrator import Orchestrator, OrchestratorConfig, SchedulerConfig
from .signals import wait_for_stop
from .telemetry import Telemetry
from .transport import messages as msg
from .transport.nats_transport import NatsTransport, check_node_id

log = logging.getLogger(__name__)

#: forwarded spans per message at most (NATS refuses payloads over 1 MiB by default)
SPANS_MESSAGE_BYTES = 256 * 1024


@dataclass
class ServeConfig:
    data_dir: Path
    orchestrator: bool = False
    compute: bool = False
    node_id: str = ""
    api_host: str = "127.0.0.1"
    api_port: int = 1234
    nats_host: str = "127.0.0.1"
    nats_port: int = 4222
    nats_urls: list[str] = field(default_factory=list)
    auth: NatsAuth = field(default_factory=NatsAuth)
    disconnect_timeout_s: float = 10.0
    default_queue_timeout_s: float = 0.0   # orchestrator: the QueueTimeout of jobs that set none
    heartbeat_interval_s: float = 1.0
    labels: dict[str, str] = field(default_factory=dict)
    capacity: dict[str, float] = field(default_factory=default_capacity)
    allowed_local_paths: list[str] = field(default_factory=list)
    #: host name clients use to fetch this compute node's results (its API listens on api_host:api_port)
    public_host: str = ""
    bad: bool = False
    #: bearer token the API requires (needed when api_host is not loopback, unless insecure)
    auth_token: str = ""
    insecure: bool = False
    #: compute: the operator's limits (docs/security.md)
    policy: NodePolicy = field(default_factory=NodePolicy)
    #: orchestrator: job submissions a second per client address after a burst of submit_burst (0: no limit)
    submit_rate: float = DEFAULT_SUBMIT_RATE
    submit_burst: int = DEFAULT_SUBMIT_BURST
    #: orchestrator: a new job is refused while this many are Pending, Queued or Running (0: no cap)
    max_unfinished_jobs: int = DEFAULT_MAX_UNFINISHED_JOBS


def batches_by_size(records: list[dict[str, Any]], max_bytes: int) -> Iterator[list[dict[str, Any]]]:
    """``records`` in order, cut into lists whose JSON stays under about ``max_bytes`` (a record
    larger than that on its own is a list of one)."""
    batch: list[dict[str, Any]] = []
    size = 0
    for record in records:
        length = len(json.dumps(record, separators=(",", ":"), default=str))
        if batch and size + length > max_bytes:
            yield batch
            batch, size = [], 0
        batch.append(record)
        size += length + 1
    if batch:
        yield batch


def persistent_node_id(data_dir: Path) -> str:
    """The compute node id kept in ``<data dir>/node-id`` (a new ``n-<hex>`` the first time)."""
    path = data_dir / "node-id"
    if path.is_file():
        return path.read_text().strip()
    node_id = f"n-{uuid.uuid4().hex[:12]}"
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(node_id + "\n")
    return node_id


class NodeService:
    """What ``cod serve`` runs: start() brings the parts up in order, stop() takes them down."""

    def __init__(self, config: ServeConfig) -> None:
        if not (config.orchestrator or config.compute):
            raise ValueError("cod serve needs --orchestrator, --compute or both")
        if config.compute and not config.orchestrator and not config.nats_urls:
            raise ValueError("a compute node needs --orchestrators nats://HOST:PORT")
        self.config = config
        self.nats_server: NatsServer | None = None
        self.transport: NatsTransport | None = None
        self.telemetry: Telemetry | None = None
        self.orchestrator: Orchestrator | None = None
        self.compute: ComputeNode | None = None
        self.api: ApiServer | None = None
        self._executor: Any = None

    @property
    def compute_id(self) -> str:
        """The compute node's id: ``--node-id``, else the one kept in the data dir."""
        return check_node_id(self.config.node_id or persistent_node_id(self.config.data_dir))

    def start(self) -> NodeService:
        cfg = self.config
        check_exposure(cfg.api_host, cfg.auth_token, cfg.insecure)
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            urls = cfg.nats_urls
            if cfg.orchestrator and not urls:
                self.nats_server = NatsServer(cfg.data_dir / "orchestrator" / "nats-store", host=cfg.nats_host,
                                              port=cfg.nats_port, auth=cfg.auth).start()
                urls = [self.nats_server.url]
            self.transport = NatsTransport(urls, client_options=cfg.auth.client_options(),
                                           name=self.compute_id if cfg.compute else msg.ORCHESTRATOR)
            forward = None if cfg.orchestrator else self._forward_spans
            self.telemetry = Telemetry(cfg.data_dir, span_sink=forward,
                                       instance_id=self.compute_id if cfg.compute else msg.ORCHESTRATOR)
            transport = self.transport
            self.telemetry.meter("cod_reference.transport").create_observable_counter(
                "cod.transport.dropped", callbacks=[lambda _opts: [metrics.Observation(transport.dropped)]],
                description="messages NATS could never store (too large) or that arrived malformed")
            computes: dict[str, ComputeNode] = {}
            app = create_app(lambda: self.orchestrator, computes,  # type: ignore[arg-type, return-value]
                             auth_token=cfg.auth_token, loopback_only=is_loopback(cfg.api_host),
                             submit_rate=cfg.submit_rate, submit_burst=cfg.submit_burst)
            self.api = ApiServer(app, cfg.api_host, cfg.api_port)
            self.api.bind()
            if cfg.orchestrator:
                self.orchestrator = Orchestrator(cfg.data_dir, self.transport, self.telemetry,
                                                 OrchestratorConfig(
                    disconnect_timeout_s=cfg.disconnect_timeout_s,
                    scheduler=SchedulerConfig(default_queue_timeout_s=cfg.default_queue_timeout_s),
                    node_api_token=cfg.auth_token, max_unfinished_jobs=cfg.max_unfinished_jobs))
                self.orchestrator.start()
            if cfg.compute:
                self.compute = self._start_compute()
                computes[self.compute.node_id] = self.compute
                if self.orchestrator is not None:
                    self.orchestrator.log_sources[self.compute.node_id] = self.compute
            self.api.start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_compute(self) -> ComputeNode:
        from .devstack import wasm_executor

        cfg = self.config
        assert self.transport is not None and self.telemetry is not None and self.api is not None
        node_id = self.compute_id
        node_dir = cfg.data_dir / "compute" if cfg.orchestrator else cfg.data_dir  # a compute node's dir is its own
        self._executor = wasm_executor(node_dir, self.telemetry)
        host = cfg.public_host or reachable_host(cfg.api_host)
        labels = {"id": node_id, "name": node_id, **cfg.labels}
        config = ComputeConfig(node_id=node_id, labels=labels, capacity=dict(cfg.capacity),
                               allowed_local_paths=list(cfg.allowed_local_paths), bad=cfg.bad,
                               heartbeat_interval_s=cfg.heartbeat_interval_s,
                               results_url=f"http://{host}:{self.api.port}/api/v1/compute/{node_id}/results",
                               api_url="" if cfg.orchestrator else f"http://{host}:{self.api.port}",
                               policy=cfg.policy)
        node = ComputeNode(node_dir, self.transport, self._executor, self.telemetry, config)
        node.start()
        return node

    def _forward_spans(self, records: list[dict[str, Any]]) -> None:
        if self.transport is None:
            return
        for batch in batches_by_size(records, SPANS_MESSAGE_BYTES):
            self.transport.send(msg.Message(msg.SPANS, self.compute_id, msg.ORCHESTRATOR, {"Spans": batch}))

    def describe(self) -> str:
        roles = " + ".join(r for r, on in (("orchestrator", self.config.orchestrator),
                                            ("compute", self.config.compute)) if on)
        lines = [f"cod serve: {roles}" + (f" ({self.compute_id})" if self.config.compute else "")]
        if self.api:
            if self.config.orchestrator:
                lines.append(f"  web UI:    http://{self.config.api_host}:{self.api.port}/")
            lines.append(f"  API:       http://{self.config.api_host}:{self.api.port}")
        if self.transport:
            lines.append(f"  NATS:      {', '.join(self.transport.servers)}")
        lines.append(f"  data dir:  {self.config.data_dir}")
        return "\n".join(lines)

    def stop(self) -> None:
        if self.api is not None:
            self.api.stop()
        if self.compute is not None:
            self.compute.stop()
            self.compute = None
        if self.orchestrator is not None:
            self.orchestrator.stop()
        if self._executor is not None and hasattr(self._executor, "close"):
            self._executor.close()
            self._executor = None
        if self.telemetry is not None:
            self.telemetry.flush()  # forwarded spans go out before the transport closes
            self.telemetry.shutdown()
            self.telemetry = None
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        if self.nats_server is not None:
            self.nats_server.stop()
            self.nats_server = None


def run_service(config: ServeConfig) -> int:
    """Run until SIGINT or SIGTERM; the first line printed says where the API is."""
    logging.basicConfig(level=os.environ.get("COD_LOG_LEVEL", "WARNING").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # the guests' own log lines ("job J execution E LEVEL module: message") from INFO up
    logging.getLogger("cod_reference.guest").setLevel(os.environ.get("COD_GUEST_LOG_LEVEL", "INFO").upper())
    service = NodeService(config)
    try:
        service.start()
        print(service.describe(), flush=True)
        wait_for_stop()
    finally:
        service.stop()
    return 0
