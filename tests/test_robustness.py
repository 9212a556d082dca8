"""Bad guests never crash the host or lose a trace.

Property tests: random guests making random (often malformed) Observe ABI
calls under both recorders; random corruptions of real modules fed to the
module reader, ``adapter.start`` and ``observe-sdk inspect``; runaway guests
against the event cap; and the host misusing its own API.
"""
from __future__ import annotations

import io
import json
import threading
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import wasmtime
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sdk_helpers import GUESTS, tree
from test_core_adapters import parse_otlp
from observe_sdk import Options
from observe_sdk.adapters.memory import InMemoryAdapter
from observe_sdk.adapters.otlp_json import traces_data_json
from observe_sdk.adapters.stdout import StdoutAdapter, format_trace
from observe_sdk.cli import main as cli_main
from observe_sdk.host.wasi_stores import track_wasi_stores, untrack_wasi_stores
from observe_sdk.names import ModuleFormatError, demangle, read_module_info
from observe_sdk.trace import Allocation, Log, Metric, Span, Trace
import wat_modules as W

ENGINE = wasmtime.Engine()
PAGE = 65536

# ---------------------------------------------------------------- random guests

U32 = st.integers(0, 2**32 - 1)
I32 = st.integers(-2**31, 2**31 - 1)
# indices: mostly a few small ones (so that enters and exits match), sometimes anything
INDEX = st.one_of(st.integers(8, 11), st.integers(8, 11), st.integers(-3, 20), I32, U32)
POINTER = st.one_of(st.integers(0, 80), st.integers(PAGE - 80, PAGE + 80), st.just(0xFFFFFFFF), U32)
LENGTH = st.one_of(st.just(0), st.integers(0, 80), st.just(0xFFFFFFFF), U32)
LEVEL = st.one_of(st.integers(0, 6), I32)
FORMAT = st.one_of(st.integers(0, 2), I32)
LINE_BREAKS = [b"\n", b"\r\n", "\u2028".encode(), b"\x00"]
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20).map(lambda s: s.encode())

OP = st.one_of(
    st.tuples(st.just("enter"), INDEX),
    st.tuples(st.just("exit"), INDEX),
    st.tuples(st.just("grow"), st.one_of(st.integers(0, 4), I32)),
    st.tuples(st.just("memory.grow"), st.integers(0, 2)),
    st.tuples(st.just("span_enter"), POINTER, LENGTH),
    st.tuples(st.just("span_exit")),
    st.tuples(st.just("span_tags"), POINTER, LENGTH),
    st.tuples(st.just("metric"), FORMAT, POINTER, LENGTH),
    st.tuples(st.just("log"), LEVEL, POINTER, LENGTH),
)
ENDING = st.one_of(st.just(None), st.just("unreachable"), st.tuples(st.just("proc_exit"), st.integers(0, 255)))


@dataclass
class RandomGuest:
    ops: list[tuple[Any, ...]]
    data: bytes             # at offset 0 of memory: random bytes and text, often invalid UTF-8
    ending: Any
    legacy: bool            # the deprecated namespace (i64 pointers)
    memory: str             # "memory": exported; "none": no export; "global": a global named "memory"
    max_events: int         # the event cap: often the default, sometimes tiny
    calls: int              # calls of _start in one trace

    def wat(self) -> str:
        ptr = "i64.const" if self.legacy else "i32.const"
        body = []
        for op in self.ops:
            name, args = op[0], op[1:]
            if name in ("enter", "exit", "grow"):
                body.append(f"(call ${name} (i32.const {args[0]}))")
            elif name == "memory.grow":
                body.append(f"(drop (memory.grow (i32.const {args[0]})))")
            elif name in ("span_enter", "span_tags"):
                body.append(f"(call ${name} ({ptr} {args[0]}) (i32.const {args[1]}))")
            elif name == "span_exit":
                body.append("(call $span_exit)")
            else:  # metric, log
                body.append(f"(call ${name} (i32.const {args[0]}) ({ptr} {args[1]}) (i32.const {args[2]}))")
        if self.ending == "unreachable":
            body.append("unreachable")
        elif self.ending is not None:
            body.append(f"(call $proc_exit (i32.const {self.ending[1]}))")
        data = "".join(f"\\{b:02x}" for b in self.data)
        memory = {"memory": '(memory (export "memory") 1 8)', "none": "(memory 1 8)",
                  "global": '(memory 1 8) (global (export "memory") i32 (i32.const 0))'}[self.memory]
        return f'''(module {W.LEGACY_IMPORTS if self.legacy else W.IMPORTS}
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  {memory}
  (data (i32.const 0) "{data}")
  (func $main (export "_start") {" ".join(body)}))'''


