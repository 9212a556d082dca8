"""End to end against a devstack: jobs from submit to result, through the HTTP API."""
from __future__ import annotations

import io
import tarfile
import time

import httpx
import pytest
from cod_helpers import EXAMPLES, TOOL, inline, run, stdout_of, tool_job, wait_for

from cod_reference.client import APIError, Client
from cod_reference.models import wasm_job

COD_TRANSPORTS = ("inprocess", "nats")  # every test here runs on both devstacks


def test_hello_world(cod_client: Client) -> None:
    job = run(cod_client, wasm_job((EXAMPLES / "hello.wasm").read_bytes(), name="hello"))
    assert job["State"]["StateType"] == "Completed", job["State"]
    assert stdout_of(cod_client, job)[0].startswith("Hello, World! 0\n")
    # the job is found by name and by a short ID prefix too
    assert cod_client.get_job("hello")["Job"]["ID"] == job["ID"]
    assert cod_client.get_job(job["ID"][2:10])["Job"]["ID"] == job["ID"]
    logs = cod_client.logs(job["ID"])
    assert logs["Done"] and logs["Stdout"].startswith("Hello, World! 0")


def test_args_and_exit_code_zero(cod_client: Client) -> None:
    job = run(cod_client, tool_job("args", "one", "two words"))
    assert job["State"]["StateType"] == "Completed"
    (ex,) = cod_client.executions(job["ID"])
    assert ex["RunOutput"]["ExitCode"] == 0
    assert ex["RunOutput"]["Stdout"].splitlines()[1:] == ["args", "one", "two words"]


def test_nonzero_exit_fails_without_retry(cod_client: Client) -> None:
    job = run(cod_client, tool_job("exit", "3"))
    assert job["State"]["StateType"] == "Failed"
    assert "exited with code 3: bye 3" in job["State"]["Message"]
    (ex,) = cod_client.executions(job["ID"])  # a program's own failure is not retried elsewhere
    assert ex["ComputeState"]["StateType"] == "Failed"
    assert ex["RunOutput"]["ExitCode"] == 3


def test_env_and_system_env(cod_client: Client) -> None:
    job = run(cod_client, tool_job("env", "GREETING", "BACALHAU_PARTITION_INDEX", "BACALHAU_JOB_ID", "MISSING",
                                   env={"GREETING": "hi there"}))
    out = stdout_of(cod_client, job)[0].splitlines()
    assert out == ["GREETING=hi there", "BACALHAU_PARTITION_INDEX=0", f"BACALHAU_JOB_ID={job['ID']}",
                   "MISSING unset"]


def test_inline_and_local_inputs_and_results(cod_stack, cod_client: Client, cod_local_dir, tmp_path) -> None:
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w:gz") as t:
        data = b"inside a tarball\n"
        info = tarfile.TarInfo("nested.txt")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    doc = tool_job("cat", "/data/in.txt", inputs=[inline(b"inline input\n", "/data/in.txt")])
    job = run(cod_client, doc)
    assert stdout_of(cod_client, job) == ["inline input\n"]
    (ex,) = cod_client.executions(job["ID"])  # the node's copies of the inputs are gone once it has run
    exec_dir = cod_stack.data_dir / "compute" / ex["NodeID"] / "executions" / ex["ID"]
    assert (exec_dir / "stdout").is_file() and not (exec_dir / "inputs").exists()

    doc = tool_job("cat", "/dir/nested.txt", inputs=[inline(tar.getvalue(), "/dir", "application/gzip")])
    assert stdout_of(cod_client, run(cod_client, doc)) == ["inside a tarball\n"]

    local = {"Source": {"Type": "local", "Params": {"SourcePath": str(cod_local_dir)}}, "Target": "/local"}
    job = run(cod_client, tool_job("cat", "/local/greeting.txt", inputs=[local]))
    assert stdout_of(cod_client, job) == ["hello from a local input\n"]

    doc = tool_job("write", "/out/x.txt", "result!", ResultPaths=[{"Name": "out", "Path": "/out"}])
    job = run(cod_client, doc)
    assert job["State"]["StateType"] == "Completed", job["State"]
    (result,) = cod_client.results(job["ID"])
    assert result["Type"] == "urlDownload"
    cod_client.download_results(job["ID"], tmp_path / "res")
    assert (tmp_path / "res" / "out" / "x.txt").read_text() == "result!"
    assert (tmp_path / "res" / "exitCode").read_text() == "0"


