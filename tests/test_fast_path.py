"""The fast path (observe_sdk.host.wasm_recorder) against the Python recorder.

Every guest example runs through both recorders; the assembled traces must
agree event for event (timestamps aside).  A driven recorder with a scripted
clock checks, with exact timestamps, that filtering spans inside wasm gives
the very trace the assembler would build from the unfiltered events.
"""
from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path
from typing import Any

import pytest
import wasmtime

from observe_sdk import Options
from observe_sdk.abi import EventKind
from observe_sdk.adapters.memory import InMemoryAdapter
from observe_sdk.assemble import assemble
from observe_sdk.host import context as context_module
from observe_sdk.host.recorder import EventLog
from observe_sdk.host.wasm_recorder import (
    CAPACITY,
    STACK,
    STACK_END,
    RecorderUnavailable,
    WasmRecorder,
)
from observe_sdk.trace import Allocation, Log, Metric, Span
from sdk_helpers import ENGINE, compiled, wasm_bytes

ROOT = Path(__file__).resolve().parent.parent
WAT = ROOT / "guest-examples" / "wat"
BUILD = ROOT / "guest-examples" / "build"

K_ENTER, K_EXIT, K_GROW = int(EventKind.ENTER), int(EventKind.EXIT), int(EventKind.GROW)
K_SPAN_ENTER, K_SPAN_EXIT = int(EventKind.SPAN_ENTER), int(EventKind.SPAN_EXIT)
K_LOG, K_END = int(EventKind.LOG), int(EventKind.END)


# ---------------------------------------------------------------- helpers



OPEN_AT_FINISH = "span still open when the trace finished"


def canon(events: list[Any], times: bool = False) -> list[Any]:
    """Events as comparable tuples: everything but span ids (and, unless asked, times)."""
    out: list[Any] = []
    for e in events:
        if type(e) is Span:
            # a span left open when the trace finished ends at the last recorded event, which
            # is earlier when the recorder dropped short spans after it: its end is not compared
            end = None if e.error == OPEN_AT_FINISH else e.end_ns
            out.append(("span", e.name, e.raw_name, e.function_index, e.manual, tuple(e.tags), e.error,
                        *((e.start_ns, end) if times else ()), canon(e.events, times)))
        else:
            fields = {f.name: getattr(e, f.name) for f in dataclasses.fields(e)}
            if not times:
                fields.pop("time_ns", None)
            out.append((type(e).__name__, tuple(fields.values())))
    return out


def total_pages(events: list[Any]) -> int:
    total = 0
    for e in events:
        if type(e) is Allocation:
            total += e.pages
        elif type(e) is Span:
            total += total_pages(e.events)
    return total


@dataclasses.dataclass
class Run:
    traces: list[Any]
    logs: list[EventLog]
    recorder: str
    outcome: list[str]


# module -> (argv, calls); each call is (export, args) and one trace is finished after each
# call listed in `finish_after` (by position); by default one trace for the whole run.
SCENARIOS: dict[str, dict[str, Any]] = {
    "fib.instr.wasm": {"argv": ["fib", "12"]},
    "reactor.instr.wasm": {"calls": [("_initialize", ()), ("add", (1, 2)), ("add", (3, 4))], "finish_each": True},
    "reactor.instr.wat": {"calls": [("_initialize", ()), ("add", (1, 2)), ("add", (5, 6))]},
    "fib.instr.wat": {"calls": [("_start", ()), ("fib", (7,))]},
}


def run(path: Path, tmp: Path, recorder: str, min_us: float = 0.0, **opts: Any) -> Run:
    """Run one guest example under ``recorder``; every trace and raw log it produced."""
    scenario = SCENARIOS.get(path.name, {})
    store = wasmtime.Store(ENGINE)
    wasi = wasmtime.WasiConfig()
    wasi.argv = scenario.get("argv", [path.stem])
    wasi.stdout_file = str(tmp / f"{path.name}.{recorder}.out")
    wasi.stderr_file = str(tmp / f"{path.name}.{recorder}.err")
    store.set_wasi(wasi)
    linker = wasmtime.Linker(ENGINE)
    linker.define_wasi()
    adapter = InMemoryAdapter()
    try:
        ctx = adapter.start(linker, wasm_bytes(path), Options(min_span_duration_us=min_us, recorder=recorder,
                                                              **opts), store=store)
        assert ctx.recorder_name == recorder
        exports = linker.instantiate(store, compiled(path)).exports(store)
        calls = scenario.get("calls", [("_start", ())])
        traces, logs, outcome = [], [], []
        for i, (name, args) in enumerate(calls):
            try:
                outcome.append(repr(ctx.call(store, exports[name], *args)))
            except wasmtime.ExitTrap as exc:
                outcome.append(f"exit {exc.code}")
            except wasmtime.Trap:
                outcome.append("trap")
            if scenario.get("finish_each") or i == len(calls) - 1:
                logs.append(ctx._recorder.log)
                traces.append(ctx.finish())
        return Run(traces, logs, recorder, outcome)
    finally:
        adapter.shutdown()


