"""``observe-sdk bench``: what observing a module costs, side by side in one run.

    observe-sdk bench MODULE [--invoke FUNC] [--plain FILE] [--min-span-us N] [--rounds N]
                      [--adapter NAME]... [--json] [-- ARGS]

Configurations, each run in a process of its own (so that its peak RSS is its
own), interleaved round by round (so that a machine busy for a moment costs
every configuration alike); the table shows the minimum and the median:

``plain``            the module not instrumented (as given, or ``--plain FILE`` for an
                     instrumented MODULE; without it, MODULE with every Observe import a
                     no-op host function)
``recorder R``       instrumented and observed with recorder R (``python``, ``wasm``):
                     running it, then assembling its trace
``adapter A``        the default recorder, then adapter A encoding the trace
                     (everything the adapter does short of I/O)

A module without Observe imports is instrumented first (in memory).  With
``--invoke FUNC``, the arguments after ``--`` are FUNC's, else the guest's argv.
``benchmarks/bench_observe.py`` runs the same configurations under
pytest-benchmark, which keeps their history.  See docs/performance.md.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import wasmtime

from .abi import IMPORTS
from .adapters.base import Adapter
from .errors import CliError
from .names import ModuleFormatError, read_module_info
from .options import Options
from .trace import Allocation, Log, Metric, Span, Trace

RECORDERS: tuple[Literal["python", "wasm"], ...] = ("python", "wasm")
REFERENCE_ADAPTER = "otel-stdout"      # OTLP/JSON: the encode every other adapter is compared with
Encoder = Callable[[Trace], int]


@dataclass(frozen=True)
class Guest:
    """What to run: the instrumented module, the module as given if it was not, and how to call it."""

    path: str
    plain_path: str | None
    invoke: str | None = None
    args: tuple[str, ...] = ()
    min_span_us: float = 20.0


@dataclass(frozen=True)
class Config:
    mode: Literal["plain", "auto", "python", "wasm"]
    adapter: str | None = None

    @property
    def label(self) -> str:
        if self.adapter:
            return f"adapter {self.adapter}"
        return "plain" if self.mode == "plain" else f"recorder {self.mode}"


@dataclass
class Sample:
    """One run of one configuration (seconds, MiB)."""

    exec_s: float
    assemble_s: float = 0.0
    encode_s: float = 0.0
    process_s: float = 0.0      # the whole process, start to exit (measured by the parent)
    spans: int = 0
    events: int = 0             # enter/exit pairs count two; logs, metrics, allocations one
    encoded_bytes: int = 0
    peak_rss_mib: float = 0.0


# -- one run, in this process ---------------------------------------------------------------

class _Discard(Adapter):
    name = "bench"

    def export(self, traces: list[Trace]) -> None:
        pass


def make_encoder(name: str) -> tuple[Encoder, Callable[[], None]]:
    """(encode a trace, returning its size in bytes; release the adapter) for adapter ``name``."""
    from .adapters import registry

    if name == "opentelemetry":      # the host's provider: an SDK TracerProvider without processors
        from opentelemetry.sdk.trace import TracerProvider

        from .adapters.opentelemetry import OpenTelemetryAdapter

        otel = OpenTelemetryAdapter(TracerProvider(shutdown_on_exit=False), False, False, python_logging=False)

        def emit(trace: Trace) -> int:
            otel.emit_trace(trace)
            return 0       # SDK spans, no bytes

        return emit, lambda: None
    adapter = registry.create(name)
    close = adapter.close
    encode = _ENCODERS.get(type(adapter).__name__)
    if encode is None:
        render = getattr(adapter, "render", None)      # the document adapters
        if render is None:
            close()
            raise CliError(f"adapter {name!r}: no way to encode without sending is known")
        return lambda trace: len(render([trace])), close
    return lambda trace: encode(adapter, trace), close


def _otlp(adapter: Any, trace: Trace) -> int:
    return sum(len(body) for _, body in adapter.encode([trace]))


def _datadog(adapter: Any, trace: Trace) -> int:
    from .adapters.datadog_msgpack import payload

    return len(payload(adapter.trace_chunks(trace)[0]))


def _zipkin(adapter: Any, trace: Trace) -> int:
    return sum(len(span) + 1 for span in adapter.encode_json(trace)) + 1


def _otel_stdout(adapter: Any, trace: Trace) -> int:
    from .adapters.otlp_json import traces_data_json_parts
    from .gcpause import gc_paused

    with gc_paused():
        parts = traces_data_json_parts([trace], adapter.service_name, adapter.resource_attributes)
        return sum(len(part) for part in parts) + 1


def _stdout(adapter: Any, trace: Trace) -> int:
    from .adapters.stdout import format_trace

    return len(format_trace(trace)) + 1


_ENCODERS: dict[str, Callable[[Any, Trace], int]] = {
    "OtlpAdapter": _otlp, "DatadogAdapter": _datadog, "ZipkinAdapter": _zipkin,
    "OtelStdoutAdapter": _otel_stdout, "StdoutAdapter": _stdout,
}


def count_events(trace: Trace) -> tuple[int, int]:
    """(spans, events) of a trace; a span is two events (enter and exit)."""
    spans = events = 0
    stack: list[Any] = list(trace.roots)
    while stack:
        event = stack.pop()
        if type(event) is Span:
            spans += 1
            events += 2
            stack.extend(event.events)
        elif type(event) in (Log, Metric, Allocation):
            events += 1
    return spans, events


def run_once(guest: Guest, config: Config) -> Sample:
    """Run ``config`` once in this process."""
    plain = config.mode == "plain"
    path = guest.plain_path if plain and guest.plain_path else guest.path
    wasm = Path(path).read_bytes()
    engine = wasmtime.Engine()
    module = wasmtime.Module(engine, wasm)
    store = wasmtime.Store(engine)
    wasi = wasmtime.WasiConfig()
    wasi.argv = [Path(path).name] + ([] if guest.invoke else list(guest.args))
    wasi.stdout_file = os.devnull
    store.set_wasi(wasi)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    sink = None
    ctx = None
    if plain and guest.plain_path is None:
        _define_noop_imports(linker)
    elif not plain:
        sink = _Discard()
        assert config.mode != "plain"
        ctx = sink.start(linker, wasm, Options(min_span_duration_us=guest.min_span_us, recorder=config.mode),
                         store=store)
    encode, release = make_encoder(config.adapter) if config.adapter else (None, None)
    calls = plan_calls(module, guest)
    instance = linker.instantiate(store, module)
    exports = instance.exports(store)
    funcs = [(exports[name], args) for name, args in calls]
    started = time.perf_counter()
    for func, args in funcs:
        assert isinstance(func, wasmtime.Func)
        try:
            ctx.call(store, func, *args) if ctx is not None else func(store, *args)
        except wasmtime.ExitTrap as exc:
            if exc.code != 0:
                raise CliError(f"{path}: the guest exited with status {exc.code}") from None
            break
    ran = time.perf_counter()
    sample = Sample(exec_s=ran - started)
    if ctx is not None:
        trace = ctx.finish()
        sample.assemble_s = time.perf_counter() - ran
        if encode is not None:
            before = time.perf_counter()
            sample.encoded_bytes = encode(trace)
            sample.encode_s = time.perf_counter() - before
        sample.spans, sample.events = count_events(trace)
    if release is not None:
        release()
    if sink is not None:
        sink.shutdown(5)
    sample.peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return sample


def _define_noop_imports(linker: wasmtime.Linker) -> None:
    for (namespace, name), (params, _) in IMPORTS.items():
        ty = wasmtime.FuncType([getattr(wasmtime.ValType, p)() for p in params], [])
        linker.define_func(namespace, name, ty, lambda *args: None)


def plan_calls(module: wasmtime.Module, guest: Guest) -> list[tuple[str, list[Any]]]:
    """The exports to call, with their arguments converted to the parameters' types."""
    exports = {e.name: e.type for e in module.exports}
    calls: list[tuple[str, list[Any]]] = []
    if guest.invoke is None:
        for entry in ("_start", "_initialize"):
            if isinstance(exports.get(entry), wasmtime.FuncType):
                return [(entry, [])]
        raise CliError(f"{guest.path}: exports neither _start nor _initialize; use --invoke FUNC")
    if isinstance(exports.get("_initialize"), wasmtime.FuncType):
        calls.append(("_initialize", []))
    func_type = exports.get(guest.invoke)
    if not isinstance(func_type, wasmtime.FuncType):
        raise CliError(f"{guest.path}: no exported function {guest.invoke!r}")
    if len(func_type.params) != len(guest.args):
        raise CliError(f"export {guest.invoke!r} takes {len(func_type.params)} argument(s), "
                         f"{len(guest.args)} given")
    args: list[Any] = []
    for ty, text in zip(func_type.params, guest.args, strict=True):
        try:
            args.append(float(text) if str(ty) in ("f32", "f64") else int(text, 0))
        except ValueError:
            raise CliError(f"export {guest.invoke!r}: argument {text!r} is not an {ty}") from None
    calls.append((guest.invoke, args))
    return calls


