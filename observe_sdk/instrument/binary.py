"""Low-level helpers for the WebAssembly binary format: LEB128 and names.

Decoding works on a ``bytes`` object and absolute positions; every helper returns the
position just after what it read so that callers never copy the input.
"""
from __future__ import annotations

from .errors import WasmFormatError


def read_u32(data: bytes, pos: int, section: str = "module") -> tuple[int, int]:
    """Decode an unsigned LEB128 of at most 5 bytes; return (value, next position)."""
    result = 0
    shift = 0
    start = pos
    try:
        while True:
            byte = data[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
            if shift >= 35:
                raise WasmFormatError("integer representation too long", section=section, offset=start)
    except IndexError:
        raise WasmFormatError("unexpected end of data in an integer", section=section, offset=start) from None
    if result > 0xFFFFFFFF:
        raise WasmFormatError("integer too large", section=section, offset=start)
    return result, pos


def skip_leb(data: bytes, pos: int, section: str = "module") -> int:
    """Skip one LEB128 (signed or unsigned, any width up to 10 bytes)."""
    start = pos
    try:
        while data[pos] & 0x80:
            pos += 1
            if pos - start >= 10:
                raise WasmFormatError("integer representation too long", section=section, offset=start)
    except IndexError:
        raise WasmFormatError("unexpected end of data in an integer", section=section, offset=start) from None
    return pos + 1


def skip_heaptype(data: bytes, pos: int, section: str = "module") -> int:
    """The position after a heap type: a shared abstract type (``0x65`` and one byte) or an s33."""
    if data[pos] == 0x65:
        return pos + 2
    return skip_leb(data, pos, section)


def read_name(data: bytes, pos: int, end: int, section: str = "module") -> tuple[str, int]:
    """Decode a length-prefixed UTF-8 name."""
    length, p = read_u32(data, pos, section)
    if p + length > end:
        raise WasmFormatError("name extends past the end of its section", section=section, offset=pos)
    try:
        text = data[p:p + length].decode("utf-8")
    except UnicodeDecodeError:
        raise WasmFormatError("name is not valid UTF-8", section=section, offset=p) from None
    return text, p + length


def uleb(value: int) -> bytes:
    """Encode an unsigned LEB128 (minimal length)."""
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def sleb(value: int) -> bytes:
    """Encode a signed LEB128 (minimal length)."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if (value == 0 and not byte & 0x40) or (value == -1 and byte & 0x40):
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def encode_name(text: str) -> bytes:
    raw = text.encode("utf-8")
    return uleb(len(raw)) + raw


def encode_section(section_id: int, payload: bytes) -> bytes:
    return bytes((section_id,)) + uleb(len(payload)) + payload
