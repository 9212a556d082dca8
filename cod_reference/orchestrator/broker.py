"""The evaluation broker: pending evaluations, delivered to workers when due.

At most one evaluation per job is in flight; when a worker takes a job's evaluation it
also takes every other evaluation of that job that is due, so one scheduler pass covers
them all. The broker lives in memory: the job store is the durable copy, and a new
orchestrator refills the broker from the store's pending evaluations.
"""
from __future__ import annotations

import heapq
import itertools
import threading
import time

from ..models import Evaluation


class EvaluationBroker:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[int, int, Evaluation]] = []
        self._seq = itertools.count()
        self._inflight: set[str] = set()
        self._closed = False

    def enqueue(self, evaluation: Evaluation) -> None:
        with self._cond:
            heapq.heappush(self._heap, (evaluation.WaitUntil, next(self._seq), evaluation))
            self._cond.notify_all()

    def has_due(self, job_id: str) -> bool:
        """Whether an evaluation of ``job_id`` is due and waiting (a worker will take it soon)."""
        now = time.time_ns()
        with self._cond:
            return any(ev.JobID == job_id and wait_until <= now for wait_until, _, ev in self._heap)

    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def dequeue(self, timeout: float) -> list[Evaluation] | None:
        """All due evaluations of one job not in flight, or None after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._closed:
                now = time.time_ns()
                next_due: int | None = None
                for wait_until, _, ev in sorted(self._heap):
                    if ev.JobID in self._inflight:
                        continue
                    if wait_until > now:
                        next_due = wait_until if next_due is None else min(next_due, wait_until)
                        continue
                    job_id = ev.JobID
                    taken = [item for item in self._heap if item[2].JobID == job_id and item[0] <= now]
                    for item in taken:
                        self._heap.remove(item)
                    heapq.heapify(self._heap)
                    self._inflight.add(job_id)
                    return [item[2] for item in taken]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                if next_due is not None:
                    remaining = min(remaining, max(0.001, (next_due - now) / 1e9))
                self._cond.wait(remaining)
            return None

    def done(self, job_id: str) -> None:
        with self._cond:
            self._inflight.discard(job_id)
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
