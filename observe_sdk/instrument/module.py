"""Reading and writing WebAssembly modules.

:func:`read_module` splits a module into sections and decodes every known section
(types, imports, functions, tables, memories, tags, globals, exports, start, elements,
data count, code, data) far enough to locate everything that refers to a function
index, and scans every function body.  Nothing is copied: each section keeps its
original bytes, so :meth:`Module.to_bytes` of an unmodified module returns exactly the
input.  A pass changes a section by giving it a new payload (``Section.payload``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .binary import encode_section, read_name, read_u32, skip_heaptype, skip_leb
from .code import EDIT_FUNC, Scan, scan
from .errors import WasmFormatError

MAGIC = b"\x00asm"
VERSION = b"\x01\x00\x00\x00"

CUSTOM, TYPE, IMPORT, FUNCTION, TABLE, MEMORY, GLOBAL, EXPORT, START, ELEMENT, CODE, DATA, \
    DATACOUNT, TAG = range(14)

SECTION_NAMES = {
    CUSTOM: "custom", TYPE: "type", IMPORT: "import", FUNCTION: "function", TABLE: "table",
    MEMORY: "memory", GLOBAL: "global", EXPORT: "export", START: "start", ELEMENT: "element",
    CODE: "code", DATA: "data", DATACOUNT: "datacount", TAG: "tag",
}
# position of each known section in the order the binary format requires
ORDER = {TYPE: 1, IMPORT: 2, FUNCTION: 3, TABLE: 4, MEMORY: 5, TAG: 6, GLOBAL: 7, EXPORT: 8,
         START: 9, ELEMENT: 10, DATACOUNT: 11, CODE: 12, DATA: 13}

EXTERN_FUNC, EXTERN_TABLE, EXTERN_MEMORY, EXTERN_GLOBAL, EXTERN_TAG = range(5)


@dataclass(slots=True)
class Section:
    id: int
    offset: int                 # offset of the section id byte in the input (-1 if new)
    payload_start: int
    payload_end: int
    name: str = ""              # custom sections only
    raw: bytes = b""            # the section as it was read (id, size, payload)
    payload: bytes | None = None  # a replacement payload set by a pass

    @property
    def label(self) -> str:
        return f"custom '{self.name}'" if self.id == CUSTOM else SECTION_NAMES[self.id]

    def to_bytes(self) -> bytes:
        if self.payload is None:
            return self.raw
        return encode_section(self.id, self.payload)


@dataclass(slots=True)
class FuncType:
    params: tuple[bytes, ...]   # raw value-type encodings
    results: tuple[bytes, ...]
    plain: bool                 # a final function type alone in its recursion group


@dataclass(slots=True)
class Import:
    module: str
    name: str
    kind: int
    type_index: int = -1        # functions and tags
    memory64: bool = False


@dataclass(slots=True)
class Export:
    name: str
    kind: int
    index: int


@dataclass(slots=True)
class Body:
    size_start: int             # where the body's size prefix starts
    start: int                  # first byte of the body (locals)
    code_start: int             # first instruction, after the locals
    end: int
    locals_count: int           # number of declared locals
    local_groups: int           # number of (count, type) entries
    scan: Scan


@dataclass
class Module:
    data: bytes
    sections: list[Section]
    types: list[FuncType | None] = field(default_factory=list)  # None: struct/array type
    type_groups: int = 0        # entries (recursion groups) in the type section
    imports: list[Import] = field(default_factory=list)
    functions: list[int] = field(default_factory=list)        # type index per defined function
    memories64: list[bool] = field(default_factory=list)       # all memories, imports first
    table_count: int = 0
    global_count: int = 0
    tag_count: int = 0
    exports: list[Export] = field(default_factory=list)
    start: int | None = None
    bodies: list[Body] = field(default_factory=list)
    # where function indices occur outside the code section: section id -> (start, end, index)
    func_refs: dict[int, list[tuple[int, int, int]]] = field(default_factory=dict)

    @property
    def imported_functions(self) -> int:
        return sum(1 for imp in self.imports if imp.kind == EXTERN_FUNC)

    def section(self, section_id: int, name: str | None = None) -> Section | None:
        for sec in self.sections:
            if sec.id == section_id and (name is None or sec.name == name):
                return sec
        return None

    def custom_sections(self) -> list[Section]:
        return [sec for sec in self.sections if sec.id == CUSTOM]

    def insert_section(self, section: Section) -> None:
        """Place a new known section where the binary format's order requires it."""
        rank = ORDER[section.id]
        for i, sec in enumerate(self.sections):
            if sec.id != CUSTOM and ORDER[sec.id] > rank:
                self.sections.insert(i, section)
                return
        last = max((i for i, sec in enumerate(self.sections) if sec.id != CUSTOM), default=-1)
        self.sections.insert(last + 1, section)

    def to_bytes(self) -> bytes:
        return b"".join([MAGIC, VERSION, *(sec.to_bytes() for sec in self.sections)])


