"""How cod prints: tables (or CSV) for lists, a text view for one object, JSON and YAML for both.

Lists take Bacalhau's output flags: ``--output table|csv|json|yaml``, ``--wide`` (whole IDs
and texts instead of cut ones), ``--hide-header`` and ``--no-style`` (no bold header on a
terminal). Describe-style commands take ``--output table|json|yaml``, where ``table`` is the
text view. Times are ISO 8601 in UTC (``2026-05-01T09:30:00Z``).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

LIST_FORMATS = ("table", "csv", "json", "yaml")
OBJECT_FORMATS = ("table", "json", "yaml")


def list_flags() -> argparse.ArgumentParser:
    """The output flags of a command that prints rows."""
    flags = argparse.ArgumentParser(add_help=False)
    flags.add_argument("--output", "-O", choices=LIST_FORMATS, default="table", help="output format (default table)")
    flags.add_argument("--wide", action="store_true", help="whole IDs and texts, not cut to fit")
    flags.add_argument("--hide-header", action="store_true", help="no header row (table and csv)")
    flags.add_argument("--no-style", action="store_true", help="no bold header, even on a terminal")
    return flags


def object_flags(*formats: str) -> argparse.ArgumentParser:
    """The output flag of a command that prints one object (``table`` is its text view)."""
    flags = argparse.ArgumentParser(add_help=False)
    choices = formats or OBJECT_FORMATS
    flags.add_argument("--output", "-O", choices=choices, default=choices[0],
                       help=f"output format (default {choices[0]})")
    return flags


@dataclass(frozen=True)
class Column:
    header: str
    width: int = 0        # cut the text to this many characters unless --wide (0: never)
    ident: bool = False   # an ID: its short form unless --wide


def print_data(data: Any, fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(data, indent=2, default=str))
    elif fmt == "yaml":
        print(yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip())
    else:
        raise ValueError(f"{fmt!r} is not a data format")


def print_object(args: argparse.Namespace, data: Any, text_view: Callable[[], None]) -> None:
    if args.output == "table":
        text_view()
    else:
        print_data(data, args.output)


def print_rows(args: argparse.Namespace, data: Any, columns: Sequence[Column], rows: list[list[Any]]) -> None:
    """``data`` as JSON/YAML, or ``rows`` (full values) as CSV or an aligned table."""
    if args.output in ("json", "yaml"):
        print_data(data, args.output)
        return
    texts = _texts(rows)
    if args.output == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        if not args.hide_header:
            writer.writerow([c.header for c in columns])
        writer.writerows(texts)
        return
    if not args.wide:
        texts = [[_fit(text, col) for text, col in zip(row, columns, strict=True)] for row in texts]
    if args.hide_header:
        lines = _aligned(texts)
    else:
        head, *lines = _aligned([[c.header for c in columns], *texts])
        bold = not args.no_style and sys.stdout.isatty() and "NO_COLOR" not in os.environ
        print(f"\033[1m{head}\033[0m" if bold else head)
    for line in lines:
        print(line)


def table(rows: list[list[Any]], header: list[str]) -> None:
    """A plain aligned table inside a text view."""
    for line in _aligned([header, *_texts(rows)]):
        print(line)


def _texts(rows: list[list[Any]]) -> list[list[str]]:
    return [["" if c is None else str(c) for c in row] for row in rows]


def _aligned(cells: list[list[str]]) -> list[str]:
    """The rows as lines, each column as wide as its widest cell."""
    if not cells:
        return []
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]


def _fit(text: str, column: Column) -> str:
    if column.ident:
        return short(text)
    if column.width and len(text) > column.width:
        return text[:column.width - 1] + "…"
    return text


def short(identifier: str) -> str:
    return identifier[:10] if identifier.startswith(("j-", "e-")) else identifier[:8]


def when(ns: int) -> str:
    """A stored time (ns since the epoch) in ISO 8601, UTC, to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns / 1e9)) if ns else ""
