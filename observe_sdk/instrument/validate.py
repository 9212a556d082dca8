"""Validation with wasmtime, every proposal the instrumenter supports turned on."""
from __future__ import annotations

import functools

import wasmtime

_FEATURES = ("shared_memory", "wasm_threads", "wasm_reference_types", "wasm_simd", "wasm_relaxed_simd",
             "wasm_bulk_memory", "wasm_multi_value", "wasm_multi_memory", "wasm_memory64", "wasm_tail_call",
             "wasm_function_references", "wasm_gc", "wasm_exceptions", "wasm_wide_arithmetic")


@functools.cache
def _engine() -> wasmtime.Engine:
    config = wasmtime.Config()
    for feature in _FEATURES:
        setattr(config, feature, True)
    return wasmtime.Engine(config)


def validation_error(wasm: bytes) -> str | None:
    """None when wasmtime accepts ``wasm``, else why not (the first line of its message)."""
    try:
        wasmtime.Module.validate(_engine(), wasm)
    except wasmtime.WasmtimeError as exc:
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        # wasmtime says "WebAssembly failed to compile" first and the reason after
        return next((line for line in lines if "failed to compile" not in line), lines[0] if lines else "invalid")
    return None
