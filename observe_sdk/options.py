"""Options for one observed module."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class Options:
    min_span_duration_us: float = 20.0
    """Spans shorter than this are dropped (root spans are always kept);
    their allocations move up to the parent."""

    max_events: int = 5_000_000
    """The event cap: a trace stops recording after this many raw events and
    reports how many it dropped."""

    recorder: Literal["auto", "python", "wasm"] = "auto"
    """Which recorder records the automatic-instrumentation events: ``wasm``
    never enters Python per event (needs ``store=`` and WASI); ``auto`` picks
    it when it can work."""

    module_name: str = ""
    """The module's name in traces (``wasm.module``) when its ``name`` section gives
    none, e.g. the file it was read from."""

    def __post_init__(self) -> None:
        if not 0 <= self.min_span_duration_us < float("inf"):  # also refuses NaN
            raise ValueError(f"min_span_duration_us must be a finite number >= 0, not {self.min_span_duration_us!r}")
        if self.max_events < 1:
            raise ValueError("max_events must be >= 1")
        if self.recorder not in ("auto", "python", "wasm"):
            raise ValueError(f"recorder must be 'auto', 'python' or 'wasm', not {self.recorder!r}")

    @property
    def min_span_duration_ns(self) -> int:
        return int(self.min_span_duration_us * 1000)
