"""Helpers for the SDK's tests: building modules, running observed guests, comparing trees."""
from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import wasmtime

ROOT = Path(__file__).resolve().parent.parent
GUESTS = ROOT / "guest-examples"


ENGINE = wasmtime.Engine()
"""One engine for the tests that share compiled modules (the Go example takes ~2 s to compile)."""


@cache
def wasm_bytes(path: Path) -> bytes:
    """A .wat or .wasm file's module bytes, read once per session."""
    return wasmtime.wat2wasm(path.read_text()) if path.suffix == ".wat" else path.read_bytes()


@cache
def compiled(path: Path) -> wasmtime.Module:
    """A guest example compiled once per session, with :data:`ENGINE`."""
    return wasmtime.Module(ENGINE, wasm_bytes(path))


def wasm_of(source: str | Path) -> bytes:
    """Bytes of a module from WAT text, a .wat file or a .wasm file."""
    if isinstance(source, Path):
        return wasmtime.wat2wasm(source.read_text()) if source.suffix == ".wat" else source.read_bytes()
    return wasmtime.wat2wasm(source)


class Guest:
    """A module linked with WASI and observed by ``adapter``; stdout captured to a file."""

    def __init__(self, wasm: bytes, adapter: Any, options: Any = None, *, tmp: Path, argv: list[str] | None = None,
                 wasi: bool = True, store_kw: bool = True) -> None:
        self.engine = wasmtime.Engine()
        self.store = wasmtime.Store(self.engine)
        self.linker = wasmtime.Linker(self.engine)
        self.stdout = tmp / f"stdout-{id(self)}.txt"
        if wasi:
            cfg = wasmtime.WasiConfig()
            cfg.argv = argv or ["guest"]
            cfg.stdout_file = str(self.stdout)
            cfg.stderr_file = str(tmp / f"stderr-{id(self)}.txt")
            self.store.set_wasi(cfg)
            self.linker.define_wasi()
        self.ctx = adapter.start(self.linker, wasm, options, **({"store": self.store} if store_kw else {}))
        self.instance = self.linker.instantiate(self.store, wasmtime.Module(self.engine, wasm))
        self.exports = self.instance.exports(self.store)

    def call(self, name: str, *args: Any) -> Any:
        return self.ctx.call(self.store, self.exports[name], *args)

    def output(self) -> str:
        return self.stdout.read_text() if self.stdout.exists() else ""


def tree(trace: Any) -> list[Any]:
    """A trace's spans as nested (name, [children]) for comparisons."""
    from observe_sdk.trace import Span

    def conv(span: Span) -> Any:
        return (span.name, [conv(c) for c in span.events if type(c) is Span])
    return [conv(r) for r in trace.roots if type(r) is Span]
