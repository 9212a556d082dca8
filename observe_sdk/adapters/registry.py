"""Adapters by name: the built-ins and any package's ``observe_sdk.adapters`` entry points.

An entry point names a callable that takes keyword options and returns an
:class:`~observe_sdk.adapters.base.Adapter`, configured from the environment
for anything not given (e.g. ``mypkg.adapter:MyAdapter.from_env``)::

    [project.entry-points."observe_sdk.adapters"]
    my-backend = "mypkg.adapter:MyAdapter.from_env"

``create("my-backend", out="trace.txt")`` loads and calls it.  Options whose
value is ``None`` are left out, so a caller can pass through optional
settings (the CLI's ``--out``) without knowing which adapters take them; an
option an adapter does not take is a clear error.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from ..errors import UnknownAdapterError as UnknownAdapterError
from .base import Adapter

GROUP = "observe_sdk.adapters"

# The adapters of this package: the one list of them (they are not declared as
# entry points too, so a source tree without installed metadata has them all).
# Other packages' entry points add to it, and win on a name clash.
BUILTINS: dict[str, str] = {
    "stdout": "observe_sdk.adapters.stdout:StdoutAdapter.from_env",
    "otel-stdout": "observe_sdk.adapters.otel_stdout:OtelStdoutAdapter.from_env",
    "opentelemetry": "observe_sdk.adapters.opentelemetry:OpenTelemetryAdapter.from_env",
    "otlp": "observe_sdk.adapters.otlp:OtlpAdapter.from_env",
    "datadog": "observe_sdk.adapters.datadog:DatadogAdapter.from_env",
    "zipkin": "observe_sdk.adapters.zipkin:ZipkinAdapter.from_env",
    "honeycomb": "observe_sdk.adapters.presets:honeycomb",
    "lightstep": "observe_sdk.adapters.presets:lightstep",
    "chrome-trace": "observe_sdk.adapters.chrome_trace:ChromeTraceAdapter.from_env",
    "folded": "observe_sdk.adapters.folded:FoldedAdapter.from_env",
    "html": "observe_sdk.adapters.html:HtmlAdapter.from_env",
}


def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


# The top-level modules of the extras (pyproject.toml) that adapters import.
_EXTRA_OF_MODULE = {"opentelemetry": "otel", "google": "otel", "grpc": "otel", "msgpack": "datadog",
                    "datadog_api_client": "datadog"}


def names() -> list[str]:
    """Every adapter name registered, sorted: the ones :func:`create` accepts, and the ones it
    refuses because they cannot be loaded here (see :func:`unavailable`)."""
    return sorted(set(BUILTINS) | set(_entry_points()))


def unavailable() -> dict[str, str]:
    """The registered adapters that cannot be loaded here, each with why (the missing extra).

    Loads every adapter module to find out: meant for listings and error messages."""
    why: dict[str, str] = {}
    for name in names():
        try:
            factory(name)
        except ImportError as exc:
            why[name] = str(exc)
        except Exception as exc:  # a plugin broken some other way is just as unusable
            why[name] = f"adapter {name!r} cannot be loaded: {type(exc).__name__}: {exc}"
    return why


def _install_hint(exc: ImportError) -> str:
    extra = _EXTRA_OF_MODULE.get((exc.name or "").split(".")[0])
    return f"pip install 'observe-sdk[{extra}]'" if extra else "is the package it needs installed?"


def _load_target(spec: str) -> Callable[..., Any]:
    import importlib

    module_name, _, attr_path = spec.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr_path.split("."):
        obj = getattr(obj, part)
    target: Callable[..., Any] = obj
    return target


def factory(name: str) -> Callable[..., Adapter]:
    """The callable registered under ``name``; :class:`UnknownAdapterError` if none is."""
    ep = _entry_points().get(name)
    try:
        if ep is not None:
            loaded: Callable[..., Adapter] = ep.load()
            return loaded
        if name in BUILTINS:
            return _load_target(BUILTINS[name])
    except ImportError as exc:
        raise ImportError(f"adapter {name!r} cannot be loaded: {exc} ({_install_hint(exc)})",
                          name=exc.name) from exc
    broken = unavailable()
    usable = [n for n in names() if n not in broken]
    raise UnknownAdapterError(f"unknown adapter {name!r}; installed adapters: {', '.join(usable)}"
                              + (f"; not loadable here: {', '.join(broken)}" if broken else ""))


def create(name: str, **options: Any) -> Adapter:
    """A new adapter ``name`` configured by ``options`` (``None`` values dropped) and the environment."""
    make = factory(name)
    options = {k: v for k, v in options.items() if v is not None}
    _check_options(name, make, options)
    try:
        adapter = make(**options)
    except TypeError as exc:
        if "unexpected keyword argument" in str(exc):   # an option the adapter does not take
            raise ValueError(f"adapter {name!r}: {exc}") from None
        raise
    if not isinstance(adapter, Adapter):
        raise TypeError(f"adapter {name!r} ({make!r}) returned {type(adapter).__name__}, not an Adapter")
    return adapter


def _check_options(name: str, make: Callable[..., Any], options: dict[str, Any]) -> None:
    try:
        params = inspect.signature(make).parameters.values()
    except (TypeError, ValueError):  # builtins without signatures: let the call decide
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        accepted = None
    else:
        accepted = {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    unknown = sorted(set(options) - accepted) if accepted is not None else []
    if unknown and accepted is not None:
        raise ValueError(f"adapter {name!r} does not take option(s) {', '.join(unknown)}"
                         f" (it takes: {', '.join(sorted(accepted)) or 'none'})")
