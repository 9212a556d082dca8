"""Publishing an execution's results.

``local`` packs the result paths plus ``stdout``, ``stderr`` and ``exitCode`` into
``<node data dir>/results/<execution id>.tar.gz``; the API serves that file and the
published result is ``{Type: urlDownload, Params: {URL: ...}}`` pointing at it.
``noop`` publishes nothing (the output heads still reach the orchestrator).

The result paths were written by the guest, so they are read as an attacker's files:
walked from directory file descriptors without following any link (no path is ever
re-resolved, however deep), regular files opened with ``O_NOFOLLOW`` and checked to be
what was listed, symbolic links kept only when they stay inside their result path,
anything else (FIFOs, sockets, devices), whatever lies deeper than :data:`MAX_DEPTH`
and whatever comes after the first :data:`MAX_ENTRIES` entries left out. What was left
out is counted in the published result.
"""
from __future__ import annotations

import logging
import os
import posixpath
import stat
import tarfile
from pathlib import Path
from typing import Any

from ..executor.fs import open_nofollow

log = logging.getLogger(__name__)

MAX_DEPTH = 64
MAX_ENTRIES = 100_000
NODE_FILES = ("stdout", "stderr", "exitCode")
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)


def publish_local(exec_id: str, exec_dir: Path, results_dir: Path, url_base: str) -> dict[str, Any]:
    results_dir.mkdir(parents=True, exist_ok=True)
    archive = results_dir / f"{exec_id}.tar.gz"
    partial = archive.with_suffix(".part")
    skipped = 0
    with tarfile.open(partial, "w:gz") as tar:
        for name in NODE_FILES:  # first: the entry cap must not leave them out
            if (exec_dir / name).exists():
                skipped += _add_tree(tar, str(exec_dir), name, depth=MAX_DEPTH)
        outputs = exec_dir / "outputs"
        if outputs.is_dir():
            for name in sorted(os.listdir(outputs)):
                skipped += _add_tree(tar, str(outputs), name)
    partial.replace(archive)
    if skipped:
        log.warning("execution %s: %d entries of its results were left out (links out, special files, too deep)",
                    exec_id, skipped)
    published: dict[str, Any] = {"Type": "urlDownload", "Params": {"URL": f"{url_base}/{exec_id}.tar.gz"}}
    if skipped:
        published["Params"]["Skipped"] = skipped
    return published


def _add_tree(tar: tarfile.TarFile, parent: str, name: str, depth: int = 0) -> int:
    """Add ``parent/name`` (a result path, or a node file) and what it holds; returns how
    many entries were left out."""
    parent_fd = os.open(parent, _DIR_FLAGS)
    try:
        return _add_entry(tar, parent_fd, name, name, name, depth)
    finally:
        os.close(parent_fd)


def _add_entry(tar: tarfile.TarFile, dir_fd: int, name: str, arcname: str, top: str, depth: int) -> int:
    if len(tar.members) >= MAX_ENTRIES:  # type: ignore[attr-defined]  # the entries added so far
        return 1
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return 1
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(name, dir_fd=dir_fd)
        if not _link_stays_inside(arcname, target, top):
            return 1
        info = tarfile.TarInfo(arcname)
        info.type, info.linkname, info.mode, info.mtime = tarfile.SYMTYPE, target, 0o777, int(st.st_mtime)
        tar.addfile(info)
        return 0
    if stat.S_ISREG(st.st_mode):
        try:
            fd = open_nofollow(name, dir_fd=dir_fd)
        except OSError:
            return 1
        with open(fd, "rb") as fh:
            now = os.fstat(fh.fileno())
            if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) or not stat.S_ISREG(now.st_mode):
                return 1  # swapped since it was listed
            info = tarfile.TarInfo(arcname)
            info.size, info.mode, info.mtime = now.st_size, now.st_mode & 0o777, int(now.st_mtime)
            tar.addfile(info, fh)
        return 0
    if not stat.S_ISDIR(st.st_mode) or depth >= MAX_DEPTH:
        return 1
    try:
        fd = open_nofollow(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError:
        return 1
    try:
        info = tarfile.TarInfo(arcname)
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, st.st_mode & 0o777, int(st.st_mtime)
        tar.addfile(info)
        skipped = 0
        for child in sorted(os.listdir(fd)):
            skipped += _add_entry(tar, fd, child, f"{arcname}/{child}", top, depth + 1)
        return skipped
    finally:
        os.close(fd)


def _link_stays_inside(arcname: str, target: str, top: str) -> bool:
    """Whether a link at ``arcname`` to ``target`` resolves inside the result path ``top``
    (judged on the names alone: every link on the way is checked the same way)."""
    if not target or target.startswith("/"):
        return False
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(arcname), target))
    return resolved == top or resolved.startswith(top + "/")


def result_archive(results_dir: Path, exec_id: str) -> Path | None:
    if "/" in exec_id or exec_id.startswith("."):
        return None
    path = results_dir / f"{exec_id}.tar.gz"
    return path if path.is_file() else None
