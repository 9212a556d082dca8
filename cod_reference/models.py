"""The job spec: what users submit, with Bacalhau's field names.

:func:`parse_job` turns a decoded YAML/JSON document into a :class:`Job`, rejecting
unknown fields, server-owned fields and invalid values with the field's path and the
reason (``Tasks[0].Resources.Memory: "12 parsecs" is not a size such as 512Mb or 64MiB``).
:meth:`Job.to_dict` writes it back with the same names, so a stored job is a valid spec.
"""
from __future__ import annotations

import base64
import math
import os
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable

import yaml

JOB_TYPES = ("batch", "ops")
CONSTRAINT_OPERATORS = ("=", "==", "!=", "in", "notin", "exists", "!", "gt", "lt")
SOURCE_TYPES = ("inline", "local", "urlDownload")
PUBLISHER_TYPES = ("local", "noop")
NETWORK_TYPES = ("None", "Default")
SERVER_OWNED = ("ID", "State", "Version", "Revision", "CreateTime", "ModifyTime")
DEFAULT_NAMESPACE = "default"
MAX_COUNT = 10_000  # partitions of one job: each scheduler pass walks them all, holding the job store
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


class SpecError(ValueError):
    """An invalid job spec; ``problems`` lists ``(field path, reason)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{path}: {reason}" if path else reason for path, reason in problems))


# ----------------------------------------------------------------------------- values

_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$")
_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9, "t": 10**12, "tb": 10**12,
    "ki": 2**10, "kib": 2**10, "mi": 2**20, "mib": 2**20, "gi": 2**30, "gib": 2**30, "ti": 2**40, "tib": 2**40,
}


def parse_size(text: str | int) -> int:
    """Bytes from ``512Mb`` (10^6), ``64MiB`` (2^20), ``1Gi`` or a plain number."""
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a size")
    if isinstance(text, (int, float)):
        if not math.isfinite(text):
            raise ValueError(f"{text!r} is not a size")
        if text < 0:
            raise ValueError(f"{text!r} is negative")
        return int(text)
    match = _SIZE.match(str(text))
    if not match or match.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(f"{text!r} is not a size such as 512Mb or 64MiB")
    size = float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
    if not math.isfinite(size):
        raise ValueError(f"{text!r} is too large")
    return int(size)


def parse_cpu(text: str | int | float) -> float:
    """Cores from ``500m``, ``0.5`` or ``2``."""
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a CPU amount")
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        raw = str(text).strip()
        try:
            value = float(raw[:-1]) / 1000 if raw.endswith("m") else float(raw)
        except ValueError:
            raise ValueError(f"{text!r} is not a CPU amount such as 500m or 2") from None
    if not math.isfinite(value):  # NaN would compare as fitting everywhere and poison a node's free capacity
        raise ValueError(f"{text!r} is not a CPU amount such as 500m or 2")
    if value < 0:
        raise ValueError(f"{text!r} is negative")
    return value


def decode_data_url(url: str) -> tuple[str, bytes]:
    """``(media type, payload)`` of an RFC 2397 data URL."""
    if not url.startswith("data:") or "," not in url:
        raise ValueError("is not a data URL (data:[<mediatype>][;base64],<data>)")
    head, _, data = url[5:].partition(",")
    parts = head.split(";")
    media = parts[0] or "text/plain"
    if "base64" in parts[1:]:
        try:
            return media, base64.b64decode(data, validate=True)
        except ValueError:
            raise ValueError("has invalid base64 data") from None
    return media, urllib.parse.unquote_to_bytes(data)


def encode_data_url(payload: bytes, media: str = "application/octet-stream") -> str:
    return f"data:{media};base64,{base64.b64encode(payload).decode()}"


# ----------------------------------------------------------------------------- spec types

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

    def to_dict(self) -> dict[str, Any]:
        return {"Key": self.Key, "Operator": self.Operator, "Values": list(self.Values)}


@dataclass
class InputSource:
    Type: str
    Params: dict[str, Any]
    Target: str
    Alias: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Source": {"Type": self.Type, "Params": dict(self.Params)}, "Target": self.Target}
        if self.Alias:
            out["Alias"] = self.Alias
        return out


@dataclass
class ResultPath:
    Name: str
    Path: str

    def to_dict(self) -> dict[str, Any]:
        return {"Name": self.Name, "Path": self.Path}


@dataclass
class Resources:
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

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in (("CPU", self.CPU), ("Memory", self.Memory), ("Disk", self.Disk),
                                  ("GPU", self.GPU)) if v}


@dataclass
class Timeouts:
    ExecutionTimeout: float = 0
    QueueTimeout: float = 0
    TotalTimeout: float = 0

    def execution_timeout(self) -> float | None:
        """Seconds the executor may run: ExecutionTimeout, else TotalTimeout, else none."""
        return self.ExecutionTimeout or self.TotalTimeout or None

    def to_dict(self) -> dict[str, Any]:
        return {"ExecutionTimeout": self.ExecutionTimeout, "QueueTimeout": self.QueueTimeout,
                "TotalTimeout": self.TotalTimeout}


@dataclass
class WasmEngine:
    EntryModule: str
    Entrypoint: str = "_start"
    Parameters: list[str] = field(default_factory=list)
    ImportModules: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"Type": "wasm", "Params": {"EntryModule": self.EntryModule, "Entrypoint": self.Entrypoint,
                                           "Parameters": list(self.Parameters),
                                           "ImportModules": list(self.ImportModules)}}


@dataclass
class Task:
    Name: str
    Engine: WasmEngine
    InputSources: list[InputSource] = field(default_factory=list)
    ResultPaths: list[ResultPath] = field(default_factory=list)
    Publisher: str = "local"
    Env: dict[str, str] = field(default_factory=dict)
    Resources: Resources = field(default_factory=Resources)
    Timeouts: Timeouts = field(default_factory=Timeouts)
    Network: str = "None"

    def to_dict(self) -> dict[str, Any]:
        return {
            "Name": self.Name,
            "Engine": self.Engine.to_dict(),
            "InputSources": [s.to_dict() for s in self.InputSources],
            "ResultPaths": [r.to_dict() for r in self.ResultPaths],
            "Publisher": {"Type": self.Publisher},
            "Env": dict(self.Env),
            "Resources": self.Resources.to_dict(),
            "Timeouts": self.Timeouts.to_dict(),
            "Network": {"Type": self.Network},
        }


@dataclass
class Job:
    Name: str
    Type: str
    Task: Task
    Namespace: str = DEFAULT_NAMESPACE
    Priority: int = 0
    Count: int = 1
    Constraints: list[Constraint] = field(default_factory=list)
    Labels: dict[str, str] = field(default_factory=dict)
    Meta: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "Name": self.Name,
            "Namespace": self.Namespace,
            "Type": self.Type,
            "Priority": self.Priority,
            "Count": self.Count,
            "Constraints": [c.to_dict() for c in self.Constraints],
            "Labels": dict(self.Labels),
            "Meta": dict(self.Meta),
            "Tasks": [self.Task.to_dict()],
        }


# ----------------------------------------------------------------------------- parsing

class _Reader:
    """Walks a decoded document, collecting problems with their field paths."""

    def __init__(self) -> None:
        self.problems: list[tuple[str, str]] = []

    def fail(self, path: str, reason: str) -> None:
        self.problems.append((path, reason))

    def mapping(self, value: Any, path: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            self.fail(path, f"must be a mapping, not {_kind(value)}")
            return {}
        for key in value:
            if not isinstance(key, str) or key not in allowed:
                self.fail(_join(path, str(key)), "unknown field" + _did_you_mean(str(key), allowed))
        for key in required:
            if value.get(key) in (None, ""):
                self.fail(_join(path, key), "is required")
        return value

    def string(self, value: Any, path: str, default: str = "") -> str:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.fail(path, f"must be a string, not {_kind(value)}")
            return default
        return str(value)

    def choice(self, value: Any, path: str, choices: tuple[str, ...], default: str) -> str:
        text = self.string(value, path, default)
        if text not in choices:
            self.fail(path, f"{text!r} is not one of {', '.join(choices)}")
            return default
        return text

    def integer(self, value: Any, path: str, default: int, minimum: int | None = None,
                maximum: int | None = None) -> int:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, f"must be an integer, not {_kind(value)}")
            return default
        if minimum is not None and value < minimum:
            self.fail(path, f"must be at least {minimum}")
            return default
        if maximum is not None and value > maximum:
            self.fail(path, f"must be at most {maximum}")
            return default
        return value

    def seconds(self, value: Any, path: str) -> float:
        if value is None:
            return 0
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(path, f"must be a number of seconds, not {_kind(value)}")
            return 0
        if not math.isfinite(value):
            self.fail(path, "must be a finite number of seconds (0 means none)")
            return 0
        if value < 0:
            self.fail(path, "must not be negative")
            return 0
        return float(value)

    def string_list(self, value: Any, path: str) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(path, f"must be a list, not {_kind(value)}")
            return []
        return [self.string(item, f"{path}[{i}]") for i, item in enumerate(value)]

    def string_map(self, value: Any, path: str) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(path, f"must be a mapping, not {_kind(value)}")
            return {}
        return {str(k): self.string(v, _join(path, str(k))) for k, v in value.items()}

    def items(self, value: Any, path: str) -> list[tuple[str, Any]]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(path, f"must be a list, not {_kind(value)}")
            return []
        return [(f"{path}[{i}]", item) for i, item in enumerate(value)]

    def convert(self, value: str, path: str, parse: Callable[[str], Any]) -> None:
        if value:
            try:
                parse(value)
            except ValueError as exc:
                self.fail(path, str(exc))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)


def _did_you_mean(key: str, allowed: tuple[str, ...]) -> str:
    for name in allowed:
        if name.lower() == key.lower():
            return f" (did you mean {name}?)"
    return ""


_JOB_FIELDS = ("Name", "Namespace", "Type", "Priority", "Count", "Constraints", "Labels", "Meta", "Tasks")
_TASK_FIELDS = ("Name", "Engine", "InputSources", "ResultPaths", "Publisher", "Env", "Resources", "Timeouts",
                "Network")
_SOURCE_PARAMS = {"inline": ("URL",), "local": ("SourcePath", "ReadWrite"), "urlDownload": ("URL",)}


def parse_job(doc: Any) -> Job:
    """A :class:`Job` from a decoded spec document; raises :class:`SpecError`."""
    r = _Reader()
    if isinstance(doc, dict) and set(doc) == {"Job"}:
        doc = doc["Job"]
    if isinstance(doc, dict):
        for key in SERVER_OWNED:
            if key in doc:
                r.fail(key, "is set by the orchestrator and cannot be submitted")
        doc = {k: v for k, v in doc.items() if k not in SERVER_OWNED}
    top = r.mapping(doc, "", _JOB_FIELDS, ("Type", "Tasks"))
    job_type = r.choice(top.get("Type"), "Type", JOB_TYPES, "batch") if "Type" in top else "batch"
    count_default = 0 if job_type == "ops" else 1
    count = r.integer(top.get("Count"), "Count", count_default, minimum=0, maximum=MAX_COUNT)
    if job_type == "ops" and count > 1:
        r.fail("Count", "ops jobs run once on every matching node; Count must be 0 or 1")
    constraints = []
    for path, item in r.items(top.get("Constraints"), "Constraints"):
        c = r.mapping(item, path, ("Key", "Operator", "Values"), ("Key", "Operator"))
        op = r.choice(c.get("Operator"), f"{path}.Operator", CONSTRAINT_OPERATORS, "=") if "Operator" in c else "="
        values = r.string_list(c.get("Values"), f"{path}.Values")
        if op in ("=", "==", "!=", "gt", "lt") and len(values) != 1:
            r.fail(f"{path}.Values", f"operator {op!r} takes exactly one value")
        elif op in ("in", "notin") and not values:
            r.fail(f"{path}.Values", f"operator {op!r} needs at least one value")
        elif op in ("exists", "!") and values:
            r.fail(f"{path}.Values", f"operator {op!r} takes no values")
        if op in ("gt", "lt") and len(values) == 1:
            try:
                float(values[0])
            except ValueError:
                r.fail(f"{path}.Values[0]", f"{values[0]!r} is not a number")
        constraints.append(Constraint(r.string(c.get("Key"), f"{path}.Key"), op, values))
    tasks = r.items(top.get("Tasks"), "Tasks")
    if "Tasks" in top and isinstance(top.get("Tasks"), list) and len(tasks) != 1:
        r.fail("Tasks", f"must hold exactly one task, not {len(tasks)}")
    task = _parse_task(r, tasks[0][1] if tasks else {}, "Tasks[0]") if tasks else None
    meta = r.string_map(top.get("Meta"), "Meta")
    for key in meta:
        if key.startswith("bacalhau.org/") or key.startswith("cod/"):
            r.fail(f"Meta.{key}", "keys starting with bacalhau.org/ or cod/ are reserved")
    job = Job(
        Name=r.string(top.get("Name"), "Name"),
        Type=job_type,
        Task=task,  # type: ignore[arg-type]
        Namespace=r.string(top.get("Namespace"), "Namespace", DEFAULT_NAMESPACE) or DEFAULT_NAMESPACE,
        Priority=r.integer(top.get("Priority"), "Priority", 0),
        Count=count,
        Constraints=constraints,
        Labels=r.string_map(top.get("Labels"), "Labels"),
        Meta=meta,
    )
    if r.problems or task is None:
        raise SpecError(r.problems or [("Tasks", "is required")])
    return job


def _parse_task(r: _Reader, doc: Any, path: str) -> Task:
    t = r.mapping(doc, path, _TASK_FIELDS, ("Name", "Engine"))
    engine = r.mapping(t.get("Engine"), f"{path}.Engine", ("Type", "Params"), ("Type",))
    if "Type" in engine:
        r.choice(engine.get("Type"), f"{path}.Engine.Type", ("wasm",), "wasm")
    epath = f"{path}.Engine.Params"
    params = r.mapping(engine.get("Params"), epath, ("EntryModule", "Entrypoint", "Parameters", "ImportModules"),
                       ("EntryModule",))
    wasm = WasmEngine(
        EntryModule=r.string(params.get("EntryModule"), f"{epath}.EntryModule"),
        Entrypoint=r.string(params.get("Entrypoint"), f"{epath}.Entrypoint", "_start") or "_start",
        Parameters=r.string_list(params.get("Parameters"), f"{epath}.Parameters"),
        ImportModules=r.string_list(params.get("ImportModules"), f"{epath}.ImportModules"),
    )
    sources: list[InputSource] = []
    for spath, item in r.items(t.get("InputSources"), f"{path}.InputSources"):
        s = r.mapping(item, spath, ("Source", "Target", "Alias"), ("Source", "Target"))
        src = r.mapping(s.get("Source"), f"{spath}.Source", ("Type", "Params"), ("Type",))
        stype = r.choice(src.get("Type"), f"{spath}.Source.Type", SOURCE_TYPES + ("localDirectory",),
                         "inline") if "Type" in src else ""
        if stype == "localDirectory":
            stype = "local"
        allowed = _SOURCE_PARAMS.get(stype, ())
        required = ("SourcePath",) if stype == "local" else ("URL",) if stype else ()
        sparams = r.mapping(src.get("Params"), f"{spath}.Source.Params", allowed, required) if stype else {}
        target = r.string(s.get("Target"), f"{spath}.Target")
        if target and not target.startswith("/"):
            r.fail(f"{spath}.Target", f"{target!r} must be an absolute path")
        if stype == "inline" and isinstance(sparams.get("URL"), str):
            try:
                decode_data_url(sparams["URL"])
            except ValueError as exc:
                r.fail(f"{spath}.Source.Params.URL", str(exc))
        if stype == "urlDownload" and isinstance(sparams.get("URL"), str):
            if not re.match(r"^https?://[^/]+/.*[^/]$", sparams["URL"]):
                r.fail(f"{spath}.Source.Params.URL", "must be an http(s) URL ending in a file name")
        if stype == "local" and "ReadWrite" in sparams and not isinstance(sparams["ReadWrite"], bool):
            r.fail(f"{spath}.Source.Params.ReadWrite", "must be true or false")
        sources.append(InputSource(stype, dict(sparams), target, r.string(s.get("Alias"), f"{spath}.Alias")))
    targets = [s.Target for s in sources]
    for i, target in enumerate(targets):
        if target and target in targets[:i]:
            r.fail(f"{path}.InputSources[{i}].Target", f"{target!r} is used by another input")
    results: list[ResultPath] = []
    for rpath, item in r.items(t.get("ResultPaths"), f"{path}.ResultPaths"):
        rp = r.mapping(item, rpath, ("Name", "Path"), ("Name", "Path"))
        result = ResultPath(r.string(rp.get("Name"), f"{rpath}.Name"), r.string(rp.get("Path"), f"{rpath}.Path"))
        if result.Path and not result.Path.startswith("/"):
            r.fail(f"{rpath}.Path", f"{result.Path!r} must be an absolute path")
        if result.Path in targets:
            r.fail(f"{rpath}.Path", f"{result.Path!r} is also an input target")
        if result.Name and not re.match(r"^[A-Za-z0-9_.-]+$", result.Name):
            r.fail(f"{rpath}.Name", "may hold only letters, digits, '_', '.' and '-'")
        if any(result.Name == other.Name or result.Path == other.Path for other in results):
            r.fail(rpath, "Name and Path must be unique")
        results.append(result)
    for i, module in enumerate([wasm.EntryModule] + wasm.ImportModules):
        mpath = f"{epath}.EntryModule" if i == 0 else f"{epath}.ImportModules[{i - 1}]"
        if module and not any(module == t_ or module.startswith(t_.rstrip("/") + "/") for t_ in targets if t_):
            r.fail(mpath, f"{module!r} is not the Target of an input source (or a file under one)")
    publisher = t.get("Publisher")
    pub_type = "local"
    if publisher is not None:
        pub = r.mapping(publisher, f"{path}.Publisher", ("Type", "Params"), ("Type",))
        if "Type" in pub:
            pub_type = r.choice(pub.get("Type"), f"{path}.Publisher.Type", PUBLISHER_TYPES, "local")
    env = r.string_map(t.get("Env"), f"{path}.Env")
    for name in env:
        if not ENV_NAME.match(name):
            r.fail(f"{path}.Env.{name}", "names must be upper case: a letter, then A-Z, 0-9 or _")
        elif name.startswith("BACALHAU_"):
            r.fail(f"{path}.Env.{name}", "names starting with BACALHAU_ are set by the network")
    res = r.mapping(t.get("Resources"), f"{path}.Resources", ("CPU", "Memory", "Disk", "GPU"))
    resources = Resources(*(r.string(res.get(k), f"{path}.Resources.{k}") for k in ("CPU", "Memory", "Disk", "GPU")))
    r.convert(resources.CPU, f"{path}.Resources.CPU", parse_cpu)
    r.convert(resources.Memory, f"{path}.Resources.Memory", parse_size)
    r.convert(resources.Disk, f"{path}.Resources.Disk", parse_size)
    if resources.GPU and resources.GPU not in ("0",):
        r.fail(f"{path}.Resources.GPU", "Wasm jobs cannot use GPUs")
    tpath = f"{path}.Timeouts"
    tmap = r.mapping(t.get("Timeouts"), tpath, ("ExecutionTimeout", "QueueTimeout", "TotalTimeout"))
    timeouts = Timeouts(*(r.seconds(tmap.get(k), f"{tpath}.{k}")
                          for k in ("ExecutionTimeout", "QueueTimeout", "TotalTimeout")))
    if timeouts.TotalTimeout and timeouts.ExecutionTimeout + timeouts.QueueTimeout > timeouts.TotalTimeout:
        r.fail(tpath, "ExecutionTimeout + QueueTimeout must not exceed TotalTimeout")
    network = "None"
    if t.get("Network") is not None:
        net = r.mapping(t.get("Network"), f"{path}.Network", ("Type",))
        network = r.choice(net.get("Type"), f"{path}.Network.Type", NETWORK_TYPES, "None")
    return Task(
        Name=r.string(t.get("Name"), f"{path}.Name"),
        Engine=wasm,
        InputSources=sources,
        ResultPaths=results,
        Publisher=pub_type,
        Env=env,
        Resources=resources,
        Timeouts=timeouts,
        Network=network,
    )


def load_job_text(text: str, source: str = "job spec") -> Job:
    """A :class:`Job` from YAML or JSON text (JSON is YAML)."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError([("", f"{source} is not valid YAML or JSON{where}")]) from None
    return parse_job(doc)


