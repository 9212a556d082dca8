"""Linking the Observe ABI's three namespaces into a ``wasmtime.Linker``.

The instrument functions come from the recorder (Python callables, or exports
of the in-wasm recorder); the Observe API functions always run in Python: they
read the guest's memory, validate what they read, and record an event.  A bad
pointer, invalid UTF-8, an unknown level or format, or a ``span-exit`` with
nothing open is recorded as a fault on the trace, never raised into the guest.

Linking knows the module it links for only through :class:`ObservedModule`
(the part of :class:`~observe_sdk.host.context.TraceContext` it needs).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import wasmtime

from ..abi import IMPORTS, NS_API, NS_INSTRUMENT, NS_LEGACY, EventKind, LogLevel, MetricFormat
from ..errors import GuestFault
from . import recorder as _recorder  # MAX_TEXT_BYTES read at call time (tests lower it)
from .recorder import Recorder

_VALTYPES = {"i32": wasmtime.ValType.i32(), "i64": wasmtime.ValType.i64()}

K_SPAN_ENTER = int(EventKind.SPAN_ENTER)
K_SPAN_EXIT = int(EventKind.SPAN_EXIT)
K_TAGS = int(EventKind.TAGS)
K_METRIC = int(EventKind.METRIC)
K_LOG = int(EventKind.LOG)

_LEVELS = {int(level) for level in LogLevel}
_FORMATS = {int(fmt) for fmt in MetricFormat}


def func_type(params: tuple[str, ...]) -> wasmtime.FuncType:
    return wasmtime.FuncType([_VALTYPES[p] for p in params], [])


UNREADABLE_SPAN_NAME = "<unreadable span name>"


def read_guest_string(caller: wasmtime.Caller, ptr: int, length: int, what: str,
                      limit: int | None = None) -> str | None:
    """Read ``length`` bytes of UTF-8 at ``ptr`` from the caller's exported ``memory``.

    None (after the bounds check, without reading) when ``length`` is over ``limit``.
    """
    memory = caller.get("memory")
    if not isinstance(memory, wasmtime.Memory):
        raise GuestFault(f"{what}: the guest exports no memory named 'memory'")
    # wasmtime-py hands i32/i64 over as signed ints; pointers and lengths are unsigned
    if ptr < 0:
        ptr += (1 << 32) if ptr >= -(1 << 31) else (1 << 64)
    length &= 0xFFFFFFFF
    size = memory.data_len(caller)
    if ptr + length > size:
        raise GuestFault(f"{what}: pointer {ptr}+{length} is out of bounds of memory ({size} bytes)")
    if limit is not None and length > limit:
        return None
    raw = memory.read(caller, ptr, ptr + length) if length else b""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GuestFault(f"{what}: invalid UTF-8 at byte {exc.start} of {length}") from None


class ObservedModule(Protocol):
    """What linking needs of the module it links for."""

    @property
    def recorder(self) -> Recorder:
        """Records the events; Observe API events go into its log."""
        ...

    @property
    def store(self) -> wasmtime.Store | None:
        """The store the recorder lives in, when it lives in one."""
        ...

    def record_fault(self, op: str, message: str) -> None:
        """Record a guest fault on the current trace."""
        ...


Event = tuple[int, Any]  # (event kind, payload) for EventLog.add


def api_functions(module: ObservedModule) -> dict[str, Callable[..., None]]:
    """The Observe API, by canonical operation; each takes (caller, *args)."""

    def recording(op: str, fn: Callable[..., Event]) -> Callable[..., None]:
        def host(caller: wasmtime.Caller, *args: int) -> None:
            recorder = module.recorder
            recorder.sync()  # keep buffered automatic events ahead of this one
            try:
                kind, payload = fn(caller, *args)
            except GuestFault as exc:
                module.record_fault(op, str(exc))
                return
            except Exception as exc:  # a host failure must not trap the guest
                module.record_fault(op, f"internal: {op} failed on the host: {exc!r}")
                return
            recorder.log.add(kind, payload)
        return host

    def text(caller: wasmtime.Caller, ptr: int, length: int, what: str) -> str:
        """The guest's text, charged to the trace's text budget (a marker once it is spent)."""
        events = module.recorder.log
        n = length & 0xFFFFFFFF
        got = read_guest_string(caller, ptr, n, what, limit=events.text_budget)
        if got is None:
            if events.text_budget >= 0:
                events.text_budget = -1
                budget = _recorder.MAX_TEXT_BYTES
                module.record_fault("text-budget", f"{what}: the trace's text budget ({budget} bytes) is spent; "
                                    "further texts are replaced by a marker")
            return f"[{n} bytes dropped: text budget spent]"
        events.text_budget -= n
        return got

    def span_enter(caller: wasmtime.Caller, ptr: int, length: int) -> Event:
        try:
            name = text(caller, ptr, length, "span-enter")
        except GuestFault as exc:
            # the span still opens, so that the guest's matching span-exit closes it and not its parent
            module.record_fault("span-enter", str(exc))
            name = UNREADABLE_SPAN_NAME
        return K_SPAN_ENTER, name

    def span_tags(caller: wasmtime.Caller, ptr: int, length: int) -> Event:
        return K_TAGS, text(caller, ptr, length, "span-tags")

    def metric(caller: wasmtime.Caller, fmt: int, ptr: int, length: int) -> Event:
        if fmt not in _FORMATS:
            raise GuestFault(f"metric: unknown metric format {fmt}")
        return K_METRIC, (fmt, text(caller, ptr, length, "metric"))

    def log(caller: wasmtime.Caller, level: int, ptr: int, length: int) -> Event:
        if level not in _LEVELS:
            raise GuestFault(f"log: unknown log level {level}")
        return K_LOG, (level, text(caller, ptr, length, "log"))

    def span_exit(caller: wasmtime.Caller) -> Event:
        return K_SPAN_EXIT, None

    return {
        "span-enter": recording("span-enter", span_enter),
        "span-exit": recording("span-exit", span_exit),
        "span-tags": recording("span-tags", span_tags),
        "metric": recording("metric", metric),
        "log": recording("log", log),
    }


def link_observe_abi(linker: wasmtime.Linker, module: ObservedModule) -> None:
    """Define every import of the three namespaces in ``linker``.

    The instrument imports go to what the module's recorder links them to:
    Python callables taking the one i32, or ``wasmtime.Func`` exports of an
    in-wasm recorder (which live in ``module.store``).
    """
    linker.allow_shadowing = True
    api = api_functions(module)
    instrument = module.recorder.instrument_functions()
    for (namespace, name), (params, op) in IMPORTS.items():
        if op in api:
            linker.define_func(namespace, name, func_type(params), api[op], access_caller=True)
            continue
        target = instrument[op]
        if isinstance(target, wasmtime.Func):
            assert module.store is not None, "a recorder made of wasm exports lives in a store"
            linker.define(module.store, namespace, name, target)
        else:
            linker.define_func(namespace, name, func_type(params), target)


__all__ = ["link_observe_abi", "read_guest_string", "GuestFault", "NS_API", "NS_INSTRUMENT", "NS_LEGACY"]
