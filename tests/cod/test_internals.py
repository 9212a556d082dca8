"""Units of the network: transport, state machines, job store, broker, scheduling with a fake executor."""
from __future__ import annotations

import threading
import time

import pytest
from cod_helpers import run, tool_job, wait_for
from opentelemetry.sdk.trace import TracerProvider

from cod_reference.client import Client
from cod_reference.devstack import Devstack
from cod_reference.executor.types import ExecutionOutcome, ExecutionRequest
from cod_reference.models import DEFAULT_MEMORY, Allocation, Evaluation, Job, JobStatus, JobType, Task, WasmEngine
from cod_reference.orchestrator.broker import EvaluationBroker
from cod_reference.orchestrator.store import Ambiguous, JobStore, NotFound
from cod_reference.states import (
    ComputeState,
    DesiredState,
    JobState,
    TransitionError,
    check_execution_transition,
    check_job_transition,
)
from cod_reference.transport import InProcessTransport, Message, make_message
from cod_reference.transport import messages as msg

# ----------------------------------------------------------------------------- transport

def test_messages_are_json_and_carry_trace_context() -> None:
    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("sender") as span:
        m = make_message(msg.ASK_FOR_BID, "orchestrator", "node-1", {"x": [1, "two"]})
    back = Message.from_json(m.to_json())
    assert back == m
    assert back.trace_context["traceparent"].split("-")[1] == format(span.get_span_context().trace_id, "032x")
    with pytest.raises(ValueError, match="not a cod message"):
        Message.from_json('{"type": "Nope"}')


def test_inprocess_transport_keeps_order_and_buffers_while_unsubscribed() -> None:
    t = InProcessTransport()
    got: list[int] = []
    done = threading.Event()

    def handler(m: Message) -> None:
        got.append(m.payload["i"])
        if m.payload["i"] == 9:
            done.set()

    for i in range(5):  # nobody listens yet: kept
        t.send(make_message(msg.HEARTBEAT, "a", "b", {"i": i}))
    t.subscribe("b", handler)
    with pytest.raises(ValueError, match="already subscribed"):
        t.subscribe("b", handler)
    wait_for(lambda: len(got) == 5)
    t.unsubscribe("b")
    for i in range(5, 10):
        t.send(make_message(msg.HEARTBEAT, "a", "b", {"i": i}))
    time.sleep(0.05)
    assert got == [0, 1, 2, 3, 4]
    t.subscribe("b", handler)  # a restarted node gets what arrived meanwhile
    assert done.wait(5)
    assert got == list(range(10))
    t.close()


def test_a_failing_handler_does_not_stop_delivery() -> None:
    t = InProcessTransport()
    got = []

    def handler(m: Message) -> None:
        if m.payload["i"] == 0:
            raise RuntimeError("boom")
        got.append(m.payload["i"])

    t.subscribe("n", handler)
    for i in range(3):
        t.send(make_message(msg.HEARTBEAT, "a", "n", {"i": i}))
    wait_for(lambda: got == [1, 2])
    t.close()


# ----------------------------------------------------------------------------- state machines

def test_state_machines() -> None:
    check_job_transition(JobState.PENDING, JobState.RUNNING)
    check_job_transition(JobState.RUNNING, JobState.QUEUED)
    for final in (JobState.COMPLETED, JobState.FAILED, JobState.STOPPED):
        with pytest.raises(TransitionError):
            check_job_transition(final, JobState.RUNNING)
    check_execution_transition(ComputeState.NEW, ComputeState.ASK_FOR_BID)
    check_execution_transition(ComputeState.RUNNING, ComputeState.PUBLISHING)
    with pytest.raises(TransitionError, match="from Completed to Running"):
        check_execution_transition(ComputeState.COMPLETED, ComputeState.RUNNING)
    with pytest.raises(TransitionError):
        check_execution_transition(ComputeState.NEW, ComputeState.COMPLETED)
    assert ComputeState.CANCELLED.discarded and not ComputeState.COMPLETED.discarded


# ----------------------------------------------------------------------------- job store and broker

