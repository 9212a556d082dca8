"""What a compute node is told by its operator, and the executor it drives."""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Protocol

from ..executor.types import ExecutionOutcome, ExecutionRequest
from ..models import Allocation
from .policy import NodePolicy


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
    #: ``{"CPU": cores, "Memory": bytes}`` this node offers
    capacity: dict[str, float] = field(default_factory=default_capacity)
    allowed_local_paths: list[str] = field(default_factory=list)
    heartbeat_interval_s: float = 1.0
    #: base URL under which the API serves this node's published results
    results_url: str = ""
    #: this node's own API (a node in a process of its own), announced so the orchestrator can read its logs
    api_url: str = ""
    #: a node that fails every execution at start (Bacalhau's "bad actor", for testing retries)
    bad: bool = False
    #: the operator's limits on the jobs this node runs
    policy: NodePolicy = field(default_factory=NodePolicy)

    @property
    def max_capacity(self) -> Allocation:
        return Allocation(float(self.capacity.get("CPU", 0)), float(self.capacity.get("Memory", 0)))
