"""The hand-written OTLP protobuf encoder against opentelemetry-proto's own messages:
what we write decodes to the expected message and is byte-for-byte its serialization."""
from __future__ import annotations

import math

import pytest
from adapter_traces import deep_trace, sample_trace
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from observe_sdk import __version__
from observe_sdk.adapters import otlp_proto
from observe_sdk.adapters.common import span_attributes
from observe_sdk.adapters.otlp import OtlpAdapter
from observe_sdk.adapters.traceinfo import TRACEPARENT
from observe_sdk.trace import Log, Metric, Trace

HOST = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def pb_value(value: object) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, (list, tuple)):
        return AnyValue(array_value=ArrayValue(values=[pb_value(v) for v in value]))
    return AnyValue(string_value=str(value))


def pb_attrs(attrs: dict) -> list[KeyValue]:
    return [KeyValue(key=k, value=pb_value(v)) for k, v in attrs.items()]


@pytest.mark.parametrize("value", [True, False, 0, 7, -1, -(1 << 63), (1 << 63) - 1, 0.0, -2.5, math.inf,
                                   "", "é ✓ \U0001f600", "x" * 300, [1, "a", False], []])
def test_any_value_is_protobufs(value: object) -> None:
    assert otlp_proto.any_value(value) == pb_value(value).SerializeToString()
    kv = otlp_proto.key_value("k", value)
    assert kv == KeyValue(key="k", value=pb_value(value)).SerializeToString()


def test_nan_decodes_as_nan() -> None:
    assert math.isnan(AnyValue.FromString(otlp_proto.any_value(math.nan)).double_value)


def _adapter(**kwargs: object) -> OtlpAdapter:
    return OtlpAdapter(protocol="http/protobuf", endpoint="http://127.0.0.1:9", service_name="svc",
                       signals=["traces", "logs"], **kwargs)  # type: ignore[arg-type]


def expected_traces(adapter: OtlpAdapter, trace: Trace, host_parent: int | None, trace_id: bytes) -> bytes:
    """The request built with opentelemetry-proto's classes, field by field."""
    spans = []
    first = True
    stack = [(r, None) for r in reversed(trace.root_spans)]
    while stack:
        span, parent = stack.pop()
        attrs = span_attributes(span)
        if span.error is not None:
            attrs["error.message"] = span.error
        events = []
        for e in span.events:
            if type(e) is Log:
                events.append(PbSpan.Event(time_unix_nano=e.time_ns, name="log", attributes=pb_attrs(
                    {"log.severity": e.severity, "log.message": e.message})))
            elif type(e) is Metric:
                events.append(PbSpan.Event(time_unix_nano=e.time_ns, name="metric", attributes=pb_attrs(
                    {"metric.format": e.format_name, "metric.value": e.value})))
        if parent is None:
            attrs.update({"wasm.module": trace.module_name, **({"observe.dropped_events": trace.dropped_events}
                                                              if trace.dropped_events else {})})
            if first:
                events += [PbSpan.Event(time_unix_nano=trace.end_ns, name="observe.fault",
                                        attributes=pb_attrs({"message": m})) for m in trace.errors]
                first = False
        parent_id = parent.span_id if parent else host_parent
        spans.append(PbSpan(
            trace_id=trace_id, span_id=span.span_id.to_bytes(8, "big"),
            parent_span_id=parent_id.to_bytes(8, "big") if parent_id else b"",
            name=span.name, kind=PbSpan.SPAN_KIND_INTERNAL, start_time_unix_nano=span.start_ns,
            end_time_unix_nano=span.end_ns, attributes=pb_attrs(attrs), events=events,
            status=Status(code=Status.STATUS_CODE_ERROR, message=span.error) if span.error else None,
            flags=0x300 if parent is None and host_parent else 0x100))
        stack.extend((c, span) for c in reversed(span.children))
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.extend(pb_attrs(dict(adapter.resource.attributes)))
    ss = rs.scope_spans.add()
    ss.scope.CopyFrom(InstrumentationScope(name="observe_sdk", version=__version__))
    ss.spans.extend(spans)
    return request.SerializeToString()


