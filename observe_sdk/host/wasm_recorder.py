"""The fast path: a recorder that is itself a small wasm module.

The guest's ``enter``/``exit``/``memory-grow`` imports resolve to the exports
of ``recorder.wat``, instantiated in the guest's store: a guest call costs a
wasm-to-wasm call and a native WASI clock read instead of a wasm-to-Python
call (about 2.3 us).  Records are 24 bytes, laid out as the flat
``(kind, arg, t_ns)`` triples of :class:`EventLog`, so Python takes them in
bulk - one ``memcpy`` into an ``array('q')`` per buffer - and never handles an
event on its own.  Short non-root function spans are dropped inside the
recorder (their allocations move up), so Python only sees the spans the
assembler would keep.

Python-side events (the Observe API, traps, faults) go through
:meth:`WasmEventLog.add`, which first drains the buffer (so the order of events
is kept) and tells the recorder about the event (so its span stack and its
event cap stay in step with the assembler's).
"""
from __future__ import annotations

import ctypes
import struct
import sys
import threading
import weakref
from array import array
from pathlib import Path
from typing import Any

import wasmtime

from ..abi import EventKind
from ..errors import RecorderUnavailable
from ..options import Options
from .recorder import EventLog, InstrumentFunction, time_ns
from .wasi_stores import store_has_wasi

WAT_PATH = Path(__file__).with_name("recorder.wat")
RECORD_BYTES = 24  # three little-endian i64: kind, arg, t_ns
WASI = "wasi_snapshot_preview1"

# the layout of recorder.wat's memory
BUFFER = 64
CAPACITY = 32_768  # records
STACK = BUFFER + CAPACITY * RECORD_BYTES
STACK_END = 2 * 1024 * 1024
FRAME = struct.Struct("<iiqq")  # function index (-1: manual span), unused, start, ENTER position
MAX_MANUAL_SCAN = 1024  # function frames a span-exit looks through for its manual frame (see below)


class _Control(ctypes.LittleEndianStructure):
    """The control block at the start of the recorder's memory."""

    _fields_ = [
        ("clock", ctypes.c_int64),
        ("len", ctypes.c_int32),
        ("capped", ctypes.c_int32),
        ("flushed", ctypes.c_int64),
        ("remaining", ctypes.c_int64),
        ("dropped", ctypes.c_int64),
        ("min_ns", ctypes.c_int64),
        ("sp", ctypes.c_int32),
        ("passthrough", ctypes.c_int32),
        ("cap", ctypes.c_int32),
    ]


# the recorder's WAT hard-codes these kinds
assert (EventKind.ENTER, EventKind.EXIT, EventKind.GROW) == (1, 2, 3)
assert (EventKind.SPAN_ENTER, EventKind.SPAN_EXIT, EventKind.END) == (4, 5, 10)

_BIG_ENDIAN = sys.byteorder == "big"
_I64_MAX = (1 << 63) - 1
K_SPAN_ENTER = int(EventKind.SPAN_ENTER)
K_SPAN_EXIT = int(EventKind.SPAN_EXIT)
K_END = int(EventKind.END)
K_ERROR = int(EventKind.ERROR)


_wasm_bytes: bytes | bytearray | None = None
_modules: weakref.WeakKeyDictionary[wasmtime.Engine, wasmtime.Module] = weakref.WeakKeyDictionary()
_modules_lock = threading.Lock()


def recorder_module(engine: wasmtime.Engine) -> wasmtime.Module:
    """The compiled recorder for ``engine`` (compiled once per engine)."""
    global _wasm_bytes
    with _modules_lock:
        module = _modules.get(engine)
        if module is None:
            if _wasm_bytes is None:
                _wasm_bytes = wasmtime.wat2wasm(WAT_PATH.read_text(encoding="utf-8"))
            module = _modules[engine] = wasmtime.Module(engine, bytes(_wasm_bytes))
        return module


