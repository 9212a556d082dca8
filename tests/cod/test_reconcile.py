"""Reconciliation and idempotent handling, made deterministic: a transport that loses or repeats messages.

A real network loses a message only when a process dies between a state change and its send;
here one chosen message is dropped (or every message is delivered twice) and the node's
handshake — what it sends after every reconnection — must bring both sides back in step.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cod_helpers import busy, tool_job, wait_for

from cod_reference.client import Client
from cod_reference.compute import reconcile as compute_reconcile
from cod_reference.compute.node import ComputeNode
from cod_reference.devstack import Devstack
from cod_reference.models import Allocation, Job, JobType, Task, WasmEngine, wasm_job
from cod_reference.orchestrator import reconcile as orchestrator_reconcile
from cod_reference.orchestrator.reconcile import reconcile_messages
from cod_reference.orchestrator.service import OrchestratorConfig
from cod_reference.orchestrator.store import JobStore
from cod_reference.states import ComputeState, DesiredState
from cod_reference.transport import InProcessTransport
from cod_reference.transport import messages as msg


class LossyTransport(InProcessTransport):
    """Drops the first message ``lose`` picks; with ``repeat`` delivers every message twice."""

    def __init__(self, lose: Callable[[msg.Message], bool] = lambda m: False, repeat: bool = False) -> None:
        super().__init__()
        self.lose = lose
        self.repeat = repeat
        self.lost: list[msg.Message] = []
        self._lock_lost = threading.Lock()

    def send(self, message: msg.Message) -> None:
        with self._lock_lost:
            if not self.lost and self.lose(message):
                self.lost.append(message)
                return
        super().send(message)
        if self.repeat:
            super().send(message)


def stack_with(tmp_path: Path, transport: InProcessTransport, computes: int = 1,
               config: OrchestratorConfig | None = None) -> Devstack:
    stack = Devstack(data_dir=tmp_path, computes=computes, port=0, heartbeat_interval_s=0.2,
                     orchestrator_config=config)
    stack.transport = transport
    return stack


@pytest.fixture
def settle_now(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(compute_reconcile, "SETTLE_S", 0.0)  # every execution is old enough to be judged
    yield


def node_state(node: ComputeNode, exec_id: str) -> str:
    rec = node.store.get(exec_id)
    return rec.state.value if rec else ""


def state(client: Client, job_id: str) -> str:
    return str(client.get_job(job_id)["Job"]["State"]["StateType"])


def test_a_lost_result_is_brought_up_to_date(tmp_path: Path) -> None:
    transport = LossyTransport(lambda m: m.type == msg.RUN_RESULT)
    with stack_with(tmp_path, transport) as stack, Client(port=stack.port) as client:
        job_id = client.submit(tool_job("args", "lost"))["JobID"]
        wait_for(lambda: transport.lost, what="the result to be lost")
        node = stack.computes["node-1"]
        wait_for(lambda: node_state(node, transport.lost[0].payload["ExecutionID"]) == "Completed",
                 what="the node to record it")
        assert state(client, job_id) == "Running"  # the orchestrator never heard of it
        node.handshake()  # what the node does when its connection comes back
        assert client.wait(job_id, timeout=20)["State"]["StateType"] == "Completed"


def test_an_execution_the_node_never_heard_of_is_failed_and_retried(tmp_path: Path, settle_now: None) -> None:
    transport = LossyTransport(lambda m: m.type == msg.ASK_FOR_BID)
    with stack_with(tmp_path, transport, computes=2) as stack, Client(port=stack.port) as client:
        job_id = client.submit(tool_job("args", "x"))["JobID"]
        wait_for(lambda: transport.lost, what="the request for a bid to be lost")
        asked = transport.lost[0].target
        stack.computes[asked].handshake()
        job = client.wait(job_id, timeout=20)
        assert job["State"]["StateType"] == "Completed", job["State"]
        first, *rest = client.executions(job_id)
        assert first["ComputeState"]["StateType"] == "Failed"
        assert first["ComputeState"]["Message"] == f"node {asked} does not know this execution"
        assert rest[-1]["ComputeState"]["StateType"] == "Completed"


def test_a_request_lost_with_no_reconnection_is_settled_by_the_periodic_pass(tmp_path: Path,
                                                                             settle_now: None) -> None:
    # what an orchestrator killed between storing an AskForBid and sending it leaves behind: the nodes
    # stay connected, so no handshake comes to repair it
    transport = LossyTransport(lambda m: m.type == msg.ASK_FOR_BID)
    config = OrchestratorConfig(reconcile_interval_s=0.5)
    with stack_with(tmp_path, transport, computes=2, config=config) as stack, Client(port=stack.port) as client:
        job_id = client.submit(tool_job("args", "x"))["JobID"]
        job = client.wait(job_id, timeout=20)
        assert job["State"]["StateType"] == "Completed", job["State"]
        first, *rest = client.executions(job_id)
        assert first["ComputeState"]["Message"] == f"node {transport.lost[0].target} does not know this execution"
        assert rest[-1]["ComputeState"]["StateType"] == "Completed"


def test_a_lost_approval_starts_the_execution(tmp_path: Path) -> None:
    transport = LossyTransport(lambda m: m.type == msg.BID_ACCEPTED)
    with stack_with(tmp_path, transport) as stack, Client(port=stack.port) as client:
        job_id = client.submit(tool_job("args", "approved"))["JobID"]
        wait_for(lambda: transport.lost, what="the approval to be lost")
        stack.computes["node-1"].handshake()
        job = client.wait(job_id, timeout=20)
        assert job["State"]["StateType"] == "Completed", job["State"]
        assert len(client.executions(job_id)) == 1


def test_a_run_the_orchestrator_gave_up_on_is_cancelled(tmp_path: Path, settle_now: None) -> None:
    transport = LossyTransport(lambda m: m.type == msg.CANCEL_EXECUTION)
    with stack_with(tmp_path, transport) as stack, Client(port=stack.port) as client:
        job_id = client.submit(wasm_job(busy(60 * 3 * 10**9)))["JobID"]  # a minute: it must be cancelled
        running = wait_for(lambda: [e for e in client.executions(job_id)
                                    if e["ComputeState"]["StateType"] == "Running"], what="the run")
        client.stop(job_id)
        wait_for(lambda: transport.lost, what="the cancel to be lost")
        node = stack.computes["node-1"]
        assert node_state(node, running[0]["ID"]) == "Running"
        node.handshake()
        wait_for(lambda: node_state(node, running[0]["ID"]) == "Cancelled", what="the node to cancel it")


def test_every_message_twice_changes_nothing(tmp_path: Path) -> None:
    with stack_with(tmp_path, LossyTransport(repeat=True)) as stack, Client(port=stack.port) as client:
        ids = [client.submit(tool_job("args", str(i)))["JobID"] for i in range(3)]
        two = tool_job("env", "BACALHAU_PARTITION_INDEX")
        two["Count"] = 2
        ids.append(client.submit(two)["JobID"])
        stopped = client.submit(wasm_job(busy(60 * 3 * 10**9)))["JobID"]
        wait_for(lambda: any(e["ComputeState"]["StateType"] == "Running" for e in client.executions(stopped)),
                 what="the long job to run")
        client.stop(stopped)  # its CancelExecution comes twice too
        jobs = [client.wait(job_id, timeout=20) for job_id in ids]
        assert [j["State"]["StateType"] for j in jobs] == ["Completed"] * 4
        for job in jobs:
            execs = client.executions(job["ID"])
            assert [e["ComputeState"]["StateType"] for e in execs] == ["Completed"] * job["Count"]
            completions = [h for h in client.history(job["ID"], event_type="job")["Items"]
                           if h["Event"]["Details"].get("NewState") == "Completed"]
            assert len(completions) == 1
        assert client.wait(stopped, timeout=20)["State"]["StateType"] == "Stopped"
        assert any(p["value"] for p in client.metrics().get("cod.messages.stale", []))  # the repeats were counted


# ----------------------------------------------------------------------------- a round in parts

NATS_MAX_PAYLOAD = 1 << 20  # the NATS server's default: a bigger message is never stored


def store_with(tmp_path: Path, counts: dict[str, int]) -> JobStore:
    """A job store holding ``counts[node]`` unfinished executions on each node, in the longest state name."""
    store = JobStore(tmp_path / "jobs.db")
    job, _ = store.create_job(Job("many", JobType.BATCH, Task("t", WasmEngine("/m.wasm"))), "")
    with store.tx():
        for node_id, count in counts.items():
            for i in range(count):
                ex = store.create_execution(job.ID, node_id, i, DesiredState.RUNNING, Allocation(CPU=0.1))
                store.update_execution(ex.ID, compute=ComputeState.ASK_FOR_BID_ACCEPTED)
    return store


def listed_ids(messages: list[msg.Message]) -> list[str]:
    return [e["ID"] for m in messages for e in m.payload["Executions"]]


def test_a_node_with_many_executions_gets_its_round_in_parts_under_the_payload_limit(tmp_path: Path) -> None:
    part_size = orchestrator_reconcile.PART_SIZE
    store = store_with(tmp_path, {"node-1": 2 * part_size + 1, "node-2": 3})
    parts = reconcile_messages(store, "node-1")
    assert [(m.payload["Part"], m.payload["Parts"]) for m in parts] == [(0, 3), (1, 3), (2, 3)]
    assert len({m.payload["Round"] for m in parts}) == 1
    assert [len(m.payload["Executions"]) for m in parts] == [part_size, part_size, 1]
    sizes = [len(m.to_json().encode()) for m in parts]  # what the NATS transport publishes
    assert max(sizes) < NATS_MAX_PAYLOAD // 2, sizes
    ids = listed_ids(parts)
    expected = [e.ID for e in store.active_executions() if e.NodeID == "node-1"]
    assert len(ids) == len(set(ids)) and sorted(ids) == sorted(expected)  # each exactly once
    again = reconcile_messages(store, "node-1")
    assert again[0].payload["Round"] != parts[0].payload["Round"]  # a new round each time
    empty = reconcile_messages(store, "node-3")  # it holds nothing it should keep: it must still hear so
    assert [(m.payload["Part"], m.payload["Parts"], m.payload["Executions"]) for m in empty] == [(0, 1, [])]
    store.close()


class FakeNode:
    """What reconciliation uses of a compute node: its executions (all live, old enough to be judged)."""

    def __init__(self, live: list[str]) -> None:
        self.node_id = "node-1"
        self.reconcile_rounds = compute_reconcile.Rounds()
        old = time.time_ns() - 60 * 10**9
        self.records = {i: SimpleNamespace(ID=i, state=ComputeState.RUNNING, create_time=old) for i in live}
        self.cancelled: list[str] = []
        self.store = self

    def get(self, exec_id: str) -> SimpleNamespace | None:
        return self.records.get(exec_id)

    def live(self) -> list[SimpleNamespace]:
        return [r for r in self.records.values() if r.ID not in self.cancelled]

    def report(self, type_: str, payload: dict[str, Any]) -> None:
        pass

    def approve(self, exec_id: str, message: msg.Message) -> None:
        pass

    def cancel(self, exec_id: str, reason: str) -> None:
        self.cancelled.append(exec_id)


def deliver(node: FakeNode, message: msg.Message) -> None:
    compute_reconcile.reconcile(node, msg.Message.from_json(message.to_json()))


@pytest.fixture
def round_in_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[JobStore, FakeNode]]:
    """Five executions the orchestrator counts on, sent two a part, and a node also running one it forgot."""
    monkeypatch.setattr(orchestrator_reconcile, "PART_SIZE", 2)
    store = store_with(tmp_path, {"node-1": 5})
    node = FakeNode([e.ID for e in store.active_executions()] + ["e-forgotten"])
    yield store, node
    store.close()


def test_the_unlisted_are_cancelled_only_once_the_last_part_arrived(round_in_parts: tuple[JobStore, FakeNode]) -> None:
    store, node = round_in_parts
    *first, last = reconcile_messages(store, "node-1")
    assert len(first) == 2
    for part in first:
        deliver(node, part)
        assert node.cancelled == []  # the parts still to come may list it
    deliver(node, last)
    assert node.cancelled == ["e-forgotten"]


def test_a_round_missing_a_part_cancels_nothing_and_the_next_round_does(
        round_in_parts: tuple[JobStore, FakeNode]) -> None:
    store, node = round_in_parts
    first, _lost, last = reconcile_messages(store, "node-1")
    deliver(node, first)
    deliver(node, last)
    deliver(node, last)  # a repeat does not make up for the lost part
    assert node.cancelled == []
    for part in reconcile_messages(store, "node-1"):
        deliver(node, part)
    assert node.cancelled == ["e-forgotten"]


def test_a_message_without_parts_is_a_whole_round(round_in_parts: tuple[JobStore, FakeNode]) -> None:
    store, node = round_in_parts
    listed = [e for m in reconcile_messages(store, "node-1") for e in m.payload["Executions"]]
    deliver(node, msg.make_message(msg.RECONCILE, msg.ORCHESTRATOR, "node-1", {"Executions": listed}))
    assert node.cancelled == ["e-forgotten"]
