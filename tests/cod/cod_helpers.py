"""Shared pieces of the cod network tests: modules, spec builders, waiting."""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cod_reference.client import Client
from cod_reference.models import encode_data_url, wasm_job

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "test_executor_data"
TOOL = (DATA / "tool.wasm").read_bytes()    # built from tool.c next to it (its commands are listed there)
EXAMPLES = ROOT / "guest-examples" / "build"


def busy(iterations: int) -> bytes:
    """A module that counts to ``iterations`` and returns (about 3e9 a second here)."""
    return (f'(module (func (export "_start") (local $i i64) (loop $l '
            f'(local.set $i (i64.add (local.get $i) (i64.const 1))) '
            f'(br_if $l (i64.lt_u (local.get $i) (i64.const {iterations}))))))').encode()


def wide_guest(branches: int, leaves: int) -> bytes:
    """A module making ``1 + branches * (1 + leaves)`` guest spans, instrumented by hand:
    ``_start`` (function 5) -> ``branch`` (4) x ``branches`` -> ``leaf`` (3) x ``leaves`` each
    (run it with ``min_span_duration_us=0``: the spans are shorter than the default minimum)."""
    return f'''(module
  (import "dylibso:observe/instrument" "enter" (func $enter (param i32)))
  (import "dylibso:observe/instrument" "exit" (func $exit (param i32)))
  (import "dylibso:observe/instrument" "memory-grow" (func $grow (param i32)))
  (memory (export "memory") 1)
  (func $leaf (call $enter (i32.const 3)) (call $exit (i32.const 3)))
  (func $branch (local $i i32)
    (call $enter (i32.const 4))
    (loop $l (call $leaf) (local.set $i (i32.add (local.get $i) (i32.const 1)))
             (br_if $l (i32.lt_u (local.get $i) (i32.const {leaves}))))
    (call $exit (i32.const 4)))
  (func (export "_start") (local $i i32)
    (call $enter (i32.const 5))
    (loop $l (call $branch) (local.set $i (i32.add (local.get $i) (i32.const 1)))
             (br_if $l (i32.lt_u (local.get $i) (i32.const {branches}))))
    (call $exit (i32.const 5))))'''.encode()


def tool_job(*args: str, **kw: Any) -> dict[str, Any]:
    return wasm_job(TOOL, args=list(args), **kw)


def inline(data: bytes, target: str, media: str = "application/octet-stream") -> dict[str, Any]:
    return {"Source": {"Type": "inline", "Params": {"URL": encode_data_url(data, media)}}, "Target": target}


def run(client: Client, doc: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
    job_id = client.submit(doc)["JobID"]
    return client.wait(job_id, timeout=timeout, interval=0.05)


def wait_for(predicate: Callable[[], Any], timeout: float = 10, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def stdout_of(client: Client, job: dict[str, Any]) -> list[str]:
    return [(e.get("RunOutput") or {}).get("Stdout", "") for e in client.executions(job["ID"])
            if e["ComputeState"]["StateType"] == "Completed"]
