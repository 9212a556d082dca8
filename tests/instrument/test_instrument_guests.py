"""The guest examples (C, C++, Rust, Go) instrumented: identical round trip, valid output,
same stdout/stderr/exit code, and the expected function tree in the SDK's trace."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import wasmtime
from instr_helpers import BUILD, ENGINE, wasm_tools_validate

from observe_sdk import Options
from observe_sdk.adapters.memory import InMemoryAdapter
from observe_sdk.instrument import instrument_module, read_module
from observe_sdk.trace import Span, Trace

GUESTS = sorted(p.stem for p in BUILD.glob("*.wasm") if not p.name.endswith(".instr.wasm"))
# name -> (argv, entry, invocations)
RUNS: dict[str, list[tuple[tuple[str, ...], str, tuple[tuple[str, tuple], ...]]]] = {
    "reactor": [((), "_initialize", (("add", (2, 3)),))],
    "fib": [(("12",), "_start", ())],
    "inventory": [((), "_start", ()), (("fail",), "_start", ())],
}


@cache
def plain_bytes(name: str) -> bytes:
    return (BUILD / f"{name}.wasm").read_bytes()


@cache
def instrumented(name: str) -> Any:
    return instrument_module(plain_bytes(name))


@cache
def compiled(wasm: bytes) -> wasmtime.Module:
    return wasmtime.Module(ENGINE, wasm)


@dataclass
class Outcome:
    exit_code: int | None
    trap: bool
    stdout: str
    stderr: str
    results: list[Any]
    trace: Trace


def run_guest(wasm: bytes, tmp: Path, argv: tuple[str, ...] = (), entry: str = "_start",
              invoke: tuple[tuple[str, tuple], ...] = ()) -> Outcome:
    store = wasmtime.Store(ENGINE)
    linker = wasmtime.Linker(ENGINE)
    wasi = wasmtime.WasiConfig()
    wasi.argv = ["guest", *argv]
    out, err = tmp / "stdout", tmp / "stderr"
    wasi.stdout_file, wasi.stderr_file = str(out), str(err)
    store.set_wasi(wasi)
    linker.define_wasi()
    adapter = InMemoryAdapter()
    ctx = adapter.start(linker, wasm, Options(min_span_duration_us=0), store=store)
    instance = linker.instantiate(store, compiled(wasm))
    exports = instance.exports(store)
    exit_code: int | None = 0
    trap = False
    results = []
    try:
        ctx.call(store, exports[entry])
        for name, args in invoke:
            results.append(ctx.call(store, exports[name], *args))
    except wasmtime.ExitTrap as exc:
        exit_code = exc.code
    except wasmtime.Trap:
        exit_code, trap = None, True
    trace = ctx.finish()
    adapter.shutdown()
    return Outcome(exit_code, trap, out.read_text(), err.read_text(), results, trace)


def spans(trace: Trace) -> list[Span]:
    found: list[Span] = []

    def walk(events: list[Any]) -> None:
        for event in events:
            if isinstance(event, Span):
                found.append(event)
                walk(event.events)
    walk(trace.roots)
    return found


def find(trace: Trace, name: str) -> Span:
    matches = [s for s in spans(trace) if s.name == name]
    assert matches, f"no span named {name}"
    return matches[0]


def child_names(span: Span) -> list[str]:
    return [e.name for e in span.events if isinstance(e, Span)]


def test_examples_are_present() -> None:
    assert {"hello", "nested", "fib", "words", "inventory"} <= set(GUESTS)


@pytest.mark.parametrize("name", GUESTS)
def test_round_trip_and_validate(name: str) -> None:
    wasm = plain_bytes(name)
    assert read_module(wasm).to_bytes() == wasm
    result = instrumented(name)
    assert result.summary.instrumented == result.summary.functions > 0
    assert wasm_tools_validate(result.wasm) is None
    wasmtime.Module.validate(ENGINE, result.wasm)


@pytest.mark.parametrize("name", GUESTS)
def test_same_behaviour(name: str, tmp_path: Path) -> None:
    for argv, entry, invoke in RUNS.get(name, [((), "_start", ())]):
        (tmp_path / "plain").mkdir(exist_ok=True)
        (tmp_path / "instr").mkdir(exist_ok=True)
        plain = run_guest(plain_bytes(name), tmp_path / "plain", argv, entry, invoke)
        instr = run_guest(instrumented(name).wasm, tmp_path / "instr", argv, entry, invoke)
        assert (instr.exit_code, instr.trap, instr.stdout, instr.stderr, instr.results) == \
               (plain.exit_code, plain.trap, plain.stdout, plain.stderr, plain.results)
        assert not spans(plain.trace) or all(s.function_index == 0 for s in spans(plain.trace))
        assert any(s.function_index for s in spans(instr.trace))


def test_nested_tree(tmp_path: Path) -> None:
    trace = run_guest(instrumented("nested").wasm, tmp_path).trace
    main = find(trace, "main")
    one = main.events[[e.name for e in main.events if isinstance(e, Span)].index("one")]
    assert child_names(one) == ["two"]
    two = [e for e in one.events if isinstance(e, Span)][0]
    three = [e for e in two.events if isinstance(e, Span)][0]
    assert three.name == "three" and "printf" in child_names(three)


def test_hello_ten_printf_spans_and_allocations(tmp_path: Path) -> None:
    outcome = run_guest(instrumented("hello").wasm, tmp_path)
    main = find(outcome.trace, "main")
    assert child_names(main).count("printf") == 10
    pages = sum(a.pages for a in _allocations(outcome.trace.roots))
    assert pages >= 30       # ten 192 KiB blocks


def _allocations(events: list[Any]) -> list[Any]:
    from observe_sdk.trace import Allocation
    found = []
    for event in events:
        if isinstance(event, Allocation):
            found.append(event)
        elif isinstance(event, Span):
            found.extend(_allocations(event.events))
    return found


def test_rust_names_demangled_and_filter(tmp_path: Path) -> None:
    result = instrument_module(plain_bytes("words"), include=["words::*"])
    assert 0 < result.summary.instrumented < result.summary.functions
    trace = run_guest(result.wasm, tmp_path).trace
    names = {s.name for s in spans(trace) if s.function_index}
    assert names and all(n.startswith("words::") for n in names), names
    assert any("count_words" in n for n in names)


def test_debug_build_drops_dwarf_and_still_runs(tmp_path: Path) -> None:
    from instr_helpers import FIXTURES

    wasm = (FIXTURES / "nested_debug.wasm").read_bytes()
    assert read_module(wasm).to_bytes() == wasm
    result = instrument_module(wasm)
    assert set(result.summary.dropped_sections) == {".debug_info", ".debug_loc", ".debug_ranges", ".debug_abbrev",
                                                    ".debug_line", ".debug_str"}
    assert wasm_tools_validate(result.wasm) is None
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    plain = run_guest(wasm, tmp_path / "a")
    instr = run_guest(result.wasm, tmp_path / "b")
    assert (instr.exit_code, instr.stdout) == (plain.exit_code, plain.stdout) == (0, "Hello from three!\n")
    assert child_names(find(instr.trace, "two")) == ["three"]


WATS = sorted((BUILD.parent / "wat").glob("*.wat"))


@pytest.mark.parametrize("path", WATS, ids=[p.stem for p in WATS])
def test_wat_examples_round_trip_and_validate(path: Path) -> None:
    from observe_sdk.instrument import InstrumentError

    wasm = wasmtime.wat2wasm(path.read_text())
    assert read_module(wasm).to_bytes() == wasm
    try:
        result = instrument_module(wasm)
    except InstrumentError as exc:      # hand-instrumented modules may carry the version exports
        assert "already instrumented" in str(exc)
        return
    assert wasm_tools_validate(result.wasm) is None
