"""The host ABI and trace assembly, end to end through wasmtime (Python recorder)."""
from __future__ import annotations

import logging
import threading

import pytest
import wasmtime

import wat_modules as W
from observe_sdk import Options
from observe_sdk.abi import NAMESPACES
from observe_sdk.adapters.memory import InMemoryAdapter
from observe_sdk.names import ModuleFormatError
from observe_sdk.trace import Allocation, Log, Metric
from sdk_helpers import tree, wasm_of

PY = dict(recorder="python")


def run(guest_factory, wat, opts=None, entry="_start", **kw):
    adapter = InMemoryAdapter()
    g = guest_factory(wasm_of(wat), adapter, opts or Options(min_span_duration_us=0, **PY), **kw)
    try:
        g.call(entry)
    except (wasmtime.Trap, wasmtime.WasmtimeError):
        pass
    trace = g.ctx.finish()
    adapter.shutdown()
    return trace, g


def test_every_import_of_the_spec_links(guest_factory):
    wat = f'(module {W.import_block(*NAMESPACES, named=False)} (memory (export "memory") 1) (func (export "_start")))'
    trace, _ = run(guest_factory, wat)
    assert trace.roots == [] and trace.errors == []


def test_module_without_observe_imports_runs_unchanged(guest_factory):
    adapter = InMemoryAdapter()
    g = guest_factory(wasm_of(W.PLAIN), adapter, Options(**PY))
    assert g.call("add", 2, 3) == 5
    trace = g.ctx.finish()
    assert trace.roots == [] and trace.errors == []
    assert adapter.shutdown().exported == 0  # nothing observed: nothing sent


def test_nested_functions_build_the_tree(guest_factory):
    trace, _ = run(guest_factory, W.NESTED)
    assert tree(trace) == W.NESTED_TREE
    main = trace.root_spans[0]
    three = next(s for s in trace.spans() if s.name == "three")
    assert three.function_index == 12 and three.raw_name == "three" and not three.manual
    assert three.allocated_pages == 1
    assert main.start_ns <= three.start_ns <= three.end_ns <= main.end_ns
    ids = {s.span_id for s in trace.spans()}
    assert len(ids) == 4 and 0 not in ids
    assert [s.parent_id for s in trace.spans()] == [0] + [s.span_id for s in list(trace.spans())[:-1]]


def test_min_duration_filter_keeps_roots_and_moves_allocations_up(guest_factory):
    # one(10) and below are busy for tens of us; with a 10 s minimum only the root survives
    trace, _ = run(guest_factory, W.NESTED, Options(min_span_duration_us=10_000_000, **PY))
    assert tree(trace) == [("main", [])]
    main = trace.root_spans[0]
    assert [type(e) for e in main.events] == [Allocation] and main.allocated_pages == 1


def test_manual_and_automatic_spans_share_one_stack(guest_factory):
    trace, _ = run(guest_factory, W.MIXED)
    assert tree(trace) == [("main", [("run", [("helper", []), ("statsd", [])])])]
    run_span = trace.root_spans[0].children[0]
    assert run_span.manual and run_span.function_index == 0
    assert run_span.tag_pairs() == [("user", "alice"), ("role", "x")]
    statsd = run_span.children[1]
    assert [(m.format_name, m.value) for m in statsd.events if type(m) is Metric] == [("statsd", "vowels.count:1|c")]
    logs = [e for e in trace.root_spans[0].events if type(e) is Log]
    assert [(entry.severity, entry.message) for entry in logs] == [("ERROR", "Vowels Counted: 3")]


def test_deprecated_namespace_with_64_bit_pointers(guest_factory, caplog):
    with caplog.at_level(logging.WARNING, logger="observe_sdk"):
        trace, _ = run(guest_factory, W.LEGACY)
    assert "deprecated" in caplog.text
    assert tree(trace) == [("main", [("old", [])])]
    old = trace.root_spans[0].children[0]
    assert old.tags == ["k:v"] and old.allocated_pages == 1
    assert [(type(e).__name__) for e in old.events] == ["Metric", "Log", "Allocation"]
    assert old.events[1].message == "hi" and old.events[1].severity == "INFO"


