"""Runaway guests against the limits: the event cap, the text budget, settings past 64 bits,
and the assembler's cost on pathological logs."""
from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import wasmtime

import wat_modules as W
from observe_sdk import Options
from observe_sdk.adapters.memory import InMemoryAdapter
from observe_sdk.trace import Log
from observed_runs import ENGINE, engine_with, run_observed, started
from sdk_helpers import tree

RUNAWAY = W.module(r'''
  (func $main (export "_start")
    (call $enter (i32.const 8))
    (loop $l
      (call $enter (i32.const 9))
      (call $span_enter (i32.const 0) (i32.const 3))
      (call $log (i32.const 4) (i32.const 0) (i32.const 3))
      (call $span_exit)
      (call $grow (i32.const 0))
      (call $exit (i32.const 9))
      (br $l)))
''', data="run")


@pytest.mark.parametrize("stop", ["fuel", "epoch"])
@pytest.mark.parametrize("recorder", ["python", "wasm"])
def test_runaway_guest_hits_the_event_cap(recorder: str, stop: str) -> None:
    from observe_sdk.host.wasm_recorder import CAPACITY

    engine = engine_with(**{"consume_fuel" if stop == "fuel" else "epoch_interruption": True})
    store = wasmtime.Store(engine)
    store.set_wasi(wasmtime.WasiConfig())
    if stop == "fuel":
        store.set_fuel(600_000)
    else:
        store.set_epoch_deadline(1)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    adapter = InMemoryAdapter()
    max_events = 5_000
    wasm = wasmtime.wat2wasm(RUNAWAY)
    ctx = adapter.start(linker, wasm, Options(min_span_duration_us=0, recorder=recorder, max_events=max_events),
                        store=store)
    instance = linker.instantiate(store, wasmtime.Module(engine, wasm))
    running = threading.Event()

    def capped() -> bool:
        rec = ctx._recorder
        return (rec._ctl.dropped if recorder == "wasm" else rec.log.dropped) > 0

    def interrupt_once_capped() -> None:
        """Stop the guest once it ran past the cap (bounded: a stuck guest still ends)."""
        deadline = time.monotonic() + 60
        while running.is_set() and not capped() and time.monotonic() < deadline:
            time.sleep(0.005)
        engine.increment_epoch()

    watcher = threading.Thread(target=interrupt_once_capped)
    running.set()
    if stop == "epoch":
        watcher.start()
    try:
        with pytest.raises(wasmtime.Trap) as trapped:
            instance.exports(store)["_start"](store)
    finally:
        running.clear()
        if watcher.is_alive():
            watcher.join()
    # bounded: the raw log holds at most max_events events (and the wasm buffer is fixed)
    recorder_ = ctx._recorder
    recorder_.sync()
    assert len(recorder_.log) <= max_events and len(recorder_.log.payloads) <= max_events
    if recorder == "wasm":
        assert recorder_._ctl.len <= CAPACITY
    ctx.record_trap(trapped.value)
    trace = ctx.finish()
    reason = "all fuel consumed" if stop == "fuel" else "interrupt"
    assert trace.dropped_events > 0
    assert any(e.startswith("trap: ") and reason in e for e in trace.errors), trace.errors
    assert f"event cap reached: {trace.dropped_events} event(s) dropped" in trace.errors
    main = trace.roots[0]
    assert main.name == "main" and main.error and reason in main.error
    assert adapter.shutdown(timeout=10).complete and adapter.traces == [trace]
    # the next trace starts afresh
    assert ctx.finish().dropped_events == 0


LOGGING_LOOP = W.module(r'''
  (func $main (export "_start") (local i32)
    (call $enter (i32.const 8))
    (loop $l
      (call $log (i32.const 3) (i32.const 0) (i32.const 300))
      (local.set 0 (i32.add (local.get 0) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get 0) (i32.const 10))))
    (call $span_enter (i32.const 0) (i32.const 3))
    (call $span_tags (i32.const 0) (i32.const 3))
    (call $metric (i32.const 1) (i32.const 0) (i32.const 3))
    (call $span_exit)
    (call $exit (i32.const 8)))
''', data="abc" * 100)


