"""Removing what finished executions left on a compute node's disk.

An execution's directory (``executions/<id>``: stdout, stderr, exitCode, the result
paths) and its published archive (``results/<id>.tar.gz``) are kept for a while after it
ends, for ``cod job logs`` and ``cod job get``. :class:`Janitor` removes them once they
are older than the operator's retention age, and the oldest first while all of them
together take more than the retention size (:class:`~.policy.NodePolicy`). The
execution's record stays in the node's store (its state, message and output heads);
its logs then read as empty and its results are gone.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from .paths import remove_tree, tree_size
from .policy import NodePolicy
from .store import ExecutionStore

log = logging.getLogger(__name__)

__all__ = ["Janitor"]


class Janitor:
    def __init__(self, node_dir: Path, store: ExecutionStore, policy: NodePolicy) -> None:
        self.executions_dir = node_dir / "executions"
        self.results_dir = node_dir / "results"
        self.store = store
        self.policy = policy
        self.removed = 0   # executions whose files were removed, since the node started

    def paths(self, exec_id: str) -> list[Path]:
        return [self.executions_dir / exec_id, self.results_dir / f"{exec_id}.tar.gz"]

    def sweep(self, now_ns: int | None = None) -> int:
        """Remove what retention says must go; returns how many executions were cleared."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        kept: list[tuple[str, int]] = []
        cleared = 0
        max_age = self.policy.retention_s
        for exec_id, ended_ns in self.store.finished():
            if not any(p.exists() for p in self.paths(exec_id)):
                continue
            if max_age is not None and (now_ns - ended_ns) / 1e9 > max_age:
                cleared += self._remove(exec_id)
            else:
                kept.append((exec_id, sum(tree_size(p) for p in self.paths(exec_id))))
        budget = self.policy.retention_bytes
        if budget is not None:
            total = sum(size for _, size in kept)
            for exec_id, size in kept:   # oldest first
                if total <= budget:
                    break
                cleared += self._remove(exec_id)
                total -= size
        if cleared:
            log.info("retention removed the files of %d finished execution(s)", cleared)
        return cleared

    def _remove(self, exec_id: str) -> int:
        try:
            for path in self.paths(exec_id):
                remove_tree(path)
        except OSError as exc:
            log.warning("retention cannot remove the files of execution %s: %s", exec_id, exc)
            return 0
        self.removed += 1
        return 1
