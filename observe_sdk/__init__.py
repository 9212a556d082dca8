"""Observe WebAssembly from Python: the Observe ABI for wasmtime, traces, adapters.

The entry point is :func:`observe` (``adapter.start`` is its shortcut)::

    ctx = observe_sdk.observe(linker, wasm_bytes, adapter, store=store)

It links the Observe ABI into ``linker``; the module's traces go to the sink
(any :class:`TraceSink`; every :class:`Adapter` is one).
"""
# Imported first so that stores created from here on are known to have WASI or
# not (a WASI call in a store without it aborts the process; see wasm_recorder).
from .host import wasm_recorder as _wasm_recorder  # noqa: F401  # isort: skip
from .adapters.base import Adapter, ShutdownReport, TransientExportError
from .host.context import TraceContext, observe
from .options import Options
from .sink import TraceSink
from .trace import Allocation, Log, Metric, Span, Trace
from .version import __version__

__all__ = [
    "observe", "TraceContext", "TraceSink", "Adapter", "ShutdownReport", "TransientExportError",
    "Options", "Trace", "Span", "Allocation", "Log", "Metric", "__version__",
]
