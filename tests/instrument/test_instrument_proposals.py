"""Instrumenting modules that use each supported proposal: round trip, validation by
wasmtime and by wasm-tools, identical results, balanced enter/exit."""
from __future__ import annotations

import pytest
import wasmtime
from instr_helpers import run_exports, wasm_tools_validate, wasmtime_validate
from instr_samples import SAMPLES

from observe_sdk.instrument import instrument_module, read_module

MODULES = {name: wasmtime.wat2wasm(wat) for name, (wat, _, _) in SAMPLES.items()}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_round_trip_identical(name: str) -> None:
    wasm = MODULES[name]
    assert read_module(wasm).to_bytes() == wasm


@pytest.mark.parametrize("name", sorted(SAMPLES))
@pytest.mark.parametrize("options", [{}, {"min_instructions": 8}, {"memory": False}],
                         ids=["default", "min8", "nomem"])
def test_instrumented_validates(name: str, options: dict) -> None:
    result = instrument_module(MODULES[name], **options)
    assert wasm_tools_validate(result.wasm) is None
    if SAMPLES[name][2]:
        wasmtime_validate(result.wasm)
    # the output itself reads back and writes identically
    assert read_module(result.wasm).to_bytes() == result.wasm


@pytest.mark.parametrize("name", sorted(n for n, s in SAMPLES.items() if s[2]))
def test_same_results_and_balanced(name: str) -> None:
    _, calls, _ = SAMPLES[name]
    plain, _ = run_exports(MODULES[name], calls)
    result = instrument_module(MODULES[name])
    instrumented, recording = run_exports(result.wasm, calls)
    assert instrumented == plain
    entered = recording.check_balanced()
    assert entered, "no function reported"
    assert result.summary.instrumented == result.summary.functions


def test_exception_leaves_report_exit() -> None:
    result = instrument_module(MODULES["exceptions"])
    assert result.summary.exceptions == "exnref"
    values, recording = run_exports(result.wasm, [("run", (1,))])
    assert values == [1042]
    calls = recording.check_balanced()
    # run -> middle -> thrower: three nested functions, each left (two by the exception)
    assert [depth for _, depth in calls] == [0, 1, 2]


def test_legacy_exceptions_wrapped_with_try() -> None:
    result = instrument_module(MODULES["legacy_exceptions"])
    assert result.summary.exceptions == "legacy"
    assert wasm_tools_validate(result.wasm) is None


def test_memory_grow_reported_with_operand() -> None:
    result = instrument_module(MODULES["memory64"])
    values, recording = run_exports(result.wasm, [("run", ())])
    grows = [v for k, v in recording.events if k == "memory-grow"]
    assert grows == [1, 2]      # 32-bit memory grown by 1, 64-bit memory by 2 (reported as i32)
    assert result.summary.grows == 2


def test_tail_calls_exit_before_the_call() -> None:
    result = instrument_module(MODULES["tail_calls"])
    _, recording = run_exports(result.wasm, [("count", (3,))])
    calls = recording.check_balanced()
    # each return_call leaves the caller first, so every call is at depth 0
    assert len(calls) == 4 and all(depth == 0 for _, depth in calls)


def test_function_indices_shift_everywhere() -> None:
    wasm = MODULES["reference_types"]
    result = instrument_module(wasm)
    module = read_module(result.wasm)
    assert result.summary.imports_added == ["enter", "exit", "memory-grow"]
    assert [imp.name for imp in module.imports][-3:] == ["enter", "exit", "memory-grow"]
    # globals' funcref initialiser and elements were shifted by 3
    before, after = read_module(wasm), module
    assert [v + 3 for _, _, v in before.func_refs[9]] == [v for _, _, v in after.func_refs[9]]
    assert before.func_refs[6][0][2] + 3 == after.func_refs[6][0][2]


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_samples_themselves_are_valid(name: str) -> None:
    assert wasm_tools_validate(MODULES[name]) is None
