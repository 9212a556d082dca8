"""The orchestrator's job store: jobs, executions, evaluations and history in SQLite.

Every write that belongs together (a job, its first evaluation and its history event; an
execution update and the evaluation it triggers) happens in one transaction, so a
restarted orchestrator finds a consistent state and re-queues whatever evaluations were
still pending. State changes are checked against :mod:`cod_reference.states`. It takes
and returns the typed records of :mod:`cod_reference.models`; their JSON lives only here.
What a node's retention removed of an execution is a side table (``removals``), so a store
made before it opens as it was (the table is added) and an older orchestrator can still open it.
"""
from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import CodError
from ..models import (
    Allocation,
    Evaluation,
    Execution,
    ExecutionStatus,
    Job,
    JobStatus,
    NodeState,
    PublishedResult,
    Removal,
    RunOutput,
    allocation_from_dict,
    allocation_to_dict,
    job_from_dict,
    node_state_from_dict,
    node_state_to_dict,
    removal_from_dict,
    removal_to_dict,
    spec_to_dict,
)
from ..sqlite import open_db
from ..states import ComputeState, DesiredState, JobState, check_execution_transition, check_job_transition

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, namespace TEXT NOT NULL, type TEXT NOT NULL,
    state TEXT NOT NULL, message TEXT NOT NULL DEFAULT '', version INTEGER NOT NULL DEFAULT 1,
    spec TEXT NOT NULL, trace_parent TEXT NOT NULL DEFAULT '',
    create_ns INTEGER NOT NULL, modify_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_name ON jobs(namespace, name);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY, job_id TEXT NOT NULL, node_id TEXT NOT NULL, partition INTEGER NOT NULL,
    compute_state TEXT NOT NULL, desired_state TEXT NOT NULL, message TEXT NOT NULL DEFAULT '',
    run_output TEXT, published TEXT, allocated TEXT NOT NULL DEFAULT '{}', retryable INTEGER NOT NULL DEFAULT 1,
    revision INTEGER NOT NULL DEFAULT 1, create_ns INTEGER NOT NULL, modify_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS executions_job ON executions(job_id);
