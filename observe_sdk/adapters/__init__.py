"""Adapters: the sinks that take finished traces to a backend, a file or stdout.

Every adapter is an :class:`Adapter` (a bounded queue and an exporter thread
around :meth:`Adapter.export`) and so a :class:`~observe_sdk.sink.TraceSink`.
The modules of this package hold one adapter each and are imported only when
used (several need an extra: ``observe-sdk[otel]``, ``observe-sdk[datadog]``);
:func:`observe_sdk.adapters.registry.create` makes one by name (``stdout``,
``otlp``, ``datadog``, ..., or any package's ``observe_sdk.adapters`` entry point).
"""
from .base import Adapter, ShutdownReport

__all__ = ["Adapter", "ShutdownReport"]
