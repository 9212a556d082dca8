"""The job and execution state machines, in one place.

Every state change of a job or an execution goes through :func:`check_job_transition`
or :func:`check_execution_transition`, so an illegal move (e.g. a Completed job becoming
Running again, or a terminal execution changing) is refused wherever it is attempted.

States are serialized as their names (strings). Bacalhau serializes execution states as
integers; names are easier to read in JSON and in the SQLite stores, and the order of
the enum members is Bacalhau's.
"""
from __future__ import annotations

from enum import Enum

from .errors import CodError


class JobState(str, Enum):
    PENDING = "Pending"
    QUEUED = "Queued"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPED = "Stopped"

    @property
    def terminal(self) -> bool:
        return self in _JOB_TERMINAL


class ComputeState(str, Enum):
    """Where an execution is, as the compute node reports it."""

    NEW = "New"
    ASK_FOR_BID = "AskForBid"
    ASK_FOR_BID_ACCEPTED = "AskForBidAccepted"
    ASK_FOR_BID_REJECTED = "AskForBidRejected"
    BID_ACCEPTED = "BidAccepted"
    RUNNING = "Running"
    PUBLISHING = "Publishing"
    BID_REJECTED = "BidRejected"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"

    @property
    def terminal(self) -> bool:
        return self in _EXEC_TERMINAL

    @property
    def discarded(self) -> bool:
        """Terminal without a result: rejected, failed or cancelled."""
        return self in _EXEC_TERMINAL and self is not ComputeState.COMPLETED

    @property
    def executing(self) -> bool:
        return self in (ComputeState.BID_ACCEPTED, ComputeState.RUNNING, ComputeState.PUBLISHING)


class DesiredState(str, Enum):
    """What the orchestrator wants an execution to do."""

    PENDING = "Pending"
    RUNNING = "Running"
    STOPPED = "Stopped"


_JOB_TERMINAL = {JobState.COMPLETED, JobState.FAILED, JobState.STOPPED}
_EXEC_TERMINAL = {
    ComputeState.ASK_FOR_BID_REJECTED,
    ComputeState.BID_REJECTED,
    ComputeState.COMPLETED,
    ComputeState.FAILED,
    ComputeState.CANCELLED,
}

_JOB_TRANSITIONS: dict[JobState, set[JobState]] = {
    JobState.PENDING: {JobState.QUEUED, JobState.RUNNING, JobState.COMPLETED, JobState.FAILED, JobState.STOPPED},
    JobState.QUEUED: {JobState.PENDING, JobState.RUNNING, JobState.FAILED, JobState.STOPPED},
    JobState.RUNNING: {JobState.QUEUED, JobState.COMPLETED, JobState.FAILED, JobState.STOPPED},
    JobState.COMPLETED: set(),
    JobState.FAILED: set(),
    JobState.STOPPED: set(),
}

_CS = ComputeState
_EXEC_TRANSITIONS: dict[ComputeState, set[ComputeState]] = {
    _CS.NEW: {_CS.ASK_FOR_BID, _CS.ASK_FOR_BID_ACCEPTED, _CS.ASK_FOR_BID_REJECTED, _CS.BID_ACCEPTED,
              _CS.BID_REJECTED, _CS.FAILED, _CS.CANCELLED},
    _CS.ASK_FOR_BID: {_CS.ASK_FOR_BID_ACCEPTED, _CS.ASK_FOR_BID_REJECTED, _CS.BID_ACCEPTED,
                      _CS.BID_REJECTED, _CS.FAILED, _CS.CANCELLED},
    _CS.ASK_FOR_BID_ACCEPTED: {_CS.BID_ACCEPTED, _CS.BID_REJECTED, _CS.FAILED, _CS.CANCELLED},
    _CS.BID_ACCEPTED: {_CS.RUNNING, _CS.FAILED, _CS.CANCELLED, _CS.COMPLETED},
    _CS.RUNNING: {_CS.PUBLISHING, _CS.COMPLETED, _CS.FAILED, _CS.CANCELLED},
    _CS.PUBLISHING: {_CS.COMPLETED, _CS.FAILED, _CS.CANCELLED},
}


class TransitionError(CodError, ValueError):
    """An attempt to move a job or an execution to a state it cannot reach."""


def can_move_job(current: JobState, new: JobState) -> bool:
    return current == new or new in _JOB_TRANSITIONS[current]


def check_job_transition(current: JobState, new: JobState) -> None:
    if not can_move_job(current, new):
        raise TransitionError(f"job cannot move from {current.value} to {new.value}")


def can_move_execution(current: ComputeState, new: ComputeState) -> bool:
    if current == new:
        return not current.terminal
    return new in _EXEC_TRANSITIONS.get(current, set())


def check_execution_transition(current: ComputeState, new: ComputeState) -> None:
    if not can_move_execution(current, new):
        raise TransitionError(f"execution cannot move from {current.value} to {new.value}")
