"""Resumable sends: a retried batch continues where it failed, sending nothing twice.

An adapter that turns a batch of traces into several requests (payload
chunks, several signals, several backends) encodes the batch once into a
list of sends.  The base class retries :meth:`~.base.Adapter.export` with the
same batch object after a :class:`~.base.TransientExportError`; the sends
already done are not repeated.
"""
from __future__ import annotations

from collections.abc import Callable

from ..trace import Trace

Send = Callable[[], None]


class ResumableSends:
    def __init__(self) -> None:
        self._batch: list[Trace] | None = None
        self._sends: list[Send] = []

    def run(self, batch: list[Trace], encode: Callable[[list[Trace]], list[Send]]) -> None:
        """Encode ``batch`` (unless this is a retry of it) and perform the sends still due."""
        if batch is not self._batch:
            self._batch = None
            self._sends = encode(batch)
            self._batch = batch
        while self._sends:
            self._sends[0]()      # raises to stop here; the retry resumes with this send
            self._sends.pop(0)
        self._batch = None