def examples() -> list[Path]:
    paths = sorted(WAT.glob("*.wat")) + sorted(BUILD.glob("*.instr.wasm"))
    return [p for p in paths if p.name != "inventory.instr.wasm"] + [BUILD / "inventory.instr.wasm"]


# ---------------------------------------------------------------- every guest example, both recorders

# Some guests call different functions from run to run, even under one recorder:
# the Go runtime (scheduling, GC) and Rust's HashMap (a random hash seed from
# WASI). What they report through the Observe API does not change.
NONDETERMINISTIC = {"inventory.instr.wasm", "ledger.instr.wasm"}


def manual_view(trace: Any) -> list[Any]:
    """Manual spans with their tags, logs and metrics (timestamps aside), depth first."""
    return [(s.name, tuple(s.tags), canon([e for e in s.events if type(e) in (Log, Metric)]))
            for s in trace.spans() if s.manual]


@pytest.mark.parametrize("path", [p for p in examples() if p.exists()], ids=lambda p: p.name)
def test_examples_same_trace_with_both_recorders(path: Path, tmp_path: Path) -> None:
    py = run(path, tmp_path, "python")
    fast = run(path, tmp_path, "wasm")
    assert fast.outcome == py.outcome
    assert len(fast.traces) == len(py.traces)
    if path.name in NONDETERMINISTIC:
        for log_py, log_fast, t_py, t_fast in zip(py.logs, fast.logs, py.traces, fast.traces, strict=True):
            assert log_fast.payloads == log_py.payloads
            assert manual_view(t_fast) == manual_view(t_py)
            assert [r.name for r in t_fast.roots if type(r) is Span] == [r.name for r in t_py.roots if type(r) is Span]
            assert total_pages(t_fast.roots) == total_pages(t_py.roots)
        return
    for log_py, log_fast in zip(py.logs, fast.logs, strict=True):
        # min 0: nothing is filtered in wasm, so the raw logs agree event for event
        assert list(log_fast.events[0::3]) == list(log_py.events[0::3])
        assert list(log_fast.events[1::3]) == list(log_py.events[1::3])
        assert log_fast.payloads == log_py.payloads
        assert log_fast.dropped == log_py.dropped
        times = list(log_fast.events[2::3])
        assert times == sorted(times)  # one wall clock for wasm and Python events
    for t_py, t_fast in zip(py.traces, fast.traces, strict=True):
        assert canon(t_fast.roots) == canon(t_py.roots)
        assert t_fast.errors == t_py.errors
        assert t_fast.dropped_events == t_py.dropped_events


@pytest.mark.parametrize("name", ["hello.instr.wasm", "vowels.instr.wasm", "fib.instr.wat", "grow.instr.wat",
                                  "trap.instr.wat", "exit.instr.wat", "words.instr.wasm"])
def test_examples_with_the_default_filter(name: str, tmp_path: Path) -> None:
    path = (WAT if name.endswith(".wat") else BUILD) / name
    py = run(path, tmp_path, "python", 20)
    fast = run(path, tmp_path, "wasm", 20)
    for t_py, t_fast in zip(py.traces, fast.traces, strict=True):
        roots = [(r.name, r.error) for r in t_fast.roots if type(r) is Span]
        assert roots == [(r.name, r.error) for r in t_py.roots if type(r) is Span]
        assert total_pages(t_fast.roots) == total_pages(t_py.roots)
        assert sorted(canon([e for s in t_fast.spans() for e in s.events if type(e) in (Log, Metric)])) == \
            sorted(canon([e for s in t_py.spans() for e in s.events if type(e) in (Log, Metric)]))
        assert t_fast.errors == t_py.errors


