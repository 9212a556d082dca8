"""``observe-sdk``: run a module under observation, inspect one, or instrument one.

    observe-sdk run MODULE.wasm [--adapter NAME] [--out FILE] [--min-span-us N]
                    [--invoke FUNC[:ARG,...]]... [--env K=V]... [--dir HOST[::GUEST]]...
                    [--recorder auto|python|wasm] [--guest-stdout auto|stdout|stderr]
                    [--flush-timeout SECONDS] [-- ARGS...]
    observe-sdk inspect MODULE.wasm [--json]
    observe-sdk instrument IN.wasm -o OUT.wasm [options]

When the telemetry goes to stdout (``stdout`` and ``otel-stdout`` without ``--out``) the
guest's stdout goes to stderr, so that ``observe-sdk run m.wasm --adapter otel-stdout | jq``
reads only telemetry; ``--guest-stdout`` chooses otherwise. Messages of the CLI itself are
one line on stderr starting ``observe-sdk: error:`` (``warning:``, ``note:``). The exit status
is the guest's (134 for a trap), 2 for bad input, and 75 when the guest succeeded but its
trace was not delivered. See docs/cli.md.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import wasmtime

from . import bench
from .abi import IMPORTS, NAMESPACES, NS_LEGACY
from .adapters.base import Adapter
from .component import is_component
from .errors import CliError
from .gcpause import gc_paused
from .host.context import TraceContext
from .host.traps import describe_trap
from .names import ModuleFormatError, ModuleInfo, read_module_info
from .options import Options
from .version import __version__

EXIT_TRACE_LOST = 75
"""``observe-sdk run``'s exit status when the guest succeeded but its telemetry was not all
delivered (EX_TEMPFAIL: the backend may be back later). A guest's own non-zero status wins."""

STDOUT_ADAPTERS = frozenset({"stdout", "otel-stdout", "chrome-trace", "folded", "html"})
"""The adapters that write the telemetry to stdout unless given --out."""


def _read_module(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CliError(f"{path}: is a directory, not a module") from None
    except OSError as exc:
        raise CliError(f"{path}: cannot read: {exc.strerror}") from None
    if data[:4] != b"\0asm":
        if path.endswith(".wat"):
            try:
                return bytes(wasmtime.wat2wasm(data.decode("utf-8")))
            except (wasmtime.WasmtimeError, UnicodeDecodeError) as exc:
                raise CliError(f"{path}: invalid WAT: {str(exc).splitlines()[0]}") from None
        raise CliError(f"{path}: not a WebAssembly module (no \\0asm magic)")
    return data


def make_adapter(name: str, out: str | None) -> Adapter:
    """An adapter by name: the built-ins and any installed ``observe_sdk.adapters`` plugin."""
    from .adapters import registry

    try:
        return registry.create(name, out=out) if out else registry.create(name)
    except (LookupError, ValueError, ImportError, OSError) as exc:
        message = str(exc).strip("'\"")
        raise CliError(message if repr(name) in message else f"adapter {name!r}: {message}") from None


def _parse_invoke(spec: str) -> tuple[str, list[str]]:
    name, _, rest = spec.partition(":")
    return name, [a for a in rest.split(",") if a] if rest else []


def _convert_args(func_type: wasmtime.FuncType, name: str, raw: list[str]) -> list[Any]:
    params = func_type.params
    if len(params) != len(raw):
        raise CliError(f"export {name!r} takes {len(params)} argument(s), {len(raw)} given")
    out: list[Any] = []
    for ty, text in zip(params, raw, strict=True):
        try:
            out.append(float(text) if str(ty) in ("f32", "f64") else int(text, 0))
        except ValueError:
            raise CliError(f"export {name!r}: argument {text!r} is not an {ty}") from None
    return out


def _plan_calls(module: wasmtime.Module, ns: argparse.Namespace) -> list[tuple[str, list[Any]]]:
    """The exports to call and their arguments, checked against the module before anything runs."""
    exports = {e.name: e.type for e in module.exports}
    if not ns.invoke:
        for entry in ("_start", "_initialize"):
            if isinstance(exports.get(entry), wasmtime.FuncType):
                return [(entry, [])]
        raise CliError(f"{ns.module}: exports neither _start nor _initialize; use --invoke FUNC")
    calls: list[tuple[str, list[Any]]] = []
    if isinstance(exports.get("_initialize"), wasmtime.FuncType):
        calls.append(("_initialize", []))
    for spec in ns.invoke:
        name, raw = _parse_invoke(spec)
        func_type = exports.get(name)
        if not isinstance(func_type, wasmtime.FuncType):
            raise CliError(f"{ns.module}: no exported function {name!r}")
        calls.append((name, _convert_args(func_type, name, raw)))
    return calls


def _trace_on_stdout(ns: argparse.Namespace) -> bool:
    """Whether the telemetry is written to stdout: the stream adapters without --out."""
    return ns.adapter in STDOUT_ADAPTERS and not ns.out


def _guest_stdout_to_stderr(ns: argparse.Namespace) -> bool:
    if ns.guest_stdout == "auto":
        return _trace_on_stdout(ns)
    return bool(ns.guest_stdout == "stderr")


def _write_to_stderr(data: bytes) -> int:
    sys.stderr.flush()
    view = memoryview(data)
    while view:
        view = view[os.write(sys.stderr.fileno(), view):]
    return len(data)


def _can_redirect_stdout(ns: argparse.Namespace) -> bool:
    """Whether this wasmtime-py can hand the guest's stdout to Python (``WasiConfig.stdout_custom``)."""
    if hasattr(wasmtime.WasiConfig, "stdout_custom"):
        return True
    problem = "this wasmtime-py cannot send the guest's stdout to stderr (pip install -U wasmtime)"
    if ns.guest_stdout == "stderr":
        raise CliError(f"--guest-stdout stderr: {problem}")
    print(f"observe-sdk: warning: {problem}; it shares stdout with the telemetry", file=sys.stderr)
    return False


def _wasi_config(ns: argparse.Namespace) -> wasmtime.WasiConfig:
    wasi = wasmtime.WasiConfig()
    wasi.argv = [os.path.basename(ns.module)] + list(ns.args)
    env = []
    for item in ns.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"--env {item!r}: expected K=V")
        env.append((key, value))
    wasi.env = env
    for spec in ns.dir:
        host, sep, guest = spec.partition("::")
        if not os.path.isdir(host):
            raise CliError(f"--dir {spec!r}: {host} is not a directory")
        wasi.preopen_dir(host, guest if sep else host)
    wasi.inherit_stdin()
    if _guest_stdout_to_stderr(ns) and _can_redirect_stdout(ns):  # the telemetry owns stdout: `| jq` reads it alone
        wasi.stdout_custom = _write_to_stderr
    else:
        wasi.inherit_stdout()
    wasi.inherit_stderr()
    return wasi


