"""Turning :class:`Mount` s into WASI preopened directories.

WASI can only preopen directories, so a mount is prepared in one of two ways:

- a host **directory** is preopened as is at its guest path, read-only or writable;
- host **files** are gathered by the guest directory they appear in: that directory
  becomes a private temporary directory holding only those files (hard links for
  read-only files where possible, copies otherwise), and files mounted writable are
  copied back to their host paths after the run.

A writable mount must be the file or directory itself, not a symbolic link to it (a
copy-back or the guest's writes would land wherever the link points); the one exception
is ``/proc/self/fd/N``, which a compute node uses to hand over a path it opened and
checked itself (:class:`cod_reference.compute.paths.PinnedPath`).

Guest paths are absolute POSIX paths. Guest programs built on wasi-libc (C, Rust, TinyGo)
resolve a relative path such as ``inputs/a.txt`` against ``/``, so ``/inputs`` serves
both spellings.
"""

from __future__ import annotations

import errno
import logging
import os
import posixpath
import shutil
import stat
import tempfile
from dataclasses import dataclass, field

import wasmtime

from ..errors import CodError
from .fs import open_nofollow, remove_tree
from .types import Mount

log = logging.getLogger("cod_reference.executor")

__all__ = ["MountError", "PreparedMounts", "prepare_mounts"]


_PINNED_PREFIX = "/proc/self/fd/"


class MountError(CodError, ValueError):
    """A mount cannot be made: the message names the mount and the reason."""


@dataclass
class _Preopen:
    host_dir: str
    guest_dir: str
    writable: bool


@dataclass
class PreparedMounts:
    """Preopens ready for a :class:`wasmtime.WasiConfig`, plus what to undo afterwards."""

    preopens: list[_Preopen] = field(default_factory=list)
    _temp_dirs: list[str] = field(default_factory=list)
    _copy_back: list[tuple[str, str]] = field(default_factory=list)  # (staged file, host file)

    def apply(self, wasi: wasmtime.WasiConfig) -> None:
        """Preopen every directory in ``wasi``."""
        for p in self.preopens:
            wasi.preopen_dir(p.host_dir, p.guest_dir, p.writable)

    def finish(self) -> None:
        """Copy writable file mounts back to the host and remove the staging directories.

        The guest may have replaced its staged copy with a link (to a host file it could then
        have copied into the mounted file): only a regular file is copied back, opened
        without following links, and it is written into the host file itself."""
        try:
            for staged, host in self._copy_back:
                _copy_back(staged, host)
        finally:
            self.cleanup()

    def cleanup(self) -> None:
        """Remove the staging directories (without copying anything back)."""
        for d in self._temp_dirs:
            try:
                remove_tree(d)
            except OSError as exc:
                log.warning("cannot remove the staging directory %s: %s", d, exc)
        self._temp_dirs.clear()
        self._copy_back.clear()


def normalize_guest_path(path: str) -> str:
    """An absolute, normalized guest path; raises :class:`MountError` when it is not usable."""
    if not isinstance(path, str) or not path:
        raise MountError("a mount needs a guest path")
    if "\0" in path:
        raise MountError(f"guest path {path!r} contains a NUL byte")
    if not path.startswith("/"):
        path = "/" + path
    norm = posixpath.normpath(path)
    if norm.startswith("//"):
        norm = "/" + norm.lstrip("/")
    return norm