def test_local_input_outside_allow_list_is_refused(cod_client: Client, tmp_path) -> None:
    local = {"Source": {"Type": "local", "Params": {"SourcePath": str(tmp_path)}}, "Target": "/local"}
    job = run(cod_client, tool_job("ls", "/local", inputs=[local]))
    assert job["State"]["StateType"] == "Failed"
    assert "does not hold the job's local inputs" in job["State"]["Message"]


def test_import_modules(cod_client: Client) -> None:
    math = b'(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))'
    entry = b"""(module (import "math" "add" (func $add (param i32 i32) (result i32)))
      (func (export "_start")
        (if (i32.ne (call $add (i32.const 2) (i32.const 3)) (i32.const 5)) (then unreachable))))"""
    doc = wasm_job(entry, inputs=[inline(math, "/lib/math.wasm")])
    doc["Tasks"][0]["Engine"]["Params"]["ImportModules"] = ["/lib/math.wasm"]
    job = run(cod_client, doc)
    assert job["State"]["StateType"] == "Completed", job["State"]


def test_constraints_matching_no_node(cod_client: Client) -> None:
    doc = tool_job("args")
    doc["Constraints"] = [{"Key": "env", "Operator": "=", "Values": ["production"]}]
    job = run(cod_client, doc)
    assert job["State"]["StateType"] == "Failed"
    assert "not enough nodes" in job["State"]["Message"]
    assert "node-1: labels do not match the job's constraints" in job["State"]["Message"]
    assert cod_client.executions(job["ID"]) == []

    doc["Constraints"] = [{"Key": "name", "Operator": "in", "Values": ["node-2"]}]
    job = run(cod_client, doc)
    assert [e["NodeID"] for e in cod_client.executions(job["ID"])] == ["node-2"]


def test_count_partitions(cod_client: Client) -> None:
    doc = tool_job("env", "BACALHAU_PARTITION_INDEX", "BACALHAU_PARTITION_COUNT", count=3)
    doc["Count"] = 3
    job = run(cod_client, doc)
    assert job["State"]["StateType"] == "Completed"
    execs = cod_client.executions(job["ID"])
    assert sorted(e["PartitionIndex"] for e in execs) == [0, 1, 2]
    assert len({e["NodeID"] for e in execs}) == 3  # spread over the nodes
    for ex in execs:
        assert ex["RunOutput"]["Stdout"] == (f"BACALHAU_PARTITION_INDEX={ex['PartitionIndex']}\n"
                                             "BACALHAU_PARTITION_COUNT=3\n")


def test_ops_job_runs_on_every_node(cod_client: Client) -> None:
    job = run(cod_client, wasm_job(TOOL, args=["args"], job_type="ops"))
    assert job["State"]["StateType"] == "Completed", job["State"]
    assert sorted(e["NodeID"] for e in cod_client.executions(job["ID"])) == ["node-1", "node-2", "node-3"]


def test_stop_a_running_job(cod_client: Client) -> None:
    job_id = cod_client.submit(tool_job("spin"))["JobID"]
    wait_for(lambda: any(e["ComputeState"]["StateType"] == "Running" for e in cod_client.executions(job_id)),
             what="the execution to run")
    assert cod_client.stop(job_id, "enough")["EvaluationID"]
    job = cod_client.wait(job_id, timeout=10)
    assert job["State"]["StateType"] == "Stopped"
    assert job["State"]["Message"] == "enough"
    (ex,) = cod_client.executions(job_id)
    assert ex["ComputeState"]["StateType"] == "Cancelled"
    # the node really stops the guest: its capacity comes back
    wait_for(lambda: all(n["Info"].get("RunningExecutions", 0) == 0 for n in cod_client.nodes()
                         if n["Info"]["NodeType"] == "Compute"), timeout=15, what="the guest to stop")
    assert cod_client.stop(job_id)["EvaluationID"] == ""  # stopping again is a no-op
    completed = run(cod_client, tool_job("args"))
    with pytest.raises(APIError, match="already completed"):
        cod_client.stop(completed["ID"])


