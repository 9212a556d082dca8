"""TraceContext: one observed module, from its linker to the sink its traces go to.

The data flows one way: the guest calls the recorder (:mod:`.recorder`,
:mod:`.wasm_recorder`) and the Observe API (:mod:`.linking`), which append raw
events to a log; :meth:`TraceContext.finish` assembles the log into a
:class:`~observe_sdk.trace.Trace` (:mod:`observe_sdk.assemble`) and hands it to
the :class:`~observe_sdk.sink.TraceSink`.  :func:`observe` is the entry point.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

import wasmtime

from ..abi import NS_INSTRUMENT, NS_LEGACY, SUPPORTED_VERSION_MAJOR, SUPPORTED_VERSION_MINOR, EventKind
from ..assemble import assemble
from ..errors import RecorderUnavailable
from ..names import FunctionNames, read_module_info
from ..options import Options
from ..sink import TraceSink, sink_name
from ..trace import Trace, new_trace_id
from .linking import link_observe_abi
from .recorder import PythonRecorder, Recorder, time_ns
from .signals import guard_trap_handlers
from .traps import describe_trap
from .wasm_recorder import WasmRecorder

log = logging.getLogger("observe_sdk")

K_ERROR = int(EventKind.ERROR)
K_END = int(EventKind.END)

_warned_once: set[str] = set()
_warned_lock = threading.Lock()


def warn_once(key: str, message: str, *args: Any) -> None:
    """Log a warning the first time ``key`` is seen in this process."""
    with _warned_lock:
        if key in _warned_once:
            return
        _warned_once.add(key)
    log.warning(message, *args)


def choose_recorder(options: Options, store: wasmtime.Store | None, linker: wasmtime.Linker) -> Recorder:
    """The recorder ``options.recorder`` asks for: ``auto`` takes the in-wasm one when it can work."""
    if options.recorder == "python":
        return PythonRecorder(options.max_events)
    try:
        return WasmRecorder.create(options, store, linker)
    except RecorderUnavailable as exc:
        if options.recorder == "wasm":
            raise ValueError(f"recorder='wasm' cannot work here: {exc}") from None
        warn_once(f"fallback:{exc}", "observe_sdk: using the Python recorder (slower): %s", exc)
        return PythonRecorder(options.max_events)


def observe(
    linker: wasmtime.Linker,
    wasm_bytes: bytes,
    sink: TraceSink,
    options: Options | None = None,
    *,
    store: wasmtime.Store | None = None,
) -> TraceContext:
    """Link the Observe ABI into ``linker`` for the module ``wasm_bytes``; its traces go to ``sink``.

    With ``store=`` (having WASI, and ``linker.define_wasi()`` done) the events
    are recorded in wasm, without a Python call per function call.
    ``adapter.start(linker, wasm_bytes, options, store=store)`` is the same call.
    """
    return TraceContext(sink, linker, wasm_bytes, options, store=store)


class TraceContext:
    """Links the Observe ABI into a linker and collects what one module reports.

    Made by :func:`observe` (or its shortcut :meth:`Adapter.start`).
    :meth:`finish` assembles the trace recorded so far, hands it to the sink,
    and begins a new one.  As a context manager it finishes on exit, recording
    a trap or exit first.
    """

    def __init__(
        self,
        sink: TraceSink,
        linker: wasmtime.Linker,
        wasm_bytes: bytes,
        options: Options | None = None,
        *,
        store: wasmtime.Store | None = None,
    ) -> None:
        self.sink = sink
        self.options = options or Options()
        if store is not None:
            if store.engine is not linker.engine:
                # wasmtime aborts the process on such a pair: refuse it here instead
                raise ValueError("store= and the linker were made with different wasmtime Engines")
            try:
                store.ptr()
            except ValueError:
                raise ValueError("store= is closed") from None
        guard_trap_handlers()
        self.module = read_module_info(wasm_bytes)
        self.names = FunctionNames(self.module.span_names)
        self._store = store
        self._lock = threading.Lock()
        self._faults_logged: set[str] = set()
        if self.module.imports_namespace(NS_LEGACY):
            warn_once(f"legacy:{id(wasm_bytes)}",
                      "module imports the deprecated '%s' namespace; use '%s' and 'dylibso:observe/api'",
                      NS_LEGACY, NS_INSTRUMENT)
        version = self.module.instrumenter_version
        if version is not None:
            major, minor = version
            if major != SUPPORTED_VERSION_MAJOR:
                warn_once(f"major:{major}", "module was instrumented for Observe ABI version %d.%d; "
                          "this SDK supports %d.x (running it anyway)", major, minor, SUPPORTED_VERSION_MAJOR)
            elif minor < SUPPORTED_VERSION_MINOR:
                warn_once(f"minor:{minor}", "module was instrumented by an older instrumenter (%d.%d < %d.%d); "
                          "consider re-instrumenting it",
                          major, minor, SUPPORTED_VERSION_MAJOR, SUPPORTED_VERSION_MINOR)
        for ns, name in self.module.unknown_observe_imports:
            log.warning("module imports %s::%s, which is not part of the Observe ABI", ns, name)
        self._recorder = choose_recorder(self.options, store, linker)
        link_observe_abi(linker, self)
        self._new_trace()

    # -- what linking reads (host.linking.ObservedModule) ---------------
    @property
    def recorder(self) -> Recorder:
        """The recorder of this module's events."""
        return self._recorder

    @property
    def store(self) -> wasmtime.Store | None:
        """The store given as ``store=`` (None when none was)."""
        return self._store

    @property
    def adapter(self) -> TraceSink:
        """The sink, under the name users of ``adapter.start`` know."""
        return self.sink

    # -- configuration -------------------------------------------------
    @property
    def recorder_name(self) -> str:
        return self._recorder.name

    def set_trace_id(self, trace_id: str | bytes | int) -> None:
        """Use this 128-bit id (32 hex digits, 16 bytes or an int) for the current trace."""
        if isinstance(trace_id, int):
            raw = trace_id.to_bytes(16, "big") if 0 < trace_id < 1 << 128 else b""
        elif isinstance(trace_id, str):
            try:
                raw = bytes.fromhex(trace_id)
            except ValueError:
                raw = b""
        else:
            raw = bytes(trace_id)
        if len(raw) != 16 or not any(raw):
            raise ValueError(f"a trace id is 16 non-zero bytes (32 hex digits), not {trace_id!r}")
        self._trace_id = raw

    @property
    def trace_id(self) -> bytes:
        return self._trace_id

    def set_metadata(self, metadata: dict[str, Any] | None = None, **more: Any) -> None:
        """Adapter metadata for the current trace (e.g. ``datadog={...}``); merged."""
        if metadata:
            self._metadata.update(metadata)
        self._metadata.update(more)

    # -- what the host tells us -----------------------------------------
    def record_trap(self, exc: BaseException) -> None:
        """The guest trapped or exited: close its open spans now (as errors unless exit 0)."""
        self._recorder.sync()
        code = getattr(exc, "code", None)
        if isinstance(exc, wasmtime.ExitTrap):
            reason, is_error = f"exit code {code}", code != 0
        else:
            reason, is_error = f"trap: {describe_trap(exc)}", True
        self._recorder.log.add(K_END, (reason, is_error))

    def record_fault(self, op: str, message: str) -> None:
        """Record a guest fault (of operation ``op``) on the trace; log it once per kind."""
        self._recorder.log.add(K_ERROR, message)
        self._log_fault_once(op, message)

    def _log_fault_once(self, op: str, message: str) -> None:
        if op not in self._faults_logged:
            self._faults_logged.add(op)
            log.warning("guest fault (recorded on the trace; further %s faults counted there): %s", op, message)

    # -- finishing -------------------------------------------------------
    def _new_trace(self) -> None:
        self._trace_id = new_trace_id()
        self._metadata: dict[str, Any] = {}
        self._started_ns = time_ns()

    def finish(self) -> Trace:
        """Assemble the trace so far, submit it to the sink, and begin a new one."""
        with self._lock:
            events = self._recorder.take()
            trace = assemble(
                events,
                self.names,
                min_span_duration_ns=self.options.min_span_duration_ns,
                trace_id=self._trace_id,
                metadata=self._metadata,
            )
            trace.module_name = self.module.module_name or self.options.module_name
            trace.start_ns = min(self._started_ns, trace.start_ns or self._started_ns)
            trace.end_ns = max(time_ns(), trace.end_ns)
            self._new_trace()
        for message in trace.errors:
            if message.startswith("span-exit"):
                self._log_fault_once("span-exit", message)
        if trace.dropped_events:
            log.warning("trace %s: event cap of %d reached; %d event(s) dropped",
                        trace.trace_id_hex, self.options.max_events, trace.dropped_events)
        if trace.roots or trace.errors or trace.dropped_events:
            self.sink.submit(trace)  # an empty trace (nothing observed) is not sent anywhere
        return trace

    def _guest_invoked(self) -> None:
        try:
            self.sink.on_guest_invoked(self._metadata)
        except Exception:  # telemetry never breaks the host
            log.exception("adapter %s: on_guest_invoked failed", sink_name(self.sink))

    def __enter__(self) -> TraceContext:
        self._guest_invoked()
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if isinstance(exc, (wasmtime.Trap, wasmtime.WasmtimeError)):
            self.record_trap(exc)
        self.finish()

    def call(self, store: wasmtime.Store, func: wasmtime.Func, *args: Any) -> Any:
        """Call a guest export, recording a trap or exit (then re-raising it)."""
        self._guest_invoked()
        try:
            return func(store, *args)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            self.record_trap(exc)
            raise