def _note_nothing_to_trace(ns: argparse.Namespace, info: ModuleInfo) -> None:
    if not info.observe_imports:
        print(f"observe-sdk: note: {ns.module} imports nothing of the Observe ABI, so there is nothing to trace; "
              f"instrument it first: observe-sdk instrument {ns.module} -o OUT.wasm (see docs/observe-abi.md)",
              file=sys.stderr)


def _report_delivery(ns: argparse.Namespace, adapter: Any, code: int) -> int:
    """Flush the telemetry; a trace not delivered turns a successful exit into EXIT_TRACE_LOST."""
    report = adapter.shutdown(timeout=ns.flush_timeout)
    if not report.complete:
        print(f"observe-sdk: error: adapter {ns.adapter}: the trace was not delivered ({report.pending} pending, "
              f"{report.failed} failed, {report.dropped} dropped)", file=sys.stderr)
        if code == 0:
            return EXIT_TRACE_LOST
    return code


def cmd_run_component(ns: argparse.Namespace, wasm: bytes) -> int:
    """A component: WASI preview 2 and wasi:otel linked; ``wasi:cli/run`` or one ``--invoke`` export."""
    from .component.run import ComponentArgumentError, compile_component, run_component

    if len(ns.invoke) > 1:
        raise CliError(f"{ns.module}: a component takes one --invoke")
    invoke, arguments = _parse_invoke(ns.invoke[0]) if ns.invoke else (None, [])
    engine = wasmtime.Engine()
    try:
        compiled = compile_component(engine, wasm)
    except wasmtime.WasmtimeError as exc:
        raise CliError(f"{ns.module}: invalid component: {str(exc).splitlines()[0]}") from None
    store = wasmtime.Store(engine)
    store.set_wasi(_wasi_config(ns))
    adapter = make_adapter(ns.adapter, ns.out)
    options = Options(min_span_duration_us=ns.min_span_us)
    code = 0
    try:
        outcome = run_component(engine, compiled, store, adapter, options, invoke=invoke, arguments=arguments,
                                module_name=os.path.basename(ns.module))
        code = outcome.exit_code
        if invoke is not None and outcome.result is not None:
            print(outcome.result, file=sys.stderr if _guest_stdout_to_stderr(ns) else sys.stdout)
    except ComponentArgumentError as exc:
        raise CliError(f"{ns.module}: {exc}") from None
    except wasmtime.ExitTrap as exc:
        code = exc.code
    except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
        print(f"observe-sdk: error: {ns.module}: {invoke or 'wasi:cli/run'} trapped: {describe_trap(exc)}",
              file=sys.stderr)
        code = 134
    finally:
        code = _report_delivery(ns, adapter, code)
    return code