@st.composite
def random_guests(draw: st.DrawFn) -> RandomGuest:
    chunks = draw(st.lists(st.one_of(TEXT, st.binary(max_size=12), st.sampled_from(LINE_BREAKS)), max_size=6))
    return RandomGuest(
        ops=draw(st.lists(OP, max_size=40)),
        data=b"".join(chunks)[:200],
        ending=draw(ENDING),
        legacy=draw(st.booleans()),
        memory=draw(st.sampled_from(["memory", "memory", "memory", "none", "global"])),
        max_events=draw(st.one_of(st.just(Options.max_events), st.integers(1, 30))),
        calls=draw(st.sampled_from([1, 1, 2])),
    )


@dataclass
class Outcome:
    trace: Trace
    raised: BaseException | None
    adapter: InMemoryAdapter


def observe(module: wasmtime.Module, wasm: bytes, recorder: str, min_us: float,
            adapter: InMemoryAdapter | None = None, calls: int = 1, **opts: Any) -> Outcome:
    """Run ``_start`` observed ``calls`` times in one trace, with WASI and store= (so both recorders can work)."""
    store = wasmtime.Store(ENGINE)
    store.set_wasi(wasmtime.WasiConfig())
    linker = wasmtime.Linker(ENGINE)
    linker.define_wasi()
    adapter = adapter or InMemoryAdapter()
    ctx = adapter.start(linker, wasm, Options(min_span_duration_us=min_us, recorder=recorder, **opts), store=store)
    assert ctx.recorder_name == recorder
    instance = linker.instantiate(store, module)
    raised = None
    for _ in range(calls):
        try:
            ctx.call(store, instance.exports(store)["_start"])
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:   # the guest's own trap or exit, nothing else
            raised = exc
    trace = ctx.finish()
    assert isinstance(trace, Trace)
    return Outcome(trace, raised, adapter)


def shape(events: list[Any]) -> list[Any]:
    """Everything about a trace's events but times and ids."""
    out: list[Any] = []
    for e in events:
        te = type(e)
        if te is Span:
            out.append(("span", e.name, e.raw_name, e.function_index, e.manual, tuple(e.tags), e.error,
                        shape(e.events)))
        elif te is Allocation:
            out.append(("alloc", e.pages))
        elif te is Log:
            out.append(("log", e.level, e.message))
        elif te is Metric:
            out.append(("metric", e.format, e.value))
        else:  # pragma: no cover
            raise AssertionError(f"unknown event {e!r}")
    return out


def flat(events: list[Any]) -> list[Any]:
    """Every non-span event of a forest, depth first."""
    out: list[Any] = []
    for e in events:
        if type(e) is Span:
            assert e.start_ns <= e.end_ns
            out.extend(flat(e.events))
        else:
            out.append(e)
    return out


def expected_effects(guest: RandomGuest) -> tuple[int, int, int]:
    """(allocated pages, well-formed logs, well-formed metrics) the guest reports before it stops."""
    if guest.memory != "memory":
        valid_text = lambda p, n: False  # noqa: E731 - nothing can be read without an exported memory
    else:
        def valid_text(p: int, n: int) -> bool:
            if p + n > size:
                return False
            try:
                mem[p:p + n].decode("utf-8")
            except UnicodeDecodeError:
                return False
            return True
    pages = logs = metrics = 0
    size = PAGE
    mem = guest.data + bytes(8 * PAGE - len(guest.data))
    for op in guest.ops * guest.calls:
        if op[0] == "grow":
            pages += op[1]
        elif op[0] == "memory.grow" and size + op[1] * PAGE <= 8 * PAGE:
            size += op[1] * PAGE
        elif op[0] == "log" and op[1] in range(1, 6) and valid_text(op[2], op[3]):
            logs += 1
        elif op[0] == "metric" and op[1] == 1 and valid_text(op[2], op[3]):
            metrics += 1
    return pages, logs, metrics


