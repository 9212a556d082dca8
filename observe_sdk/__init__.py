"""Observe WebAssembly from Python: the Observe ABI for wasmtime, traces, adapters."""
# Imported first so that stores created from here on are known to have WASI or
# not (a WASI call in a store without it aborts the process; see wasm_recorder).
from .host import wasm_recorder as _wasm_recorder  # noqa: F401
from .options import Options
from .trace import Allocation, Log, Metric, Span, Trace

__all__ = ["Options", "Trace", "Span", "Allocation", "Log", "Metric"]
__version__ = "0.1.0"
