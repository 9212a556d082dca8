"""Shared pieces of the attack tests: the attacker module, the host's files, what must hold after an attack."""
from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from cod_reference.client import APIError, Client
from cod_reference.models import wasm_job

HERE = Path(__file__).resolve().parent
ATTACKER = (HERE / "attacker.wasm").read_bytes()   # built from attacker.c next to it (its steps are listed there)
UP = "../" * 40                                     # enough to reach / from anywhere in a data dir


def attack(*steps: str, **kw: Any) -> dict[str, Any]:
    """A job running the attacker with ``steps`` (one string per step, words split on spaces)."""
    args: list[str] = []
    for step in steps:
        args += (["+"] if args else []) + step.split(" ")
    return wasm_job(ATTACKER, args=args, **kw)


@dataclass
class Host:
    root: Path
    secret: Path
    victim: Path
    ro: Path
    rw: Path
    secret_text: str
    _before: dict[Path, tuple[bytes, int]] = field(default_factory=dict)

    def remember(self) -> None:
        self._before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (self.secret, self.victim)}

    def assert_untouched(self) -> None:
        for path, (data, mtime) in self._before.items():
            assert path.read_bytes() == data and path.stat().st_mtime_ns == mtime, f"{path} was changed"


def submit_or_refused(client: Client, doc: dict[str, Any]) -> dict[str, Any] | None:
    """The finished job, or None when the API refused the spec (a 400 is a fine defence too)."""
    try:
        job_id = client.submit(doc)["JobID"]
    except APIError as exc:
        assert exc.status == 400, exc
        return None
    return client.wait(job_id, timeout=30, interval=0.05)


def everything_seen(client: Client, job: dict[str, Any]) -> str:
    """All a submitter can get back for a job: state, outputs, logs, published files, as text."""
    parts = [str(job["State"])]
    for ex in client.executions(job["ID"]):
        parts.append(str(ex))
        try:
            parts.append(str(client.logs(job["ID"], ex["ID"])))
        except APIError:
            pass
    for member in result_members(client, job):
        parts.append(f"{member.name} -> {member.linkname}")
        parts.append(member.data.decode("utf-8", "replace"))
    return "\n".join(parts)


@dataclass
class Member:
    name: str
    type: bytes
    linkname: str
    data: bytes


def result_members(client: Client, job: dict[str, Any]) -> list[Member]:
    members = []
    for item in client.results(job["ID"]):
        raw = httpx.get(item["Params"]["URL"], timeout=30).content
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:
            for info in tar.getmembers():
                fh = tar.extractfile(info) if info.isreg() else None
                members.append(Member(info.name, info.type, info.linkname, fh.read() if fh else b""))
    return members


def assert_node_alive(client: Client) -> None:
    """Every node is connected and still runs a job."""
    assert all(n["Connection"] == "CONNECTED" for n in client.nodes())
    job_id = client.submit(attack("write /tmp-nothing x", Publisher={"Type": "noop"}))["JobID"]
    job = client.wait(job_id, timeout=30, interval=0.05)
    assert job["State"]["StateType"] == "Completed", job["State"]


def wait(predicate: Callable[[], Any], what: str, timeout: float = 10) -> None:
    """Wait until ``predicate()`` is true (polling), or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