def check_exports(trace: Trace) -> None:
    """The stdout tree and OTLP/JSON encodings of ``trace`` work, and the JSON is valid OTLP."""
    text = format_trace(trace)
    assert text.startswith(f"trace {trace.trace_id_hex}")
    # one line per error, span, log, metric and loose allocation, whatever the guest's text holds
    events = flat(trace.roots)
    lines = (1 + len(trace.errors) + sum(1 for _ in trace.spans()) + sum(1 for e in events if type(e) in (Log, Metric))
             + sum(1 for e in trace.roots if type(e) is Allocation))
    assert len(text.split("\n")) == lines
    doc = parse_otlp(traces_data_json([trace]))
    spans = doc.resource_spans[0].scope_spans[0].spans
    assert len(spans) >= sum(1 for _ in trace.spans())
    assert all(s.trace_id == trace.trace_id for s in spans)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(guest=random_guests())
def test_random_guests_never_crash_the_host(guest: RandomGuest) -> None:
    wasm = wasmtime.wat2wasm(guest.wat())
    module = wasmtime.Module(ENGINE, wasm)
    adapter = InMemoryAdapter()
    runs: dict[tuple[str, float], Outcome] = {}
    for recorder in ("python", "wasm"):
        for min_us in (0, 20):
            runs[recorder, min_us] = run = observe(module, wasm, recorder, min_us, adapter, guest.calls,
                                                   max_events=guest.max_events)
            trace = run.trace
            # the guest's ending, and nothing else, came out of the call
            if guest.ending is None:
                assert run.raised is None
            elif guest.ending == "unreachable":
                assert isinstance(run.raised, wasmtime.Trap)
                assert any(e.startswith("trap: ") for e in trace.errors)
            elif guest.ending[1] < 126 and guest.memory == "memory":
                assert isinstance(run.raised, wasmtime.ExitTrap) and run.raised.code == guest.ending[1]
            else:  # WASI refuses exit codes over 125, and needs an exported memory: an error, recorded like a trap
                assert type(run.raised) is wasmtime.WasmtimeError
                assert any(e.startswith("trap: ") for e in trace.errors)
            # nothing the guest reported was lost, whatever the filter (unless the cap says so)
            pages, logs, metrics = expected_effects(guest)
            events = flat(trace.roots)
            if not trace.dropped_events:
                assert sum(e.pages for e in events if type(e) is Allocation) == pages
                assert sum(1 for e in events if type(e) is Log) == logs
                assert sum(1 for e in events if type(e) is Metric) == metrics
            else:
                assert trace.errors[-1] == f"event cap reached: {trace.dropped_events} event(s) dropped"
            # every span that is still there is closed; errors and spans never go missing
            assert all(span.end_ns >= span.start_ns for span in trace.spans())
            check_exports(trace)
    # both recorders saw the same thing when nothing is filtered
    python, fast = runs["python", 0].trace, runs["wasm", 0].trace
    assert shape(python.roots) == shape(fast.roots)
    assert python.errors == fast.errors
    assert python.dropped_events == fast.dropped_events
    # and the roots are the same at any filter (roots are never dropped)
    assert [r.name for r in runs["python", 20].trace.root_spans] == [r.name for r in python.root_spans]
    assert [r.name for r in runs["wasm", 20].trace.root_spans] == [r.name for r in python.root_spans]
    # every trace that has something in it was delivered
    report = adapter.shutdown(timeout=10)
    assert report.complete
    delivered = {id(t) for t in adapter.traces}
    for run in runs.values():
        t = run.trace
        assert (id(t) in delivered) == bool(t.roots or t.errors or t.dropped_events)


