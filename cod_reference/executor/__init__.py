"""The Wasm executor of cod_reference: runs one execution of a Wasm job in wasmtime.

    from cod_reference.executor import ExecutionRequest, Mount, WasmExecutor

    executor = WasmExecutor(cache_dir="node/module-cache", tracer_provider=tp, meter_provider=mp)
    outcome = executor.run(ExecutionRequest(
        execution_id="e-1", module=wasm_bytes, args=["data/in.txt"], env={"MODE": "fast"},
        mounts=[Mount("/srv/data", "/data"), Mount("/tmp/out", "/outputs", readonly=False)],
        memory_limit_bytes=64 << 20, timeout_s=30,
        stdout_path="exec/stdout", stderr_path="exec/stderr"))
    outcome.exit_code, outcome.error_kind, outcome.error, outcome.stdout_head
    executor.close()

Modules: :mod:`.types` (the request/outcome seam), :mod:`.wasm` (the executor),
:mod:`.cache` (compile-once module cache), :mod:`.mounts` (mounts as WASI preopens),
:mod:`.interrupt` and :mod:`.sleep` (timeouts and cancellation), :mod:`.output`.
"""
from __future__ import annotations

from typing import Any

from .types import ERROR_KINDS, ExecutionOutcome, ExecutionRequest, Mount

__all__ = ["ERROR_KINDS", "ExecutionOutcome", "ExecutionRequest", "Mount", "WasmExecutor"]


def __getattr__(name: str) -> Any:
    if name == "WasmExecutor":  # imported lazily: wasmtime and OpenTelemetry are not needed for the types
        from .wasm import WasmExecutor

        return WasmExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