def prepare_mounts(mounts: list[Mount], *, staging_root: str | None = None) -> PreparedMounts:
    """Check ``mounts`` and lay them out as preopened directories.

    Raises :class:`MountError` for a missing host path, two mounts at the same guest
    path, or a file mounted inside a guest directory that is itself a directory mount.
    The caller must call :meth:`PreparedMounts.finish` (or ``cleanup``) afterwards.
    """
    prepared = PreparedMounts()
    dirs: dict[str, Mount] = {}
    files: dict[str, list[tuple[str, Mount]]] = {}  # guest dir -> [(file name, mount)]
    seen: set[str] = set()
    for mount in mounts:
        guest = normalize_guest_path(mount.guest_path)
        if guest in seen:
            raise MountError(f"two mounts at guest path {guest}")
        seen.add(guest)
        host = os.path.abspath(mount.host_path)
        if not mount.readonly and _through_link(host):
            raise MountError(f"mount {guest}: host path {host} goes through a symbolic link; "
                             "a writable mount must be the file or directory itself")
        if os.path.isdir(host):
            dirs[guest] = mount
        elif os.path.isfile(host):
            if guest == "/":
                raise MountError(f"cannot mount the file {host} at the guest root /")
            parent, name = posixpath.split(guest)
            files.setdefault(parent, []).append((name, mount))
        elif os.path.exists(host):
            raise MountError(f"mount {guest}: host path {host} is neither a file nor a directory")
        else:
            raise MountError(f"mount {guest}: host path {host} does not exist")

    for guest, mount in dirs.items():
        prepared.preopens.append(_Preopen(os.path.abspath(mount.host_path), guest, not mount.readonly))

    try:
        for guest_dir, entries in files.items():
            if guest_dir in dirs:
                raise MountError(
                    f"cannot mount the file {posixpath.join(guest_dir, entries[0][0])}: "
                    f"{guest_dir} is already a directory mount")
            writable = any(not m.readonly for _, m in entries)
            staging = tempfile.mkdtemp(prefix="cod-mount-", dir=staging_root)
            prepared._temp_dirs.append(staging)
            for name, mount in entries:
                host = os.path.abspath(mount.host_path)  # link/copy follow a read-only link to its file
                staged = os.path.join(staging, name)
                if mount.readonly and not writable:
                    _link_or_copy(host, staged)   # the whole directory is read-only
                else:
                    shutil.copyfile(host, staged)  # never let the guest touch the original
                    if not mount.readonly:
                        prepared._copy_back.append((staged, host))
            prepared.preopens.append(_Preopen(staging, guest_dir, writable))
    except OSError as exc:
        prepared.cleanup()
        raise MountError(f"cannot stage file mounts: {exc}") from exc
    except MountError:
        prepared.cleanup()
        raise
    return prepared


def _copy_back(staged: str, host: str) -> None:
    try:
        src = open_nofollow(staged)
    except FileNotFoundError:
        return  # the guest removed it: the host file stays as it was
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise MountError(f"{posixpath.basename(staged)} was replaced by a symbolic link; not copied back") from None
        raise
    with open(src, "rb") as fin:
        if not stat.S_ISREG(os.fstat(fin.fileno()).st_mode):
            raise MountError(f"{posixpath.basename(staged)} is no longer a regular file; not copied back")
        pinned = host.startswith(_PINNED_PREFIX)  # the node's pin is a link to the checked file itself
        flags = os.O_WRONLY | os.O_TRUNC
        dst = os.open(host, flags) if pinned else open_nofollow(host, flags)
        with open(dst, "wb") as fout:
            shutil.copyfileobj(fin, fout)


def _through_link(host: str) -> bool:
    """Whether resolving ``host`` follows a symbolic link (a node's /proc/self/fd pin aside)."""
    if host.startswith(_PINNED_PREFIX) and host[len(_PINNED_PREFIX):].isdigit():
        return False
    return os.path.realpath(host) != host


def _link_or_copy(src: str, dst: str) -> None:
    """Hard-link the file ``src`` leads to (through a link, or a /proc/self/fd pin), else copy it."""
    try:
        parent = os.open(os.path.dirname(src), os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:  # a src_dir_fd makes os.link use linkat, which can follow the link (AT_SYMLINK_FOLLOW)
            os.link(os.path.basename(src), dst, src_dir_fd=parent, follow_symlinks=True)
        finally:
            os.close(parent)
    except OSError:
        shutil.copyfile(src, dst)