# -- many runs, each in its own process ------------------------------------------------------

def run_in_process(guest: Guest, config: Config) -> Sample:
    """Run ``config`` once in a new Python process; its wall time is ``process_s``."""
    spec = json.dumps({"guest": asdict(guest), "config": asdict(config)})
    import subprocess

    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "observe_sdk.bench", "--worker", spec],
                          capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        lines = (done.stderr.strip() or f"exit status {done.returncode}").splitlines()
        raise CliError(f"{config.label}: {lines[-1]}")
    sample = Sample(**json.loads(done.stdout.strip().splitlines()[-1]))
    sample.process_s = elapsed
    return sample


def _worker(spec_text: str) -> int:
    spec = json.loads(spec_text)
    guest = Guest(**{**spec["guest"], "args": tuple(spec["guest"]["args"])})
    try:
        sample = run_once(guest, Config(**spec["config"]))
    except (CliError, ValueError, LookupError, OSError, ImportError) as exc:   # the adapter's settings, say
        print(str(exc).strip("'\"") if isinstance(exc, KeyError) else exc, file=sys.stderr)
        return 1
    print(json.dumps(asdict(sample)))
    return 0


@dataclass
class Row:
    config: Config
    samples: list[Sample] = field(default_factory=list)
    skipped: str = ""

    def stat(self, name: str) -> tuple[float, float]:
        """(minimum, median) of one measure over the rounds."""
        import statistics

        values = [getattr(s, name) for s in self.samples]
        return min(values), statistics.median(values)


