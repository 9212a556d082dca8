"""ChromeTraceAdapter: the run's traces as one Trace Event Format file (Perfetto, speedscope)."""
from __future__ import annotations

from ..trace import Trace
from ..views import chrome_trace_json
from .document import DocumentAdapter


class ChromeTraceAdapter(DocumentAdapter):
    name = "chrome-trace"

    def render(self, traces: list[Trace]) -> str:
        return chrome_trace_json(traces)
