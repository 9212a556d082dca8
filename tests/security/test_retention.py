"""Filling the node's disk: output floods, failed executions, results kept for ever."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sec_helpers import attack, wait

from cod_reference.client import Client
from cod_reference.compute.paths import remove_tree
from cod_reference.compute.policy import NodePolicy
from cod_reference.devstack import Devstack
from cod_reference.executor.wasm import WasmExecutor
from cod_reference.models import wasm_job

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


@pytest.fixture(scope="module")
def disk_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devstack]:
    """node-1 keeps finished executions 0.5 s; node-2 keeps at most 300 KiB of them, for ever;
    node-3 keeps them as a node does by default."""
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
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def disk_client(disk_stack: Devstack) -> Iterator[Client]:
    with Client(port=disk_stack.port) as client:
        yield client


def on(node: str, doc: dict[str, Any]) -> dict[str, Any]:
    doc["Constraints"] = [{"Key": "id", "Operator": "=", "Values": [node]}]
    return doc


def finish(client: Client, doc: dict[str, Any]) -> dict[str, Any]:
    return client.wait(client.submit(doc)["JobID"], timeout=60, interval=0.05)


def exec_dir(stack: Devstack, client: Client, job: dict[str, Any]) -> Path:
    (ex,) = client.executions(job["ID"])
    return stack.data_dir / "compute" / ex["NodeID"] / "executions" / ex["ID"]



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


def test_finished_executions_are_removed_after_the_retention_age(disk_stack: Devstack, disk_client: Client) -> None:
    job = finish(disk_client, on("node-1", attack("write /out/r.txt result", "cat /out/r.txt",
                                                  ResultPaths=[{"Name": "out", "Path": "/out"}])))
    assert job["State"]["StateType"] == "Completed"
    directory = exec_dir(disk_stack, disk_client, job)
    archive = directory.parent.parent / "results" / f"{directory.name}.tar.gz"
    wait(lambda: not directory.exists() and not archive.exists(), "retention to remove the files")
    (result,) = disk_client.results(job["ID"])
    assert httpx.get(result["Params"]["URL"], timeout=10).status_code == 404
    assert disk_client.get_job(job["ID"])["Job"]["State"]["StateType"] == "Completed"   # the record stays


def test_the_oldest_go_first_past_the_retention_size(disk_stack: Devstack, disk_client: Client) -> None:
    dirs = []
    for _ in range(4):   # 132 KiB each (two 64 KiB streams, the directories), 300 KiB allowed: the two newest stay
        job = finish(disk_client, on("node-2", wasm_job(FLOOD.replace(b"(br $l)", b""),  # 64 KiB on each stream
                                                        Publisher={"Type": "noop"})))
        assert job["State"]["StateType"] == "Completed", job["State"]
        dirs.append(exec_dir(disk_stack, disk_client, job))
    wait(lambda: [d.exists() for d in dirs] == [False, False, True, True], "the oldest to be removed")


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
