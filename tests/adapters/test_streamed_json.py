"""OTLP/JSON written in parts (otel-stdout streams large documents) is the same document."""
from __future__ import annotations

import io
import json

from adapter_traces import deep_trace, sample_trace

from observe_sdk.adapters.otel_stdout import OtelStdoutAdapter
from observe_sdk.adapters.otlp_json import traces_data_json, traces_data_json_parts
from observe_sdk.trace import Trace


def _without_loose_events(trace: Trace) -> Trace:
    trace.roots = trace.root_spans     # (their synthetic root gets a new id each time)
    return trace


def test_parts_join_to_the_document() -> None:
    traces = [_without_loose_events(sample_trace()), deep_trace(10), _without_loose_events(sample_trace())]
    whole = traces_data_json(traces, "svc", {"team": "wasm"})
    for per_part in (1, 3, 2048):
        parts = list(traces_data_json_parts(traces, "svc", {"team": "wasm"}, spans_per_part=per_part))
        assert "".join(parts) == whole
    assert len(json.loads(whole)["resourceSpans"][0]["scopeSpans"][0]["spans"]) == 6 + 10 + 6


def test_otel_stdout_writes_one_line_per_trace() -> None:
    out = io.StringIO()
    adapter = OtelStdoutAdapter(out)
    traces = [deep_trace(5000), _without_loose_events(sample_trace())]
    adapter.export(traces)
    lines = out.getvalue().split("\n")
    assert lines[-1] == "" and lines[:-1] == [adapter.encode(t) for t in traces]
