"""The cod parser and its dispatch: every sub-command names its handler with ``set_defaults(func=...)``."""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from observe_sdk import __version__

from ..client import APIError
from ..models import SpecError
from . import jobs, nodes, serve, stack, wasm
from .common import Parser, UsageError


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="cod", description="A compute-over-data network running observed Wasm jobs.")
    parser.add_argument("--version", action="version", version=f"cod (observe-sdk) {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (stack, serve, jobs, wasm, nodes):
        module.register(sub)
    return parser


def _module_args(parser: argparse.ArgumentParser, extra: list[str]) -> list[str]:
    """The module's arguments that argparse left over from ``wasm run MODULE [flags] ARGS``
    (it binds positionals only before the first flag); unknown flags stay errors unless after ``--``."""
    split = extra.index("--") if "--" in extra else len(extra)
    flags = [a for a in extra[:split] if a.startswith("-")]
    if flags:
        parser.error(f"unrecognized arguments: {' '.join(flags)} (arguments for the module go after --)")
    return extra[:split] + extra[split + 1:]


def run(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not getattr(args, "takes_module_args", False):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.args += _module_args(parser, extra)
    try:
        code: int = args.func(args)
        return code
    except SpecError as exc:
        print(f"Error: invalid job spec: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped to a command that stopped reading (| head): quietly done
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
        return 141
    except (APIError, UsageError, OSError, ValueError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
