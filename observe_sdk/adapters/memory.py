"""InMemoryAdapter: keeps finished traces in a list (for tests and embedding)."""
from __future__ import annotations

import threading
from typing import Any

from ..trace import Trace
from .base import Adapter


class InMemoryAdapter(Adapter):
    """Collects traces in :attr:`traces`; :meth:`wait_for` blocks until N have arrived."""

    name = "memory"

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("flush_interval", 0.01)
        super().__init__(**kwargs)
        self.traces: list[Trace] = []
        self._arrived = threading.Condition()

    @classmethod
    def from_env(cls, **kwargs: Any) -> InMemoryAdapter:
        return cls(**kwargs)

    def export(self, traces: list[Trace]) -> None:
        with self._arrived:
            self.traces.extend(traces)
            self._arrived.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Trace]:
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.traces) >= count, timeout)
            return list(self.traces)
