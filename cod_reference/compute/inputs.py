"""Preparing a job's input sources on a compute node, and finding its modules among them.

``inline`` data URLs are written under the execution's directory (a gzip tarball is
unpacked into a directory), ``local`` paths are mounted in place when the node's
allow-list permits them, and ``urlDownload`` files are fetched (with retries, within the
execution's deadline; see :mod:`.download`) and mounted at ``<Target>/<file name>``, as
Bacalhau does.
"""
from __future__ import annotations

import contextlib
import io
import os
import posixpath
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CodError
from ..executor.fs import open_nofollow
from ..executor.types import Mount
from ..models import AllowedPath, InputSource, SourceType, decode_data_url
from .download import Cancelled, Deadline, DownloadError, DownloadTimeout, UrlGuard, download
from .paths import PathError, PinnedPath, open_beneath, plain_name, resolve_allowed
from .policy import NodePolicy

TARBALL_TYPES = ("application/gzip", "application/x-gzip", "application/x-tar+gzip", "application/x-tar")
MAX_MODULE_BYTES = 256 * 2**20
#: inputs and result paths of one execution: each is a directory the guest holds open (a
#: local input one more, pinned), so a thousand of them in each of many executions would
#: run the node out of file descriptors
MAX_MOUNTS = 64
DOWNLOAD_ATTEMPTS = 3

__all__ = ["Cancelled", "InputContext", "InputError", "InputTimeout", "module_name", "prepare_inputs", "read_module"]


class InputError(CodError):
    """An input that could not be prepared (the message names it)."""


class InputTimeout(InputError):
    """The execution's deadline passed while its inputs were being prepared."""


@dataclass
class InputContext:
    """What preparing one execution's inputs needs from its node."""

    allowed: list[AllowedPath]
    guard: UrlGuard
    policy: NodePolicy
    deadline: Deadline
    #: what must stay open while the guest runs (the pinned ``local`` paths); the caller closes it
    keep_open: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)


def prepare_inputs(sources: list[InputSource], work_dir: Path, ctx: InputContext) -> list[Mount]:
    """Mounts for the job's input sources; raises InputError (InputTimeout) or Cancelled."""
    mounts = []
    for i, source in enumerate(sources):
        kind, target = source.Type, source.Target
        where = f"input {i} ({kind.value} at {target})"
        if kind is SourceType.INLINE:
            mounts.append(_inline(source.URL, target, work_dir / f"input-{i}", where))
        elif kind is SourceType.LOCAL:
            mounts.append(_local(source, target, ctx.allowed, where, ctx.keep_open))
        elif kind is SourceType.URL_DOWNLOAD:
            mounts.append(_download(source.URL, target, work_dir / f"input-{i}", where, ctx))
        else:
            raise InputError(f"{where}: source type {kind.value!r} is not supported on this node")
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
    name = posixpath.basename(target.rstrip("/"))
    path = dest / ("data" if plain_name(name) else name)
    path.write_bytes(payload)
    return Mount(str(path), target, readonly=True)


def _local(spec: InputSource, target: str, allowed: list[AllowedPath], where: str,
           keep_open: contextlib.ExitStack) -> Mount:
    """Resolved, checked against the allow-list, then pinned: the executor mounts the very
    file or directory that was checked, even if a path component is swapped for a link later."""
    source = spec.SourcePath
    writable = spec.ReadWrite
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


def _download(url: str, target: str, dest: Path, where: str, ctx: InputContext) -> Mount:
    dest.mkdir(parents=True, exist_ok=True)
    for attempt in range(DOWNLOAD_ATTEMPTS):
        try:
            download(url, dest, ctx.guard, ctx.deadline, max_bytes=ctx.policy.max_download_bytes,
                     time_limit_s=ctx.policy.download_timeout_s)
            return Mount(str(dest), target, readonly=True)
        except DownloadTimeout as exc:
            raise InputTimeout(f"{where}: {exc}") from None
        except DownloadError as exc:
            if exc.final or attempt == DOWNLOAD_ATTEMPTS - 1:
                raise InputError(f"{where}: could not download {exc}") from None
            if ctx.deadline.cancel.wait(0.2 * (attempt + 1)):
                raise Cancelled() from None
    raise AssertionError("unreachable")


def read_module(path: str, mounts: list[Mount]) -> bytes:
    """The bytes of the module at guest path ``path``: a file, or a directory holding exactly one .wasm.

    Read from under its mount without following links (a mount may be writable by jobs)."""
    for mount in sorted(mounts, key=lambda m: -len(m.guest_path)):
        base = mount.guest_path.rstrip("/")
        if path == mount.guest_path or path.startswith(base + "/"):
            rest = path[len(base):].lstrip("/")
            try:
                return _read_module_file(mount.host_path, rest, path)
            except PathError as exc:
                raise InputError(f"module {path}: {exc}") from None
            except OSError as exc:
                raise InputError(f"module {path}: {exc.strerror or exc}") from None
    raise InputError(f"module {path} is not inside any input source")


def _read_module_file(host_path: str, rest: str, path: str) -> bytes:
    if os.path.isfile(host_path):  # a file mount (or an inline file)
        if rest:
            raise InputError(f"module {path} is not inside any input source")
        fd = os.open(host_path, os.O_RDONLY)
    else:
        fd = open_beneath(host_path, rest)
    try:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            wasm = sorted(n for n in os.listdir(fd) if n.endswith(".wasm"))
            if len(wasm) != 1:
                raise InputError(f"module {path}: the directory holds {len(wasm)} .wasm files, not exactly one")
            inner = open_nofollow(wasm[0], dir_fd=fd)
            os.close(fd)
            fd = inner
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"module {path} is not a regular file")
        if st.st_size > MAX_MODULE_BYTES:
            raise InputError(f"module {path} is larger than {MAX_MODULE_BYTES >> 20} MiB")
        with open(fd, "rb", closefd=False) as fh:
            return fh.read()
    finally:
        os.close(fd)


def module_name(path: str) -> str:
    """The name other modules import ``path`` by: its file name without ``.wasm``."""
    base = posixpath.basename(path.rstrip("/"))
    return base[:-5] if base.endswith(".wasm") else base
