"""The instrumenting pass: make a module report function entries, exits and memory growth.

For each instrumented function ``f`` (index ``i`` in the output module) the body becomes::

    i32.const i; call $enter
    block (result <f's results>)          ;; or try / try_table, see below
      <original body>                      ;; a branch to its outermost label lands here
    end
    i32.const i; call $exit
    end

and ``i32.const i; call $exit`` is inserted before every ``return``, ``return_call``,
``return_call_indirect`` and ``return_call_ref``.  Because the original body keeps its
label depths relative to the new block, ``br``/``br_if``/``br_table`` to the function's
outermost label need no rewriting.  Where the module uses exceptions the block is a
``try ... catch_all (exit) rethrow`` (legacy proposal) or a ``try_table`` with
``catch_all_ref`` and ``throw_ref`` (``exnref`` proposal), so a function left by an
exception still reports its exit.  ``memory.grow`` is preceded by
``local.tee $scratch; call $memory_grow; local.get $scratch``.

Host calls: each imported function (but the Observe ABI's own) gets a wrapper, a
function of its own appended to the module that reports its entry and exit around
the call, and every reference to the import (calls, tables, exports, ``ref.func``)
goes to the wrapper instead; so a trace shows each host call (``fd_write``,
``clock_time_get``, ...) as a span.  The wrapper is named as the module names the
import, or ``__imported_<module>_<name>`` as wasi-libc and Dylibso's compiler do.
"""
from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import pydemumble

from ..abi import (
    NAMESPACES,
    NS_INSTRUMENT,
    NS_LEGACY,
    SUPPORTED_VERSION_MAJOR,
    SUPPORTED_VERSION_MINOR,
    VERSION_MAJOR_EXPORT,
    VERSION_MINOR_EXPORT,
)
from .binary import encode_name, read_u32, sleb, uleb
from .code import CALLS, EDIT_FUNC, EDIT_GROW, EDIT_RETURN, EXNREF_EH, LEGACY_EH, THROWS
from .errors import InstrumentError, WasmFormatError
from .module import (
    CODE,
    CUSTOM,
    DATA,
    ELEMENT,
    EXPORT,
    EXTERN_FUNC,
    EXTERN_GLOBAL,
    FUNCTION,
    GLOBAL,
    IMPORT,
    START,
    TABLE,
    TYPE,
    Body,
    FuncType,
    Module,
    Section,
    read_module,
)
from .namesec import function_names, name_section, rewrite_name_section

MARKER_SECTION = "observe_sdk.instrumented"
I32 = b"\x7f"
HOOKS = ("enter", "exit", "memory-grow")
_LEGACY_HOOKS = {"instrument_enter": "enter", "instrument_exit": "exit", "instrument_memory_grow": "memory-grow"}
# custom sections that hold code offsets, which move when bodies change
_OFFSET_SECTION_PREFIXES = (".debug_", "sourceMappingURL", "external_debug_info", "metadata.code.", "reloc.")


@dataclass
class Summary:
    """What :func:`instrument_module` did."""

    functions: int = 0                  # defined functions in the module
    instrumented: int = 0
    exits: int = 0                      # exit calls inserted (one per way out)
    grows: int = 0                      # memory.grow sites reported
    skipped_by_name: int = 0
    skipped_small: int = 0
    host_calls: int = 0                 # imports wrapped so that their calls are spans
    imports_added: list[str] = field(default_factory=list)
    hook_indices: dict[str, int] = field(default_factory=dict)
    exceptions: str = "none"            # "none", "legacy" or "exnref": how bodies were wrapped
    dropped_sections: list[str] = field(default_factory=list)
    input_size: int = 0
    output_size: int = 0
    code_size: int = 0                  # bytes of the input's code section

    def lines(self) -> list[str]:
        out = [f"instrumented {self.instrumented} of {self.functions} functions "
               f"({self.exits} exits, {self.grows} memory.grow sites)"]
        if self.host_calls:
            out.append(f"wrapped {self.host_calls} imported functions: their calls are spans")
        if self.skipped_by_name or self.skipped_small:
            out.append(f"skipped {self.skipped_by_name} by name, {self.skipped_small} small leaf functions")
        if self.imports_added:
            out.append("imports added: " + ", ".join(f"{NS_INSTRUMENT}.{n} (func {self.hook_indices[n]})"
                                                    for n in self.imports_added))
        if self.exceptions != "none":
            out.append(f"bodies wrapped for {self.exceptions} exception handling")
        if self.dropped_sections:
            out.append("dropped sections whose code offsets no longer hold: " + ", ".join(self.dropped_sections))
        out.append(f"size {self.input_size} -> {self.output_size} bytes")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


