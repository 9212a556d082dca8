"""Where a Wasm trace sits in the host's trace, and what a trace says about itself.

The Wasm spans of a trace become children of a *host parent*: the span the
host had open when it ran the guest.  It is kept in ``trace.metadata`` under
:data:`TRACEPARENT` as a W3C ``traceparent`` string
(``00-<32 hex trace id>-<16 hex span id>-<2 hex flags>``), which keeps the
metadata plain data and lets a host that received a ``traceparent`` header
(or a job spec carrying one) set it directly::

    trace_ctx.set_metadata(traceparent=request.headers["traceparent"])

Adapters mix in :class:`CapturesHostParent`, whose hooks run on the guest's
thread and record the current OpenTelemetry span, if there is one and nothing
was set explicitly.  Every adapter then uses
:func:`host_parent` and :func:`effective_trace_id`, so Datadog, Zipkin, OTLP
and the in-process OpenTelemetry adapter all put the guest's spans in the
host's trace.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from ..trace import Trace
from .common import ATTR_DROPPED_EVENTS, ATTR_MODULE

log = logging.getLogger("observe_sdk.adapters")

TRACEPARENT = "traceparent"

_TRACEPARENT_RE = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")


@dataclass(frozen=True, slots=True)
class HostParent:
    trace_id: int     # 128-bit
    span_id: int      # 64-bit
    sampled: bool

    @property
    def trace_id_bytes(self) -> bytes:
        return self.trace_id.to_bytes(16, "big")

    @property
    def trace_id_hex(self) -> str:
        return f"{self.trace_id:032x}"

    def traceparent(self) -> str:
        return format_traceparent(self.trace_id, self.span_id, self.sampled)


def format_traceparent(trace_id: int, span_id: int, sampled: bool = True) -> str:
    return f"00-{trace_id:032x}-{span_id:016x}-{'01' if sampled else '00'}"


def parse_traceparent(text: str) -> HostParent:
    """Parse a W3C ``traceparent``; raise ``ValueError`` naming what is wrong."""
    m = _TRACEPARENT_RE.match(text.strip().lower()) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"traceparent {text!r} is not '00-<32 hex>-<16 hex>-<2 hex>'")
    version, tid, sid, flags, rest = m.groups()
    if version == "ff" or (version == "00" and rest):
        raise ValueError(f"traceparent {text!r}: unsupported version {version}")
    trace_id, span_id = int(tid, 16), int(sid, 16)
    if not trace_id or not span_id:
        raise ValueError(f"traceparent {text!r}: all-zero trace or span id")
    return HostParent(trace_id, span_id, bool(int(flags, 16) & 1))


def capture_host_parent(metadata: dict[str, Any]) -> None:
    """Record the host's current OpenTelemetry span as the parent, in trace metadata.

    Keeps a parent that is already set; does nothing without opentelemetry-api
    or without a valid current span.  Call it on the guest's thread.
    """
    if TRACEPARENT in metadata:
        return
    try:
        from opentelemetry import trace as otel_trace
    except ImportError:  # pragma: no cover - the otel extra is not installed
        return
    ctx = otel_trace.get_current_span().get_span_context()
    if ctx.is_valid:
        metadata[TRACEPARENT] = format_traceparent(ctx.trace_id, ctx.span_id, ctx.trace_flags.sampled)


class CapturesHostParent:
    """Adapter mixin: the host span current when the guest is invoked (if the host
    calls through ``TraceContext.call``) or else when the trace finishes becomes the
    parent of the trace's root spans."""

    def on_guest_invoked(self, metadata: dict[str, Any]) -> None:
        capture_host_parent(metadata)

    def on_trace_finished(self, trace: Trace) -> None:
        capture_host_parent(trace.metadata)


_warned_bad_parent: set[str] = set()    # each bad value is logged once...
_MAX_WARNED = 256                       # ...up to this many: the values come from outside


def host_parent(trace: Trace) -> HostParent | None:
    """The trace's host parent, or None (a bad value is logged once and ignored)."""
    value = trace.metadata.get(TRACEPARENT)
    if not value:
        return None
    try:
        return parse_traceparent(value)
    except ValueError as exc:
        key = str(value)[:200]
        if key not in _warned_bad_parent and len(_warned_bad_parent) < _MAX_WARNED:
            _warned_bad_parent.add(key)
            log.warning("ignoring trace metadata %r: %s", TRACEPARENT, exc)
        else:
            log.debug("ignoring trace metadata %r: %s", TRACEPARENT, exc)
        return None


def effective_trace_id(trace: Trace) -> int:
    """The 128-bit trace id the guest's spans are exported under."""
    parent = host_parent(trace)
    return parent.trace_id if parent else int.from_bytes(trace.trace_id, "big")


def trace_attributes(trace: Trace) -> dict[str, str | int]:
    """Trace-level facts that adapters attach to the root spans (faults are events:
    :data:`FAULT_EVENT`, on the first root span)."""
    attrs: dict[str, str | int] = {}
    if trace.module_name:
        attrs[ATTR_MODULE] = trace.module_name
    if trace.dropped_events:
        attrs[ATTR_DROPPED_EVENTS] = trace.dropped_events
    return attrs
