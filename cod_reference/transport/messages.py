"""The messages orchestrator and compute nodes exchange.

Every message is plain JSON on the wire (:meth:`Message.to_json`), so any transport can
carry it, and each carries the W3C trace context (``traceparent``/``tracestate``) of the
span that sent it, so the receiver's spans join the job's trace.
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate

# orchestrator -> compute
ASK_FOR_BID = "AskForBid"
BID_ACCEPTED = "BidAccepted"
BID_REJECTED = "BidRejected"
CANCEL_EXECUTION = "CancelExecution"
RECONCILE = "Reconcile"                     # a part of what the orchestrator believes the node holds
# compute -> orchestrator
BID_RESULT = "BidResult"
EXECUTION_RUNNING = "ExecutionRunning"     # the guest has started (for job describe/logs --follow)
RUN_RESULT = "RunResult"
COMPUTE_ERROR = "ComputeError"
HEARTBEAT = "Heartbeat"
HANDSHAKE = "Handshake"                     # a node (re)joining: its info; the orchestrator answers Reconcile
SPANS = "Spans"                             # finished spans of a node whose orchestrator keeps the trace
FILES_REMOVED = "FilesRemoved"              # the node's retention removed a finished execution's logs and results

MESSAGE_TYPES = (ASK_FOR_BID, BID_ACCEPTED, BID_REJECTED, CANCEL_EXECUTION, RECONCILE, BID_RESULT, EXECUTION_RUNNING,
                 RUN_RESULT, COMPUTE_ERROR, HEARTBEAT, HANDSHAKE, SPANS, FILES_REMOVED)

ORCHESTRATOR = "orchestrator"


@dataclass
class Message:
    type: str
    source: str
    target: str
    payload: dict[str, Any]
    trace_context: dict[str, str] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    time_ns: int = field(default_factory=time.time_ns)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Message:
        doc = json.loads(text)
        if not isinstance(doc, dict) or doc.get("type") not in MESSAGE_TYPES:
            raise ValueError(f"not a cod message: {str(text)[:80]!r}")
        return cls(**doc)

    def context(self) -> otel_context.Context:
        """The sender's trace context, to parent the receiver's spans."""
        return extract_context(self.trace_context)


def extract_context(carrier: dict[str, str]) -> otel_context.Context:
    """The trace context held in a W3C ``traceparent``/``tracestate`` carrier (empty: a new root)."""
    return propagate.extract(carrier) if carrier.get("traceparent") else otel_context.Context()


def make_message(type_: str, source: str, target: str, payload: dict[str, Any],
                 ctx: otel_context.Context | None = None) -> Message:
    """A message carrying the trace context ``ctx`` (default: the current one)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=ctx)
    return Message(type_, source, target, payload, carrier)