def test_deep_nesting_and_long_traces_are_not_recursive() -> None:
    """60,000 open function spans and 10,000 open manual spans: no recursion limit anywhere."""
    wat = W.module(r'''
  (func $main (export "_start") (local i32)
    (loop $l (call $enter (i32.const 9)) (call $grow (i32.const 1))
      (local.set 0 (i32.add (local.get 0) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get 0) (i32.const 60000))))
    (local.set 0 (i32.const 0))
    (loop $m (call $span_enter (i32.const 0) (i32.const 1))
      (local.set 0 (i32.add (local.get 0) (i32.const 1)))
      (br_if $m (i32.lt_u (local.get 0) (i32.const 10000))))
    unreachable)
''', data="s")
    wasm = wasmtime.wat2wasm(wat)
    module = wasmtime.Module(ENGINE, wasm)
    for recorder in ("python", "wasm"):
        run = observe(module, wasm, recorder, 20)
        trace = run.trace
        spans = list(trace.spans())
        assert len(spans) == 70_000 and all(s.error for s in spans)
        assert sum(s.allocated_pages for s in spans) == 60_000
        assert format_trace(trace).count("\n") > 70_000
        assert len(json.loads(traces_data_json([trace]))["resourceSpans"][0]["scopeSpans"][0]["spans"]) == 70_000
        assert run.adapter.shutdown(timeout=10).complete and run.adapter.traces == [trace]


# ---------------------------------------------------------------- malformed modules

BUILD = GUESTS / "build"
SMALL_MODULES = sorted(p.name for p in BUILD.glob("*.wasm") if p.stat().st_size < 200_000)
ORIGINALS = {name: (BUILD / name).read_bytes() for name in SMALL_MODULES}


def section_starts(data: bytes) -> list[int]:
    """Offsets of each section's id byte, of each section's body, and of the end."""
    from observe_sdk.names import _Reader

    r = _Reader(data, 8)
    out = [0, 4, 8]
    while r.pos < r.end:
        out.append(r.pos)
        r.byte()
        size = r.u32()
        out.append(r.pos)
        r.pos += size
    return out


SECTION_STARTS = {name: section_starts(data) for name, data in ORIGINALS.items()}


MUTATIONS = ["flip", "byte", "truncate", "insert", "delete", "leb"]
LONG_LEBS = [b"\xff\xff\xff\xff\x0f", b"\x80\x80\x80\x80\x80\x00", b"\xff\xff\xff\xff\xff\xff\x01", b"\x80"]


@st.composite
def corruptions(draw: st.DrawFn) -> tuple[str, list[tuple[str, int, Any]]]:
    """A module and what to do to it (applied by :func:`corrupt`, so a failure's report stays short)."""
    name = draw(st.sampled_from(SMALL_MODULES))
    size = len(ORIGINALS[name])
    steps = []
    for _ in range(draw(st.integers(1, 4))):
        # anywhere, or at the headers of sections (ids, sizes, counts, names)
        anchor = draw(st.sampled_from(SECTION_STARTS[name]))
        pos = draw(st.one_of(st.integers(0, size), st.integers(anchor, anchor + 24)))
        what = draw(st.sampled_from(MUTATIONS))
        arg = {"flip": st.integers(0, 7), "byte": st.integers(0, 255), "truncate": st.none(),
               "insert": st.binary(min_size=1, max_size=8), "delete": st.integers(1, 8),
               "leb": st.sampled_from(LONG_LEBS)}[what]
        steps.append((what, pos, draw(arg)))
    return name, steps


def corrupt(name: str, steps: list[tuple[str, int, Any]]) -> bytes:
    data = bytearray(ORIGINALS[name])
    for what, pos, arg in steps:
        pos = min(pos, len(data))
        if what == "flip" and pos < len(data):
            data[pos] ^= 1 << arg
        elif what == "byte" and pos < len(data):
            data[pos] = arg
        elif what == "truncate":
            del data[pos:]
        elif what in ("insert", "leb"):  # bytes, or an over-long or huge LEB128 number
            data[pos:pos] = arg
        elif what == "delete":
            del data[pos:pos + arg]
    return bytes(data)


