"""Errors raised by the WebAssembly reader and the instrumenting pass (defined in :mod:`observe_sdk.errors`)."""
from __future__ import annotations

from ..errors import InstrumentError, WasmFormatError

__all__ = ["InstrumentError", "WasmFormatError"]
