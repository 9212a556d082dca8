"""The wasi:otel interfaces this SDK hosts: one table, so the next WIT release is a small change.

Each entry is the fully qualified interface name a component imports and the
functions the host defines in it.  The WIT itself (``wasi:otel@0.2.0-rc.2``,
WebAssembly/wasi-otel) is shipped with the guest example in
``guest-examples/component/wit/deps/otel``.
"""
from __future__ import annotations

WASI_OTEL_PACKAGE = "wasi:otel"
WASI_OTEL_VERSION = "0.2.0-rc.2"


def interface(name: str) -> str:
    """``tracing`` -> ``wasi:otel/tracing@0.2.0-rc.2``."""
    return f"{WASI_OTEL_PACKAGE}/{name}@{WASI_OTEL_VERSION}"


TRACING = interface("tracing")
LOGS = interface("logs")
METRICS = interface("metrics")
TYPES = interface("types")

FUNCTIONS: dict[str, tuple[str, ...]] = {
    TRACING: ("on-start", "on-end", "current-span-context"),
    LOGS: ("on-emit",),
    METRICS: ("export",),
    TYPES: (),
}
"""Every interface of the package and the functions the host provides in it."""

CLI_RUN = "wasi:cli/run@0.2.0"
"""The export a command component runs by default (``run: func() -> result``)."""


def is_wasi_otel(import_name: str) -> bool:
    """Whether an import name (any version) belongs to the wasi:otel package."""
    return import_name.startswith(WASI_OTEL_PACKAGE + "/")
