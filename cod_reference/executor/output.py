"""Reading the head (and tail) of a guest's captured stdout/stderr files."""

from __future__ import annotations

import codecs
import os

__all__ = ["read_head", "read_tail"]


def _decode(raw: bytes, *, cut_at_end: bool, cut_at_start: bool = False) -> str:
    if cut_at_start:
        # skip UTF-8 continuation bytes of a character cut in half
        i = 0
        while i < len(raw) and i < 3 and (raw[i] & 0xC0) == 0x80:
            i += 1
        raw = raw[i:]
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    return decoder.decode(raw, final=not cut_at_end)


def read_head(path: str, limit: int) -> tuple[str, bool]:
    """The first ``limit`` bytes of the file as text, and whether the file is longer.

    Invalid UTF-8 becomes U+FFFD; a character cut by the limit is left out.
    A missing file reads as empty.
    """
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            raw = f.read(max(0, limit))
    except FileNotFoundError:
        return "", False
    truncated = size > len(raw)
    return _decode(raw, cut_at_end=truncated), truncated


def read_tail(path: str, limit: int) -> tuple[str, bool]:
    """The last ``limit`` bytes of the file as text, and whether anything came before."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            start = max(0, size - max(0, limit))
            f.seek(start)
            raw = f.read()
    except FileNotFoundError:
        return "", False
    return _decode(raw, cut_at_end=False, cut_at_start=start > 0), start > 0
