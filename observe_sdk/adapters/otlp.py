"""OtlpAdapter: guest traces, metrics and logs to an OTLP endpoint (gRPC or HTTP/protobuf).

Built on :class:`~.opentelemetry.OpenTelemetryAdapter` with providers of its
own: each batch of traces is turned into SDK spans, log records and metric
points, captured synchronously, and handed to the ``opentelemetry-exporter-otlp``
exporters directly, so the exporter's result decides: a failed export raises
:class:`~.base.TransientExportError` and the base class retries it with
backoff (what was already delivered is not sent twice).  Span and trace ids
are the ones the assembler gave the trace (or the host's trace id, see
:mod:`.traceinfo`), so they match what the other adapters emit.

Configuration follows the OpenTelemetry environment variables unless given
explicitly: ``OTEL_EXPORTER_OTLP_PROTOCOL`` and its per-signal variants
(``grpc`` or ``http/protobuf``, the default), ``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``..._TRACES_ENDPOINT`` etc.,
``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_EXPORTER_OTLP_TIMEOUT``,
``OTEL_EXPORTER_OTLP_COMPRESSION``, certificates and ``..._INSECURE`` (read
by the exporters themselves), and ``OTEL_SERVICE_NAME`` /
``OTEL_RESOURCE_ATTRIBUTES`` for the resource.
"""
from __future__ import annotations

import logging
import os
from functools import partial
from typing import Any, Iterable, Mapping

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    get_current_span,
)

from ..version import __version__
from ..trace import Span, Trace, new_span_id
from .base import BackendRefused, TransientExportError
from .common import DEFAULT_SERVICE_NAME
from .httpsend import check_timeout, check_url, refuses_connections
from .opentelemetry import SCOPE_NAME, OpenTelemetryAdapter
from .resume import ResumableSends, Send
from .traceinfo import effective_trace_id

PROTOCOLS = ("grpc", "http/protobuf")
SIGNALS = ("traces", "metrics", "logs")
_UNSET = Status(StatusCode.UNSET)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_SUCCESS = (SpanExportResult.SUCCESS, LogRecordExportResult.SUCCESS, MetricExportResult.SUCCESS)
_HTTP_PATHS = {"traces": "v1/traces", "metrics": "v1/metrics", "logs": "v1/logs"}

log = logging.getLogger("observe_sdk.adapters")


class _CollectedSpan(NonRecordingSpan):
    """A span that becomes a ``ReadableSpan`` in a list when it ends.

    It carries its context like any span (so logs and metric exemplars made
    under it are correlated) but skips the SDK's tracer, sampler and
    processors: the ids, times and sampling decision are already made.
    """

    def __init__(self, context: SpanContext, parent: SpanContext | None, name: str, attributes: dict,
                 start_ns: int, adapter: "OtlpAdapter") -> None:
        super().__init__(context)
        self._parent = parent
        self._name = name
        self._attributes = attributes
        self._start_ns = start_ns
        self._adapter = adapter
        self._events: list[Event] = []
        self._status = _UNSET

    def add_event(self, name: str, attributes: Any = None, timestamp: int | None = None) -> None:
        self._events.append(Event(name, attributes, timestamp))

    def set_status(self, status: Any, description: str | None = None) -> None:
        self._status = status

    def end(self, end_time: int | None = None) -> None:
        if not self.get_span_context().trace_flags.sampled:
            return
        a = self._adapter
        a._spans.append(ReadableSpan(
            name=self._name, context=self.get_span_context(), parent=self._parent, resource=a.resource,
            attributes=self._attributes, events=self._events, kind=SpanKind.INTERNAL, status=self._status,
            start_time=self._start_ns, end_time=end_time, instrumentation_scope=a._scope))