def test_execution_timeout_kills_infinite_loop(cod_client: Client) -> None:
    t0 = time.monotonic()
    doc = tool_job("spin", Timeouts={"ExecutionTimeout": 0.5})
    job = run(cod_client, doc)
    assert job["State"]["StateType"] == "Failed"
    assert "timeout" in job["State"]["Message"]
    assert time.monotonic() - t0 < 10
    (ex,) = cod_client.executions(job["ID"])
    assert ex["RunOutput"]["ErrorKind"] == "timeout"


def test_memory_cap(cod_client: Client) -> None:
    ok = run(cod_client, tool_job("grow", "8", Resources={"Memory": "64MiB"}))
    assert ok["State"]["StateType"] == "Completed", ok["State"]
    job = run(cod_client, tool_job("grow", "64", Resources={"Memory": "32MiB"}))
    assert job["State"]["StateType"] == "Failed"
    assert "allocation" in job["State"]["Message"] or "memory" in job["State"]["Message"]


def test_trap_fails_the_job(cod_client: Client) -> None:
    job = run(cod_client, wasm_job((EXAMPLES / "trap.wasm").read_bytes()))
    assert job["State"]["StateType"] == "Failed"
    assert "trap" in job["State"]["Message"]
    assert len(cod_client.executions(job["ID"])) == 1


def test_invalid_specs_are_rejected_with_the_field_path(cod_client: Client) -> None:
    doc = tool_job("args")
    doc["Tasks"][0]["Resources"] = {"Memory": "lots"}
    doc["Tasks"][0]["Timeouts"] = {"ExecutionTimeout": -1}
    doc["Colour"] = "blue"
    with pytest.raises(APIError) as err:
        cod_client.submit(doc)
    assert err.value.status == 400
    message = str(err.value)
    assert "Tasks[0].Resources.Memory: 'lots' is not a size" in message
    assert "Tasks[0].Timeouts.ExecutionTimeout: must not be negative" in message
    assert "Colour: unknown field" in message
    with pytest.raises(APIError, match="not found"):
        cod_client.get_job("j-doesnotexist")


def test_unknown_entrypoint_and_bad_module(cod_client: Client) -> None:
    job = run(cod_client, tool_job("args", entrypoint="nope"))
    assert job["State"]["StateType"] == "Failed"
    assert "nope" in job["State"]["Message"]
    job = run(cod_client, wasm_job(b"\x00asm\x01\x00\x00\x00garbage"))
    assert job["State"]["StateType"] == "Failed"


def test_api_shapes(cod_stack, cod_client: Client) -> None:
    schema = httpx.get(f"{cod_stack.url}/openapi.json").json()
    assert "/api/v1/orchestrator/jobs" in schema["paths"]
    assert "/api/v1/orchestrator/jobs/{job_id}/trace" in schema["paths"]
    nodes = cod_client.nodes()
    assert {n["Info"]["NodeID"] for n in nodes} == {"orchestrator", "node-1", "node-2", "node-3"}
    assert all(n["Info"]["Labels"]["env"] == "devstack" for n in nodes if n["Info"]["NodeType"] == "Compute")
    jobs = cod_client.list_jobs()
    assert jobs and all("ID" in j and "State" in j for j in jobs)
    history = cod_client.history(jobs[-1]["ID"])
    assert history["NextToken"] == "" and history["Items"][0]["Event"]["Message"] == "Job submitted"
    metrics = cod_client.metrics()
    assert "cod.jobs.finished" in metrics and "cod.bids" in metrics


