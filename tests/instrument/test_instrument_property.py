"""Property tests: random structured programs compute the same before and after
instrumentation, with every enter matched by one exit; corrupt input never crashes."""
from __future__ import annotations

import wasmtime
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from instr_helpers import Recording, all_features_config, define_hooks
from instr_samples import SAMPLES

from observe_sdk.instrument import InstrumentError, WasmFormatError, instrument_module, read_module

MAX_LEVEL = 4
FUEL = 2_000_000


def _fuel_engine() -> wasmtime.Engine:
    config = all_features_config()
    config.consume_fuel = True
    return wasmtime.Engine(config)


ENGINE = _fuel_engine()


@st.composite
def statements(draw, depth: int, level: int, func: int, returns: tuple[bool, ...], counters: list[str],
               in_loop: bool = False) -> str:
    """Stack-neutral statements; ``depth`` labels are in scope (``depth`` = the function's).

    ``returns[i]``: function i returns an i32, so branches to its outermost label carry one.
    Calls go to later functions only and never from inside a loop, so programs end quickly.
    """
    nfuncs = len(returns)
    value = "(global.get $acc) " if returns[func] else ""
    out = []
    for _ in range(draw(st.integers(0, 4))):
        kinds = ["acc", "note", "br", "br_if", "br_table", "return", "grow"]
        if level < MAX_LEVEL:
            kinds += ["block", "loop", "if"]
        if func + 1 < nfuncs and not in_loop:
            kinds.append("call")
        kind = draw(st.sampled_from(kinds))
        target = st.integers(0, depth)
        if kind == "acc":
            k = draw(st.integers(-5, 50))
            out.append(f"(global.set $acc (i32.add (i32.mul (global.get $acc) (i32.const 31)) (i32.const {k})))")
        elif kind == "note":
            out.append("(call $note (global.get $acc))")
        elif kind == "br":
            label = draw(target)
            out.append(f"(br {label} {value if label == depth else ''})")
        elif kind == "br_if":
            label = draw(target)
            cond = f"(i32.and (global.get $acc) (i32.const {draw(st.integers(1, 15))}))"
            if label == depth and value:
                out.append(f"(drop (br_if {label} {value}{cond}))")
            else:
                out.append(f"(br_if {label} {cond})")
        elif kind == "br_table":
            # all targets of a br_table take the same values: the function's label (with
            # a value when it returns one) only mixes with the others when it returns nothing
            if value and depth:
                labels, operand = st.integers(0, depth - 1), ""
            elif value:
                labels, operand = st.just(0), value
            else:
                labels, operand = target, ""
            chosen = " ".join(str(draw(labels)) for _ in range(draw(st.integers(1, 5))))
            index = f"(i32.rem_u (global.get $acc) (i32.const {draw(st.integers(1, 7))}))"
            out.append(f"(br_table {chosen} {operand}{index})")
        elif kind == "return":
            out.append(f"(return {value})")
        elif kind == "grow":
            out.append("(drop (memory.grow (i32.const 0)))")
        elif kind == "call":
            callee = draw(st.integers(func + 1, nfuncs - 1))
            if returns[callee]:
                out.append(f"(global.set $acc (i32.xor (global.get $acc) (call $f{callee})))")
            else:
                out.append(f"(call $f{callee})")
        elif kind == "block":
            out.append(f"(block {draw(statements(depth + 1, level + 1, func, returns, counters, in_loop))})")
        elif kind == "if":
            then = draw(statements(depth + 1, level + 1, func, returns, counters, in_loop))
            other = draw(statements(depth + 1, level + 1, func, returns, counters, in_loop))
            out.append(f"(if (i32.and (global.get $acc) (i32.const {draw(st.integers(1, 15))})) "
                       f"(then {then}) (else {other}))")
        else:  # a loop bounded by its own counter, decremented on every iteration
            counter = f"$c{len(counters)}"
            counters.append(counter)
            inner = draw(statements(depth + 1, level + 1, func, returns, counters, True))
            out.append(f"(local.set {counter} (i32.const {draw(st.integers(1, 3))})) "
                       f"(loop (local.set {counter} (i32.sub (local.get {counter}) (i32.const 1))) {inner} "
                       f"(br_if 0 (i32.gt_s (local.get {counter}) (i32.const 0))))")
    return " ".join(out)


