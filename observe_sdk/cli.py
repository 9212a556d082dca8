"""``observe-sdk``: run a module under observation, inspect one, or instrument one.

    observe-sdk run MODULE.wasm [--adapter NAME] [--out FILE] [--min-span-us N]
                    [--invoke FUNC[:ARG,...]]... [--env K=V]... [--dir HOST[::GUEST]]...
                    [--recorder auto|python|wasm] [--flush-timeout SECONDS] [-- ARGS...]
    observe-sdk inspect MODULE.wasm [--json]
    observe-sdk instrument IN.wasm -o OUT.wasm [options]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any, Sequence

import wasmtime

from . import __version__
from .abi import IMPORTS, NAMESPACES, NS_LEGACY
from .names import ModuleFormatError, read_module_info
from .host.context import describe_trap
from .options import Options


class CliError(Exception):
    """One clear line for stderr, and a non-zero exit."""


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
                return wasmtime.wat2wasm(data.decode("utf-8"))
            except (wasmtime.WasmtimeError, UnicodeDecodeError) as exc:
                raise CliError(f"{path}: invalid WAT: {str(exc).splitlines()[0]}") from None
        raise CliError(f"{path}: not a WebAssembly module (no \\0asm magic)")
    return data


def make_adapter(name: str, out: str | None) -> Any:
    """An adapter by name: the built-ins and any installed ``observe_sdk.adapters`` plugin."""
    try:
        from .adapters import registry
    except ImportError:
        registry = None
    if registry is not None:
        try:
            return registry.create(name, out=out) if out else registry.create(name)
        except (LookupError, ValueError, ImportError, OSError) as exc:
            message = str(exc).strip("'\"")
            raise CliError(message if repr(name) in message else f"adapter {name!r}: {message}") from None
    if name == "stdout":
        from .adapters.stdout import StdoutAdapter
        return StdoutAdapter.from_env(out)
    if name == "otel-stdout":
        from .adapters.otel_stdout import OtelStdoutAdapter
        return OtelStdoutAdapter.from_env(out)
    raise CliError(f"unknown adapter {name!r} (installed: stdout, otel-stdout)")


def _parse_invoke(spec: str) -> tuple[str, list[str]]:
    name, _, rest = spec.partition(":")
    return name, [a for a in rest.split(",") if a] if rest else []


def _convert_args(func: wasmtime.Func, store: wasmtime.Store, name: str, raw: list[str]) -> list[Any]:
    params = func.type(store).params
    if len(params) != len(raw):
        raise CliError(f"export {name!r} takes {len(params)} argument(s), {len(raw)} given")
    out: list[Any] = []
    for ty, text in zip(params, raw):
        try:
            out.append(float(text) if str(ty) in ("f32", "f64") else int(text, 0))
        except ValueError:
            raise CliError(f"export {name!r}: argument {text!r} is not a {ty}") from None
    return out


def cmd_run(ns: argparse.Namespace) -> int:
    wasm = _read_module(ns.module)
    try:
        read_module_info(wasm)
    except ModuleFormatError as exc:
        raise CliError(f"{ns.module}: {exc}") from None
    engine = wasmtime.Engine()
    try:
        module = wasmtime.Module(engine, wasm)
    except wasmtime.WasmtimeError as exc:
        raise CliError(f"{ns.module}: invalid module: {str(exc).splitlines()[0]}") from None
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
    wasi.inherit_stdout()
    wasi.inherit_stderr()
    store = wasmtime.Store(engine)
    store.set_wasi(wasi)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    adapter = make_adapter(ns.adapter, ns.out)
    options = Options(min_span_duration_us=ns.min_span_us, recorder=ns.recorder)
    ctx = adapter.start(linker, wasm, options, store=store)
    code = 0
    try:
        try:
            instance = linker.instantiate(store, module)
        except wasmtime.ExitTrap as exc:  # the start function called proc_exit
            return exc.code
        except wasmtime.Trap as exc:      # the start function or a data segment trapped
            ctx.record_trap(exc)
            print(f"observe-sdk: {ns.module}: trapped while instantiating: {describe_trap(exc)}", file=sys.stderr)
            return 134
        except wasmtime.WasmtimeError as exc:
            raise CliError(f"{ns.module}: cannot instantiate: {describe_trap(exc)}") from None
        exports = instance.exports(store)
        calls: list[tuple[str, list[str]]]
        if ns.invoke:
            calls = [_parse_invoke(s) for s in ns.invoke]
            if "_initialize" in exports:
                calls.insert(0, ("_initialize", []))
        elif "_start" in exports:
            calls = [("_start", [])]
        elif "_initialize" in exports:
            calls = [("_initialize", [])]
        else:
            raise CliError(f"{ns.module}: exports neither _start nor _initialize; use --invoke FUNC")
        for name, raw_args in calls:
            func = exports.get(name) if hasattr(exports, "get") else None
            if not isinstance(func, wasmtime.Func):
                raise CliError(f"{ns.module}: no exported function {name!r}")
            args = _convert_args(func, store, name, raw_args)
            try:
                result = ctx.call(store, func, *args)
            except wasmtime.ExitTrap as exc:
                code = exc.code
                break
            except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
                print(f"observe-sdk: {ns.module}: {name} trapped: {describe_trap(exc)}", file=sys.stderr)
                code = 134
                break
            if name not in ("_start", "_initialize") and result is not None:
                print(result if not isinstance(result, list) else " ".join(map(str, result)))
    finally:
        ctx.finish()
        report = adapter.shutdown(timeout=ns.flush_timeout)
        if not report.complete:
            print(f"warning: adapter {ns.adapter}: {report.pending} pending, {report.failed} failed, "
                  f"{report.dropped} dropped trace(s)", file=sys.stderr)
    return code


def cmd_inspect(ns: argparse.Namespace) -> int:
    wasm = _read_module(ns.module)
    try:
        info = read_module_info(wasm)
    except ModuleFormatError as exc:
        raise CliError(f"{ns.module}: {exc}") from None
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
    run.add_argument("--flush-timeout", type=float, default=10.0, metavar="SECONDS",
                     help="how long to keep trying to deliver the telemetry at exit (default 10)")
    run.add_argument("args", nargs="*", help="arguments for the guest (after --)")
    run.set_defaults(func=cmd_run)
    insp = sub.add_parser("inspect", help="what a module imports of the Observe ABI")
    insp.add_argument("module")
    insp.add_argument("--json", action="store_true")
    insp.set_defaults(func=cmd_inspect)
    sub.add_parser("instrument", help="instrument a module (see: observe-sdk instrument --help)", add_help=False)
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
    logging.basicConfig(level=logging.INFO if ns.verbose else logging.WARNING,
                        format="observe-sdk: %(levelname)s: %(message)s")
    try:
        return ns.func(ns)
    except CliError as exc:
        print(f"observe-sdk: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
