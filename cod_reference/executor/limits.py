"""One memory limit for everything a guest can allocate in its store.

wasmtime's store limits (``Store.set_limits``) cap each linear memory and each table on
its own, and the number of instances, memories and tables in the store. A guest with
eight memories under a per-memory cap of 64 MiB holds 512 MiB, so the executor turns the
job's one limit into a :class:`StoreBudget` that splits it:

- the tables the guest's modules define share 1/16 of the limit (8 bytes an element, as
  wasmtime counts), when there are any;
- the linear memories they define (memory64 ones too) share the rest evenly;
- exactly as many instances, memories and tables as the modules define may be created,
  plus what the host adds itself (the Observe SDK's recorder: one instance with one
  fixed-size memory of 2 MiB per observed module), so no more can appear later.

The counts come from the modules' table and memory sections (:func:`count_definitions`).
"""
from __future__ import annotations

from dataclasses import dataclass

from observe_sdk.instrument.binary import read_u32

__all__ = ["HOST_MEMORY_BYTES", "StoreBudget", "count_definitions", "store_budget"]

TABLE_ELEMENT_BYTES = 8
TABLE_SHARE = 16            # tables get 1/16 of the limit
WASM_PAGE = 65536
#: the largest memory the host itself puts in a guest's store (the Observe SDK's recorder)
HOST_MEMORY_BYTES = 2 << 20
_SEC_TABLE, _SEC_MEMORY = 4, 5


@dataclass(frozen=True)
class StoreBudget:
    """The arguments of ``Store.set_limits`` for one execution."""

    memory_size: int        # bytes, per linear memory
    table_elements: int     # per table
    instances: int
    tables: int
    memories: int

    def as_kwargs(self) -> dict[str, int]:
        return {"memory_size": self.memory_size, "table_elements": self.table_elements,
                "instances": self.instances, "tables": self.tables, "memories": self.memories}


def store_budget(limit_bytes: int, modules: list[bytes], host_instances: int = 0) -> StoreBudget:
    """The budget for ``modules`` (binaries) under ``limit_bytes``, with ``host_instances``
    instances of the host's own (each with one memory of at most :data:`HOST_MEMORY_BYTES`)."""
    tables = memories = 0
    for wasm in modules:
        t, m = count_definitions(wasm)
        tables, memories = tables + t, memories + m
    table_bytes = limit_bytes // TABLE_SHARE if tables else 0
    per_table = table_bytes // TABLE_ELEMENT_BYTES // tables if tables else 0
    per_memory = (limit_bytes - table_bytes) // memories if memories else 0
    per_memory -= per_memory % WASM_PAGE
    if host_instances:
        per_memory = max(per_memory, HOST_MEMORY_BYTES)  # the host's memory is fixed-size, not the guest's
    return StoreBudget(memory_size=per_memory, table_elements=per_table, instances=len(modules) + host_instances,
                       tables=tables, memories=memories + host_instances)


def count_definitions(wasm: bytes) -> tuple[int, int]:
    """How many tables and linear memories ``wasm`` defines (imported ones are not counted:
    they are defined by another module of the same execution, which counts them)."""
    tables = memories = 0
    pos = 8  # magic and version: the module compiled, so they are valid
    end = len(wasm)
    while pos < end:
        section = wasm[pos]
        size, pos = read_u32(wasm, pos + 1)
        if section == _SEC_TABLE:
            tables = read_u32(wasm, pos)[0]
        elif section == _SEC_MEMORY:
            memories = read_u32(wasm, pos)[0]
        pos += size
    return tables, memories
