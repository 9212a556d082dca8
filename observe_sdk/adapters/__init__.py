"""Adapters: the sinks that take finished traces to a backend, a file or stdout.

Every adapter is an :class:`Adapter` (a bounded queue and an exporter thread
around :meth:`Adapter.export`) and so a :class:`~observe_sdk.sink.TraceSink`.
:func:`create` makes one by name (``stdout``, ``otlp``, ``datadog``, ...,
or any package's ``observe_sdk.adapters`` entry point); the modules of this
package hold one adapter each, imported only when used (several need an
extra: ``observe-sdk[otel]``, ``observe-sdk[datadog]``).
"""
from .base import Adapter, ShutdownReport
from .memory import InMemoryAdapter
from .registry import create, names

__all__ = ["Adapter", "ShutdownReport", "InMemoryAdapter", "create", "names"]
