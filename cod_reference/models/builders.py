"""Spec documents built in code (``cod wasm run``, the demo, the tests)."""
from __future__ import annotations

from typing import Any

from .units import encode_data_url


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