def test_trace_of_an_instrumented_guest(cod_client: Client) -> None:
    job = run(cod_client, wasm_job((EXAMPLES / "hello.instr.wasm").read_bytes()))
    assert job["State"]["StateType"] == "Completed", job["State"]

    expected = {"submit", "evaluation", "scheduling", "bid", "execution", "compile", "instantiate", "call", "publish"}

    def spans():
        # a node's spans arrive in batches, and `execution` ends after the job's result was sent
        found = cod_client.trace(job["ID"], "records")["Spans"]
        return found if expected <= {s["name"] for s in found} else None

    records = wait_for(spans, what="the job's spans")
    trace_ids = {s["traceId"] for s in records}
    assert len(trace_ids) == 1
    by_id = {s["spanId"]: s for s in records}
    ours = ("cod_reference.orchestrator", "cod_reference.compute", "cod_reference.executor")
    guest = [s for s in records if s["scope"] not in ours]
    assert guest, "the guest's function spans are in the job's trace"
    roots = [s for s in guest if by_id.get(s["parentSpanId"], {}).get("scope") in ours]
    assert roots and all(by_id[s["parentSpanId"]]["scope"] == "cod_reference.executor" for s in roots)
    assert any(s["name"] == "main" for s in guest)
    # the compute node's spans hang under the orchestrator's scheduling pass that sent the message
    assert {by_id[s["parentSpanId"]]["name"] for s in records if s["name"] in ("bid", "execution")} == {"scheduling"}
    otlp = cod_client.trace(job["ID"])
    assert otlp["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] in trace_ids


def test_url_download_input(cod_client: Client) -> None:
    # a published result of one job (served by the API) is the input of the next
    first = run(cod_client, tool_job("args", "x"))
    (result,) = cod_client.results(first["ID"])
    url = result["Params"]["URL"]
    source = {"Source": {"Type": "urlDownload", "Params": {"URL": url}}, "Target": "/dl"}
    job = run(cod_client, tool_job("ls", "/dl", inputs=[source]))
    assert job["State"]["StateType"] == "Completed", job["State"]
    assert stdout_of(cod_client, job) == [url.rsplit("/", 1)[1] + "\n"]
    missing = {"Source": {"Type": "urlDownload", "Params": {"URL": url.replace("e-", "e-nope")}}, "Target": "/dl"}
    job = run(cod_client, tool_job("ls", "/dl", inputs=[missing]))
    assert job["State"]["StateType"] == "Failed"
    assert "could not download" in job["State"]["Message"]


def test_total_timeout(cod_client: Client) -> None:
    job = run(cod_client, tool_job("spin", Timeouts={"TotalTimeout": 0.5}))
    assert job["State"]["StateType"] == "Failed"
    assert "timeout" in job["State"]["Message"].lower()


def test_idempotency_key(cod_client: Client) -> None:
    key = f"test-{time.monotonic_ns()}"
    first = cod_client.submit(tool_job("args", "once"), idempotency_key=key)
    again = cod_client.submit(tool_job("args", "twice"), idempotency_key=key)  # the answer of the first was "lost"
    assert again == first
    assert cod_client.wait(first["JobID"], timeout=30)["State"]["StateType"] == "Completed"
    assert stdout_of(cod_client, cod_client.get_job(first["JobID"])["Job"])[0].endswith("once\n")
    other = cod_client.submit(tool_job("args"), idempotency_key=key + "-2")
    assert other["JobID"] != first["JobID"]
    with pytest.raises(APIError, match="Idempotency-Key: is longer than 256"):
        cod_client.submit(tool_job("args"), idempotency_key="k" * 257)


PRINT_THEN_SPIN = b"""(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "started\\n")
  (func (export "_start") (local $i i64)
    (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 8))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (loop $l (local.set $i (i64.add (local.get $i) (i64.const 1))) (br $l))))"""


def test_logs_of_a_running_execution(cod_client: Client) -> None:
    # on the multi-process devstack the orchestrator reads them from the node's own API
    job_id = cod_client.submit(wasm_job(PRINT_THEN_SPIN))["JobID"]
    page = wait_for(lambda: (p := cod_client.logs(job_id)) and "started" in p["Stdout"] and p, timeout=20,
                    what="the running execution's output")
    assert not page["Done"]
    cod_client.stop(job_id)
    assert cod_client.wait(job_id, timeout=20)["State"]["StateType"] == "Stopped"