# ----------------------------------------------------------------------------- stored jobs

DEFAULT_CPU = 0.1           # cores one execution needs when Resources.CPU is not set
DEFAULT_MEMORY = 256 * 10**6  # bytes, when Resources.Memory is not set


def job_resources(job: dict[str, Any]) -> dict[str, float]:
    """The CPU (cores) and memory (bytes) one execution of ``job`` needs."""
    res = job["Tasks"][0].get("Resources") or {}
    return {"CPU": parse_cpu(res["CPU"]) if res.get("CPU") else DEFAULT_CPU,
            "Memory": parse_size(res["Memory"]) if res.get("Memory") else DEFAULT_MEMORY}


def job_timeouts(job: dict[str, Any]) -> Timeouts:
    """The timeouts of a stored job, in seconds (0: none)."""
    given = job["Tasks"][0].get("Timeouts") or {}
    return Timeouts(*(float(given.get(k) or 0) for k in ("ExecutionTimeout", "QueueTimeout", "TotalTimeout")))


def local_inputs(job: dict[str, Any]) -> list[str]:
    return [s["Source"]["Params"]["SourcePath"] for s in job["Tasks"][0].get("InputSources") or []
            if s["Source"]["Type"] in ("local", "localDirectory")]


@dataclass
class AllowedPath:
    """A host path a compute node lets jobs mount as a ``local`` input (``PATH``, ``PATH:ro`` or ``PATH:rw``)."""

    path: str
    writable: bool

    @classmethod
    def parse(cls, entry: str) -> "AllowedPath":
        if entry.endswith((":rw", ":ro")):
            return cls(os.path.abspath(entry[:-3]), entry.endswith(":rw"))
        return cls(os.path.abspath(entry), False)

    def covers(self, path: str) -> bool:
        path = os.path.abspath(path)
        return path == self.path or path.startswith(self.path.rstrip("/") + "/")

    def __str__(self) -> str:
        return f"{self.path}:{'rw' if self.writable else 'ro'}"


