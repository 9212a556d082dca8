"""Hosting ``wasi:otel`` for WebAssembly components: their spans, logs and metrics
become a :class:`~observe_sdk.Trace`, exported by the same adapters as a core module's.

    linker = wasmtime.component.Linker(engine)
    linker.add_wasip2()
    ctx = ComponentTraceContext(adapter, linker, module_name="guest.wasm")
    instance = linker.instantiate(store, component)
    ctx.call(store, instance.get_func(store, "work"), 10, name="work")
"""
from typing import TYPE_CHECKING, Any

from .wit import WASI_OTEL_VERSION, is_wasi_otel

if TYPE_CHECKING:
    from .context import ComponentTraceContext

COMPONENT_HEADER = b"\x00asm\x0d\x00\x01\x00"
"""Magic and version of a component binary (a core module has ``\\x01\\x00\\x00\\x00``)."""


def is_component(wasm: bytes) -> bool:
    """Whether ``wasm`` is a component binary (not a core module, not text)."""
    return wasm[:8] == COMPONENT_HEADER


def __getattr__(name: str) -> Any:
    # the host of components is imported when first used: running a core module never needs it
    if name == "ComponentTraceContext":
        from .context import ComponentTraceContext

        return ComponentTraceContext
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ComponentTraceContext", "WASI_OTEL_VERSION", "is_component", "is_wasi_otel", "COMPONENT_HEADER"]
