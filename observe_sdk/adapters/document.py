"""Adapters that write one document for the whole run (a JSON or HTML file).

The traces are kept as they finish and the document is written once, when the
adapter is shut down; ``out`` (a path, a stream, or None for stdout) is checked
when the adapter is made, so an unwritable path is an error up front.  They suit a
run (``observe-sdk run``, a test, a batch job): a long-lived host that wants a view
now and then renders the traces it holds with :mod:`observe_sdk.views` instead.
"""
from __future__ import annotations

import sys
from typing import IO, Any

from ..trace import Trace
from .base import Adapter


class DocumentAdapter(Adapter):
    """Subclasses implement :meth:`render`."""

    def __init__(self, out: str | IO[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._path = out if isinstance(out, str) else None
        self._stream = None if isinstance(out, str) else out
        if self._path is not None:
            try:
                open(self._path, "w", encoding="utf-8").close()
            except OSError as exc:
                raise ValueError(f"cannot write to {self._path}: {exc.strerror}") from None
        self._traces: list[Trace] = []
        self._written = False

    @classmethod
    def from_env(cls, out: str | None = None, **kwargs: Any) -> DocumentAdapter:
        return cls(out, **kwargs)

    def render(self, traces: list[Trace]) -> str:
        raise NotImplementedError

    def export(self, traces: list[Trace]) -> None:
        self._traces.extend(traces)

    def close(self) -> None:
        if self._written:
            return
        self._written = True
        text = self.render(self._traces)
        if self._path is not None:
            with open(self._path, "w", encoding="utf-8") as fh:
                fh.write(text)
        else:
            stream = self._stream or sys.stdout
            stream.write(text if text.endswith("\n") else text + "\n")
            stream.flush()
