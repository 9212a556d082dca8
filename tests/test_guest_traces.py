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


# ------------------------------------------- manual spans opened and closed in helper functions (issue #11)

def shape(span: Span, keep) -> tuple:
    """(name, children) of the spans ``keep`` accepts; the others are looked through."""
    out = []
    for child in span.children:
        out.extend([shape(child, keep)] if keep(child) else shape(child, keep)[1])
    return (span.name, out)


@pytest.mark.parametrize("recorder", ["python", "wasm"])
def test_kitchensink_helpers_open_and_close_manual_spans(guest_factory, recorder):
    """custom_span_enter/custom_span_exit are instrumented functions: each manual span opens
    in one and closes in another, and the trace still says what the program means."""
    trace, g, _ = observe(guest_factory, "kitchensink.instr", recorder=recorder)
    assert g.output() == "Hello from Wasm!\n"
    assert trace.errors == [] and not any(s.error for s in trace.spans())
    (main,) = find(trace, "__original_main")
    manual_or_main = lambda s: s.manual or s.name in ("printf", "write_stat", "write_log")  # noqa: E731
    assert shape(main, manual_or_main) == ("__original_main", [
        ("run", [("printf", [("printf", [])]),
                 ("write_stat", [("write_stat", [("statsd", [])])]),
                 ("write_log", [("write_log", [("log_write", [])])])])])
    (run,) = [s for s in main.children if s.manual]
    assert [c.name for c in main.children] == ["custom_span_enter", "run", "custom_span_exit"]
    assert run.parent_id == main.span_id and all(c.parent_id == run.span_id for c in run.children)
    (statsd,) = find(trace, "statsd")
    assert [(m.format_name, m.value) for m in statsd.events if type(m) is Metric] == [("statsd", "vowels.count:1|c")]
    (log_write,) = find(trace, "log_write")
    assert [(e.severity, e.message) for e in log_write.events if type(e) is Log] == [("ERROR", "Vowels Counted: 3")]
    # the helper that opened a manual span ends before it; the one that closes it starts inside it
    enter_fn = main.children[0]
    assert enter_fn.start_ns < run.start_ns <= enter_fn.end_ns <= main.children[2].start_ns <= run.end_ns


@pytest.mark.parametrize("recorder", ["python", "wasm"])
def test_ledger_span_guards_dropped_in_instrumented_functions(guest_factory, recorder):
    """Rust's Span guard opens in Span::enter and closes in Drop::drop, both instrumented."""
    trace, _, _ = observe(guest_factory, "ledger.instr", recorder=recorder)
    assert trace.errors == [] and not any(s.error for s in trace.spans())
    (main,) = find(trace, "ledger::main")
    assert shape(main, lambda s: s.manual) == ("ledger::main", [
        ("ledger", [("parse", []), ("aggregate", []), ("report", [])])])
    (parse,) = find(trace, "parse")
    assert [e.message for s in parse.walk() for e in s.events if type(e) is Log] == \
        ['skipped line 13: unknown kind "steal"']
    (aggregate,) = find(trace, "aggregate")
    assert [m.value for s in aggregate.walk() for m in s.events if type(m) is Metric] == ["ledger.entries:12|c"]
    # strict: parse fails, main drops its guard by hand (drop(_span), an instrumented call) and exits 2
    strict, _, _ = observe(guest_factory, "ledger.instr", argv=["ledger", "strict"], recorder=recorder)
    assert strict.errors == ["exit code 2"]
    assert [(s.name, s.error) for s in strict.spans() if s.manual] == [("ledger", None), ("parse", None)]


@pytest.mark.parametrize("recorder", ["python", "wasm"])
def test_dylibso_compiler_pattern_wraps_the_api_imports_too(guest_factory, recorder):
    """guest-examples/wat/wrapped.instr.wat: every import call is a span, span_enter's included."""
    adapter = InMemoryAdapter()
    wasm = wasmtime.wat2wasm((GUESTS / "wat" / "wrapped.instr.wat").read_text())
    g = guest_factory(wasm, adapter, Options(min_span_duration_us=0, recorder=recorder))
    g.call("_start")
    trace = g.ctx.finish()
    adapter.shutdown()
    assert trace.errors == [] and not any(s.error for s in trace.spans())
    (start,) = trace.root_spans
    assert [c.name for c in start.children] == ["custom_span_enter", "run", "custom_span_exit"]
    assert shape(start, lambda s: s.manual or s.name in ("run_steps", "fd_write", "metric", "log")) == ("_start", [
        ("run", [("run_steps", [("printf", [("fd_write", [])]), ("statsd", [("metric", [])]),
                                ("log_write", [("log", [])])])])])
    (log,) = find(trace, "log")
    assert [e.message for e in log.events if type(e) is Log] == ["Vowels Counted: 3"]