CREATE INDEX IF NOT EXISTS executions_node ON executions(node_id, compute_state);
CREATE TABLE IF NOT EXISTS evaluations (
    id TEXT PRIMARY KEY, job_id TEXT NOT NULL, triggered_by TEXT NOT NULL, status TEXT NOT NULL,
    wait_until_ns INTEGER NOT NULL DEFAULT 0, trace_parent TEXT NOT NULL DEFAULT '',
    create_ns INTEGER NOT NULL, modify_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS evaluations_status ON evaluations(status);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, execution_id TEXT NOT NULL DEFAULT '',
    type TEXT NOT NULL, topic TEXT NOT NULL, message TEXT NOT NULL, details TEXT NOT NULL DEFAULT '{}',
    time_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS history_job ON history(job_id, seq);
CREATE TABLE IF NOT EXISTS nodes (id TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS submissions (key TEXT PRIMARY KEY, job_id TEXT NOT NULL, eval_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS removals (execution_id TEXT PRIMARY KEY, removal TEXT NOT NULL);
"""

#: an execution's row, with what retention removed of it (``removal``: NULL while its files are kept)
_EXECUTIONS = "SELECT e.*, r.removal FROM executions e LEFT JOIN removals r ON r.execution_id = e.id"

_FULL_ID = re.compile(r"^j-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class NotFound(CodError, LookupError):
    pass


class Ambiguous(CodError, LookupError):
    pass


#: the states of a job that is not finished (what the unfinished-jobs cap counts)
UNFINISHED = (JobState.PENDING, JobState.QUEUED, JobState.RUNNING)


class TooManyUnfinishedJobs(CodError):
    """A new job refused: as many jobs as the operator allows are not finished yet."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the network already has {limit} unfinished jobs (Pending, Queued or Running), the most "
                         f"its operator allows (--max-unfinished-jobs {limit}): submit again when some have finished")
        self.limit = limit


def new_job_id() -> str:
    return f"j-{uuid.uuid4()}"


def new_execution_id() -> str:
    return f"e-{uuid.uuid4()}"


def new_evaluation_id() -> str:
    return f"ev-{uuid.uuid4()}"


#: one event of a job's history, as the API serves it
HistoryEvent = dict[str, Any]


class JobStore:
    def __init__(self, path: str | Path) -> None:
        self._db = open_db(path, SCHEMA)
        self._lock = threading.RLock()
        self._depth = 0
        #: called with each new evaluation (the orchestrator hands it to the broker)
        self.on_evaluation: Callable[[Evaluation], None] | None = None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def tx(self) -> Iterator[None]:
        """A transaction; nested uses join the outer one."""
        with self._lock:
            if self._depth == 0:
                self._db.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self._db.execute("ROLLBACK")
                raise
            self._depth -= 1
            if self._depth == 0:
                self._db.execute("COMMIT")

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _write(self, sql: str, args: tuple[Any, ...] = ()) -> None:
        with self._lock:
            self._db.execute(sql, args)

    # ------------------------------------------------------------------ jobs

    def create_job(self, spec: Job, trace_parent: str, idempotency_key: str = "",
                   max_unfinished: int = 0) -> tuple[Job, str]:
        """Store a new job (Pending), its history event and a job-register evaluation; a submission
        repeating an ``idempotency_key`` gets the job its first one created (whatever the spec).
        With ``max_unfinished`` (0: no cap) a new job is refused (:class:`TooManyUnfinishedJobs`)
        while that many are not finished; the count and the insert are one transaction."""
        now = time.time_ns()
        job_id = new_job_id()
        doc = spec_to_dict(replace(spec, Name=spec.Name or job_id))
        with self.tx():
            if idempotency_key:
                seen = self._query("SELECT job_id, eval_id FROM submissions WHERE key=?", (idempotency_key,))
                if seen:
                    return self.get_job(seen[0]["job_id"]), seen[0]["eval_id"]
            if max_unfinished and self.count_unfinished(max_unfinished) >= max_unfinished:
                raise TooManyUnfinishedJobs(max_unfinished)
            self._write("INSERT INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                        (job_id, doc["Name"], doc["Namespace"], doc["Type"], JobState.PENDING.value, "", 1,
                         json.dumps(doc), trace_parent, now, now))
            self.add_history(job_id, "", "JobLevel", "Submission", "Job submitted",
                             {"NewState": JobState.PENDING.value})
            eval_id = self.create_evaluation(job_id, "job-register", trace_parent)
            if idempotency_key:
                self._write("INSERT INTO submissions VALUES (?,?,?)", (idempotency_key, job_id, eval_id))
        return self.get_job(job_id), eval_id

    def get_job(self, job_id: str) -> Job:
        rows = self._query("SELECT * FROM jobs WHERE id=?", (job_id,))
        if not rows:
            raise NotFound(f"job {job_id} not found")
        return _job(rows[0])

    def find_job(self, ref: str) -> Job:
        """A job by full ID, name (the latest job of that name) or unique ID prefix
        (with or without ``j-``)."""
        ref = ref.strip()
        if not ref:
            raise NotFound("empty job id")
        if _FULL_ID.match(ref):
            return self.get_job(ref)
        by_name = self._query("SELECT * FROM jobs WHERE name=? ORDER BY create_ns DESC LIMIT 1", (ref,))
        if by_name:
            return _job(by_name[0])
        prefix = ref if ref.startswith("j-") else f"j-{ref}"
        rows = self._query("SELECT * FROM jobs WHERE id LIKE ? ESCAPE '\\' LIMIT 3", (_like_prefix(prefix),))
        if len(rows) == 1:
            return _job(rows[0])
        if len(rows) > 1:
            raise Ambiguous(f"{ref!r} matches several jobs; give more of the ID")
        raise NotFound(f"job {ref} not found")

    def list_jobs(self, limit: int = 100, offset: int = 0, labels: dict[str, str] | None = None,
                  reverse: bool = True) -> list[Job]:
        order = "DESC" if reverse else "ASC"
        if not labels:  # one page from SQLite, not every job decoded
            rows = self._query(f"SELECT * FROM jobs ORDER BY create_ns {order}, rowid {order} LIMIT ? OFFSET ?",
                               (limit, offset))
            return [_job(r) for r in rows]
        jobs = [_job(r) for r in self._query(f"SELECT * FROM jobs ORDER BY create_ns {order}, rowid {order}")]
        jobs = [j for j in jobs if all(j.Labels.get(k) == v for k, v in labels.items())]
        return jobs[offset:offset + limit]

    def count_unfinished(self, at_most: int = 0) -> int:
        """Jobs Pending, Queued or Running, from the index on state; with ``at_most`` the count
        stops there (a check against a cap reads no more of the index than the cap)."""
        marks = ",".join("?" for _ in UNFINISHED)
        states = tuple(s.value for s in UNFINISHED)
        if at_most:
            sql = f"SELECT COUNT(*) FROM (SELECT 1 FROM jobs WHERE state IN ({marks}) LIMIT ?)"
            return int(self._query(sql, (*states, at_most))[0][0])
        return int(self._query(f"SELECT COUNT(*) FROM jobs WHERE state IN ({marks})", states)[0][0])

    def job_ids_in_states(self, states: tuple[JobState, ...]) -> list[str]:
        """IDs of the jobs in ``states``, from the index on state (no spec read or decoded)."""
        marks = ",".join("?" for _ in states)
        return [r[0] for r in self._query(f"SELECT id FROM jobs WHERE state IN ({marks})",
                                          tuple(s.value for s in states))]

    def job_refs_in_states(self, states: tuple[JobState, ...]) -> list[tuple[str, str]]:
        """(ID, TraceParent) of the jobs in ``states``: what an evaluation of each needs, without
        decoding their specs (a job's spec may hold a whole module)."""
        marks = ",".join("?" for _ in states)
        return [(r[0], r[1]) for r in self._query(f"SELECT id, trace_parent FROM jobs WHERE state IN ({marks})",
                                                  tuple(s.value for s in states))]

    def jobs_in_states(self, states: tuple[JobState, ...]) -> list[Job]:
        marks = ",".join("?" for _ in states)
        return [_job(r) for r in self._query(f"SELECT * FROM jobs WHERE state IN ({marks})",
                                             tuple(s.value for s in states))]

    def set_job_state(self, job_id: str, state: JobState, message: str = "") -> bool:
        """Move a job to ``state``; returns False when it already was there."""
        with self.tx():
            job = self.get_job(job_id)
            current = job.State.StateType
            if current == state and job.State.Message == message:
                return False
            check_job_transition(current, state)
            self._write("UPDATE jobs SET state=?, message=?, modify_ns=? WHERE id=?",
                        (state.value, message, time.time_ns(), job_id))
            if current != state:
                self.add_history(job_id, "", "JobLevel", "JobStateUpdate",
                                 message or f"Job {state.value.lower()}",
                                 {"PreviousState": current.value, "NewState": state.value})
            return True

    # ------------------------------------------------------------------ executions

    def create_execution(self, job_id: str, node_id: str, partition: int, desired: DesiredState,
                         allocated: Allocation) -> Execution:
        now = time.time_ns()
        exec_id = new_execution_id()
        with self.tx():
            self._write("INSERT INTO executions (id, job_id, node_id, partition, compute_state, desired_state, "
                        "allocated, create_ns, modify_ns) VALUES (?,?,?,?,?,?,?,?,?)",
                        (exec_id, job_id, node_id, partition, ComputeState.NEW.value, desired.value,
                         json.dumps(allocation_to_dict(allocated)), now, now))
            self.add_history(job_id, exec_id, "ExecutionLevel", "Scheduling",
                             f"Execution created on {node_id} for partition {partition}",
                             {"NodeID": node_id, "NewState": ComputeState.NEW.value})
        return self.get_execution(exec_id)

    def get_execution(self, exec_id: str) -> Execution:
        rows = self._query(f"{_EXECUTIONS} WHERE e.id=?", (exec_id,))
        if not rows:
            raise NotFound(f"execution {exec_id} not found")
        return _execution(rows[0])

    def executions(self, job_id: str) -> list[Execution]:
        return [_execution(r) for r in self._query(
            f"{_EXECUTIONS} WHERE e.job_id=? ORDER BY e.create_ns, e.rowid", (job_id,))]

    def active_executions(self) -> list[Execution]:
        """Executions holding (or about to hold) resources on a node."""
        terminal = tuple(s.value for s in ComputeState if s.terminal)
        marks = ",".join("?" for _ in terminal)
        return [_execution(r) for r in self._query(
            f"{_EXECUTIONS} WHERE e.compute_state NOT IN ({marks})", terminal)]

    def update_execution(self, exec_id: str, *, compute: ComputeState | None = None,
                         desired: DesiredState | None = None, message: str | None = None,
                         run_output: RunOutput | None = None, published: PublishedResult | None = None,
                         retryable: bool | None = None) -> Execution | None:
        """Apply a change; returns the updated execution, or None if it was refused
        (e.g. a late message about an execution that is already terminal)."""
        with self.tx():
            ex = self.get_execution(exec_id)
            current = ex.state
            sets: list[str] = []
            args: list[Any] = []
            if compute is not None and compute != current:
                if current.terminal:
                    return None
                check_execution_transition(current, compute)
                sets.append("compute_state=?")
                args.append(compute.value)
            if desired is not None and desired != ex.DesiredState:
                sets.append("desired_state=?")
                args.append(desired.value)
            if message is not None:
                sets.append("message=?")
                args.append(message)
            for col, value in (("run_output", run_output), ("published", published)):
                if value is not None:
                    sets.append(f"{col}=?")
                    args.append(json.dumps(value))
            if retryable is not None:
                sets.append("retryable=?")
                args.append(int(retryable))
            if not sets:
                return ex
            sets += ["revision=revision+1", "modify_ns=?"]
            args += [time.time_ns(), exec_id]
            self._write(f"UPDATE executions SET {', '.join(sets)} WHERE id=?", tuple(args))
            if compute is not None and compute != current:
                self.add_history(ex.JobID, exec_id, "ExecutionLevel", "ExecutionStateUpdate",
                                 message or f"Execution {compute.value}",
                                 {"PreviousState": current.value, "NewState": compute.value, "NodeID": ex.NodeID})
            return self.get_execution(exec_id)

    def record_removal(self, removal: Removal) -> bool:
        """Keep that the node's retention removed an execution's files, with a history event;
        False when it was known already (a repeated message) or the execution is not here."""
        with self.tx():
            rows = self._query("SELECT job_id FROM executions WHERE id=?", (removal.ExecutionID,))
            if not rows or self._query("SELECT 1 FROM removals WHERE execution_id=?", (removal.ExecutionID,)):
                return False
            self._write("INSERT INTO removals VALUES (?,?)",
                        (removal.ExecutionID, json.dumps(removal_to_dict(removal))))
            self.add_history(rows[0]["job_id"], removal.ExecutionID, "ExecutionLevel", "Retention",
                             f"Logs and results removed by node {removal.NodeID}'s retention ({removal.Limit})",
                             {"NodeID": removal.NodeID, "Reason": removal.Reason})
        return True

    # ------------------------------------------------------------------ evaluations

    def create_evaluation(self, job_id: str, triggered_by: str, trace_parent: str = "",
                          delay_s: float = 0.0) -> str:
        now = time.time_ns()
        eval_id = new_evaluation_id()
        self._write("INSERT INTO evaluations VALUES (?,?,?,?,?,?,?,?)",
                    (eval_id, job_id, triggered_by, "pending", now + int(delay_s * 1e9), trace_parent, now, now))
        if self.on_evaluation is not None:
            self.on_evaluation(self.get_evaluation(eval_id))
        return eval_id

    def get_evaluation(self, eval_id: str) -> Evaluation:
        rows = self._query("SELECT * FROM evaluations WHERE id=?", (eval_id,))
        if not rows:
            raise NotFound(f"evaluation {eval_id} not found")
        return _evaluation(rows[0])

    def pending_evaluations(self) -> list[Evaluation]:
        return [_evaluation(r) for r in self._query(
            "SELECT * FROM evaluations WHERE status='pending' ORDER BY create_ns, rowid")]

    def set_evaluation_status(self, eval_id: str, status: str) -> None:
        self._write("UPDATE evaluations SET status=?, modify_ns=? WHERE id=?", (status, time.time_ns(), eval_id))

    # ------------------------------------------------------------------ nodes

    def save_node(self, state: NodeState) -> None:
        self._write("INSERT OR REPLACE INTO nodes VALUES (?,?)",
                    (state.Info.NodeID, json.dumps(node_state_to_dict(state))))

    def load_nodes(self) -> list[NodeState]:
        rows = self._query("SELECT state FROM nodes ORDER BY id")
        return [node_state_from_dict(json.loads(r["state"])) for r in rows]

    # ------------------------------------------------------------------ history

    def add_history(self, job_id: str, exec_id: str, type_: str, topic: str, message: str,
                    details: dict[str, Any] | None = None) -> None:
        self._write("INSERT INTO history (job_id, execution_id, type, topic, message, details, time_ns) "
                    "VALUES (?,?,?,?,?,?,?)",
                    (job_id, exec_id, type_, topic, message, json.dumps(details or {}), time.time_ns()))

    def history(self, job_id: str, since_seq: int = 0, event_type: str = "all",
                execution_id: str = "") -> list[HistoryEvent]:
        sql = "SELECT * FROM history WHERE job_id=? AND seq>?"
        args: list[Any] = [job_id, since_seq]
        if event_type == "job":
            sql += " AND type='JobLevel'"
        elif event_type == "execution":
            sql += " AND type='ExecutionLevel'"
        if execution_id:
            sql += " AND execution_id LIKE ? ESCAPE '\\'"
            args.append(_like_prefix(execution_id))
        return [{"SeqNum": r["seq"], "Type": r["type"], "JobID": r["job_id"], "ExecutionID": r["execution_id"],
                 "Time": _iso(r["time_ns"]), "Event": {"Topic": r["topic"], "Message": r["message"],
                                                       "Details": json.loads(r["details"])}}
                for r in self._query(sql + " ORDER BY seq", tuple(args))]


def _like_prefix(text: str) -> str:
    """A LIKE pattern (with ESCAPE '\\') matching what starts with ``text``, taken literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _iso(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns / 1e9)) + f".{ns % 10**9 // 10**6:03d}Z"


def _job(row: sqlite3.Row) -> Job:
    job = job_from_dict(json.loads(row["spec"]))
    job.ID, job.Version, job.TraceParent = row["id"], row["version"], row["trace_parent"]
    job.State = JobStatus(JobState(row["state"]), row["message"])
    job.CreateTime, job.ModifyTime = row["create_ns"], row["modify_ns"]
    return job


def _execution(row: sqlite3.Row) -> Execution:
    return Execution(
        ID=row["id"], JobID=row["job_id"], NodeID=row["node_id"], PartitionIndex=row["partition"],
        ComputeState=ExecutionStatus(ComputeState(row["compute_state"]), row["message"]),
        DesiredState=DesiredState(row["desired_state"]),
        RunOutput=json.loads(row["run_output"]) if row["run_output"] else None,
        PublishedResult=json.loads(row["published"]) if row["published"] else None,
        AllocatedResources=allocation_from_dict(json.loads(row["allocated"])),
        Retryable=bool(row["retryable"]), Revision=row["revision"], CreateTime=row["create_ns"],
        ModifyTime=row["modify_ns"],
        FilesRemoved=removal_from_dict(json.loads(row["removal"])) if row["removal"] else None)


def _evaluation(row: sqlite3.Row) -> Evaluation:
    return Evaluation(ID=row["id"], JobID=row["job_id"], TriggeredBy=row["triggered_by"], Status=row["status"],
                      WaitUntil=row["wait_until_ns"], TraceParent=row["trace_parent"], CreateTime=row["create_ns"])
