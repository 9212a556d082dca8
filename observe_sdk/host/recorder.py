"""The raw event log and the Python recorder.

A recorder appends one raw event per ABI call: ``(kind, arg, t_ns)`` as three
ints in one flat list, with string payloads in a side list that ``arg``
indexes.  No tree work and no object per event happens here; the assembler
(:mod:`observe_sdk.assemble`) builds the trace once, when it finishes.

The log is the seam between recorders: the Python recorder below and the
in-wasm recorder (:mod:`observe_sdk.host.wasm_recorder`) produce the same log.
"""
from __future__ import annotations

import time
from collections.abc import Callable, MutableSequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import wasmtime

from ..abi import EventKind

time_ns = time.time_ns  # the one clock of every recorder: wall clock, ns since the epoch

K_ENTER = int(EventKind.ENTER)
K_EXIT = int(EventKind.EXIT)
K_GROW = int(EventKind.GROW)
K_END = int(EventKind.END)

MAX_TEXT_BYTES = 256 * 1024 * 1024
"""Guest text (span names, tags, logs, metrics) one trace keeps: the event cap
alone would let a guest that logs its whole memory, again and again, exhaust
the host.  Texts past it are replaced by a short marker."""


@dataclass
class EventLog:
    """Raw events of one trace: flat ``[kind, arg, t_ns, kind, arg, t_ns, ...]``."""

    max_events: int
    events: MutableSequence[int] = field(default_factory=list)
    payloads: list[Any] = field(default_factory=list)
    dropped: int = 0
    text_budget: int = field(default_factory=lambda: MAX_TEXT_BYTES)  # bytes; -1 once spent

    def add(self, kind: int, payload: Any, t_ns: int | None = None) -> None:
        """Append an event that carries a payload (names, texts, error messages).

        Past the event cap, events are dropped and counted, except END: the host
        records it once per trap or exit, and it says why the open spans closed.
        """
        if len(self.events) >= 3 * self.max_events and kind != K_END:
            self.dropped += 1
            return
        self.payloads.append(payload)
        self.events += (kind, len(self.payloads) - 1, time_ns() if t_ns is None else t_ns)

    def __len__(self) -> int:
        return len(self.events) // 3


InstrumentFunction = Callable[[int], None] | wasmtime.Func
"""What an instrument import (``enter``/``exit``/``memory-grow``) is linked to: a
Python callable taking the one i32, or an export of a recorder living in the store."""


class Recorder(Protocol):
    """Records the automatic-instrumentation events of one module into an :class:`EventLog`.

    The two implementations are :class:`PythonRecorder` and
    :class:`~observe_sdk.host.wasm_recorder.WasmRecorder`.
    """

    name: str

    @property
    def log(self) -> EventLog:
        """The log of the current trace; events recorded from Python are added here."""
        ...

    def instrument_functions(self) -> dict[str, InstrumentFunction]:
        """What ``enter``, ``exit`` and ``memory-grow`` are linked to, by canonical operation."""
        ...

    def sync(self) -> None:
        """Bring buffered events into :attr:`log` (call before adding an event from Python)."""
        ...

    def take(self) -> EventLog:
        """Hand over the current log and begin a new one."""
        ...


class PythonRecorder:
    """Records ``enter``/``exit``/``memory-grow`` with one Python call per event."""

    name = "python"

    def __init__(self, max_events: int) -> None:
        self.max_events = max_events
        self.log = EventLog(max_events)

    def instrument_functions(self) -> dict[str, InstrumentFunction]:
        """Python callables for the three instrument imports, by canonical operation."""
        recorder = self
        clock = time_ns

        def event(kind: int) -> Callable[[int], None]:
            def record(arg: int) -> None:
                log = recorder.log
                ev = log.events
                if len(ev) < log.max_events * 3:
                    ev += (kind, arg, clock())
                else:
                    log.dropped += 1
            return record

        return {"enter": event(K_ENTER), "exit": event(K_EXIT), "memory-grow": event(K_GROW)}

    def sync(self) -> None:
        """Bring buffered events into ``log`` (nothing is buffered here)."""

    def take(self) -> EventLog:
        """Hand over the current log and begin a new one."""
        self.sync()
        log, self.log = self.log, EventLog(self.max_events)
        return log
