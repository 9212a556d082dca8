"""The operator's default QueueTimeout: a burst of jobs bigger than the network waits for room
instead of failing with "not enough nodes" (issue 13)."""
from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from cod_helpers import run, tool_job, wait_for

from cod_reference.client import Client
from cod_reference.devstack import Devstack
from cod_reference.executor.types import ExecutionOutcome, ExecutionRequest
from cod_reference.orchestrator import OrchestratorConfig, SchedulerConfig


class GateExecutor:
    """'hold' waits until the gate opens (10 s at most); anything else prints its argv."""

    def __init__(self) -> None:
        self.gate = threading.Event()

    def run(self, request: ExecutionRequest, cancel: threading.Event | None = None) -> ExecutionOutcome:
        if request.args[:1] == ["hold"]:
            self.gate.wait(10)
        out = " ".join(request.args) + "\n"
        with open(request.stdout_path, "w") as fh:
            fh.write(out)
        open(request.stderr_path, "w").close()
        return ExecutionOutcome(0, out, "", False, False, None, None, 0.001)


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Devstack, GateExecutor, Client]]:
    executor = GateExecutor()
    config = OrchestratorConfig(scheduler=SchedulerConfig(default_queue_timeout_s=30, queue_backoff_s=0.2))
    with Devstack(data_dir=tmp_path_factory.mktemp("cod-queue"), computes=1, port=0,
                  capacity={"CPU": 1.0, "Memory": 2**30}, orchestrator_config=config,
                  executor_factory=lambda d, t: executor) as stack, Client(port=stack.port) as client:
        yield stack, executor, client


def test_a_job_without_queue_timeout_waits_for_the_default(gated) -> None:
    _, executor, client = gated
    executor.gate.clear()
    holder = client.submit(tool_job("hold", Resources={"CPU": "1"}))["JobID"]
    wait_for(lambda: client.get_job(holder)["Job"]["State"]["StateType"] == "Running", what="the holder")
    waiting = client.submit(tool_job("next", Resources={"CPU": "1"}))["JobID"]
    wait_for(lambda: client.get_job(waiting)["Job"]["State"]["StateType"] == "Queued", what="the queued job")
    executor.gate.set()
    assert client.wait(waiting, timeout=30)["State"]["StateType"] == "Completed"


def test_without_a_default_the_message_names_queue_timeout(gated) -> None:
    stack, executor, client = gated
    assert stack.orchestrator is not None
    scheduler_config = stack.orchestrator.scheduler.config
    scheduler_config.default_queue_timeout_s = 0
    executor.gate.clear()
    try:
        holder = client.submit(tool_job("hold", Resources={"CPU": "1"}))["JobID"]
        wait_for(lambda: client.get_job(holder)["Job"]["State"]["StateType"] == "Running", what="the holder")
        job = run(client, tool_job("next", Resources={"CPU": "1"}))
        assert job["State"]["StateType"] == "Failed"
        assert "not enough nodes" in job["State"]["Message"] and "QueueTimeout" in job["State"]["Message"]
    finally:
        scheduler_config.default_queue_timeout_s = 30
        executor.gate.set()
