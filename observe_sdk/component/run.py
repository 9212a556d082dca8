"""Compiling (with a cache) and running a component with WASI preview 2 and wasi:otel linked."""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import wasmtime
from wasmtime import component

from ..errors import ObserveError
from ..options import Options
from .context import ComponentTraceContext, TraceSink
from .wit import CLI_RUN, is_wasi_otel

log = logging.getLogger("observe_sdk")

CACHE_ENV = "OBSERVE_SDK_CACHE_DIR"


class ComponentArgumentError(ObserveError, ValueError):
    """An export or its arguments do not fit the component (said before anything runs)."""


def default_cache_dir() -> Path:
    """``$OBSERVE_SDK_CACHE_DIR``, else ``$XDG_CACHE_HOME/observe-sdk``, else ``~/.cache/observe-sdk``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "observe-sdk"


def compile_component(engine: wasmtime.Engine, wasm: bytes, cache_dir: Path | None = None,
                      flavor: str = "default") -> component.Component:
    """Compile ``wasm``, reusing wasmtime's serialized form from ``cache_dir`` when it was compiled before.

    A big component (a Python guest is ~18 MB) takes seconds to compile and a
    fraction of a second to load serialized.  The cache is keyed by the bytes'
    digest and ``flavor``, which names the engine's configuration (a serialized
    component loads only into an engine configured alike); a stale or foreign
    entry (another wasmtime) is recompiled.  Only the user's own cache directory
    is read: a serialized file is trusted code.
    """
    cache_dir = cache_dir if cache_dir is not None else default_cache_dir()
    cached = cache_dir / f"{hashlib.sha256(wasm).hexdigest()}-{flavor}.cwasm"
    if cached.is_file():
        try:
            return component.Component.deserialize_file(engine, str(cached))
        except wasmtime.WasmtimeError as exc:
            log.info("recompiling %s: %s", cached, exc)
    compiled = component.Component(engine, wasm)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(compiled.serialize())
        partial.replace(cached)
    except OSError as exc:
        log.info("not caching the compiled component in %s: %s", cache_dir, exc)
    return compiled


@dataclass(frozen=True)
class ComponentInfo:
    imports: list[str]
    exports: list[str]

    @property
    def otel_imports(self) -> list[str]:
        return [name for name in self.imports if is_wasi_otel(name)]


def describe(engine: wasmtime.Engine, compiled: component.Component) -> ComponentInfo:
    ty = compiled.type
    return ComponentInfo(sorted(ty.imports(engine)), sorted(ty.exports(engine)))


def cli_run_export(exports: list[str]) -> str | None:
    """The component's ``wasi:cli/run`` export, whichever 0.2 version it names."""
    family = CLI_RUN.split("@")[0] + "@"
    return next((name for name in exports if name.startswith(family)), None)


def resolve_export(engine: wasmtime.Engine, compiled: component.Component, store: wasmtime.Store,
                   instance: component.Instance, invoke: str | None) -> tuple[str, component.Func]:
    """The export to call (``wasi:cli/run``'s ``run`` when ``invoke`` is None) and its name."""
    exports = describe(engine, compiled).exports
    if invoke is None:
        run_export = cli_run_export(exports)
        index = instance.get_export_index(store, run_export) if run_export else None
        run_index = instance.get_export_index(store, "run", index) if index is not None else None
        func = instance.get_func(store, run_index) if run_index is not None else None
        if func is None:
            raise ComponentArgumentError("the component exports no wasi:cli/run; name a function to call "
                                         f"(it exports: {', '.join(exports) or 'nothing'})")
        return CLI_RUN.partition("@")[0], func
    func = instance.get_func(store, invoke) if invoke in exports else None
    if func is None:
        raise ComponentArgumentError(f"the component has no exported function {invoke!r} "
                                     f"(it exports: {', '.join(exports) or 'nothing'})")
    return invoke, func


_INTS = (component.U8, component.U16, component.U32, component.U64,
         component.S8, component.S16, component.S32, component.S64)


def convert_arguments(func_type: Any, texts: list[str], export: str) -> list[Any]:
    """Command-line words as the export's parameters (numbers, bools and strings)."""
    params = func_type.params
    if len(texts) != len(params):
        raise ComponentArgumentError(f"{export} takes {len(params)} argument(s), {len(texts)} given")
    values: list[Any] = []
    for (name, ty), text in zip(params, texts, strict=True):
        try:
            if isinstance(ty, _INTS):
                values.append(int(text, 0))
            elif isinstance(ty, (component.F32, component.F64)):
                values.append(float(text))
            elif isinstance(ty, component.Bool):
                values.append({"true": True, "false": False}[text.lower()])
            elif isinstance(ty, component.String):
                values.append(text)
            else:
                raise ComponentArgumentError(f"{export}: parameter {name} of type {type(ty).__name__} "
                                             "cannot be given on the command line")
        except (ValueError, KeyError):
            raise ComponentArgumentError(f"{export}: {text!r} is not a {type(ty).__name__} "
                                         f"(parameter {name})") from None
    return values


@dataclass
class ComponentRun:
    """What running a component gave: the export's result and the exit status it means."""
    result: Any
    exit_code: int


def run_component(engine: wasmtime.Engine, compiled: component.Component, store: wasmtime.Store,
                  sink: TraceSink, options: Options | None = None, *, invoke: str | None = None,
                  arguments: list[str] | None = None, module_name: str = "") -> ComponentRun:
    """Instantiate with WASI preview 2 and wasi:otel and call ``wasi:cli/run`` (or ``invoke``).

    ``store`` must carry the WASI configuration (``store.set_wasi``).  The
    export and its arguments are checked before the component is instantiated.
    Exits (``wasi:cli/exit``) and traps propagate as wasmtime raises them.
    """
    exports = describe(engine, compiled).exports
    if invoke is None and cli_run_export(exports) is None:
        raise ComponentArgumentError("the component exports no wasi:cli/run; name a function with --invoke "
                                     f"(it exports: {', '.join(exports) or 'nothing'})")
    if invoke is None and arguments:
        raise ComponentArgumentError("wasi:cli/run takes no arguments here; pass them with --invoke FUNC:ARGS")
    if invoke is not None and invoke not in exports:
        raise ComponentArgumentError(f"the component has no export {invoke!r} (it exports: {', '.join(exports)})")
    linker = component.Linker(engine)
    linker.add_wasip2()
    context = ComponentTraceContext(sink, linker, options, module_name=module_name)
    instance = linker.instantiate(store, compiled)
    export, func = resolve_export(engine, compiled, store, instance, invoke)
    values = convert_arguments(func.type(store), arguments or [], export)
    result = context.call(store, func, *values, name=export)
    if invoke is None:
        failed = isinstance(result, component.Variant) and result.tag == "err"
        return ComponentRun(result, 1 if failed else 0)
    return ComponentRun(result, 0)
