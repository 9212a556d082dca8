"""Random guests making random (often malformed) Observe ABI calls, under both recorders:
the host never crashes, nothing the guest reported is lost, and every encoding holds what it said."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import wasmtime
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wat_modules as W
from observe_sdk import Options
from observe_sdk.adapters.memory import InMemoryAdapter
from observe_sdk.adapters.otlp_json import traces_data_json
from observe_sdk.adapters.stdout import format_trace
from observe_sdk.trace import Allocation, Log, Metric
from observed_runs import ENGINE, PAGE, Outcome, check_exports, flat, run_observed, shape
from test_core_adapters import parse_otlp

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


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(guest=random_guests())
def test_random_guests_never_crash_the_host(guest: RandomGuest) -> None:
    wasm = wasmtime.wat2wasm(guest.wat())
    module = wasmtime.Module(ENGINE, wasm)
    adapter = InMemoryAdapter()
    runs: dict[tuple[str, float], Outcome] = {}
    for recorder in ("python", "wasm"):
        for min_us in (0, 20):
            runs[recorder, min_us] = run = run_observed(module, wasm, recorder, min_us, adapter, guest.calls,
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
        run = run_observed(module, wasm, recorder, 20)
        trace = run.trace
        spans = list(trace.spans())
        assert len(spans) == 70_000 and all(s.error for s in spans)
        assert sum(s.allocated_pages for s in spans) == 60_000
        assert format_trace(trace).count("\n") > 70_000
        assert len(json.loads(traces_data_json([trace]))["resourceSpans"][0]["scopeSpans"][0]["spans"]) == 70_000
        assert run.adapter.shutdown(timeout=10).complete and run.adapter.traces == [trace]


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
    trace = run_observed(wasmtime.Module(ENGINE, wasm), wasm, "python", 0).trace
    text = format_trace(trace)
    assert len(text.split("\n")) == 4 and len(text.splitlines()) == 4
    assert "  a\\nb\\x00c\\u2028d  " in text and "log ERROR: a\\nb\\x00c\\u2028d\\ntrace forged" in text
    check_exports(trace)


def test_otlp_json_spells_non_finite_doubles_as_protobuf_does() -> None:
    wasm = wasmtime.wat2wasm(W.NESTED)
    trace = run_observed(wasmtime.Module(ENGINE, wasm), wasm, "python", 0).trace
    doc = parse_otlp(traces_data_json([trace], resource_attributes={
        "a": float("nan"), "b": float("inf"), "c": float("-inf"), "d": 1.5}))
    values = {kv.key: kv.value.double_value for kv in doc.resource_spans[0].resource.attributes if kv.key in "abcd"}
    assert values["a"] != values["a"] and values["b"] == float("inf") and values["c"] == float("-inf")
    assert values["d"] == 1.5