def expect_readable_or_format_error(data: bytes) -> bool:
    """read_module_info either works or raises ModuleFormatError naming a byte offset."""
    try:
        read_module_info(data)
    except ModuleFormatError as exc:
        assert "byte offset" in str(exc), str(exc)
        return False
    return True


def inspect_cli(data: bytes, tmp: Path) -> tuple[int, str, str]:
    path = tmp / "module.wasm"
    path.write_bytes(data)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli_main(["inspect", str(path), "--json"])
    return code, out.getvalue(), err.getvalue()


def engine_with(**config: Any) -> wasmtime.Engine:
    cfg = wasmtime.Config()
    for key, value in config.items():
        setattr(cfg, key, value)
    return wasmtime.Engine(cfg)


FUEL_ENGINE = engine_with(consume_fuel=True)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=corruptions(), recorder=st.sampled_from(["python", "wasm"]))
def test_corrupted_modules_are_refused_clearly_or_run(case: tuple[str, list[Any]], recorder: str) -> None:
    import tempfile

    data = corrupt(*case)
    readable = expect_readable_or_format_error(data)
    try:
        module: wasmtime.Module | None = wasmtime.Module(FUEL_ENGINE, data)
    except wasmtime.WasmtimeError:
        module = None
    assert readable or module is None, "the reader refuses a module wasmtime accepts"
    # the CLI: its JSON report, or one line on stderr and exit code 2
    with tempfile.TemporaryDirectory() as tmp:
        code, out, err = inspect_cli(data, Path(tmp))
    if readable:
        assert code == 0 and json.loads(out)["module"].endswith("module.wasm")
    else:
        assert code == 2 and err.count("\n") == 1 and err.startswith("observe-sdk: error: ")
        assert "byte offset" in err or "magic" in err
    # the SDK: start() refuses exactly what the reader refuses, with the reader's error
    adapter = InMemoryAdapter()
    store = wasmtime.Store(FUEL_ENGINE)
    store.set_wasi(wasmtime.WasiConfig())
    store.set_fuel(300_000)  # enough to run a while; a loop of host calls costs ~2 fuel each
    linker = wasmtime.Linker(FUEL_ENGINE)
    linker.define_wasi()
    try:
        ctx = adapter.start(linker, data, Options(min_span_duration_us=0, recorder=recorder), store=store)
    except ModuleFormatError:
        assert not readable
        event("refused by the reader")
        return
    assert readable
    # what wasmtime accepts too runs observed; whatever it does, the host carries on
    if module is None:
        event("refused by wasmtime")
        return
    try:
        instance = linker.instantiate(store, module)
    except (wasmtime.WasmtimeError, wasmtime.Trap):  # a link error, or a data segment out of bounds
        event("not instantiable")
        return
    event("ran")
    exports = instance.exports(store)
    for entry in ("_start", "_initialize"):
        func = exports.get(entry) if hasattr(exports, "get") else None
        if isinstance(func, wasmtime.Func) and not func.type(store).params:
            try:
                ctx.call(store, func)
            except (wasmtime.Trap, wasmtime.WasmtimeError):
                pass
            break
    trace = ctx.finish()
    check_exports(trace)
    assert adapter.shutdown(timeout=10).complete


def test_the_original_modules_read() -> None:
    for name, data in ORIGINALS.items():
        assert expect_readable_or_format_error(data), name


MANGLED_PREFIXES = st.sampled_from(["_Z", "_ZN", "__Z", "_R", "_RN", "_RNv"])


@settings(max_examples=200, deadline=None)
@given(raw=st.one_of(st.text(max_size=40), st.builds(str.__add__, MANGLED_PREFIXES, st.text(max_size=40))))
def test_demangling_never_fails(raw: str) -> None:
    out = demangle(raw)
    assert isinstance(out, str) and (out or not raw)


# ---------------------------------------------------------------- runaway guests and the event cap

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
    timer = threading.Timer(0.3, engine.increment_epoch)
    timer.start()
    try:
        with pytest.raises(wasmtime.Trap) as trapped:
            instance.exports(store)["_start"](store)
    finally:
        timer.cancel()
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