@pytest.mark.parametrize("with_host_parent", [False, True])
def test_trace_request_is_byte_for_byte_protobufs(with_host_parent: bool) -> None:
    adapter = _adapter()
    trace = sample_trace()
    trace.errors.append("span-exit with no open span")
    trace.dropped_events = 3
    if with_host_parent:
        trace.metadata[TRACEPARENT] = HOST
    spans: list[bytes] = []
    logs: list[bytes] = []
    adapter.encode_trace(trace, spans, logs)
    ours = otlp_proto.request(adapter._resource_attrs, adapter._scope, spans)
    tid = bytes.fromhex(HOST[3:35]) if with_host_parent else trace.trace_id
    expected = expected_traces(adapter, trace, int(HOST[36:52], 16) if with_host_parent else None, tid)
    assert ExportTraceServiceRequest.FromString(ours) == ExportTraceServiceRequest.FromString(expected)
    assert ours == expected
    adapter.shutdown(1)


def test_log_records_decode() -> None:
    adapter = _adapter()
    trace = sample_trace()
    trace.metadata[TRACEPARENT] = HOST
    spans: list[bytes] = []
    logs: list[bytes] = []
    adapter.encode_trace(trace, spans, logs)
    request = ExportLogsServiceRequest.FromString(otlp_proto.request(adapter._resource_attrs, adapter._scope, logs))
    (scope_logs,) = request.resource_logs[0].scope_logs
    assert scope_logs.scope.name == "observe_sdk"
    first, second = scope_logs.log_records
    assert (first.body.string_value, first.severity_text, first.severity_number) == ("starting", "INFO", 9)
    assert first.span_id.hex() == HOST[36:52] and first.trace_id.hex() == HOST[3:35] and first.flags == 1
    log_write = next(s for s in trace.spans() if s.name == "log_write")
    assert second.body.string_value == "Vowels Counted: 3" and second.severity_number == 17
    assert second.span_id == log_write.span_id.to_bytes(8, "big")
    assert [(kv.key, kv.value.string_value) for kv in second.attributes] == [("wasm.module", "demo.wasm")]
    assert second.time_unix_nano == log_write.events[0].time_ns and second.observed_time_unix_nano > 0
    adapter.shutdown(1)


def test_a_large_trace_decodes_whole() -> None:
    adapter = _adapter(max_queue=1)
    trace = deep_trace(5000)
    spans: list[bytes] = []
    adapter.encode_trace(trace, spans, [])
    request = ExportTraceServiceRequest.FromString(otlp_proto.request(adapter._resource_attrs, adapter._scope,
                                                                      spans))
    decoded = request.resource_spans[0].scope_spans[0].spans
    assert [s.span_id for s in decoded] == [s.span_id.to_bytes(8, "big") for s in trace.spans()]
    by_id = {s.span_id: s for s in trace.spans()}
    assert all(by_id[int.from_bytes(s.span_id, "big")].parent_id == int.from_bytes(s.parent_span_id or b"\0", "big")
               for s in decoded)
    adapter.shutdown(1)


@pytest.mark.parametrize("n", [0, 1, 127, 128, 300, 16383, 16384, 1 << 35, (1 << 63) - 1])
def test_varints_and_lengths_across_the_table(n: int) -> None:
    assert otlp_proto.any_value(n) == AnyValue(int_value=n).SerializeToString()
    text = "y" * (n if n < 20000 else 5)
    assert otlp_proto.any_value(text) == AnyValue(string_value=text).SerializeToString()


def test_requests_hold_at_most_max_request_items() -> None:
    adapter = _adapter()
    adapter.max_request_items = 1000
    trace = deep_trace(2500)
    requests = adapter.encode([trace])
    assert [signal for signal, _ in requests] == ["traces"] * 3
    sizes = [len(ExportTraceServiceRequest.FromString(body).resource_spans[0].scope_spans[0].spans)
             for _, body in requests]
    assert sizes == [1000, 1000, 500]
    adapter.shutdown(1)
