"""The Wasm executor of cod_reference: WASI, mounts, limits, errors, cache, telemetry.

Guests: ``test_executor_data/tool.wasm`` (a small C command, source next to it),
WAT written here, and the built examples in ``guest-examples/``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from cod_helpers import ROOT, TOOL
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cod_reference.executor.types import ExecutionOutcome, ExecutionRequest, Mount
from cod_reference.executor.wasm import WasmExecutor
from observe_sdk import Options

EXAMPLES = ROOT / "guest-examples"

EXIT_WITH = """(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const {code}))))"""
SPIN = b'(module (func (export "_start") (loop $l (br $l))))'
TRAP = b'(module (func $boom (export "_start") (call $deeper)) (func $deeper unreachable))'


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture(scope="module")
def provider(spans: InMemorySpanExporter) -> TracerProvider:
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(spans))
    return tp


@pytest.fixture(scope="module")
def executor(provider: TracerProvider):
    # keep every guest span (the default drops non-root spans shorter than 20 us)
    ex = WasmExecutor(tracer_provider=provider, observe_options=Options(min_span_duration_us=0))
    yield ex
    ex.close()


def tool(executor: WasmExecutor, *args: str, **kw) -> ExecutionOutcome:
    return executor.run(ExecutionRequest(f"exec-{args[0]}", TOOL, args=list(args), **kw))


# -- WASI ------------------------------------------------------------------------
def test_hello_stdout(executor: WasmExecutor) -> None:
    out = executor.run(ExecutionRequest("hello", (EXAMPLES / "build" / "hello.wasm").read_bytes()))
    assert out.error is None and out.exit_code == 0 and out.succeeded
    assert out.stdout_head.splitlines() == [f"Hello, World! {i}" for i in range(10)]
    assert out.stderr_head == "" and not out.stdout_truncated
    assert out.duration_s > 0


def test_args(executor: WasmExecutor) -> None:
    out = tool(executor, "args", "one", "two words", "ünïcode")
    assert out.exit_code == 0
    assert out.stdout_head.splitlines() == ["main.wasm", "args", "one", "two words", "ünïcode"]


def test_env_is_exactly_the_request_env(executor: WasmExecutor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOST_SECRET", "leak")
    out = tool(executor, "env", "MODE", "EMPTY", "HOST_SECRET", env={"MODE": "fast", "EMPTY": ""})
    assert out.stdout_head.splitlines() == ["MODE=fast", "EMPTY=", "HOST_SECRET unset"]


@pytest.mark.parametrize("code", [0, 1, 7, 125])
def test_exit_codes(executor: WasmExecutor, code: int) -> None:
    out = tool(executor, "exit", str(code))
    assert out.exit_code == code
    assert out.error is None and out.error_kind is None
    assert out.stderr_head == f"bye {code}\n"
    assert out.succeeded is (code == 0)


def test_exit_status_wasi_cannot_carry(executor: WasmExecutor) -> None:
    # wasmtime's WASI accepts exit statuses 0..125 only (portable across hosts)
    out = tool(executor, "exit", "255")
    assert out.exit_code is None and out.error_kind == "trap"
    assert out.error == "trap: exit with invalid exit status outside of [0..126)"


def test_proc_exit_and_normal_return(executor: WasmExecutor) -> None:
    assert executor.run(ExecutionRequest("x", EXIT_WITH.format(code=42).encode())).exit_code == 42
    out = executor.run(ExecutionRequest("r", b'(module (func (export "_start")))'))
    assert out.exit_code == 0 and out.error is None


def test_reactor_initialize_then_entrypoint(executor: WasmExecutor) -> None:
    wat = b"""(module
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (global $g (mut i32) (i32.const 0))
      (func (export "_initialize") (global.set $g (i32.const 5)))
      (func (export "run") (call $exit (global.get $g))))"""
    assert executor.run(ExecutionRequest("re", wat, entrypoint="run")).exit_code == 5


def test_output_is_kept_whole_and_head_returned(executor: WasmExecutor, tmp_path: Path) -> None:
    stdout, stderr = tmp_path / "logs" / "stdout", tmp_path / "logs" / "stderr"
    out = tool(executor, "big", "10000", stdout_path=str(stdout), stderr_path=str(stderr),
               output_head_bytes=100)
    assert out.exit_code == 0
    assert out.stdout_head == "x" * 100 and out.stdout_truncated
    assert stdout.read_bytes() == b"x" * 10000
    assert stderr.read_bytes() == b"" and not out.stderr_truncated


# -- mounts ------------------------------------------------------------------------
def test_read_input_dir(executor: WasmExecutor, tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("line 1\nline 2\n")
    mounts = [Mount(str(tmp_path), "/inputs")]
    for path in ("/inputs/data.txt", "inputs/data.txt"):
        out = tool(executor, "cat", path, mounts=mounts)
        assert (out.exit_code, out.stdout_head) == (0, "line 1\nline 2\n"), out


def test_file_mount_shows_only_that_file(executor: WasmExecutor, tmp_path: Path) -> None:
    (tmp_path / "wanted.txt").write_text("yes")
    (tmp_path / "secret.txt").write_text("no")
    out = tool(executor, "ls", "/config", mounts=[Mount(str(tmp_path / "wanted.txt"), "/config/settings.txt")])
    assert out.stdout_head == "settings.txt\n"
    out = tool(executor, "cat", "/config/settings.txt",
               mounts=[Mount(str(tmp_path / "wanted.txt"), "/config/settings.txt")])
    assert out.stdout_head == "yes"


def test_write_output_dir(executor: WasmExecutor, tmp_path: Path) -> None:
    outputs = tmp_path / "out"
    outputs.mkdir()
    out = tool(executor, "write", "outputs/result.txt", "42\n",
               mounts=[Mount(str(outputs), "/outputs", readonly=False)])
    assert out.exit_code == 0, out
    assert (outputs / "result.txt").read_text() == "42\n"


def test_writable_file_mount_is_copied_back(executor: WasmExecutor, tmp_path: Path) -> None:
    target = tmp_path / "state.txt"
    target.write_text("old")
    out = tool(executor, "write", "/work/state.txt", "new",
               mounts=[Mount(str(target), "/work/state.txt", readonly=False)])
    assert out.exit_code == 0, out
    assert target.read_text() == "new"


def test_write_to_read_only_mount_fails(executor: WasmExecutor, tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("keep")
    single = tmp_path / "single.txt"
    single.write_text("keep too")
    for mount, path in ((Mount(str(tmp_path), "/inputs"), "/inputs/data.txt"),
                        (Mount(str(tmp_path), "/inputs"), "/inputs/new.txt"),
                        (Mount(str(single), "/one/single.txt"), "/one/single.txt")):
        out = tool(executor, "write", path, "changed", mounts=[mount])
        assert out.exit_code == 2, out
        assert out.stderr_head.startswith(f"cannot open {path}:")
    assert (tmp_path / "data.txt").read_text() == "keep"
    assert single.read_text() == "keep too"
    assert not (tmp_path / "new.txt").exists()


def test_unmounted_paths_are_not_visible(executor: WasmExecutor) -> None:
    out = tool(executor, "cat", "/etc/passwd")
    assert out.exit_code == 2 and "cannot open /etc/passwd" in out.stderr_head


def test_bad_mounts_are_request_errors(executor: WasmExecutor, tmp_path: Path) -> None:
    out = tool(executor, "args", mounts=[Mount(str(tmp_path / "missing"), "/in")])
    assert out.error_kind == "request" and "does not exist" in out.error and out.exit_code is None
    out = tool(executor, "args", mounts=[Mount(str(tmp_path), "/in"), Mount(str(tmp_path), "/in/")])
    assert out.error_kind == "request" and "two mounts at guest path /in" in out.error


# -- import modules ------------------------------------------------------------------
def test_import_modules_are_linked_by_name(executor: WasmExecutor) -> None:
    math = b'(module (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))'
    twice = b"""(module (import "math" "add" (func $add (param i32 i32) (result i32)))
      (func (export "twice") (param i32) (result i32) (call $add (local.get 0) (local.get 0))))"""
    entry = b"""(module
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (import "math" "add" (func $add (param i32 i32) (result i32)))
      (import "lib/twice" "twice" (func $twice (param i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "_start") (call $exit (call $add (call $twice (i32.const 10)) (i32.const 3)))))"""
    out = executor.run(ExecutionRequest("imp", entry, import_modules=[("math", math), ("lib/twice", twice)]))
    assert out.exit_code == 23, out


def test_missing_import_module(executor: WasmExecutor) -> None:
    entry = b'(module (import "math" "add" (func (param i32 i32) (result i32))) (func (export "_start")))'
    out = executor.run(ExecutionRequest("imp", entry))
    assert out.error_kind == "module" and "unknown import" in out.error and "math::add" in out.error


# -- limits ------------------------------------------------------------------------
def test_infinite_loop_is_killed_by_timeout(executor: WasmExecutor) -> None:
    for module, args in ((SPIN, []), (TOOL, ["spin"])):
        started = time.monotonic()
        out = executor.run(ExecutionRequest("spin", module, args=args, timeout_s=0.3))
        assert out.error_kind == "timeout" and out.error == "timeout after 0.3s"
        assert out.exit_code is None
        assert 0.25 < time.monotonic() - started < 5


def test_a_far_timeout_does_not_stop_the_watchdog() -> None:
    with WasmExecutor(max_output_bytes=None) as ex:  # no output check: the watchdog waits for the deadline
        assert ex.run(ExecutionRequest("far", TOOL, args=["sleep", "100"], timeout_s=1e10)).exit_code == 0
        assert ex._watchdog._thread is not None and ex._watchdog._thread.is_alive()
        out = ex.run(ExecutionRequest("spin", SPIN, timeout_s=0.3))  # it waited past what a lock allows
    assert out.error_kind == "timeout"


def test_cancel_event_stops_the_guest(executor: WasmExecutor) -> None:
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    out = executor.run(ExecutionRequest("spin", SPIN, timeout_s=30), cancel=cancel)
    assert (out.error_kind, out.error, out.exit_code) == ("cancelled", "cancelled", None)
    assert out.duration_s < 5
    already = threading.Event()
    already.set()
    assert executor.run(ExecutionRequest("spin", SPIN), cancel=already).error_kind == "cancelled"


def test_timeout_of_one_execution_leaves_others_running(executor: WasmExecutor) -> None:
    results: dict[str, ExecutionOutcome] = {}

    def run(name: str, req: ExecutionRequest) -> None:
        results[name] = executor.run(req)

    threads = [threading.Thread(target=run, args=("spin", ExecutionRequest("s", SPIN, timeout_s=0.2)))]
    threads += [threading.Thread(target=run, args=(f"grow{i}", ExecutionRequest(
        f"g{i}", TOOL, args=["grow", "24"], timeout_s=30))) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results["spin"].error_kind == "timeout"
    for i in range(3):
        assert results[f"grow{i}"].exit_code == 0
        assert results[f"grow{i}"].stdout_head.startswith("held 24 MiB")


def test_memory_cap(executor: WasmExecutor) -> None:
    ok = tool(executor, "grow", "6", memory_limit_bytes=64 << 20)
    assert ok.exit_code == 0 and ok.error is None
    capped = tool(executor, "grow", "64", memory_limit_bytes=8 << 20)
    assert capped.error_kind == "memory"
    assert capped.error == "memory limit of 8 MiB exceeded (the guest exited with code 3)"
    assert capped.exit_code == 3 and capped.stderr_head.startswith("allocation ")


def test_memory_cap_trap_and_instantiation(executor: WasmExecutor) -> None:
    # grows a page at a time, as allocators do near the cap, and traps when refused
    grow_or_trap = b"""(module (memory (export "memory") 1)
      (func (export "_start") (local $i i32)
        (loop $more
          (if (i32.lt_s (memory.grow (i32.const 1)) (i32.const 0)) (then unreachable))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $more (i32.lt_u (local.get $i) (i32.const 63))))))"""
    out = executor.run(ExecutionRequest("m", grow_or_trap, memory_limit_bytes=2 << 20))
    assert (out.error_kind, out.error, out.exit_code) == ("memory", "memory limit of 2 MiB exceeded", None)
    assert executor.run(ExecutionRequest("m", grow_or_trap, memory_limit_bytes=4 << 20)).exit_code == 0
    too_big = b'(module (memory (export "memory") 32) (func (export "_start")))'
    out = executor.run(ExecutionRequest("m", too_big, memory_limit_bytes=1 << 20))
    assert out.error_kind == "memory" and out.error == "memory limit of 1 MiB exceeded"


def test_memory_cap_reported_by_the_guest(executor: WasmExecutor) -> None:
    # one huge request far from the cap: only what the guest says tells it apart
    rust_like = b"""(module
      (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 16) "memory allocation of 104857600 bytes failed\\n")
      (func (export "_start")
        (if (i32.lt_s (memory.grow (i32.const 1600)) (i32.const 0)) (then
          (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 44))
          (drop (call $w (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
          unreachable))))"""
    out = executor.run(ExecutionRequest("m", rust_like, memory_limit_bytes=16 << 20))
    assert out.error_kind == "memory" and out.stderr_head.startswith("memory allocation of")
    out = executor.run(ExecutionRequest("m", rust_like))  # without a cap the grow succeeds
    assert out.exit_code == 0


# -- errors ------------------------------------------------------------------------
def test_trap(executor: WasmExecutor) -> None:
    out = executor.run(ExecutionRequest("t", TRAP))
    assert out.error_kind == "trap" and out.exit_code is None
    assert out.error == "trap: wasm `unreachable` instruction executed (in deeper)"
    c_trap = executor.run(ExecutionRequest("t", (EXAMPLES / "build" / "trap.wasm").read_bytes()))
    assert c_trap.error_kind == "trap" and c_trap.error.startswith("trap: ")
    assert "\n" not in c_trap.error


@pytest.mark.parametrize("module, expected", [
    (b"", "the module is empty"),
    (b"\0asm\1\0\0\0\5", "failed to parse WebAssembly module"),
    (b"\x89PNG\r\n\x1a\n", "not a WebAssembly binary"),
    (b"(module (func (export \"_start\") (i32.add)))", "invalid module"),
])
def test_invalid_module(executor: WasmExecutor, module: bytes, expected: str) -> None:
    out = executor.run(ExecutionRequest("bad", module))
    assert out.error_kind == "module" and out.exit_code is None
    assert out.error.startswith("invalid module") and expected in out.error
    assert "\n" not in out.error
    assert not executor.modules._key_locks  # nothing kept for a module that failed


def test_bad_entrypoints(executor: WasmExecutor) -> None:
    out = executor.run(ExecutionRequest("e", b'(module (func (export "main")))', entrypoint="_start"))
    assert out.error_kind == "module"
    assert out.error == "entrypoint '_start' not found in the module (exported functions: main)"
    out = executor.run(ExecutionRequest("e", b'(module (func (export "f") (param i32)))', entrypoint="f"))
    assert out.error_kind == "module" and "takes 1 parameter" in out.error


def test_invalid_requests(executor: WasmExecutor) -> None:
    assert executor.run(ExecutionRequest("r", SPIN, timeout_s=0)).error_kind == "request"
    assert executor.run(ExecutionRequest("r", SPIN, memory_limit_bytes=-1)).error_kind == "request"
    assert executor.run(ExecutionRequest("r", SPIN, env={"A=B": "c"})).error_kind == "request"
    assert executor.run(ExecutionRequest("r", "not bytes")).error_kind == "request"  # type: ignore[arg-type]
    out = executor.run(ExecutionRequest("r", SPIN, import_modules=[("wasi_snapshot_preview1", SPIN)]))
    assert out.error_kind == "request" and "reserved" in out.error


# -- the module cache ------------------------------------------------------------------
def test_module_compiles_once(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    with WasmExecutor(cache_dir=str(tmp_path), tracer_provider=tp) as ex:
        outs = [ex.run(ExecutionRequest(f"c{i}", TOOL, args=["args"])) for i in range(3)]
        assert all(o.exit_code == 0 for o in outs)
        assert ex.modules.compilations == 1
    sources = [s.attributes["wasm.module.cache"] for s in exporter.get_finished_spans() if s.name == "compile"]
    assert sources == ["compiled", "memory", "memory"]
    assert list((tmp_path).rglob("*.cwasm"))

    with WasmExecutor(cache_dir=str(tmp_path)) as restarted:  # a restarted node reads the disk cache
        assert restarted.run(ExecutionRequest("c", TOOL, args=["args"])).exit_code == 0
        assert restarted.modules.compilations == 0
        assert restarted.modules.get(TOOL).source == "memory"


def test_concurrent_first_runs_compile_once() -> None:
    with WasmExecutor() as ex:
        barrier = threading.Barrier(4)
        results: list[ExecutionOutcome] = []

        def go(i: int) -> None:
            barrier.wait()
            results.append(ex.run(ExecutionRequest(f"p{i}", TOOL, args=["args", str(i)])))

        threads = [threading.Thread(target=go, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(r.stdout_head.splitlines()[2] for r in results) == ["0", "1", "2", "3"]
        assert ex.modules.compilations == 1


def test_corrupt_disk_cache_is_recompiled(tmp_path: Path) -> None:
    with WasmExecutor(cache_dir=str(tmp_path)) as ex:
        ex.run(ExecutionRequest("c", SPIN, timeout_s=0.05))
    (cached,) = tmp_path.rglob("*.cwasm")
    cached.write_bytes(b"garbage")
    with WasmExecutor(cache_dir=str(tmp_path)) as ex:
        assert ex.run(ExecutionRequest("c", SPIN, timeout_s=0.05)).error_kind == "timeout"
        assert ex.modules.compilations == 1


# -- telemetry ------------------------------------------------------------------------
def _children(spans, parent) -> list:
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def test_spans_nest_under_the_callers_span(executor: WasmExecutor, provider: TracerProvider,
                                           spans: InMemorySpanExporter) -> None:
    spans.clear()
    wat = (EXAMPLES / "wat" / "nested.instr.wat").read_bytes()
    with provider.get_tracer("test").start_as_current_span("execution") as parent:
        out = executor.run(ExecutionRequest("otel", wat))
    assert out.exit_code == 0 and out.stdout_head == "Hello from three!\n"
    finished = spans.get_finished_spans()
    execution = next(s for s in finished if s.name == "execution")
    assert {s.name for s in _children(finished, execution)} == {"compile", "instantiate", "call"}
    call = next(s for s in finished if s.name == "call")
    assert call.attributes["cod.execution.id"] == "otel" and call.attributes["process.exit.code"] == 0
    roots = _children(finished, call)
    assert [s.name for s in roots] == ["_start"]
    chain, span = [], roots[0]
    while True:
        chain.append(span.name)
        below = _children(finished, span)
        if not below:
            break
        (span,) = below
    assert chain == ["_start", "main", "one", "two", "three", "printf"]
    assert {s.context.trace_id for s in finished} == {parent.context.trace_id}


def test_trap_spans_are_errors(executor: WasmExecutor, provider: TracerProvider,
                               spans: InMemorySpanExporter) -> None:
    from opentelemetry.trace import StatusCode

    spans.clear()
    wat = (EXAMPLES / "wat" / "trap.instr.wat").read_bytes()
    with provider.get_tracer("test").start_as_current_span("execution"):
        out = executor.run(ExecutionRequest("otel-trap", wat))
    assert out.error_kind == "trap"
    finished = spans.get_finished_spans()
    by_name = {s.name: s for s in finished}
    assert by_name["call"].status.status_code is StatusCode.ERROR
    assert by_name["call"].attributes["cod.error.kind"] == "trap"
    assert by_name["inner"].status.description == "trap: wasm `unreachable` instruction executed (in inner)"
    for name in ("_start", "main", "risky", "outer", "inner"):
        assert by_name[name].status.status_code is StatusCode.ERROR, name
    assert _children(finished, by_name["call"])[0].name == "_start"
    assert len({s.context.trace_id for s in finished}) == 1


def test_without_a_caller_span_the_execution_is_one_trace(executor: WasmExecutor,
                                                          spans: InMemorySpanExporter) -> None:
    spans.clear()
    out = executor.run(ExecutionRequest("lonely", (EXAMPLES / "wat" / "nested.instr.wat").read_bytes()))
    assert out.exit_code == 0
    finished = spans.get_finished_spans()
    root = next(s for s in finished if s.name == "wasm execution")
    assert root.parent is None
    assert len({s.context.trace_id for s in finished}) == 1 and len(finished) >= 9


def test_instrumented_import_module_reports_its_own_spans(executor: WasmExecutor, provider: TracerProvider,
                                                          spans: InMemorySpanExporter) -> None:
    lib = b"""(module $lib
      (import "dylibso:observe/instrument" "enter" (func $enter (param i32)))
      (import "dylibso:observe/instrument" "exit" (func $exit (param i32)))
      (func $work (export "work") (result i32) (call $enter (i32.const 2)) (call $exit (i32.const 2)) (i32.const 4)))"""
    entry = b"""(module $app
      (import "dylibso:observe/instrument" "enter" (func $enter (param i32)))
      (import "dylibso:observe/instrument" "exit" (func $exit (param i32)))
      (import "lib" "work" (func $work (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
      (memory (export "memory") 1)
      (func $_start (export "_start")
        (local $r i32)
        (call $enter (i32.const 4))
        (local.set $r (call $work))
        (call $exit (i32.const 4))
        (call $proc_exit (local.get $r))))"""
    spans.clear()
    with provider.get_tracer("test").start_as_current_span("execution"):
        out = executor.run(ExecutionRequest("libs", entry, import_modules=[("lib", lib)]))
    assert out.exit_code == 4, out
    finished = spans.get_finished_spans()
    call = next(s for s in finished if s.name == "call")
    assert sorted(s.name for s in _children(finished, call)) == ["_start", "work"]
    assert len({s.context.trace_id for s in finished}) == 1


def test_metrics(tmp_path: Path) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    with WasmExecutor(meter_provider=MeterProvider(metric_readers=[reader])) as ex:
        ex.run(ExecutionRequest("m1", TOOL, args=["args"]))
        ex.run(ExecutionRequest("m2", TOOL, args=["exit", "3"]))
        ex.run(ExecutionRequest("m3", SPIN, timeout_s=0.05))
    points: dict[str, list] = {}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                points[metric.name] = list(metric.data.data_points)
    assert [p.value for p in points["wasm_active_executions"]] == [0]
    loads = {p.attributes["cache"]: p.value for p in points["wasm_module_loads"]}
    assert loads == {"compiled": 2, "memory": 1}
    outcomes = {p.attributes["outcome"]: p.count for p in points["wasm_execution_duration"]}
    assert outcomes == {"exit": 2, "timeout": 1}


# -- helpers ------------------------------------------------------------------------
def test_read_head_and_tail(tmp_path: Path) -> None:
    from cod_reference.executor.output import read_head, read_tail

    f = tmp_path / "out"
    f.write_bytes("aé€".encode() + b"\xff" + b"z")  # 1 + 2 + 3 + 1 + 1 bytes
    assert read_head(str(f), 100) == ("aé€\ufffdz", False)
    assert read_head(str(f), 4) == ("aé", True)          # the cut euro sign is left out
    assert read_tail(str(f), 4) == ("€\ufffdz"[1:], True)  # starts mid-character: skipped
    assert read_tail(str(f), 5) == ("€\ufffdz", True)
    assert read_head(str(tmp_path / "missing"), 10) == ("", False)


def test_file_inside_a_directory_mount_is_refused(executor: WasmExecutor, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    out = tool(executor, "args", mounts=[Mount(str(tmp_path), "/data"), Mount(str(tmp_path / "f.txt"), "/data/f.txt")])
    assert out.error_kind == "request" and "already a directory mount" in out.error


def test_internal_errors_fail_the_execution_not_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    with WasmExecutor() as ex:
        def broken(data: bytes):
            raise RuntimeError("disk on fire")
        monkeypatch.setattr(ex.modules, "get", broken)
        out = ex.run(ExecutionRequest("i", TOOL))
    assert (out.error_kind, out.error, out.exit_code) == \
        ("internal", "internal error: RuntimeError: disk on fire", None)


def test_sleeping_guest(executor: WasmExecutor) -> None:
    started = time.monotonic()
    out = tool(executor, "sleep", "200")
    assert (out.exit_code, out.stdout_head) == (0, "woke\n")
    assert time.monotonic() - started >= 0.2


def test_sleeping_guest_is_stopped_by_timeout_and_cancel(executor: WasmExecutor) -> None:
    started = time.monotonic()
    out = tool(executor, "sleep", "60000", timeout_s=0.3)
    assert (out.error_kind, out.exit_code) == ("timeout", None)
    assert time.monotonic() - started < 5
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    out = executor.run(ExecutionRequest("z", TOOL, args=["sleep", "60000"]), cancel=cancel)
    assert out.error_kind == "cancelled" and out.duration_s < 5


def test_a_guest_sleeping_forever_is_stopped_by_its_timeout(executor: WasmExecutor) -> None:
    forever = b"""(module
      (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "_start")  ;; one relative clock subscription of 2^64-1 ns
        (i32.store (i32.const 16) (i32.const 1))
        (i64.store (i32.const 24) (i64.const -1))
        (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))))"""
    out = executor.run(ExecutionRequest("forever", forever, timeout_s=0.3))
    assert (out.error_kind, out.error) == ("timeout", "timeout after 0.3s")


def test_endless_output_is_stopped() -> None:
    with WasmExecutor(max_output_bytes=64 << 10) as ex:
        out = ex.run(ExecutionRequest("o", TOOL, args=["big", "2000000000"], output_head_bytes=10))
    assert (out.error_kind, out.error, out.exit_code) == ("output", "output limit of 64 KiB exceeded on stdout", None)
    assert out.stdout_head == "x" * 10 and out.stdout_truncated
    assert out.duration_s < 5


def test_symlinked_file_mount(executor: WasmExecutor, tmp_path: Path) -> None:
    (tmp_path / "real.txt").write_text("through the link")
    (tmp_path / "link.txt").symlink_to(tmp_path / "real.txt")
    out = tool(executor, "cat", "/in/data.txt", mounts=[Mount(str(tmp_path / "link.txt"), "/in/data.txt")])
    assert (out.exit_code, out.stdout_head) == (0, "through the link")


def test_memory_output_keeps_head_and_tail() -> None:
    from cod_reference.executor.output import TAIL_BYTES, MemoryOutput

    out = MemoryOutput(head_bytes=4)
    for chunk in (b"ab", "cé".encode(), b"x" * 5000, "end€".encode()):
        out.write(chunk)
    assert out.size() == 2 + 3 + 5000 + 6
    assert out.head(4) == ("abc", True)      # the cut é is left out
    assert out.head(100) == ("abc", True)    # only head_bytes are kept
    assert out.tail(7) == "xend€"
    assert len(out.tail()) == TAIL_BYTES - 2  # the euro sign is 3 bytes


def test_output_files_exist_even_when_the_module_is_invalid(executor: WasmExecutor, tmp_path: Path) -> None:
    out = executor.run(ExecutionRequest("bad", b"junk", stdout_path=str(tmp_path / "a" / "stdout"),
                                        stderr_path=str(tmp_path / "a" / "stderr")))
    assert out.error_kind == "module"
    assert (tmp_path / "a" / "stdout").read_bytes() == b"" and (tmp_path / "a" / "stderr").exists()


def test_first_observed_guest_of_a_process_gets_the_fast_recorder() -> None:
    import subprocess
    import sys

    # loaded after the first store was made, the SDK could not tell whether that store has
    # WASI and would fall back to its slower Python recorder (the executor imports it up front)
    script = ("import sys; from cod_reference.executor import ExecutionRequest, WasmExecutor\n"
              "with WasmExecutor() as ex:\n"
              "    assert ex.run(ExecutionRequest('n', sys.stdin.buffer.read())).succeeded\n")
    proc = subprocess.run([sys.executable, "-c", script], input=(EXAMPLES / "wat" / "nested.instr.wat").read_bytes(),
                          capture_output=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"Python recorder" not in proc.stderr, proc.stderr.decode()


def test_guest_logs_say_job_execution_and_level(executor: WasmExecutor, caplog: pytest.LogCaptureFixture) -> None:
    """A guest's log line, as the devstack prints it, names its job, execution and level (issue #11)."""
    import wasmtime

    wasm = wasmtime.wat2wasm((EXAMPLES / "wat" / "mixed.instr.wat").read_text())
    with caplog.at_level("INFO", logger="cod_reference.guest"):
        out = executor.run(ExecutionRequest("exec-logs", wasm, env={"BACALHAU_JOB_ID": "job-7"}))
    assert out.succeeded
    (record,) = [r for r in caplog.records if r.name == "cod_reference.guest"]
    assert record.levelname == "ERROR" and (record.cod_job_id, record.cod_execution_id) == ("job-7", "exec-logs")
    assert record.getMessage() == "job job-7 execution exec-logs ERROR mixed: Vowels Counted: 3"
