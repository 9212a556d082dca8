"""Filling the node's disk: output floods, failed executions, results kept for ever; and what
retention removed is said (410 Gone, the CLI's one line, describe, a metric), never silently empty."""
from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sec_helpers import attack, wait

from cod_cli import cod_cli
from cod_reference.cli import main
from cod_reference.client import APIError, Client
from cod_reference.compute.paths import remove_tree
from cod_reference.compute.policy import NodePolicy
from cod_reference.compute.store import SCHEMA as NODE_SCHEMA
from cod_reference.compute.store import ExecutionStore
from cod_reference.devstack import Devstack
from cod_reference.executor.wasm import WasmExecutor
from cod_reference.models import Removal, Removed, wasm_job
from cod_reference.orchestrator.node_api import NodeAPI
from cod_reference.orchestrator.store import SCHEMA as JOBS_SCHEMA
from cod_reference.orchestrator.store import JobStore
from cod_reference.procstack import ProcessDevstack
from cod_reference.sqlite import open_db

MiB = 1 << 20
CAP = 8 * MiB   # the executor's cap on each stream, in this devstack

FLOOD = b"""(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 1024)) (i32.store (i32.const 4) (i32.const 65536))
    (loop $l
      (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (drop (call $w (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
      (br $l))))"""

# 1000 lines of 32 bytes on stdout: more than the 4 KiB head the result keeps
LINES = b"""(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "a line of output from the guest\\n")
  (func (export "_start") (local $i i32)
    (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 32))
    (loop $l
      (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 1000))))))"""
OUT = [{"Name": "out", "Path": "/out"}]
AT = r" at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


@pytest.fixture(scope="module")
def disk_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devstack]:
    """node-1 keeps finished executions 0.5 s; node-2 keeps at most 300 KiB of them, for ever;
    node-3 keeps them as a node does by default; node-4 is node-1 whose FilesRemoved messages are
    lost (the orchestrator learns of its removals only when it reads the logs)."""
    def small_streams(node_dir: Path, telemetry: Any) -> WasmExecutor:
        return WasmExecutor(max_output_bytes=CAP, tracer_provider=telemetry.tracer_provider,
                            meter_provider=telemetry.meter_provider)

    stack = Devstack(data_dir=tmp_path_factory.mktemp("disk-stack"), computes=0, port=0,
                     capacity={"CPU": 2.0, "Memory": 2 * 2**30}, heartbeat_interval_s=0.2,
                     executor_factory=small_streams)
    stack.start()
    stack.add_compute(policy=NodePolicy(retention_s=0.5, retention_sweep_s=0.1))
    stack.add_compute(policy=NodePolicy(retention_s=None, retention_bytes=300 << 10, retention_sweep_s=0.1))
    stack.add_compute()
    stack.add_compute(policy=NodePolicy(retention_s=0.5, retention_sweep_s=0.1)).janitor.on_removed = None
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def disk_client(disk_stack: Devstack) -> Iterator[Client]:
    with Client(port=disk_stack.port) as client:
        yield client


@pytest.fixture()
def cod(disk_stack: Devstack, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[int, str, str]]:
    """The cod command line against the devstack: ``cod(*args) -> (exit status, stdout, stderr)``."""
    return cod_cli(disk_stack.port, capsys, monkeypatch)


def on(node: str, doc: dict[str, Any]) -> dict[str, Any]:
    doc["Constraints"] = [{"Key": "id", "Operator": "=", "Values": [node]}]
    return doc


def finish(client: Client, doc: dict[str, Any]) -> dict[str, Any]:
    return client.wait(client.submit(doc)["JobID"], timeout=60, interval=0.05)


def exec_dir(stack: Devstack, client: Client, job: dict[str, Any]) -> Path:
    (ex,) = client.executions(job["ID"])
    return stack.data_dir / "compute" / ex["NodeID"] / "executions" / ex["ID"]