def test_bad_guest_input_is_recorded_never_raised(guest_factory, caplog):
    with caplog.at_level(logging.WARNING, logger="observe_sdk"):
        trace, _ = run(guest_factory, W.BAD)
    text = "\n".join(trace.errors)
    assert "span-exit: no span is open" in text
    assert "out of bounds" in text and "4294967295+1" in text
    assert "invalid UTF-8" in text
    assert "unknown log level 42" in text
    assert "unknown metric format 7" in text
    assert "span-tags: no span is open" in text
    assert "exit: function 8 has no open span" in text
    assert len(trace.errors) == 8
    # the guest carried on: its last log arrived
    assert [(e.severity, e.message) for e in trace.roots if type(e) is Log] == [("INFO", "ok")]
    # logged once per kind of fault, not once per fault
    assert caplog.text.count("further span-enter faults") == 1


def test_trap_closes_open_spans_as_errors(guest_factory):
    trace, _ = run(guest_factory, W.TRAP)
    assert tree(trace) == [("main", [("inner", [("work", [])])])]
    for span in trace.spans():
        assert span.error == "trap: wasm `unreachable` instruction executed"
    assert any(e.startswith("trap:") for e in trace.errors)


def test_context_manager_records_trap(guest_factory):
    adapter = InMemoryAdapter()
    g = guest_factory(wasm_of(W.TRAP), adapter, Options(**PY))
    with pytest.raises(wasmtime.Trap):
        with g.ctx:
            g.exports["_start"](g.store)
    (trace,) = adapter.wait_for(1)
    assert all(s.error for s in trace.spans())
    adapter.shutdown()


@pytest.mark.parametrize("code, is_error", [(3, True), (0, False)])
def test_proc_exit_closes_open_spans(guest_factory, code, is_error):
    adapter = InMemoryAdapter()
    g = guest_factory(wasm_of(W.EXIT), adapter, Options(min_span_duration_us=0, **PY))
    with pytest.raises(wasmtime.ExitTrap) as info:
        g.call("exit_with", code)
    assert info.value.code == code
    trace = g.ctx.finish()
    assert tree(trace) == [("inner", [])]
    span = trace.root_spans[0]
    assert (span.error == f"exit code {code}") if is_error else span.error is None
    adapter.shutdown()


def test_reactor_gives_one_trace_with_several_roots(guest_factory):
    adapter = InMemoryAdapter()
    g = guest_factory(wasm_of(W.REACTOR), adapter, Options(**PY))
    g.call("_initialize")
    assert [g.call("bump") for _ in range(3)] == [1, 2, 3]
    trace = g.ctx.finish()
    assert [s.name for s in trace.root_spans] == ["init", "bump", "bump", "bump"]
    assert all(isinstance(e, Log) for s in trace.root_spans[1:] for e in s.events)
    # a new trace begins after finish
    g.call("bump")
    second = g.ctx.finish()
    assert [s.name for s in second.root_spans] == ["bump"] and second.trace_id != trace.trace_id
    adapter.shutdown()


def test_event_cap_stops_recording_and_counts(guest_factory, caplog):
    with caplog.at_level(logging.WARNING, logger="observe_sdk"):
        trace, _ = run(guest_factory, W.loop_module(1000), Options(min_span_duration_us=0, max_events=101, **PY))
    assert trace.dropped_events == 2002 - 101
    assert "event cap" in caplog.text and any("event cap" in e for e in trace.errors)
    root = trace.root_spans[0]
    assert len(root.children) == 50  # 1 enter + 50 pairs recorded; the root closed when the trace finished
    assert root.error


def test_trace_id_and_metadata(guest_factory):
    adapter = InMemoryAdapter()
    g = guest_factory(wasm_of(W.NESTED), adapter, Options(**PY))
    g.ctx.set_trace_id("0af7651916cd43dd8448eb211c80319c")
    g.ctx.set_metadata(datadog={"resource": "r"}, request="42")
    g.call("_start")
    trace = g.ctx.finish()
    assert trace.trace_id_hex == "0af7651916cd43dd8448eb211c80319c"
    assert trace.metadata == {"datadog": {"resource": "r"}, "request": "42"}
    for bad in ("xyz", "00" * 16, b"short"):
        with pytest.raises(ValueError):
            g.ctx.set_trace_id(bad)
    adapter.shutdown()