def test_fast_path_is_the_default_with_store_and_wasi(tmp_path: Path) -> None:
    fast = run(WAT / "nested.instr.wat", tmp_path, "wasm")
    store = wasmtime.Store(ENGINE)
    store.set_wasi(wasmtime.WasiConfig())
    linker = wasmtime.Linker(ENGINE)
    linker.define_wasi()
    adapter = InMemoryAdapter()
    ctx = adapter.start(linker, wasm_bytes(WAT / "nested.instr.wat"), Options(), store=store)
    assert ctx.recorder_name == "wasm"
    adapter.shutdown()
    assert fast.traces[0].roots


# ---------------------------------------------------------------- the fallback

@pytest.fixture
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(context_module, "_warned_once", set())


@pytest.mark.parametrize("setup", ["no store", "no wasi in the linker", "no wasi in the store"])
def test_fallback_to_python_logs_once(setup: str, fresh_warnings: None, caplog: pytest.LogCaptureFixture) -> None:
    wasm = wasm_bytes(WAT / "nested.instr.wat")
    traces = []
    for _ in range(2):
        store = wasmtime.Store(ENGINE)
        linker = wasmtime.Linker(ENGINE)
        if setup != "no wasi in the store":
            store.set_wasi(wasmtime.WasiConfig())
        if setup != "no wasi in the linker":
            linker.define_wasi()
        else:  # the guest still needs its fd_write
            linker.define_func("wasi_snapshot_preview1", "fd_write",
                               wasmtime.FuncType([wasmtime.ValType.i32()] * 4, [wasmtime.ValType.i32()]),
                               lambda *a: 0)
        adapter = InMemoryAdapter()
        kw = {} if setup == "no store" else {"store": store}
        with caplog.at_level(logging.WARNING, logger="observe_sdk"):
            ctx = adapter.start(linker, wasm, Options(min_span_duration_us=0), **kw)
        assert ctx.recorder_name == "python"
        if setup != "no wasi in the store":  # a WASI call would abort the process here
            exports = linker.instantiate(store, compiled(WAT / "nested.instr.wat")).exports(store)
            ctx.call(store, exports["_start"])
            traces.append(ctx.finish())
        adapter.shutdown()
    fallbacks = [r for r in caplog.records if "Python recorder" in r.getMessage()]
    assert len(fallbacks) == 1
    expected = {"no store": "store=", "no wasi in the linker": "define_wasi", "no wasi in the store": "set_wasi"}
    assert expected[setup] in fallbacks[0].getMessage()
    for trace in traces:
        assert [s.name for s in trace.spans()][:2] == ["_start", "main"]


def test_recorder_wasm_requested_but_impossible_is_an_error() -> None:
    linker = wasmtime.Linker(ENGINE)
    adapter = InMemoryAdapter()
    with pytest.raises(ValueError, match="store="):
        adapter.start(linker, wasm_bytes(WAT / "fib.instr.wat"), Options(recorder="wasm"))
    adapter.shutdown()


def test_create_reports_why() -> None:
    store = wasmtime.Store(ENGINE)
    store.set_wasi(wasmtime.WasiConfig())
    with pytest.raises(RecorderUnavailable, match="define_wasi"):
        WasmRecorder.create(Options(), store, wasmtime.Linker(ENGINE))


# ---------------------------------------------------------------- a driven recorder with a scripted clock

