"""Views of traces: one renderer for the SDK's adapters and the network's ``job trace``.

- :func:`chrome_trace` — the Trace Event Format (Perfetto, ``chrome://tracing``, speedscope)
- :func:`folded_text` — folded stacks for flamegraph.pl, inferno and speedscope
- :func:`render_html` — one self-contained page: timeline, flame graph, span details

Each takes a list of :class:`~observe_sdk.trace.Trace`.
"""
from __future__ import annotations

from .chrome import chrome_trace, chrome_trace_json
from .folded import folded_stacks, folded_text
from .html import render_html, view_data

__all__ = ["chrome_trace", "chrome_trace_json", "folded_stacks", "folded_text", "render_html", "view_data"]
