"""Retries, queueing and capacity, on a devstack that starts with one bad compute node."""
from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from cod_helpers import busy, run, tool_job, wait_for

from cod_reference.client import Client
from cod_reference.devstack import Devstack
from cod_reference.models import wasm_job

SECOND = 3 * 10**9  # busy() iterations in about a second on this machine


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devstack]:
    s = Devstack(data_dir=tmp_path_factory.mktemp("cod-failures"), computes=0, bad_computes=1, port=0,
                 capacity={"CPU": 1.0, "Memory": 2**30}, compute_labels={1: {"kind": "bad"}},
                 heartbeat_interval_s=0.3)
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client(stack: Devstack) -> Iterator[Client]:
    with Client(port=stack.port) as c:
        yield c


def good_node(stack: Devstack) -> str:
    for node_id, node in stack.computes.items():
        if not node.config.bad:
            return node_id
    return stack.add_compute().node_id


def states_seen(client: Client, job_id: str) -> list[str]:
    return [h["Event"]["Details"].get("NewState") for h in client.history(job_id, event_type="job")["Items"]]


def test_failed_execution_is_retried_on_another_node(stack: Devstack, client: Client) -> None:
    # only the bad node exists: the job fails there, then waits in the queue for another node
    doc = tool_job("args", "retried", Timeouts={"QueueTimeout": 30})
    job_id = client.submit(doc)["JobID"]
    wait_for(lambda: client.get_job(job_id)["Job"]["State"]["StateType"] == "Queued", what="the job to queue")
    execs = client.executions(job_id)
    assert [(e["NodeID"], e["ComputeState"]["StateType"]) for e in execs] == [("node-1", "Failed")]
    assert execs[0]["ComputeState"]["Message"] == "i am a bad node"
    node = good_node(stack)
    job = client.wait(job_id, timeout=20)
    assert job["State"]["StateType"] == "Completed", job["State"]
    execs = client.executions(job_id)
    assert [(e["NodeID"], e["ComputeState"]["StateType"]) for e in execs] == [
        ("node-1", "Failed"), (node, "Completed")]
    assert states_seen(client, job_id) == ["Pending", "Running", "Queued", "Running", "Completed"]


def test_job_queues_until_capacity_frees(stack: Devstack, client: Client) -> None:
    node = good_node(stack)
    pin = [{"Key": "name", "Operator": "=", "Values": [node]}]
    first = wasm_job(busy(SECOND), Resources={"CPU": "1"})
    first["Constraints"] = pin
    second = tool_job("args", "second", Resources={"CPU": "1"}, Timeouts={"QueueTimeout": 30})
    second["Constraints"] = pin
    first_id = client.submit(first)["JobID"]
    wait_for(lambda: client.get_job(first_id)["Job"]["State"]["StateType"] == "Running", what="the first job")
    second_id = client.submit(second)["JobID"]
    wait_for(lambda: client.get_job(second_id)["Job"]["State"]["StateType"] == "Queued", what="the second to queue")
    assert "not enough free CPU" in client.get_job(second_id)["Job"]["State"]["Message"]
    assert client.wait(first_id, timeout=20)["State"]["StateType"] == "Completed"
    job = client.wait(second_id, timeout=20)
    assert job["State"]["StateType"] == "Completed", job["State"]
    assert job["ModifyTime"] >= client.get_job(first_id)["Job"]["ModifyTime"]


def test_queue_timeout_fails_the_job(stack: Devstack, client: Client) -> None:
    node = good_node(stack)
    pin = [{"Key": "name", "Operator": "=", "Values": [node]}]
    blocker = wasm_job(busy(2 * SECOND), Resources={"CPU": "1"})
    blocker["Constraints"] = pin
    blocker_id = client.submit(blocker)["JobID"]
    wait_for(lambda: client.get_job(blocker_id)["Job"]["State"]["StateType"] == "Running", what="the blocker")
    t0 = time.monotonic()
    doc = tool_job("args", Resources={"CPU": "1"}, Timeouts={"QueueTimeout": 0.5})
    doc["Constraints"] = pin
    job = run(client, doc, timeout=10)
    assert job["State"]["StateType"] == "Failed"
    assert "not enough nodes" in job["State"]["Message"]
    assert 0.4 < time.monotonic() - t0 < 10  # failed by the queue timeout, not by the blocker finishing
    client.stop(blocker_id)


def test_resources_larger_than_any_node(client: Client) -> None:
    job = run(client, tool_job("args", Resources={"CPU": "64"}))
    assert job["State"]["StateType"] == "Failed"
    assert "job needs CPU 64, node has at most 1" in job["State"]["Message"]


def test_retries_are_limited(stack: Devstack, client: Client) -> None:
    for _ in range(2):
        stack.add_compute(bad=True, labels={"kind": "bad"})
    wait_for(lambda: sum(n["Info"]["Labels"].get("kind") == "bad" for n in client.nodes()
                         if n["Info"]["NodeType"] == "Compute") == 3, what="3 bad nodes")
    doc = tool_job("args")
    doc["Constraints"] = [{"Key": "kind", "Operator": "=", "Values": ["bad"]}]
    job = run(client, doc)
    assert job["State"]["StateType"] == "Failed"
    assert "failed 3 times" in job["State"]["Message"]
    execs = client.executions(job["ID"])
    assert len(execs) == 3 and len({e["NodeID"] for e in execs}) == 3  # each retry on another node


def test_lost_node_executions_are_rescheduled(tmp_path) -> None:
    from cod_reference.orchestrator import OrchestratorConfig

    config = OrchestratorConfig(disconnect_timeout_s=0.6, housekeeping_interval_s=0.1)
    with Devstack(data_dir=tmp_path, computes=2, port=0, heartbeat_interval_s=0.1,
                  orchestrator_config=config) as s, Client(port=s.port) as c:
        job_id = c.submit(wasm_job(busy(SECOND)))["JobID"]
        running = wait_for(lambda: [e for e in c.executions(job_id) if e["ComputeState"]["StateType"] == "Running"],
                           what="the execution to run")
        s.computes[running[0]["NodeID"]].stop()  # the node goes silent mid-run
        job = c.wait(job_id, timeout=20)
        assert job["State"]["StateType"] == "Completed", job["State"]
        execs = c.executions(job_id)
        assert execs[0]["ComputeState"]["Message"] == f"node {running[0]['NodeID']} has disappeared"
        assert execs[-1]["ComputeState"]["StateType"] == "Completed"
        assert execs[-1]["NodeID"] != running[0]["NodeID"]
        lost = {n["Info"]["NodeID"]: n["Connection"] for n in c.nodes()}
        assert lost[running[0]["NodeID"]] == "DISCONNECTED"
