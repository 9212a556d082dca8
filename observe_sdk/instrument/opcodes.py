"""Immediate-operand layouts of every WebAssembly instruction the scanner knows.

Covers the core spec and the proposals wasmtime enables: multi-value, sign extension,
saturating conversions, bulk memory, reference types, SIMD and relaxed SIMD,
threads/atomics, tail calls, exception handling (legacy and ``exnref``), multi-memory,
memory64, extended constant expressions, typed function references, GC and wide
arithmetic.  Each opcode maps to a small integer *kind* that the scanner in
:mod:`observe_sdk.instrument.code` dispatches on.
"""
from __future__ import annotations

# --- kinds of single-byte opcodes ------------------------------------------------
INVALID = -1
NONE = 0            # no immediates
LEB = 1             # one LEB128 (index, depth, or integer constant)
MEMARG = 2          # alignment (+ memory index when bit 6 is set) and offset
CALL = 3            # call funcidx
END = 4
BLOCK = 5           # block/loop/if: block type
LEB2 = 6            # two LEB128s
BR_TABLE = 7
RETURN = 8
RETURN_CALL = 9     # return_call funcidx
CALL_INDIRECT = 10  # typeidx tableidx
RETURN_CALL_INDIRECT = 11
CALL_REF = 12       # typeidx
RETURN_CALL_REF = 13
TRY = 14            # legacy try: block type
TRY_TABLE = 15      # block type, catch clauses
DELEGATE = 16       # legacy: label, closes the try
LEGACY_LEB = 17     # legacy catch tagidx / rethrow label
LEGACY_NONE = 18    # legacy catch_all
THROW = 19          # throw tagidx
THROW_REF = 20
SELECT_T = 21       # vec(valtype)
MEMORY_GROW = 22    # memidx
F32 = 23            # 4 bytes
F64 = 24            # 8 bytes
HEAPTYPE = 25       # ref.null
REF_FUNC = 26       # funcidx
PREFIX_GC = 27      # 0xFB
PREFIX_MISC = 28    # 0xFC
PREFIX_SIMD = 29    # 0xFD
PREFIX_ATOMIC = 30  # 0xFE
BR_ON_CAST = 31     # GC: flags, label, two heap types
V128 = 32           # SIMD: 16 bytes
LANE = 33           # SIMD: one lane byte
MEMARG_LANE = 34    # SIMD: memarg and lane byte
FENCE = 35          # atomic.fence: one reserved byte


def _single_byte_table() -> tuple[int, ...]:
    table = [INVALID] * 256
    for op in (0x00, 0x01, 0x05, 0x1A, 0x1B, 0xD1, 0xD3, 0xD4):
        table[op] = NONE
    for op in range(0x45, 0xC5):    # numeric instructions incl. sign extension
        table[op] = NONE
    table[0x02] = table[0x03] = table[0x04] = BLOCK
    table[0x06] = TRY
    table[0x07] = LEGACY_LEB      # catch tag
    table[0x08] = THROW
    table[0x09] = LEGACY_LEB      # rethrow label
    table[0x0A] = THROW_REF
    table[0x0B] = END
    table[0x0C] = table[0x0D] = LEB       # br, br_if
    table[0x0E] = BR_TABLE
    table[0x0F] = RETURN
    table[0x10] = CALL
    table[0x11] = CALL_INDIRECT
    table[0x12] = RETURN_CALL
    table[0x13] = RETURN_CALL_INDIRECT
    table[0x14] = CALL_REF
    table[0x15] = RETURN_CALL_REF
    table[0x18] = DELEGATE
    table[0x19] = LEGACY_NONE     # catch_all
    table[0x1C] = SELECT_T
    table[0x1F] = TRY_TABLE
    for op in range(0x20, 0x27):  # local.*, global.*, table.get/set
        table[op] = LEB
    for op in range(0x28, 0x3F):  # loads and stores
        table[op] = MEMARG
    table[0x3F] = LEB             # memory.size memidx
    table[0x40] = MEMORY_GROW
    table[0x41] = table[0x42] = LEB
    table[0x43] = F32
    table[0x44] = F64
    table[0xD0] = HEAPTYPE
    table[0xD2] = REF_FUNC
    table[0xD5] = table[0xD6] = LEB   # br_on_null, br_on_non_null
    table[0xFB] = PREFIX_GC
    table[0xFC] = PREFIX_MISC
    table[0xFD] = PREFIX_SIMD
    table[0xFE] = PREFIX_ATOMIC
    return tuple(table)


SINGLE = _single_byte_table()

# 0xFB: GC
GC: dict[int, int] = {
    0: LEB, 1: LEB, 2: LEB2, 3: LEB2, 4: LEB2, 5: LEB2,       # struct.*
    6: LEB, 7: LEB, 8: LEB2, 9: LEB2, 10: LEB2,                # array.new*
    11: LEB, 12: LEB, 13: LEB, 14: LEB, 15: NONE, 16: LEB,     # array.get/set/len/fill
    17: LEB2, 18: LEB2, 19: LEB2,                              # array.copy/init_*
    20: HEAPTYPE, 21: HEAPTYPE, 22: HEAPTYPE, 23: HEAPTYPE,    # ref.test/ref.cast
    24: BR_ON_CAST, 25: BR_ON_CAST,
    26: NONE, 27: NONE, 28: NONE, 29: NONE, 30: NONE,          # conversions, i31
}

# 0xFC: saturating truncation, bulk memory, tables, wide arithmetic
MISC: dict[int, int] = {
    0: NONE, 1: NONE, 2: NONE, 3: NONE, 4: NONE, 5: NONE, 6: NONE, 7: NONE,
    8: LEB2,    # memory.init dataidx memidx
    9: LEB,     # data.drop
    10: LEB2,   # memory.copy
    11: LEB,    # memory.fill
    12: LEB2,   # table.init
    13: LEB,    # elem.drop
    14: LEB2,   # table.copy
    15: LEB, 16: LEB, 17: LEB,   # table.grow/size/fill
    19: NONE, 20: NONE, 21: NONE, 22: NONE,   # wide arithmetic
}


def _simd_table() -> dict[int, int]:
    table = {op: NONE for op in range(0, 0x114)}   # incl. relaxed SIMD 0x100..0x113
    for op in range(0, 12):
        table[op] = MEMARG
    table[12] = V128        # v128.const
    table[13] = V128        # i8x16.shuffle
    for op in range(21, 35):
        table[op] = LANE    # extract/replace lane
    for op in range(84, 92):
        table[op] = MEMARG_LANE
    table[92] = table[93] = MEMARG
    return table


SIMD = _simd_table()

# 0xFE: threads
ATOMIC: dict[int, int] = {0: MEMARG, 1: MEMARG, 2: MEMARG, 3: FENCE}
ATOMIC.update({op: MEMARG for op in range(0x10, 0x4F)})

PREFIXED = {PREFIX_GC: (0xFB, GC), PREFIX_MISC: (0xFC, MISC), PREFIX_SIMD: (0xFD, SIMD),
            PREFIX_ATOMIC: (0xFE, ATOMIC)}