def measure(guest: Guest, configs: Sequence[Config], rounds: int,
            progress: Callable[[str], None] | None = None) -> list[Row]:
    """Every configuration ``rounds`` times, interleaved; a configuration that fails is skipped."""
    rows = [Row(c) for c in configs]
    for round_no in range(rounds):
        for row in rows:
            if row.skipped:
                continue
            if progress:
                progress(f"round {round_no + 1}/{rounds}: {row.config.label}")
            try:
                row.samples.append(run_in_process(guest, row.config))
            except CliError as exc:
                row.skipped = str(exc)
    return rows


def default_configs(adapters: Sequence[str] | None) -> list[Config]:
    """plain, each recorder, and each adapter (all installed ones unless named)."""
    from .adapters import registry

    if adapters is None:
        adapters = [name for name in registry.names() if name not in registry.unavailable()]
    unknown = [name for name in adapters if name not in registry.names()]
    if unknown:
        raise CliError(f"unknown adapter(s) {', '.join(unknown)}; installed: {', '.join(registry.names())}")
    return ([Config("plain")] + [Config(r) for r in RECORDERS]
            + [Config("auto", name) for name in adapters])


# -- the report ----------------------------------------------------------------------------

def report(rows: list[Row], guest: Guest, rounds: int) -> dict[str, Any]:
    """The table as data (the ``--json`` form)."""
    plain = next((r for r in rows if r.config.mode == "plain" and r.samples), None)
    reference = next((r for r in rows if r.config.adapter == REFERENCE_ADAPTER and r.samples), None)
    out_rows: list[dict[str, Any]] = []
    for row in rows:
        label = row.config.label
        if row.config.mode == "plain" and guest.plain_path is None:
            label = "plain (no-op hooks)"     # given an instrumented module: its Observe imports do nothing
        entry: dict[str, Any] = {"config": label, "recorder": row.config.mode,
                                 "adapter": row.config.adapter}
        if row.skipped or not row.samples:
            entry["skipped"] = row.skipped or "not run"
            out_rows.append(entry)
            continue
        for name in ("exec_s", "assemble_s", "encode_s", "process_s"):
            low, mid = row.stat(name)
            entry[name] = {"min": round(low, 4), "median": round(mid, 4)}
        last = row.samples[-1]
        entry.update(spans=last.spans, events=last.events, encoded_bytes=last.encoded_bytes,
                     peak_rss_mib=round(max(s.peak_rss_mib for s in row.samples), 1))
        if plain is not None:
            entry["x_plain_exec"] = round(row.stat("exec_s")[0] / plain.stat("exec_s")[0], 2)
            entry["x_plain_process"] = round(row.stat("process_s")[0] / plain.stat("process_s")[0], 2)
        if reference is not None and row.config.adapter:
            entry["x_otlp_json_encode"] = round(row.stat("encode_s")[0] / reference.stat("encode_s")[0], 2)
        out_rows.append(entry)
    return {"module": guest.path, "plain_module": guest.plain_path, "invoke": guest.invoke,
            "args": list(guest.args), "min_span_us": guest.min_span_us, "rounds": rounds,
            "python": sys.version.split()[0], "rows": out_rows}


