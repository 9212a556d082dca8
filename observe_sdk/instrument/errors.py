"""Errors raised by the WebAssembly reader and the instrumenting pass."""
from __future__ import annotations

from ..names import ModuleFormatError


class WasmFormatError(ModuleFormatError):
    """The input is not a well-formed WebAssembly module (the full reader's error:
    a :class:`~observe_sdk.names.ModuleFormatError`, so one ``except`` catches both).

    ``section`` names the section being read (``"header"`` before any section) and
    ``offset`` is the byte offset in the module where the problem was found.
    """

    def __init__(self, message: str, *, section: str = "module", offset: int | None = None) -> None:
        self.reason = message
        self.section = section
        self.offset = offset
        where = f"{section} section" if section not in ("module", "header") else section
        if offset is not None:
            where += f" at byte offset {offset} (0x{offset:x})"
        super().__init__(f"malformed wasm: {message} ({where})")


class InstrumentError(ValueError):
    """The module is well formed but cannot (or must not) be instrumented."""