class Driven:
    """A wasm recorder driven from Python, next to the log the Python recorder would keep.

    The recorder's clock is scripted: each call advances it by ``dt``, so both
    logs carry the same timestamps and the assembled traces can be compared
    with their times.
    """

    def __init__(self, min_ns: int, max_events: int = 5_000_000, capacity: int = CAPACITY) -> None:
        from observe_sdk.host.recorder import time_ns
        self.t = time_ns()
        self.store = wasmtime.Store(ENGINE)

        def clock(caller: wasmtime.Caller, clock_id: int, precision: int, ptr: int) -> int:
            memory = caller.get("memory")
            assert isinstance(memory, wasmtime.Memory)
            memory.write(caller, self.t.to_bytes(8, "little"), ptr)
            return 0

        ty = wasmtime.FuncType([wasmtime.ValType.i32(), wasmtime.ValType.i64(), wasmtime.ValType.i32()],
                               [wasmtime.ValType.i32()])
        clock_func = wasmtime.Func(self.store, ty, clock, access_caller=True)
        self.options = Options(min_span_duration_us=min_ns / 1000, max_events=max_events)
        self.rec = WasmRecorder(self.options, self.store, clock_func)
        self.rec._ctl.cap = capacity
        self.fn = self.rec.instrument_functions()
        self.ref = EventLog(max_events)
        self.min_ns = min_ns
        self.stack: list[int] = []
        self.pairs: list[tuple[Any, Any]] = []

    def auto(self, op: str, kind: int, arg: int, dt: int) -> None:
        self.t += dt
        self.fn[op](self.store, arg)
        if len(self.ref.events) < 3 * self.ref.max_events:
            self.ref.events += (kind, arg, self.t)
        else:
            self.ref.dropped += 1

    def enter(self, idx: int, dt: int = 1) -> None:
        self.stack.append(idx)
        self.auto("enter", K_ENTER, idx, dt)

    def exit(self, idx: int | None = None, dt: int = 1) -> None:
        if idx is None:
            idx = self.stack.pop() if self.stack else 1
        self.auto("exit", K_EXIT, idx, dt)

    def grow(self, pages: int, dt: int = 1) -> None:
        self.auto("memory-grow", K_GROW, pages, dt)

    def host(self, kind: int, payload: Any, dt: int = 1) -> None:
        """What linking.py and TraceContext do for a Python-side event."""
        self.t += dt
        self.rec.sync()
        self.rec.log.add(kind, payload, self.t)
        self.ref.add(kind, payload, self.t)

    def take(self) -> None:
        fast = self.rec.take()
        ref, self.ref = self.ref, EventLog(self.ref.max_events)
        self.pairs.append((fast, ref))

    def check(self) -> None:
        self.take()
        names = lambda i: (f"f{i}", f"f{i}")  # noqa: E731
        for fast, ref in self.pairs:
            t_fast = assemble(fast, names, min_span_duration_ns=self.min_ns)
            t_ref = assemble(ref, names, min_span_duration_ns=self.min_ns)
            assert canon(t_fast.roots, times=True) == canon(t_ref.roots, times=True)
            assert t_fast.errors == t_ref.errors
            assert t_fast.dropped_events == t_ref.dropped_events
            assert len(fast) <= len(ref)
            if self.min_ns == 0:
                assert list(fast.events) == list(ref.events)


def test_short_spans_are_dropped_in_wasm_and_allocations_move_up() -> None:
    d = Driven(min_ns=100)
    d.enter(1)                      # root: kept whatever its length
    d.enter(2)                      # short: dropped in wasm ...
    d.grow(3)                       # ... its allocation moves up to 1
    d.enter(3)
    d.exit(dt=5)                    # short leaf: dropped
    d.exit(dt=5)
    d.enter(4)
    d.exit(dt=500)                  # long: kept
    d.exit()
    fast = d.rec.take()
    assert list(fast.events[0::3]) == [K_ENTER, K_GROW, K_ENTER, K_EXIT, K_EXIT]
    d.ref = EventLog(d.ref.max_events)
    d.check()


def test_open_spans_at_a_python_event_stay_in_order() -> None:
    d = Driven(min_ns=100)
    d.enter(1)
    d.enter(2)
    d.host(K_LOG, (3, "inside two"))   # 1 and 2 reach Python before the log
    d.exit(dt=2)                       # 2 is short, but its ENTER is gone: the assembler drops it
    d.enter(3)
    d.host(K_SPAN_ENTER, "manual")
    d.enter(4)
    d.exit(dt=2)                       # short, under a manual span: dropped in wasm
    d.host(K_SPAN_EXIT, None)
    d.exit(dt=2)
    d.exit()
    d.check()


def test_root_under_a_manual_span_is_not_a_root() -> None:
    d = Driven(min_ns=100)
    d.host(K_SPAN_ENTER, "outer")
    for _ in range(5):
        d.enter(7)
        d.exit(dt=3)                   # short, and not a root: the manual span is open
    d.host(K_SPAN_EXIT, None)
    d.enter(8)
    d.exit(dt=3)                       # a root now: kept
    d.check()
    fast, _ = d.pairs[0]
    assert list(fast.events[0::3]) == [K_SPAN_ENTER, K_SPAN_EXIT, K_ENTER, K_EXIT]


