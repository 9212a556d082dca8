"""Publishing an execution's results.

``local`` packs the result paths plus ``stdout``, ``stderr`` and ``exitCode`` into
``<node data dir>/results/<execution id>.tar.gz``; the API serves that file and the
published result is ``{Type: urlDownload, Params: {URL: ...}}`` pointing at it.
``noop`` publishes nothing (the output heads still reach the orchestrator).
"""
from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any


def publish_local(exec_id: str, exec_dir: Path, results_dir: Path, url_base: str) -> dict[str, Any]:
    results_dir.mkdir(parents=True, exist_ok=True)
    archive = results_dir / f"{exec_id}.tar.gz"
    partial = archive.with_suffix(".part")
    with tarfile.open(partial, "w:gz") as tar:
        outputs = exec_dir / "outputs"
        if outputs.is_dir():
            for child in sorted(outputs.iterdir()):
                tar.add(child, arcname=child.name)
        for name in ("stdout", "stderr", "exitCode"):
            path = exec_dir / name
            if path.exists():
                tar.add(path, arcname=name)
    partial.replace(archive)
    return {"Type": "urlDownload", "Params": {"URL": f"{url_base}/{exec_id}.tar.gz"}}


def result_archive(results_dir: Path, exec_id: str) -> Path | None:
    if "/" in exec_id or exec_id.startswith("."):
        return None
    path = results_dir / f"{exec_id}.tar.gz"
    return path if path.is_file() else None
