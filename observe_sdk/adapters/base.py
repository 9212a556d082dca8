"""The adapter base: a bounded queue and one exporter thread per adapter.

The guest's thread only enqueues finished traces (:meth:`Adapter.submit`);
formatting and I/O happen in :meth:`Adapter.export` on the adapter's own
thread, in batches, with retries and exponential backoff on transient
failures.  A backend that is down or slow never blocks the host: when the
queue is full the oldest trace is dropped, counted and logged.
:meth:`Adapter.shutdown` flushes what it can within its timeout and reports
what it could not.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import wasmtime

from ..errors import BackendRefused as BackendRefused
from ..errors import TransientExportError as TransientExportError
from ..host.context import TraceContext, observe
from ..options import Options
from ..trace import Trace

log = logging.getLogger("observe_sdk.adapters")


@dataclass
class ShutdownReport:
    exported: int       # traces delivered over the adapter's life
    dropped: int        # traces dropped because the queue was full
    failed: int         # traces given up after retries or a permanent error
    pending: int        # traces still queued when the timeout ran out

    @property
    def complete(self) -> bool:
        return self.pending == 0 and self.failed == 0 and self.dropped == 0


class Adapter:
    """Base class of all adapters.  Subclasses implement :meth:`export`."""

    name = "base"

    def __init__(
        self,
        *,
        batch_size: int = 64,
        flush_interval: float = 0.5,
        max_queue: int = 2048,
        max_retries: int = 6,
        backoff: float = 0.1,
        max_backoff: float = 5.0,
    ) -> None:
        if batch_size < 1 or max_queue < 1:
            raise ValueError("batch_size and max_queue must be at least 1")
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_queue = max_queue
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._queue: collections.deque[Trace] = collections.deque()
        self._cond = threading.Condition()
        self._in_flight = 0
        self._closed = False
        self._exported = 0
        self._dropped = 0
        self._failed = 0
        self._thread: threading.Thread | None = None
        self._stop_retrying = threading.Event()
        self._shutting_down = threading.Event()

    # -- the host side -------------------------------------------------
    def start(
        self,
        linker: wasmtime.Linker,
        wasm_bytes: bytes,
        options: Options | None = None,
        *,
        store: wasmtime.Store | None = None,
    ) -> TraceContext:
        """Link the Observe ABI into ``linker`` and begin a trace for ``wasm_bytes``.

        The shortcut for :func:`observe_sdk.observe` with this adapter as the sink.
        """
        return observe(linker, wasm_bytes, self, options, store=store)

    def on_guest_invoked(self, metadata: dict[str, Any]) -> None:
        """Called on the guest's thread when the host calls the guest through
        :meth:`TraceContext.call` or enters ``with trace_ctx:``; ``metadata`` is
        the current trace's.  Adapters capture the host's current span here
        (see :mod:`observe_sdk.adapters.traceinfo`).  Must be quick and must not raise.
        """

    def on_trace_finished(self, trace: Trace) -> None:
        """Called on the guest's thread as a trace finishes, before it is queued.

        Adapters that need the host's thread-local state (the current
        OpenTelemetry span, for instance) capture it here into
        ``trace.metadata``.  Must be quick and must not raise.
        """

    def submit(self, trace: Trace) -> None:
        """Queue a finished trace for export; never blocks."""
        try:
            self.on_trace_finished(trace)
        except Exception:  # telemetry never breaks the host
            log.exception("%s: on_trace_finished failed", self.name)
        with self._cond:
            if self._closed:
                self._dropped += 1
                log.warning("%s: trace %s submitted after shutdown; dropped", self.name, trace.trace_id_hex)
                return
            if len(self._queue) >= self.max_queue:
                old = self._queue.popleft()
                self._dropped += 1
                if self._dropped == 1 or self._dropped % 100 == 0:
                    log.warning("%s: queue full (%d); dropped trace %s (%d dropped so far)",
                                self.name, self.max_queue, old.trace_id_hex, self._dropped)
            self._queue.append(trace)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"observe-{self.name}", daemon=True)
                self._thread.start()
            if len(self._queue) >= self.batch_size:
                self._cond.notify_all()

    # -- the exporter side ---------------------------------------------
    def export(self, traces: list[Trace]) -> None:
        """Deliver a batch.  Raise :class:`TransientExportError` to have it retried."""
        raise NotImplementedError

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._queue and not self._closed:
                    self._cond.wait(self.flush_interval)
                if not self._queue:
                    if self._closed:
                        return
                    continue
                batch = [self._queue.popleft() for _ in range(min(self.batch_size, len(self._queue)))]
                self._in_flight = len(batch)
            try:
                self._export_with_retries(batch)
            finally:
                with self._cond:
                    self._in_flight = 0
                    self._cond.notify_all()

    def _export_with_retries(self, batch: list[Trace]) -> None:
        """Export ``batch``, retrying transient failures with exponential backoff.

        After ``max_retries`` retries the batch is given up only when holding
        on to it costs newer traces (the queue is full or dropped some since):
        a backend that is down for a while, then back, loses nothing that
        fits in the queue.  Shutdown stops the retrying.
        """
        delay = self.backoff
        attempt = 0
        last_error: TransientExportError | None = None
        with self._cond:
            dropped_before = self._dropped
        while True:
            try:
                self.export(batch)
            except TransientExportError as exc:
                attempt += 1
                last_error = exc
                refused = isinstance(exc, BackendRefused)
                if self._stop_retrying.is_set() or (refused and self._shutting_down.is_set()):
                    break
                if attempt > self.max_retries:
                    with self._cond:
                        pressure = len(self._queue) >= self.max_queue or self._dropped > dropped_before
                    if pressure:
                        break
                    if attempt == self.max_retries + 1:
                        log.warning("%s: export still failing after %d attempt(s) (%s); retrying every "
                                    "%.1fs while the queue has room", self.name, attempt, exc, self.max_backoff)
                else:
                    log.info("%s: export failed (%s); retry %d in %.2fs", self.name, exc, attempt, delay)
                # a refused connection is tried once more as soon as shutdown begins
                if (self._shutting_down if refused else self._stop_retrying).wait(delay):
                    if self._stop_retrying.is_set():
                        break
                delay = min(delay * 2, self.max_backoff)
                continue
            except Exception as exc:
                # one line; the traceback only when debugging (a refusal by the backend is no bug of ours)
                log.error("%s: export failed permanently (%s: %s); %d trace(s) lost", self.name,
                          type(exc).__name__, exc, len(batch), exc_info=log.isEnabledFor(logging.DEBUG))
                with self._cond:
                    self._failed += len(batch)
                return
            with self._cond:
                self._exported += len(batch)
            if attempt > self.max_retries:
                log.warning("%s: export recovered after %d attempt(s)", self.name, attempt + 1)
            return
        log.error("%s: giving up on %d trace(s) after %d attempt(s): %s", self.name, len(batch), attempt, last_error)
        with self._cond:
            self._failed += len(batch)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far is exported; True when it was."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._cond.notify_all()
            while self._queue or self._in_flight:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining if remaining is not None else 0.1)
                self._cond.notify_all()
        return True

    def shutdown(self, timeout: float | None = 30.0) -> ShutdownReport:
        """Flush what can be flushed within ``timeout`` seconds, then stop the thread.

        A backend that refuses connections (:class:`BackendRefused`) is given up at once."""
        self._shutting_down.set()
        flushed = self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if not flushed:
            self._stop_retrying.set()
        if self._thread is not None:
            self._thread.join(1.0 if not flushed else timeout)
        with self._cond:
            pending = len(self._queue) + self._in_flight
            report = ShutdownReport(self._exported, self._dropped, self._failed, pending)
        if pending:
            log.warning("%s: shutdown left %d trace(s) unexported", self.name, pending)
        self.close()
        return report

    def close(self) -> None:
        """Release the adapter's resources (files, sockets) after the last export."""

    @property
    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {"exported": self._exported, "dropped": self._dropped,
                    "failed": self._failed, "queued": len(self._queue) + self._in_flight}
