"""The ``name`` custom section: reading function names and shifting indices.

Only the subsections that hold function indices are re-encoded (1: function names,
2: local names, 3: label names); all others are copied byte for byte.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from ..names import read_name_subsections
from .binary import encode_name, read_name, read_u32, uleb
from .errors import WasmFormatError
from .module import Module, Section

FUNCTION_NAMES, LOCAL_NAMES, LABEL_NAMES = 1, 2, 3


def _subsections(data: bytes, sec: Section) -> list[tuple[int, int, int, int]]:
    """(id, header start, content start, content end) of each subsection."""
    _, pos = read_name(data, sec.payload_start, sec.payload_end, "name")
    out = []
    while pos < sec.payload_end:
        sub_id = data[pos]
        size, start = read_u32(data, pos + 1, "name")
        end = start + size
        if end > sec.payload_end:
            raise WasmFormatError(f"name subsection {sub_id} runs past the section end", section="custom 'name'",
                                  offset=pos)
        out.append((sub_id, pos, start, end))
        pos = end
    return out


def _name_map(data: bytes, pos: int, end: int) -> tuple[list[tuple[int, str]], int]:
    count, pos = read_u32(data, pos, "name")
    entries = []
    for _ in range(count):
        index, pos = read_u32(data, pos, "name")
        name, pos = read_name(data, pos, end, "name")
        entries.append((index, name))
    return entries, pos


def function_names(module: Module) -> dict[int, str]:
    """Function index -> name from the ``name`` section ({} if absent; a malformed section is
    read as far as it can be, by the host's reader)."""
    sec = module.section(0, "name")
    if sec is None:
        return {}
    try:
        _, start = read_name(module.data, sec.payload_start, sec.payload_end, "name")
    except WasmFormatError:
        return {}
    return read_name_subsections(module.data, start, sec.payload_end)[1]


def _encode_name_map(entries: list[tuple[int, str]]) -> bytes:
    return uleb(len(entries)) + b"".join(uleb(i) + encode_name(n) for i, n in entries)


def _function_names_subsection(entries: list[tuple[int, str]]) -> bytes:
    content = _encode_name_map(entries)
    return bytes((FUNCTION_NAMES,)) + uleb(len(content)) + content


def name_section(functions: list[tuple[int, str]]) -> bytes:
    """The payload of a ``name`` section that names these functions only."""
    return encode_name("name") + _function_names_subsection(functions)


def rewrite_name_section(module: Module, sec: Section, new_index: Callable[[int], int],
                         label_shift: dict[int, int], added: Sequence[tuple[int, str]] = ()) -> bytes:
    """The payload of ``sec`` with function indices mapped through ``new_index``.

    ``label_shift`` gives, per *new* function index, how many labels the pass added in
    front of the original body (label names of that function move up by that much).
    ``added`` names functions the pass appended (their indices follow every other).
    """
    data = module.data
    out = [encode_name("name")]
    pending = list(added)
    for sub_id, header, start, end in _subsections(data, sec):
        if pending and sub_id > FUNCTION_NAMES:
            out.append(_function_names_subsection(pending))
            pending = []
        if sub_id == FUNCTION_NAMES:
            entries, pos = _name_map(data, start, end)
            content = _encode_name_map([(new_index(i), n) for i, n in entries] + pending)
            pending = []
        elif sub_id in (LOCAL_NAMES, LABEL_NAMES):
            count, pos = read_u32(data, start, "name")
            parts = [uleb(count)]
            for _ in range(count):
                func, pos = read_u32(data, pos, "name")
                entries, pos = _name_map(data, pos, end)
                func = new_index(func)
                shift = label_shift.get(func, 0) if sub_id == LABEL_NAMES else 0
                parts.append(uleb(func) + _encode_name_map([(i + shift, n) for i, n in entries]))
            content = b"".join(parts)
        else:
            out.append(data[header:end])
            continue
        if pos != end:
            raise WasmFormatError(f"name subsection {sub_id} size mismatch", section="custom 'name'", offset=pos)
        out.append(bytes((sub_id,)) + uleb(len(content)) + content)
    if pending:
        out.append(_function_names_subsection(pending))
    return b"".join(out)