def _core_module_info(ns: argparse.Namespace, wasm: bytes) -> ModuleInfo:
    try:
        return read_module_info(wasm)
    except ModuleFormatError as exc:
        raise CliError(f"{ns.module}: {exc}") from None


def cmd_run(ns: argparse.Namespace) -> int:
    # The run's big object graph (the trace: a few objects per span, no cycles) is freed by reference
    # counting; the cycle collector would only scan it, again and again as it grows and once more
    # while it is exported: a quarter of a 240,000-span run.
    with gc_paused():
        return _run_module(ns)


def _run_module(ns: argparse.Namespace) -> int:
    wasm = _read_module(ns.module)
    if is_component(wasm):
        return cmd_run_component(ns, wasm)
    info = _core_module_info(ns, wasm)
    engine = wasmtime.Engine()
    try:
        module = wasmtime.Module(engine, wasm)
    except wasmtime.WasmtimeError as exc:
        raise CliError(f"{ns.module}: invalid module: {str(exc).splitlines()[0]}") from None
    calls = _plan_calls(module, ns)
    store = wasmtime.Store(engine)
    store.set_wasi(_wasi_config(ns))
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    adapter = make_adapter(ns.adapter, ns.out)
    _note_nothing_to_trace(ns, info)
    options = Options(min_span_duration_us=ns.min_span_us, recorder=ns.recorder,
                      module_name=os.path.basename(ns.module))
    ctx = adapter.start(linker, wasm, options, store=store)
    code = 0
    try:
        code = _run_calls(ns, ctx, store, linker, module, calls)
    finally:
        ctx.finish()
        code = _report_delivery(ns, adapter, code)
    return code


def _run_calls(ns: argparse.Namespace, ctx: TraceContext, store: wasmtime.Store, linker: wasmtime.Linker,
               module: wasmtime.Module, calls: list[tuple[str, list[Any]]]) -> int:
    """Instantiate the module and make the planned calls; the guest's exit status."""
    try:
        instance = linker.instantiate(store, module)
    except wasmtime.ExitTrap as exc:  # the start function called proc_exit
        return exc.code
    except wasmtime.Trap as exc:      # the start function or a data segment trapped
        ctx.record_trap(exc)
        print(f"observe-sdk: error: {ns.module}: trapped while instantiating: {describe_trap(exc)}", file=sys.stderr)
        return 134
    except wasmtime.WasmtimeError as exc:
        raise CliError(f"{ns.module}: cannot instantiate: {describe_trap(exc)}") from None
    results = sys.stderr if _guest_stdout_to_stderr(ns) else sys.stdout
    exports = instance.exports(store)
    for name, args in calls:
        func = exports[name]
        assert isinstance(func, wasmtime.Func)  # _plan_calls checked the module's export types
        try:
            result = ctx.call(store, func, *args)
        except wasmtime.ExitTrap as exc:
            return exc.code
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            print(f"observe-sdk: error: {ns.module}: {name} trapped: {describe_trap(exc)}", file=sys.stderr)
            return 134
        if name not in ("_start", "_initialize") and result is not None:
            print(result if not isinstance(result, list) else " ".join(map(str, result)), file=results)
    return 0


def cmd_inspect_component(ns: argparse.Namespace, wasm: bytes) -> int:
    from .component.run import compile_component, describe

    engine = wasmtime.Engine()
    try:
        info = describe(engine, compile_component(engine, wasm))
    except wasmtime.WasmtimeError as exc:
        raise CliError(f"{ns.module}: invalid component: {str(exc).splitlines()[0]}") from None
    if ns.json:
        print(json.dumps({"module": ns.module, "component": True, "imports": info.imports,
                          "exports": info.exports, "wasi_otel_imports": info.otel_imports}, indent=2))
        return 0
    print(f"{ns.module} (component)")
    print(f"  wasi:otel imports: {', '.join(info.otel_imports) or 'none (runs unobserved)'}")
    print(f"  other imports: {', '.join(i for i in info.imports if i not in info.otel_imports) or 'none'}")
    print(f"  exports: {', '.join(info.exports) or 'none'}")
    return 0