def format_table(data: dict[str, Any]) -> str:
    """The report as a text table: min / median of each time, in seconds."""
    def pair(entry: dict[str, Any], name: str) -> str:
        value = entry[name]
        return "-" if value["min"] == 0 else f"{value['min']:.3f}/{value['median']:.3f}"

    head = (f"{'':22s} {'exec s':>13s} {'assemble s':>13s} {'encode s':>13s} {'process s':>13s} "
            f"{'spans':>9s} {'events':>9s} {'peak RSS':>9s} {'x plain':>8s} {'x proc':>7s} {'x JSON':>7s}")
    lines = [f"observe-sdk bench {data['module']}"
             + (f" --invoke {data['invoke']}" if data["invoke"] else "")
             + (f" -- {' '.join(data['args'])}" if data["args"] else ""),
             f"min span {data['min_span_us']:g} us; {data['rounds']} round(s), interleaved, each run a process "
             "of its own; times min/median", head]
    for entry in data["rows"]:
        if "skipped" in entry:
            lines.append(f"{entry['config']:22s} skipped: {entry['skipped']}")
            continue
        ratio = entry.get("x_otlp_json_encode")
        lines.append(
            f"{entry['config']:22s} {pair(entry, 'exec_s'):>13s} {pair(entry, 'assemble_s'):>13s} "
            f"{pair(entry, 'encode_s'):>13s} {pair(entry, 'process_s'):>13s} "
            f"{entry['spans'] or '-':>9} {entry['events'] or '-':>9} {entry['peak_rss_mib']:>5.0f} MiB "
            f"{entry.get('x_plain_exec', '-'):>8} {entry.get('x_plain_process', '-'):>7} "
            f"{ratio if ratio is not None else '-':>7}")
    lines.append("x plain: exec / plain exec; x proc: process / plain process; "
                 "x JSON: encode / otel-stdout (OTLP/JSON) encode")
    return "\n".join(lines)


# -- the command ---------------------------------------------------------------------------

