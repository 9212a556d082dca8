"""Reading what users submit: a decoded YAML/JSON document becomes a :class:`Job`, once.

:func:`parse_job` checks every field and every bound of :mod:`.limits`, and reports each
problem with the field's path and the reason (``Tasks[0].Resources.Memory: "12 parsecs"
is not a size such as 512Mb or 64MiB``), all at once. Values that could never run (no
memory, NUL in an argument, a tarball escaping its directory) are refused here, not on
a node.
"""
from __future__ import annotations

import io
import math
import re
import tarfile
from collections.abc import Callable
from typing import Any

from ..errors import CodError
from .documents import DocumentError, load_document
from .limits import (
    MAX_BODY_BYTES,
    MAX_COUNT,
    MAX_ITEMS,
    MAX_NAME,
    MAX_PRIORITY,
    MAX_PROBLEMS,
    MAX_TARBALL_BYTES,
    MAX_TARBALL_MEMBERS,
    MAX_TIMEOUT_S,
    MAX_URL,
    MAX_VALUE,
)
from .spec import (
    CONSTRAINT_OPERATORS,
    DEFAULT_NAMESPACE,
    Constraint,
    InputSource,
    Job,
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
from .units import TARBALL_TYPES, decode_data_url, parse_cpu, parse_size

SERVER_OWNED = ("ID", "State", "Version", "Revision", "CreateTime", "ModifyTime")
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
RESULT_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class SpecError(CodError, ValueError):
    """An invalid job spec; ``problems`` lists ``(field path, reason)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]], more: int = 0):
        self.problems = problems
        text = "; ".join(f"{path}: {reason}" if path else reason for path, reason in problems)
        super().__init__(text + (f"; and {more} more problems" if more else ""))


def show(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut short: error messages quote what users sent, within bounds."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


# ----------------------------------------------------------------------------- reading values

class _Reader:
    """Walks a decoded document, collecting problems with their field paths."""

    def __init__(self) -> None:
        self.problems: list[tuple[str, str]] = []
        self.more = 0

    def fail(self, path: str, reason: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append((path, reason))
        else:
            self.more += 1

    def mapping(self, value: Any, path: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            self.fail(path, f"must be a mapping, not {_kind(value)}")
            return {}
        for key in value:
            if not isinstance(key, str) or key not in allowed:
                self.fail(_join(path, show(key, 40).strip("'\"")), "unknown field" + _did_you_mean(str(key), allowed))
        for key in required:
            if value.get(key) in (None, ""):
                self.fail(_join(path, key), "is required")
        return value

    def string(self, value: Any, path: str, default: str = "", limit: int = MAX_VALUE) -> str:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.fail(path, f"must be a string, not {_kind(value)}")
            return default
        text = str(value)
        if len(text) > limit:
            self.fail(path, f"is {len(text)} characters long; at most {limit} are allowed")
            return default
        if "\0" in text:
            self.fail(path, "must not contain NUL characters")
            return default
        return text

    def name(self, value: Any, path: str, default: str = "") -> str:
        """A name users address things by: short, printable, no '/', no surrounding blanks."""
        text = self.string(value, path, default, MAX_NAME)
        if _CONTROL.search(text):
            self.fail(path, "must not contain control characters")
        elif "/" in text:
            self.fail(path, f"{show(text)} must not contain '/' (it could not be addressed in the API)")
        elif text != text.strip():
            self.fail(path, "must not start or end with blanks")
        return text

    def choice(self, value: Any, path: str, choices: tuple[str, ...], default: str) -> str:
        text = self.string(value, path, default)
        if text not in choices:
            self.fail(path, f"{show(text)} is not one of {', '.join(choices)}")
            return default
        return text

    def integer(self, value: Any, path: str, default: int, minimum: int, maximum: int) -> int:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, f"must be an integer, not {_kind(value)}")
            return default
        if value < minimum:
            self.fail(path, f"must be at least {minimum}")
            return default
        if value > maximum:
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
        if value > MAX_TIMEOUT_S:
            self.fail(path, f"must be at most {MAX_TIMEOUT_S} seconds (a year)")
            return 0
        return float(value)

    def items(self, value: Any, path: str) -> list[tuple[str, Any]]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(path, f"must be a list, not {_kind(value)}")
            return []
        if len(value) > MAX_ITEMS:
            self.fail(path, f"has {len(value)} entries; at most {MAX_ITEMS} are allowed")
            return []
        return [(f"{path}[{i}]", item) for i, item in enumerate(value)]

    def string_list(self, value: Any, path: str) -> list[str]:
        return [self.string(item, item_path) for item_path, item in self.items(value, path)]

    def string_map(self, value: Any, path: str) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(path, f"must be a mapping, not {_kind(value)}")
            return {}
        if len(value) > MAX_ITEMS:
            self.fail(path, f"has {len(value)} entries; at most {MAX_ITEMS} are allowed")
            return {}
        out = {}
        for k, v in value.items():
            key = self.name(k, f"{path} key {show(k, 40)}") if isinstance(k, str) else str(k)
            out[key] = self.string(v, _join(path, show(key, 40).strip("'")))
        return out

    def convert(self, value: str, path: str, parse: Callable[[str], Any]) -> Any:
        if value:
            try:
                return parse(value)
            except ValueError as exc:
                self.fail(path, str(exc))
        return None


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


# ----------------------------------------------------------------------------- the job

_JOB_FIELDS = ("Name", "Namespace", "Type", "Priority", "Count", "Constraints", "Labels", "Meta", "Tasks")
_TASK_FIELDS = ("Name", "Engine", "InputSources", "ResultPaths", "Publisher", "Env", "Resources", "Timeouts",
                "Network")
_SOURCE_PARAMS = {SourceType.INLINE: ("URL",), SourceType.LOCAL: ("SourcePath", "ReadWrite"),
                  SourceType.URL_DOWNLOAD: ("URL",)}


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
    job_type = JobType(r.choice(top.get("Type"), "Type", tuple(JobType), "batch") if "Type" in top else "batch")
    count_default = 0 if job_type is JobType.OPS else 1
    count = r.integer(top.get("Count"), "Count", count_default, 0, MAX_COUNT)
    if job_type is JobType.OPS and count > 1:
        r.fail("Count", "ops jobs run once on every matching node; Count must be 0 or 1")
    constraints = [_parse_constraint(r, item, path) for path, item in r.items(top.get("Constraints"), "Constraints")]
    tasks = r.items(top.get("Tasks"), "Tasks")
    if "Tasks" in top and isinstance(top.get("Tasks"), list) and len(tasks) != 1:
        r.fail("Tasks", f"must hold exactly one task, not {len(top['Tasks'])}")
    task = _parse_task(r, tasks[0][1], "Tasks[0]") if tasks else None
    meta = r.string_map(top.get("Meta"), "Meta")
    for key in meta:
        if key.startswith("bacalhau.org/") or key.startswith("cod/"):
            r.fail(f"Meta.{key}", "keys starting with bacalhau.org/ or cod/ are reserved")
    name = r.name(top.get("Name"), "Name")
    namespace = r.name(top.get("Namespace"), "Namespace", DEFAULT_NAMESPACE) or DEFAULT_NAMESPACE
    priority = r.integer(top.get("Priority"), "Priority", 0, -MAX_PRIORITY, MAX_PRIORITY)
    labels = r.string_map(top.get("Labels"), "Labels")
    if r.problems or task is None:
        raise SpecError(r.problems or [("Tasks", "is required")], r.more)
    return Job(Name=name, Type=job_type, Task=task, Namespace=namespace, Priority=priority, Count=count,
               Constraints=constraints, Labels=labels, Meta=meta)


def _parse_constraint(r: _Reader, item: Any, path: str) -> Constraint:
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
            r.fail(f"{path}.Values[0]", f"{show(values[0])} is not a number")
    return Constraint(r.string(c.get("Key"), f"{path}.Key", limit=MAX_NAME), op, values)


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
        Entrypoint=r.string(params.get("Entrypoint"), f"{epath}.Entrypoint", "_start", MAX_NAME) or "_start",
        Parameters=r.string_list(params.get("Parameters"), f"{epath}.Parameters"),
        ImportModules=r.string_list(params.get("ImportModules"), f"{epath}.ImportModules"),
    )
    sources = [_parse_source(r, item, spath) for spath, item in r.items(t.get("InputSources"), f"{path}.InputSources")]
    targets = [s.Target for s in sources]
    for i, target in enumerate(targets):
        if target and target in targets[:i]:
            r.fail(f"{path}.InputSources[{i}].Target", f"{show(target)} is used by another input")
    results: list[ResultPath] = []
    for rpath, item in r.items(t.get("ResultPaths"), f"{path}.ResultPaths"):
        rp = r.mapping(item, rpath, ("Name", "Path"), ("Name", "Path"))
        result = ResultPath(r.string(rp.get("Name"), f"{rpath}.Name", limit=MAX_NAME),
                            r.string(rp.get("Path"), f"{rpath}.Path"))
        if result.Path and not result.Path.startswith("/"):
            r.fail(f"{rpath}.Path", f"{show(result.Path)} must be an absolute path")
        if result.Path in targets:
            r.fail(f"{rpath}.Path", f"{show(result.Path)} is also an input target")
        if result.Name and (not RESULT_NAME.match(result.Name) or result.Name in (".", "..")):
            r.fail(f"{rpath}.Name", "may hold only letters, digits, '_', '.' and '-', and be neither '.' nor '..'")
        if any(result.Name == other.Name or result.Path == other.Path for other in results):
            r.fail(rpath, "Name and Path must be unique")
        results.append(result)
    for i, module in enumerate([wasm.EntryModule] + wasm.ImportModules):
        mpath = f"{epath}.EntryModule" if i == 0 else f"{epath}.ImportModules[{i - 1}]"
        if module and not any(module == t_ or module.startswith(t_.rstrip("/") + "/") for t_ in targets if t_):
            r.fail(mpath, f"{show(module)} is not the Target of an input source (or a file under one)")
    publisher = PublisherType.LOCAL
    if t.get("Publisher") is not None:
        pub = r.mapping(t.get("Publisher"), f"{path}.Publisher", ("Type", "Params"), ("Type",))
        if "Type" in pub:
            publisher = PublisherType(r.choice(pub.get("Type"), f"{path}.Publisher.Type", tuple(PublisherType),
                                               "local"))
    env = r.string_map(t.get("Env"), f"{path}.Env")
    for name in env:
        if not ENV_NAME.match(name):
            r.fail(f"{path}.Env.{show(name, 40).strip(chr(39))}",
                   "names must be upper case: a letter, then A-Z, 0-9 or _")
        elif name.startswith("BACALHAU_"):
            r.fail(f"{path}.Env.{name}", "names starting with BACALHAU_ are set by the network")
    network = NetworkType.NONE
    if t.get("Network") is not None:
        net = r.mapping(t.get("Network"), f"{path}.Network", ("Type",))
        network = NetworkType(r.choice(net.get("Type"), f"{path}.Network.Type", tuple(NetworkType), "None"))
    return Task(Name=r.name(t.get("Name"), f"{path}.Name"), Engine=wasm, InputSources=sources, ResultPaths=results,
                Publisher=publisher, Env=env, Resources=_parse_resources(r, t.get("Resources"), f"{path}.Resources"),
                Timeouts=_parse_timeouts(r, t.get("Timeouts"), f"{path}.Timeouts"), Network=network)


def _parse_source(r: _Reader, item: Any, path: str) -> InputSource:
    s = r.mapping(item, path, ("Source", "Target", "Alias"), ("Source", "Target"))
    src = r.mapping(s.get("Source"), f"{path}.Source", ("Type", "Params"), ("Type",))
    raw_type = r.choice(src.get("Type"), f"{path}.Source.Type", tuple(SourceType) + ("localDirectory",),
                        "inline") if "Type" in src else "inline"
    stype = SourceType.LOCAL if raw_type == "localDirectory" else SourceType(raw_type)
    ppath = f"{path}.Source.Params"
    required = ("SourcePath",) if stype is SourceType.LOCAL else ("URL",)
    params = r.mapping(src.get("Params"), ppath, _SOURCE_PARAMS[stype], required) if "Type" in src else {}
    target = r.string(s.get("Target"), f"{path}.Target")
    if target and not target.startswith("/"):
        r.fail(f"{path}.Target", f"{show(target)} must be an absolute path")
    source = InputSource(stype, target, Alias=r.string(s.get("Alias"), f"{path}.Alias", limit=MAX_NAME))
    if stype is SourceType.INLINE:
        source.URL = r.string(params.get("URL"), f"{ppath}.URL", limit=MAX_BODY_BYTES)
        if source.URL:
            _check_inline(r, source.URL, f"{ppath}.URL")
    elif stype is SourceType.URL_DOWNLOAD:
        source.URL = r.string(params.get("URL"), f"{ppath}.URL", limit=MAX_URL)
        if source.URL and not re.match(r"^https?://[^/]+/.*[^/]$", source.URL):
            r.fail(f"{ppath}.URL", "must be an http(s) URL ending in a file name")
    else:
        source.SourcePath = r.string(params.get("SourcePath"), f"{ppath}.SourcePath")
        if "ReadWrite" in params and not isinstance(params["ReadWrite"], bool):
            r.fail(f"{ppath}.ReadWrite", "must be true or false")
        source.ReadWrite = params.get("ReadWrite") is True
    return source


def _check_inline(r: _Reader, url: str, path: str) -> None:
    try:
        media, payload = decode_data_url(url)
    except ValueError as exc:
        r.fail(path, str(exc))
        return
    if media in TARBALL_TYPES:
        problem = tarball_problem(payload)
        if problem:
            r.fail(path, problem)


def tarball_problem(payload: bytes) -> str:
    """Why an inline tarball could never be unpacked safely ("" if it can): a member that
    leaves its directory, a link out, a device; too many members or bytes; not a tarball."""
    members = size = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(payload), mode="r:*") as tar:
            for member in tar:  # each header is checked before the stream is read past its data
                members += 1
                size += member.size
                if members > MAX_TARBALL_MEMBERS:
                    return f"the tarball holds more than {MAX_TARBALL_MEMBERS} members"
                if size > MAX_TARBALL_BYTES:
                    return f"the tarball unpacks to more than {MAX_TARBALL_BYTES >> 20} MiB"
                if member.name.startswith("/"):  # the data filter would strip the '/': refused, not guessed
                    return f"the tarball member {show(member.name)} has an absolute path"
                try:
                    tarfile.data_filter(member, "/nonexistent-cod-input")
                except tarfile.FilterError as exc:
                    return f"the tarball member {show(member.name)} {_FILTER_REASONS.get(type(exc), 'is unsafe')}"
    except (tarfile.TarError, OSError, EOFError) as exc:
        return f"is not a readable tarball ({show(str(exc))})"
    return ""


_FILTER_REASONS: dict[type, str] = {
    tarfile.AbsolutePathError: "has an absolute path",
    tarfile.OutsideDestinationError: "would be written outside the input directory",
    tarfile.LinkOutsideDestinationError: "is a link leading outside the input directory",
    tarfile.AbsoluteLinkError: "is a link to an absolute path",
    tarfile.SpecialFileError: "is a device, pipe or other special file",
}


def _parse_resources(r: _Reader, value: Any, path: str) -> Resources:
    res = r.mapping(value, path, ("CPU", "Memory", "Disk", "GPU"))
    resources = Resources(*(r.string(res.get(k), f"{path}.{k}") for k in ("CPU", "Memory", "Disk", "GPU")))
    cpu = r.convert(resources.CPU, f"{path}.CPU", parse_cpu)
    if cpu is not None and cpu <= 0:
        r.fail(f"{path}.CPU", f"{show(resources.CPU)} must be more than 0 (leave it out for the default)")
    memory = r.convert(resources.Memory, f"{path}.Memory", parse_size)
    if memory is not None and memory <= 0:
        r.fail(f"{path}.Memory", f"{show(resources.Memory)} must be more than 0 bytes (leave it out for the default)")
    r.convert(resources.Disk, f"{path}.Disk", parse_size)
    if resources.GPU and resources.GPU not in ("0",):
        r.fail(f"{path}.GPU", "Wasm jobs cannot use GPUs")
    return resources


def _parse_timeouts(r: _Reader, value: Any, path: str) -> Timeouts:
    given = r.mapping(value, path, ("ExecutionTimeout", "QueueTimeout", "TotalTimeout"))
    timeouts = Timeouts(*(r.seconds(given.get(k), f"{path}.{k}")
                          for k in ("ExecutionTimeout", "QueueTimeout", "TotalTimeout")))
    if timeouts.TotalTimeout and timeouts.ExecutionTimeout + timeouts.QueueTimeout > timeouts.TotalTimeout:
        r.fail(path, "ExecutionTimeout + QueueTimeout must not exceed TotalTimeout")
    return timeouts


def load_job_text(text: str, source: str = "job spec") -> Job:
    """A :class:`Job` from YAML or JSON text (JSON is YAML)."""
    if len(text) > MAX_BODY_BYTES:
        raise SpecError([("", f"{source} is larger than {MAX_BODY_BYTES >> 20} MiB")])
    try:
        doc = load_document(text)
    except DocumentError as exc:
        raise SpecError([("", f"{source} {exc}")]) from None
    return parse_job(doc)
