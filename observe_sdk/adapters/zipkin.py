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

from ..gcpause import gc_paused
from ..trace import Log, Metric, Span, Trace, span_id_hex
from .base import Adapter
from .common import (
    ATTR_ERROR_MESSAGE,
    DEFAULT_SERVICE_NAME,
    EVENT_LOG,
    EVENT_METRIC,
    FAULT_EVENT,
    identity_attributes,
    span_attributes,
)
from .httpsend import check_timeout, check_url, send
from .resume import ResumableSends, Send
from .traceinfo import CapturesHostParent, effective_trace_id, host_parent, trace_attributes

DEFAULT_ENDPOINT = "http://localhost:9411/api/v2/spans"
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


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
        self._templates: dict[tuple[bool, int, str, str], tuple[str, str]] = {}

    @classmethod
    def from_env(cls, **kwargs: Any) -> ZipkinAdapter:
        return cls(**kwargs)

    def encode(self, trace: Trace) -> list[dict[str, Any]]:
        """The trace's Zipkin spans as dicts (what :meth:`encode_json` writes, parsed)."""
        return [json.loads(text) for text in self.encode_json(trace)]

    def encode_json(self, trace: Trace) -> list[str]:
        """The trace's Zipkin spans, each as JSON text (roots first, then depth first)."""
        with gc_paused():
            return self._encode_json(trace)

    def _encode_json(self, trace: Trace) -> list[str]:
        trace_hex = f"{effective_trace_id(trace):032x}"
        head = f'{{"traceId":"{trace_hex}","id":"'
        parent = host_parent(trace)
        endpoint = {"serviceName": self.service_name}
        root_tags = {key: str(value) for key, value in trace_attributes(trace).items()}
        out: list[str] = []
        first_root = True
        for root in trace.roots:
            if type(root) is not Span:
                continue
            root_map = self._span(root, trace_hex, span_id_hex(parent.span_id) if parent else "", endpoint)
            root_map["tags"].update(root_tags)
            if first_root:
                first_root = False
                notes = root_map.setdefault("annotations", [])
                for message in trace.errors:
                    notes.append({"timestamp": trace.end_ns // 1000, "value": f"{FAULT_EVENT}: {message}"})
                for e in trace.roots:      # what happened while no span was open
                    if type(e) is Log or type(e) is Metric:
                        notes.append(_annotation(e))
                notes.sort(key=lambda a: a["timestamp"])
                if not notes:
                    del root_map["annotations"]
            out.append(_dumps(root_map))
            stack = [(child, root.span_id) for child in reversed(root.events) if type(child) is Span]
            while stack:
                span, parent_id = stack.pop()
                plain = not (span.tags or span.error)
                for child in reversed(span.events):
                    if type(child) is Span:
                        stack.append((child, span.span_id))
                    else:
                        plain = False
                if plain:
                    out.append(self._plain(span, head, parent_id))
                else:
                    out.append(_dumps(self._span(span, trace_hex, span_id_hex(parent_id), endpoint)))
        return out

    def _plain(self, span: Span, head: str, parent_id: int) -> str:
        """A span that carries only its identity, from its function's template."""
        key = (span.manual, span.function_index, span.raw_name, span.name)
        template = self._templates.get(key)
        if template is None:
            tags = _dumps({k: str(v) for k, v in identity_attributes(span).items()})
            template = self._templates[key] = (
                f',"name":{_dumps(span.name)},"timestamp":',
                f',"localEndpoint":{_dumps({"serviceName": self.service_name})},"tags":{tags},"parentId":"')
        before, after = template
        start_us = span.start_ns // 1000
        return (f'{head}{span.span_id:016x}"{before}{start_us},"duration":{max(1, span.end_ns // 1000 - start_us)}'
                f'{after}{parent_id:016x}"}}')

    def _span(self, span: Span, trace_hex: str, parent_hex: str, endpoint: dict[str, str]) -> dict[str, Any]:
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
        spans = [s for t in traces for s in self.encode_json(t)]
        n = self.max_spans_per_request
        return [partial(self._post, spans[i:i + n]) for i in range(0, len(spans), n)]

    def _post(self, spans: list[str]) -> None:
        body = ("[" + ",".join(spans) + "]").encode()
        send(self.endpoint, body, {"Content-Type": "application/json"}, timeout=self.timeout,
             what="Zipkin collector")


def _annotation(e: Log | Metric) -> dict[str, Any]:
    if isinstance(e, Log):
        value = f"{EVENT_LOG} {e.severity}: {e.message}"
    else:
        value = f"{EVENT_METRIC} {e.format_name}: {e.value}"
    return {"timestamp": e.time_ns // 1000, "value": value}