@pytest.mark.parametrize("recorder", ["python", "wasm"])
def test_text_budget_bounds_what_a_guest_can_make_the_host_keep(recorder: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The event cap counts events, not bytes: a guest logging its whole memory over and
    over would exhaust the host.  Past the trace's text budget, texts become markers."""
    from observe_sdk.host import recorder as recorder_module

    monkeypatch.setattr(recorder_module, "MAX_TEXT_BYTES", 1000)
    ctx, store, _, exports, adapter = started(recorder, wat=LOGGING_LOOP)
    for _ in range(2):  # each trace has its own budget
        exports["_start"](store)
        trace = ctx.finish()
        main = trace.roots[0]
        logs = [e for e in main.events if type(e) is Log]
        assert [log.message for log in logs[:3]] == ["abc" * 100] * 3       # 900 of the 1000 bytes
        assert all(log.message == "[300 bytes dropped: text budget spent]" for log in logs[3:]) and len(logs) == 10
        # the span still opens and closes where the guest said; only its texts are markers
        (span,) = main.children
        assert span.name == "[3 bytes dropped: text budget spent]" and span.tags == [span.name]
        assert [m.value for m in span.events] == [span.name]
        assert len(trace.errors) == 1 and "text budget (1000 bytes) is spent" in trace.errors[0]
    assert adapter.shutdown(timeout=10).complete and len(adapter.traces) == 2


@pytest.mark.parametrize("options", [{"max_events": 2**63}, {"max_events": 10**30}, {"min_span_duration_us": 1e300}])
def test_settings_past_64_bits_mean_no_limit_in_both_recorders(options: dict[str, Any]) -> None:
    wasm = wasmtime.wat2wasm(W.NESTED)
    module = wasmtime.Module(ENGINE, wasm)
    min_us = options.pop("min_span_duration_us", 0)
    traces = [run_observed(module, wasm, recorder, min_us, **options).trace for recorder in ("python", "wasm")]
    expected = [("main", [])] if min_us else W.NESTED_TREE
    assert [tree(t) for t in traces] == [expected, expected]
    assert [t.dropped_events for t in traces] == [0, 0]


def test_exits_of_nothing_under_a_deep_stack_are_cheap() -> None:
    """100,000 open spans, then 100,000 exits that match none of them: each is
    ignored without scanning the stack (a scan each would take minutes)."""
    from observe_sdk.assemble import assemble
    from observe_sdk.host.recorder import EventLog
    from observe_sdk.names import FunctionNames

    log = EventLog(1_000_000)
    n = 100_000
    for i in range(n):
        log.events += (1, 9, i)
    for i in range(n):
        log.events += (2, 1000 + i, n + i)   # distinct indices, so no answer can be reused
        log.events += (1, 7, n + i)          # and the stack changes in between
        log.events += (2, 7, n + i)
    trace = assemble(log, FunctionNames({}), min_span_duration_ns=0)
    assert len(trace.errors) == n + 1 and trace.errors[0] == "exit: function 1000 has no open span; ignored"
    assert sum(1 for _ in trace.spans()) == 2 * n


def _chain_depths(trace: Any) -> list[tuple[bool, int]]:
    """(manual?, depth) of each root's chain of only children."""
    depths = []
    for root in trace.roots:
        span, depth = root, 1
        while span.children:
            (span,) = span.children
            assert span.manual == root.manual
            depth += 1
        depths.append((root.manual, depth))
    return depths


@pytest.mark.timeout(60)  # linear: about a second; one scan per exit (N x K steps) would take many minutes
@pytest.mark.parametrize("pattern", ["manual-under-functions", "functions-under-manual"])
def test_spans_ending_under_the_other_kind_are_cheap(pattern: str) -> None:
    """N manual spans under N function spans, then N span-exits; or N function spans under N
    manual spans, then N exits: each ends a span lying under N open spans of the other kind,
    which stay open (re-parented), without the assembler looking past them one by one."""
    from observe_sdk.abi import EventKind
    from observe_sdk.assemble import assemble
    from observe_sdk.host.recorder import EventLog
    from observe_sdk.names import FunctionNames

    n = 50_000
    log = EventLog(10 * n)
    functions = range(1, n + 1)
    enter, leave = int(EventKind.ENTER), int(EventKind.EXIT)
    span_enter, span_exit = int(EventKind.SPAN_ENTER), int(EventKind.SPAN_EXIT)

    def manual_spans_open() -> None:
        for _ in range(n):
            log.add(span_enter, "m", 0)

    def manual_spans_end() -> None:
        for _ in range(n):
            log.events += (span_exit, 0, 1)

    if pattern == "manual-under-functions":
        manual_spans_open()
        for f in functions:
            log.events += (enter, f, 0)
        manual_spans_end()
        for f in reversed(functions):
            log.events += (leave, f, 1)
    else:
        for f in functions:
            log.events += (enter, f, 0)
        manual_spans_open()
        for f in reversed(functions):
            log.events += (leave, f, 1)
        manual_spans_end()
    trace = assemble(log, FunctionNames({}), min_span_duration_ns=0)
    assert trace.errors == []
    # each kind's spans nest among themselves only: the spans of the other kind were re-parented
    expected = [(True, n), (False, n)] if pattern == "manual-under-functions" else [(False, n), (True, n)]
    assert _chain_depths(trace) == expected
