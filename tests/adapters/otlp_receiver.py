"""A small OTLP receiver for tests: the collector's trace, metrics and logs services
from opentelemetry-proto, over gRPC (grpcio) and HTTP/protobuf, on 127.0.0.1.

It keeps every request it accepted, can refuse the next N requests (UNAVAILABLE /
HTTP 503) and can be stopped and started again on the same port.
"""
from __future__ import annotations

import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_pb
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc as logs_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as metrics_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as trace_grpc
from receivers import read_body, serve_http, stop_http

REQUEST_TYPES = {
    "traces": (trace_pb.ExportTraceServiceRequest, trace_pb.ExportTraceServiceResponse),
    "metrics": (metrics_pb.ExportMetricsServiceRequest, metrics_pb.ExportMetricsServiceResponse),
    "logs": (logs_pb.ExportLogsServiceRequest, logs_pb.ExportLogsServiceResponse),
}
_MAX_MESSAGE = 256 * 1024 * 1024


class Store:
    """What the receiver accepted, plus a failure switch; thread-safe."""

    def __init__(self) -> None:
        self.requests: dict[str, list[Any]] = {k: [] for k in REQUEST_TYPES}
        self.headers: list[dict[str, str]] = []
        self.refused = 0
        self._refuse_next = 0
        self._cond = threading.Condition()

    def refuse(self, n: int) -> None:
        with self._cond:
            self._refuse_next = n

    def accept(self, signal: str, request: Any, headers: dict[str, str]) -> bool:
        with self._cond:
            if self._refuse_next:
                self._refuse_next -= 1
                self.refused += 1
                return False
            self.requests[signal].append(request)
            self.headers.append(headers)
            self._cond.notify_all()
            return True

    def wait(self, predicate: Any, timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout)

    # -- views ------------------------------------------------------------
    def spans(self) -> list[Any]:
        with self._cond:
            return [s for r in self.requests["traces"] for rs in r.resource_spans
                    for ss in rs.scope_spans for s in ss.spans]

    def resources(self) -> list[dict[str, Any]]:
        with self._cond:
            return [attrs(rs.resource.attributes) for r in self.requests["traces"] for rs in r.resource_spans]

    def log_records(self) -> list[Any]:
        with self._cond:
            return [lr for r in self.requests["logs"] for rl in r.resource_logs
                    for sl in rl.scope_logs for lr in sl.log_records]

    def metrics(self) -> dict[str, list[Any]]:
        """Metric name -> data points of the latest request that had it."""
        out: dict[str, list[Any]] = {}
        with self._cond:
            for r in self.requests["metrics"]:
                for rm in r.resource_metrics:
                    for sm in rm.scope_metrics:
                        for m in sm.metrics:
                            kind = m.WhichOneof("data")
                            out[m.name] = list(getattr(m, kind).data_points)
        return out


def any_value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


def attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in kvs}


class _Servicer(trace_grpc.TraceServiceServicer, metrics_grpc.MetricsServiceServicer,
                logs_grpc.LogsServiceServicer):
    def __init__(self, store: Store) -> None:
        self.store = store

    def _handle(self, signal: str, request: Any, context: Any) -> Any:
        headers = {k: v for k, v in context.invocation_metadata()}
        if not self.store.accept(signal, request, headers):
            context.abort(grpc.StatusCode.UNAVAILABLE, "receiver refusing (test)")
        return REQUEST_TYPES[signal][1]()

    def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - grpc names
        for signal, (req_type, _) in REQUEST_TYPES.items():
            if isinstance(request, req_type):
                return self._handle(signal, request, context)
        raise TypeError(type(request))


def _http_handler(store: Store) -> type[BaseHTTPRequestHandler]:
    paths = {f"/v1/{signal}": signal for signal in REQUEST_TYPES}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            signal = paths.get(self.path)
            if signal is None:
                self.send_error(404)
                return
            body = read_body(self)
            if self.headers.get("Content-Type") != "application/x-protobuf":
                self.send_error(415)
                return
            req_type, resp_type = REQUEST_TYPES[signal]
            request = req_type.FromString(body)
            if not store.accept(signal, request, {k.lower(): v for k, v in self.headers.items()}):
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            payload = resp_type().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


class OtlpReceiver:
    """Both transports on 127.0.0.1 (ephemeral ports, kept across stop/start)."""

    def __init__(self) -> None:
        self.store = Store()
        self.grpc_port = 0
        self.http_port = 0
        self._grpc: grpc.Server | None = None
        self._http: ThreadingHTTPServer | None = None

    @property
    def grpc_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> OtlpReceiver:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=[
            ("grpc.max_receive_message_length", _MAX_MESSAGE), ("grpc.so_reuseport", 0)])
        servicer = _Servicer(self.store)
        trace_grpc.add_TraceServiceServicer_to_server(servicer, server)
        metrics_grpc.add_MetricsServiceServicer_to_server(servicer, server)
        logs_grpc.add_LogsServiceServicer_to_server(servicer, server)
        self.grpc_port = server.add_insecure_port(f"127.0.0.1:{self.grpc_port}")
        server.start()
        self._grpc = server
        self._http = serve_http(self.http_port, _http_handler(self.store))
        self.http_port = self._http.server_address[1]
        return self

    def stop(self) -> None:
        if self._grpc is not None:
            self._grpc.stop(grace=None).wait()
            self._grpc = None
        stop_http(self._http)
        self._http = None

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
