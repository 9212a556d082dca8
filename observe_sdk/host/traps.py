"""wasmtime's errors on one line: why a guest stopped, without the backtrace.

wasmtime's messages are multi-line: a headline (``error while executing at
wasm backtrace:``), the frames, then ``Caused by:`` and the causes, outermost
first, numbered when there are several (``0: memory fault at ...``,
``1: wasm trap: out of bounds memory access``).  The innermost cause is the
one that says what happened.
"""
from __future__ import annotations

import re

_CAUSE_INDEX = re.compile(r"^\d+: ")


def wasmtime_message(text: str) -> tuple[str, str]:
    """A wasmtime error message as its headline and innermost cause ("" when it has none)."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return "unknown error", ""
    causes = lines[lines.index("Caused by:") + 1:] if "Caused by:" in lines else []
    return lines[0], _CAUSE_INDEX.sub("", causes[-1]) if causes else ""


def innermost_cause(text: str) -> str:
    """The innermost cause of a wasmtime error message (its headline when it has none), on one line."""
    headline, cause = wasmtime_message(text)
    return (cause or headline).removeprefix("wasm trap: ")


def describe_trap(exc: BaseException) -> str:
    """One line saying why the guest stopped: ``wasm `unreachable` instruction executed``."""
    return innermost_cause(str(exc)) if str(exc).strip() else type(exc).__name__


__all__ = ["wasmtime_message", "innermost_cause", "describe_trap"]
