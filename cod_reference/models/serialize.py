"""The records of :mod:`.spec` and :mod:`.records` as JSON-ready dicts, and back.

This is the only place that knows the wire form (Bacalhau's PascalCase documents): the
API answers with it, the stores keep it, the messages carry it. ``*_from_dict`` trust
their input (it was written by ``*_to_dict``); what users send goes through
:func:`cod_reference.models.parse.parse_job` instead.
"""
from __future__ import annotations

from typing import Any

from ..states import ComputeState, DesiredState, JobState
from .records import (
    ComputeError,
    Evaluation,
    Execution,
    ExecutionStatus,
    NodeInfo,
    NodeState,
    Removal,
    RunResult,
)
from .spec import (
    Allocation,
    Constraint,
    InputSource,
    Job,
    JobStatus,
    JobType,
    NetworkType,
    PublisherType,
    Resources,
    ResultPath,
    SourceType,
    Task,
    Timeouts,
    WasmEngine,
)

Doc = dict[str, Any]


# ----------------------------------------------------------------------------- resources

def allocation_to_dict(a: Allocation) -> Doc:
    return {"CPU": a.CPU, "Memory": a.Memory}


def allocation_from_dict(d: Doc | None) -> Allocation:
    d = d or {}
    return Allocation(float(d.get("CPU", 0)), float(d.get("Memory", 0)))


# ----------------------------------------------------------------------------- jobs

def _source_to_dict(s: InputSource) -> Doc:
    if s.Type is SourceType.LOCAL:
        params: Doc = {"SourcePath": s.SourcePath, "ReadWrite": s.ReadWrite}
    else:
        params = {"URL": s.URL}
    out: Doc = {"Source": {"Type": s.Type.value, "Params": params}, "Target": s.Target}
    if s.Alias:
        out["Alias"] = s.Alias
    return out


def _source_from_dict(d: Doc) -> InputSource:
    params = d["Source"].get("Params") or {}
    return InputSource(SourceType(d["Source"]["Type"]), d["Target"], URL=params.get("URL", ""),
                       SourcePath=params.get("SourcePath", ""), ReadWrite=bool(params.get("ReadWrite")),
                       Alias=d.get("Alias", ""))


def task_to_dict(t: Task) -> Doc:
    r = t.Resources
    return {
        "Name": t.Name,
        "Engine": {"Type": "wasm", "Params": {"EntryModule": t.Engine.EntryModule, "Entrypoint": t.Engine.Entrypoint,
                                              "Parameters": list(t.Engine.Parameters),
                                              "ImportModules": list(t.Engine.ImportModules)}},
        "InputSources": [_source_to_dict(s) for s in t.InputSources],
        "ResultPaths": [{"Name": p.Name, "Path": p.Path} for p in t.ResultPaths],
        "Publisher": {"Type": t.Publisher.value},
        "Env": dict(t.Env),
        "Resources": {k: v for k, v in (("CPU", r.CPU), ("Memory", r.Memory), ("Disk", r.Disk), ("GPU", r.GPU)) if v},
        "Timeouts": {"ExecutionTimeout": t.Timeouts.ExecutionTimeout, "QueueTimeout": t.Timeouts.QueueTimeout,
                     "TotalTimeout": t.Timeouts.TotalTimeout},
        "Network": {"Type": t.Network.value},
    }


def task_from_dict(d: Doc) -> Task:
    params = d["Engine"].get("Params") or {}
    timeouts = d.get("Timeouts") or {}
    res = d.get("Resources") or {}
    return Task(
        Name=d["Name"],
        Engine=WasmEngine(params.get("EntryModule", ""), params.get("Entrypoint") or "_start",
                          list(params.get("Parameters") or []), list(params.get("ImportModules") or [])),
        InputSources=[_source_from_dict(s) for s in d.get("InputSources") or []],
        ResultPaths=[ResultPath(p["Name"], p["Path"]) for p in d.get("ResultPaths") or []],
        Publisher=PublisherType((d.get("Publisher") or {}).get("Type", "local")),
        Env=dict(d.get("Env") or {}),
        Resources=Resources(*(str(res.get(k, "")) for k in ("CPU", "Memory", "Disk", "GPU"))),
        Timeouts=Timeouts(*(float(timeouts.get(k) or 0) for k in ("ExecutionTimeout", "QueueTimeout",
                                                                    "TotalTimeout"))),
        Network=NetworkType((d.get("Network") or {}).get("Type", "None")),
    )


