"""OTLP protobuf messages written straight from our trace, without the protobuf runtime.

The wire format is small: every field is a tag (``number << 3 | wire type``)
followed by a varint, 8 or 4 little-endian bytes, or a length and that many
bytes.  Fields are written in field-number order, as protobuf's own
serializers do, so a message decodes to the same thing and, for the fields we
set, is byte-for-byte what ``opentelemetry-proto``'s classes would produce
(tests/adapters check both).

Large traces have hundreds of thousands of spans of a few dozen functions: a
span's name, kind and identity attributes are encoded once per function and
reused; a span is then a join of a handful of byte strings, no objects.
Messages (see opentelemetry/proto/{common,resource,trace,logs}/v1/*.proto and
collector/*/v1/*_service.proto)::

    ExportTraceServiceRequest {1: ResourceSpans}   ResourceSpans {1: Resource, 2: ScopeSpans}
    ScopeSpans {1: InstrumentationScope, 2: Span}  Resource {1: KeyValue}
    Span {1 trace_id, 2 span_id, 4 parent_span_id, 5 name, 6 kind, 7/8 start/end fixed64,
          9 attributes, 11 events, 15 status, 16 flags fixed32}
    Event {1 time fixed64, 2 name, 3 attributes}   Status {2 message, 3 code}
    ExportLogsServiceRequest {1: ResourceLogs}     ResourceLogs {1: Resource, 2: ScopeLogs}
    ScopeLogs {1: InstrumentationScope, 2: LogRecord}
    LogRecord {1 time fixed64, 2 severity_number, 3 severity_text, 5 body, 6 attributes,
               8 flags fixed32, 9 trace_id, 10 span_id, 11 observed_time fixed64}
    KeyValue {1 key, 2 value: AnyValue}  AnyValue {1 string, 2 bool, 3 int, 4 double, 5 array}
"""
from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ..trace import Allocation, Log, Metric, Span
from .common import (
    ATTR_ALLOCATION,
    ATTR_ERROR_MESSAGE,
    ATTR_FAULT_MESSAGE,
    EVENT_LOG,
    EVENT_METRIC,
    FAULT_EVENT,
    STATUS_ERROR,
    AttrValue,
    identity_attributes,
    log_attributes,
    metric_attributes,
    span_attributes,
)

SPAN_KIND_INTERNAL = 1
# Span.flags as the official encoder sets them: "is the parent remote" is known (0x100), and true (0x200)
FLAGS_LOCAL_PARENT = 0x100
FLAGS_REMOTE_PARENT = 0x300

_U64 = (1 << 64) - 1
_fixed64 = struct.Struct("<Q").pack
_double = struct.Struct("<d").pack
_times = struct.Struct("<BQBQ").pack      # Span fields 7 and 8: start and end, fixed64


def varint(n: int) -> bytes:
    """``n`` (non-negative) as a protobuf varint."""
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL = [varint(i) for i in range(1 << 14)]     # every length of a span message, and most others


def _len(n: int) -> bytes:
    return _SMALL[n] if n < 16384 else varint(n)


def field(tag: int, payload: bytes) -> bytes:
    """A length-delimited field: ``tag`` is the whole tag byte (``number << 3 | 2``, number < 16)."""
    return bytes((tag,)) + _len(len(payload)) + payload


def _text(tag: int, text: str) -> bytes:
    """A string field; proto3 leaves an empty one out."""
    return field(tag, text.encode("utf-8", "surrogatepass")) if text else b""


def any_value(value: Any) -> bytes:
    """An ``AnyValue`` message (a oneof: a false or zero value is still written)."""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        return b"\x18" + varint(value & _U64)
    if isinstance(value, float):
        return b"\x21" + _double(value)
    if isinstance(value, (list, tuple)):
        return field(0x2A, b"".join(field(0x0A, any_value(v)) for v in value))
    if isinstance(value, bytes):
        return field(0x3A, value)
    return field(0x0A, str(value).encode("utf-8", "surrogatepass"))


def key_value(key: str, value: Any) -> bytes:
    return _text(0x0A, key) + field(0x12, any_value(value))


def attributes(tag: int, attrs: Mapping[str, Any]) -> bytes:
    """Repeated ``KeyValue`` fields under ``tag``."""
    return b"".join(field(tag, key_value(k, v)) for k, v in attrs.items())


def _event(name: str, time_ns: int, attrs: Mapping[str, AttrValue]) -> bytes:
    """A Span's ``Event``, as field 11 of the span."""
    return field(0x5A, b"\x09" + _fixed64(time_ns) + _text(0x12, name) + attributes(0x1A, attrs))


def _status_error(message: str) -> bytes:
    return field(0x7A, _text(0x12, message) + bytes((0x18, STATUS_ERROR)))


def _flags(value: int) -> bytes:
    return b"\x85\x01" + struct.pack("<I", value)      # field 16, fixed32


def scope(name: str, version: str) -> bytes:
    """An ``InstrumentationScope`` message."""
    return _text(0x0A, name) + _text(0x12, version)


