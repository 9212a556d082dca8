"""The Observe ABI: namespaces, import names, signatures, log levels, metric formats.

The ABI is described in ``docs/observe-abi.md``.  Everything here is data; linking lives in
:mod:`observe_sdk.host`.
"""
from __future__ import annotations

from enum import IntEnum

NS_INSTRUMENT = "dylibso:observe/instrument"
NS_API = "dylibso:observe/api"
NS_LEGACY = "dylibso_observe"
NAMESPACES = (NS_INSTRUMENT, NS_API, NS_LEGACY)

# Exports that Dylibso's compiler adds to instrumented modules.
VERSION_MAJOR_EXPORT = "wasm_instr_version_major"
VERSION_MINOR_EXPORT = "wasm_instr_version_minor"
SUPPORTED_VERSION_MAJOR = 0
SUPPORTED_VERSION_MINOR = 4

I32 = "i32"
I64 = "i64"

# (namespace, name) -> (parameter types, canonical operation)
IMPORTS: dict[tuple[str, str], tuple[tuple[str, ...], str]] = {
    (NS_INSTRUMENT, "enter"): ((I32,), "enter"),
    (NS_INSTRUMENT, "exit"): ((I32,), "exit"),
    (NS_INSTRUMENT, "memory-grow"): ((I32,), "memory-grow"),
    (NS_API, "span-enter"): ((I32, I32), "span-enter"),
    (NS_API, "span-exit"): ((), "span-exit"),
    (NS_API, "span-tags"): ((I32, I32), "span-tags"),
    (NS_API, "metric"): ((I32, I32, I32), "metric"),
    (NS_API, "log"): ((I32, I32, I32), "log"),
    (NS_LEGACY, "instrument_enter"): ((I32,), "enter"),
    (NS_LEGACY, "instrument_exit"): ((I32,), "exit"),
    (NS_LEGACY, "instrument_memory_grow"): ((I32,), "memory-grow"),
    (NS_LEGACY, "span_enter"): ((I64, I32), "span-enter"),
    (NS_LEGACY, "span_exit"): ((), "span-exit"),
    (NS_LEGACY, "span_tags"): ((I64, I32), "span-tags"),
    (NS_LEGACY, "metric"): ((I32, I64, I32), "metric"),
    (NS_LEGACY, "log"): ((I32, I64, I32), "log"),
}


class LogLevel(IntEnum):
    ERROR = 1
    WARN = 2
    INFO = 3
    DEBUG = 4
    TRACE = 5


class MetricFormat(IntEnum):
    STATSD = 1


class EventKind(IntEnum):
    """Kinds of raw events in the recorder's log (see :mod:`observe_sdk.host.recorder`)."""

    ENTER = 1        # arg: function index
    EXIT = 2         # arg: function index
    GROW = 3         # arg: pages
    SPAN_ENTER = 4   # arg: payload index (name)
    SPAN_EXIT = 5    # arg: 0
    TAGS = 6         # arg: payload index (text)
    METRIC = 7       # arg: payload index ((format, text))
    LOG = 8          # arg: payload index ((level, text))
    ERROR = 9        # arg: payload index (message) - a guest fault recorded on the trace
    END = 10         # arg: payload index (reason): guest trapped/exited; open spans close here