def spec_to_dict(job: Job) -> Doc:
    """What a user submits: a valid spec for :func:`~cod_reference.models.parse.parse_job`."""
    return {
        "Name": job.Name,
        "Namespace": job.Namespace,
        "Type": job.Type.value,
        "Priority": job.Priority,
        "Count": job.Count,
        "Constraints": [{"Key": c.Key, "Operator": c.Operator, "Values": list(c.Values)} for c in job.Constraints],
        "Labels": dict(job.Labels),
        "Meta": dict(job.Meta),
        "Tasks": [task_to_dict(job.Task)],
    }


def job_to_dict(job: Job) -> Doc:
    """A job as the API shows it and compute nodes receive it (without its trace parent)."""
    out = spec_to_dict(job)
    if job.ID:
        out.update({"ID": job.ID, "State": {"StateType": job.State.StateType.value, "Message": job.State.Message},
                    "Version": job.Version, "CreateTime": job.CreateTime, "ModifyTime": job.ModifyTime})
    return out


def job_from_dict(d: Doc) -> Job:
    state = d.get("State") or {}
    return Job(
        Name=d.get("Name", ""),
        Type=JobType(d["Type"]),
        Task=task_from_dict(d["Tasks"][0]),
        Namespace=d.get("Namespace", "default"),
        Priority=int(d.get("Priority") or 0),
        Count=int(d.get("Count", 1)),
        Constraints=[Constraint(c["Key"], c["Operator"], list(c.get("Values") or []))
                     for c in d.get("Constraints") or []],
        Labels=dict(d.get("Labels") or {}),
        Meta=dict(d.get("Meta") or {}),
        ID=d.get("ID", ""),
        State=JobStatus(JobState(state.get("StateType", JobState.PENDING.value)), state.get("Message", "")),
        Version=int(d.get("Version", 0)),
        CreateTime=int(d.get("CreateTime", 0)),
        ModifyTime=int(d.get("ModifyTime", 0)),
    )


# ----------------------------------------------------------------------------- executions and evaluations

def execution_to_dict(ex: Execution) -> Doc:
    return {
        "ID": ex.ID, "JobID": ex.JobID, "NodeID": ex.NodeID, "PartitionIndex": ex.PartitionIndex,
        "ComputeState": {"StateType": ex.ComputeState.StateType.value, "Message": ex.ComputeState.Message},
        "DesiredState": {"StateType": ex.DesiredState.value},
        "RunOutput": ex.RunOutput, "PublishedResult": ex.PublishedResult,
        "AllocatedResources": allocation_to_dict(ex.AllocatedResources),
        "Retryable": ex.Retryable, "Revision": ex.Revision, "CreateTime": ex.CreateTime, "ModifyTime": ex.ModifyTime,
        "FilesRemoved": removal_to_dict(ex.FilesRemoved) if ex.FilesRemoved else None,
    }


def execution_from_dict(d: Doc) -> Execution:
    return Execution(
        ID=d["ID"], JobID=d["JobID"], NodeID=d["NodeID"], PartitionIndex=int(d.get("PartitionIndex", 0)),
        ComputeState=ExecutionStatus(ComputeState(d["ComputeState"]["StateType"]),
                                     d["ComputeState"].get("Message", "")),
        DesiredState=DesiredState(d["DesiredState"]["StateType"]),
        RunOutput=d.get("RunOutput"), PublishedResult=d.get("PublishedResult"),
        AllocatedResources=allocation_from_dict(d.get("AllocatedResources")),
        Retryable=bool(d.get("Retryable")), Revision=int(d.get("Revision", 0)),
        CreateTime=int(d.get("CreateTime", 0)), ModifyTime=int(d.get("ModifyTime", 0)),
        FilesRemoved=removal_from_dict(d["FilesRemoved"]) if d.get("FilesRemoved") else None,
    )


#: longest text taken from a Removal sent by a node (its ID, reason, limit: shown to users)
MAX_REMOVAL_TEXT = 200


def removal_to_dict(removal: Removal) -> Doc:
    """A :class:`Removal`: the payload of a ``FilesRemoved`` message, an execution's ``FilesRemoved``."""
    return {"ExecutionID": removal.ExecutionID, "NodeID": removal.NodeID, "Reason": removal.Reason,
            "Limit": removal.Limit, "Time": removal.Time}


