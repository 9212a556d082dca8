"""Observe WebAssembly from Python: the Observe ABI for wasmtime, traces, adapters.

The entry point is :func:`observe` (``adapter.start`` is its shortcut)::

    ctx = observe_sdk.observe(linker, wasm_bytes, adapter, store=store)

It links the Observe ABI into ``linker``; the module's traces go to the sink
(any :class:`TraceSink`; every :class:`Adapter` is one).
"""
import os as _os

from .adapters.base import Adapter, ShutdownReport
from .errors import ExportError, ModuleFormatError, ObserveError, TransientExportError
from .host.context import TraceContext, observe
from .host.wasi_stores import ENV_SWITCH as _ENV_SWITCH
from .host.wasi_stores import track_wasi_stores, untrack_wasi_stores
from .options import Options
from .sink import TraceSink
from .trace import Allocation, Log, Metric, Span, Trace
from .version import __version__

__all__ = [
    "observe", "TraceContext", "TraceSink", "Adapter", "ShutdownReport",
    "ObserveError", "ExportError", "TransientExportError", "ModuleFormatError",
    "Options", "Trace", "Span", "Allocation", "Log", "Metric", "__version__",
    "track_wasi_stores", "untrack_wasi_stores",
]

# The one side effect of the import, on purpose: the fast recorder needs to know
# which stores have WASI, and only watching Store.set_wasi can tell (see
# observe_sdk.host.wasi_stores; OBSERVE_SDK_TRACK_WASI=0 or untrack_wasi_stores() turn it off).
if _os.environ.get(_ENV_SWITCH, "1") != "0":
    track_wasi_stores()