def test_manual_spans_across_function_boundaries() -> None:
    """A manual span opened in one helper and closed in another: the recorder's
    stack follows the assembler's re-parenting, so its filter drops the same spans."""
    d = Driven(min_ns=100)
    d.enter(1)                         # main
    d.enter(2)                         # custom_span_enter
    d.host(K_SPAN_ENTER, "run")
    d.exit(2, dt=2)                    # ends 2; "run" stays open under main
    d.enter(3)
    d.exit(dt=3)                       # short, under "run": dropped in wasm
    d.enter(4)                         # custom_span_exit
    d.host(K_SPAN_ENTER, "inner")
    d.enter(5)
    d.host(K_SPAN_EXIT, None)          # ends "inner"; 5 stays open under 4
    d.enter(6)
    d.exit(dt=3)                       # short, under 5: dropped in wasm
    d.exit(5, dt=2)
    d.host(K_SPAN_EXIT, None)          # ends "run"; 4 stays open under main
    d.exit(4, dt=2)
    d.enter(7)
    d.exit(dt=3)                       # short, under main: dropped in wasm
    d.exit(1)
    d.host(K_SPAN_ENTER, "outer")
    d.enter(8)
    d.host(K_SPAN_EXIT, None)          # ends "outer": 8 is a root now
    d.exit(8, dt=2)                    # short, but a root: kept
    d.enter(9)
    d.exit(dt=2)                       # short, and a root (nothing open): kept
    d.check()
    fast, ref = d.pairs[0]
    assert len(fast) == len(ref) - 6   # the ENTER and EXIT records of 3, 6 and 7
    trace = assemble(fast, lambda i: (f"f{i}", f"f{i}"), min_span_duration_ns=0)
    assert trace.errors == []
    shape = lambda s: (s.name, [shape(c) for c in s.children])  # noqa: E731
    assert [shape(r) for r in trace.root_spans] == [
        ("f1", [("f2", []), ("run", []), ("f4", [("inner", []), ("f5", [])])]), ("outer", []), ("f8", []), ("f9", [])]


def test_a_manual_span_under_a_deep_stack_turns_passthrough(monkeypatch: pytest.MonkeyPatch) -> None:
    """A span-exit whose manual span lies under more than MAX_MANUAL_SCAN function frames:
    the recorder stops pairing (no Python scan per span-exit) and the trace stays the same."""
    from observe_sdk.host import wasm_recorder

    MAX_MANUAL_SCAN = 8  # a stack as deep as the real limit (1024) is too deep for canon()
    monkeypatch.setattr(wasm_recorder, "MAX_MANUAL_SCAN", MAX_MANUAL_SCAN)
    d = Driven(min_ns=100)
    d.enter(1)
    d.host(K_SPAN_ENTER, "deep")
    for _ in range(MAX_MANUAL_SCAN + 1):
        d.enter(2)
    d.host(K_SPAN_EXIT, None)
    assert d.rec._ctl.passthrough == 1
    for _ in range(MAX_MANUAL_SCAN + 1):
        d.exit(2, dt=3)
    d.enter(3)
    d.exit(dt=3)
    d.exit(1)
    d.check()


def test_unbalanced_exits_and_end() -> None:
    d = Driven(min_ns=100)
    d.exit(9)                          # nothing open
    d.enter(1)
    d.enter(2)
    d.enter(3)
    d.exit(2, dt=2)                    # unwinds 3
    d.exit(5)                          # not open: ignored
    d.host(K_SPAN_ENTER, "m")
    d.exit(1)                          # unwinds the manual span
    d.enter(4)
    d.enter(5)
    d.host(K_END, ("trap: unreachable", True))   # closes 5 and 4 as errors
    d.enter(6)
    d.exit(6)
    d.check()


def test_flushes_when_the_buffer_is_full() -> None:
    d = Driven(min_ns=50, capacity=4)
    for i in range(40):
        d.enter(1)
        for j in range(i % 4):
            d.enter(2)
            d.grow(1)
            d.exit(dt=10 + 30 * j)
        d.exit(dt=1 + i)
    d.check()


def test_event_cap_same_as_python_recorder() -> None:
    d = Driven(min_ns=0, max_events=25, capacity=4)
    d.enter(1)
    for _ in range(10):
        d.enter(2)
        d.host(K_LOG, (3, "x"))
        d.exit()
    d.exit()
    d.check()
    fast, ref = d.pairs[0]
    assert fast.dropped == ref.dropped > 0


