"""Command line: ``observe-sdk instrument IN.wasm -o OUT.wasm [options]``."""
from __future__ import annotations

import argparse
import sys

from .errors import InstrumentError, WasmFormatError
from .instrumenter import instrument_module
from .module import read_module
from .validate import validation_error


def build_parser(prog: str = "observe-sdk instrument") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Instrument a WebAssembly module so that it reports function entries, exits "
                               "and memory growth through the Observe ABI (dylibso:observe/instrument).")
    parser.add_argument("input", help="the .wasm module to instrument")
    parser.add_argument("-o", "--output", required=True, help="where to write the instrumented module")
    parser.add_argument("--include", action="append", default=[], metavar="GLOB",
                        help="instrument only functions whose (demangled) name matches; repeatable")
    parser.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                        help="do not instrument functions whose (demangled) name matches; repeatable")
    parser.add_argument("--min-instructions", type=int, default=0, metavar="N",
                        help="skip functions with fewer than N instructions that call nothing")
    parser.add_argument("--no-memory", action="store_true", help="do not report memory.grow")
    parser.add_argument("--no-imports", action="store_true",
                        help="do not wrap imported functions (no span per host call)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.min_instructions < 0:
        print("observe-sdk: error: --min-instructions must be >= 0", file=sys.stderr)
        return 2
    try:
        with open(args.input, "rb") as f:
            wasm = f.read()
    except OSError as exc:
        print(f"observe-sdk: error: cannot read {args.input}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    invalid = validation_error(wasm)
    if invalid is not None:
        try:  # our reader names the section and offset of a malformed module
            read_module(wasm)
        except WasmFormatError as exc:
            invalid = str(exc)
        print(f"observe-sdk: error: {args.input}: not a valid WebAssembly module: {invalid}", file=sys.stderr)
        return 1
    try:
        result = instrument_module(wasm, include=args.include, exclude=args.exclude,
                                   min_instructions=args.min_instructions, memory=not args.no_memory,
                                   imports=not args.no_imports)
    except (WasmFormatError, InstrumentError) as exc:
        print(f"observe-sdk: error: {args.input}: {exc}", file=sys.stderr)
        return 1
    invalid = validation_error(result.wasm)
    if invalid is not None:  # a bug of ours: never write an invalid module
        print(f"observe-sdk: error: {args.input}: the instrumented module does not validate ({invalid}); "
              "nothing written", file=sys.stderr)
        return 1
    try:
        with open(args.output, "wb") as f:
            f.write(result.wasm)
    except OSError as exc:
        print(f"observe-sdk: error: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    if not args.quiet:
        for line in result.summary.lines():
            print(f"{args.input}: {line}", file=sys.stderr)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0