def read_module(data: bytes) -> Module:
    """Parse a WebAssembly binary module; raise :class:`WasmFormatError` if malformed."""
    data = bytes(data)
    if len(data) < 8 or data[:4] != MAGIC:
        raise WasmFormatError("not a WebAssembly binary (bad magic number)", section="header", offset=0)
    if data[4:8] != VERSION:
        if data[4:8] == b"\x0d\x00\x01\x00":
            raise WasmFormatError("this is a WebAssembly component, not a core module", section="header",
                                  offset=4)
        raise WasmFormatError(f"unsupported version {data[4:8].hex()}", section="header", offset=4)
    module = Module(data, _split_sections(data))
    for sec in module.sections:
        parser = _PARSERS.get(sec.id)
        if parser is not None:
            try:
                parser(module, sec)
            except IndexError:
                raise WasmFormatError("unexpected end of section contents", section=sec.label,
                                      offset=sec.payload_end) from None
    _check_function_count(module)
    return module


def _split_sections(data: bytes) -> list[Section]:
    sections: list[Section] = []
    pos = 8
    last_rank = 0
    seen: set[int] = set()
    while pos < len(data):
        offset = pos
        section_id = data[pos]
        if section_id not in SECTION_NAMES:
            raise WasmFormatError(f"unknown section id {section_id}", section="module", offset=pos)
        label = SECTION_NAMES[section_id]
        size, start = read_u32(data, pos + 1, label)
        end = start + size
        if end > len(data):
            raise WasmFormatError(f"section size {size} runs past the end of the module ({len(data)} bytes)",
                                  section=label, offset=offset)
        sec = Section(section_id, offset, start, end, raw=data[offset:end])
        if section_id == CUSTOM:
            sec.name, _ = read_name(data, start, end, "custom")
        else:
            if section_id in seen:
                raise WasmFormatError("duplicate section", section=label, offset=offset)
            if ORDER[section_id] < last_rank:
                raise WasmFormatError("section out of order", section=label, offset=offset)
            seen.add(section_id)
            last_rank = ORDER[section_id]
        sections.append(sec)
        pos = end
    return sections


# --- section parsers ------------------------------------------------------------

def _valtype(data: bytes, pos: int, label: str) -> int:
    b = data[pos]
    if b == 0x63 or b == 0x64:
        return skip_heaptype(data, pos + 1, label)
    if b < 0x60 and b not in (0x77, 0x78):
        raise WasmFormatError(f"invalid value type 0x{b:02x}", section=label, offset=pos)
    return pos + 1


def _limits(data: bytes, pos: int, label: str) -> tuple[int, bool]:
    flags = data[pos]
    if flags > 0x0F:
        raise WasmFormatError(f"invalid limits flags 0x{flags:02x}", section=label, offset=pos)
    pos = skip_leb(data, pos + 1, label)
    if flags & 1:
        pos = skip_leb(data, pos, label)
    if flags & 8:
        pos = skip_leb(data, pos, label)
    return pos, bool(flags & 4)


def _expr(module: Module, sec: Section, pos: int, refs: list[tuple[int, int, int]]) -> int:
    result = scan(module.data, pos, sec.payload_end, sec.label, "constant expression")
    refs.extend((s, e, v) for kind, s, e, v in result.edits if kind == EDIT_FUNC)
    return result.end


def _finish(sec: Section, pos: int) -> None:
    if pos != sec.payload_end:
        raise WasmFormatError(f"section size mismatch: contents end at {pos}, section at {sec.payload_end}",
                              section=sec.label, offset=pos)


def _parse_types(module: Module, sec: Section) -> None:
    data, label = module.data, sec.label
    count, pos = read_u32(data, sec.payload_start, label)
    module.type_groups = count
    types = module.types

    def subtype(pos: int, plain: bool) -> int:
        b = data[pos]
        if b == 0x50 or b == 0x4F:
            n, pos = read_u32(data, pos + 1, label)
            plain = plain and b == 0x4F and n == 0
            for _ in range(n):
                pos = skip_leb(data, pos, label)
            b = data[pos]
        form_pos = pos
        pos += 1
        if b == 0x60:
            params: list[bytes] = []
            results: list[bytes] = []
            for out in (params, results):
                n, pos = read_u32(data, pos, label)
                for _ in range(n):
                    nxt = _valtype(data, pos, label)
                    out.append(data[pos:nxt])
                    pos = nxt
            types.append(FuncType(tuple(params), tuple(results), plain))
            return pos
        if b == 0x5F:
            n, pos = read_u32(data, pos, label)
        elif b == 0x5E:
            n = 1
        else:
            raise WasmFormatError(f"invalid type form 0x{b:02x}", section=label, offset=form_pos)
        for _ in range(n):
            pos = _valtype(data, pos, label) + 1   # storage type, mutability
        types.append(None)
        return pos

    try:
        for _ in range(count):
            if data[pos] == 0x4E:
                n, pos = read_u32(data, pos + 1, label)
                for _ in range(n):
                    pos = subtype(pos, False)
            else:
                pos = subtype(pos, True)
    except IndexError:
        raise WasmFormatError("unexpected end of section", section=label, offset=pos) from None
    _finish(sec, pos)


