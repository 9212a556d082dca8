"""Compiled modules, cached by the sha256 of their bytes.

A module is compiled once per node: in memory (a small LRU of ``wasmtime.Module``,
which is safe to share between threads and stores) and, when a cache directory is
given, on disk as wasmtime's serialized form so that a restarted node skips compiling
too. Concurrent requests for the same module wait for the one compilation in flight.
A serialized file that wasmtime refuses (another wasmtime version or engine
configuration, a damaged file) is recompiled and replaced.
"""

from __future__ import annotations

import collections
import hashlib
import importlib.metadata
import logging
import os
import tempfile
import threading
from dataclasses import dataclass

import wasmtime

from observe_sdk.host.traps import wasmtime_message

from ..errors import CodError

__all__ = ["CompiledModule", "InvalidModule", "ModuleCache"]

log = logging.getLogger("cod_reference.executor")

WASM_MAGIC = b"\0asm"


class InvalidModule(CodError, ValueError):
    """The bytes are not a valid WebAssembly module; the message says why, in one line."""


@dataclass(frozen=True)
class CompiledModule:
    module: wasmtime.Module
    sha256: str
    wasm: bytes          # the binary (WAT input is converted), for the Observe SDK's name section
    source: str          # "memory", "disk" or "compiled": where this lookup found it

    @property
    def cache_hit(self) -> bool:
        return self.source != "compiled"


class ModuleCache:
    """Compile-once cache of modules for one ``wasmtime.Engine``."""

    def __init__(self, engine: wasmtime.Engine, *, cache_dir: str | None = None, max_entries: int = 64) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.engine = engine
        self.max_entries = max_entries
        self.cache_dir = None
        if cache_dir:
            self.cache_dir = os.path.join(os.path.abspath(cache_dir), f"wasmtime-{_wasmtime_version()}")
            os.makedirs(self.cache_dir, exist_ok=True)
        self._entries: collections.OrderedDict[str, tuple[wasmtime.Module, bytes]] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self.compilations = 0  # how many times a module was actually compiled

    def get(self, data: bytes) -> CompiledModule:
        """The compiled module for ``data`` (a .wasm binary or WAT text)."""
        wasm = to_wasm_binary(data)
        key = hashlib.sha256(wasm).hexdigest()
        hit = self._lookup(key)
        if hit is not None:
            return CompiledModule(hit, key, wasm, "memory")
        try:
            with self._key_lock(key):
                hit = self._lookup(key)
                if hit is not None:
                    return CompiledModule(hit, key, wasm, "memory")
                module, source = self._load_from_disk(key), "disk"
                if module is None:
                    module, source = self._compile(wasm), "compiled"
                    self._store_on_disk(key, module)
                self._remember(key, module, wasm)
        finally:  # also when the module is invalid: one lock per distinct module would pile up
            with self._lock:
                self._key_locks.pop(key, None)
        return CompiledModule(module, key, wasm, source)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    # -- internals -------------------------------------------------------
    def _lookup(self, key: str) -> wasmtime.Module | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def _remember(self, key: str, module: wasmtime.Module, wasm: bytes) -> None:
        with self._lock:
            self._entries[key] = (module, wasm)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def _key_lock(self, key: str) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    def _compile(self, wasm: bytes) -> wasmtime.Module:
        try:
            module = wasmtime.Module(self.engine, wasm)
        except wasmtime.WasmtimeError as exc:
            raise InvalidModule(_one_line(str(exc))) from None
        with self._lock:
            self.compilations += 1
        return module

    def _path(self, key: str) -> str | None:
        return None if self.cache_dir is None else os.path.join(self.cache_dir, key + ".cwasm")

    def _load_from_disk(self, key: str) -> wasmtime.Module | None:
        path = self._path(key)
        if path is None or not os.path.isfile(path):
            return None
        try:
            return wasmtime.Module.deserialize_file(self.engine, path)
        except wasmtime.WasmtimeError as exc:
            log.info("module cache: %s is not usable (%s); compiling again", path, _one_line(str(exc)))
            return None

    def _store_on_disk(self, key: str, module: wasmtime.Module) -> None:
        path = self._path(key)
        if path is None:
            return
        try:
            data = module.serialize()
            fd, tmp = tempfile.mkstemp(dir=self.cache_dir, prefix=key[:16], suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)
                raise
        except (OSError, wasmtime.WasmtimeError) as exc:  # a cache that cannot write is only slower
            log.warning("module cache: cannot write %s: %s", path, exc)


def to_wasm_binary(data: bytes) -> bytes:
    """``data`` as a WebAssembly binary: binaries pass through, WAT text is assembled."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidModule(f"expected the module as bytes, not {type(data).__name__}")
    data = bytes(data)
    if data.startswith(WASM_MAGIC):
        return data
    if not data.strip():
        raise InvalidModule("the module is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidModule("not a WebAssembly binary (no \\0asm header) and not WAT text") from None
    try:
        return bytes(wasmtime.wat2wasm(text))
    except wasmtime.WasmtimeError as exc:
        raise InvalidModule("not a WebAssembly binary (no \\0asm header), and as WAT text: "
                            f"{_one_line(str(exc))}") from None


def _wasmtime_version() -> str:
    try:
        return importlib.metadata.version("wasmtime")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a source checkout
        return "unknown"


def _one_line(message: str) -> str:
    """wasmtime's multi-line error as one line: the headline plus its innermost cause."""
    headline, cause = wasmtime_message(message)
    return f"{headline}: {cause}" if cause else headline
