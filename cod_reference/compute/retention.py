"""Removing what finished executions left on a compute node's disk.

An execution's directory (``executions/<id>``: stdout, stderr, exitCode, the result
paths) and its published archive (``results/<id>.tar.gz``) are kept for a while after it
ends, for ``cod job logs`` and ``cod job get``. :class:`Janitor` removes them once they
are older than the operator's retention age, and the oldest first while all of them
together take more than the retention size (:class:`~.policy.NodePolicy`). The
execution's record stays in the node's store (its state, message and output heads), with
a :class:`~cod_reference.models.Removal` saying when and why its files went: reading its
logs or results then says so (the API's 410 Gone) instead of finding nothing, and the
node tells the orchestrator (``on_removed``: the ``FilesRemoved`` message).
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from ..models import Removal
from .paths import remove_tree, tree_size
from .policy import NodePolicy
from .store import ExecutionStore

log = logging.getLogger(__name__)

__all__ = ["Janitor", "duration_text", "size_text"]


class Janitor:
    def __init__(self, node_dir: Path, store: ExecutionStore, policy: NodePolicy, node_id: str = "",
                 on_removed: Callable[[Removal], None] | None = None) -> None:
        self.executions_dir = node_dir / "executions"
        self.results_dir = node_dir / "results"
        self.store = store
        self.policy = policy
        self.node_id = node_id
        self.on_removed = on_removed
        self.removed = 0   # executions whose files were removed, since the node started

    def paths(self, exec_id: str) -> list[Path]:
        return [self.executions_dir / exec_id, self.results_dir / f"{exec_id}.tar.gz"]

    def sweep(self, now_ns: int | None = None) -> int:
        """Remove what retention says must go; returns how many executions were cleared."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        kept: list[tuple[str, int]] = []
        cleared: Counter[str] = Counter()
        max_age = self.policy.retention_s
        for exec_id, ended_ns in self.store.finished():
            if not any(p.exists() for p in self.paths(exec_id)):
                continue
            if max_age is not None and (now_ns - ended_ns) / 1e9 > max_age:
                if self._remove(exec_id, "age", f"older than {duration_text(max_age)}", now_ns):
                    cleared[f"older than {duration_text(max_age)}"] += 1
            else:
                kept.append((exec_id, sum(tree_size(p) for p in self.paths(exec_id))))
        budget = self.policy.retention_bytes
        if budget is not None:
            total = sum(size for _, size in kept)
            limit = f"past {size_text(budget)} of finished executions"
            for exec_id, size in kept:   # oldest first
                if total <= budget:
                    break
                if self._remove(exec_id, "size", limit, now_ns):
                    cleared[limit] += 1
                total -= size
        count = sum(cleared.values())
        if count:
            log.info("retention removed the files of %d finished execution(s) on %s: %s", count,
                     self.node_id or "this node", ", ".join(f"{n} {why}" for why, n in cleared.items()))
        return count

    def _remove(self, exec_id: str, reason: str, limit: str, now_ns: int) -> bool:
        try:
            for path in self.paths(exec_id):
                remove_tree(path)
        except OSError as exc:
            log.warning("retention cannot remove the files of execution %s: %s", exec_id, exc)
            return False
        removal = Removal(exec_id, self.node_id, reason, limit, now_ns)
        self.store.record_removal(removal)
        self.removed += 1
        if self.on_removed is not None:
            try:
                self.on_removed(removal)
            except Exception:   # the record stays: reading the logs still says what happened
                log.exception("cannot report the removal of the files of execution %s", exec_id)
        return True


def duration_text(seconds: float) -> str:
    """``7d``, ``12h``, ``90m``, ``0.5s``: the largest unit the duration is a whole number of."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def size_text(n: int) -> str:
    """``10 GiB``, ``300 KiB``, ``1.5 MiB``, ``512 bytes``."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            value = n / size
            return f"{value:g} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"
