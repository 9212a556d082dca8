"""A fast scanner over WebAssembly instruction sequences.

It walks a function body (or a constant expression) once, decoding only what the
instrumenting pass needs and skipping every other immediate:

* the positions of function indices (``call``, ``return_call``, ``ref.func``),
* the positions of ``return``, tail calls and ``memory.grow``,
* whether the code calls anything and which exception-handling flavour it uses,
* the number of instructions, and the position just after the final ``end``.

Everything else is left as raw bytes for the writer to copy.  The scanner checks the
structure (known opcodes, well-formed immediates, balanced blocks, a final ``end``
exactly at the end of the body); typing is left to the engine's validator.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import opcodes as op
from .binary import read_u32, skip_heaptype
from .errors import WasmFormatError

# edit kinds
EDIT_FUNC = 0      # (EDIT_FUNC, leb_start, leb_end, funcidx)
EDIT_RETURN = 1    # (EDIT_RETURN, opcode_pos, 0, 0): a way out to the caller starts here
EDIT_GROW = 2      # (EDIT_GROW, opcode_pos, memidx, 0)

# flags
CALLS = 1          # calls another function (directly, indirectly or by reference)
LEGACY_EH = 2      # uses try/catch/catch_all/rethrow/delegate
EXNREF_EH = 4      # uses try_table/throw_ref
THROWS = 8         # uses throw


@dataclass(slots=True)
class Scan:
    end: int                        # position just after the final ``end``
    instructions: int
    flags: int
    edits: list[tuple[int, int, int, int]] = field(default_factory=list)


def _skip_valtype(data: bytes, pos: int) -> int:
    b = data[pos]
    if b == 0x63 or b == 0x64:
        return skip_heaptype(data, pos + 1, "code")
    return pos + 1


def _skip_blocktype(data: bytes, pos: int) -> int:
    b = data[pos]
    if b == 0x63 or b == 0x64:
        return skip_heaptype(data, pos + 1, "code")
    while data[pos] & 0x80:
        pos += 1
    return pos + 1


def scan(data: bytes, pos: int, limit: int, section: str = "code", what: str = "function body") -> Scan:
    """Scan instructions from ``pos`` up to the ``end`` that closes depth 0.

    ``limit`` is the last position the code may extend to (exclusive).
    """
    single = op.SINGLE
    edits: list[tuple[int, int, int, int]] = []
    append = edits.append
    depth = 0
    count = 0
    flags = 0
    start = pos
    opos = pos
    try:
        while pos < limit:
            opos = pos
            kind = single[data[pos]]
            pos += 1
            count += 1
            if kind == 0:                                   # NONE
                continue
            if kind == 1:                                   # LEB
                while data[pos] & 0x80:
                    pos += 1
                pos += 1
            elif kind == 2:                                 # MEMARG
                align = data[pos]
                if align & 0x80:
                    align, pos = read_u32(data, pos, section)
                else:
                    pos += 1
                if align & 0x40:
                    while data[pos] & 0x80:
                        pos += 1
                    pos += 1
                while data[pos] & 0x80:
                    pos += 1
                pos += 1
            elif kind == 3 or kind == 9 or kind == 26:      # CALL, RETURN_CALL, REF_FUNC
                if kind == 9:
                    append((EDIT_RETURN, opos, 0, 0))
                if kind != 26:
                    flags |= CALLS
                b = data[pos]
                if b < 0x80:
                    append((EDIT_FUNC, pos, pos + 1, b))
                    pos += 1
                else:
                    value, end = read_u32(data, pos, section)
                    append((EDIT_FUNC, pos, end, value))
                    pos = end
            elif kind == 4:                                 # END
                if depth == 0:
                    return Scan(pos, count, flags, edits)
                depth -= 1
            elif kind == 5:                                 # BLOCK
                depth += 1
                pos = _skip_blocktype(data, pos)
            elif kind == 6 or kind == 10:                   # LEB2, CALL_INDIRECT
                if kind == 10:
                    flags |= CALLS
                while data[pos] & 0x80:
                    pos += 1
                pos += 1
                while data[pos] & 0x80:
                    pos += 1
                pos += 1
            elif kind == 7:                                 # BR_TABLE
                n, pos = read_u32(data, pos, section)
                for _ in range(n + 1):
                    while data[pos] & 0x80:
                        pos += 1
                    pos += 1
            elif kind == 8:                                 # RETURN
                append((EDIT_RETURN, opos, 0, 0))
            elif kind == 22:                                # MEMORY_GROW
                memidx, pos = read_u32(data, pos, section)
                append((EDIT_GROW, opos, memidx, 0))
            elif kind == 11 or kind == 13:                  # RETURN_CALL_INDIRECT / _REF
                append((EDIT_RETURN, opos, 0, 0))
                flags |= CALLS
                while data[pos] & 0x80:
                    pos += 1
                pos += 1
                if kind == 11:
                    while data[pos] & 0x80:
                        pos += 1
                    pos += 1
            elif kind == 12:                                # CALL_REF
                flags |= CALLS
                while data[pos] & 0x80:
                    pos += 1
                pos += 1
            elif kind == 23:                                # F32
                pos += 4
            elif kind == 24:                                # F64
                pos += 8
            elif kind == 25:                                # HEAPTYPE
                pos = skip_heaptype(data, pos, "code")
            elif kind == 21:                                # SELECT_T
                n, pos = read_u32(data, pos, section)
                for _ in range(n):
                    pos = _skip_valtype(data, pos)
            elif kind == 14:                                # TRY (legacy)
                flags |= LEGACY_EH
                depth += 1
                pos = _skip_blocktype(data, pos)
            elif kind == 15:                                # TRY_TABLE
                flags |= EXNREF_EH
                depth += 1
                pos = _skip_blocktype(data, pos)
                n, pos = read_u32(data, pos, section)
                for _ in range(n):
                    catch_kind = data[pos]
                    if catch_kind > 3:
                        raise WasmFormatError(f"invalid try_table catch kind 0x{catch_kind:02x}",
                                              section=section, offset=pos)
                    pos += 1
                    if catch_kind < 2:                      # catch / catch_ref: tag first
                        while data[pos] & 0x80:
                            pos += 1
                        pos += 1
                    while data[pos] & 0x80:
                        pos += 1
                    pos += 1
            elif kind == 16:                                # DELEGATE
                flags |= LEGACY_EH
                if depth == 0:
                    raise WasmFormatError("delegate outside of a try block", section=section, offset=opos)
                depth -= 1
                while data[pos] & 0x80:
                    pos += 1
                pos += 1
            elif kind == 17:                                # catch / rethrow (legacy)
                flags |= LEGACY_EH
                while data[pos] & 0x80:
                    pos += 1
                pos += 1
            elif kind == 18:                                # catch_all
                flags |= LEGACY_EH
            elif kind == 19:                                # THROW
                flags |= THROWS
                while data[pos] & 0x80:
                    pos += 1
                pos += 1
            elif kind == 20:                                # THROW_REF
                flags |= EXNREF_EH
            elif kind >= 27 and kind <= 30:                 # prefixed opcodes
                prefix, table = op.PREFIXED[kind]
                sub, pos = read_u32(data, pos, section)
                sub_kind = table.get(sub, -1)
                if sub_kind == 0:
                    continue
                if sub_kind == 1:
                    while data[pos] & 0x80:
                        pos += 1
                    pos += 1
                elif sub_kind == 2 or sub_kind == 34:       # MEMARG, MEMARG_LANE
                    align, pos = read_u32(data, pos, section)
                    if align & 0x40:
                        while data[pos] & 0x80:
                            pos += 1
                        pos += 1
                    while data[pos] & 0x80:
                        pos += 1
                    pos += 1
                    if sub_kind == 34:
                        pos += 1
                elif sub_kind == 6:
                    for _ in range(2):
                        while data[pos] & 0x80:
                            pos += 1
                        pos += 1
                elif sub_kind == 25:
                    pos = skip_heaptype(data, pos, "code")
                elif sub_kind == 31:                        # br_on_cast(_fail)
                    pos += 1
                    while data[pos] & 0x80:
                        pos += 1
                    pos += 1
                    pos = skip_heaptype(data, pos, "code")
                    pos = skip_heaptype(data, pos, "code")
                elif sub_kind == 32:
                    pos += 16
                elif sub_kind == 33 or sub_kind == 35:
                    pos += 1
                else:
                    raise WasmFormatError(f"unknown instruction 0x{prefix:02x} {sub}",
                                          section=section, offset=opos)
            else:
                raise WasmFormatError(f"unknown instruction opcode 0x{data[opos]:02x}",
                                      section=section, offset=opos)
    except IndexError:
        raise WasmFormatError(f"{what} ends in the middle of an instruction",
                              section=section, offset=opos) from None
    if pos > limit:
        raise WasmFormatError(f"{what}: an instruction runs past its end", section=section, offset=opos)
    raise WasmFormatError(f"{what} is missing its final 'end' (starts at {start})",
                          section=section, offset=limit)