@dataclass
class InstrumentResult:
    wasm: bytes
    summary: Summary


def instrument(wasm_bytes: bytes, *, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None,
               min_instructions: int = 0, memory: bool = True, imports: bool = True) -> bytes:
    """Return ``wasm_bytes`` instrumented for the Observe ABI (see :func:`instrument_module`)."""
    return instrument_module(wasm_bytes, include=include, exclude=exclude, min_instructions=min_instructions,
                             memory=memory, imports=imports).wasm


def instrument_module(wasm_bytes: bytes, *, include: Iterable[str] | None = None,
                      exclude: Iterable[str] | None = None, min_instructions: int = 0,
                      memory: bool = True, imports: bool = True) -> InstrumentResult:
    """Instrument a module and say what was done.

    ``include``/``exclude``: glob patterns matched against each function's demangled
    name (and its raw name); with ``include``, only matching functions are instrumented.
    ``min_instructions``: leave out functions with fewer instructions that call nothing.
    ``memory``: report ``memory.grow`` through ``memory-grow``.
    ``imports``: wrap imported functions so that host calls are spans (``include``/``exclude``
    apply to the wrappers' names too).
    Raises :class:`WasmFormatError` for malformed input and :class:`InstrumentError` for
    modules that must not be instrumented (already instrumented, object files).
    """
    if min_instructions < 0:
        raise InstrumentError("min_instructions must be >= 0")
    module = read_module(wasm_bytes)
    return _Pass(module, tuple(include or ()), tuple(exclude or ()), min_instructions, memory, imports).run()


def _wrapper(mode: str, block_type: bytes, exit_seq: bytes) -> tuple[bytes, bytes]:
    """Bytes opening and closing an instrumented body (the function's own ``end`` follows).

    ``none``:   block (bt) BODY end EXIT
    ``legacy``: try (bt) BODY catch_all EXIT rethrow 0 end EXIT
    ``exnref``: block (bt) block (result exnref) try_table (bt) (catch_all_ref 0) BODY end
                br 1 end EXIT throw_ref end EXIT

    The opening puts 1 label (3 for ``exnref``) in front of the body, so the body's
    branches to its outermost label now land just before the final EXIT.
    """
    if mode == "legacy":
        return b"\x06" + block_type, b"\x19" + exit_seq + b"\x09\x00\x0b" + exit_seq
    if mode == "exnref":
        return (b"\x02" + block_type + b"\x02\x69\x1f" + block_type + b"\x01\x03\x00",
                b"\x0b\x0c\x01\x0b" + exit_seq + b"\x0a\x0b" + exit_seq)
    return b"\x02" + block_type, b"\x0b" + exit_seq


def _matches(names: list[str], globs: tuple[str, ...]) -> bool:
    """A glob matches a name as a pattern, or literally (names like ``func[3]`` have brackets)."""
    return any(name == glob or fnmatch.fnmatchcase(name, glob) for name in names for glob in globs)