def holds_path(info: dict[str, Any], path: str) -> bool:
    """Whether a node (its advertised ``LocalPaths``) lets jobs mount ``path``."""
    return any(AllowedPath.parse(entry).covers(path) for entry in info.get("LocalPaths") or [])


def wasm_job(module: bytes, *, name: str = "", args: list[str] | None = None, entrypoint: str = "_start",
             env: dict[str, str] | None = None, inputs: list[dict[str, Any]] | None = None,
             count: int = 1, job_type: str = "batch", **task_fields: Any) -> dict[str, Any]:
    """A spec document running ``module`` (sent inline at ``/main.wasm``); used by ``wasm run``."""
    task: dict[str, Any] = {
        "Name": "main",
        "Engine": {"Type": "wasm", "Params": {"EntryModule": "/main.wasm", "Entrypoint": entrypoint,
                                              "Parameters": list(args or [])}},
        "InputSources": [{"Source": {"Type": "inline", "Params": {"URL": encode_data_url(module, "application/wasm")}},
                          "Target": "/main.wasm"}] + list(inputs or []),
        "Env": dict(env or {}),
    }
    task.update(task_fields)
    doc: dict[str, Any] = {"Type": job_type, "Tasks": [task]}
    if name:
        doc["Name"] = name
    if job_type == "batch":
        doc["Count"] = count
    return doc
