"""The host misusing the SDK's API: finishing early or twice, closed or foreign stores,
shared linkers, many threads, failures inside the host; clear errors, no lost trace."""
from __future__ import annotations

import io
import threading
from typing import Any

import pytest
import wasmtime

import wat_modules as W
from observe_sdk import Options
from observe_sdk.adapters.memory import InMemoryAdapter
from observe_sdk.adapters.stdout import StdoutAdapter
from observe_sdk.host.wasi_stores import track_wasi_stores, untrack_wasi_stores
from observe_sdk.trace import Allocation
from observed_runs import ENGINE, check_exports, run_observed, shape, started
from sdk_helpers import tree


@pytest.mark.parametrize("recorder", ["python", "wasm"])
def test_finish_before_any_call_and_twice(recorder: str) -> None:
    ctx, store, _, exports, adapter = started(recorder)
    first = ctx.finish()                       # nothing happened yet: an empty trace, not sent
    assert first.roots == [] and first.errors == [] and first.dropped_events == 0
    exports["_start"](store)
    second, third = ctx.finish(), ctx.finish()  # the second finish in a row is empty again
    assert tree(second) == W.NESTED_TREE and third.roots == []
    assert len({first.trace_id, second.trace_id, third.trace_id}) == 3
    exports["_start"](store)                   # calls after finish go to a new trace
    fourth = ctx.finish()
    assert tree(fourth) == W.NESTED_TREE
    assert adapter.shutdown(timeout=10).complete
    assert adapter.traces == [second, fourth]


@pytest.mark.parametrize("recorder", ["python", "wasm"])
def test_shutdown_twice_then_submit(recorder: str, caplog: pytest.LogCaptureFixture) -> None:
    out = io.StringIO()
    ctx, store, _, exports, adapter = started(recorder, StdoutAdapter(out))
    exports["_start"](store)
    ctx.finish()
    first = adapter.shutdown(timeout=10)
    second = adapter.shutdown(timeout=10)
    assert first.complete and second.exported == first.exported == 1
    # the guest still runs and finish() still works; the trace is dropped, counted and logged
    exports["_start"](store)
    late = ctx.finish()
    assert tree(late) == W.NESTED_TREE
    assert adapter.stats["dropped"] == 1
    assert any("after shutdown" in r.getMessage() for r in caplog.records)
    assert out.getvalue().count("\ntrace ") + out.getvalue().startswith("trace ") == 1


def test_linker_shared_by_two_trace_contexts() -> None:
    """Documented: start() redefines the ABI in the linker, so instances made
    after a second start() report to the second context; instances made
    before keep reporting to the first (imports bind at instantiation)."""
    engine = ENGINE
    store = wasmtime.Store(engine)
    store.set_wasi(wasmtime.WasiConfig())
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    adapter = InMemoryAdapter()
    wasm = wasmtime.wat2wasm(W.MIXED)
    module = wasmtime.Module(engine, wasm)
    for first_rec, second_rec in (("python", "wasm"), ("wasm", "python"), ("wasm", "wasm")):
        ctx1 = adapter.start(linker, wasm, Options(min_span_duration_us=0, recorder=first_rec), store=store)
        inst1 = linker.instantiate(store, module)
        ctx2 = adapter.start(linker, wasm, Options(min_span_duration_us=0, recorder=second_rec), store=store)
        inst2 = linker.instantiate(store, module)
        inst1.exports(store)["_start"](store)
        inst2.exports(store)["_start"](store)
        inst2.exports(store)["_start"](store)
        t1, t2 = ctx1.finish(), ctx2.finish()
        assert [r.name for r in t1.root_spans] == ["main"]
        assert [r.name for r in t2.root_spans] == ["main", "main"]
        assert t1.errors == t2.errors == []
    assert adapter.shutdown(timeout=10).complete


def test_store_closed_before_finish() -> None:
    """Closing the store frees the fast path's buffer: finish() still works (no crash)."""
    ctx, store, _, exports, adapter = started("wasm")
    exports["_start"](store)
    store.close()
    ctx.record_trap(RuntimeError("gone"))      # host events after the close still work
    trace = ctx.finish()
    assert any("store was closed" in e for e in trace.errors) and "trap: gone" in trace.errors
    assert ctx.finish().errors == []           # reported once
    assert adapter.shutdown(timeout=10).complete and adapter.traces == [trace]