# ------------------------------------------------------------------- host calls as spans (issue #11)

HOST_CALLS = {  # deterministic host calls of each example (Go's runtime also reads the clock a varying number of times)
    "kitchensink.instr": {"__imported_wasi_snapshot_preview1_fd_fdstat_get": 1,
                          "__imported_wasi_snapshot_preview1_fd_write": 1},
    "hello.instr": {"__imported_wasi_snapshot_preview1_args_sizes_get": 1,
                    "__imported_wasi_snapshot_preview1_args_get": 1,
                    "__imported_wasi_snapshot_preview1_fd_fdstat_get": 1,
                    "__imported_wasi_snapshot_preview1_fd_write": 3},
    "ledger.instr": {"wasi::lib_generated::wasi_snapshot_preview1::fd_write": 7,
                     "wasi::lib_generated::wasi_snapshot_preview1::random_get": 1},
    "inventory.instr": {"__imported_wasi_snapshot_preview1_fd_write": 5,
                        "__imported_wasi_snapshot_preview1_proc_exit": 1},
}


@pytest.mark.parametrize("name", sorted(HOST_CALLS))
def test_one_span_per_host_call(guest_factory, name):
    """Every reference to an import goes to its wrapper (so every call is one span), and each
    host-call span is a leaf named as the module names the import."""
    from observe_sdk.instrument.code import EDIT_FUNC
    from observe_sdk.instrument.module import EXTERN_FUNC, read_module

    module = read_module((BUILD / f"{name}.wasm").read_bytes())
    imports = [imp for imp in module.imports if imp.kind == EXTERN_FUNC]
    wrapped = {i for i, imp in enumerate(imports) if not imp.module.startswith(("dylibso", "observe"))}
    callers: dict[int, list[int]] = {i: [] for i in wrapped}
    for defined, body in enumerate(module.bodies):
        for kind, _, _, target in body.scan.edits:
            if kind == EDIT_FUNC and target in wrapped:
                callers[target].append(len(imports) + defined)
    wrappers = {i: callers[i] for i in wrapped}
    assert all(len(c) == 1 for c in wrappers.values()), "each import is called from its wrapper only"
    assert not any(target in wrapped for refs in module.func_refs.values() for _, _, target in refs)
    wrapper_index = {c[0] for c in wrappers.values()}

    trace, _, _ = observe(guest_factory, name, recorder="wasm")
    host_spans = [s for s in trace.spans() if s.function_index in wrapper_index]
    assert host_spans and all(not s.children for s in host_spans)
    counts: dict[str, int] = {}
    for s in host_spans:
        counts[s.name] = counts.get(s.name, 0) + 1
    assert {n: counts.get(n) for n in HOST_CALLS[name]} == HOST_CALLS[name]


# ------------------------------------------------------------------------ names and attributes (issue #11)

def test_wasm_module_on_every_root_from_the_file_name(guest_factory):
    """The C reactor's name section has no module name: the host's name for it goes on every root."""
    from observe_sdk.adapters.otlp_json import traces_data

    adapter = InMemoryAdapter()
    g = guest_factory((BUILD / "reactor.instr.wasm").read_bytes(), adapter,
                      Options(min_span_duration_us=0, module_name="reactor.instr.wasm"))
    for call in ("_initialize", ("add", 2, 3), ("add", 40, 2)):
        fname, *args = call if isinstance(call, tuple) else (call,)
        g.call(fname, *args)
    trace = g.ctx.finish()
    adapter.shutdown()
    assert trace.module_name == "reactor.instr.wasm" and len(trace.root_spans) == 3
    spans = traces_data([trace])["resourceSpans"][0]["scopeSpans"][0]["spans"]
    roots = [s for s in spans if "parentSpanId" not in s]
    assert len(roots) == 3
    assert all({"key": "wasm.module", "value": {"stringValue": "reactor.instr.wasm"}} in s["attributes"] for s in roots)
