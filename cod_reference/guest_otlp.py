"""A guest's spans to the OTLP collector: one unit per execution, through a bounded queue of our own.

With a collector configured, the network's own spans go through the OpenTelemetry SDK's
``BatchSpanProcessor``, whose queue (2,048 spans) drops what does not fit with one log line.
A guest makes thousands of spans in a millisecond, so its spans do not go that way: the
executor hands the finished trace of one execution to :meth:`GuestSpanExporter.export`,
which

- walks it as the trace store does (:class:`~cod_reference.telemetry.GuestSpans`: the same
  parents, ids, per-execution cap and root attributes) and encodes each span with the Observe
  SDK's OTLP span encoder (:class:`observe_sdk.adapters.otlp_proto.SpanEncoder`) into
  ``ExportTraceServiceRequest`` bytes, at most :data:`MAX_REQUEST_SPANS` spans or
  :data:`MAX_REQUEST_BYTES` a request (a collector refuses larger gRPC messages);
- queues the unit, bounded by bytes (:data:`DEFAULT_QUEUE_BYTES`; a unit is taken whenever
  the queue is empty, so one execution's spans always fit), and returns: the job never waits;
- sends the queued units in order, on a thread of its own, through the official OTLP
  exporter's transport (:func:`observe_sdk.adapters.otlp_transport.make_sender`: the
  protocol, endpoint, headers, compression, timeout and retries of the ``OTEL_*`` settings).

Nothing is dropped silently: a unit that does not fit in the queue, that the collector still
refuses once the exporter's retries are over, or that is still queued when shutdown gives
up, is counted on the node's meter (:data:`DROPPED_METRIC`, by ``reason``: one of
:data:`REASONS`) and in a warning line. :meth:`GuestSpanExporter.flush` and
:meth:`~GuestSpanExporter.shutdown` wait a bounded time for the queue to be delivered; a
collector that refuses connections outright is not waited for.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from observe_sdk.adapters import otlp_proto
from observe_sdk.adapters.httpsend import refuses_connections
from observe_sdk.adapters.otlp_transport import Sender
from observe_sdk.trace import Span, Trace
from observe_sdk.version import __version__

from .telemetry import ATTR_GUEST_SPANS_DROPPED, GUEST_SCOPE, GuestSpans

log = logging.getLogger(__name__)

MAX_REQUEST_SPANS = 2048
MAX_REQUEST_BYTES = 3 * 2**20        # under the 4 MiB a gRPC server (the collector's too) takes by default
DEFAULT_QUEUE_BYTES = 128 * 2**20
DEFAULT_FLUSH_TIMEOUT_S = 30.0
DROPPED_METRIC = "cod.telemetry.guest_spans_dropped"
QUEUE_FULL, EXPORT_FAILED, SHUTDOWN = "queue_full", "export_failed", "shutdown"
REASONS = (QUEUE_FULL, EXPORT_FAILED, SHUTDOWN)
_DROPPED_ATTR_BYTES = 64             # room kept in the first request for the dropped count of the first root


def encode_guest_spans(trace: Trace, max_spans: int, resource_attrs: bytes, scope: bytes, *,
                       max_request_spans: int = MAX_REQUEST_SPANS, max_request_bytes: int = MAX_REQUEST_BYTES
                       ) -> tuple[list[tuple[bytes, int]], int]:
    """The ``ExportTraceServiceRequest`` s holding the spans of ``trace`` as
    :class:`~cod_reference.telemetry.GuestSpans` walks them (parents first, at most
    ``max_spans``), each with its number of spans, and how many spans the cap dropped.

    ``resource_attrs``: :func:`otlp_proto.attributes` of the resource (tag ``0x0A``);
    ``scope``: :func:`otlp_proto.scope`. As in the trace store, the first root carries the
    guest's faults (events) and the dropped count (:data:`ATTR_GUEST_SPANS_DROPPED`); a
    request holds at most ``max_request_spans`` spans and, unless one span is larger,
    ``max_request_bytes``."""
    walk = GuestSpans(trace, max_spans)
    encoder = otlp_proto.SpanEncoder()
    head = encoder.head(walk.trace_id)
    root_flags = otlp_proto.REMOTE if walk.parent is not None else otlp_proto.LOCAL
    faults = encoder.fault_events(trace.errors, trace.end_ns) if trace.errors else b""

    def encode_first(span: Span, parent_id: int, dropped: int) -> bytes:
        extra = {**walk.root_attributes, ATTR_GUEST_SPANS_DROPPED: dropped} if dropped else walk.root_attributes
        return encoder.span(span, head, parent_id, root_flags, extra, faults)

    first: tuple[Span, int] | None = None
    first_batch: list[bytes] | None = None     # the first request, built once the dropped count is known
    bodies: list[tuple[bytes, int]] = []
    items: list[bytes] = []
    size = 0
    for span, parent_id, root in walk:
        if first is None:
            first = (span, parent_id)
            item = encode_first(span, parent_id, 0)
            size = _DROPPED_ATTR_BYTES
        else:
            item = encoder.span(span, head, parent_id, root_flags if root else otlp_proto.LOCAL,
                                walk.root_attributes if root else None)
        if items and (len(items) >= max_request_spans or size + len(item) > max_request_bytes):
            if first_batch is None:
                first_batch = items
            else:
                bodies.append((otlp_proto.request(resource_attrs, scope, items), len(items)))
            items, size = [], 0
        items.append(item)
        size += len(item)
    if first is None:
        return [], walk.dropped
    if first_batch is None:
        first_batch, items = items, []
    if items:
        bodies.append((otlp_proto.request(resource_attrs, scope, items), len(items)))
    if walk.dropped:
        first_batch[0] = encode_first(*first, walk.dropped)
    bodies.insert(0, (otlp_proto.request(resource_attrs, scope, first_batch), len(first_batch)))
    return bodies, walk.dropped


@dataclass
class _Unit:
    """The spans of one execution, as requests (body, spans) sent in order."""

    requests: list[tuple[bytes, int]]
    nbytes: int
    label: str
    counted: bool = False      # sent, or its unsent spans counted as dropped


class GuestSpanExporter:
    """Sends the spans of each execution to the collector (see the module docs).

    ``sender``: where requests go (:func:`~observe_sdk.adapters.otlp_transport.make_sender`);
    ``resource_attrs``: the node's resource, encoded (:func:`otlp_proto.attributes`, tag
    ``0x0A``); ``dropped_counter``: an OpenTelemetry counter (:data:`DROPPED_METRIC`), given
    the number of spans dropped and ``{"reason": ...}``; ``max_queue_bytes``: the most the
    queue holds, units being sent included.
    """

    def __init__(self, sender: Sender, resource_attrs: bytes, dropped_counter: Any, *,
                 max_queue_bytes: int = DEFAULT_QUEUE_BYTES) -> None:
        self._sender = sender
        self.endpoint = sender.endpoint
        self._resource_attrs = resource_attrs
        self._scope = otlp_proto.scope(GUEST_SCOPE, __version__)
        self._dropped = dropped_counter
        self.max_queue_bytes = max_queue_bytes
        self._queue: collections.deque[_Unit] = collections.deque()
        self._sending: _Unit | None = None
        self._queued_bytes = 0               # queued and being sent
        self._closed = False
        self._abort = threading.Event()      # stop sending: what is left is dropped (shutdown)
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="cod-guest-spans-otlp", daemon=True)
        self._thread.start()

    # -- the executor's side ----------------------------------------------------------
    def export(self, trace: Trace, max_spans: int, label: str = "") -> int:
        """Queue the spans of ``trace`` (at most ``max_spans``, parents first) for the collector,
        without waiting; return how many spans the cap dropped. ``label`` names the execution
        in log lines. Never raises for a full queue or a stopped exporter: it counts them."""
        with self._cond:
            refused = SHUTDOWN if self._closed else QUEUE_FULL if self._queued_bytes >= self.max_queue_bytes else ""
        if refused:      # walk, to count, but do not encode what cannot be queued
            walk = GuestSpans(trace, max_spans)
            kept = sum(1 for _ in walk)
            self._count_dropped(kept, refused, label)
            return walk.dropped
        requests, dropped = encode_guest_spans(trace, max_spans, self._resource_attrs, self._scope)
        if not requests:
            return dropped
        unit = _Unit(requests, sum(len(body) for body, _ in requests), label)
        with self._cond:
            if self._closed:
                refused = SHUTDOWN
            elif self._queued_bytes and self._queued_bytes + unit.nbytes > self.max_queue_bytes:
                refused = QUEUE_FULL
            else:
                self._queue.append(unit)
                self._queued_bytes += unit.nbytes
                self._cond.notify_all()
        if refused:
            self._count_dropped(sum(n for _, n in requests), refused, label)
        return dropped

    @property
    def queued_bytes(self) -> int:
        """Bytes of requests queued or being sent."""
        with self._cond:
            return self._queued_bytes

    # -- delivery ------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                unit = self._sending = self._queue.popleft()
            try:
                self._send(unit)
            except Exception:  # pragma: no cover - a bug here must not stop delivery
                log.exception("sending guest spans to the OTLP collector failed")
                self._give_up(unit, EXPORT_FAILED, "")
            with self._cond:
                self._sending = None
                self._queued_bytes -= unit.nbytes
                self._cond.notify_all()

    def _send(self, unit: _Unit) -> None:
        for i, (body, _) in enumerate(unit.requests):
            if self._abort.is_set():
                self._give_up(unit, SHUTDOWN, "")
                return
            try:
                self._sender.send(body)
            except Exception as exc:   # the exporter already retried, as its OTEL_* settings say
                self._give_up(unit, SHUTDOWN if self._abort.is_set() else EXPORT_FAILED, str(exc))
                return
            unit.requests[i] = (b"", 0)    # sent: its bytes can go, and its spans are not left
        with self._cond:
            unit.counted = True

    def _give_up(self, unit: _Unit, reason: str, detail: str) -> None:
        """Count the spans of ``unit`` not sent yet as dropped (once)."""
        with self._cond:
            if unit.counted:
                return
            unit.counted = True
        self._count_dropped(sum(n for _, n in unit.requests), reason, unit.label, detail)

    def _count_dropped(self, spans: int, reason: str, label: str, detail: str = "") -> None:
        if spans <= 0:
            return
        try:
            self._dropped.add(spans, {"reason": reason})
        except Exception:  # pragma: no cover - a meter that is shut down
            log.debug("could not count dropped guest spans", exc_info=True)
        why = {QUEUE_FULL: f"the queue of guest spans for the collector is full ({self.max_queue_bytes} bytes)",
               EXPORT_FAILED: f"the OTLP collector at {self.endpoint} did not take them"
                              + (f": {detail}" if detail else ""),
               SHUTDOWN: f"telemetry stopped before the OTLP collector at {self.endpoint} took them"}[reason]
        log.warning("%s%d guest span(s) dropped: %s (counted in %s, reason=%s)",
                    f"execution {label}: " if label else "", spans, why, DROPPED_METRIC, reason)

    # -- stopping ---------------------------------------------------------------------------
    def _idle(self) -> bool:
        return not self._queue and self._sending is None

    def flush(self, timeout: float | None = DEFAULT_FLUSH_TIMEOUT_S) -> bool:
        """Wait until what was queued is sent or given up (at most ``timeout`` seconds; not at
        all when the collector refuses connections). True when nothing is left."""
        with self._cond:
            if self._idle():
                return True
        if refuses_connections(self.endpoint):
            return False
        with self._cond:
            return self._cond.wait_for(self._idle, timeout)

    def shutdown(self, timeout: float | None = DEFAULT_FLUSH_TIMEOUT_S) -> None:
        """Deliver what is queued, for at most ``timeout`` seconds (none when the collector
        refuses connections), then stop; what is left is counted as dropped. Once; later
        exports are counted as dropped."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
            idle = self._idle()
        if not idle and refuses_connections(self.endpoint):
            self._abort.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        self._thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        self._abort.set()
        try:
            self._sender.close()       # also ends the exporter's retries of a request being sent
        except Exception:
            log.warning("closing the OTLP exporter of guest spans failed", exc_info=True)
        self._thread.join(2.0)
        with self._cond:
            left = list(self._queue)
            self._queue.clear()
            if self._sending is not None:
                left.append(self._sending)
        for unit in left:
            self._give_up(unit, SHUTDOWN, "")
