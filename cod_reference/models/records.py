"""What the network keeps about running work: executions, evaluations and nodes.

Like :mod:`.spec` these are plain records with Bacalhau's field names; :mod:`.serialize`
writes them as the JSON of the API, the stores and the messages.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .. import states
from ..errors import CodError
from .spec import Allocation

#: A finished execution's output heads, as the compute node reports them (``Stdout``,
#: ``stderr``, ``ExitCode``, ``ErrorMsg``...: Bacalhau's RunCommandResult names).
RunOutput = dict[str, Any]
#: Where a publisher put the results (``{"Type": "urlDownload", "Params": {"URL": ...}}``).
PublishedResult = dict[str, Any]

CONNECTED = "CONNECTED"
DISCONNECTED = "DISCONNECTED"
APPROVED = "APPROVED"


@dataclass
class Removal:
    """What a compute node's retention did to a finished execution: it removed its files (stdout,
    stderr, outputs, the published result archive). The node keeps this with the execution and
    tells the orchestrator (the ``FilesRemoved`` message), so reading them says so instead of
    finding nothing."""

    ExecutionID: str
    NodeID: str
    #: ``age`` (older than the retention age) or ``size`` (the oldest, past the retention size)
    Reason: str
    #: the limit it passed, as a user reads it: ``older than 7d``, ``past 10 GiB of finished executions``
    Limit: str
    #: when, in ns since the epoch
    Time: int = 0

    def describe(self, what: str) -> str:
        """One line: ``the logs of execution e-... were removed by node node-2's retention (older than 7d) at ...``."""
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.Time / 1e9))
        return f"the {what} of execution {self.ExecutionID} were removed by node {self.NodeID}'s retention " \
               f"({self.Limit}) at {at}"


class Removed(CodError):
    """The logs or results asked for were removed by the node's retention (the API's 410 Gone)."""

    def __init__(self, removal: Removal, what: str) -> None:
        super().__init__(removal.describe(what))
        self.removal = removal
        self.what = what


@dataclass
class ExecutionStatus:
    StateType: states.ComputeState = states.ComputeState.NEW
    Message: str = ""


@dataclass
class Execution:
    """One attempt to run one partition of a job on one node."""

    ID: str
    JobID: str
    NodeID: str
    PartitionIndex: int = 0
    ComputeState: ExecutionStatus = field(default_factory=ExecutionStatus)
    DesiredState: states.DesiredState = states.DesiredState.PENDING
    RunOutput: RunOutput | None = None
    PublishedResult: PublishedResult | None = None
    AllocatedResources: Allocation = field(default_factory=Allocation)
    Retryable: bool = False
    Revision: int = 0
    CreateTime: int = 0
    ModifyTime: int = 0
    #: set once the node's retention removed the execution's files (its logs and results)
    FilesRemoved: Removal | None = None

    @property
    def state(self) -> states.ComputeState:
        return self.ComputeState.StateType

    @property
    def message(self) -> str:
        return self.ComputeState.Message


@dataclass
class RunResult:
    """A compute node's report of an execution that completed (the ``RunResult`` message)."""

    ExecutionID: str
    RunOutput: RunOutput
    PublishedResult: PublishedResult = field(default_factory=dict)


@dataclass
class ComputeError:
    """A compute node's report of an execution that failed (the ``ComputeError`` message).
    ``Retryable``: another node may succeed (an input it could not fetch, a node problem)."""

    ExecutionID: str
    Error: str
    Retryable: bool = True
    RunOutput: RunOutput | None = None


@dataclass
class Evaluation:
    """A reason to run the scheduler over a job, due at ``WaitUntil`` (ns)."""

    ID: str
    JobID: str
    TriggeredBy: str
    Status: str = "pending"
    WaitUntil: int = 0
    TraceParent: str = ""
    CreateTime: int = 0


@dataclass
class NodeInfo:
    """What a node announces in its heartbeats."""

    NodeID: str
    NodeType: str = "Compute"
    Labels: dict[str, str] = field(default_factory=dict)
    Engines: list[str] = field(default_factory=list)
    Publishers: list[str] = field(default_factory=list)
    StorageSources: list[str] = field(default_factory=list)
    LocalPaths: list[str] = field(default_factory=list)
    MaxCapacity: Allocation | None = None
    AvailableCapacity: Allocation | None = None
    RunningExecutions: int = 0
    EnqueuedExecutions: int = 0
    #: where the node's own API serves its results and logs ("" for a node in the orchestrator's process)
    APIURL: str = ""


@dataclass
class NodeState:
    """A node as the orchestrator's node manager knows it."""

    Info: NodeInfo
    Membership: str = APPROVED
    Connection: str = CONNECTED
    LastHeartbeat: int = 0
