"""What every adapter says the same way: attribute names and span status.

One place decides how a :class:`~observe_sdk.trace.Span` maps onto key/value
attributes, so that OTLP/JSON, OpenTelemetry, Datadog and Zipkin agree.
"""
from __future__ import annotations

from ..trace import Log, Metric, Span

AttrValue = str | int | float | bool

ATTR_FUNCTION_INDEX = "function.index"
ATTR_FUNCTION_RAW_NAME = "function.raw_name"
ATTR_SPAN_KIND = "wasm.span.kind"          # "function" or "manual"
ATTR_ALLOCATION = "allocation"             # pages of memory growth within the span
ATTR_ERROR_MESSAGE = "error.message"

EVENT_LOG = "log"
ATTR_LOG_SEVERITY = "log.severity"
ATTR_LOG_MESSAGE = "log.message"

EVENT_METRIC = "metric"
ATTR_METRIC_FORMAT = "metric.format"
ATTR_METRIC_VALUE = "metric.value"

# trace-level facts, on the (first) root span
ATTR_MODULE = "wasm.module"
ATTR_DROPPED_EVENTS = "observe.dropped_events"
FAULT_EVENT = "observe.fault"              # one event per guest fault recorded on the trace
ATTR_FAULT_MESSAGE = "message"

DEFAULT_SERVICE_NAME = "observe-sdk"

STATUS_UNSET = 0
STATUS_OK = 1
STATUS_ERROR = 2


def identity_attributes(span: Span) -> dict[str, AttrValue]:
    """What the span is: its kind and, for a function, its index and raw name
    (the same for every call of a function, so encoders may cache them)."""
    if span.manual:
        return {ATTR_SPAN_KIND: "manual"}
    return {ATTR_SPAN_KIND: "function", ATTR_FUNCTION_INDEX: span.function_index,
            ATTR_FUNCTION_RAW_NAME: span.raw_name}


def span_attributes(span: Span) -> dict[str, AttrValue]:
    """The attributes of a span: function index and raw name, allocation, tags."""
    attrs = identity_attributes(span)
    pages = span.allocated_pages
    if pages:
        attrs[ATTR_ALLOCATION] = pages
    for key, value in span.tag_pairs():
        if key:
            attrs[key] = value
    return attrs


def log_attributes(log: Log) -> dict[str, AttrValue]:
    return {ATTR_LOG_SEVERITY: log.severity, ATTR_LOG_MESSAGE: log.message}


def metric_attributes(metric: Metric) -> dict[str, AttrValue]:
    return {ATTR_METRIC_FORMAT: metric.format_name, ATTR_METRIC_VALUE: metric.value}
