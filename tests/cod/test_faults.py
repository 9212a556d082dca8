"""Faults with real processes: kill -9, SIGSTOP/SIGCONT, nats-server stopped and started.

One multi-process devstack for the module (3 compute nodes of 1 CPU, heartbeats every 0.2 s, a
node silent for 2.5 s is DISCONNECTED: room for a loaded machine); each test leaves every process
running again.
"""
from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from cod_helpers import busy, tool_job, wait_for

from cod_reference.client import APIError, Client
from cod_reference.models import wasm_job
from cod_reference.procstack import ORCHESTRATOR, ProcessDevstack

SECOND = 3 * 10**9  # busy() iterations in about a second on this machine
FINAL = ("Completed", "Failed", "Stopped")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessDevstack]:
    s = ProcessDevstack(data_dir=tmp_path_factory.mktemp("cod-faults"), computes=3, port=0,
                        capacity={"CPU": 1.0, "Memory": 2**30}, heartbeat_interval_s=0.2, disconnect_timeout_s=2.5)
    s.start()
    yield s
    s.stop()


@pytest.fixture
def client(stack: ProcessDevstack) -> Iterator[Client]:
    for name in stack.commands:  # whatever the previous test left down comes back
        if not stack.alive(name):
            stack.start_process(name)
    stack.wait_ready()
    with Client(port=stack.port, timeout=15) as c:  # a request that hangs fails the test, not the run
        yield c


def running_on(client: Client, job_id: str) -> str:
    running = wait_for(lambda: [e for e in client.executions(job_id) if e["ComputeState"]["StateType"] == "Running"],
                       timeout=20, what="the execution to run")
    return str(running[0]["NodeID"])


def connection(client: Client, node_id: str) -> str:
    return {n["Info"]["NodeID"]: n["Connection"] for n in client.nodes()}.get(node_id, "")


def stale_reports(client: Client, type_: str) -> float:
    points = client.metrics().get("cod.messages.stale", [])
    return sum(p["value"] for p in points if p["attributes"].get("type") == type_)


def node_state(stack: ProcessDevstack, node_id: str, exec_id: str) -> str:
    """The execution's state in the compute node's own store."""
    path = stack.data_dir / "compute" / node_id / "executions.db"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        row = db.execute("SELECT state FROM executions WHERE id=?", (exec_id,)).fetchone()
    return row[0] if row else ""


def wait_final(client: Client, job_ids: list[str], timeout: float = 60) -> list[dict[str, Any]]:
    return [client.wait(job_id, timeout=timeout) for job_id in job_ids]


def test_a_compute_node_killed_mid_job(stack: ProcessDevstack, client: Client) -> None:
    job_id = client.submit(wasm_job(busy(SECOND)))["JobID"]
    node = running_on(client, job_id)
    stack.kill(node)
    job = client.wait(job_id, timeout=30)
    assert job["State"]["StateType"] == "Completed", job["State"]
    execs = client.executions(job_id)
    assert (execs[0]["NodeID"], execs[0]["ComputeState"]["StateType"]) == (node, "Failed")
    assert execs[0]["ComputeState"]["Message"] == f"node {node} has disappeared"
    assert execs[-1]["ComputeState"]["StateType"] == "Completed" and execs[-1]["NodeID"] != node
    assert connection(client, node) == "DISCONNECTED"
    stack.start_process(node)  # it rejoins; its report of the killed run comes too late to change anything
    stack.wait_ready()
    wait_for(lambda: node_state(stack, node, execs[0]["ID"]) == "Failed", what="the restarted node to fail its run")
    assert client.get_job(job_id)["Job"]["State"]["StateType"] == "Completed"
    assert [e["ComputeState"]["StateType"] for e in client.executions(job_id)][0] == "Failed"