def _parse_imports(module: Module, sec: Section) -> None:
    data, label, end = module.data, sec.label, sec.payload_end
    count, pos = read_u32(data, sec.payload_start, label)
    try:
        for _ in range(count):
            mod, pos = read_name(data, pos, end, label)
            name, pos = read_name(data, pos, end, label)
            kind = data[pos]
            pos += 1
            imp = Import(mod, name, kind)
            if kind == EXTERN_FUNC:
                imp.type_index, pos = read_u32(data, pos, label)
            elif kind == EXTERN_TABLE:
                pos, _ = _limits(data, _valtype(data, pos, label), label)
                module.table_count += 1
            elif kind == EXTERN_MEMORY:
                pos, imp.memory64 = _limits(data, pos, label)
                module.memories64.append(imp.memory64)
            elif kind == EXTERN_GLOBAL:
                pos = _valtype(data, pos, label) + 1
                module.global_count += 1
            elif kind == EXTERN_TAG:
                imp.type_index, pos = read_u32(data, pos + 1, label)
                module.tag_count += 1
            else:
                raise WasmFormatError(f"invalid import kind 0x{kind:02x} for {mod}.{name}",
                                      section=label, offset=pos - 1)
            module.imports.append(imp)
    except IndexError:
        raise WasmFormatError("unexpected end of section", section=label, offset=pos) from None
    _finish(sec, pos)


def _parse_functions(module: Module, sec: Section) -> None:
    count, pos = read_u32(module.data, sec.payload_start, sec.label)
    for _ in range(count):
        type_index, pos = read_u32(module.data, pos, sec.label)
        module.functions.append(type_index)
    _finish(sec, pos)


def _parse_tables(module: Module, sec: Section) -> None:
    data, label = module.data, sec.label
    refs = module.func_refs.setdefault(TABLE, [])
    count, pos = read_u32(data, sec.payload_start, label)
    try:
        for _ in range(count):
            with_init = data[pos] == 0x40
            if with_init:
                if data[pos + 1] != 0x00:
                    raise WasmFormatError("invalid table encoding", section=label, offset=pos + 1)
                pos += 2
            pos, _ = _limits(data, _valtype(data, pos, label), label)
            if with_init:
                pos = _expr(module, sec, pos, refs)
            module.table_count += 1
    except IndexError:
        raise WasmFormatError("unexpected end of section", section=label, offset=pos) from None
    _finish(sec, pos)


def _parse_memories(module: Module, sec: Section) -> None:
    count, pos = read_u32(module.data, sec.payload_start, sec.label)
    for _ in range(count):
        pos, is64 = _limits(module.data, pos, sec.label)
        module.memories64.append(is64)
    _finish(sec, pos)


def _parse_tags(module: Module, sec: Section) -> None:
    count, pos = read_u32(module.data, sec.payload_start, sec.label)
    for _ in range(count):
        if module.data[pos] != 0x00:
            raise WasmFormatError("invalid tag attribute", section=sec.label, offset=pos)
        _, pos = read_u32(module.data, pos + 1, sec.label)
        module.tag_count += 1
    _finish(sec, pos)


def _parse_globals(module: Module, sec: Section) -> None:
    refs = module.func_refs.setdefault(GLOBAL, [])
    count, pos = read_u32(module.data, sec.payload_start, sec.label)
    for _ in range(count):
        pos = _valtype(module.data, pos, sec.label) + 1
        pos = _expr(module, sec, pos, refs)
        module.global_count += 1
    _finish(sec, pos)


def _parse_exports(module: Module, sec: Section) -> None:
    data, label = module.data, sec.label
    refs = module.func_refs.setdefault(EXPORT, [])
    count, pos = read_u32(data, sec.payload_start, label)
    for _ in range(count):
        name, pos = read_name(data, pos, sec.payload_end, label)
        kind = data[pos]
        if kind > EXTERN_TAG:
            raise WasmFormatError(f"invalid export kind 0x{kind:02x} for '{name}'", section=label, offset=pos)
        index, end = read_u32(data, pos + 1, label)
        if kind == EXTERN_FUNC:
            refs.append((pos + 1, end, index))
        module.exports.append(Export(name, kind, index))
        pos = end
    _finish(sec, pos)


