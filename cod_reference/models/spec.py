"""The typed job spec, with Bacalhau's field names: a :class:`Job` holds one :class:`Task`.

These are plain records: :mod:`.parse` builds them from what users submit (validating
every field once), :mod:`.serialize` turns them into the JSON of the API, the stores
and the messages, and back. Fields the orchestrator sets (``ID``, ``State``...) are
empty until the job is stored.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from ..states import JobState
from .units import parse_cpu, parse_size

DEFAULT_NAMESPACE = "default"
DEFAULT_CPU = 0.1             # cores one execution needs when Resources.CPU is not set
DEFAULT_MEMORY = 256 * 10**6  # bytes, when Resources.Memory is not set


class JobType(StrEnum):
    BATCH = "batch"   # Count executions, each to completion
    OPS = "ops"       # one execution on every matching node


class SourceType(StrEnum):
    INLINE = "inline"             # a data URL carried in the spec
    LOCAL = "local"               # a path on the node, if the node allow-lists it
    URL_DOWNLOAD = "urlDownload"  # fetched by the node


class PublisherType(StrEnum):
    LOCAL = "local"
    NOOP = "noop"


class NetworkType(StrEnum):
    NONE = "None"
    DEFAULT = "Default"


CONSTRAINT_OPERATORS = ("=", "==", "!=", "in", "notin", "exists", "!", "gt", "lt")


@dataclass
class Allocation:
    """CPU (cores) and memory (bytes): what an execution needs or a node offers."""

    CPU: float = 0.0
    Memory: float = 0.0

    def fits_in(self, free: Allocation) -> bool:
        return self.CPU <= free.CPU + 1e-9 and self.Memory <= free.Memory + 1e-9

    def __add__(self, other: Allocation) -> Allocation:
        return Allocation(self.CPU + other.CPU, self.Memory + other.Memory)

    def __sub__(self, other: Allocation) -> Allocation:
        return Allocation(self.CPU - other.CPU, self.Memory - other.Memory)


@dataclass
class Constraint:
    Key: str
    Operator: str
    Values: list[str] = field(default_factory=list)

    def matches(self, labels: dict[str, str]) -> bool:
        op, value = self.Operator, labels.get(self.Key)
        if op == "exists":
            return value is not None
        if op == "!":
            return value is None
        if op in ("=", "==", "in"):
            return value is not None and value in self.Values
        if op in ("!=", "notin"):
            return value is None or value not in self.Values
        if value is None:
            return False
        try:
            have, want = float(value), float(self.Values[0])
        except ValueError:
            return False
        return have > want if op == "gt" else have < want


@dataclass
class InputSource:
    """Where one input comes from and where the guest sees it (``Target``)."""

    Type: SourceType
    Target: str
    URL: str = ""            # inline: a data URL; urlDownload: http(s)
    SourcePath: str = ""     # local
    ReadWrite: bool = False  # local
    Alias: str = ""


@dataclass
class ResultPath:
    Name: str
    Path: str


@dataclass
class Resources:
    """As submitted (``500m``, ``64MiB``); :meth:`needs` gives the numbers."""

    CPU: str = ""
    Memory: str = ""
    Disk: str = ""
    GPU: str = ""

    @property
    def cpu(self) -> float:
        return parse_cpu(self.CPU) if self.CPU else 0.0

    @property
    def memory(self) -> int:
        return parse_size(self.Memory) if self.Memory else 0

    def needs(self) -> Allocation:
        """What one execution is charged: the given amounts, else the defaults."""
        return Allocation(self.cpu or DEFAULT_CPU, float(self.memory or DEFAULT_MEMORY))


@dataclass
class Timeouts:
    """Seconds; 0 means none."""

    ExecutionTimeout: float = 0
    QueueTimeout: float = 0
    TotalTimeout: float = 0

    def execution_timeout(self) -> float | None:
        """Seconds the executor may run: ExecutionTimeout, else TotalTimeout, else none."""
        return self.ExecutionTimeout or self.TotalTimeout or None


@dataclass
class WasmEngine:
    EntryModule: str
    Entrypoint: str = "_start"
    Parameters: list[str] = field(default_factory=list)
    ImportModules: list[str] = field(default_factory=list)


@dataclass
class Task:
    Name: str
    Engine: WasmEngine
    InputSources: list[InputSource] = field(default_factory=list)
    ResultPaths: list[ResultPath] = field(default_factory=list)
    Publisher: PublisherType = PublisherType.LOCAL
    Env: dict[str, str] = field(default_factory=dict)
    Resources: Resources = field(default_factory=Resources)
    Timeouts: Timeouts = field(default_factory=Timeouts)
    Network: NetworkType = NetworkType.NONE


@dataclass
class JobStatus:
    StateType: JobState = JobState.PENDING
    Message: str = ""


@dataclass
class Job:
    Name: str
    Type: JobType
    Task: Task
    Namespace: str = DEFAULT_NAMESPACE
    Priority: int = 0
    Count: int = 1
    Constraints: list[Constraint] = field(default_factory=list)
    Labels: dict[str, str] = field(default_factory=dict)
    Meta: dict[str, str] = field(default_factory=dict)
    # set by the orchestrator when it stores the job
    ID: str = ""
    State: JobStatus = field(default_factory=JobStatus)
    Version: int = 0
    CreateTime: int = 0
    ModifyTime: int = 0
    #: the W3C traceparent of the job's ``submit`` span; kept in the job store, never sent
    TraceParent: str = ""

    def needs(self) -> Allocation:
        """The CPU and memory one execution of this job is charged."""
        return self.Task.Resources.needs()

    def local_inputs(self) -> list[str]:
        """Host paths of the job's ``local`` inputs (the nodes that run it must allow-list them)."""
        return [s.SourcePath for s in self.Task.InputSources if s.Type is SourceType.LOCAL]

    @property
    def partitions(self) -> int:
        """How many executions a batch job needs (``BACALHAU_PARTITION_COUNT``)."""
        return max(self.Count, 1) if self.Type is JobType.BATCH else 1