def test_a_node_paused_past_the_disconnect_timeout(stack: ProcessDevstack, client: Client) -> None:
    job_id = client.submit(wasm_job(busy(SECOND)))["JobID"]
    node = running_on(client, job_id)
    first = client.executions(job_id)[0]["ID"]
    stale_before = stale_reports(client, "RunResult")
    stack.pause(node)  # hung, or cut off from the network
    try:
        wait_for(lambda: connection(client, node) == "DISCONNECTED", timeout=10, what="the node to be disconnected")
        job = client.wait(job_id, timeout=30)
        assert job["State"]["StateType"] == "Completed", job["State"]
    finally:
        stack.resume(node)
    wait_for(lambda: connection(client, node) == "CONNECTED", timeout=10, what="the node to rejoin")
    # the resumed node finishes its run (or the reconciliation cancels it): either way the job completed once
    final = wait_for(lambda: node_state(stack, node, first) in ("Completed", "Cancelled")
                     and node_state(stack, node, first), timeout=20, what="the resumed node to settle its run")
    if final == "Completed":
        wait_for(lambda: stale_reports(client, "RunResult") > stale_before, what="the late result to be ignored")
    execs = client.executions(job_id)
    assert [e["ComputeState"]["StateType"] for e in execs].count("Completed") == 1
    assert execs[0]["ID"] == first and execs[0]["ComputeState"]["StateType"] == "Failed"
    completions = [h for h in client.history(job_id, event_type="job")["Items"]
                   if h["Event"]["Details"].get("NewState") == "Completed"]
    assert len(completions) == 1


def test_the_orchestrator_killed_with_jobs_queued_and_running(stack: ProcessDevstack, client: Client) -> None:
    queue = {"QueueTimeout": 60}
    ids = [client.submit(wasm_job(busy(SECOND // 4), Resources={"CPU": "1"}, Timeouts=queue))["JobID"]
           for _ in range(4)]
    ids += [client.submit(tool_job("args", str(i), Timeouts=queue))["JobID"] for i in range(3)]
    running_on(client, ids[0])
    stack.kill(ORCHESTRATOR)
    stack.start_process(ORCHESTRATOR)
    stack.wait_ready()
    jobs = wait_final(client, ids)  # none is left Running or Queued: each ends, here all of them Completed
    assert [j["State"]["StateType"] for j in jobs] == ["Completed"] * 7, [j["State"] for j in jobs]


def test_nats_restarted(stack: ProcessDevstack, client: Client) -> None:
    ids = [client.submit(wasm_job(busy(SECOND // 3)))["JobID"] for _ in range(3)]
    ids += [client.submit(tool_job("args", str(i)))["JobID"] for i in range(3)]
    stack.restart_nats(downtime_s=0.5)
    jobs = wait_final(client, ids)
    assert [j["State"]["StateType"] for j in jobs] == ["Completed"] * 6, [j["State"] for j in jobs]
    wait_for(lambda: all(connection(client, n) == "CONNECTED" for n in stack.computes), timeout=10,
             what="every node to be connected again")
    after = client.submit(tool_job("args", "after"))["JobID"]
    assert client.wait(after, timeout=30)["State"]["StateType"] == "Completed"


def test_a_burst_of_submissions_with_kills_in_the_middle(stack: ProcessDevstack, client: Client) -> None:
    n = 100
    stored_before = len(client.list_jobs(limit=10000))
    acknowledged: dict[str, str] = {}
    errors: list[str] = []

    def submit_all() -> None:
        with Client(port=stack.port) as c:
            for i in range(n):
                key = f"burst-{i}"
                try:  # an answer lost to the orchestrator's death is asked again under the same key
                    job = tool_job("args", str(i), Timeouts={"QueueTimeout": 60})
                    acknowledged[key] = c.submit(job, idempotency_key=key, retry_s=30)["JobID"]
                except APIError as exc:
                    errors.append(f"{key}: {exc}")

    submitter = threading.Thread(target=submit_all)
    submitter.start()
    try:
        wait_for(lambda: len(acknowledged) >= n // 3, timeout=30, what="a third of the burst")
        stack.kill("node-1")
        wait_for(lambda: len(acknowledged) >= 2 * n // 3, timeout=30, what="two thirds of the burst")
        stack.kill(ORCHESTRATOR)
        stack.start_process(ORCHESTRATOR)
        stack.start_process("node-1")
    finally:
        submitter.join(60)
    stack.wait_ready()
    assert errors == [] and len(acknowledged) == n
    assert len(set(acknowledged.values())) == n  # one job per key, however often it was sent
    jobs = wait_final(client, list(acknowledged.values()))
    states = [j["State"]["StateType"] for j in jobs]
    assert all(s in FINAL for s in states)
    assert all(j["State"]["Message"] for j in jobs if j["State"]["StateType"] != "Completed")
    assert len(client.list_jobs(limit=10000)) - stored_before == n  # no job the client does not know of
