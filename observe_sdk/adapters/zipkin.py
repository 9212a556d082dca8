"""ZipkinAdapter: Zipkin v2 JSON to ``/api/v2/spans`` (Zipkin, Jaeger's Zipkin port, ...).

Each span: ``traceId`` (32 hex), ``id``, ``parentId`` (16 hex), ``name``,
``timestamp``/``duration`` in microseconds, ``localEndpoint.serviceName``,
``tags`` (all strings; ``error`` holds the message of a span closed by a
trap) and ``annotations`` for guest logs (``log ERROR: message``) and metrics
(``metric statsd: line``).  Root spans are children of the host span (see
:mod:`.traceinfo`).

Environment: ``OTEL_EXPORTER_ZIPKIN_ENDPOINT`` (default
``http://localhost:9411/api/v2/spans``), ``OTEL_EXPORTER_ZIPKIN_TIMEOUT``
(milliseconds, default 10000), ``OTEL_SERVICE_NAME``.
"""
from __future__ import annotations

import json
import os
from functools import partial
from typing import Any

from ..trace import Log, Metric, Span, Trace, span_id_hex
from .base import Adapter
from .common import ATTR_ERROR_MESSAGE, DEFAULT_SERVICE_NAME, EVENT_LOG, EVENT_METRIC, FAULT_EVENT, span_attributes
from .httpsend import check_timeout, check_url, send
from .resume import ResumableSends, Send
from .traceinfo import CapturesHostParent, effective_trace_id, host_parent, trace_attributes

DEFAULT_ENDPOINT = "http://localhost:9411/api/v2/spans"


class ZipkinAdapter(CapturesHostParent, Adapter):
    """POSTs Zipkin v2 JSON; ``endpoint`` is the full ``.../api/v2/spans`` URL."""

    name = "zipkin"
    max_spans_per_request = 5000

    def __init__(self, *, endpoint: str | None = None, service_name: str | None = None,
                 timeout: float | None = None, **queue_options: Any) -> None:
        super().__init__(**queue_options)
        self.endpoint = endpoint or os.environ.get("OTEL_EXPORTER_ZIPKIN_ENDPOINT") or DEFAULT_ENDPOINT
        check_url(self.endpoint, "Zipkin endpoint")
        self.service_name = service_name or os.environ.get("OTEL_SERVICE_NAME") or DEFAULT_SERVICE_NAME
        if timeout is None:
            raw = os.environ.get("OTEL_EXPORTER_ZIPKIN_TIMEOUT", "10000")
            try:
                self.timeout = check_timeout(float(raw) / 1000, "")
            except ValueError:
                raise ValueError(f"OTEL_EXPORTER_ZIPKIN_TIMEOUT={raw!r} is not a positive number of "
                                 "milliseconds") from None
        else:
            self.timeout = check_timeout(timeout, "Zipkin timeout")
        self._sends = ResumableSends()

    @classmethod
    def from_env(cls, **kwargs: Any) -> "ZipkinAdapter":
        return cls(**kwargs)

    def encode(self, trace: Trace) -> list[dict[str, Any]]:
        """The trace's spans as Zipkin v2 span objects."""
        trace_hex = f"{effective_trace_id(trace):032x}"
        parent = host_parent(trace)
        endpoint = {"serviceName": self.service_name}
        root_tags = {key: str(value) for key, value in trace_attributes(trace).items()}
        out: list[dict[str, Any]] = []
        first_root = True
        for root in trace.roots:
            if type(root) is not Span:
                continue
            stack: list[tuple[Span, str]] = [(root, span_id_hex(parent.span_id) if parent else "")]
            root_index = len(out)
            while stack:
                span, parent_hex = stack.pop()
                out.append(self._span(span, trace_hex, parent_hex, endpoint))
                me = span_id_hex(span.span_id)
                for child in reversed(span.events):
                    if type(child) is Span:
                        stack.append((child, me))
            out[root_index]["tags"].update(root_tags)
            if first_root:
                first_root = False
                notes = out[root_index].setdefault("annotations", [])
                for message in trace.errors:
                    notes.append({"timestamp": trace.end_ns // 1000, "value": f"{FAULT_EVENT}: {message}"})
                for e in trace.roots:      # what happened while no span was open
                    if type(e) is Log or type(e) is Metric:
                        notes.append(_annotation(e))
                notes.sort(key=lambda a: a["timestamp"])
        return out

    def _span(self, span: Span, trace_hex: str, parent_hex: str, endpoint: dict) -> dict[str, Any]:
        start_us = span.start_ns // 1000
        out: dict[str, Any] = {
            "traceId": trace_hex,
            "id": span_id_hex(span.span_id),
            "name": span.name,
            "timestamp": start_us,
            "duration": max(1, span.end_ns // 1000 - start_us),
            "localEndpoint": endpoint,
            "tags": {k: str(v) for k, v in span_attributes(span).items()},
        }
        if parent_hex:
            out["parentId"] = parent_hex
        notes = [_annotation(e) for e in span.events if type(e) is Log or type(e) is Metric]
        if notes:
            out["annotations"] = notes
        if span.error:
            out["tags"]["error"] = span.error
            out["tags"][ATTR_ERROR_MESSAGE] = span.error
        return out

    def export(self, traces: list[Trace]) -> None:
        self._sends.run(traces, self._encode_batch)

    def _encode_batch(self, traces: list[Trace]) -> list[Send]:
        spans = [s for t in traces for s in self.encode(t)]
        n = self.max_spans_per_request
        return [partial(self._post, spans[i:i + n]) for i in range(0, len(spans), n)]

    def _post(self, spans: list[dict[str, Any]]) -> None:
        body = json.dumps(spans, separators=(",", ":"), ensure_ascii=False).encode()
        send(self.endpoint, body, {"Content-Type": "application/json"}, timeout=self.timeout,
             what="Zipkin collector")


def _annotation(e: Log | Metric) -> dict[str, Any]:
    if type(e) is Log:
        value = f"{EVENT_LOG} {e.severity}: {e.message}"
    else:
        value = f"{EVENT_METRIC} {e.format_name}: {e.value}"
    return {"timestamp": e.time_ns // 1000, "value": value}