def test_event_cap_with_filtering_counts_kept_events() -> None:
    d = Driven(min_ns=100, max_events=10)
    d.enter(1)
    for _ in range(100):
        d.enter(2)
        d.exit(dt=2)                   # dropped in wasm: never counts against the cap
    d.enter(3)
    d.exit(dt=500)
    d.exit()
    fast = d.rec.take()
    assert fast.dropped == 0 and len(fast) == 4


def test_deep_stack_turns_passthrough() -> None:
    d = Driven(min_ns=100)
    depth = (STACK_END - STACK) // 24 + 10
    for _ in range(depth):
        d.host(K_SPAN_ENTER, "m", dt=0)   # markers fill the recorder's stack
    assert d.rec._ctl.passthrough == 1
    for _ in range(3):
        d.enter(1)
        d.exit(dt=2)                      # recorded as is; the assembler filters
    for _ in range(depth):
        d.host(K_SPAN_EXIT, None, dt=0)
    d.check()
    fast, _ = d.pairs[0]
    assert list(fast.events[0::3]).count(K_ENTER) == 3


def test_take_with_functions_open() -> None:
    d = Driven(min_ns=100)
    d.enter(1)
    d.enter(2)
    d.take()                           # e.g. finish() called from a host function
    d.exit(dt=2)                       # exits of the previous trace's spans
    d.exit()
    d.enter(3)
    d.exit()
    d.check()


try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is a dev dependency
    given = None

if given is not None:
    OPS = st.one_of(
        st.tuples(st.just("enter"), st.integers(1, 4), st.integers(0, 60)),
        st.tuples(st.just("enter"), st.integers(-2, 0), st.integers(0, 60)),  # nonsense a guest may send
        st.tuples(st.just("exit"), st.none(), st.integers(0, 60)),
        st.tuples(st.just("exit"), st.integers(-2, 5), st.integers(0, 60)),
        st.tuples(st.just("grow"), st.integers(0, 3), st.integers(0, 5)),
        st.tuples(st.sampled_from(["span_enter", "span_exit", "log", "end", "exit0", "sync", "take"]),
                  st.none(), st.integers(0, 30)),
    )

    @settings(max_examples=150, deadline=None)
    @given(ops=st.lists(OPS, max_size=60), min_ns=st.sampled_from([0, 1, 20, 50]),
           capacity=st.integers(1, 6), max_events=st.sampled_from([8, 30, 1000]))
    def test_filtering_in_wasm_never_changes_the_trace(ops: list[Any], min_ns: int, capacity: int,
                                                       max_events: int) -> None:
        if min_ns:
            max_events = 1000  # with filtering, the cap counts kept events (fewer than the Python recorder)
        d = Driven(min_ns, max_events=max_events, capacity=capacity)
        for op, arg, dt in ops:
            if op == "enter":
                d.enter(arg, dt)
            elif op == "exit":
                d.exit(arg, dt)
            elif op == "grow":
                d.grow(arg, dt)
            elif op == "span_enter":
                d.host(K_SPAN_ENTER, "m", dt)
            elif op == "span_exit":
                d.host(K_SPAN_EXIT, None, dt)
            elif op == "log":
                d.host(K_LOG, (3, "l"), dt)
            elif op == "end":
                d.host(K_END, ("trap: x", True), dt)
            elif op == "exit0":
                d.host(K_END, ("exit code 0", False), dt)
            elif op == "sync":
                d.rec.sync()
            else:
                d.take()
        d.check()


# ---------------------------------------------------------------- real guests: overflow, instances, reactors

LOOP = r'''(module
  (import "dylibso:observe/instrument" "enter" (func $enter (param i32)))
  (import "dylibso:observe/instrument" "exit" (func $exit (param i32)))
  (func $run (export "run") (param $n i32)
    (call $enter (i32.const 2))
    (block $done (loop $l
      (br_if $done (i32.eqz (local.get $n)))
      (call $enter (i32.const 3)) (call $exit (i32.const 3))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $l)))
    (call $exit (i32.const 2)))
  (func $leaf (export "leaf")))'''


def start_loop(min_us: float, **opts: Any) -> tuple[Any, wasmtime.Store, Any, InMemoryAdapter]:
    store = wasmtime.Store(ENGINE)
    store.set_wasi(wasmtime.WasiConfig())
    linker = wasmtime.Linker(ENGINE)
    linker.define_wasi()
    adapter = InMemoryAdapter()
    wasm = wasmtime.wat2wasm(LOOP)
    ctx = adapter.start(linker, wasm, Options(min_span_duration_us=min_us, recorder="wasm", **opts), store=store)
    exports = linker.instantiate(store, wasmtime.Module(ENGINE, wasm)).exports(store)
    return ctx, store, exports, adapter