def spec(name: str = "", labels: dict[str, str] | None = None) -> Job:
    return Job(name, JobType.BATCH, Task("t", WasmEngine("/m.wasm")), Labels=labels or {})


def test_job_store_lookup_and_persistence(tmp_path) -> None:
    store = JobStore(tmp_path / "jobs.db")
    job, eval_id = store.create_job(spec("named"), "")
    other, _ = store.create_job(spec(), "")
    assert store.find_job("named").ID == job.ID
    assert store.find_job(job.ID[:12]).ID == job.ID
    assert store.find_job(job.ID[2:12]).ID == job.ID
    assert other.Name == other.ID
    with pytest.raises(Ambiguous):
        store.find_job("j-")
    with pytest.raises(NotFound):
        store.find_job("j-ffffffff-0000")
    with pytest.raises(NotFound):
        store.find_job("%")  # taken literally, not as a wildcard
    ex = store.create_execution(job.ID, "node-1", 0, DesiredState.PENDING, Allocation(CPU=0.1))
    store.update_execution(ex.ID, compute=ComputeState.ASK_FOR_BID)
    store.update_execution(ex.ID, compute=ComputeState.FAILED, message="gone")
    assert store.update_execution(ex.ID, compute=ComputeState.RUNNING) is None  # terminal stays
    store.set_job_state(job.ID, JobState.FAILED, "gone")
    store.close()
    again = JobStore(tmp_path / "jobs.db")
    assert again.get_job(job.ID).State == JobStatus(JobState.FAILED, "gone")
    assert [e.ID for e in again.pending_evaluations()][0] == eval_id
    topics = [h["Event"]["Topic"] for h in again.history(job.ID)]
    assert {h["ExecutionID"] for h in again.history(job.ID, execution_id=ex.ID[:6])} == {ex.ID}
    assert again.history(job.ID, execution_id="%") == []
    assert topics[0] == "Submission" and topics[-1] == "JobStateUpdate"
    again.close()


def test_job_store_pages(tmp_path) -> None:
    store = JobStore(tmp_path / "jobs.db")
    ids = [store.create_job(spec(f"p{i}", {"odd": str(i % 2)}), "")[0].ID for i in range(5)]
    assert [j.ID for j in store.list_jobs(2, 1)] == [ids[3], ids[2]]  # newest first
    assert [j.ID for j in store.list_jobs(2, 4, reverse=False)] == [ids[4]]
    assert [j.ID for j in store.list_jobs(5, 0, {"odd": "1"})] == [ids[3], ids[1]]
    store.close()


def test_broker_one_job_in_flight_and_delays() -> None:
    b = EvaluationBroker()
    now = time.time_ns()
    b.enqueue(Evaluation("1", "a", "test", WaitUntil=0))
    b.enqueue(Evaluation("2", "a", "test", WaitUntil=0))
    b.enqueue(Evaluation("3", "b", "test", WaitUntil=now + int(0.2e9)))
    first = b.dequeue(0.1)
    assert [e.ID for e in first] == ["1", "2"]  # both evaluations of job a in one pass
    t0 = time.monotonic()
    assert [e.ID for e in b.dequeue(1)] == ["3"]
    assert time.monotonic() - t0 > 0.1
    b.enqueue(Evaluation("4", "a", "test", WaitUntil=0))
    assert b.dequeue(0.05) is None  # job a is still in flight
    assert b.has_due("a") and not b.has_due("b")  # a waits for its pass; b's was taken
    b.done("a")
    assert [e.ID for e in b.dequeue(0.1)] == ["4"]
    b.close()


# ----------------------------------------------------------------------------- scheduling with a fake executor

