"""Observe WebAssembly from Python: the Observe ABI for wasmtime, traces, adapters."""
from .options import Options
from .trace import Allocation, Log, Metric, Span, Trace

__all__ = ["Options", "Trace", "Span", "Allocation", "Log", "Metric"]
__version__ = "0.1.0"