def _wrapper_name(module: str, name: str) -> str:
    """``__imported_<module>_<name>``, as wasi-libc names its imports (C identifier characters only)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", f"__imported_{module}_{name}")


def _check_instrumentable(module: Module) -> None:
    if module.section(CUSTOM, MARKER_SECTION) is not None:
        raise InstrumentError("module is already instrumented (it has the custom section "
                              f"'{MARKER_SECTION}'); instrument the original module instead")
    for exp in module.exports:
        if exp.name in (VERSION_MAJOR_EXPORT, VERSION_MINOR_EXPORT):
            raise InstrumentError(f"module is already instrumented (it exports '{exp.name}'); "
                                  "instrument the original module instead")
    if module.section(CUSTOM, "linking") is not None:
        raise InstrumentError("module is a relocatable object file (it has a 'linking' section); "
                              "instrument the linked module instead")


class _Pass:
    def __init__(self, module: Module, include: tuple[str, ...], exclude: tuple[str, ...],
                 min_instructions: int, memory: bool, imports: bool) -> None:
        self.m = module
        self.wrap_imports = imports
        self.wrappers: dict[int, int] = {}  # imported function index -> its wrapper's index
        self.wrapper_names: list[tuple[int, str]] = []
        self.names: dict[int, str] = {}     # the input's function names, by index
        self.include = include
        self.exclude = exclude
        self.min_instructions = min_instructions
        self.memory = memory
        self.summary = Summary(functions=len(module.functions), input_size=len(module.data))
        self.new_types: list[bytes] = []    # encodings of types appended to the type section
        self.type_count = len(module.types)
        self.nimp = self.shift = 0          # imported functions before; imports added
        self.hooks: dict[str, int] = {}     # hook name -> function index
        self.grow: int | None = None        # memory-grow's index when growth is reported
        self.mode = "none"                  # how bodies are wrapped for exceptions

    # --- types ----------------------------------------------------------------
    def _type_index(self, params: tuple[bytes, ...], results: tuple[bytes, ...], plain: bool) -> int:
        for i, ftype in enumerate(self.m.types):
            if ftype is not None and ftype.params == params and ftype.results == results and \
                    (ftype.plain or not plain):
                return i
        encoding = b"\x60" + uleb(len(params)) + b"".join(params) + uleb(len(results)) + b"".join(results)
        self.m.types.append(FuncType(params, results, True))
        self.new_types.append(encoding)
        self.type_count += 1
        return self.type_count - 1

    def _block_type(self, results: tuple[bytes, ...]) -> bytes:
        if not results:
            return b"\x40"
        if len(results) == 1:
            return results[0]
        return sleb(self._type_index((), results, plain=False))

    # --- hooks ----------------------------------------------------------------
    def _hooks(self) -> None:
        """Find or add the imports of dylibso:observe/instrument."""
        m = self.m
        found: dict[str, int] = {}
        func_index = 0
        for imp in m.imports:
            if imp.kind != EXTERN_FUNC:
                continue
            hook = None
            if imp.module == NS_INSTRUMENT and imp.name in HOOKS:
                hook = imp.name
            elif imp.module == NS_LEGACY and imp.name in _LEGACY_HOOKS:
                hook = _LEGACY_HOOKS[imp.name]
            if hook is not None and hook not in found:
                ftype = m.types[imp.type_index] if imp.type_index < len(m.types) else None
                if ftype is None or ftype.params != (I32,) or ftype.results:
                    raise InstrumentError(f"import {imp.module}.{imp.name} has the wrong type (expected (i32) -> ())")
                found[hook] = func_index
            func_index += 1
        self.nimp = func_index
        wanted = HOOKS if self.memory else HOOKS[:2]
        missing = [h for h in wanted if h not in found]
        self.shift = len(missing)
        if missing:
            type_index = self._type_index((I32,), (), plain=True)
            entries = b"".join(encode_name(NS_INSTRUMENT) + encode_name(h) + b"\x00" + uleb(type_index)
                               for h in missing)
            for j, hook in enumerate(missing):
                found[hook] = self.nimp + j
            self._append_entries(IMPORT, len(m.imports), entries, len(missing))
        self.hooks = found
        self.summary.imports_added = missing
        self.summary.hook_indices = dict(found)

    def _append_entries(self, section_id: int, old_count: int, entries: bytes, added: int) -> None:
        """Append encoded entries to a vector section (creating it if needed)."""
        sec = self.m.section(section_id)
        if sec is None:
            self.m.insert_section(Section(section_id, -1, 0, 0, payload=uleb(added) + entries))
            return
        if sec.payload is not None:
            _, start = read_u32(sec.payload, 0)
            body = sec.payload[start:]
        else:
            _, start = read_u32(self.m.data, sec.payload_start)
            body = self.m.data[start:sec.payload_end]
        sec.payload = uleb(old_count + added) + body + entries

    def new_index(self, old: int) -> int:
        """Where function ``old`` is in the output (imports stay where they are)."""
        return old + self.shift if old >= self.nimp else old

    def ref_index(self, old: int) -> int:
        """What a reference to function ``old`` points to in the output: wrapped imports go to their wrapper."""
        return old + self.shift if old >= self.nimp else self.wrappers.get(old, old)

    # --- host calls -------------------------------------------------------------
    def _choose_wrappers(self, names: dict[int, str]) -> None:
        """Pick the imports to wrap and give each wrapper its index (after every defined function)."""
        if not self.wrap_imports:
            return
        func_index = 0
        next_index = self.nimp + self.shift + len(self.m.functions)
        for imp in self.m.imports:
            if imp.kind != EXTERN_FUNC:
                continue
            old, func_index = func_index, func_index + 1
            if imp.module in NAMESPACES:
                continue
            name = names.get(old) or _wrapper_name(imp.module, imp.name)
            if not self._name_selected([pydemumble.demangle(name) or name, name]):
                continue
            self.wrappers[old] = next_index
            self.wrapper_names.append((next_index, name))
            next_index += 1
        self.summary.host_calls = len(self.wrappers)

    def _add_wrappers(self) -> None:
        """Append the wrappers: function section entries, bodies, names."""
        if not self.wrappers:
            return
        m = self.m
        types = {old: imp.type_index for old, imp in
                 enumerate(imp for imp in m.imports if imp.kind == EXTERN_FUNC)}
        enter, exit_ = uleb(self.hooks["enter"]), uleb(self.hooks["exit"])
        entries, bodies = [], []
        for old, index in self.wrappers.items():
            ftype = m.types[types[old]]
            assert ftype is not None  # an import of a struct/array type does not validate
            const = b"\x41" + sleb(index)
            code = (b"\x00" + const + b"\x10" + enter
                    + b"".join(b"\x20" + uleb(i) for i in range(len(ftype.params)))
                    + b"\x10" + uleb(old) + const + b"\x10" + exit_ + b"\x0b")
            entries.append(uleb(types[old]))
            bodies.append(uleb(len(code)) + code)
        self._append_entries(FUNCTION, len(m.functions), b"".join(entries), len(entries))
        self._append_entries(CODE, len(m.bodies), b"".join(bodies), len(bodies))
        self.summary.exits += len(bodies)

    # --- selection ------------------------------------------------------------
    def _name_selected(self, candidates: list[str]) -> bool:
        """Whether ``include``/``exclude`` let a function of these names be instrumented."""
        return not ((self.include and not _matches(candidates, self.include)) or _matches(candidates, self.exclude))

    def _selected(self, defined: int, body: Body, names: dict[int, str]) -> bool:
        old = self.nimp + defined
        if self.include or self.exclude:
            raw = names.get(old)
            candidates = [f"func[{self.new_index(old)}]"] if raw is None else [pydemumble.demangle(raw) or raw, raw]
            if not self._name_selected(candidates):
                self.summary.skipped_by_name += 1
                return False
        if body.scan.instructions < self.min_instructions and not body.scan.flags & CALLS:
            self.summary.skipped_small += 1
            return False
        return True

    # --- code -----------------------------------------------------------------
    def _exception_mode(self) -> str:
        flags = 0
        for body in self.m.bodies:
            flags |= body.scan.flags
        if flags & LEGACY_EH:
            return "legacy"
        if flags & (EXNREF_EH | THROWS) or self.m.tag_count:
            return "exnref"
        return "none"

    def _rewrite_code(self) -> dict[int, int]:
        """Rewrite the code section; return the labels added per (new) function index."""
        m, data, summary = self.m, self.m.data, self.summary
        sec = m.section(CODE)
        label_shift: dict[int, int] = {}
        if sec is None:
            return label_shift
        self.mode = self._exception_mode()
        summary.exceptions = self.mode
        summary.code_size = sec.payload_end - sec.payload_start
        names = self.names
        self.grow = self.hooks.get("memory-grow") if self.memory else None
        _, first = read_u32(data, sec.payload_start)
        out = [data[sec.payload_start:first]]
        for defined, body in enumerate(m.bodies):
            instrumented = self._selected(defined, body, names)
            new_body = self._rewrite_body(defined, body, instrumented)
            if new_body is None:
                out.append(data[body.size_start:body.end])
                continue
            if instrumented:
                label_shift[self.nimp + self.shift + defined] = 3 if self.mode == "exnref" else 1
            out.append(uleb(len(new_body)))
            out.append(new_body)
        sec.payload = b"".join(out)
        return label_shift

    def _rewrite_body(self, defined: int, body: Body, instrumented: bool) -> bytes | None:
        """The new body of a defined function, or None when it stays as it is."""
        data, summary, shift, nimp = self.m.data, self.summary, self.shift, self.nimp
        edits = body.scan.edits
        grows = [e for e in edits if e[0] == EDIT_GROW] if self.grow is not None else []
        moved = bool(shift or self.wrappers)
        if not instrumented and not grows and (not moved or not any(e[0] == EDIT_FUNC for e in edits)):
            return None
        ftype = self.m.types[self.m.functions[defined]]
        assert ftype is not None    # checked by read_module
        header, scratch = self._locals(body, ftype, grows)
        parts = [header]
        exit_seq = close = b""
        if instrumented:
            summary.instrumented += 1
            const = b"\x41" + sleb(nimp + shift + defined)
            exit_seq = const + b"\x10" + uleb(self.hooks["exit"])
            opening, close = _wrapper(self.mode, self._block_type(ftype.results), exit_seq)
            parts.append(const + b"\x10" + uleb(self.hooks["enter"]) + opening)
        memories64 = self.m.memories64
        cursor = body.code_start
        for kind, pos, a, value in edits:
            if kind == EDIT_FUNC:
                target = self.ref_index(value)
                if target != value:
                    parts.append(data[cursor:pos])
                    parts.append(uleb(target))
                    cursor = a
            elif kind == EDIT_RETURN:
                if instrumented:
                    parts.append(data[cursor:pos])
                    parts.append(exit_seq)
                    summary.exits += 1
                    cursor = pos
            elif self.grow is not None:
                local, is64 = scratch[memories64[a]], memories64[a]
                parts.append(data[cursor:pos])
                parts.append(b"\x22" + uleb(local) + (b"\xa7" if is64 else b"")      # local.tee (i32.wrap_i64)
                             + b"\x10" + uleb(self.grow) + b"\x20" + uleb(local))      # call, local.get
                summary.grows += 1
                cursor = pos
        if instrumented:
            parts.append(data[cursor:body.end - 1])
            parts.append(close + b"\x0b")
            summary.exits += 1 if self.mode == "none" else 2
        else:
            parts.append(data[cursor:body.end])
        return b"".join(parts)

    def _locals(self, body: Body, ftype: FuncType,
                grows: list[tuple[int, int, int, int]]) -> tuple[bytes, dict[bool, int]]:
        """The locals declaration, plus one scratch local per kind of memory (32/64-bit) grown."""
        data, memories64 = self.m.data, self.m.memories64
        scratch: dict[bool, int] = {}
        next_local = len(ftype.params) + body.locals_count
        for _, pos, memidx, _ in grows:
            if memidx >= len(memories64):
                raise WasmFormatError(f"memory.grow of memory {memidx}, which does not exist",
                                      section="code", offset=pos)
            if memories64[memidx] not in scratch:
                scratch[memories64[memidx]] = next_local
                next_local += 1
        if not scratch:
            return data[body.start:body.code_start], scratch
        _, groups_end = read_u32(data, body.start)
        declared = b"".join(b"\x01" + (b"\x7e" if is64 else b"\x7f") for is64 in scratch)
        return uleb(body.local_groups + len(scratch)) + data[groups_end:body.code_start] + declared, scratch

    # --- other sections -------------------------------------------------------
    def _patch_func_refs(self) -> None:
        if not self.shift and not self.wrappers:
            return
        m, data = self.m, self.m.data
        for section_id in (TABLE, GLOBAL, EXPORT, START, ELEMENT, DATA):
            refs = m.func_refs.get(section_id)
            sec = m.section(section_id)
            if not refs or sec is None:
                continue
            parts = []
            cursor = sec.payload_start
            for start, end, value in refs:
                target = self.ref_index(value)
                if target != value:
                    parts.append(data[cursor:start])
                    parts.append(uleb(target))
                    cursor = end
            parts.append(data[cursor:sec.payload_end])
            sec.payload = b"".join(parts)

    def _version_exports(self) -> None:
        """Export the version globals that Dylibso's compiler adds, for the other SDKs."""
        m = self.m
        globals_ = b"".join(b"\x7f\x00\x41" + sleb(v) + b"\x0b"
                            for v in (SUPPORTED_VERSION_MAJOR, SUPPORTED_VERSION_MINOR))
        defined_globals = m.global_count - sum(1 for imp in m.imports if imp.kind == EXTERN_GLOBAL)
        self._append_entries(GLOBAL, defined_globals, globals_, 2)
        first = m.global_count
        exports = (encode_name(VERSION_MAJOR_EXPORT) + b"\x03" + uleb(first)
                   + encode_name(VERSION_MINOR_EXPORT) + b"\x03" + uleb(first + 1))
        self._append_entries(EXPORT, len(m.exports), exports, 2)

    def _custom_sections(self, label_shift: dict[int, int]) -> None:
        code = self.m.section(CODE)
        code_moved = code is not None and code.payload is not None and \
            code.payload != self.m.data[code.payload_start:code.payload_end]
        kept = []
        if self.wrapper_names and self.m.section(CUSTOM, "name") is None:
            self.m.sections.append(Section(CUSTOM, -1, 0, 0, name="name",
                                           payload=name_section(self.wrapper_names)))
        for sec in self.m.sections:
            if code_moved and sec.id == CUSTOM and sec.name.startswith(_OFFSET_SECTION_PREFIXES):
                self.summary.dropped_sections.append(sec.name)
                continue
            if sec.id == CUSTOM and sec.name == "name" and sec.payload is None and \
                    (self.shift or label_shift or self.wrapper_names):
                try:
                    sec.payload = rewrite_name_section(self.m, sec, self.new_index, label_shift, self.wrapper_names)
                except WasmFormatError:
                    self.summary.dropped_sections.append("name (malformed)")
                    continue
            kept.append(sec)
        marker = encode_name(MARKER_SECTION) + b"observe_sdk.instrument 1"
        kept.append(Section(CUSTOM, -1, 0, 0, name=MARKER_SECTION, payload=marker))
        self.m.sections = kept

    def run(self) -> InstrumentResult:
        _check_instrumentable(self.m)
        self._hooks()
        self.names = function_names(self.m)
        self._choose_wrappers(self.names)
        self._patch_func_refs()      # before sections get new payloads from appends
        label_shift = self._rewrite_code()
        self._add_wrappers()
        self._version_exports()
        if self.new_types:
            self._append_entries(TYPE, self.m.type_groups, b"".join(self.new_types), len(self.new_types))
        self._custom_sections(label_shift)
        wasm = self.m.to_bytes()
        self.summary.output_size = len(wasm)
        return InstrumentResult(wasm, self.summary)