class FakeExecutor:
    """Prints its argv; 'sleep' makes it wait until cancelled (or 5 s)."""

    def __init__(self) -> None:
        self.requests: list[ExecutionRequest] = []

    def run(self, request: ExecutionRequest, cancel: threading.Event | None = None) -> ExecutionOutcome:
        self.requests.append(request)
        if request.args[:1] == ["sleep"]:
            cancelled = cancel.wait(5) if cancel else False
            if cancelled:
                return ExecutionOutcome(None, "", "", False, False, "cancelled", "cancelled", 0.0)
        if request.args[:1] == ["tick"]:  # output that arrives while the job runs
            with open(request.stdout_path, "w") as fh:
                for i in range(int(request.args[1])):
                    fh.write(f"tick {i}\n")
                    fh.flush()
                    time.sleep(0.1)
            open(request.stderr_path, "w").close()
            return ExecutionOutcome(0, "", "", False, False, None, None, 0.1)
        out = " ".join(request.args) + "\n"
        with open(request.stdout_path, "w") as fh:
            fh.write(out)
        open(request.stderr_path, "w").close()
        return ExecutionOutcome(0, out, "", False, False, None, None, 0.001)


def test_data_locality_and_fake_executor(tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    executors: dict[str, FakeExecutor] = {}

    def factory(node_dir, _telemetry):
        executors[node_dir.name] = FakeExecutor()
        return executors[node_dir.name]

    with Devstack(data_dir=tmp_path / "stack", computes=0, port=0, executor_factory=factory) as stack:
        for paths in ([], [str(data)], []):
            stack.add_compute(allowed_local_paths=paths)
        with Client(port=stack.port) as client:
            wait_for(lambda: len(client.nodes()) == 4, what="nodes")
            local = {"Source": {"Type": "local", "Params": {"SourcePath": str(data)}}, "Target": "/data"}
            for _ in range(3):  # always the node holding the data
                job = run(client, tool_job("hi", inputs=[local]))
                assert job["State"]["StateType"] == "Completed", job["State"]
                assert [e["NodeID"] for e in client.executions(job["ID"])] == ["node-2"]
            req = executors["node-2"].requests[-1]
            (mount,) = [m for m in req.mounts if m.guest_path == "/data"]
            assert mount.readonly and mount.host_path.startswith("/proc/self/fd/")  # the checked dir, pinned
            assert req.env["BACALHAU_PARTITION_COUNT"] == "1" and req.memory_limit_bytes == DEFAULT_MEMORY
            # cancelling a running execution reaches the executor
            job_id = client.submit(tool_job("sleep"))["JobID"]
            wait_for(lambda: client.get_job(job_id)["Job"]["State"]["StateType"] == "Running")
            client.stop(job_id)
            assert client.wait(job_id, timeout=5)["State"]["StateType"] == "Stopped"


def test_logs_follow_a_running_job(tmp_path, capsys) -> None:
    from cod_reference.cli import main

    with Devstack(data_dir=tmp_path, computes=1, port=0, executor_factory=lambda d, t: FakeExecutor()) as stack:
        with Client(port=stack.port) as client:
            job_id = client.submit(tool_job("tick", "8"))["JobID"]
            wait_for(lambda: client.logs(job_id)["Stdout"], what="the first output")
            assert main(["job", "logs", job_id, "--follow", "--api-port", str(stack.port)]) == 0
            assert capsys.readouterr().out == "".join(f"tick {i}\n" for i in range(8))
            # the log stream ends when the node publishes, before the orchestrator records the end
            assert client.wait(job_id, timeout=30)["State"]["StateType"] == "Completed"


def test_a_rejected_bid_moves_the_job_to_another_node(tmp_path) -> None:
    with Devstack(data_dir=tmp_path, computes=2, port=0, executor_factory=lambda d, t: FakeExecutor()) as stack:
        stack.computes["node-1"].bidder.refusal = lambda job: "busy with something else"  # type: ignore[method-assign]
        with Client(port=stack.port) as client:
            doc = tool_job("hi")
            doc["Count"] = 2  # one partition would land on node-1 by spreading
            job = run(client, doc)
            assert job["State"]["StateType"] == "Completed", job["State"]
            execs = client.executions(job["ID"])
            rejected = [e for e in execs if e["ComputeState"]["StateType"] == "AskForBidRejected"]
            assert rejected and all(e["NodeID"] == "node-1" for e in rejected)
            assert rejected[0]["ComputeState"]["Message"] == "busy with something else"
            assert {e["NodeID"] for e in execs if e["ComputeState"]["StateType"] == "Completed"} == {"node-2"}
            assert client.metrics()["cod.bids"]  # counted by outcome