class _LogCapture(LogRecordExporter):
    """Keeps what the SDK's simple log processor hands over, for the real exporter to send."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    def export(self, batch: Any) -> Any:  # type: ignore[override]
        self.items.extend(batch)
        return LogRecordExportResult.SUCCESS

    def take(self) -> list[Any]:
        items, self.items = self.items, []
        return items

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def parse_headers(headers: Mapping[str, str] | str | None) -> dict[str, str] | None:
    """Headers as a dict; a string is ``k=v,k2=v2`` (the OTEL_EXPORTER_OTLP_HEADERS form)."""
    if headers is None or isinstance(headers, Mapping):
        return dict(headers) if headers is not None else None
    from urllib.parse import unquote

    out: dict[str, str] = {}
    for item in headers.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"OTLP header {item.strip()!r} is not 'key=value'")
        out[unquote(key.strip()).lower()] = unquote(value.strip())
    return out


def default_resource(service_name: str | None = None,
                     attributes: Mapping[str, Any] | None = None) -> Resource:
    """The SDK's resource (``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_SERVICE_NAME``), with our
    service name instead of ``unknown_service`` and explicit values on top."""
    attrs = dict(attributes or {})
    if service_name:
        attrs["service.name"] = service_name
    resource = Resource.create(attrs)
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": DEFAULT_SERVICE_NAME}))
    return resource


def signal_protocol(signal: str, protocol: str | None = None) -> str:
    """``protocol``, else ``OTEL_EXPORTER_OTLP_<SIGNAL>_PROTOCOL``, else ``OTEL_EXPORTER_OTLP_PROTOCOL``,
    else ``http/protobuf``; a value that is neither protocol is a ValueError."""
    chosen = (protocol or os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL")
              or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf").strip()
    if chosen not in PROTOCOLS:
        raise ValueError(f"OTLP protocol must be one of {', '.join(PROTOCOLS)}, not {chosen!r}")
    return chosen


def make_exporter(signal: str, protocol: str, endpoint: str | None, headers: dict[str, str] | None,
                  timeout: float | None) -> Any:
    """The opentelemetry-exporter-otlp exporter for one signal; None arguments come from the env."""
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter  # type: ignore[assignment]
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter  # type: ignore[assignment]
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # type: ignore[assignment]
    cls = {"traces": OTLPSpanExporter, "metrics": OTLPMetricExporter, "logs": OTLPLogExporter}[signal]
    if protocol == "http/protobuf":
        _check_http_endpoint(signal, endpoint)
    if endpoint is not None and protocol == "http/protobuf":
        endpoint = endpoint.rstrip("/") + "/" + _HTTP_PATHS[signal]
    return cls(endpoint=endpoint, headers=headers, timeout=timeout)


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


class OtlpAdapter(OpenTelemetryAdapter):
    """Exports guest telemetry over OTLP.

    ``protocol``: ``"grpc"`` or ``"http/protobuf"``; ``endpoint``: for gRPC
    ``http://host:4317`` (``https`` for TLS), for HTTP the base URL
    ``http://host:4318`` (``/v1/traces`` etc. are appended); ``headers``: a
    dict or ``k=v,...``; ``timeout``: seconds per export; ``signals``: any of
    ``traces``, ``metrics``, ``logs``.  Unset values come from the
    environment.  Queue options as for every adapter.
    """

    name = "otlp"
    keeps_trace_ids = True
    max_request_items = 2048   # spans or log records per request (collectors cap message sizes)

    def __init__(
        self,
        *,
        protocol: str | None = None,
        endpoint: str | None = None,
        headers: Mapping[str, str] | str | None = None,
        timeout: float | None = None,
        service_name: str | None = None,
        resource_attributes: Mapping[str, Any] | None = None,
        signals: Iterable[str] = SIGNALS,
        span_events: bool = True,
        python_logging: bool = False,
        **queue_options: Any,
    ) -> None:
        signals = tuple(signals)
        unknown = set(signals) - set(SIGNALS)
        if unknown:
            raise ValueError(f"unknown OTLP signal(s) {sorted(unknown)}; expected {', '.join(SIGNALS)}")
        self.protocols = {signal: signal_protocol(signal, protocol) for signal in signals}
        self.protocol = signal_protocol("traces", protocol)
        parsed_headers = parse_headers(headers)
        if timeout is not None:
            timeout = check_timeout(timeout, "OTLP timeout")
        self._exporters = {signal: make_exporter(signal, proto, endpoint, parsed_headers, timeout)
                           for signal, proto in self.protocols.items()}
        self.resource = default_resource(service_name, resource_attributes)

        self._scope = InstrumentationScope(SCOPE_NAME, __version__)
        self._spans: list[ReadableSpan] = []     # made by _CollectedSpan.end
        self._log_capture = _LogCapture()
        self._reader = InMemoryMetricReader()
        logger_provider = LoggerProvider(resource=self.resource, shutdown_on_exit=False)
        logger_provider.add_log_record_processor(SimpleLogRecordProcessor(self._log_capture))
        meter_provider = MeterProvider(resource=self.resource, metric_readers=[self._reader],
                                       shutdown_on_exit=False)
        self._providers = (meter_provider, logger_provider)
        super().__init__(
            None if "traces" in signals else False,   # spans: made directly, see _open_span
            meter_provider if "metrics" in signals else False,
            logger_provider if "logs" in signals else False,
            python_logging=python_logging, span_events=span_events, **queue_options)
        self._sends = ResumableSends()

    @classmethod
    def from_env(cls, **kwargs: Any) -> "OtlpAdapter":
        """Everything from the ``OTEL_*`` environment variables (keywords override)."""
        return cls(**kwargs)

    def _open_span(self, trace: Trace, span: Span, ctx: Any, attrs: dict) -> Any:
        parent = get_current_span(ctx).get_span_context()
        if parent.is_valid:
            trace_id, flags = parent.trace_id, parent.trace_flags
        else:
            parent, trace_id, flags = None, effective_trace_id(trace), _SAMPLED
        context = SpanContext(trace_id, span.span_id or new_span_id(), is_remote=False, trace_flags=flags)
        return _CollectedSpan(context, parent, span.name, attrs, span.start_ns, self)

    def export(self, traces: list[Trace]) -> None:
        self._sends.run(traces, self._encode_batch)

    def _encode_batch(self, traces: list[Trace]) -> list[Send]:
        recorded = self._metrics.recorded if self._metrics else 0
        super().export(traces)       # into our providers, captured synchronously
        sends: list[Send] = []
        n = self.max_request_items
        spans, self._spans = self._spans, []
        for signal, items in (("traces", spans), ("logs", self._log_capture.take())):
            sends += [partial(self._send, signal, items[i:i + n]) for i in range(0, len(items), n)]
        if self._metrics and self._metrics.recorded != recorded:
            data = self._reader.get_metrics_data()   # cumulative: a later export repairs a lost one
            if data is not None and data.resource_metrics:
                sends.append(partial(self._send, "metrics", data))
        return sends

    def _send(self, signal: str, data: Any) -> None:
        exporter = self._exporters[signal]
        endpoint = getattr(exporter, "_endpoint", None)  # the exporter's resolved endpoint (env or given)
        # at shutdown, a collector that is not there is not waited for (the exporter would retry it)
        if self._shutting_down.is_set() and isinstance(endpoint, str) and refuses_connections(endpoint):
            raise BackendRefused(f"OTLP collector at {endpoint}: connection refused (is it running?)")
        if exporter.export(data) not in _SUCCESS:
            raise TransientExportError(f"OTLP export of {signal} to the collector failed")

    def close(self) -> None:
        for part in (*self._exporters.values(), *self._providers):
            try:
                part.shutdown()
            except Exception:  # pragma: no cover - shutting down never raises to the host
                log.warning("%s: shutting down %s failed", self.name, type(part).__name__, exc_info=True)
