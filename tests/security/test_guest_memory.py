"""Attacks on the node's memory: one memory, many memories, tables, memory64, no limit set.

Each guest tries to take far more than its job's limit (touching every page it gets, so
that what it holds is real memory); the node's peak resident set may grow by the limit
plus a fixed overhead at most.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from sec_helpers import assert_node_alive

from cod_reference.client import Client
from cod_reference.models import DEFAULT_MEMORY, wasm_job
from wat_modules import module

MiB = 1 << 20
OVERHEAD = 96 * MiB   # what running any job may cost the node besides the guest's own memory


def grab(memories: int = 1, pages: int = 16384, index: str = "i32", chunk: int = 16) -> bytes:
    """A guest that grows each of its ``memories`` by ``pages`` (64 KiB each), ``chunk`` pages
    at a time as allocators do, touches every page it got, and traps when a grow is refused."""
    mems = " ".join(f'(memory $m{i} (export "mem{i}") {index} 1)' for i in range(memories))
    const = f"{index}.const"
    body = "".join(f"""
        (local.set $a ({const} 65536))
        (loop $l{i}
          (if ({index}.eq (memory.grow $m{i} ({const} {chunk})) ({const} -1)) (then unreachable))
          (local.set $end ({index}.add (local.get $a) ({const} {chunk * 65536})))
          (loop $t{i}
            (i32.store8 $m{i} (local.get $a) (i32.const 1))
            (local.set $a ({index}.add (local.get $a) ({const} 4096)))
            (br_if $t{i} ({index}.lt_u (local.get $a) (local.get $end))))
          (br_if $l{i} ({index}.lt_u (local.get $a) ({const} {(pages + 1) * 65536}))))""" for i in range(memories))
    return f'(module {mems} (func (export "_start") (local $a {index}) (local $end {index}) {body}))'.encode()


TABLE = b"""(module (table (export "table") 1 funcref)
  (func (export "_start") (local $n i32)
    (loop $l
      (if (i32.eq (table.grow (ref.null func) (i32.const 65536)) (i32.const -1)) (then unreachable))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $n) (i32.const 1600))))))"""


def peak_rss_reset() -> int:
    Path("/proc/self/clear_refs").write_text("5")   # the peak (VmHWM) starts again from the current RSS
    return _status("VmHWM")


def _status(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    assert match
    return int(match.group(1)) * 1024


CASES = {
    # name: (module, job memory limit or None for the default, what the guest tries to take)
    "one memory, 1 GiB": (grab(1, 16384), "64MiB"),
    "eight memories of 62 MiB": (grab(8, 992), "64MiB"),
    "a table of 100M elements": (TABLE, "64MiB"),
    "memory64, 4.3 GiB": (grab(1, 70000, "i64"), "64MiB"),
    "no limit set, 1 GiB": (grab(1, 16384), None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_guest_cannot_take_more_than_its_limit(client: Client, case: str) -> None:
    module, memory = CASES[case]
    limit = DEFAULT_MEMORY if memory is None else 64 * MiB
    doc = wasm_job(module, Publisher={"Type": "noop"}, **({"Resources": {"Memory": memory}} if memory else {}))
    before = peak_rss_reset()
    job = client.wait(client.submit(doc)["JobID"], timeout=60, interval=0.05)
    grown = _status("VmHWM") - before
    assert job["State"]["StateType"] == "Failed", job["State"]
    (ex,) = client.executions(job["ID"])
    assert ex["RunOutput"]["ErrorKind"] == "memory", ex["RunOutput"]
    assert re.search(r"memory limit of [\d.]+ MiB exceeded", job["State"]["Message"]) or \
        re.search(r"memory limit of [\d.]+ MiB exceeded", ex["RunOutput"]["ErrorMsg"]), ex["RunOutput"]
    print(f"\n{case}: the node grew by {grown >> 20} MiB (limit {limit >> 20} MiB)")
    assert grown < limit + OVERHEAD, f"the node grew by {grown >> 20} MiB"


def test_eight_memories_share_one_limit(client: Client) -> None:
    # each memory may hold an eighth of the limit: all eight together fit, one more page does not
    per_memory_pages = (64 * MiB) // 8 // 65536 - 1   # each starts with one page: 127 more, in chunks of 1
    ok = client.wait(client.submit(wasm_job(grab(8, per_memory_pages, chunk=1), Resources={"Memory": "64MiB"},
                                            Publisher={"Type": "noop"}))["JobID"], timeout=60, interval=0.05)
    assert ok["State"]["StateType"] == "Completed", ok["State"]
    over = client.wait(client.submit(wasm_job(grab(8, per_memory_pages + 1, chunk=1), Resources={"Memory": "64MiB"},
                                              Publisher={"Type": "noop"}))["JobID"], timeout=60, interval=0.05)
    assert over["State"]["StateType"] == "Failed"
    assert_node_alive(client)


def test_an_observed_guest_cannot_grow_the_node_through_its_trace(client: Client) -> None:
    # 1M instrumented calls: 2M events the host would keep (~440 MiB) under a 64 MiB job
    chatty = module('''
      (func $f (export "_start") (local $i i32)
        (loop $l (call $enter (i32.const 9)) (call $exit (i32.const 9))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (i32.const 1000000)))))''').encode()
    before = peak_rss_reset()
    job = client.wait(client.submit(wasm_job(chatty, Resources={"Memory": "64MiB"}, Publisher={"Type": "noop"}))
                      ["JobID"], timeout=60, interval=0.05)
    grown = _status("VmHWM") - before
    assert job["State"]["StateType"] == "Completed", job["State"]
    print(f"\nobserved guest: the node grew by {grown >> 20} MiB")
    assert grown < 64 * MiB + OVERHEAD, f"the node grew by {grown >> 20} MiB"