def test_manual_span_outlives_the_function_that_opened_it():
    """exit(f) with a manual span opened inside f still open: f ends, the manual span
    stays open one level up, and a span-exit from elsewhere closes it (issue #11)."""
    from observe_sdk.assemble import assemble
    from observe_sdk.host.recorder import EventLog
    from observe_sdk.names import FunctionNames

    log = EventLog(100)
    log.events += [1, 4, 50]             # enter 4 (main)
    log.events += [1, 5, 100]            # enter 5 (custom_span_enter)
    log.add(4, "manual", 110)            # span-enter
    log.events += [2, 5, 200]            # exit 5 with the manual span open
    log.events += [1, 6, 300]            # enter 6 (custom_span_exit)
    log.add(5, None, 310)                # span-exit with function 6 open above the manual span
    log.events += [2, 6, 400]            # exit 6
    log.events += [2, 4, 500]            # exit 4
    trace = assemble(log, FunctionNames({4: "main", 5: "enter", 6: "exit"}), min_span_duration_ns=0)
    assert tree(trace) == [("main", [("enter", []), ("manual", []), ("exit", [])])]
    main = trace.root_spans[0]
    enter, manual, exit_ = main.children
    assert (enter.end_ns, manual.start_ns, manual.end_ns, exit_.end_ns) == (200, 110, 310, 400)
    assert all(s.error is None and s.parent_id == main.span_id for s in main.children)
    assert trace.errors == []


def test_span_exit_with_no_manual_span_open_is_a_fault():
    from observe_sdk.assemble import assemble
    from observe_sdk.host.recorder import EventLog
    from observe_sdk.names import FunctionNames

    log = EventLog(100)
    log.events += [1, 5, 100]            # enter 5
    log.add(5, None, 150)                # span-exit: only a function span is open
    log.events += [2, 5, 200]
    trace = assemble(log, FunctionNames({5: "f"}), min_span_duration_ns=0)
    assert tree(trace) == [("f", [])]
    assert trace.errors == ["span-exit: no manual span is open; ignored"]


def test_malformed_module_is_a_clear_error():
    engine = wasmtime.Engine()
    adapter = InMemoryAdapter()
    with pytest.raises(ModuleFormatError, match="magic"):
        adapter.start(wasmtime.Linker(engine), b"not wasm at all")
    truncated = wasm_of(W.NESTED)[:40]
    with pytest.raises(ModuleFormatError, match="byte offset"):
        adapter.start(wasmtime.Linker(engine), truncated)
    adapter.shutdown()


def test_names_are_demangled_and_raw_kept(guest_factory):
    wat = W.module(r'''
      (func $_ZN4core3fmt5write17h0123456789abcdefE (export "_start")
        (call $enter (i32.const 8)) (call $_Z3fibi) (call $exit (i32.const 8)))
      (func $_Z3fibi (call $enter (i32.const 9)) (call $exit (i32.const 9)))
      (func $_RNvCs1234_7mycrate3foo (call $enter (i32.const 11)) (call $exit (i32.const 11)))
    ''')
    trace, _ = run(guest_factory, wat)
    root = trace.root_spans[0]
    assert (root.name, root.raw_name) == ("core::fmt::write", "_ZN4core3fmt5write17h0123456789abcdefE")
    assert root.children[0].name == "fib(int)"
    from observe_sdk.names import demangle
    assert demangle("_RNvCs1234_7mycrate3foo") == "mycrate::foo"
    # a function with no name
    from observe_sdk.names import FunctionNames
    assert FunctionNames({})(77) == ("func[77]", "func[77]")