def removal_from_dict(d: Doc) -> Removal:
    """A :class:`Removal` (from a node: a message, or the body of its API's 410); raises ValueError
    when it is not one."""
    if not isinstance(d, dict) or not isinstance(d.get("ExecutionID"), str) or not d["ExecutionID"]:
        raise ValueError("not a removal record")
    text = {k: str(d.get(k) or "")[:MAX_REMOVAL_TEXT] for k in ("ExecutionID", "NodeID", "Reason", "Limit")}
    moment = d.get("Time")
    return Removal(**text, Time=moment if isinstance(moment, int) and not isinstance(moment, bool) else 0)


def evaluation_to_dict(ev: Evaluation) -> Doc:
    return {"ID": ev.ID, "JobID": ev.JobID, "TriggeredBy": ev.TriggeredBy, "Status": ev.Status,
            "WaitUntil": ev.WaitUntil, "TraceParent": ev.TraceParent, "CreateTime": ev.CreateTime}


def report_to_dict(report: RunResult | ComputeError) -> Doc:
    """The payload of a ``RunResult`` or ``ComputeError`` message."""
    if isinstance(report, RunResult):
        return {"ExecutionID": report.ExecutionID, "RunOutput": report.RunOutput,
                "PublishedResult": report.PublishedResult}
    out: Doc = {"ExecutionID": report.ExecutionID, "Error": report.Error, "Retryable": report.Retryable}
    if report.RunOutput is not None:
        out["RunOutput"] = report.RunOutput
    return out


def run_result_from_dict(d: Doc) -> RunResult:
    return RunResult(str(d.get("ExecutionID", "")), d.get("RunOutput") or {}, d.get("PublishedResult") or {})


def compute_error_from_dict(d: Doc) -> ComputeError:
    return ComputeError(str(d.get("ExecutionID", "")), str(d.get("Error") or ""), bool(d.get("Retryable", True)),
                        d.get("RunOutput") or None)


def report_from_dict(d: Doc) -> RunResult | ComputeError:
    """A stored report: a ComputeError has an ``Error``."""
    return compute_error_from_dict(d) if "Error" in d else run_result_from_dict(d)


# ----------------------------------------------------------------------------- nodes

def node_info_to_dict(info: NodeInfo) -> Doc:
    out: Doc = {"NodeID": info.NodeID, "NodeType": info.NodeType, "Labels": dict(info.Labels)}
    if info.NodeType == "Compute":
        out.update({"Engines": list(info.Engines), "Publishers": list(info.Publishers),
                    "StorageSources": list(info.StorageSources), "LocalPaths": list(info.LocalPaths),
                    "MaxCapacity": allocation_to_dict(info.MaxCapacity or Allocation()),
                    "AvailableCapacity": allocation_to_dict(info.AvailableCapacity or Allocation()),
                    "RunningExecutions": info.RunningExecutions, "EnqueuedExecutions": info.EnqueuedExecutions})
        if info.APIURL:
            out["APIURL"] = info.APIURL
    return out


def node_info_from_dict(d: Doc) -> NodeInfo:
    return NodeInfo(
        NodeID=d["NodeID"], NodeType=d.get("NodeType", "Compute"), Labels=dict(d.get("Labels") or {}),
        Engines=list(d.get("Engines") or []), Publishers=list(d.get("Publishers") or []),
        StorageSources=list(d.get("StorageSources") or []), LocalPaths=list(d.get("LocalPaths") or []),
        MaxCapacity=allocation_from_dict(d["MaxCapacity"]) if d.get("MaxCapacity") else None,
        AvailableCapacity=allocation_from_dict(d["AvailableCapacity"]) if d.get("AvailableCapacity") else None,
        RunningExecutions=int(d.get("RunningExecutions", 0)), EnqueuedExecutions=int(d.get("EnqueuedExecutions", 0)),
        APIURL=str(d.get("APIURL") or ""),
    )


def node_state_to_dict(state: NodeState) -> Doc:
    out: Doc = {"Info": node_info_to_dict(state.Info), "Membership": state.Membership,
                "Connection": state.Connection}
    if state.LastHeartbeat:
        out["LastHeartbeat"] = state.LastHeartbeat
    return out


def node_state_from_dict(d: Doc) -> NodeState:
    return NodeState(node_info_from_dict(d["Info"]), d.get("Membership", "APPROVED"),
                     d.get("Connection", "CONNECTED"), int(d.get("LastHeartbeat", 0)))