@contextmanager
def prepared_guest(path: str, invoke: str | None, args: Sequence[str], min_span_us: float,
                   plain: str | None = None) -> Iterator[Guest]:
    """The guest to bench: instrumented (in a temporary file) when ``path`` is not; ``plain``:
    the uninstrumented module of an instrumented ``path``, for the plain run."""
    wasm = _read_module(path)
    try:
        info = read_module_info(wasm)
    except ModuleFormatError as exc:
        raise CliError(f"{path}: {exc}") from None
    if info.observe_imports:
        if plain is not None:
            _read_module(plain)
        yield Guest(os.path.abspath(path), plain and os.path.abspath(plain), invoke, tuple(args), min_span_us)
        return
    if plain is not None:
        raise CliError(f"--plain {plain}: {path} is not instrumented; it is the plain module")
    import tempfile

    from .instrument import instrument

    with tempfile.TemporaryDirectory(prefix="observe-bench-") as tmp:
        given = Path(tmp) / "plain.wasm"
        instrumented = Path(tmp) / "instrumented.wasm"
        given.write_bytes(wasm)
        instrumented.write_bytes(instrument(wasm))
        yield Guest(str(instrumented), str(given), invoke, tuple(args), min_span_us)


def check_guest(guest: Guest) -> None:
    """What would fail every run fails now, once: a module wasmtime refuses, a bad --invoke."""
    engine = wasmtime.Engine()
    for path in filter(None, (guest.path, guest.plain_path)):
        try:
            module = wasmtime.Module(engine, Path(path).read_bytes())
        except wasmtime.WasmtimeError as exc:
            raise CliError(f"{path}: invalid module: {str(exc).splitlines()[0]}") from None
        plan_calls(module, guest)


def _read_module(path: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CliError(f"{path}: cannot read: {exc.strerror}") from None
    if data[:4] != b"\0asm" and path.endswith(".wat"):
        try:
            return bytes(wasmtime.wat2wasm(data.decode("utf-8")))
        except (wasmtime.WasmtimeError, UnicodeDecodeError) as exc:
            raise CliError(f"{path}: invalid WAT: {str(exc).splitlines()[0]}") from None
    if data[:4] != b"\0asm":
        raise CliError(f"{path}: not a WebAssembly module (no \\0asm magic)")
    return data


def add_command(sub: Any) -> None:
    """Register ``bench`` with the ``observe-sdk`` command's sub-parsers."""
    p = sub.add_parser("bench", help="what observing a module costs: a table, side by side in one run")
    p.add_argument("module")
    p.add_argument("--invoke", metavar="FUNC", help="call this export (the arguments after -- are its own)")
    p.add_argument("--plain", metavar="FILE", help="the module before instrumentation, when MODULE is instrumented "
                   "(else the plain run calls no-op Observe imports)")
    p.add_argument("--min-span-us", type=float, default=20.0, help="drop spans shorter than this (default 20)")
    p.add_argument("--rounds", type=int, default=3, help="runs of each configuration, interleaved (default 3)")
    p.add_argument("--adapter", action="append", metavar="NAME",
                   help="bench this adapter (repeatable; default: every installed one)")
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.add_argument("args", nargs="*", help="arguments for the guest or FUNC (after --)")
    p.set_defaults(func=cmd_bench)


def cmd_bench(ns: argparse.Namespace) -> int:
    if ns.rounds < 1:
        raise CliError("--rounds must be at least 1")
    with prepared_guest(ns.module, ns.invoke, ns.args, ns.min_span_us, ns.plain) as guest:
        check_guest(guest)
        progress = None if ns.json else (lambda text: print(f"  {text}", file=sys.stderr))
        rows = measure(guest, default_configs(ns.adapter), ns.rounds, progress)
        data = report(rows, guest, ns.rounds)
    data["module"] = ns.module
    data["plain_module"] = ns.plain or (ns.module if guest.plain_path else None)
    data["instrumented_here"] = guest.plain_path is not None and ns.plain is None
    print(json.dumps(data, indent=2) if ns.json else format_table(data))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] != ["--worker"] or len(sys.argv) != 3:
        sys.exit("observe_sdk.bench runs one configuration for `observe-sdk bench`; use that command")
    sys.exit(_worker(sys.argv[2]))