def test_store_of_another_engine_or_closed_is_refused() -> None:
    store = wasmtime.Store(wasmtime.Engine())
    store.set_wasi(wasmtime.WasiConfig())
    linker = wasmtime.Linker(ENGINE)
    linker.define_wasi()
    adapter = InMemoryAdapter()
    for recorder in ("auto", "python", "wasm"):
        with pytest.raises(ValueError, match="different wasmtime Engines"):
            adapter.start(linker, wasmtime.wat2wasm(W.NESTED), Options(recorder=recorder), store=store)
    closed = wasmtime.Store(ENGINE)
    closed.close()
    with pytest.raises(ValueError, match="store= is closed"):
        adapter.start(linker, wasmtime.wat2wasm(W.NESTED), Options(), store=closed)
    adapter.shutdown()


def test_store_of_unknown_wasi_uses_the_python_recorder() -> None:
    """A store made before observe_sdk was imported may lack WASI (the fast path would abort the process)."""
    untrack_wasi_stores()                      # as if made before the import
    try:
        store = wasmtime.Store(ENGINE)
    finally:
        track_wasi_stores()
    linker = wasmtime.Linker(ENGINE)
    linker.define_wasi()
    adapter = InMemoryAdapter()
    ctx = adapter.start(linker, wasmtime.wat2wasm(W.NESTED), Options(), store=store)
    assert ctx.recorder_name == "python"
    adapter.shutdown()


def test_documented_value_errors() -> None:
    ctx, store, _, exports, adapter = started()
    for bad in ("", "zz" * 16, "00" * 16, 0, -1, 1 << 128, b"\x01" * 15):
        with pytest.raises(ValueError):
            ctx.set_trace_id(bad)
    for bad_options in ({"min_span_duration_us": -1}, {"max_events": 0}, {"recorder": "fast"}):
        with pytest.raises(ValueError):
            Options(**bad_options)
    with pytest.raises(ValueError):
        InMemoryAdapter(max_queue=0)
    ctx.set_trace_id("ab" * 16)
    exports["_start"](store)
    assert ctx.finish().trace_id == bytes.fromhex("ab" * 16)
    adapter.shutdown()


@pytest.mark.parametrize("recorder", ["python", "wasm"])
def test_trap_recorded_by_the_context_manager_and_twice(recorder: str) -> None:
    ctx, store, _, exports, adapter = started(recorder, wat=W.TRAP)
    with pytest.raises(wasmtime.Trap):
        with ctx:
            exports["_start"](store)
    trace = adapter.wait_for(1)[0]
    assert trace.roots[0].error.startswith("trap: ")
    # the host records the same trap twice, and an exception that is no trap at all
    with pytest.raises(wasmtime.Trap) as trapped:
        exports["_start"](store)
    ctx.record_trap(trapped.value)
    ctx.record_trap(trapped.value)
    ctx.record_trap(RuntimeError("not from wasm"))
    again = ctx.finish()
    assert [e.split(":")[0] for e in again.errors] == ["trap", "trap", "trap"]
    check_exports(again)
    assert adapter.shutdown(timeout=10).complete


