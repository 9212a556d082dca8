"""What one component reports through wasi:otel, checked, bounded and turned into a :class:`Trace`.

The guest is not trusted: every id is checked, every text and list is capped,
and every call counts against ``Options.max_events``.  Whatever is wrong is
recorded as a fault on the trace (``Trace.errors``) and the rest is kept; no
guest value can raise out of here.

The component's spans keep their own ids and parent links.  Spans whose parent
is the span ``current-span-context`` returned at the top (the host's span, or
the invocation span the host opens when there is none) nest directly under it;
a span whose parent never existed is attached there too, with a fault.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..abi import LogLevel, MetricFormat
from ..host.recorder import MAX_TEXT_BYTES
from ..trace import Event, Log, Metric, Span, Trace

MAX_ATTRIBUTES = 128
"""Attributes (and span events, links) one span keeps; the rest are counted in a fault."""
MAX_TEXT_CHARS = 64 * 1024
"""Longest name, key or value kept; longer ones are cut and marked."""


@dataclass(frozen=True, slots=True)
class SpanStart:
    trace_id: str
    span_id: str


@dataclass(frozen=True, slots=True)
class SpanEnd:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: str
    start_ns: int
    end_ns: int
    attributes: list[tuple[str, str]]
    events: list[tuple[str, int, list[tuple[str, str]]]]   # (name, time, attributes)
    links: list[tuple[str, str]]                          # (trace id, span id)
    error: str | None                                     # status error(description)
    status_ok: bool = False


@dataclass(frozen=True, slots=True)
class LogRecord:
    time_ns: int | None
    severity_text: str | None
    severity_number: int | None
    body: str | None            # JSON (an OTel AnyValue), as the WIT says
    event_name: str | None
    attributes: list[tuple[str, str]]
    span_id: str | None


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One data point of one metric, already reduced to a statsd line's parts."""
    name: str
    value: str            # the number as text
    statsd_type: str      # c, g, h
    time_ns: int
    attributes: list[tuple[str, str]]


def parse_hex_id(text: str, digits: int) -> int | None:
    """An id of exactly ``digits`` lowercase-or-uppercase hex digits, not all zero; else None."""
    if len(text) != digits:
        return None
    try:
        value = int(text, 16)
    except ValueError:
        return None
    return value or None


def otel_severity_to_level(number: int | None, text: str | None) -> int:
    """OTel severity (1-24, or its text) to the Observe levels (ERROR..TRACE)."""
    if number:
        if number >= 17:
            return LogLevel.ERROR
        if number >= 13:
            return LogLevel.WARN
        if number >= 9:
            return LogLevel.INFO
        if number >= 5:
            return LogLevel.DEBUG
        return LogLevel.TRACE
    by_text = {"FATAL": LogLevel.ERROR, "ERROR": LogLevel.ERROR, "WARN": LogLevel.WARN, "WARNING": LogLevel.WARN,
               "INFO": LogLevel.INFO, "DEBUG": LogLevel.DEBUG, "TRACE": LogLevel.TRACE}
    return by_text.get((text or "").upper(), LogLevel.INFO)


def any_value_text(value: str) -> str:
    """An attribute value or log body (JSON-encoded AnyValue) as display text."""
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    return decoded if isinstance(decoded, str) else json.dumps(decoded, separators=(",", ":"))


@dataclass
class _Pending:
    """A span the guest has ended: its Span plus the parent it named."""
    span: Span
    parent_id: int


