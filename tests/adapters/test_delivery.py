"""Delivery guarantees with real backends going down and coming back.

- backend down during a run, then up again: nothing lost within the queue bound,
  each trace delivered once, and the guest's thread never blocked;
- more traces than the queue holds: the oldest are dropped, and counted;
- shutdown(timeout) with the backend still down reports what it could not flush.
"""
from __future__ import annotations

import socket
import threading
import time

import pytest
from adapter_traces import sample_trace
from otlp_receiver import OtlpReceiver
from receivers import HttpCapture

from observe_sdk.adapters.otlp import OtlpAdapter
from observe_sdk.adapters.zipkin import ZipkinAdapter

# Retries that give up fast: an outage longer than their budget must still lose nothing.
FAST = dict(flush_interval=0.01, backoff=0.02, max_backoff=0.1, max_retries=2, batch_size=4)


def submit_all(adapter, traces) -> None:
    """Submit from a 'guest' thread; it must finish while the backend is down."""
    t = threading.Thread(target=lambda: [adapter.submit(tr) for tr in traces])
    t.start()
    t.join(10)
    assert not t.is_alive(), "submit blocked while the backend was down"


class TriedZipkin(ZipkinAdapter):
    """Sets ``tried`` at its first export attempt: a batch is in flight."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.tried = threading.Event()

    def export(self, traces) -> None:
        self.tried.set()
        super().export(traces)


def zipkin_trace_ids(server: HttpCapture) -> list[str]:
    return [s["traceId"] for r in server.requests for s in r.json() if "parentId" not in s and s["name"] == "run"]


def test_zipkin_down_then_up_loses_nothing() -> None:
    server = HttpCapture()
    server.start()
    port = server.port
    server.stop()                                     # down: connection refused
    adapter = ZipkinAdapter(endpoint=f"http://127.0.0.1:{port}/api/v2/spans", timeout=2, max_queue=50, **FAST)
    traces = [sample_trace() for _ in range(20)]
    submit_all(adapter, traces)
    time.sleep(0.6)                                   # several retry budgets pass
    assert adapter.stats["exported"] == 0
    server.port = port
    server.start()                                    # up again, same port
    report = adapter.shutdown(30)
    server.stop()
    assert report.complete and report.exported == 20, report
    assert sorted(zipkin_trace_ids(server)) == sorted(t.trace_id_hex for t in traces)   # each exactly once


def test_hanging_backend_never_blocks_the_guest() -> None:
    """A backend that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    try:
        adapter = ZipkinAdapter(endpoint=f"http://127.0.0.1:{port}/api/v2/spans", timeout=0.3,
                                max_queue=10, **FAST)
        submit_all(adapter, [sample_trace() for _ in range(30)])
        report = adapter.shutdown(0.5)
        assert not report.complete
        assert report.exported == 0
        assert report.dropped + report.failed + report.pending == 30
        assert report.dropped >= 30 - 10 - FAST["batch_size"]       # only the queue bound (+ one batch) kept
    finally:
        listener.close()


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_otlp_collector_restart(protocol) -> None:
    receiver = OtlpReceiver().start()
    receiver.stop()
    adapter = OtlpAdapter(protocol=protocol, timeout=0.5, signals=["traces"], max_queue=100,
                          endpoint=receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint,
                          **FAST)
    traces = [sample_trace() for _ in range(12)]
    submit_all(adapter, traces)
    time.sleep(0.6)
    receiver.start()
    try:
        report = adapter.shutdown(30)
        assert report.complete and report.exported == 12, report
        roots = [s for s in receiver.store.spans() if s.name == "run"]
        assert sorted(s.trace_id.hex() for s in roots) == sorted(t.trace_id_hex for t in traces)
    finally:
        receiver.stop()


def test_queue_bound_drops_oldest_and_counts() -> None:
    server = HttpCapture()
    server.start()
    port = server.port
    server.stop()
    adapter = TriedZipkin(endpoint=f"http://127.0.0.1:{port}/api/v2/spans", timeout=1,
                          **{**FAST, "max_queue": 8, "batch_size": 1})
    first = sample_trace()
    adapter.submit(first)
    assert adapter.tried.wait(10)    # the exporter holds `first` in flight, retrying
    traces = [sample_trace() for _ in range(12)]
    submit_all(adapter, traces)
    deadline = time.monotonic() + 10
    while adapter.stats["failed"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)             # under pressure the in-flight trace is given up
    server.port = port
    server.start()
    report = adapter.shutdown(30)
    server.stop()
    delivered = zipkin_trace_ids(server)
    # the oldest go first: four queued traces dropped, and the in-flight one given
    # up once holding on to it cost newer traces; the newest eight (the bound) arrive
    assert report.dropped == 4 and report.failed == 1 and report.exported == 8, report
    assert sorted(delivered) == sorted(t.trace_id_hex for t in traces[4:])


def test_shutdown_reports_what_it_could_not_flush() -> None:
    server = HttpCapture()
    server.start()
    port = server.port
    server.stop()
    adapter = ZipkinAdapter(endpoint=f"http://127.0.0.1:{port}/api/v2/spans", timeout=1, **FAST)
    submit_all(adapter, [sample_trace() for _ in range(10)])
    report = adapter.shutdown(0.3)
    assert not report.complete
    assert report.exported == 0 and report.pending + report.failed == 10, report
