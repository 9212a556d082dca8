"""The SDK's traces of the real guest examples (C, C++, Rust, Go), per the spec's section 5."""
from __future__ import annotations

from pathlib import Path

import pytest
import wasmtime

from observe_sdk import Options
from observe_sdk.adapters.memory import InMemoryAdapter
from observe_sdk.trace import Allocation, Log, Metric, Span
from sdk_helpers import GUESTS, tree

BUILD = GUESTS / "build"


def observe(guest_factory, name: str, *calls, argv=None, recorder="python", min_us=0.0):
    path = BUILD / f"{name}.wasm"
    adapter = InMemoryAdapter()
    g = guest_factory(path.read_bytes(), adapter, Options(min_span_duration_us=min_us, recorder=recorder),
                      argv=argv)
    exc = None
    for call in calls or ("_start",):
        fname, *args = call if isinstance(call, tuple) else (call,)
        try:
            g.call(fname, *args)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as e:
            exc = e
            break
    trace = g.ctx.finish()
    adapter.shutdown()
    return trace, g, exc


def find(trace, name: str) -> list[Span]:
    return [s for s in trace.spans() if s.name == name]


def chain_names(span: Span) -> list[str]:
    return [s.name for s in span.walk()]


def test_hello_ten_printf_spans_and_allocations_add_up(guest_factory):
    trace, g, _ = observe(guest_factory, "hello.instr")
    assert g.output().count("Hello, World!") == 10
    (root,) = trace.root_spans
    assert "_start" in chain_names(root)
    (main,) = find(trace, "main")
    assert [c.name for c in main.children].count("printf") == 10
    assert [c.name for c in main.children].count("malloc") == 10
    memory = g.instance.exports(g.store)["memory"]
    grown = memory.size(g.store) - _initial_pages(BUILD / "hello.instr.wasm")
    pages = sum(e.pages for s in trace.spans() for e in s.events if type(e) is Allocation)
    assert pages == grown > 0


def _initial_pages(path: Path) -> int:
    engine = wasmtime.Engine()
    module = wasmtime.Module(engine, path.read_bytes())
    for exp in module.exports:
        if exp.name == "memory":
            return exp.type.limits.min
    raise AssertionError("no memory export")


def test_hello_with_default_filter_keeps_root_and_allocations(guest_factory):
    trace, _, _ = observe(guest_factory, "hello.instr", min_us=20)
    pages = sum(e.pages for s in trace.spans() for e in s.events if type(e) is Allocation)
    full, _, _ = observe(guest_factory, "hello.instr")
    assert pages == sum(e.pages for s in full.spans() for e in s.events if type(e) is Allocation)
    assert len(list(trace.spans())) < len(list(full.spans()))


def test_nested_chain(guest_factory):
    trace, g, _ = observe(guest_factory, "nested.instr")
    (main,) = find(trace, "main")
    one = main.children[0]
    assert chain_names(one)[:4] == ["one", "two", "three", "printf"]
    assert "Hello from three!" in g.output()


def test_vowels_manual_spans(guest_factory):
    trace, g, _ = observe(guest_factory, "vowels")
    assert tree(trace) == [("run", [("printf", []), ("write_stat", [("statsd", [])]),
                                    ("write_log", [("log_write", [])])])]
    (statsd,) = find(trace, "statsd")
    assert [(m.format_name, m.value) for m in statsd.events if type(m) is Metric] == [("statsd", "vowels.count:1|c")]
    (log_write,) = find(trace, "log_write")
    assert [(e.severity, e.message) for e in log_write.events if type(e) is Log] == [("ERROR", "Vowels Counted: 3")]
    (printf,) = find(trace, "printf")
    assert dict(printf.tag_pairs())["vowels"] == "3"


def test_vowels_instrumented_mixes_manual_and_function_spans(guest_factory):
    trace, _, _ = observe(guest_factory, "vowels.instr")
    (run,) = find(trace, "run")
    assert run.manual and not run.error
    names = chain_names(run)
    assert {"count_vowels", "printf", "statsd", "log_write"} <= set(names)
    assert any(c.name == "run" for c in find(trace, "main")[0].walk())


def test_reactor_roots(guest_factory):
    trace, _, _ = observe(guest_factory, "reactor.instr", "_initialize", ("add", 2, 3), ("add", 40, 2))
    roots = [s.name for s in trace.root_spans]
    assert len(roots) == 3 and roots[1] == roots[2] == "add"
    adds = [s for s in trace.root_spans[1:]]
    assert all(any(type(e) is Span and e.manual and e.name == "add" for e in s.events) for s in adds)


def test_trap_inside_spans(guest_factory):
    trace, g, exc = observe(guest_factory, "trap.instr")
    assert isinstance(exc, wasmtime.Trap)
    (risky,) = find(trace, "risky")
    assert chain_names(risky)[:4] == ["risky", "outer", "middle", "inner"]
    assert all(s.error for s in risky.walk())
    assert "unreachable" in risky.error


def test_fib_span_count(guest_factory):
    trace, g, _ = observe(guest_factory, "fib.instr", argv=["fib", "15"])
    assert "fib(15) = 610" in g.output()
    assert len(find(trace, "fib")) == 1973


def test_cpp_and_rust_names_are_demangled(guest_factory):
    trace, _, _ = observe(guest_factory, "shapes.instr")
    names = {s.name for s in trace.spans()}
    raws = {s.raw_name for s in trace.spans()}
    assert "shapes::Circle::area() const" in names and "_ZNK6shapes6Circle4areaEv" in raws
    for module in ("words.instr", "words_v0.instr"):
        trace, g, _ = observe(guest_factory, module)
        names = {s.name for s in trace.spans()}
        assert {"words::main", "words::process"} <= names
        assert "words=9 vowels=11" in g.output()


def test_go_program_runs_observed(guest_factory):
    trace, g, exc = observe(guest_factory, "inventory.instr", min_us=20)
    assert isinstance(exc, wasmtime.ExitTrap) and exc.code == 0
    names = {s.name for s in trace.spans()}
    assert "inventory" in names
    assert any(type(e) is Metric for s in trace.spans() for e in s.events)