class SpanEncoder:
    """Spans of one resource and scope, as ``Span`` fields of a ``ScopeSpans`` (field 2 each).

    Caches what repeats across spans (per function: name, kind, identity
    attributes), so keep one encoder for many traces.
    """

    def __init__(self, *, span_events: bool = True) -> None:
        self._span_events = span_events     # logs and metrics also as events of their span
        self._names: dict[str, bytes] = {}
        self._identities: dict[tuple[bool, int, str], bytes] = {}

    def span(self, span: Span, head: bytes, parent_id: int, flags: bytes,
             extra_attrs: Mapping[str, AttrValue] | None = None, extra_events: bytes = b"") -> bytes:
        """``span`` as a length-prefixed ``Span`` field.  ``head``: :meth:`head` of its trace;
        ``parent_id``: 0 for none; ``flags``: :data:`LOCAL` or :data:`REMOTE`."""
        name = self._names.get(span.name)
        if name is None:
            name = self._names[span.name] = _text(0x2A, span.name) + bytes((0x30, SPAN_KIND_INTERNAL))
        pages = 0
        events: list[bytes] | None = None
        for e in span.events:
            if type(e) is Span:
                continue
            if type(e) is Allocation:
                pages += e.pages
            elif not self._span_events:
                continue
            elif type(e) is Log:
                (events := events or []).append(_event(EVENT_LOG, e.time_ns, log_attributes(e)))
            elif type(e) is Metric:
                (events := events or []).append(_event(EVENT_METRIC, e.time_ns, metric_attributes(e)))
        if span.tags or span.error is not None or extra_attrs:
            attrs = span_attributes(span)
            if span.error is not None:
                attrs[ATTR_ERROR_MESSAGE] = span.error
            if extra_attrs:
                attrs.update(extra_attrs)
            attr_bytes = attributes(0x4A, attrs)
        else:
            key = (span.manual, span.function_index, span.raw_name)
            attr_bytes = self._identities.get(key, b"")
            if not attr_bytes:
                attr_bytes = self._identities[key] = attributes(0x4A, identity_attributes(span))
            if pages:
                attr_bytes += field(0x4A, key_value(ATTR_ALLOCATION, pages))
        body = b"".join((
            head, span.span_id.to_bytes(8, "big"),
            b"\x22\x08" + parent_id.to_bytes(8, "big") if parent_id else b"",
            name, _times(0x39, span.start_ns, 0x41, span.end_ns), attr_bytes,
            b"".join(events) if events else b"", extra_events,
            _status_error(span.error) if span.error is not None else b"", flags))
        return b"\x12" + _len(len(body)) + body

    @staticmethod
    def head(trace_id: int) -> bytes:
        """The bytes every span of a trace starts with: its trace id, and the span id's tag."""
        return b"\x0a\x10" + trace_id.to_bytes(16, "big") + b"\x12\x08"

    @staticmethod
    def fault_events(messages: Sequence[str], time_ns: int) -> bytes:
        return b"".join(_event(FAULT_EVENT, time_ns, {ATTR_FAULT_MESSAGE: m}) for m in messages)


LOCAL = _flags(FLAGS_LOCAL_PARENT)
REMOTE = _flags(FLAGS_REMOTE_PARENT)


def log_record(time_ns: int, severity_number: int, severity_text: str, body: str,
               attrs: bytes, trace_flags: int, trace_id: int, span_id: int, observed_ns: int) -> bytes:
    """A ``LogRecord`` as a length-prefixed field 2 of ``ScopeLogs``; ``attrs``: from
    :func:`attributes` with tag ``0x32``; ids of 0 are left out."""
    body_bytes = b"".join((
        b"\x09", _fixed64(time_ns),
        b"\x10" + varint(severity_number) if severity_number else b"",
        _text(0x1A, severity_text),
        field(0x2A, field(0x0A, body.encode("utf-8", "surrogatepass"))),
        attrs,
        b"\x45" + struct.pack("<I", trace_flags) if trace_flags else b"",
        b"\x4a\x10" + trace_id.to_bytes(16, "big") if trace_id else b"",
        b"\x52\x08" + span_id.to_bytes(8, "big") if span_id else b"",
        b"\x59", _fixed64(observed_ns)))
    return b"\x12" + _len(len(body_bytes)) + body_bytes


def request(resource_attrs: bytes, scope_bytes: bytes, items: Sequence[bytes]) -> bytes:
    """An ``Export{Trace,Logs}ServiceRequest`` of one resource and scope holding ``items``
    (span or log record fields from :meth:`SpanEncoder.span` / :func:`log_record`);
    ``resource_attrs``: :func:`attributes` of the resource with tag ``0x0A``."""
    scoped = field(0x0A, scope_bytes) + b"".join(items)
    resource_part = field(0x0A, resource_attrs) + field(0x12, scoped)
    return field(0x0A, resource_part)


class Items(Protocol):
    """Where encoded spans or log records go (a list, or :class:`Batches`)."""

    def append(self, item: bytes, /) -> None: ...


class Batches:
    """Items become requests of ``size`` items as they are appended, so that a large trace
    is held once, as requests, rather than also as a list of its spans."""

    def __init__(self, resource_attrs: bytes, scope_bytes: bytes, size: int) -> None:
        self._resource_attrs = resource_attrs
        self._scope = scope_bytes
        self._size = size
        self._items: list[bytes] = []
        self._requests: list[bytes] = []

    def append(self, item: bytes) -> None:
        self._items.append(item)
        if len(self._items) >= self._size:
            self._close_request()

    def requests(self) -> list[bytes]:
        """The requests, the last one possibly short."""
        if self._items:
            self._close_request()
        return self._requests

    def _close_request(self) -> None:
        self._requests.append(request(self._resource_attrs, self._scope, self._items))
        self._items = []