def removed(client: Client, job: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
    """The job's execution, once the orchestrator shows that retention removed its files."""
    seen: list[dict[str, Any]] = []

    def gone() -> bool:
        seen[:] = client.executions(job["ID"])
        return bool(seen[0]["FilesRemoved"])
    wait(gone, "the orchestrator to show the execution's files removed", timeout)
    return seen[0]


def said(what: str, ex: dict[str, Any], limit: str) -> str:
    """The pattern of the one line saying that retention removed ``what`` of ``ex``."""
    return f"the {what} of execution {ex['ID']} were removed by node {ex['NodeID']}'s retention " \
           f"\\({re.escape(limit)}\\){AT}"


def counted(client: Client, reason: str) -> float:
    return sum(p["value"] for p in client.metrics().get("cod.retention.removed", [])
               if p["attributes"].get("reason") == reason)



def test_a_flood_is_cut_on_disk_and_a_failed_run_keeps_little(disk_stack: Devstack, disk_client: Client) -> None:
    job = finish(disk_client, on("node-3", wasm_job(FLOOD)))
    assert job["State"]["StateType"] == "Failed"
    assert "output limit of 8 MiB exceeded" in job["State"]["Message"] or \
        "output limit of 8 MiB exceeded" in str(disk_client.executions(job["ID"]))
    directory = exec_dir(disk_stack, disk_client, job)
    for stream in ("stdout", "stderr"):
        size = (directory / stream).stat().st_size
        assert size <= NodePolicy().failed_stream_keep_bytes + 100, f"{stream} keeps {size} bytes"
    text = (directory / "stdout").read_bytes()
    assert b"bytes dropped here]" in text


def test_finished_executions_are_removed_after_the_retention_age(disk_stack: Devstack, disk_client: Client,
                                                                  cod: Callable[..., tuple[int, str, str]]) -> None:
    job = finish(disk_client, on("node-1", attack("write /out/r.txt result", "cat /out/r.txt", ResultPaths=OUT)))
    assert job["State"]["StateType"] == "Completed"
    directory = exec_dir(disk_stack, disk_client, job)
    archive = directory.parent.parent / "results" / f"{directory.name}.tar.gz"
    wait(lambda: not directory.exists() and not archive.exists(), "retention to remove the files")
    ex = removed(disk_client, job)
    assert {k: ex["FilesRemoved"][k] for k in ("ExecutionID", "NodeID", "Reason", "Limit")} == \
        {"ExecutionID": ex["ID"], "NodeID": "node-1", "Reason": "age", "Limit": "older than 0.5s"}
    (result,) = disk_client.results(job["ID"])
    answer = httpx.get(result["Params"]["URL"], timeout=10)   # not a bare 404: said, with when and why
    assert answer.status_code == 410 and answer.json()["Code"] == "Removed", answer.text
    assert re.fullmatch(said("results", ex, "older than 0.5s"), answer.json()["Message"]), answer.json()
    assert disk_client.get_job(job["ID"])["Job"]["State"]["StateType"] == "Completed"   # the record stays
    # the whole output (a few short lines) came with the result: all of it is shown, and a note says why
    code, out, err = cod("job", "logs", job["ID"])
    assert code == 0 and out == ex["RunOutput"]["Stdout"] and "result" in out, (code, out, err)
    assert re.fullmatch(f"Note: {said('logs', ex, 'older than 0.5s')}; all of it, as kept with the execution's "
                        "result\n", err), err


def test_removed_logs_and_results_are_said_not_silently_empty(disk_stack: Devstack, disk_client: Client,
                                                              cod: Callable[..., tuple[int, str, str]],
                                                              tmp_path: Path) -> None:
    before = counted(disk_client, "age")
    job = finish(disk_client, on("node-1", wasm_job(LINES, ResultPaths=OUT)))
    assert job["State"]["StateType"] == "Completed", job["State"]
    ex = removed(disk_client, job)
    logs_line = said("logs", ex, "older than 0.5s")
    # the API: 410 Gone in its error shape, from the orchestrator and from the node's own route
    for url in (f"{disk_stack.url}/api/v1/orchestrator/jobs/{job['ID']}/logs",
                f"{disk_stack.url}/api/v1/orchestrator/jobs/{job['ID']}/logs?execution_id={ex['ID'][:10]}",
                f"{disk_stack.url}/api/v1/compute/node-1/logs/{ex['ID']}?stream=stderr"):
        answer = httpx.get(url, timeout=10)
        assert answer.status_code == 410, (url, answer.text)
        body = answer.json()
        assert body["Status"] == 410 and body["Code"] == "Removed" and re.fullmatch(logs_line, body["Message"]), body
        assert body["FilesRemoved"] == ex["FilesRemoved"]
    with pytest.raises(APIError) as raised:
        disk_client.logs(job["ID"])
    assert raised.value.status == 410
    # the CLI: the 4 KiB head kept with the result, then one line saying the rest was removed; exit 1
    code, out, err = cod("job", "logs", job["ID"])
    head = ex["RunOutput"]["Stdout"]
    assert ex["RunOutput"]["StdoutTruncated"] and out == head and head.startswith("a line of output"), out[:100]
    assert code == 1 and re.fullmatch(f"Error: {logs_line}; only the first 4 KiB of stdout, kept with the "
                                      "execution's result, is shown\n", err), (code, err)
    code, out, err = cod("job", "logs", job["ID"], "--tail")   # a head is not the last lines
    assert code == 1 and out == "" and err.startswith(f"Error: the logs of execution {ex['ID']} were removed"), err
    assert err.count("\n") == 1
    code, out, err = cod("job", "get", job["ID"], "--output-dir", str(tmp_path / "got"))
    assert code == 1 and out == "" and re.fullmatch(f"Error: {said('results', ex, 'older than 0.5s')}\n", err), err
    assert not any((tmp_path / "got").iterdir())
    # describe: the execution shows it, in text and in JSON; its history has the event
    code, out, _ = cod("job", "describe", job["ID"])
    assert code == 0 and "Removed by retention" in out, out
    assert re.search(f"{ex['ID'][:10]}  by node node-1's retention \\(older than 0.5s\\){AT}", out), out
    code, out, _ = cod("job", "describe", job["ID"], "--output", "json")
    assert json.loads(out)["Executions"]["Items"][0]["FilesRemoved"]["Reason"] == "age"
    history = disk_client.history(job["ID"])["Items"]
    assert any(h["Event"]["Topic"] == "Retention" and h["ExecutionID"] == ex["ID"] for h in history), history
    # counted where users look
    assert counted(disk_client, "age") >= before + 1


def test_an_execution_not_removed_reads_as_before(disk_stack: Devstack, disk_client: Client,
                                                  cod: Callable[..., tuple[int, str, str]], tmp_path: Path) -> None:
    job = finish(disk_client, on("node-3", wasm_job(LINES, ResultPaths=OUT)))
    (ex,) = disk_client.executions(job["ID"])
    assert ex["FilesRemoved"] is None
    page = disk_client.logs(job["ID"])
    assert len(page["Stdout"]) == 32000 and page["Done"]
    code, out, err = cod("job", "logs", job["ID"])
    assert code == 0 and out == page["Stdout"] and err == "", err
    code, out, err = cod("job", "get", job["ID"], "--output-dir", str(tmp_path / "got"))
    assert code == 0 and out.startswith("Results written to") and (tmp_path / "got" / "out").is_dir(), (out, err)
    code, out, _ = cod("job", "describe", job["ID"])
    assert code == 0 and "Removed by retention" not in out


def test_a_lost_removal_message_is_learned_when_the_logs_are_read(disk_stack: Devstack, disk_client: Client) -> None:
    before = counted(disk_client, "age")
    job = finish(disk_client, on("node-4", wasm_job(LINES, ResultPaths=OUT)))
    directory = exec_dir(disk_stack, disk_client, job)
    wait(lambda: not directory.exists(), "retention to remove the files")
    (ex,) = disk_client.executions(job["ID"])
    wait(lambda: disk_stack.computes["node-4"].store.removal(ex["ID"]), "the node to record the removal")
    assert ex["FilesRemoved"] is None   # no message came: the orchestrator does not know yet
    answer = httpx.get(f"{disk_stack.url}/api/v1/orchestrator/jobs/{job['ID']}/logs", timeout=10)
    assert answer.status_code == 410 and re.fullmatch(said("logs", ex, "older than 0.5s"), answer.json()["Message"])
    assert removed(disk_client, job, timeout=1)["FilesRemoved"]["NodeID"] == "node-4"   # learned from the node
    assert counted(disk_client, "age") == before + 1


def test_the_oldest_go_first_past_the_retention_size(disk_stack: Devstack, disk_client: Client) -> None:
    before = counted(disk_client, "size")
    dirs, jobs = [], []
    for _ in range(4):   # 132 KiB each (two 64 KiB streams, the directories), 300 KiB allowed: the two newest stay
        job = finish(disk_client, on("node-2", wasm_job(FLOOD.replace(b"(br $l)", b""),  # 64 KiB on each stream
                                                        Publisher={"Type": "noop"})))
        assert job["State"]["StateType"] == "Completed", job["State"]
        dirs.append(exec_dir(disk_stack, disk_client, job))
        jobs.append(job)
    wait(lambda: [d.exists() for d in dirs] == [False, False, True, True], "the oldest to be removed")
    for job in jobs[:2]:
        gone = removed(disk_client, job)["FilesRemoved"]
        assert (gone["Reason"], gone["Limit"]) == ("size", "past 300 KiB of finished executions"), gone
    for job in jobs[2:]:
        assert disk_client.executions(job["ID"])[0]["FilesRemoved"] is None
        assert disk_client.logs(job["ID"])["Done"]
    assert counted(disk_client, "size") == before + 2


def test_stores_made_before_removals_were_kept_open_and_keep_them(tmp_path: Path) -> None:
    """A node's execution store and the orchestrator's job store of an earlier version (no ``removals``
    table) open as they were and gain it; the earlier version can still open them afterwards."""
    for schema, opened in ((NODE_SCHEMA, ExecutionStore), (JOBS_SCHEMA, JobStore)):
        old_schema = re.sub(r"CREATE TABLE IF NOT EXISTS removals \(.*?\);", "", schema, flags=re.S)
        assert old_schema != schema
        path = tmp_path / f"{opened.__name__}.db"
        open_db(path, old_schema).close()
        store = opened(path)
        store.close()
        with sqlite3.connect(path) as db:
            assert db.execute("SELECT count(*) FROM removals").fetchone() == (0,)
        open_db(path, old_schema).close()
    store = ExecutionStore(tmp_path / "ExecutionStore.db")
    removal = Removal("e-1", "node-1", "size", "past 10 GiB of finished executions", 1_700_000_000 * 10**9)
    store.record_removal(removal)
    store.record_removal(Removal("e-1", "node-1", "age", "older than 7d", 0))   # the first record stays
    assert store.removal("e-1") == removal and store.removal("e-2") is None
    assert str(Removed(removal, "logs")) == ("the logs of execution e-1 were removed by node node-1's retention "
                                             "(past 10 GiB of finished executions) at 2023-11-14T22:13:20Z")
    store.close()


def test_remove_tree_handles_any_depth_and_links(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    top = tmp_path / "top"
    top.mkdir()
    fd = os.open(top, os.O_RDONLY)
    for level in range(1100):   # deeper than Python's recursion limit, longer than PATH_MAX as one path
        name = "d" * (20 if level < 250 else 1)
        if level % 50 == 0:
            os.symlink(outside, "link", dir_fd=fd)
        os.mkdir(name, dir_fd=fd)
        child = os.open(name, os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.close(fd)
    remove_tree(top)
    assert not top.exists() and (outside / "keep.txt").read_text() == "keep"


def test_stored_spans_are_bounded_oldest_traces_first(tmp_path: Path) -> None:
    from cod_reference.telemetry import TraceStore

    store = TraceStore(tmp_path, max_bytes=16 << 10)
    record = {"spanId": "", "startTimeUnixNano": 0, "endTimeUnixNano": 0, "pad": "p" * 1000}
    traces = [f"{i:032x}" for i in range(100)]
    for i, trace_id in enumerate(traces):   # ~100 KiB of spans, 16 KiB allowed (32 KiB at most)
        store.write([dict(record, traceId=trace_id, spanId=f"{i:016x}")])
        assert sum(f.stat().st_size for f in tmp_path.glob("*/*.jsonl")) <= (32 << 10) + 1100
    kept = [t for t in traces if store.read(t)]
    assert kept == traces[len(traces) - len(kept):] and len(kept) >= 10   # the newest


def test_filling_the_disk_through_a_result_path_is_stopped(disk_stack: Devstack, disk_client: Client) -> None:
    # writes 64 KiB blocks into /out/fill for ever; Resources.Disk 4 MiB
    fill = b"""(module
      (import "wasi_snapshot_preview1" "path_open"
        (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 2)
      (data (i32.const 100) "fill")
      (func (export "_start")
        (drop (call $open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 4) (i32.const 9)
                          (i64.const 0x1fffffff) (i64.const 0x1fffffff) (i32.const 0) (i32.const 200)))
        (i32.store (i32.const 0) (i32.const 1024)) (i32.store (i32.const 4) (i32.const 65536))
        (loop $l
          (drop (call $w (i32.load (i32.const 200)) (i32.const 0) (i32.const 1) (i32.const 8)))
          (br $l))))"""
    job = finish(disk_client, on("node-3", wasm_job(fill, ResultPaths=[{"Name": "out", "Path": "/out"}],
                                                    Resources={"Disk": "4MiB"})))
    assert job["State"]["StateType"] == "Failed"
    (ex,) = disk_client.executions(job["ID"])
    assert ex["RunOutput"]["ErrorKind"] == "disk", ex["RunOutput"]
    assert "disk limit of 4 MiB exceeded by the writable mounts" in ex["RunOutput"]["ErrorMsg"]


def test_removed_on_a_node_in_its_own_process(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The multi-process devstack: the node's message crosses NATS, its API answers 410 (the remote
    paths the orchestrator reads logs and passes results on through)."""
    stack = ProcessDevstack(data_dir=tmp_path / "stack", computes=1, port=0, heartbeat_interval_s=0.5,
                            capacity={"CPU": 2.0, "Memory": 2**30},
                            node_policy=NodePolicy(retention_s=0.5, retention_sweep_s=0.1))
    stack.start()
    try:
        with Client(port=stack.port) as client:
            job = finish(client, wasm_job(LINES, ResultPaths=OUT))
            assert job["State"]["StateType"] == "Completed", job["State"]
            ex = removed(client, job, timeout=20)
            assert ex["FilesRemoved"]["Reason"] == "age" and counted(client, "age") == 1
            node = client.node(ex["NodeID"])
            with pytest.raises(Removed) as raised:   # what the orchestrator reads a remote node's logs with
                NodeAPI(node["Info"]["APIURL"], ex["NodeID"]).read_output(ex["ID"], "stdout", 0)
            assert re.fullmatch(said("logs", ex, "older than 0.5s"), str(raised.value))
            (result,) = client.results(job["ID"])
            assert result["Params"]["URL"].startswith(stack.url)   # passed on by the orchestrator
            answer = httpx.get(result["Params"]["URL"], timeout=10)
            assert answer.status_code == 410 and re.fullmatch(said("results", ex, "older than 0.5s"),
                                                              answer.json()["Message"]), answer.text
            monkeypatch.setenv("COD_API_PORT", str(stack.port))
            code = main(["job", "logs", job["ID"]])
            out, err = capsys.readouterr()
            assert code == 1 and out == ex["RunOutput"]["Stdout"], (code, err)
            assert re.match(f"Error: {said('logs', ex, 'older than 0.5s')}; only the first 4 KiB", err), err
            code = main(["job", "get", job["ID"], "--output-dir", str(tmp_path / "got")])
            out, err = capsys.readouterr()
            assert code == 1 and re.fullmatch(f"Error: {said('results', ex, 'older than 0.5s')}\n", err), err
    finally:
        stack.stop()
