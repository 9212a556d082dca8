"""What the host needs to know about a module: its Observe imports and its function names.

Reads just enough of the binary format: the import, global and export sections
and the ``name`` custom section (function-names subsection).  This runs on every
``start()``, so it skips what it does not need; the instrumenter's full reader
(:mod:`observe_sdk.instrument.module`) decodes every section and costs far more
to import and to run.  Both raise :class:`ModuleFormatError` (the instrumenter's
``WasmFormatError`` is a subclass).  Names are demangled
(C++ Itanium, Rust legacy and v0) for display; the raw name is kept.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .abi import IMPORTS, NAMESPACES, VERSION_MAJOR_EXPORT, VERSION_MINOR_EXPORT
from .errors import ModuleFormatError as ModuleFormatError

_MAGIC = b"\0asm"
_SEC_CUSTOM, _SEC_IMPORT, _SEC_GLOBAL, _SEC_EXPORT = 0, 2, 6, 7
_EXTERN_FUNC = 0


class _Reader:
    __slots__ = ("data", "pos", "end")

    def __init__(self, data: bytes | memoryview, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def byte(self) -> int:
        if self.pos >= self.end:
            raise ModuleFormatError(f"unexpected end of data at byte offset {self.pos}")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def u32(self) -> int:
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 35:
                raise ModuleFormatError(f"LEB128 integer too long at byte offset {self.pos}")

    def bytes(self, n: int) -> bytes:
        if self.pos + n > self.end:
            raise ModuleFormatError(f"{n} bytes run past the end of their section at byte offset {self.pos}")
        out = bytes(self.data[self.pos:self.pos + n])
        self.pos += n
        return out

    def s32(self) -> int:
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                if b & 0x40:
                    result -= 1 << shift
                return result
            if shift > 35:
                raise ModuleFormatError(f"LEB128 integer too long at byte offset {self.pos}")

    def name(self) -> str:
        at = self.pos
        raw = self.bytes(self.u32())
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ModuleFormatError(f"invalid UTF-8 in a name at byte offset {at}") from None

    def skip_limits(self) -> None:
        flags = self.byte()
        self.u32()
        if flags & 1:
            self.u32()
        if flags & 0x08:  # custom page size
            self.u32()


def demangle(raw: str) -> str:
    """The display form of a possibly mangled name (the name itself when it is not mangled)."""
    if not raw.startswith(("_Z", "_R", "__Z", "_ZN")):
        return raw
    try:
        import pydemumble
        out = pydemumble.demangle(raw)
    except Exception:  # a demangler failure is never the guest's fault to pay for
        return raw
    return out or raw


@dataclass
class ModuleInfo:
    """The facts about one module that observing it needs."""

    imports: list[tuple[str, str, int]] = field(default_factory=list)  # (module, name, kind)
    exports: list[tuple[str, int]] = field(default_factory=list)       # (name, kind)
    export_index: dict[str, int] = field(default_factory=dict)         # export name -> index
    imported_globals: int = 0
    global_i32_consts: dict[int, int] = field(default_factory=dict)    # global index -> i32.const init
    imported_functions: int = 0
    function_names: dict[int, str] = field(default_factory=dict)      # raw names by function index
    function_exports: dict[int, str] = field(default_factory=dict)    # function index -> its first export name
    module_name: str = ""

    @property
    def observe_imports(self) -> list[tuple[str, str]]:
        return [(m, n) for m, n, _ in self.imports if m in NAMESPACES]

    def imports_namespace(self, namespace: str) -> bool:
        return any(m == namespace for m, _, _ in self.imports)

    @property
    def has_version_exports(self) -> bool:
        names = {n for n, _ in self.exports}
        return VERSION_MAJOR_EXPORT in names and VERSION_MINOR_EXPORT in names

    @property
    def unknown_observe_imports(self) -> list[tuple[str, str]]:
        return [key for key in self.observe_imports if key not in IMPORTS]

    @property
    def instrumenter_version(self) -> tuple[int, int] | None:
        """(major, minor) from the instrumenter's version exports, when both are constant globals."""
        try:
            major = self.global_i32_consts[self.export_index[VERSION_MAJOR_EXPORT]]
            minor = self.global_i32_consts[self.export_index[VERSION_MINOR_EXPORT]]
        except KeyError:
            return None
        return major, minor

    @property
    def span_names(self) -> dict[int, str]:
        """Raw names for spans: the ``name`` section's, else the function's export name."""
        return {**self.function_exports, **self.function_names}

    def exported_functions(self) -> list[str]:
        return [n for n, kind in self.exports if kind == _EXTERN_FUNC]