def cmd_inspect(ns: argparse.Namespace) -> int:
    wasm = _read_module(ns.module)
    if is_component(wasm):
        return cmd_inspect_component(ns, wasm)
    info = _core_module_info(ns, wasm)
    by_ns: dict[str, list[str]] = {n: [] for n in NAMESPACES}
    for module, name in info.observe_imports:
        by_ns[module].append(name)
    report = {
        "module": ns.module,
        "observe_imports": {k: v for k, v in by_ns.items() if v},
        "unknown_observe_imports": [f"{m}::{n}" for m, n in info.unknown_observe_imports],
        "deprecated_namespace": bool(by_ns[NS_LEGACY]),
        "instrumenter_version_exports": info.has_version_exports,
        "functions_imported": info.imported_functions,
        "named_functions": len(info.function_names),
        "exports": info.exported_functions(),
    }
    if ns.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{ns.module}")
    if not report["observe_imports"]:
        print("  observe imports: none (runs unobserved)")
    for namespace, names in report["observe_imports"].items():
        known = [n for n in names if (namespace, n) in IMPORTS]
        print(f"  {namespace}: {', '.join(known)}" + (" (deprecated)" if namespace == NS_LEGACY else ""))
    for item in report["unknown_observe_imports"]:
        print(f"  unknown observe import: {item}")
    print(f"  instrumenter version exports: {'yes' if info.has_version_exports else 'no'}")
    print(f"  named functions: {len(info.function_names)}")
    print(f"  exported functions: {', '.join(report['exports']) or 'none'}")
    return 0


class _CliFormatter(logging.Formatter):
    """The SDK's log records as the CLI's own lines: ``observe-sdk: warning: ...``."""

    def format(self, record: logging.LogRecord) -> str:
        return f"observe-sdk: {record.levelname.lower()}: {record.getMessage()}"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="observe-sdk", description="Observe WebAssembly modules.")
    p.add_argument("--version", action="version", version=f"observe-sdk {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log the SDK's own messages")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a module under observation")
    run.add_argument("module")
    run.add_argument("--adapter", default="stdout", help="stdout, otel-stdout, or any installed adapter")
    run.add_argument("--out", help="write the telemetry to this file instead of stdout")
    run.add_argument("--min-span-us", type=float, default=20.0, help="drop spans shorter than this (default 20)")
    run.add_argument("--invoke", action="append", default=[], metavar="FUNC[:ARG,...]",
                     help="call this export (after _initialize); repeatable")
    run.add_argument("--env", action="append", default=[], metavar="K=V")
    run.add_argument("--dir", action="append", default=[], metavar="HOST[::GUEST]")
    run.add_argument("--recorder", choices=("auto", "python", "wasm"), default="auto")
    run.add_argument("--guest-stdout", choices=("auto", "stdout", "stderr"), default="auto",
                     help="where the guest's stdout (and --invoke results) go; auto (default): stderr when "
                          "the telemetry goes to stdout, so that it can be piped (| jq), else stdout")
    run.add_argument("--flush-timeout", type=float, default=10.0, metavar="SECONDS",
                     help="how long to keep trying to deliver the telemetry at exit (default 10); "
                          f"a trace not delivered makes the exit status {EXIT_TRACE_LOST}")
    run.add_argument("args", nargs="*", help="arguments for the guest (after --)")
    run.set_defaults(func=cmd_run)
    insp = sub.add_parser("inspect", help="what a module imports of the Observe ABI")
    insp.add_argument("module")
    insp.add_argument("--json", action="store_true")
    insp.set_defaults(func=cmd_inspect)
    sub.add_parser("instrument", help="instrument a module (see: observe-sdk instrument --help)", add_help=False)
    bench.add_command(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "instrument":
        try:
            from .instrument.cli import main as instrument_main
        except ImportError:
            print("observe-sdk: error: the instrumenter is not available in this build", file=sys.stderr)
            return 2
        return instrument_main(argv[1:])
    guest_args: list[str] = []
    if "--" in argv:  # everything after -- belongs to the guest
        cut = argv.index("--")
        argv, guest_args = argv[:cut], argv[cut + 1:]
    ns = build_parser().parse_args(argv)
    if guest_args:
        ns.args = list(getattr(ns, "args", [])) + guest_args
    handler = logging.StreamHandler()
    handler.setFormatter(_CliFormatter())
    logging.basicConfig(level=logging.INFO if ns.verbose else logging.WARNING, handlers=[handler])
    try:
        code: int = ns.func(ns)
        return code
    except CliError as exc:
        print(f"observe-sdk: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
