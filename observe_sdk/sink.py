"""What the host hands finished traces to: the :class:`TraceSink` protocol.

The host (:mod:`observe_sdk.host.context`) knows a sink only through these two
methods; every :class:`~observe_sdk.adapters.base.Adapter` is one, and so is any
object that has them (a test double, a queue feeding another process).
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from .trace import Trace


@runtime_checkable
class TraceSink(Protocol):
    """Receives the traces of observed modules; both methods run on the guest's thread."""

    def submit(self, trace: Trace) -> None:
        """Take a finished trace; must return quickly and never raise."""

    def on_guest_invoked(self, metadata: dict[str, Any]) -> None:
        """The host is about to call the guest; ``metadata`` is the current trace's
        (adapters capture the host's current span into it).  Must be quick."""


def sink_name(sink: TraceSink) -> str:
    """How log lines name ``sink``: its ``name`` attribute when it has one."""
    name = getattr(sink, "name", None)
    return name if isinstance(name, str) else type(sink).__name__
