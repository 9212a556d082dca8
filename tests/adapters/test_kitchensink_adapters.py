"""The kitchensink guest (manual spans opened and closed in instrumented helpers, host calls
as spans) through every adapter that keeps parent links: the same tree, no error (issue #11)."""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from otel_pipeline import Pipeline
from otlp_receiver import OtlpReceiver
from receivers import DdTestAgent, HttpCapture

from observe_sdk import Options
from observe_sdk.adapters.datadog import DatadogAdapter
from observe_sdk.adapters.otel_stdout import OtelStdoutAdapter
from observe_sdk.adapters.otlp import OtlpAdapter
from observe_sdk.adapters.zipkin import ZipkinAdapter

KITCHENSINK = Path(__file__).resolve().parents[2] / "guest-examples" / "build" / "kitchensink.instr.wasm"
# each span of interest and the chain of names above it, up to the guest's main
CHAINS = {
    "statsd": ["write_stat", "write_stat", "run_steps", "run", "__original_main"],
    "log_write": ["write_log", "write_log", "run_steps", "run", "__original_main"],
    "__imported_wasi_snapshot_preview1_fd_write": ["__wasi_fd_write", "writev", "__stdio_write", "__stdout_write",
                                                   "__fwritex", "printf_core", "vfprintf", "printf", "printf",
                                                   "run_steps", "run", "__original_main"],
}


def run_guest(guest_factory, adapter, recorder: str) -> None:
    guest = guest_factory(KITCHENSINK.read_bytes(), adapter, Options(min_span_duration_us=0, recorder=recorder))
    guest.call("_start")
    guest.ctx.finish()


def check(spans: list[tuple[str, Any, Any, bool]]) -> None:
    """``spans``: (name, span id, parent id, is an error) as an adapter wrote them."""
    by_id = {sid: (name, parent) for name, sid, parent, _ in spans}
    assert not [name for name, _, _, error in spans if error]
    for name, chain in CHAINS.items():
        (start,) = [sid for n, sid, _, _ in spans if n == name]
        names, node = [], by_id[start][1]
        while node in by_id and len(names) < len(chain):
            names.append(by_id[node][0])
            node = by_id[node][1]
        assert names == chain, name


@pytest.fixture(params=["python", "wasm"])
def recorder(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_opentelemetry(guest_factory, recorder) -> None:
    host = Pipeline()
    adapter = host.adapter(python_logging=False)
    run_guest(guest_factory, adapter, recorder)
    assert adapter.shutdown(10).complete
    check([(s.name, s.context.span_id, s.parent.span_id if s.parent else None, not s.status.is_ok)
           for s in host.spans.get_finished_spans()])


def test_otlp(guest_factory, recorder) -> None:
    with OtlpReceiver() as receiver:
        adapter = OtlpAdapter(protocol="http/protobuf", endpoint=receiver.http_endpoint, flush_interval=0.01)
        run_guest(guest_factory, adapter, recorder)
        assert adapter.shutdown(20).complete
        check([(s.name, s.span_id, s.parent_span_id, s.status.code == 2) for s in receiver.store.spans()])


def test_otel_stdout(guest_factory, recorder) -> None:
    out = io.StringIO()
    adapter = OtelStdoutAdapter(out, flush_interval=0.01)
    run_guest(guest_factory, adapter, recorder)
    assert adapter.shutdown(10).complete
    spans = [s for line in out.getvalue().splitlines() if line.strip()
             for rs in json.loads(line)["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    check([(s["name"], s["spanId"], s.get("parentSpanId"), s.get("status", {}).get("code") == 2) for s in spans])


def test_zipkin(guest_factory, recorder) -> None:
    with HttpCapture() as zipkin:
        adapter = ZipkinAdapter(endpoint=zipkin.url + "/api/v2/spans", flush_interval=0.01)
        run_guest(guest_factory, adapter, recorder)
        assert adapter.shutdown(10).complete
        spans = [s for r in zipkin.requests for s in r.json()]
        check([(s["name"], s["id"], s.get("parentId"), "error" in s.get("tags", {})) for s in spans])


def test_datadog(guest_factory, recorder) -> None:
    if not DdTestAgent.available():
        pytest.skip("ddapm-test-agent is not installed: run `make ddagent` (creates .venv-ddagent)")
    agent = DdTestAgent().start()
    try:
        adapter = DatadogAdapter(agent_url=agent.url, service="kitchensink", flush_interval=0.01)
        run_guest(guest_factory, adapter, recorder)
        assert adapter.shutdown(20).complete
        (trace,) = agent.traces(1)
        check([(s["name"], s["span_id"], s.get("parent_id"), bool(s.get("error"))) for s in trace])
    finally:
        agent.stop()
