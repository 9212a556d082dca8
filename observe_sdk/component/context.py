"""ComponentTraceContext: a component's wasi:otel calls, one trace per invocation, handed to a sink."""
from __future__ import annotations

import logging
from typing import Any

import wasmtime
from wasmtime import component

from ..adapters.traceinfo import capture_host_parent, host_parent
from ..host.recorder import time_ns
from ..host.traps import describe_trap
from ..options import Options
from ..sink import TraceSink as TraceSink
from ..trace import Span, Trace, new_span_id, new_trace_id
from .collector import OtelCollector
from .linking import link_wasi_otel

log = logging.getLogger("observe_sdk")


class ComponentTraceContext:
    """Hosts wasi:otel for the components instantiated from ``linker``.

    Each :meth:`call` is one trace: the host's current OpenTelemetry span (or a
    ``traceparent`` set with :meth:`set_metadata`) is what the guest's
    ``current-span-context`` returns, so the component's spans join the host's
    trace; with no host span the context opens an invocation span named after
    the export, and the component's spans nest under it.  The finished trace
    goes to ``sink`` like a core module's.  One invocation at a time.
    """

    def __init__(self, sink: TraceSink, linker: component.Linker, options: Options | None = None,
                 *, module_name: str = "") -> None:
        self.sink = sink
        self.options = options or Options()
        self.module_name = module_name
        self._metadata: dict[str, Any] = {}
        self._trace_id = new_trace_id()
        self._collector = OtelCollector(self._trace_id.hex(), new_span_id(), self.options.max_events)
        self.last_trace: Trace | None = None
        link_wasi_otel(linker, self)

    def current_collector(self) -> OtelCollector:
        return self._collector

    def set_trace_id(self, trace_id: str | bytes) -> None:
        """Use this 128-bit id (32 hex digits or 16 bytes) for the next trace (when no host span sets it)."""
        raw = bytes.fromhex(trace_id) if isinstance(trace_id, str) else bytes(trace_id)
        if len(raw) != 16 or not any(raw):
            raise ValueError(f"a trace id is 16 non-zero bytes (32 hex digits), not {trace_id!r}")
        self._trace_id = raw

    def set_metadata(self, metadata: dict[str, Any] | None = None, **more: Any) -> None:
        """Adapter metadata for the next trace (``traceparent=...`` makes the guest join that trace); merged."""
        self._metadata.update(metadata or {}, **more)

    def call(self, store: wasmtime.Store, func: component.Func, *args: Any, name: str = "call") -> Any:
        """Invoke a component export as one trace, named ``name``; a trap is recorded, then re-raised."""
        metadata, self._metadata = self._metadata, {}
        capture_host_parent(metadata)
        parent = host_parent(Trace(b"", metadata=metadata))
        trace_id = parent.trace_id_bytes if parent else self._trace_id
        self._trace_id = new_trace_id()
        top_id = parent.span_id if parent else new_span_id()
        self._collector = OtelCollector(trace_id.hex(), top_id, self.options.max_events)
        start = time_ns()
        error: str | None = None
        try:
            result = func(store, *args)
            func.post_return(store)
            return result
        except wasmtime.ExitTrap as exc:
            error = f"exit code {exc.code}" if exc.code else None
            raise
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            error = f"trap: {describe_trap(exc)}"
            raise
        finally:
            self._finish(name, trace_id, metadata, start, error, top_id if parent is None else None)

    def _finish(self, name: str, trace_id: bytes, metadata: dict[str, Any], start: int, error: str | None,
                invocation_span_id: int | None) -> None:
        end = time_ns()
        trace = Trace(trace_id, metadata=metadata, module_name=self.module_name, start_ns=start, end_ns=end)
        top = None
        if invocation_span_id is not None:
            top = Span(name, name, 0, start, end, True, [], [], error, invocation_span_id, 0)
        self._collector.to_trace(trace, top, error)
        if trace.dropped_events:
            log.warning("trace %s: event cap of %d reached; %d wasi:otel call(s) dropped",
                        trace.trace_id_hex, self.options.max_events, trace.dropped_events)
        if trace.roots or trace.errors:
            self.sink.submit(trace)
        self.last_trace = trace

