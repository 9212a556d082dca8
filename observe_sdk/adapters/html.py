"""HtmlAdapter: one self-contained HTML page with a timeline, a flame graph and span details."""
from __future__ import annotations

from ..trace import Trace
from ..views import render_html
from .document import DocumentAdapter


class HtmlAdapter(DocumentAdapter):
    name = "html"

    def render(self, traces: list[Trace]) -> str:
        return render_html(traces)
