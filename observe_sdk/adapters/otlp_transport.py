"""Where OTLP requests go: the official exporters' transports, given our encoded bytes.

The SDK's ``opentelemetry-exporter-otlp`` exporters own every detail of the
wire that users configure with ``OTEL_EXPORTER_OTLP_*`` (endpoints per signal,
headers, timeout, compression, certificates, client keys, ``INSECURE``,
credential providers, the retryable gRPC codes) and their retries.  We make
the exporter as a user would and hand it the request bytes
(:mod:`.otlp_proto`) instead of SDK objects: over HTTP through the client it
sends its own serialized requests with, over gRPC through the same channel
with a pass-through serializer.

:func:`signal_protocol` is the one reading of ``OTEL_EXPORTER_OTLP_PROTOCOL``
(the cod network's own telemetry uses it too).
"""
from __future__ import annotations

import os
from functools import cache
from typing import Any, Protocol

from .base import TransientExportError
from .httpsend import check_url

PROTOCOLS = ("grpc", "http/protobuf")
SIGNALS = ("traces", "metrics", "logs")
_HTTP_PATHS = {"traces": "v1/traces", "metrics": "v1/metrics", "logs": "v1/logs"}
_GRPC_METHODS = {
    "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
}


def signal_protocol(signal: str, protocol: str | None = None) -> str:
    """``protocol``, else ``OTEL_EXPORTER_OTLP_<SIGNAL>_PROTOCOL``, else ``OTEL_EXPORTER_OTLP_PROTOCOL``,
    else ``http/protobuf``; a value that is neither protocol is a ValueError."""
    chosen = (protocol or os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL")
              or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf").strip().lower()
    if chosen not in PROTOCOLS:
        raise ValueError(f"OTLP protocol must be one of {', '.join(PROTOCOLS)}, not {chosen!r}")
    return chosen


class Sender(Protocol):
    endpoint: str       # where requests go, as the exporter resolved it (given or from the env)

    def send(self, body: bytes) -> None:
        """Deliver one encoded request; raise :class:`TransientExportError` when it was not."""

    def close(self) -> None: ...

    def usable(self) -> bool:
        """Whether the exporter has what this sender uses of it."""


def make_exporter(signal: str, protocol: str, endpoint: str | None, headers: dict[str, str] | None,
                  timeout: float | None) -> Any:
    """The official exporter of one signal (the SDK-object path; None arguments come from the env)."""
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter  # type: ignore[assignment]
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # type: ignore[assignment]
            OTLPMetricExporter,
        )
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[assignment]
            OTLPSpanExporter,
        )
        _check_http_endpoint(signal, endpoint)
        if endpoint is not None:
            endpoint = endpoint.rstrip("/") + "/" + _HTTP_PATHS[signal]
    cls: Any = {"traces": OTLPSpanExporter, "metrics": OTLPMetricExporter, "logs": OTLPLogExporter}[signal]
    if protocol == "grpc":
        cls = _raw_grpc(cls, _GRPC_METHODS[signal])
    return cls(endpoint=endpoint, headers=headers, timeout=timeout)


def make_sender(signal: str, protocol: str, endpoint: str | None, headers: dict[str, str] | None,
                timeout: float | None) -> Sender:
    """A sender of encoded ``signal`` requests over ``protocol`` (None arguments come from the env)."""
    exporter = make_exporter(signal, protocol, endpoint, headers, timeout)
    sender = _GrpcSender(exporter, signal) if protocol == "grpc" else _HttpSender(exporter, signal)
    if not sender.usable():     # what we rely on is not public API: a changed exporter fails here, clearly
        exporter.shutdown()
        raise ImportError(f"this version of opentelemetry-exporter-otlp-proto-{protocol.split('/')[0]} cannot "
                          "send encoded requests; install a version the observe-sdk[otel] extra allows")
    return sender


class _HttpSender:
    def __init__(self, exporter: Any, signal: str) -> None:
        self._exporter = exporter
        self.endpoint = str(exporter._endpoint)
        self._signal = signal

    def usable(self) -> bool:
        return callable(getattr(getattr(self._exporter, "_client", None), "export", None))

    def send(self, body: bytes) -> None:
        result = self._exporter._client.export(body)     # compression, headers, retries: the exporter's
        if not result.success:
            raise TransientExportError(f"OTLP export of {self._signal} to the collector failed"
                                       + (f" (HTTP {result.status_code})" if result.status_code else ""))

    def close(self) -> None:
        self._exporter.shutdown()


class _GrpcSender:
    def __init__(self, exporter: Any, signal: str) -> None:
        self._exporter = exporter
        self.endpoint = str(exporter._endpoint)
        self._signal = signal

    def usable(self) -> bool:
        return callable(getattr(self._exporter, "_export", None)) and self._exporter._stub is not None

    def send(self, body: bytes) -> None:
        if self._exporter._export(body).name != "SUCCESS":
            raise TransientExportError(f"OTLP export of {self._signal} to the collector failed")

    def close(self) -> None:
        self._exporter.shutdown()


@cache
def _raw_grpc(exporter_cls: type, method: str) -> type:
    """``exporter_cls`` whose stub sends request bytes as they are (and ignores the response body)."""

    class RawStub:
        def __init__(self, channel: Any) -> None:
            self.Export = channel.unary_unary(method, request_serializer=None, response_deserializer=None)

    class RawExporter(exporter_cls):  # type: ignore[misc]
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._stub = RawStub
            self._channel.close()
            self._initialize_channel_and_stub()

        def _translate_data(self, data: Any, *args: Any, **kwargs: Any) -> Any:
            return data

        def _count_data(self, data: Any) -> int:
            return 1

    RawExporter.__name__ = f"Raw{exporter_cls.__name__}"
    return RawExporter


def _check_http_endpoint(signal: str, endpoint: str | None) -> None:
    """An HTTP endpoint, given or from the environment, that is not a URL is a ValueError
    now (the exporter would fail every export, and be retried, with it)."""
    source = "OTLP endpoint"
    if endpoint is None:
        for var in (f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
            if os.environ.get(var):
                source, endpoint = var, os.environ[var]
                break
    if endpoint is not None:
        check_url(endpoint, source, unix=False)
