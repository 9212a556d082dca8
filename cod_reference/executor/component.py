"""Running a WebAssembly component as a job: WASI preview 2 and wasi:otel linked.

The executor hands a request whose module is a component here (a core module
goes the usual way). The component runs under the same limits as a module
(memory budget split over the core modules it holds, timeout and cancellation
by epoch interruption, capped output streams) and its wasi:otel spans join the
job's trace under the executor's ``call`` span, through the same
OpenTelemetry adapter as a module's Observe spans.

The entrypoint ``_start`` (the default of a job) means ``wasi:cli/run``; any
other name is a root export taking no parameters.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import wasmtime
from wasmtime import component

from observe_sdk.component import ComponentTraceContext
from observe_sdk.component.run import (
    CACHE_ENV,
    ComponentArgumentError,
    compile_component,
    convert_arguments,
    default_cache_dir,
    resolve_export,
)
from observe_sdk.instrument.binary import read_u32

from .limits import store_budget

if TYPE_CHECKING:  # wasm.py imports this module; its names are imported here only where used
    from .output import FileOutput, MemoryOutput
    from .types import ExecutionRequest
    from .wasm import WasmExecutor, _Run

DEFAULT_ENTRYPOINT = "_start"
_SEC_CORE_MODULE, _SEC_COMPONENT = 1, 4
_MAX_INSTANCES = 10_000   # a component instantiates many core modules; memories and tables are what is capped


def nested_core_modules(wasm: bytes) -> list[bytes]:
    """The core modules a component binary holds, nested components included."""
    modules: list[bytes] = []
    pending = [wasm]
    while pending:
        data = pending.pop()
        pos = 8
        while pos < len(data):
            section_id = data[pos]
            size, pos = read_u32(data, pos + 1)
            payload = data[pos:pos + size]
            if section_id == _SEC_CORE_MODULE:
                modules.append(payload)
            elif section_id == _SEC_COMPONENT:
                pending.append(payload)
            pos += size
    return modules


ENGINE_FLAVOR = "cod-executor"
"""The executor's engine configuration (epoch interruption, no GC, no threads) in cache file names."""


class ComponentCache:
    """Compiled components by SHA-256: a few in memory, all on disk (compiling a big component takes
    seconds, loading it a fraction): in ``$OBSERVE_SDK_CACHE_DIR`` when the operator sets it (one cache
    for every node and tool of the machine), else under the node's cache dir, else the operator's
    observe-sdk cache."""

    def __init__(self, engine: wasmtime.Engine, cache_dir: str | None, max_entries: int = 8) -> None:
        self.engine = engine
        self.node_cache_dir = Path(cache_dir) / "components" if cache_dir else None
        self.max_entries = max_entries
        self._entries: OrderedDict[str, component.Component] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, wasm: bytes) -> component.Component:
        key = hashlib.sha256(wasm).hexdigest()
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        shared = os.environ.get(CACHE_ENV)
        cache_dir = Path(shared) if shared else self.node_cache_dir or default_cache_dir()
        compiled = compile_component(self.engine, wasm, cache_dir, ENGINE_FLAVOR)
        with self._lock:
            self._entries[key] = compiled
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return compiled


def execute_component(executor: WasmExecutor, run: _Run, stdout: FileOutput | MemoryOutput,
                      stderr: FileOutput | MemoryOutput, mounts: Any) -> int:
    """Compile, instantiate and call the request's component; its exit code (0, or 1 when
    ``wasi:cli/run`` returns an error); failures raise the executor's ``_Failure``."""
    from .wasm import ATTR_EXIT_CODE, ATTR_FUNCTION, ATTR_MODULE_NAME, ENTRY_MODULE_NAME, _Failure, _mark_failed

    request = run.request
    if request.import_modules:
        raise _Failure("request", "import modules are not supported with a component (it links its own)")
    with executor._span("compile", request, {ATTR_MODULE_NAME: ENTRY_MODULE_NAME}) as span:
        try:
            compiled = executor.components.get(bytes(request.module))
        except wasmtime.WasmtimeError as exc:
            failure = _Failure("module", f"invalid component: {str(exc).splitlines()[0]}")
            _mark_failed(span, failure)
            raise failure from None
    executor._check_interrupt(run)
    budget = None
    if request.memory_limit_bytes is not None:
        modules = nested_core_modules(bytes(request.module))
        budget = dataclasses.replace(store_budget(request.memory_limit_bytes, modules), instances=_MAX_INSTANCES)
    store = executor._guest_store(run, budget, stdout, stderr, mounts)
    linker = component.Linker(executor.engine)
    linker.add_wasip2()
    context = observe_context(executor, linker, request)
    invoke = None if request.entrypoint == DEFAULT_ENTRYPOINT else request.entrypoint
    with executor._span("instantiate", request, {ATTR_MODULE_NAME: ENTRY_MODULE_NAME}) as span:
        try:
            instance = linker.instantiate(store, compiled)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            failure = executor._classify(run, exc, during="instantiating the component")
            _mark_failed(span, failure)
            raise failure from None
        finally:
            linker.close()
    try:
        name, func = resolve_export(executor.engine, compiled, store, instance, invoke)
        convert_arguments(func.type(store), [], name)
    except ComponentArgumentError as exc:
        raise _Failure("module", f"entrypoint: {exc}") from None
    with executor._span("call", request, {ATTR_FUNCTION: name}) as span:
        try:
            result = context.call(store, func, name=name) if context is not None else _call_unobserved(store, func)
        except wasmtime.ExitTrap as exc:
            code = exc.code
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            failure = executor._classify(run, exc)
            _mark_failed(span, failure)
            raise failure from None
        else:
            code = 1 if isinstance(result, component.Variant) and result.tag == "err" else 0
        finally:
            if context is not None and context.last_trace is not None and executor.exports_guest_spans:
                executor._export_guest_spans(run, context.last_trace)  # while `call` is current
        span.set_attribute(ATTR_EXIT_CODE, code)
        return code


def _call_unobserved(store: wasmtime.Store, func: component.Func) -> Any:
    result = func(store)
    func.post_return(store)
    return result


def observe_context(executor: WasmExecutor, linker: component.Linker,
                    request: ExecutionRequest) -> ComponentTraceContext | None:
    """wasi:otel linked to the executor's OpenTelemetry adapter (None when the SDK's adapter is unavailable)."""
    adapter = executor._observe_adapter()
    if adapter is None:
        return None
    return ComponentTraceContext(adapter, linker, executor.guest_observe_options(request, executor.argv0),
                                 module_name=executor.argv0)