def read_module_info(wasm: bytes) -> ModuleInfo:
    """Parse the sections the host needs; raise :class:`ModuleFormatError` on malformed input."""
    if not isinstance(wasm, (bytes, bytearray, memoryview)):
        hint = " (WAT text? convert it with wasmtime.wat2wasm)" if isinstance(wasm, str) else ""
        raise TypeError(f"a module is bytes, not {type(wasm).__name__}{hint}")
    data = memoryview(wasm) if not isinstance(wasm, memoryview) else wasm
    if bytes(data[:4]) != _MAGIC:
        raise ModuleFormatError("not a WebAssembly module (no \\0asm magic at byte offset 0)")
    if len(data) < 8:
        raise ModuleFormatError(f"unexpected end of data at byte offset {len(data)} (in the version)")
    version = int.from_bytes(data[4:8], "little")
    if version != 1:
        raise ModuleFormatError(f"unsupported WebAssembly binary version {version} at byte offset 4 (a component?)")
    info = ModuleInfo()
    r = _Reader(data, 8)
    while r.pos < r.end:
        sec_id = r.byte()
        size = r.u32()
        start = r.pos
        if start + size > r.end:
            raise ModuleFormatError(f"section {sec_id} at byte offset {start} runs past the end of the module")
        body = _Reader(data, start, start + size)
        try:
            if sec_id == _SEC_IMPORT:
                _read_imports(body, info)
            elif sec_id == _SEC_EXPORT:
                for _ in range(body.u32()):
                    name = body.name()
                    kind = body.byte()
                    index = body.u32()
                    info.exports.append((name, kind))
                    if kind == 3:
                        info.export_index[name] = index
                    elif kind == _EXTERN_FUNC:
                        info.function_exports.setdefault(index, name)
            elif sec_id == _SEC_GLOBAL:
                _read_globals(body, info)
            elif sec_id == _SEC_CUSTOM:
                if body.name() == "name":
                    _read_name_section(body, info)
        except ModuleFormatError as exc:
            raise ModuleFormatError(f"in section {sec_id} (starting at byte offset {start}): {exc}") from None
        r.pos = start + size
    return info


def _read_imports(r: _Reader, info: ModuleInfo) -> None:
    for _ in range(r.u32()):
        module, name = r.name(), r.name()
        kind = r.byte()
        if kind == 0:          # function: type index
            r.u32()
            info.imported_functions += 1
        elif kind == 1:        # table: reftype + limits
            t = r.byte()
            if t in (0x63, 0x64):  # (ref null? ht)
                r.u32()
            r.skip_limits()
        elif kind == 2:        # memory
            r.skip_limits()
        elif kind == 3:        # global: valtype + mut
            t = r.byte()
            if t in (0x63, 0x64):
                r.u32()
            r.byte()
            info.imported_globals += 1
        elif kind == 4:        # tag
            r.byte()
            r.u32()
        else:
            raise ModuleFormatError(f"unknown import kind {kind} at byte offset {r.pos - 1}")
        info.imports.append((module, name, kind))


def _read_globals(r: _Reader, info: ModuleInfo) -> None:
    """Record the globals initialised by a lone ``i32.const`` (enough for the version exports)."""
    for i in range(r.u32()):
        t = r.byte()
        if t in (0x63, 0x64):
            r.s32()
        r.byte()  # mutability
        op = r.byte()
        if op == 0x41:
            value = r.s32()
            if r.byte() == 0x0B:
                info.global_i32_consts[info.imported_globals + i] = value
                continue
        # any other initialiser: the version globals are plain constants; stop here
        return


def _read_name_section(r: _Reader, info: ModuleInfo) -> None:
    info.module_name, info.function_names = read_name_subsections(r.data, r.pos, r.end)


def read_name_subsections(data: bytes | memoryview, start: int, end: int) -> tuple[str, dict[int, str]]:
    """The module name and the function names of a ``name`` section whose subsections span
    ``data[start:end]`` (after the section's own name).  A malformed section is read as far
    as it can be: names are a courtesy.  The one reader of names (the instrumenter's too)."""
    module_name = ""
    functions: dict[int, str] = {}
    r = _Reader(data, start, end)
    try:
        while r.pos < r.end:
            sub_id = r.byte()
            size = r.u32()
            sub_end = r.pos + size
            if sub_id == 0:
                module_name = r.name()
            elif sub_id == 1:
                for _ in range(r.u32()):
                    idx = r.u32()
                    functions[idx] = r.name()
            r.pos = sub_end
    except ModuleFormatError:
        pass
    return module_name, functions


class FunctionNames:
    """Resolves function indices to (display, raw) names, demangling each name once."""

    __slots__ = ("_raw", "_cache")

    def __init__(self, raw_names: dict[int, str]) -> None:
        self._raw = raw_names
        self._cache: dict[int, tuple[str, str]] = {}

    def __call__(self, index: int) -> tuple[str, str]:
        hit = self._cache.get(index)
        if hit is None:
            raw = self._raw.get(index)
            hit = (demangle(raw), raw) if raw is not None else (f"func[{index}]", f"func[{index}]")
            self._cache[index] = hit
        return hit

    def __len__(self) -> int:
        return len(self._raw)