def test_millions_of_events_overflow_the_buffer_many_times() -> None:
    n = 1_500_000                      # 3,000,002 events: ~92 buffer flushes
    ctx, store, exports, adapter = start_loop(0)
    exports["run"](store, n)
    log = ctx._recorder.take()
    adapter.shutdown()
    assert len(log) == 2 * n + 2 and log.dropped == 0
    kinds = log.events[0::3]
    assert kinds[0] == K_ENTER and kinds[-1] == K_EXIT
    assert kinds[1::2].count(K_ENTER) == n and kinds[2::2].count(K_EXIT) == n
    assert set(log.events[4:-3:6]) == {3}
    times = log.events[2::3]
    assert times[0] <= times[len(times) // 2] <= times[-1]


def test_millions_of_events_filtered_in_wasm() -> None:
    ctx, store, exports, adapter = start_loop(20)
    exports["run"](store, 1_500_000)
    trace = ctx.finish()
    adapter.shutdown()
    run_span = trace.roots[0]
    assert run_span.name == "run"
    # each call takes well under 20 us; a preempted one may survive, but not many
    assert len(run_span.children) < 1000


def test_event_cap_on_a_real_guest() -> None:
    ctx, store, exports, adapter = start_loop(0, max_events=100_000)
    exports["run"](store, 100_000)
    trace = ctx.finish()
    adapter.shutdown()
    assert trace.dropped_events == 200_002 - 100_000
    assert trace.roots[0].error                     # run's exit was dropped: closed as an error
    assert len(trace.roots[0].children) == 50_000   # the last one open, as an error too
    assert trace.roots[0].children[-1].error


def test_two_instances_at_once(tmp_path: Path) -> None:
    a = start_loop(0)
    b = start_loop(0)
    for i in range(3):
        a[2]["run"](a[1], 10 + i)
        b[2]["run"](b[1], 100 + i)
    ta, tb = a[0].finish(), b[0].finish()
    for (_, _, _, adapter) in (a, b):
        adapter.shutdown()
    assert [len(r.children) for r in ta.roots] == [10, 11, 12]
    assert [len(r.children) for r in tb.roots] == [100, 101, 102]


def test_reactor_several_calls_several_roots(tmp_path: Path) -> None:
    py = run(WAT / "reactor.instr.wat", tmp_path, "python")
    fast = run(WAT / "reactor.instr.wat", tmp_path, "wasm")
    assert [r.name for r in fast.traces[0].roots] == ["_initialize", "add", "add"]
    assert canon(fast.traces[0].roots) == canon(py.traces[0].roots)


def test_memory_per_buffered_event() -> None:
    ctx, store, exports, adapter = start_loop(0)
    exports["run"](store, 200_000)
    ctx._recorder.sync()
    log = ctx._recorder.log
    per_event = sys.getsizeof(log.events) / len(log)
    adapter.shutdown()
    assert per_event < 32


def test_store_and_recorder_are_freed() -> None:
    import gc
    import weakref

    ctx, store, exports, adapter = start_loop(0)
    exports["run"](store, 10)
    ctx.finish()
    adapter.shutdown()
    refs = [weakref.ref(store), weakref.ref(ctx._recorder)]
    del ctx, store, exports, adapter
    gc.collect()
    assert [r() for r in refs] == [None, None]


def test_two_modules_in_one_store() -> None:
    store = wasmtime.Store(ENGINE)
    store.set_wasi(wasmtime.WasiConfig())
    wasm = wasmtime.wat2wasm(LOOP)
    adapter = InMemoryAdapter()
    contexts, runs = [], []
    for _ in range(2):
        linker = wasmtime.Linker(ENGINE)
        linker.define_wasi()
        ctx = adapter.start(linker, wasm, Options(min_span_duration_us=0), store=store)
        assert ctx.recorder_name == "wasm"
        contexts.append(ctx)
        runs.append(linker.instantiate(store, wasmtime.Module(ENGINE, wasm)).exports(store)["run"])
    runs[0](store, 3)
    runs[1](store, 5)
    runs[0](store, 7)
    first, second = (ctx.finish() for ctx in contexts)
    adapter.shutdown()
    assert [len(r.children) for r in first.roots] == [3, 7]
    assert [len(r.children) for r in second.roots] == [5]
