"""Attacks on a node's capacity: CPU requests of 0 or next to nothing, jobs that never end."""
from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from cod_reference.client import Client
from cod_reference.compute.policy import NodePolicy
from cod_reference.devstack import Devstack
from cod_reference.models import DEFAULT_CPU, Resources, wasm_job

SPIN = b'(module (func (export "_start") (loop $l (br $l))))'


@pytest.fixture(scope="module")
def small_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Devstack, Client]]:
    stack = Devstack(data_dir=tmp_path_factory.mktemp("cap-stack"), computes=0, port=0,
                     capacity={"CPU": 2.0, "Memory": 2 * 2**30}, heartbeat_interval_s=0.2)
    stack.start()
    stack.add_compute(policy=NodePolicy(max_running_executions=2, default_execution_timeout_s=1.0,
                                        max_execution_timeout_s=1.5))
    with Client(port=stack.port) as client:
        yield stack, client
    stack.stop()


def test_zero_cpu_is_charged_the_default() -> None:
    assert Resources(CPU="0").needs().CPU == DEFAULT_CPU
    assert Resources().needs().CPU == DEFAULT_CPU


def test_tiny_cpu_requests_cannot_start_unbounded_executions(small_node: tuple[Devstack, Client]) -> None:
    stack, client = small_node
    node = stack.computes["node-1"]
    ids = [client.submit(wasm_job(SPIN, Resources={"CPU": "1m"}, Publisher={"Type": "noop"}))["JobID"]
           for _ in range(5)]
    most = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        most = max(most, node.info().RunningExecutions)
        if all(client.get_job(i)["Job"]["State"]["StateType"] in ("Failed", "Completed") for i in ids):
            break
        time.sleep(0.05)
    assert most <= 2
    jobs: list[dict[str, Any]] = [client.get_job(i)["Job"] for i in ids]
    # with no ExecutionTimeout the operator's default (1 s here) stops each spinning guest
    assert all(j["State"]["StateType"] == "Failed" and "timeout after 1s" in j["State"]["Message"] for j in jobs), \
        [j["State"] for j in jobs]


def test_the_operator_caps_a_jobs_own_timeout(small_node: tuple[Devstack, Client]) -> None:
    _, client = small_node
    job = client.wait(client.submit(wasm_job(SPIN, Publisher={"Type": "noop"}, Timeouts={"ExecutionTimeout": 3600}))
                      ["JobID"], timeout=30, interval=0.05)
    assert job["State"]["StateType"] == "Failed" and "timeout after 1.5s" in job["State"]["Message"], job["State"]