# ---------------------------------------------------------------- the host misusing the API

def started(recorder: str = "python", adapter: Any = None, wat: str = W.NESTED
            ) -> tuple[Any, wasmtime.Store, wasmtime.Linker, Any, Any]:
    store = wasmtime.Store(ENGINE)
    store.set_wasi(wasmtime.WasiConfig())
    linker = wasmtime.Linker(ENGINE)
    linker.define_wasi()
    adapter = adapter or InMemoryAdapter()
    wasm = wasmtime.wat2wasm(wat)
    ctx = adapter.start(linker, wasm, Options(min_span_duration_us=0, recorder=recorder), store=store)
    instance = linker.instantiate(store, wasmtime.Module(ENGINE, wasm))
    return ctx, store, linker, instance.exports(store), adapter


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


# ---------------------------------------------------------------- the assembler's pairing, against a plain model

def reference_pairing(ops: list[tuple[str, int]]) -> tuple[list[Any], list[str]]:
    """The pairing rules, written the obvious way (a scan of the stack for every exit and span-exit)."""
    roots: list[Any] = []
    stack: list[tuple[int, list[Any]]] = []
    errors: list[str] = []

    def close(error: bool, depth: int | None = None) -> None:
        """Close the span at ``depth`` (default: the innermost) into the one below it."""
        depth = len(stack) - 1 if depth is None else depth
        idx, children = stack.pop(depth)
        (stack[depth - 1][1] if depth else roots).append((idx, error, children))

    for op, idx in ops:
        if op == "enter":
            stack.append((idx, []))
        elif op == "span-enter":
            stack.append((-1, []))
        elif op == "exit":
            depths = [d for d, (i, _) in enumerate(stack) if i == idx]
            if not depths:
                errors.append("exit")
                continue
            # function spans above it are faults; manual spans above it outlive it
            for d in range(len(stack) - 1, depths[-1], -1):
                if stack[d][0] >= 0:
                    errors.append("exit")
                    close(True, d)
            close(False, depths[-1])
        elif op == "span-exit":
            manual = [d for d, (i, _) in enumerate(stack) if i < 0]
            if manual:  # function spans above it outlive it
                close(False, manual[-1])
            else:
                errors.append("span-exit")
        elif op == "end":
            while stack:
                close(True)
            errors.append("trap")
    if stack:
        errors.append("open")
        while stack:
            close(True)
    return roots, errors


def pairing_of(trace: Trace) -> tuple[list[Any], list[str]]:
    def conv(e: Span) -> Any:
        return (-1 if e.manual else e.function_index, e.error is not None, [conv(c) for c in e.children])
    kinds = []
    for message in trace.errors:
        kinds.append("exit" if message.startswith("exit:") else "span-exit" if message.startswith("span-exit")
                     else "trap" if message.startswith("trap") else "open")
    return [conv(r) for r in trace.root_spans], kinds


PAIRING_OP = st.one_of(
    st.tuples(st.sampled_from(["enter", "exit"]), st.integers(0, 4)),
    st.tuples(st.sampled_from(["span-enter", "span-exit", "end"]), st.just(0)),
)


@settings(max_examples=400, deadline=None)
@given(ops=st.lists(PAIRING_OP, max_size=60))
def test_assembler_pairs_like_the_plain_model(ops: list[tuple[str, int]]) -> None:
    from observe_sdk.abi import EventKind
    from observe_sdk.assemble import assemble
    from observe_sdk.host.recorder import EventLog
    from observe_sdk.names import FunctionNames

    log = EventLog(10_000)
    kinds = {"enter": EventKind.ENTER, "exit": EventKind.EXIT, "span-enter": EventKind.SPAN_ENTER,
             "span-exit": EventKind.SPAN_EXIT, "end": EventKind.END}
    for t, (op, idx) in enumerate(ops):
        payload = {"span-enter": "m", "end": ("trap: x", True)}.get(op)
        if payload is None:
            log.events += (int(kinds[op]), idx, t)
        else:
            log.add(int(kinds[op]), payload, t)
    trace = assemble(log, FunctionNames({}), min_span_duration_ns=0)
    assert pairing_of(trace) == reference_pairing(ops)


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
        linker.define_func("host", "cut", wasmtime.FuncType([], []), lambda: ctx.finish() and None)
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