def test_finish_while_the_guest_runs() -> None:
    """finish() from a host function the guest calls mid-flight: the spans open then
    close as errors in the first trace, their exits are faults of the second; both
    recorders agree, and the guest carries on."""
    wat = f'''(module {W.IMPORTS}
  (import "host" "cut" (func $cut))
  (memory (export "memory") 1)
  (data (i32.const 0) "work")
  (func $main (export "_start")
    (call $enter (i32.const 9))
    (call $span_enter (i32.const 0) (i32.const 4))
    (call $enter (i32.const 10))
    (call $cut)
    (call $grow (i32.const 1))
    (call $exit (i32.const 10))
    (call $span_exit)
    (call $exit (i32.const 9))
    (call $enter (i32.const 11)) (call $exit (i32.const 11))))'''
    wasm = wasmtime.wat2wasm(wat)
    results = []
    for recorder in ("python", "wasm"):
        store = wasmtime.Store(ENGINE)
        store.set_wasi(wasmtime.WasiConfig())
        linker = wasmtime.Linker(ENGINE)
        linker.define_wasi()
        adapter = InMemoryAdapter()
        ctx = adapter.start(linker, wasm, Options(min_span_duration_us=0, recorder=recorder), store=store)
        linker.define_func("host", "cut", wasmtime.FuncType([], []), lambda ctx=ctx: ctx.finish() and None)
        ctx.call(store, linker.instantiate(store, wasmtime.Module(ENGINE, wasm)).exports(store)["_start"])
        second = ctx.finish()
        (first,) = [t for t in adapter.wait_for(2) if t is not second]
        adapter.shutdown(timeout=10)
        results.append((shape(first.roots), first.errors, shape(second.roots), second.errors))
        assert tree(first) == [("main", [("work", [("func[10]", [])])])]
        assert all(span.error == "span still open when the trace finished" for span in first.spans())
        assert [r.name for r in second.root_spans] == ["func[11]"]
        assert second.roots[0] == Allocation(1, second.roots[0].time_ns)
        assert second.errors == ["exit: function 10 has no open span; ignored",
                                 "span-exit: no span is open; ignored",
                                 "exit: function 9 has no open span; ignored"]
    assert results[0] == results[1]


def test_guests_on_many_threads_share_one_adapter() -> None:
    """Each thread has its own store and trace context; the adapter gets every trace."""
    adapter = InMemoryAdapter(max_queue=10_000)
    wasm = wasmtime.wat2wasm(W.MIXED)
    module = wasmtime.Module(ENGINE, wasm)
    failures: list[BaseException] = []

    def work(recorder: str) -> None:
        try:
            for _ in range(25):
                trace = run_observed(module, wasm, recorder, 0, adapter).trace
                assert [r.name for r in trace.root_spans] == ["main"] and not trace.errors
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(rec,)) for rec in ("python", "wasm") * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    report = adapter.shutdown(timeout=10)
    assert report.complete and report.exported == len(adapter.traces) == 100
    assert len({t.trace_id for t in adapter.traces}) == 100


@pytest.mark.parametrize("recorder", ["python", "wasm"])
def test_a_host_failure_in_an_api_call_does_not_trap_the_guest(recorder: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from observe_sdk.host import linking

    def broken(*args: Any, **kwargs: Any) -> str:
        raise MemoryError("no room")

    monkeypatch.setattr(linking, "read_guest_string", broken)
    ctx, store, _, exports, adapter = started(recorder, wat=W.MIXED)
    exports["_start"](store)                   # no trap
    trace = ctx.finish()
    assert [r.name for r in trace.root_spans] == ["main"] and tree(trace) == [("main", [("helper", [])])]
    internal = [e.split(" failed")[0] for e in trace.errors if e.startswith("internal: ")]
    assert internal == ["internal: span-enter", "internal: span-tags", "internal: span-enter",
                        "internal: metric", "internal: log"]
    assert trace.errors[0] == "internal: span-enter failed on the host: MemoryError('no room')"
    adapter.shutdown()


def test_linker_used_with_another_store() -> None:
    """Documented: with the fast path the ABI in the linker lives in the store given to
    start(), so instantiating in another store is wasmtime's clear error (call start()
    for that store); with the Python recorder one linker serves every store."""
    wasm = wasmtime.wat2wasm(W.NESTED)
    module = wasmtime.Module(ENGINE, wasm)
    adapter = InMemoryAdapter()
    for recorder in ("wasm", "python"):
        linker = wasmtime.Linker(ENGINE)
        linker.define_wasi()
        stores = []
        for _ in range(2):
            store = wasmtime.Store(ENGINE)
            store.set_wasi(wasmtime.WasiConfig())
            stores.append(store)
        ctx = adapter.start(linker, wasm, Options(min_span_duration_us=0, recorder=recorder), store=stores[0])
        if recorder == "wasm":
            with pytest.raises(wasmtime.WasmtimeError, match="cross-`Store`"):
                linker.instantiate(stores[1], module)
            assert ctx.finish().roots == []
        else:
            for store in stores:
                linker.instantiate(store, module).exports(store)["_start"](store)
            assert tree(ctx.finish()) == W.NESTED_TREE * 2
    adapter.shutdown()
