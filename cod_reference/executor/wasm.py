"""The Wasm executor: runs one execution of a Wasm job in wasmtime with WASI.

One :class:`WasmExecutor` per compute node holds one ``wasmtime.Engine`` (epoch
interruption on) and a compile-once module cache; :meth:`WasmExecutor.run` may be
called from several threads at once, each execution getting its own ``Store``,
``Linker`` and WASI context:

- argv is ``[argv0, *args]``, the environment is exactly ``env``, stdin is empty;
- mounts become preopened directories (read-only or writable, see :mod:`.mounts`);
- stdout and stderr go to files, and the first ``output_head_bytes`` of each come back;
- import modules are instantiated first, in order, and defined under their names;
- a WASI reactor's ``_initialize`` runs before the entrypoint; a normal return is exit 0,
  ``proc_exit(n)`` is exit ``n``;
- ``memory_limit_bytes`` caps all the guest's linear memories and tables together
  (:mod:`.limits`); streams are cut on disk at ``max_output_bytes``; the timeout and the
  cancel event stop the guest by epoch interruption (:mod:`.interrupt`).

Telemetry: spans ``compile`` (one per module, with the cache outcome), ``instantiate``
and ``call`` are children of the span current on the calling thread (the compute node's
execution span; a ``wasm execution`` root span is made when there is none). Modules that
import the Observe ABI run with the Observe SDK attached through
:class:`observe_sdk.adapters.opentelemetry.OpenTelemetryAdapter`, so the guest's own
function spans appear under ``call`` (or ``instantiate``, for a start function), in the
same trace; a trap closes them as errors. With ``guest_span_sink`` (the trace store,
forwarding) or ``guest_trace_exporter`` (an OTLP collector) the guest's spans of one execution
go there as one unit instead, never through the tracer provider's span queue, and the adapter
gives only the guest's logs and metrics.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import wasmtime
from opentelemetry import metrics, trace
from opentelemetry.trace import Status, StatusCode

from observe_sdk.abi import NAMESPACES as OBSERVE_NAMESPACES
from observe_sdk.component import is_component
from observe_sdk.host.traps import describe_trap, innermost_cause

from .cache import CompiledModule, InvalidModule, ModuleCache
from .component import ComponentCache, execute_component
from .fs import tree_size
from .interrupt import Interrupter, Watchdog
from .limits import StoreBudget, store_budget
from .mounts import MountError, PreparedMounts, prepare_mounts
from .output import FileOutput, MemoryOutput, open_output
from .sleep import Interrupted, define_interruptible_sleep
from .types import ExecutionOutcome, ExecutionRequest

__all__ = ["DEFAULT_ARGV0", "WasmExecutor"]

Output = FileOutput | MemoryOutput

log = logging.getLogger("cod_reference.executor")
guest_log = logging.getLogger("cod_reference.guest")
"""The guests' own log lines (the Observe API's ``log``), one record each, saying whose they are."""

DEFAULT_ARGV0 = "main.wasm"
DEFAULT_MAX_OUTPUT_BYTES = 1 << 30   # per stream, as Bacalhau caps its stdout/stderr files
ENTRY_MODULE_NAME = "main"
WASM_PAGE = 65536
_RESERVED_MODULE_NAMES = frozenset(("wasi_snapshot_preview1", "wasi_unstable", *OBSERVE_NAMESPACES))
# what guests print when an allocation fails (Rust's alloc error handler, Go, C programs)
_OOM_HINTS = ("memory allocation of", "out of memory", "cannot allocate memory")
# unless the operator chose its own Observe options, an execution's memory limit buys one
# recorded guest event per 4 KiB: the host keeps ~220 bytes an event in the executor and
# ~1.4 KiB once the node has made it a span, outside the guest's memory (a 256 MB job
# records up to 62,500 events, a 64 MiB job 16,384)
LIMIT_BYTES_PER_EVENT = 4096
MIN_GUEST_EVENTS = 10_000
_DISK_LIMIT = "disk limit"
_DISK_POLL_S = 1.0
# what wasmtime says when instantiation needs more than the store limits allow
_LIMIT_SIGNS = ("exceeds memory limits", "exceeds table limits", "resource limit exceeded")

# span attribute names
ATTR_EXECUTION_ID = "cod.execution.id"
ATTR_MODULE_NAME = "code.namespace"
ATTR_FUNCTION = "code.function"
ATTR_MODULE_SHA256 = "wasm.module.sha256"
ATTR_MODULE_SIZE = "wasm.module.size"
ATTR_MODULE_CACHE = "wasm.module.cache"       # "memory", "disk" or "compiled"
ATTR_EXIT_CODE = "process.exit.code"
ATTR_ERROR_KIND = "cod.error.kind"


class _GuestStopped(Exception):
    """What the Observe SDK is told when the guest stopped on an error: our one-line summary
    (wasmtime's own message starts with a backtrace header)."""

    def __init__(self, message: str) -> None:
        super().__init__(message.removeprefix("trap: "))


class _Failure(Exception):
    """Ends an execution early with an error outcome."""

    def __init__(self, kind: str, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.exit_code = exit_code


@dataclass
class _Run:
    """The state of one execution while it runs."""

    request: ExecutionRequest
    interrupter: Interrupter
    stderr: Output
    store: wasmtime.Store | None = None
    linker: wasmtime.Linker | None = None
    instances: list[wasmtime.Instance] = field(default_factory=list)
    observed: list[Any] = field(default_factory=list)   # observe_sdk TraceContexts
    budget: StoreBudget | None = None                    # the store's limits, when memory is capped
    execution_span: Any = None                           # the span of the whole execution (the node's)


class WasmExecutor:
    """Runs :class:`ExecutionRequest` s; one per compute node, shared by its worker threads."""

    def __init__(
        self,
        *,
        cache_dir: str | None = None,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        argv0: str = DEFAULT_ARGV0,
        observe_options: Any = None,
        max_cached_modules: int = 64,
        trace_flush_timeout_s: float = 2.0,
        max_output_bytes: int | None = DEFAULT_MAX_OUTPUT_BYTES,
        guest_span_sink: Callable[[list[dict[str, Any]]], None] | None = None,
        max_guest_spans: int | None = None,
        guest_trace_exporter: Callable[[Any, int, str], int] | None = None,
    ) -> None:
        """
        :param cache_dir: where compiled modules are kept across restarts (None: memory only).
        :param tracer_provider: OpenTelemetry tracer provider (None: the global one).
        :param meter_provider: OpenTelemetry meter provider (None: the global one).
        :param argv0: the program name the guest sees as ``argv[0]``.
        :param observe_options: :class:`observe_sdk.Options` for observed guests.
        :param trace_flush_timeout_s: how long :meth:`run` waits, at most, for the guest's
            spans to reach the tracer provider before returning.
        :param max_output_bytes: a guest whose stdout or stderr grows past this is stopped
            (error kind ``"output"``), so that it cannot fill the node's disk (None: no cap).
        :param guest_span_sink: where the guest spans of one execution go, as one unit of span
            records, parents first (:func:`cod_reference.telemetry.guest_span_records`), instead
            of through the tracer provider's span queue, which drops spans when it is full.
        :param max_guest_spans: spans of one execution kept (with ``guest_span_sink`` or
            ``guest_trace_exporter``; None: :data:`cod_reference.telemetry.DEFAULT_MAX_GUEST_SPANS`);
            the number dropped past it goes on the execution's span, the ``call`` span and the
            guest's first root span.
        :param guest_trace_exporter: where the guest's finished trace of one execution goes when
            spans go to an OTLP collector, instead of ``guest_span_sink`` and of the tracer
            provider's span queue: called with the trace, ``max_guest_spans`` and the execution's
            id, it returns how many spans that cap dropped
            (:meth:`cod_reference.guest_otlp.GuestSpanExporter.export`).
        """
        config = wasmtime.Config()
        config.epoch_interruption = True
        # proposals whose allocations the store limits do not cover the way a job's memory
        # limit needs (GC heaps, shared memories); no WASI guest we run uses them
        config.wasm_gc = False
        config.wasm_threads = False
        self.engine = wasmtime.Engine(config)
        self._watchdog = Watchdog(self.engine)
        self.modules = ModuleCache(self.engine, cache_dir=cache_dir, max_entries=max_cached_modules)
        self.components = ComponentCache(self.engine, cache_dir)
        self.argv0 = argv0
        self.max_output_bytes = max_output_bytes
        self.trace_flush_timeout_s = trace_flush_timeout_s
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self._tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer("cod_reference.executor")
        meter = (meter_provider or metrics.get_meter_provider()).get_meter("cod_reference.executor")
        self._active = meter.create_up_down_counter(
            "wasm_active_executions", unit="{execution}", description="Wasm executions running now")
        self._module_loads = meter.create_counter(
            "wasm_module_loads", unit="{module}",
            description="Modules prepared for an execution, by cache outcome (memory, disk, compiled)")
        self._durations = meter.create_histogram(
            "wasm_execution_duration", unit="s", description="Wall time of Wasm executions, by outcome")
        self._observe_options = observe_options
        self._guest_span_sink = guest_span_sink
        self._guest_trace_exporter = guest_trace_exporter
        self.max_guest_spans = max_guest_spans
        self._adapter: Any = None
        self._adapter_lock = threading.Lock()
        self._closed = False

    # -- public ----------------------------------------------------------------
    def run(self, request: ExecutionRequest, cancel: threading.Event | None = None) -> ExecutionOutcome:
        """Run ``request`` to its end (exit, trap, timeout, cancellation) and say what happened.

        Blocking; never raises for anything the request or the guest did.
        """
        started = time.perf_counter()
        self._active.add(1)
        try:
            outcome = self._supervise(request, cancel, started)
        finally:
            self._active.add(-1)
        self._durations.record(outcome.duration_s, {"outcome": outcome.error_kind or "exit"})
        return outcome

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the guests' traces handed over so far are exported."""
        adapter = self._adapter
        return True if adapter is None else adapter.flush(timeout)

    def close(self, timeout: float | None = 5.0) -> None:
        """Flush the guests' traces and stop the executor's threads."""
        self._closed = True
        self._watchdog.close()
        with self._adapter_lock:
            adapter, self._adapter = self._adapter, None
        if adapter is not None:
            adapter.shutdown(timeout)

    def __enter__(self) -> WasmExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one execution -----------------------------------------------------------
    def _supervise(self, request: ExecutionRequest, cancel: threading.Event | None, started: float
                   ) -> ExecutionOutcome:
        """Outputs, mounts and the interrupter around the guest; every failure becomes an outcome."""
        error = _validate(request)
        if error:
            return _outcome(request, None, None, None, "request", error, started)
        mounts: PreparedMounts | None = None
        stdout: Output | None = None
        stderr: Output | None = None
        exit_code: int | None = None
        kind: str | None = None
        message: str | None = None
        try:
            stdout = open_output(request.stdout_path, request.output_head_bytes)
            stderr = open_output(request.stderr_path, request.output_head_bytes)
            mounts = prepare_mounts(request.mounts)
            limit = _limit_check(self.max_output_bytes, stdout, stderr, request.max_written_bytes,
                                 [p.host_dir for p in mounts.preopens if p.writable])
            with self._root_span(request), Interrupter(self._watchdog, request.timeout_s, cancel, limit) as intr:
                run = _Run(request, intr, stderr, execution_span=trace.get_current_span())
                try:
                    exit_code = self._instantiate_and_call(run, stdout, stderr, mounts)
                except _Failure as failure:
                    kind, message, exit_code = failure.kind, failure.message, failure.exit_code
                finally:
                    if run.store is not None:
                        run.store.close()
                    if run.linker is not None:
                        run.linker.close()
        except MountError as exc:
            kind, message = "request", f"invalid mount: {exc}"
        except OSError as exc:
            kind, message = "request", f"cannot prepare the execution: {exc}"
        except Exception as exc:  # a bug of ours must fail the execution, not the node
            log.exception("execution %s: internal error", request.execution_id)
            kind, message, exit_code = "internal", f"internal error: {type(exc).__name__}: {exc}", None
        finally:
            if mounts is not None:
                try:
                    mounts.finish()
                except (OSError, MountError) as exc:
                    log.error("execution %s: cannot copy a writable file mount back: %s",
                              request.execution_id, exc)
                    if kind is None:
                        kind, message = "request", f"cannot copy a writable file mount back: {exc}"
            over = self._cap_outputs(stdout, stderr)
            if over and kind is None:
                kind, message, exit_code = "output", over, None
        try:
            return _outcome(request, exit_code, stdout, stderr, kind, message, started)
        finally:
            if self._adapter is not None and self.trace_flush_timeout_s > 0:
                self._adapter.flush(self.trace_flush_timeout_s)

    def _cap_outputs(self, stdout: Output | None, stderr: Output | None) -> str | None:
        """Cut streams that grew past the cap on disk (the guest may write on for a moment
        before it is stopped); the message of the first one cut."""
        cap, first = self.max_output_bytes, None
        if cap is None:
            return None
        for stream, output in (("stdout", stdout), ("stderr", stderr)):
            if output is not None and output.size() > cap:
                output.cap(cap)
                first = first or f"output limit of {_format_bytes(cap)} exceeded on {stream}"
        return first

    def _instantiate_and_call(self, run: _Run, stdout: Output, stderr: Output, mounts: PreparedMounts) -> int:
        request = run.request
        if is_component(bytes(request.module[:8])):
            return execute_component(self, run, stdout, stderr, mounts)
        imports = [(name, self._compile(request, name, data)) for name, data in request.import_modules]
        entry = self._compile(request, ENTRY_MODULE_NAME, request.module)
        self._check_interrupt(run)
        if any(_observed(compiled) for compiled in (entry, *(c for _, c in imports))):
            # load the Observe SDK before the store exists: it notes set_wasi, which its fast recorder needs
            self._observe_adapter()

        budget = None
        if request.memory_limit_bytes is not None:
            modules = [entry, *(c for _, c in imports)]
            budget = store_budget(request.memory_limit_bytes, [c.wasm for c in modules],
                                  host_instances=sum(1 for c in modules if _observed(c)))
        store = self._guest_store(run, budget, stdout, stderr, mounts)
        linker = run.linker = wasmtime.Linker(self.engine)
        linker.allow_shadowing = True
        linker.define_wasi()
        define_interruptible_sleep(linker, store, run.interrupter)

        with self._span("instantiate", request, {ATTR_MODULE_NAME: ENTRY_MODULE_NAME}) as span:
            try:
                for name, compiled in imports:
                    instance = self._instantiate(run, compiled, name)
                    linker.define_instance(store, name, instance)
                instance = self._instantiate(run, entry, ENTRY_MODULE_NAME)
            except _Failure as failure:
                self._finish_observed(run)
                _mark_failed(span, failure)
                raise

        with self._span("call", request, {ATTR_FUNCTION: request.entrypoint}) as span:
            try:
                code = self._call(run, instance)
            except _Failure as failure:
                _mark_failed(span, failure)
                raise
            finally:
                self._finish_observed(run)  # while `call` is current: the guest's roots go under it
            span.set_attribute(ATTR_EXIT_CODE, code)
            if code != 0:
                span.set_status(Status(StatusCode.ERROR, f"exit code {code}"))
            return code

    def _guest_store(self, run: _Run, budget: StoreBudget | None, stdout: Output, stderr: Output,
                     mounts: PreparedMounts) -> wasmtime.Store:
        """The execution's store: its limits, the interrupter, and WASI (argv, env, streams, mounts)."""
        request = run.request
        store = run.store = wasmtime.Store(self.engine)
        run.budget = budget
        if budget is not None:
            store.set_limits(**budget.as_kwargs())
        run.interrupter.attach(store)
        wasi = wasmtime.WasiConfig()
        wasi.argv = [self.argv0, *request.args]
        wasi.env = list(request.env.items())
        stdout.attach(wasi, "stdout")
        stderr.attach(wasi, "stderr")
        mounts.apply(wasi)
        store.set_wasi(wasi)
        return store

    def _compile(self, request: ExecutionRequest, name: str, data: bytes) -> CompiledModule:
        with self._span("compile", request, {ATTR_MODULE_NAME: name}) as span:
            try:
                compiled = self.modules.get(data)
            except InvalidModule as exc:
                failure = _Failure("module", f"invalid module {_module_label(name)}: {exc}")
                _mark_failed(span, failure)
                raise failure from None
            span.set_attribute(ATTR_MODULE_SHA256, compiled.sha256)
            span.set_attribute(ATTR_MODULE_SIZE, len(compiled.wasm))
            span.set_attribute(ATTR_MODULE_CACHE, compiled.source)
            self._module_loads.add(1, {"cache": compiled.source})
            return compiled

    def _instantiate(self, run: _Run, compiled: CompiledModule, name: str) -> wasmtime.Instance:
        assert run.store is not None and run.linker is not None
        self._check_interrupt(run)
        if _observed(compiled):
            self._observe(run, compiled, run.request.module_name or self.argv0 if name == ENTRY_MODULE_NAME else name)
        try:
            instance = run.linker.instantiate(run.store, compiled.module)
        except wasmtime.ExitTrap as exc:
            self._record_trap(run, exc)
            raise _Failure("trap", f"{_module_label(name)} exited with code {exc.code} while starting",
                           exit_code=exc.code) from None
        except (wasmtime.Trap, wasmtime.WasmtimeError, Interrupted) as exc:
            failure = self._classify(run, exc, during=f"instantiating {_module_label(name)}")
            self._record_trap(run, _GuestStopped(failure.message))
            raise failure from None
        run.instances.append(instance)
        return instance

    def _call(self, run: _Run, instance: wasmtime.Instance) -> int:
        store, request = run.store, run.request
        assert store is not None
        exports = instance.exports(store)
        func = _entry_function(exports, request.entrypoint, store)
        init = exports.get("_initialize") if request.entrypoint != "_initialize" else None
        self._check_interrupt(run)
        try:
            if isinstance(init, wasmtime.Func):
                init(store)
            func(store)
        except wasmtime.ExitTrap as exc:
            self._record_trap(run, exc)
            if exc.code != 0 and self._memory_exhausted(run):
                raise _Failure("memory", self._memory_message(request, exc.code), exit_code=exc.code) from None
            return exc.code
        except (wasmtime.Trap, wasmtime.WasmtimeError, Interrupted) as exc:
            failure = self._classify(run, exc)
            self._record_trap(run, _GuestStopped(failure.message))
            raise failure from None
        except Exception as exc:  # a host function (not the guest) failed; keep the node alive
            log.exception("execution %s: host error while running the guest", request.execution_id)
            failure = _Failure("trap", f"trap: host error: {type(exc).__name__}: {exc}")
            self._record_trap(run, _GuestStopped(failure.message))
            raise failure from None
        return 0

    # -- errors ------------------------------------------------------------------
    def _check_interrupt(self, run: _Run) -> None:
        reason = run.interrupter.check()
        if reason is not None:
            raise self._interrupted(run, reason)

    def _interrupted(self, run: _Run, reason: str) -> _Failure:
        if reason == "timeout":
            return _Failure("timeout", f"timeout after {float(run.request.timeout_s or 0)}s")
        if reason == "limit":
            detail = run.interrupter.detail or "output limit exceeded"
            return _Failure("disk" if detail.startswith(_DISK_LIMIT) else "output", detail)
        return _Failure("cancelled", "cancelled")

    def _classify(self, run: _Run, exc: BaseException, *, during: str = "") -> _Failure:
        reason = run.interrupter.reason
        if reason is not None:
            return self._interrupted(run, reason)
        text = str(exc)
        if run.request.memory_limit_bytes is not None and (
                any(sign in text for sign in _LIMIT_SIGNS) or self._memory_exhausted(run)):
            return _Failure("memory", self._memory_message(run.request))
        if isinstance(exc, wasmtime.Trap) or "wasm backtrace" in text:
            return _Failure("trap", "trap: " + _trap_summary(exc))
        # not a trap: linking (unknown import, wrong type) or another instantiation error
        return _Failure("module", f"cannot run the module: {during + ': ' if during else ''}{innermost_cause(text)}")

    def _memory_exhausted(self, run: _Run) -> bool:
        """After a failure: did the guest most likely run into the memory cap?

        wasmtime only makes ``memory.grow`` return -1 at the cap and tells nobody, so
        this weighs the evidence: an exported linear memory or table within an eighth of
        its cap (allocators grow in chunks), or the guest saying so on stderr.
        """
        budget, store = run.budget, run.store
        if budget is None or store is None:
            return False
        memory_slack = max(WASM_PAGE, budget.memory_size // 8)
        for instance in run.instances:
            for value in instance.exports(store).values():
                if isinstance(value, wasmtime.Memory) and value.data_len(store) + memory_slack >= budget.memory_size:
                    return True
                if isinstance(value, wasmtime.Table) and budget.table_elements and \
                        value.size(store) + budget.table_elements // 8 >= budget.table_elements:
                    return True
        tail = run.stderr.tail().lower()
        return any(hint in tail for hint in _OOM_HINTS)

    @staticmethod
    def _memory_message(request: ExecutionRequest, exit_code: int | None = None) -> str:
        message = f"memory limit of {_format_bytes(request.memory_limit_bytes or 0)} exceeded"
        return message if exit_code is None else f"{message} (the guest exited with code {exit_code})"

    # -- the Observe SDK -----------------------------------------------------------
    def _observe(self, run: _Run, compiled: CompiledModule, module_name: str) -> None:
        """Attach the Observe SDK; ``module_name`` names the module in its trace when its name section does not."""
        adapter = self._observe_adapter()
        if adapter is None:
            return
        try:
            options = self.guest_observe_options(run.request, module_name)
            ctx = adapter.start(run.linker, compiled.wasm, options, store=run.store)
        except Exception:  # telemetry must not stop the job
            log.exception("execution %s: cannot attach the Observe SDK", run.request.execution_id)
            return
        run.observed.append(ctx)

    def guest_observe_options(self, request: ExecutionRequest, module_name: str) -> Any:
        """The Observe SDK's options for one guest: the operator's, else a trace capped in
        proportion to the guest's memory limit (:data:`LIMIT_BYTES_PER_EVENT`)."""
        from observe_sdk import Options

        if self._observe_options is not None:
            return dataclasses.replace(self._observe_options, module_name=module_name)
        return Options(module_name=module_name,
                       max_events=_event_cap(Options().max_events, request.memory_limit_bytes))

    def _observe_adapter(self) -> Any:
        with self._adapter_lock:
            if self._adapter is None and not self._closed:
                try:
                    from observe_sdk.adapters.opentelemetry import OpenTelemetryAdapter
                except ImportError as exc:
                    log.warning("the Observe SDK's OpenTelemetry adapter is unavailable (%s); "
                                "guests run without their own spans", exc)
                    self._closed = True
                    return None
                # with a span sink, the adapter gives the guest's logs and metrics; its spans go to the sink
                tracer_provider = False if self.exports_guest_spans else self._tracer_provider
                self._adapter = OpenTelemetryAdapter(tracer_provider=tracer_provider,
                                                     meter_provider=self._meter_provider,
                                                     python_logging=False)  # _log_guest says whose they are
            return self._adapter

    def _record_trap(self, run: _Run, exc: BaseException) -> None:
        for ctx in run.observed:
            try:
                ctx.record_trap(exc)
            except Exception:
                log.exception("execution %s: observe record_trap failed", run.request.execution_id)

    def _finish_observed(self, run: _Run) -> None:
        observed, run.observed = run.observed, []
        for ctx in observed:
            try:
                finished = ctx.finish()
            except Exception:
                log.exception("execution %s: observe finish failed", run.request.execution_id)
                continue
            self._log_guest(run, finished)
            if self.exports_guest_spans:
                self._export_guest_spans(run, finished)

    def _log_guest(self, run: _Run, finished: Any) -> None:
        """The guest's log lines to :data:`guest_log`, with the job, the execution and the level."""
        from observe_sdk.adapters.opentelemetry import severity_of
        from observe_sdk.trace import Log, Span

        request = run.request
        job = request.env.get("BACALHAU_JOB_ID", "-")
        stack = list(reversed(finished.roots))
        while stack:
            event = stack.pop()
            if isinstance(event, Span):
                stack.extend(reversed(event.events))
            elif isinstance(event, Log):
                level = severity_of(event.level)[1]
                if guest_log.isEnabledFor(level):
                    guest_log.log(level, "job %s execution %s %s %s: %s", job, request.execution_id, event.severity,
                                  finished.module_name or "guest", event.message,
                                  extra={"cod_job_id": job, "cod_execution_id": request.execution_id})

    @property
    def exports_guest_spans(self) -> bool:
        """Whether guests' spans go, one unit per execution, to a sink or an exporter of their own
        (else through the tracer provider)."""
        return self._guest_span_sink is not None or self._guest_trace_exporter is not None

    def _export_guest_spans(self, run: _Run, finished: Any) -> None:
        """The guest's spans, as one unit, to the exporter or the sink; what a limit dropped, on the current span."""
        # imported here: the Observe SDK is loaded only once a guest needs it (see _execute)
        from ..telemetry import ATTR_GUEST_SPANS_DROPPED, DEFAULT_MAX_GUEST_SPANS, guest_span_records

        limit = DEFAULT_MAX_GUEST_SPANS if self.max_guest_spans is None else self.max_guest_spans
        try:
            records: list[dict[str, Any]] = []
            if self._guest_trace_exporter is not None:   # an OTLP collector: encoded and queued, never waited for
                dropped = self._guest_trace_exporter(finished, limit, run.request.execution_id)
            else:
                records, dropped = guest_span_records(finished, limit)
            if dropped:
                for span in {id(s): s for s in (run.execution_span, trace.get_current_span()) if s}.values():
                    span.set_attribute(ATTR_GUEST_SPANS_DROPPED, dropped)
                log.warning("execution %s: %d guest span(s) dropped (over %d per execution)",
                            run.request.execution_id, dropped, limit)
            if records:
                assert self._guest_span_sink is not None
                self._guest_span_sink(records)
        except Exception:  # telemetry must not fail the job
            log.exception("execution %s: cannot export the guest's spans", run.request.execution_id)

    # -- spans -------------------------------------------------------------------------
    @contextlib.contextmanager
    def _span(self, name: str, request: ExecutionRequest, attributes: dict[str, Any]) -> Iterator[Any]:
        attrs = {ATTR_EXECUTION_ID: request.execution_id, **attributes}
        with self._tracer.start_as_current_span(name, attributes=attrs, record_exception=False,
                                                set_status_on_exception=False) as span:
            yield span

    @contextlib.contextmanager
    def _root_span(self, request: ExecutionRequest) -> Iterator[None]:
        """A ``wasm execution`` span when the caller has none, so the execution is one trace."""
        if trace.get_current_span().get_span_context().is_valid:
            yield
            return
        with self._span("wasm execution", request, {}):
            yield


# -- helpers ---------------------------------------------------------------------------
def _limit_check(max_bytes: int | None, stdout: Output, stderr: Output, max_written: int | None,
                 writable_dirs: list[str]) -> Callable[[], str | None] | None:
    """A check for the interrupter: stop the guest once an output stream passes ``max_bytes``,
    or what its writable mounts hold passes ``max_written`` (walked at most once a second)."""
    if max_bytes is None and (max_written is None or not writable_dirs):
        return None
    next_walk = [time.monotonic()]

    def check() -> str | None:
        if max_bytes is not None:
            for stream, output in (("stdout", stdout), ("stderr", stderr)):
                if output.size() > max_bytes:
                    return f"output limit of {_format_bytes(max_bytes)} exceeded on {stream}"
        if max_written is not None and writable_dirs and time.monotonic() >= next_walk[0]:
            next_walk[0] = time.monotonic() + _DISK_POLL_S
            if sum(tree_size(d) for d in writable_dirs) > max_written:
                return f"{_DISK_LIMIT} of {_format_bytes(max_written)} exceeded by the writable mounts"
        return None
    return check


def _event_cap(max_events: int, memory_limit: int | None) -> int:
    """How many events the Observe SDK records for a guest whose memory is capped: in
    proportion to the cap (see :data:`LIMIT_BYTES_PER_EVENT`)."""
    if memory_limit is None:
        return max_events
    return min(max_events, max(MIN_GUEST_EVENTS, memory_limit // LIMIT_BYTES_PER_EVENT))


def _observed(compiled: CompiledModule) -> bool:
    """Whether the module reports to the Observe SDK (imports one of its namespaces)."""
    return any(imp.module in OBSERVE_NAMESPACES for imp in compiled.module.imports)


def _validate(request: ExecutionRequest) -> str | None:
    if not isinstance(request, ExecutionRequest):
        return f"expected an ExecutionRequest, not {type(request).__name__}"
    if not isinstance(request.module, (bytes, bytearray, memoryview)):
        return f"module must be bytes, not {type(request.module).__name__}"
    if not request.entrypoint or not isinstance(request.entrypoint, str):
        return "entrypoint must be a non-empty string"
    if request.timeout_s is not None and not request.timeout_s > 0:
        return f"timeout_s must be positive, not {request.timeout_s!r}"
    if request.max_written_bytes is not None and not request.max_written_bytes > 0:
        return f"max_written_bytes must be positive, not {request.max_written_bytes!r}"
    if request.memory_limit_bytes is not None and not request.memory_limit_bytes > 0:
        return f"memory_limit_bytes must be positive, not {request.memory_limit_bytes!r}"
    if request.output_head_bytes < 0:
        return f"output_head_bytes must be >= 0, not {request.output_head_bytes!r}"
    for arg in request.args:
        if not isinstance(arg, str) or "\0" in arg:
            return f"argument {arg!r} must be a string without NUL bytes"
    for key, value in request.env.items():
        if not isinstance(key, str) or not isinstance(value, str) or not key or "=" in key \
                or "\0" in key or "\0" in value:
            return f"environment variable {key!r}={value!r} is not valid"
    names = [name for name, _ in request.import_modules]
    for name in names:
        if not isinstance(name, str) or not name:
            return f"import module name {name!r} must be a non-empty string"
        if name in _RESERVED_MODULE_NAMES:
            return f"import module name {name!r} is reserved for the host"
    if len(set(names)) != len(names):
        return "two import modules have the same name"
    return None


def _entry_function(exports: Any, name: str, store: wasmtime.Store) -> wasmtime.Func:
    func = exports.get(name)
    if not isinstance(func, wasmtime.Func):
        funcs = sorted(k for k, v in exports.items() if isinstance(v, wasmtime.Func))
        shown = ", ".join(funcs[:10]) + (", ..." if len(funcs) > 10 else "") if funcs else "none"
        what = "not found" if func is None else "not a function"
        raise _Failure("module", f"entrypoint {name!r} {what} in the module (exported functions: {shown})")
    ty = func.type(store)
    if ty.params:
        raise _Failure("module", f"entrypoint {name!r} takes {len(ty.params)} parameter(s); it must take none")
    return func


def _outcome(request: ExecutionRequest, exit_code: int | None, stdout: Output | None, stderr: Output | None,
             kind: str | None, message: str | None, started: float) -> ExecutionOutcome:
    limit = request.output_head_bytes
    stdout_head, stdout_cut = stdout.head(limit) if stdout is not None else ("", False)
    stderr_head, stderr_cut = stderr.head(limit) if stderr is not None else ("", False)
    return ExecutionOutcome(
        exit_code=exit_code if kind in (None, "memory") else None,
        stdout_head=stdout_head, stderr_head=stderr_head,
        stdout_truncated=stdout_cut, stderr_truncated=stderr_cut,
        error=message, error_kind=kind,
        duration_s=time.perf_counter() - started,
    )


def _mark_failed(span: Any, failure: _Failure) -> None:
    span.set_attribute(ATTR_ERROR_KIND, failure.kind)
    if failure.exit_code is not None:
        span.set_attribute(ATTR_EXIT_CODE, failure.exit_code)
    span.set_status(Status(StatusCode.ERROR, failure.message))


def _module_label(name: str) -> str:
    return "(entry module)" if name == ENTRY_MODULE_NAME else f"{name!r}"


def _trap_summary(exc: BaseException) -> str:
    """``wasm `unreachable` instruction executed (in boom)`` from a wasmtime trap."""
    summary = describe_trap(exc)
    frames = getattr(exc, "frames", None) or []
    if frames:
        name = frames[0].func_name or f"func[{frames[0].func_index}]"
        summary += f" (in {name})"
    return summary


def _format_bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            value = n / size
            return f"{value:g} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"
