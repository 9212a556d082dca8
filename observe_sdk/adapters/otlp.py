"""OtlpAdapter: guest traces, metrics and logs to an OTLP endpoint (gRPC or HTTP/protobuf).

Spans and log records are encoded straight from the trace into OTLP protobuf
(:mod:`.otlp_proto`; the same tree walk as the in-process adapter,
:mod:`.walk`) and sent through the official ``opentelemetry-exporter-otlp``
exporters' transports (:mod:`.otlp_transport`); guest metrics go through an
SDK ``MeterProvider`` (their StatsD semantics need its aggregation) and are
encoded by the official encoder.  A failed export raises
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
import time
from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from ..gcpause import gc_paused
from ..trace import Log, Metric, Span, Trace
from ..version import __version__
from . import otlp_proto
from .base import Adapter, BackendRefused
from .common import ATTR_MODULE, DEFAULT_SERVICE_NAME
from .httpsend import check_timeout, refuses_connections
from .opentelemetry import (
    GUEST_LOGGER,
    SCOPE_NAME,
    _MetricRecorder,
    log_to_python,
    severity_of,
)
from .otlp_transport import PROTOCOLS, SIGNALS, Sender, make_sender, signal_protocol
from .resume import ResumableSends, Send
from .traceinfo import CapturesHostParent, host_parent, trace_attributes
from .walk import SPAN_START, walk

__all__ = ["OtlpAdapter", "PROTOCOLS", "SIGNALS", "default_resource", "parse_headers", "signal_protocol"]

log = logging.getLogger("observe_sdk.adapters")


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


class OtlpAdapter(CapturesHostParent, Adapter):
    """Exports guest telemetry over OTLP.

    ``protocol``: ``"grpc"`` or ``"http/protobuf"``; ``endpoint``: for gRPC
    ``http://host:4317`` (``https`` for TLS), for HTTP the base URL
    ``http://host:4318`` (``/v1/traces`` etc. are appended); ``headers``: a
    dict or ``k=v,...``; ``timeout``: seconds per export; ``signals``: any of
    ``traces``, ``metrics``, ``logs``; ``span_events``: logs and metrics also
    as events of their span; ``python_logging``: guest logs also to the
    ``observe_sdk.guest`` Python logger.  Unset values come from the
    environment.  Queue options as for every adapter.
    """

    name = "otlp"
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
        super().__init__(**queue_options)
        self.protocols = {signal: signal_protocol(signal, protocol) for signal in signals}
        self.protocol = signal_protocol("traces", protocol)
        parsed_headers = parse_headers(headers)
        if timeout is not None:
            timeout = check_timeout(timeout, "OTLP timeout")
        self.resource = default_resource(service_name, resource_attributes)
        self._senders: dict[str, Sender] = {}
        for signal, proto in self.protocols.items():
            self._senders[signal] = make_sender(signal, proto, endpoint, parsed_headers, timeout)
        self._resource_attrs = otlp_proto.attributes(0x0A, self.resource.attributes)
        self._scope = otlp_proto.scope(SCOPE_NAME, __version__)
        self._encoder = otlp_proto.SpanEncoder(span_events=span_events)
        self._pylog = logging.getLogger(GUEST_LOGGER) if python_logging else None
        self._metrics: _MetricRecorder | None = None
        self._meter_provider: MeterProvider | None = None
        if "metrics" in signals:
            self._reader = InMemoryMetricReader()
            self._meter_provider = MeterProvider(resource=self.resource, metric_readers=[self._reader],
                                                 shutdown_on_exit=False)
            self._metrics = _MetricRecorder(self._meter_provider.get_meter(SCOPE_NAME, __version__), self.name)
        self._sends = ResumableSends()

    @classmethod
    def from_env(cls, **kwargs: Any) -> OtlpAdapter:
        """Everything from the ``OTEL_*`` environment variables (keywords override)."""
        return cls(**kwargs)

    @property
    def invalid_metrics(self) -> int:
        """Guest metric lines that could not be parsed (logged, never raised)."""
        return self._metrics.ignored.count if self._metrics else 0

    def export(self, traces: list[Trace]) -> None:
        self._sends.run(traces, self._encode_batch)

    def _encode_batch(self, traces: list[Trace]) -> list[Send]:
        return [partial(self._send, signal, body) for signal, body in self.encode(traces)]

    def encode(self, traces: list[Trace]) -> list[tuple[str, bytes]]:
        """The requests that deliver ``traces``: (signal, encoded Export*ServiceRequest), in sending order."""
        recorded = self._metrics.recorded if self._metrics else 0
        spans = otlp_proto.Batches(self._resource_attrs, self._scope, self.max_request_items)
        logs = otlp_proto.Batches(self._resource_attrs, self._scope, self.max_request_items)
        with gc_paused():
            for trace in traces:
                self.encode_trace(trace, spans, logs)
        out = [("traces", body) for body in spans.requests()] + [("logs", body) for body in logs.requests()]
        if self._metrics and self._metrics.recorded != recorded:
            data = self._reader.get_metrics_data()   # cumulative: a later export repairs a lost one
            if data is not None and data.resource_metrics:
                from opentelemetry.exporter.otlp.proto.common.metrics_encoder import (
                    encode_metrics,
                )

                out.append(("metrics", encode_metrics(data).SerializeToString()))
        return out

    def encode_trace(self, trace: Trace, spans: otlp_proto.Items, logs: otlp_proto.Items) -> None:
        """Append ``trace``'s spans (if traces are sent and the trace is sampled) and log records
        (if logs are sent) to ``spans`` and ``logs``, as :mod:`.otlp_proto` fields; record its metrics."""
        parent = host_parent(trace)
        if parent is not None:
            trace_id, root_parent, root_flags, sampled = (parent.trace_id, parent.span_id,
                                                          otlp_proto.REMOTE, parent.sampled)
        else:
            trace_id, root_parent = int.from_bytes(trace.trace_id, "big"), 0
            root_flags, sampled = otlp_proto.LOCAL, True
        with_spans = "traces" in self._senders
        encode = self._encoder.span if with_spans and sampled else None
        head = self._encoder.head(trace_id)
        root_attrs = trace_attributes(trace)
        faults = trace.errors
        module = {ATTR_MODULE: trace.module_name} if trace.module_name else {}
        log_attrs = otlp_proto.attributes(0x32, module)
        observed = time.time_ns()
        local = otlp_proto.LOCAL
        for step, item, owner in walk(trace):
            if type(item) is Span:
                if step != SPAN_START or encode is None:
                    continue
                if owner is None:
                    events = self._encoder.fault_events(faults, trace.end_ns or item.end_ns) if faults else b""
                    faults = []
                    spans.append(encode(item, head, root_parent, root_flags, root_attrs, events))
                else:
                    spans.append(encode(item, head, owner.span_id, local))
                continue
            # a log or a metric: in a span, that span's ids (with traces off, the host's)
            if owner is not None and with_spans:
                ids = (trace_id, owner.span_id, sampled)
            elif parent is not None:
                ids = (trace_id, parent.span_id, sampled)
            else:
                ids = (0, 0, False)
            if type(item) is Log:
                self._log(item, ids, log_attrs, observed, logs, trace.module_name)
            elif type(item) is Metric and self._metrics is not None:
                self._metrics.record_text(item, _context(*ids), module)

    def _log(self, entry: Log, ids: tuple[int, int, bool], attrs: bytes, observed_ns: int, logs: otlp_proto.Items,
             module: str) -> None:
        severity, pylevel = severity_of(entry.level)
        trace_id, span_id, sampled = ids
        if "logs" in self._senders:
            logs.append(otlp_proto.log_record(entry.time_ns, severity.value, entry.severity, entry.message, attrs,
                                              int(sampled and trace_id != 0), trace_id, span_id, observed_ns))
        if self._pylog is not None and self._pylog.isEnabledFor(pylevel):
            log_to_python(self._pylog, entry, pylevel, _context(*ids), module)

    def _send(self, signal: str, body: bytes) -> None:
        sender = self._senders[signal]
        # at shutdown, a collector that is not there is not waited for (the exporter would retry it)
        if self._shutting_down.is_set() and refuses_connections(sender.endpoint):
            raise BackendRefused(f"OTLP collector at {sender.endpoint}: connection refused (is it running?)")
        sender.send(body)

    def close(self) -> None:
        closers = [sender.close for sender in self._senders.values()]
        if self._meter_provider is not None:
            closers.append(self._meter_provider.shutdown)
        for close in closers:
            try:
                close()
            except Exception:  # pragma: no cover - shutting down never raises to the host
                log.warning("%s: shutting down the OTLP exporters failed", self.name, exc_info=True)

def _context(trace_id: int, span_id: int, sampled: bool) -> Any:
    """An OpenTelemetry context holding the span with these ids (exemplars and log handlers see it)."""
    if not trace_id or not span_id:
        return otel_context.Context()
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    span = NonRecordingSpan(SpanContext(trace_id, span_id, is_remote=False, trace_flags=flags))
    return otel_trace.set_span_in_context(span, otel_context.Context())
