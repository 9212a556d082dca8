"""The compute node's execution store (SQLite): what it was asked to run and how it went.

It takes and returns :class:`LocalExecution` records; the job and the execution are kept
as their wire JSON (:mod:`cod_reference.models.serialize`). What retention removed of a
finished execution is a side table (``removals``): a store made before it gets it when
opened, and an older node can still open a newer store.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..models import (
    ComputeError,
    Execution,
    Job,
    Removal,
    RunResult,
    execution_from_dict,
    execution_to_dict,
    job_from_dict,
    job_to_dict,
    report_from_dict,
    report_to_dict,
)
from ..sqlite import open_db
from ..states import ComputeState, check_execution_transition

SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY, job TEXT NOT NULL, execution TEXT NOT NULL, state TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '', result TEXT, trace TEXT NOT NULL DEFAULT '{}',
    create_ns INTEGER NOT NULL, modify_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS removals (
    id TEXT PRIMARY KEY, node_id TEXT NOT NULL, reason TEXT NOT NULL, bound TEXT NOT NULL,
    removed_ns INTEGER NOT NULL
);
"""


#: what the node reported when an execution ended
Report = RunResult | ComputeError


@dataclass
class LocalExecution:
    """One execution as this node keeps it (Bacalhau's LocalExecutionState)."""

    execution: Execution
    job: Job
    state: ComputeState = ComputeState.NEW
    message: str = ""
    result: Report | None = None
    #: the W3C trace context of the message that brought it (its spans join the job's trace)
    trace: dict[str, str] = field(default_factory=dict)
    create_time: int = 0

    @property
    def ID(self) -> str:
        return self.execution.ID


class ExecutionStore:
    def __init__(self, path: str | Path) -> None:
        self._db = open_db(path, SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(self, execution: Execution, job: Job, trace: dict[str, str]) -> bool:
        """Record a new execution; False if it is already known (a repeated message)."""
        now = time.time_ns()
        with self._lock:
            try:
                self._db.execute("INSERT INTO executions VALUES (?,?,?,?,?,?,?,?,?)",
                                 (execution.ID, json.dumps(job_to_dict(job)), json.dumps(execution_to_dict(execution)),
                                  ComputeState.NEW.value, "", None, json.dumps(trace), now, now))
            except sqlite3.IntegrityError:
                return False
        return True

    def get(self, exec_id: str) -> LocalExecution | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM executions WHERE id=?", (exec_id,)).fetchone()
        return _row(row) if row else None

    def set_state(self, exec_id: str, state: ComputeState, message: str = "",
                  result: Report | None = None) -> bool:
        """Move an execution on; False (and no change) when it is already terminal."""
        with self._lock:
            row = self._db.execute("SELECT state FROM executions WHERE id=?", (exec_id,)).fetchone()
            if row is None:
                return False
            current = ComputeState(row["state"])
            if current.terminal:
                return False
            check_execution_transition(current, state)
            stored = json.dumps(report_to_dict(result)) if result else None
            self._db.execute("UPDATE executions SET state=?, message=?, result=COALESCE(?, result), modify_ns=? "
                             "WHERE id=?", (state.value, message, stored, time.time_ns(), exec_id))
        return True

    def finished(self) -> list[tuple[str, int]]:
        """``(execution ID, when it ended in ns)`` of the terminal executions whose files retention
        has not removed, oldest first."""
        terminal = tuple(s.value for s in ComputeState if s.terminal)
        marks = ",".join("?" for _ in terminal)
        with self._lock:
            rows = self._db.execute(f"SELECT id, modify_ns FROM executions WHERE state IN ({marks}) "
                                    "AND id NOT IN (SELECT id FROM removals) ORDER BY modify_ns", terminal).fetchall()
        return [(r["id"], r["modify_ns"]) for r in rows]

    def record_removal(self, removal: Removal) -> None:
        """Keep that retention removed an execution's files (the first record stays)."""
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO removals VALUES (?,?,?,?,?)",
                             (removal.ExecutionID, removal.NodeID, removal.Reason, removal.Limit, removal.Time))

    def removal(self, exec_id: str) -> Removal | None:
        """What retention removed of ``exec_id``, None while its files are kept."""
        with self._lock:
            row = self._db.execute("SELECT * FROM removals WHERE id=?", (exec_id,)).fetchone()
        return Removal(row["id"], row["node_id"], row["reason"], row["bound"], row["removed_ns"]) if row else None

    def live(self) -> list[LocalExecution]:
        terminal = tuple(s.value for s in ComputeState if s.terminal)
        marks = ",".join("?" for _ in terminal)
        with self._lock:
            rows = self._db.execute(f"SELECT * FROM executions WHERE state NOT IN ({marks})", terminal).fetchall()
        return [_row(r) for r in rows]


def _row(row: sqlite3.Row) -> LocalExecution:
    result = report_from_dict(json.loads(row["result"])) if row["result"] else None
    return LocalExecution(execution=execution_from_dict(json.loads(row["execution"])),
                          job=job_from_dict(json.loads(row["job"])), state=ComputeState(row["state"]),
                          message=row["message"], result=result, trace=json.loads(row["trace"]),
                          create_time=row["create_ns"])
