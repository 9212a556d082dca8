"""Where a guest's stdout and stderr go, and reading back their head (and tail).

- :class:`FileOutput`: the whole stream in a file (what a compute node asks for);
- :class:`MemoryOutput`: no file, only the first bytes and the last few KiB kept in
  memory (when the request names no file: cheaper than a temporary file).
"""

from __future__ import annotations

import codecs
import os
from typing import TYPE_CHECKING

from .fs import open_nofollow

if TYPE_CHECKING:  # only in annotations: the compute node reads outputs without loading wasmtime
    import wasmtime

__all__ = ["FileOutput", "MemoryOutput", "open_output", "read_head", "read_tail", "shrink_file"]

TAIL_BYTES = 2048
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
        with open(open_nofollow(path), "rb") as f:
            size = os.fstat(f.fileno()).st_size
            raw = f.read(max(0, limit))
    except FileNotFoundError:
        return "", False
    truncated = size > len(raw)
    return _decode(raw, cut_at_end=truncated), truncated


def read_tail(path: str, limit: int) -> tuple[str, bool]:
    """The last ``limit`` bytes of the file as text, and whether anything came before."""
    try:
        with open(open_nofollow(path), "rb") as f:
            size = os.fstat(f.fileno()).st_size
            start = max(0, size - max(0, limit))
            f.seek(start)
            raw = f.read()
    except FileNotFoundError:
        return "", False
    return _decode(raw, cut_at_end=False, cut_at_start=start > 0), start > 0


class FileOutput:
    """A stream written whole to ``path`` (created or truncated when attached)."""

    def __init__(self, path: str) -> None:
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        # exists (empty) even if the guest never gets to run; a link planted in its place is refused
        os.close(open_nofollow(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC))

    def attach(self, wasi: wasmtime.WasiConfig, stream: str) -> None:
        setattr(wasi, f"{stream}_file", self.path)

    def size(self) -> int:
        try:
            return os.path.getsize(self.path)
        except OSError:
            return 0

    def head(self, limit: int) -> tuple[str, bool]:
        return read_head(self.path, limit)

    def cap(self, max_bytes: int) -> None:
        """Cut the file on disk to ``max_bytes`` (the guest wrote on past the cap before it was stopped)."""
        shrink_file(self.path, max_bytes, max_bytes)

    def tail(self, limit: int = TAIL_BYTES) -> str:
        try:
            return read_tail(self.path, limit)[0]
        except OSError:
            return ""


def shrink_file(path: str | os.PathLike[str], keep_head: int, keep_tail: int) -> int:
    """Keep the first ``keep_head`` and last ``keep_tail`` bytes of a file, with a line saying
    how much was dropped between them; returns the bytes dropped (0 when it was small enough)."""
    with open(open_nofollow(path, os.O_RDWR), "r+b") as f:
        size = os.fstat(f.fileno()).st_size
        dropped = size - keep_head - keep_tail
        if dropped <= 0:
            return 0
        tail = b""
        if keep_tail > 0:
            f.seek(size - keep_tail)
            tail = f.read(keep_tail)
        f.seek(keep_head)
        f.write(f"\n[cod: {dropped} bytes dropped here]\n".encode() if keep_tail > 0 else b"")
        f.write(tail)
        f.truncate()
    return dropped


class MemoryOutput:
    """A stream kept only as its first ``head_bytes`` and last :data:`TAIL_BYTES` bytes."""

    def __init__(self, head_bytes: int) -> None:
        self.head_bytes = head_bytes
        self._head = bytearray()
        self._tail = bytearray()
        self._size = 0

    def attach(self, wasi: wasmtime.WasiConfig, stream: str) -> None:
        setattr(wasi, f"{stream}_custom", self.write)

    def write(self, data: bytes) -> None:
        room = self.head_bytes - len(self._head)
        if room > 0:
            self._head += data[:room]
        self._tail += data[-TAIL_BYTES:]
        del self._tail[:-TAIL_BYTES]
        self._size += len(data)

    def size(self) -> int:
        return self._size

    def head(self, limit: int) -> tuple[str, bool]:
        raw = bytes(self._head[:max(0, limit)])
        truncated = self._size > len(raw)
        return _decode(raw, cut_at_end=truncated), truncated

    def cap(self, max_bytes: int) -> None:
        """Nothing to cut: only the head and tail are kept."""

    def tail(self, limit: int = TAIL_BYTES) -> str:
        raw = bytes(self._tail[-limit:]) if limit > 0 else b""
        return _decode(raw, cut_at_end=False, cut_at_start=self._size > len(raw))


def open_output(path: str, head_bytes: int) -> FileOutput | MemoryOutput:
    """A :class:`FileOutput` for ``path``, or a :class:`MemoryOutput` when ``path`` is empty."""
    return FileOutput(path) if path else MemoryOutput(head_bytes)
