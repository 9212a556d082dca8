"""Where the text adapters write: stdout, a stream, or a file opened for appending."""
from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import IO


class TextSink:
    """``out`` is None (stdout), a text stream, or a file path (opened now, so
    that a path that cannot be written is an error when the adapter is made)."""

    def __init__(self, out: str | IO[str] | None) -> None:
        self._file: IO[str] | None = None
        self._stream = out if out is not None and not isinstance(out, str) else None
        if isinstance(out, str):
            try:
                self._file = open(out, "a", encoding="utf-8")
            except OSError as exc:
                raise ValueError(f"cannot write to {out}: {exc.strerror}") from None

    def write_lines(self, lines: Iterable[str]) -> None:
        out = self._file or self._stream or sys.stdout
        for line in lines:
            out.write(line + "\n")
        out.flush()

    def write_line_in_parts(self, parts: Iterable[str]) -> None:
        """One line given in pieces (a large document is written without being held whole)."""
        out = self._file or self._stream or sys.stdout
        for part in parts:
            out.write(part)
        out.write("\n")
        out.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
