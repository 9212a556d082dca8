"""The executor buffer: accepted executions wait here until the node has their CPU and
memory free, then each runs on its own thread (Bacalhau's ExecutorBuffer).

At most ``max_running`` run at once whatever their CPU requests (each is a thread).
Higher ``Priority`` jobs are started first; a smaller execution may overtake a larger
one that does not fit yet. Cancelling drops a queued execution or signals a running one.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from ..models import Allocation
from .store import LocalExecution


@dataclass
class Admitted:
    """An execution this node accepted to run: in the queue, then running."""

    local: LocalExecution
    needs: Allocation
    #: the trace context of the message that admitted it
    trace: dict[str, str]
    cancel: threading.Event = field(default_factory=threading.Event)
    #: what must stay open while the guest runs (pinned local inputs); closed when it ends
    keep_open: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    @property
    def ID(self) -> str:
        return self.local.ID


class ExecutorBuffer:
    def __init__(self, capacity: Allocation, max_running: int, run: Callable[[Admitted], None]) -> None:
        self.capacity = capacity
        self.max_running = max_running
        self._run_execution = run
        self._lock = threading.Lock()
        self._queue: list[Admitted] = []
        self._running: dict[str, Admitted] = {}
        self._used = Allocation()
        self._stopped = False
        self._threads: list[threading.Thread] = []

    def enqueue(self, local: LocalExecution, trace: dict[str, str]) -> None:
        admitted = Admitted(local, local.job.needs(), trace)
        with self._lock:
            self._queue.append(admitted)
            self._queue.sort(key=lambda a: -a.local.job.Priority)
        self._start_fitting()

    def cancel(self, exec_id: str) -> None:
        """Drop ``exec_id`` from the queue, or tell it to stop if it runs."""
        with self._lock:
            self._queue = [a for a in self._queue if a.ID != exec_id]
            running = self._running.get(exec_id)
        if running:
            running.cancel.set()

    def usage(self) -> tuple[Allocation, int, int]:
        """Free capacity, queued and running executions."""
        with self._lock:
            return self.capacity - self._used, len(self._queue), len(self._running)

    def stop(self) -> list[threading.Thread]:
        """Start nothing more and signal what runs; returns the threads to wait for."""
        with self._lock:
            self._stopped = True
            for admitted in self._running.values():
                admitted.cancel.set()
            return list(self._threads)

    def _start_fitting(self) -> None:
        with self._lock:
            if self._stopped:
                return
            for admitted in list(self._queue):
                if len(self._running) >= self.max_running:
                    break  # tiny CPU requests must not start unbounded threads
                if not admitted.needs.fits_in(self.capacity - self._used):
                    continue
                self._queue.remove(admitted)
                self._used = self._used + admitted.needs
                self._running[admitted.ID] = admitted
                thread = threading.Thread(target=self._run_then_free, args=(admitted,), daemon=True,
                                          name=f"cod-exec-{admitted.ID[:10]}")
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)
                thread.start()

    def _run_then_free(self, admitted: Admitted) -> None:
        try:
            self._run_execution(admitted)
        finally:
            with self._lock:
                self._running.pop(admitted.ID, None)
                self._used = Allocation(max(0.0, self._used.CPU - admitted.needs.CPU),
                                        max(0.0, self._used.Memory - admitted.needs.Memory))
            self._start_fitting()