@dataclass
class OtelCollector:
    """Collects one trace's worth of wasi:otel calls.

    ``trace_id`` (32 hex) and ``top_span_id`` are what ``current-span-context``
    returns while no guest span is open.
    """

    trace_id_hex: str
    top_span_id: int
    max_events: int
    events: int = 0
    dropped: int = 0
    errors: list[str] = field(default_factory=list)
    open_stack: list[int] = field(default_factory=list)
    open_starts: dict[int, int] = field(default_factory=dict)     # span id -> time seen (ns)
    ended: dict[int, _Pending] = field(default_factory=dict)
    loose: list[tuple[int, Log | Metric]] = field(default_factory=list)  # (span id, event)
    text_budget: int = MAX_TEXT_BYTES
    _fault_count: int = 0

    # -- the checks every call goes through ----------------------------------
    def fault(self, message: str) -> None:
        """Record a guest fault (bounded: past the event cap they are only counted)."""
        self._fault_count += 1
        if len(self.errors) < self.max_events:
            self.errors.append(message)
        else:
            self.dropped += 1

    def _admit(self) -> bool:
        if self.events >= self.max_events:
            self.dropped += 1
            return False
        self.events += 1
        return True

    def text(self, value: str, what: str) -> str:
        if len(value) > MAX_TEXT_CHARS:
            self.fault(f"{what}: {len(value)} characters; cut to {MAX_TEXT_CHARS}")
            value = value[:MAX_TEXT_CHARS] + "…[cut]"
        self.text_budget -= len(value)
        if self.text_budget < 0:
            if self.text_budget + len(value) >= 0:
                self.fault(f"{what}: the trace's text budget ({MAX_TEXT_BYTES} bytes) is spent; "
                           "further texts are replaced")
            return "[text budget spent]"
        return value

    def pairs(self, items: list[tuple[str, str]], what: str) -> list[tuple[str, str]]:
        if len(items) > MAX_ATTRIBUTES:
            self.fault(f"{what}: {len(items)} attributes; {len(items) - MAX_ATTRIBUTES} dropped "
                       f"(at most {MAX_ATTRIBUTES} kept)")
            items = items[:MAX_ATTRIBUTES]
        return [(self.text(k, f"{what} key"), self.text(any_value_text(v), f"{what} value")) for k, v in items]

    def _span_id(self, text: str, op: str) -> int | None:
        span_id = parse_hex_id(text, 16)
        if span_id is None:
            self.fault(f"{op}: span-id {text[:40]!r} is not 16 hex digits (or is all zero); span ignored")
        return span_id

    def _check_trace(self, text: str, op: str, span_id: int) -> None:
        if text.lower() != self.trace_id_hex:
            self.fault(f"{op}: span {span_id:016x} has trace-id {text[:40]!r}, not this trace's "
                       f"{self.trace_id_hex}; kept in this trace")

    # -- wasi:otel/tracing ------------------------------------------------------
    def current_span(self) -> int:
        return self.open_stack[-1] if self.open_stack else self.top_span_id

    def on_start(self, start: SpanStart, now_ns: int) -> None:
        span_id = self._span_id(start.span_id, "on-start")
        if span_id is None:
            return
        if span_id in self.open_starts or span_id in self.ended or span_id == self.top_span_id:
            self.fault(f"on-start: span {span_id:016x} was already started; ignored")
            return
        if not self._admit():
            return
        self._check_trace(start.trace_id, "on-start", span_id)
        self.open_starts[span_id] = now_ns
        self.open_stack.append(span_id)

    def on_end(self, end: SpanEnd) -> None:
        span_id = self._span_id(end.span_id, "on-end")
        if span_id is None:
            return
        if span_id in self.ended:
            self.fault(f"on-end: span {span_id:016x} ended twice; the second end is ignored")
            return
        if span_id in self.open_starts:
            del self.open_starts[span_id]
            self.open_stack.remove(span_id)
        elif span_id == self.top_span_id:
            self.fault(f"on-end: span {span_id:016x} is the host's span; ignored")
            return
        else:
            if not self._admit():
                return
            self.fault(f"on-end: span {span_id:016x} ({end.name[:80]!r}) was never started; kept")
        self._check_trace(end.trace_id, "on-end", span_id)
        parent_id = 0 if end.parent_span_id in ("", "0" * 16) else parse_hex_id(end.parent_span_id, 16)
        if parent_id is None:
            self.fault(f"on-end: span {span_id:016x} has parent-span-id {end.parent_span_id[:40]!r}, "
                       "not 16 hex digits; attached to the top span")
            parent_id = 0
        start_ns, end_ns = end.start_ns, end.end_ns
        if end_ns < start_ns:
            self.fault(f"on-end: span {span_id:016x} ends {start_ns - end_ns} ns before it starts; "
                       "its end is set to its start")
            end_ns = start_ns
        name = self.text(end.name, "span name") or "(unnamed)"
        tags = [f"{k}:{v}" for k, v in self.pairs(end.attributes, f"span {name!r}")]
        if end.kind != "internal":
            tags.append(f"span.kind:{end.kind}")
        for trace_hex, link_span in end.links[:MAX_ATTRIBUTES]:
            tags.append(f"link:{self.text(trace_hex, 'link')}-{self.text(link_span, 'link')}")
        events: list[Event] = []
        for ev_name, ev_time, ev_attrs in end.events[:MAX_ATTRIBUTES]:
            detail = " ".join(f"{k}={v}" for k, v in self.pairs(ev_attrs, f"event of {name!r}"))
            message = self.text(ev_name, "event name") + (f" {detail}" if detail else "")
            events.append(Log(int(LogLevel.INFO), message, ev_time))
        if len(end.events) > MAX_ATTRIBUTES or len(end.links) > MAX_ATTRIBUTES:
            self.fault(f"span {name!r}: more than {MAX_ATTRIBUTES} events or links; the rest dropped")
        error = self.text(end.error, "status") if end.error is not None else None
        span = Span(name, name, 0, start_ns, end_ns, True, events, tags, error, span_id, parent_id)
        self.ended[span_id] = _Pending(span, parent_id)

    # -- wasi:otel/logs and metrics ---------------------------------------------
    def _owner(self, span_hex: str | None) -> int:
        if span_hex:
            span_id = parse_hex_id(span_hex, 16)
            if span_id is not None and (span_id in self.open_starts or span_id in self.ended
                                        or span_id == self.top_span_id):
                return span_id
        return self.current_span()

    def on_emit(self, record: LogRecord, now_ns: int) -> None:
        if not self._admit():
            return
        body = any_value_text(record.body) if record.body is not None else (record.event_name or "")
        attrs = self.pairs(record.attributes, "log")
        message = self.text(body, "log body") + "".join(f" {k}={v}" for k, v in attrs)
        level = otel_severity_to_level(record.severity_number, record.severity_text)
        self.loose.append((self._owner(record.span_id), Log(int(level), message, record.time_ns or now_ns)))

    def on_metrics(self, points: list[MetricPoint]) -> None:
        owner = self.current_span()
        for point in points:
            if not self._admit():
                return
            tags = ",".join(f"{k}:{v}" for k, v in self.pairs(point.attributes, f"metric {point.name!r}"))
            line = f"{self.text(point.name, 'metric name')}:{point.value}|{point.statsd_type}"
            self.loose.append((owner, Metric(int(MetricFormat.STATSD), line + (f"|#{tags}" if tags else ""),
                                             point.time_ns)))

    # -- the trace ---------------------------------------------------------------
    def build(self, top: Span | None, end_ns: int, trap: str | None = None) -> list[Event]:
        """The trace's roots: ``top`` (the invocation span) holding the guest's
        top-level spans, or those spans themselves when the top is the host's.

        Spans still open are closed at ``end_ns``: as errors saying ``trap`` when
        the guest trapped, else as a fault (the guest forgot to end them).
        """
        for i, span_id in enumerate(self.open_stack):
            if trap is None:
                self.fault(f"span {span_id:016x} was started but never ended; closed when the call returned")
            start = self.open_starts.pop(span_id)
            parent = self.open_stack[i - 1] if i else 0
            self.ended[span_id] = _Pending(Span(f"unended span {span_id:016x}", "", 0, start, max(start, end_ns),
                                                True, [], [], trap or "never ended", span_id, parent), parent)
        if trap is not None and top is None:  # no invocation span of ours to carry it
            self.fault(trap)
        self.open_stack.clear()
        parent_of = self._checked_parents()
        top_events: list[Event] = []
        for span_id, parent_id in parent_of.items():
            span = self.ended[span_id].span
            if parent_id:
                span.parent_id = parent_id
                self.ended[parent_id].span.events.append(span)
            else:
                span.parent_id = self.top_span_id if top is not None else 0
                top_events.append(span)
        for owner, event in self.loose:
            pending_owner = self.ended.get(owner)
            (pending_owner.span.events if pending_owner else top_events).append(event)
        for pending in self.ended.values():
            pending.span.events.sort(key=_event_time)
        top_events.sort(key=_event_time)
        if top is None:
            return top_events
        top.events = top_events
        return [top]

    def _checked_parents(self) -> dict[int, int]:
        """Each ended span's parent among the ended spans, 0 for the top; unknown parents
        and cycles (a guest can name any id) are faults, cut at the top."""
        parent_of: dict[int, int] = {}
        for span_id, pending in self.ended.items():
            parent_id = pending.parent_id
            if parent_id and parent_id != self.top_span_id and parent_id not in self.ended:
                self.fault(f"span {span_id:016x} ({pending.span.name[:80]!r}) names parent {parent_id:016x}, "
                           "which never existed; attached to the top span")
                parent_id = 0
            parent_of[span_id] = 0 if parent_id == self.top_span_id else parent_id
        resolved: set[int] = set()
        for span_id in parent_of:
            path: list[int] = []
            on_path: set[int] = set()
            node = span_id
            while node and node not in resolved:
                if node in on_path:
                    self.fault(f"span {node:016x}: its parents form a cycle; attached to the top span")
                    parent_of[node] = 0
                    break
                on_path.add(node)
                path.append(node)
                node = parent_of[node]
            resolved.update(path)
        return parent_of

    def to_trace(self, trace: Trace, top: Span | None, trap: str | None = None) -> Trace:
        trace.roots = self.build(top, trace.end_ns, trap)
        trace.errors = self.errors
        trace.dropped_events = self.dropped
        return trace


def _event_time(event: Event) -> int:
    return event.start_ns if type(event) is Span else event.time_ns  # type: ignore[union-attr]