@st.composite
def programs(draw) -> str:
    returns = tuple(draw(st.lists(st.booleans(), min_size=1, max_size=4)))
    nfuncs = len(returns)
    funcs = []
    calls = []
    for i in range(nfuncs):
        counters: list[str] = []
        body = draw(statements(0, 0, i, returns, counters))
        local_decls = " ".join(f"(local {c} i32)" for c in counters)
        if returns[i]:
            funcs.append(f"(func $f{i} (result i32) {local_decls} {body} (i32.add (global.get $acc) (i32.const 1)))")
            calls.append(f"(global.set $acc (i32.add (global.get $acc) (call $f{i})))")
        else:
            funcs.append(f"(func $f{i} {local_decls} {body})")
            calls.append(f"(call $f{i})")
    return f"""(module
      (import "env" "note" (func $note (param i32)))
      (global $acc (mut i32) (i32.const 1))
      (memory 1)
      {' '.join(funcs)}
      (func (export "run") (result i32) {' '.join(calls)} (global.get $acc)))"""


def execute(wasm: bytes) -> tuple[int, list[int], Recording]:
    recording = Recording()
    notes: list[int] = []
    store = wasmtime.Store(ENGINE)
    store.set_fuel(FUEL)
    linker = wasmtime.Linker(ENGINE)
    define_hooks(linker, recording)
    linker.define_func("env", "note", wasmtime.FuncType([wasmtime.ValType.i32()], []), notes.append)
    instance = linker.instantiate(store, wasmtime.Module(ENGINE, wasm))
    result = instance.exports(store)["run"](store)
    return result, notes, recording


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), st.sampled_from([0, 6]))
def test_random_programs_behave_the_same(wat: str, min_instructions: int) -> None:
    plain = wasmtime.wat2wasm(wat)
    result = instrument_module(plain, min_instructions=min_instructions)
    try:
        expected_value, expected_notes, _ = execute(plain)
    except wasmtime.Trap:       # out of fuel: too long a run for a test
        assume(False)
    value, notes, recording = execute(result.wasm)
    assert (value, notes) == (expected_value, expected_notes)
    calls = recording.check_balanced()
    assert calls and calls[0] == (result.summary.hook_indices["memory-grow"] + 1 + result.summary.functions - 1, 0)
    grows = sum(1 for kind, _ in recording.events if kind == "memory-grow")
    assert grows == 0 or result.summary.grows > 0


CORPUS = [wasmtime.wat2wasm(SAMPLES[name][0]) for name in ("mvp_control", "gc", "exceptions", "simd")]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(CORPUS), st.data())
def test_corrupt_input_gives_a_clear_error(wasm: bytes, data: st.DataObject) -> None:
    mutated = bytearray(wasm)
    for _ in range(data.draw(st.integers(1, 4))):
        choice = data.draw(st.sampled_from(["flip", "truncate", "insert"]))
        pos = data.draw(st.integers(8, len(mutated) - 1))
        if choice == "flip":
            mutated[pos] = data.draw(st.integers(0, 255))
        elif choice == "truncate":
            del mutated[pos:]
            if len(mutated) <= 8:
                break
        else:
            mutated.insert(pos, data.draw(st.integers(0, 255)))
    try:
        module = read_module(bytes(mutated))
    except WasmFormatError as exc:
        assert "malformed wasm" in str(exc) and exc.section
        return
    assert module.to_bytes() == bytes(mutated)
    try:
        instrument_module(bytes(mutated))
    except (WasmFormatError, InstrumentError):
        pass