class WasmEventLog(EventLog):
    """An :class:`EventLog` whose events live in an ``array('q')`` (24 bytes per event).

    An event added from Python first brings the recorder's buffer in, so that
    it comes after every automatic event recorded before it.
    """

    events: array[int]

    def __init__(self, recorder: WasmRecorder) -> None:
        super().__init__(recorder.max_events, array("q"))
        self._recorder: WasmRecorder | None = recorder

    def add(self, kind: int, payload: Any, t_ns: int | None = None) -> None:
        recorder = self._recorder
        if recorder is None:  # handed over already: a plain log
            if len(self.events) >= 3 * self.max_events and kind != K_END:
                self.dropped += 1
                return
        elif not recorder._host_event(kind):
            return  # over the event cap; the recorder counted it
        self.payloads.append(payload)
        self.events.extend((kind, len(self.payloads) - 1, time_ns() if t_ns is None else t_ns))


class WasmRecorder:
    """Records ``enter``/``exit``/``memory-grow`` inside wasm, in the guest's store."""

    name = "wasm"

    @classmethod
    def create(cls, options: Options, store: wasmtime.Store | None, linker: wasmtime.Linker) -> WasmRecorder:
        """A recorder in ``store``, timed by the linker's WASI clock; or RecorderUnavailable."""
        if store is None:
            raise RecorderUnavailable("no store was given (pass store= to start())")
        has_wasi = store_has_wasi(store)
        if has_wasi is False:
            raise RecorderUnavailable("the store has no WASI context (call store.set_wasi())")
        if has_wasi is None and options.recorder != "wasm":
            raise RecorderUnavailable("whether the store has WASI is unknown: it was made before observe_sdk was "
                                      "imported or while store tracking was off (see observe_sdk.host.wasi_stores; "
                                      "pass recorder='wasm' if it has WASI)")
        try:
            clock = linker.get(store, WASI, "clock_time_get")
        except wasmtime.WasmtimeError:
            raise RecorderUnavailable("the linker has no WASI (call linker.define_wasi())") from None
        if not isinstance(clock, wasmtime.Func):
            raise RecorderUnavailable(f"the linker's {WASI}::clock_time_get is not a function")
        return cls(options, store, clock)

    def __init__(self, options: Options, store: wasmtime.Store, clock: wasmtime.Func) -> None:
        """Instantiate the recorder in ``store``; ``clock`` is WASI's ``clock_time_get``."""
        self.options = options
        self.max_events = options.max_events
        self._store = store
        self._failure: str | None = None
        # wasmtime-py keeps host callbacks in a global table until their store
        # is freed: the callback must not keep the recorder (and so the store) alive
        this = weakref.ref(self)

        def on_full(n: int) -> None:
            recorder = this()
            if recorder is not None:
                recorder._on_full(n)

        flush = wasmtime.Func(store, wasmtime.FuncType([wasmtime.ValType.i32()], []), on_full)
        try:
            instance = wasmtime.Instance(store, recorder_module(store.engine), [clock, flush])
            exports = instance.exports(store)
            now = exports["now"]
            assert isinstance(now, wasmtime.Func)
            t0 = now(store)
        except (wasmtime.WasmtimeError, wasmtime.Trap) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise RecorderUnavailable(f"the recorder cannot run in this store: {first}") from None
        if abs(t0 - time_ns()) > 60_000_000_000:
            raise RecorderUnavailable("the linker's clock_time_get is not the host's wall clock")
        self._exports: dict[str, InstrumentFunction] = {}
        for op in ("enter", "exit", "memory-grow"):
            func = exports[op]
            assert isinstance(func, wasmtime.Func)
            self._exports[op] = func
        memory = exports["memory"]
        assert isinstance(memory, wasmtime.Memory) and memory.data_len(store) == STACK_END
        # the memory never grows, so it never moves: map it once
        base = ctypes.addressof(memory.data_ptr(store).contents)
        self._memory: wasmtime.Memory | bytearray = memory  # keeps the mapping's owner alive with us
        self._ctl = _Control.from_address(base)
        self._ctl.cap = CAPACITY
        self._view = memoryview((ctypes.c_char * STACK_END).from_address(base)).cast("B")
        self._begin()

    # -- the recorder interface (see PythonRecorder) ---------------------
    def instrument_functions(self) -> dict[str, InstrumentFunction]:
        """The recorder's exports for the three instrument imports, by canonical operation."""
        return dict(self._exports)

    def sync(self) -> None:
        """Bring the buffered records into ``log``; open spans can no longer be dropped here."""
        try:
            self._store.ptr()
        except ValueError:  # the store was closed: its memory (our buffer) is gone
            self._detach()
        ctl = self._ctl
        n = ctl.len
        if n:
            self._take_records(n)
            ctl.flushed += n
            ctl.len = 0

    def take(self) -> EventLog:
        """Hand over the current log and begin a new one."""
        self.sync()
        log = self.log
        log._recorder = None
        log.dropped += self._ctl.dropped
        if self._failure:
            log.add(K_ERROR, self._failure)
        self._begin()
        return log

    # -- internals ---------------------------------------------------------
    def _begin(self) -> None:
        """A new trace: nothing open, nothing dropped, the event cap afresh."""
        ctl = self._ctl
        ctl.sp = STACK
        ctl.passthrough = 0
        ctl.capped = 0
        ctl.dropped = 0
        # the control block holds i64s: larger settings mean "no limit" there too
        ctl.remaining = min(self.max_events, _I64_MAX)
        ctl.min_ns = min(self.options.min_span_duration_ns, _I64_MAX)
        self._failure = None
        self.log = WasmEventLog(self)

    def _detach(self) -> None:
        """The store is closed: keep working on a private copy of the control block, with an empty buffer."""
        if isinstance(self._memory, bytearray):
            return
        self._failure = "internal: the store was closed before the trace finished; events it still buffered are lost"
        self._memory = private = bytearray(STACK_END)
        self._view = memoryview(private)
        ctl = self._ctl = _Control.from_buffer(private)
        ctl.cap = CAPACITY
        ctl.sp = STACK
        ctl.remaining = min(self.max_events, _I64_MAX)
        ctl.min_ns = min(self.options.min_span_duration_ns, _I64_MAX)

    def _host_event(self, kind: int) -> bool:
        """An event recorded from Python: drain first, apply the cap, keep the stack in step."""
        self.sync()
        ctl = self._ctl
        if kind == K_END and (ctl.capped or ctl.remaining <= 0):
            ctl.sp = STACK  # past the cap, END is still recorded (see EventLog.add)
            return True
        if ctl.capped or ctl.remaining <= 0:
            ctl.capped = 1
            ctl.dropped += 1
            return False
        ctl.remaining -= 1
        if ctl.passthrough:
            return True
        if kind == K_SPAN_ENTER:
            sp = ctl.sp
            if sp + FRAME.size > STACK_END:
                ctl.passthrough = 1
                ctl.sp = STACK
            else:
                FRAME.pack_into(self._view, sp, -1, 0, 0, -1)
                ctl.sp = sp + FRAME.size
        elif kind == K_SPAN_EXIT:
            self._end_innermost_manual_frame()
        elif kind == K_END:
            ctl.sp = STACK
        return True

    def _end_innermost_manual_frame(self) -> None:
        """As the assembler does on span-exit: the function frames above it move down one.

        A manual frame under more than :data:`MAX_MANUAL_SCAN` function frames turns the
        recorder passthrough instead (the assembler pairs everything then): a guest could
        otherwise make each span-exit scan a deep stack from Python."""
        ctl = self._ctl
        view, sp = self._view, ctl.sp
        at = sp - FRAME.size
        bottom = max(STACK, sp - (MAX_MANUAL_SCAN + 1) * FRAME.size)
        while at >= bottom and FRAME.unpack_from(view, at)[0] >= 0:
            at -= FRAME.size
        if at < bottom and bottom > STACK:
            ctl.passthrough = 1
            ctl.sp = STACK
        elif at >= STACK:
            view[at:sp - FRAME.size] = view[at + FRAME.size:sp]
            ctl.sp = sp - FRAME.size

    def _take_records(self, n: int) -> None:
        raw = self._view[BUFFER:BUFFER + n * RECORD_BYTES]
        events = self.log.events
        if _BIG_ENDIAN:  # pragma: no cover - wasm memory is little-endian
            chunk = array("q", raw.tobytes())
            chunk.byteswap()
            events.extend(chunk)
        else:
            events.frombytes(raw)

    def _on_full(self, n: int) -> None:
        """Called by the recorder when its buffer is full (it resets the buffer after)."""
        try:
            self._take_records(n)
        except Exception as exc:  # never let a host problem trap the guest
            self._failure = f"internal: the wasm recorder lost {n} event(s): {exc}"


__all__ = ["WasmRecorder", "RecorderUnavailable", "WasmEventLog", "recorder_module"]