def test_threads_and_stores_do_not_mix(tmp_path):
    adapter = InMemoryAdapter()
    wasm = wasm_of(W.NESTED)
    wasm_r = wasm_of(W.REACTOR)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            engine = wasmtime.Engine()
            store = wasmtime.Store(engine)
            linker = wasmtime.Linker(engine)
            module_bytes = wasm if i % 2 == 0 else wasm_r
            ctx = adapter.start(linker, module_bytes, Options(min_span_duration_us=0, **PY), store=store)
            inst = linker.instantiate(store, wasmtime.Module(engine, module_bytes))
            for _ in range(20):
                ctx.set_metadata(worker=i)  # metadata belongs to the current trace
                if i % 2 == 0:
                    inst.exports(store)["_start"](store)
                else:
                    inst.exports(store)["bump"](store)
                ctx.finish()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    traces = adapter.wait_for(80)
    adapter.shutdown()
    assert len(traces) == 80
    for trace in traces:
        expect = W.NESTED_TREE if trace.metadata["worker"] % 2 == 0 else [("bump", [])]
        assert tree(trace) == expect


def test_two_instances_in_one_store_share_the_trace(tmp_path):
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    adapter = InMemoryAdapter()
    linker = wasmtime.Linker(engine)
    wasm = wasm_of(W.REACTOR)
    ctx = adapter.start(linker, wasm, Options(**PY), store=store)
    a = linker.instantiate(store, wasmtime.Module(engine, wasm))
    b = linker.instantiate(store, wasmtime.Module(engine, wasm))
    a.exports(store)["bump"](store)
    b.exports(store)["bump"](store)
    assert [s.name for s in ctx.finish().root_spans] == ["bump", "bump"]
    adapter.shutdown()


def test_instrumenter_version_exports_are_accepted(guest_factory, caplog, monkeypatch):
    from observe_sdk.host import context
    monkeypatch.setattr(context, "_warned_once", set())  # warnings are once per process
    wat = W.module(r'''
      (global (export "wasm_instr_version_major") i32 (i32.const 0))
      (global (export "wasm_instr_version_minor") i32 (i32.const 1))
      (func $main (export "_start") (call $enter (i32.const 8)) (call $exit (i32.const 8)))''')
    from observe_sdk.names import read_module_info
    assert read_module_info(wasm_of(wat)).instrumenter_version == (0, 1)
    with caplog.at_level(logging.WARNING, logger="observe_sdk"):
        trace, _ = run(guest_factory, wat)
    assert tree(trace) == [("main", [])]
    assert "older instrumenter (0.1" in caplog.text


FAULTHANDLER_SCRIPT = r'''
import faulthandler, wasmtime
from observe_sdk import Options
from observe_sdk.adapters.memory import InMemoryAdapter
engine = wasmtime.Engine()          # wasmtime installs its trap handlers here
faulthandler.enable()               # ... and faulthandler goes on top of them
store, linker = wasmtime.Store(engine), wasmtime.Linker(engine)
wasm = wasmtime.wat2wasm("""(module (import "dylibso:observe/instrument" "enter" (func $e (param i32)))
  (func (export "f") (call $e (i32.const 1)) unreachable))""")
ctx = InMemoryAdapter().start(linker, wasm, Options(recorder="python"))
instance = linker.instantiate(store, wasmtime.Module(engine, wasm))
try:
    ctx.call(store, instance.exports(store)["f"])
except wasmtime.Trap:
    print("trapped", faulthandler.is_enabled())
'''


@pytest.mark.parametrize("flags, still_enabled", [([], False), (["-X", "faulthandler"], True)])
def test_faulthandler_never_turns_a_guest_trap_into_a_crash(tmp_path, flags, still_enabled):
    import subprocess
    import sys

    script = tmp_path / "fh.py"
    script.write_text(FAULTHANDLER_SCRIPT)
    r = subprocess.run([sys.executable, *flags, str(script)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"trapped {still_enabled}"
    assert ("faulthandler was enabled after wasmtime" in r.stderr) == (not still_enabled)


def test_functions_without_a_name_are_named_after_their_export():
    """No name-section entry: the export name (``_start``, not ``func[3]``), then ``func[N]``."""
    from observe_sdk.names import FunctionNames, read_module_info

    wasm = wasmtime.wat2wasm('''(module
      (import "dylibso:observe/instrument" "enter" (func (param i32)))
      (import "dylibso:observe/instrument" "exit" (func (param i32)))
      (func (export "_start") (export "also") (call 3))
      (func)
      (func $named (export "exported_too")))''')
    names = FunctionNames(read_module_info(wasm).span_names)
    assert [names(i)[0] for i in (2, 3, 4)] == ["_start", "func[3]", "named"]