def test_guest_text_cannot_forge_stdout_lines() -> None:
    wat = W.module(r'''
  (func $main (export "_start")
    (call $span_enter (i32.const 0) (i32.const 9))
    (call $span_tags (i32.const 0) (i32.const 9))
    (call $log (i32.const 1) (i32.const 0) (i32.const 23))
    (call $metric (i32.const 1) (i32.const 9) (i32.const 14))
    (call $span_exit))
''', data="a\\nb\\00c\\e2\\80\\a8d\\ntrace forged (1 span)")
    wasm = wasmtime.wat2wasm(wat)
    trace = observe(wasmtime.Module(ENGINE, wasm), wasm, "python", 0).trace
    text = format_trace(trace)
    assert len(text.split("\n")) == 4 and len(text.splitlines()) == 4
    assert "  a\\nb\\x00c\\u2028d  " in text and "log ERROR: a\\nb\\x00c\\u2028d\\ntrace forged" in text
    check_exports(trace)


@pytest.mark.parametrize("options", [{"max_events": 2**63}, {"max_events": 10**30}, {"min_span_duration_us": 1e300}])
def test_settings_past_64_bits_mean_no_limit_in_both_recorders(options: dict[str, Any]) -> None:
    wasm = wasmtime.wat2wasm(W.NESTED)
    module = wasmtime.Module(ENGINE, wasm)
    min_us = options.pop("min_span_duration_us", 0)
    traces = [observe(module, wasm, recorder, min_us, **options).trace for recorder in ("python", "wasm")]
    expected = [("main", [])] if min_us else W.NESTED_TREE
    assert [tree(t) for t in traces] == [expected, expected]
    assert [t.dropped_events for t in traces] == [0, 0]


def test_otlp_json_spells_non_finite_doubles_as_protobuf_does() -> None:
    wasm = wasmtime.wat2wasm(W.NESTED)
    trace = observe(wasmtime.Module(ENGINE, wasm), wasm, "python", 0).trace
    doc = parse_otlp(traces_data_json([trace], resource_attributes={
        "a": float("nan"), "b": float("inf"), "c": float("-inf"), "d": 1.5}))
    values = {kv.key: kv.value.double_value for kv in doc.resource_spans[0].resource.attributes if kv.key in "abcd"}
    assert values["a"] != values["a"] and values["b"] == float("inf") and values["c"] == float("-inf")
    assert values["d"] == 1.5


def test_guests_on_many_threads_share_one_adapter() -> None:
    """Each thread has its own store and trace context; the adapter gets every trace."""
    adapter = InMemoryAdapter(max_queue=10_000)
    wasm = wasmtime.wat2wasm(W.MIXED)
    module = wasmtime.Module(ENGINE, wasm)
    failures: list[BaseException] = []

    def work(recorder: str) -> None:
        try:
            for _ in range(25):
                trace = observe(module, wasm, recorder, 0, adapter).trace
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


def test_start_with_something_that_is_not_module_bytes() -> None:
    adapter = InMemoryAdapter()
    linker = wasmtime.Linker(ENGINE)
    with pytest.raises(TypeError, match="WAT text"):
        adapter.start(linker, W.NESTED, Options(recorder="python"))      # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not NoneType"):
        adapter.start(linker, None, Options(recorder="python"))          # type: ignore[arg-type]
    for data in (b"", b"\0asm", b"\0asm\x02\0\0\0", b"\0asm\x01\0\0\0\x02\x80"):
        with pytest.raises(ModuleFormatError, match="byte offset"):
            adapter.start(linker, data, Options(recorder="python"))
    ctx = adapter.start(linker, memoryview(wasmtime.wat2wasm(W.NESTED)), Options(recorder="python"))
    assert ctx.module.function_names
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
