"""Shared pieces of the API attack tests: a devstack per module, raw HTTP, the server's error log."""
from __future__ import annotations

import base64
import io
import logging
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from hypothesis import strategies as st

from cod_reference.models import wasm_job

PREFIX = "/api/v1/orchestrator"
# the smallest valid module: the jobs here are refused before any node could run them
MODULE = b"\0asm\1\0\0\0"


class ErrorLog(logging.Handler):
    """Records at ERROR and above, or carrying a traceback, from any logger (uvicorn's included)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(record)

    def lines(self) -> list[str]:
        return [f"{r.name}: {r.getMessage()}" for r in self.records]


@contextmanager
def no_server_errors() -> Iterator[ErrorLog]:
    """Fails when the server logs an error or a traceback meanwhile (an attack must be a clean 4xx)."""
    handler = ErrorLog()
    loggers = [logging.getLogger(), logging.getLogger("uvicorn")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    assert not handler.records, handler.lines()


def tarball(*members: tarfile.TarInfo, data: bytes = b"x") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for member in members:
            if member.isreg():
                member.size = len(data)
                tar.addfile(member, io.BytesIO(data))
            else:
                tar.addfile(member)
    return buf.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


def data_url(payload: bytes, media: str) -> str:
    return f"data:{media};base64,{base64.b64encode(payload).decode()}"


def refused(response: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    """The API's one-line error, checked: its status and that it names what was wrong."""
    assert response.status_code == status, response.text[:500]
    body = response.json()
    assert set(body) == {"Status", "Code", "Message"}, body
    assert "\n" not in body["Message"] and "Traceback" not in body["Message"]
    for word in words:
        assert word in body["Message"], body["Message"]
    return body


# ----------------------------------------------------------------------------- fuzzing the spec

# every field path of a full spec, and a few that are not fields
PATHS: list[tuple[Any, ...]] = [
    (), ("Name",), ("Namespace",), ("Type",), ("Priority",), ("Count",), ("Constraints",), ("Constraints", 0),
    ("Constraints", 0, "Values"), ("Labels",), ("Meta",), ("Tasks",), ("Tasks", 0), ("Tasks", 0, "Name"),
    ("Tasks", 0, "Engine"), ("Tasks", 0, "Engine", "Params"), ("Tasks", 0, "Engine", "Params", "Parameters"),
    ("Tasks", 0, "Engine", "Params", "EntryModule"), ("Tasks", 0, "InputSources"), ("Tasks", 0, "InputSources", 0),
    ("Tasks", 0, "InputSources", 0, "Source"), ("Tasks", 0, "InputSources", 0, "Source", "Params"),
    ("Tasks", 0, "InputSources", 0, "Source", "Params", "URL"), ("Tasks", 0, "InputSources", 0, "Target"),
    ("Tasks", 0, "ResultPaths"), ("Tasks", 0, "ResultPaths", 0, "Name"), ("Tasks", 0, "Env"),
    ("Tasks", 0, "Resources"), ("Tasks", 0, "Resources", "Memory"), ("Tasks", 0, "Resources", "CPU"),
    ("Tasks", 0, "Timeouts"), ("Tasks", 0, "Timeouts", "ExecutionTimeout"), ("Tasks", 0, "Publisher"),
    ("Tasks", 0, "Network"), ("Job",), ("Tasks", 0, "Unknown"),
]

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
                    st.sampled_from(["0", "-1", "1e400", "nan", "10Mi", "500m", "/", "..", "\0", "data:,x",
                                     "http://h/f", "batch", "ops", "local", "inline", "urlDownload"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=12)


def full_spec() -> dict[str, Any]:
    doc = wasm_job(MODULE, name="fuzz", env={"A": "1"}, args=["x"])
    doc.update(Constraints=[{"Key": "k", "Operator": "=", "Values": ["v"]}], Labels={"a": "b"}, Meta={"m": "n"})
    task = doc["Tasks"][0]
    task.update(ResultPaths=[{"Name": "out", "Path": "/out"}], Resources={"CPU": "1", "Memory": "1Mi"},
                Timeouts={"ExecutionTimeout": 5}, Publisher={"Type": "noop"}, Network={"Type": "None"})
    return doc


def put(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    *head, last = path
    target = doc
    for key in head:
        target = target[key]
    target[last] = value
    return doc
