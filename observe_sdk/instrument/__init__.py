"""observe_sdk.instrument: an instrumenting compiler for WebAssembly modules, in pure Python.

>>> from observe_sdk.instrument import instrument, instrument_module
>>> out = instrument(wasm_bytes, exclude=["std::*"], min_instructions=20)
>>> result = instrument_module(wasm_bytes); print(result.summary)

What the output looks like, the options and what is supported: the README's
"Instrumenting a module".
"""
from .errors import InstrumentError, WasmFormatError
from .instrumenter import MARKER_SECTION, InstrumentResult, Summary, instrument, instrument_module
from .module import Module, read_module

__all__ = [
    "instrument", "instrument_module", "InstrumentResult", "Summary", "InstrumentError", "WasmFormatError",
    "Module", "read_module", "MARKER_SECTION",
]