def _parse_start(module: Module, sec: Section) -> None:
    index, end = read_u32(module.data, sec.payload_start, sec.label)
    module.start = index
    module.func_refs[START] = [(sec.payload_start, end, index)]
    _finish(sec, end)


def _parse_elements(module: Module, sec: Section) -> None:
    data, label = module.data, sec.label
    refs = module.func_refs.setdefault(ELEMENT, [])
    count, pos = read_u32(data, sec.payload_start, label)
    try:
        for _ in range(count):
            flags_pos = pos
            flags, pos = read_u32(data, pos, label)
            if flags > 7:
                raise WasmFormatError(f"invalid element segment flags {flags}", section=label, offset=flags_pos)
            if flags & 3 == 2:                      # explicit table index
                pos = skip_leb(data, pos, label)
            if not flags & 1:                       # active: offset expression
                pos = _expr(module, sec, pos, refs)
            if flags & 3:                           # element kind / reference type present
                if flags & 4:
                    pos = _valtype(data, pos, label)
                else:
                    if data[pos] != 0x00:
                        raise WasmFormatError("invalid element kind", section=label, offset=pos)
                    pos += 1
            n, pos = read_u32(data, pos, label)
            for _ in range(n):
                if flags & 4:
                    pos = _expr(module, sec, pos, refs)
                else:
                    index, end = read_u32(data, pos, label)
                    refs.append((pos, end, index))
                    pos = end
    except IndexError:
        raise WasmFormatError("unexpected end of section", section=label, offset=pos) from None
    _finish(sec, pos)


def _parse_datacount(module: Module, sec: Section) -> None:
    _, pos = read_u32(module.data, sec.payload_start, sec.label)
    _finish(sec, pos)


def _parse_code(module: Module, sec: Section) -> None:
    data, label = module.data, sec.label
    count, pos = read_u32(data, sec.payload_start, label)
    bodies = module.bodies
    for i in range(count):
        size_start = pos
        size, start = read_u32(data, pos, label)
        end = start + size
        if end > sec.payload_end:
            raise WasmFormatError(f"body of function {i} (defined) runs past the end of the section",
                                  section=label, offset=size_start)
        groups, p = read_u32(data, start, label)
        total = 0
        for _ in range(groups):
            n, p = read_u32(data, p, label)
            total += n
            p = _valtype(data, p, label)
        if total > 50000:
            raise WasmFormatError(f"function {i} (defined) declares too many locals ({total})",
                                  section=label, offset=start)
        result = scan(data, p, end, label, f"body of defined function {i}")
        if result.end != end:
            raise WasmFormatError(f"body of defined function {i} has bytes after its final 'end'",
                                  section=label, offset=result.end)
        bodies.append(Body(size_start, start, p, end, total, groups, result))
        pos = end
    _finish(sec, pos)


def _parse_data(module: Module, sec: Section) -> None:
    data, label = module.data, sec.label
    refs = module.func_refs.setdefault(DATA, [])
    count, pos = read_u32(data, sec.payload_start, label)
    for _ in range(count):
        flags_pos = pos
        flags, pos = read_u32(data, pos, label)
        if flags > 2:
            raise WasmFormatError(f"invalid data segment flags {flags}", section=label, offset=flags_pos)
        if flags == 2:
            pos = skip_leb(data, pos, label)
        if flags != 1:
            pos = _expr(module, sec, pos, refs)
        size, pos = read_u32(data, pos, label)
        pos += size
        if pos > sec.payload_end:
            raise WasmFormatError("data segment runs past the end of the section", section=label, offset=flags_pos)
    _finish(sec, pos)


_PARSERS = {
    TYPE: _parse_types, IMPORT: _parse_imports, FUNCTION: _parse_functions, TABLE: _parse_tables,
    MEMORY: _parse_memories, TAG: _parse_tags, GLOBAL: _parse_globals, EXPORT: _parse_exports,
    START: _parse_start, ELEMENT: _parse_elements, DATACOUNT: _parse_datacount, CODE: _parse_code,
    DATA: _parse_data,
}


def _check_function_count(module: Module) -> None:
    if len(module.functions) != len(module.bodies):
        sec = module.section(CODE) or module.section(FUNCTION)
        raise WasmFormatError(f"function section declares {len(module.functions)} functions but the code "
                              f"section has {len(module.bodies)} bodies",
                              section="code" if module.section(CODE) else "function",
                              offset=sec.offset if sec else None)
    for i, type_index in enumerate(module.functions):
        if type_index >= len(module.types) or module.types[type_index] is None:
            func_sec = module.section(FUNCTION)
            raise WasmFormatError(f"defined function {i} refers to type {type_index}, which is not a function type",
                                  section="function", offset=func_sec.offset if func_sec else None)
