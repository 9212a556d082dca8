"""FoldedAdapter: folded stacks (``a;b;c <self µs>``) for flamegraph.pl, inferno and speedscope."""
from __future__ import annotations

from ..trace import Trace
from ..views import folded_text
from .document import DocumentAdapter


class FoldedAdapter(DocumentAdapter):
    name = "folded"

    def render(self, traces: list[Trace]) -> str:
        return folded_text(traces)
