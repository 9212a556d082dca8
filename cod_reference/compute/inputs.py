"""Preparing a job's input sources on a compute node, and finding its modules among them.

``inline`` data URLs are written under the execution's directory (a gzip tarball is
unpacked into a directory), ``local`` paths are mounted in place when the node's
allow-list permits them, and ``urlDownload`` files are fetched (with retries) and
mounted at ``<Target>/<file name>``, as Bacalhau does.
"""
from __future__ import annotations

import contextlib
import io
import os
import posixpath
import tarfile
import time
from pathlib import Path
from typing import Any

from ..executor.types import Mount
from ..models import AllowedPath, decode_data_url
from .paths import PathError, PinnedPath, resolve_allowed

TARBALL_TYPES = ("application/gzip", "application/x-gzip", "application/x-tar+gzip", "application/x-tar")
MAX_DOWNLOAD_BYTES = 512 * 2**20


class InputError(Exception):
    """An input that could not be prepared (the message names it)."""


def prepare_inputs(sources: list[dict[str, Any]], work_dir: Path, allowed: list[AllowedPath],
                   keep_open: contextlib.ExitStack) -> list[Mount]:
    """Mounts for the job's input sources; what must stay open while the guest runs (the
    pinned ``local`` paths) is pushed on ``keep_open``, which the caller closes afterwards."""
    mounts = []
    for i, spec in enumerate(sources):
        kind, params, target = spec["Source"]["Type"], spec["Source"].get("Params") or {}, spec["Target"]
        where = f"input {i} ({kind} at {target})"
        if kind == "inline":
            mounts.append(_inline(params["URL"], target, work_dir / f"input-{i}", where))
        elif kind in ("local", "localDirectory"):
            mounts.append(_local(params, target, allowed, where, keep_open))
        elif kind == "urlDownload":
            mounts.append(_download(params["URL"], target, work_dir / f"input-{i}", where))
        else:
            raise InputError(f"{where}: source type {kind!r} is not supported on this node")
    return mounts


def _inline(url: str, target: str, dest: Path, where: str) -> Mount:
    try:
        media, payload = decode_data_url(url)
    except ValueError as exc:
        raise InputError(f"{where}: the data URL {exc}") from None
    if media in TARBALL_TYPES:
        dest.mkdir(parents=True, exist_ok=True)
        try:
            with tarfile.open(fileobj=io.BytesIO(payload), mode="r:*") as tar:
                tar.extractall(dest, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise InputError(f"{where}: not a readable tarball ({exc})") from None
        return Mount(str(dest), target, readonly=True)
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / (posixpath.basename(target.rstrip("/")) or "data")
    path.write_bytes(payload)
    return Mount(str(path), target, readonly=True)


def _local(params: dict[str, Any], target: str, allowed: list[AllowedPath], where: str,
           keep_open: contextlib.ExitStack) -> Mount:
    """Resolved, checked against the allow-list, then pinned: the executor mounts the very
    file or directory that was checked, even if a path component is swapped for a link later."""
    source = str(params["SourcePath"])
    writable = bool(params.get("ReadWrite"))
    try:
        real, rule = resolve_allowed(source, allowed, writable)
        if not os.path.exists(real):
            raise PathError(f"{os.path.abspath(source)} does not exist on this node")
        pinned = PinnedPath.open(real, rule)
    except (PathError, OSError) as exc:
        detail = str(exc) if isinstance(exc, PathError) else f"{source}: {exc.strerror or exc}"
        raise InputError(f"{where}: {detail}") from None
    keep_open.callback(pinned.close)
    return Mount(pinned.host_path, target, readonly=not writable)


def _download(url: str, target: str, dest: Path, where: str) -> Mount:
    import httpx

    name = posixpath.basename(url.split("?", 1)[0]) or "download"
    dest.mkdir(parents=True, exist_ok=True)
    last = ""
    for attempt in range(3):
        if attempt:
            time.sleep(0.2 * attempt)
        try:
            with httpx.stream("GET", url, timeout=30, follow_redirects=True) as response:
                response.raise_for_status()
                size = 0
                with open(dest / name, "wb") as fh:
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        if size > MAX_DOWNLOAD_BYTES:
                            raise InputError(f"{where}: {url} is larger than {MAX_DOWNLOAD_BYTES >> 20} MiB")
                        fh.write(chunk)
            return Mount(str(dest), target, readonly=True)
        except httpx.HTTPError as exc:
            last = str(exc) or type(exc).__name__
    raise InputError(f"{where}: could not download {url}: {last}")


def read_module(path: str, mounts: list[Mount]) -> bytes:
    """The bytes of the module at guest path ``path``: a file, or a directory holding exactly one .wasm."""
    for mount in sorted(mounts, key=lambda m: -len(m.guest_path)):
        base = mount.guest_path.rstrip("/")
        if path == mount.guest_path or path.startswith(base + "/"):
            rest = path[len(base):].lstrip("/")
            host = Path(mount.host_path) / rest if rest else Path(mount.host_path)
            if host.is_dir():
                wasm = sorted(p for p in host.iterdir() if p.suffix == ".wasm")
                if len(wasm) != 1:
                    raise InputError(f"module {path}: the directory holds {len(wasm)} .wasm files, not exactly one")
                host = wasm[0]
            try:
                return host.read_bytes()
            except OSError as exc:
                raise InputError(f"module {path}: {exc.strerror or exc}") from None
    raise InputError(f"module {path} is not inside any input source")


def module_name(path: str) -> str:
    """The name other modules import ``path`` by: its file name without ``.wasm``."""
    base = posixpath.basename(path.rstrip("/"))
    return base[:-5] if base.endswith(".wasm") else base
