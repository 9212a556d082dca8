"""Host paths on a compute node that a guest may have touched: opened without following links.

A guest can create symbolic links inside any directory it may write (wasmtime refuses to
follow them out of the guest's own mounts, but the node is not wasmtime). So whatever the
node opens in a place a guest could have written goes through these helpers:

- :func:`plain_name` says whether a name from a job spec may become one path component;
- :func:`open_beneath` opens a path under a trusted root one component at a time, each
  with ``O_NOFOLLOW`` (a link anywhere on the way is refused, so swapping a directory for
  a link between a check and the open cannot redirect it);
- :func:`resolve_allowed` resolves a ``local`` input (symlinks and ``..``) and checks the
  result against the node's allow-list, resolved the same way;
- :class:`PinnedPath` keeps a checked file or directory open for the whole execution and
  names it ``/proc/self/fd/N``, so what the executor mounts is the checked object itself.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from ..errors import CodError
from ..executor.fs import open_nofollow, remove_tree, tree_size
from ..models import AllowedPath

__all__ = ["PathError", "PinnedPath", "open_beneath", "open_nofollow", "plain_name", "remove_tree", "resolve_allowed",
           "tree_size"]

MAX_NAME_BYTES = 255
_FD_DIR = "/proc/self/fd"
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class PathError(CodError, ValueError):
    """A path the node refuses to use (the message says which and why)."""


def plain_name(name: object, reserved: tuple[str, ...] = ()) -> str | None:
    """Why ``name`` cannot be one path component (``None`` when it can)."""
    if not isinstance(name, str) or not name:
        return "must be a non-empty name"
    if name in (".", ".."):
        return f"{name!r} is not a name"
    if any(c in name for c in "/\\\0"):
        return f"{name!r} must not contain '/', '\\' or NUL"
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        return f"is longer than {MAX_NAME_BYTES} bytes"
    if name in reserved:
        return f"{name!r} is reserved"
    return None


def open_beneath(root: str, relative: str, flags: int = os.O_RDONLY) -> int:
    """Open ``root/relative`` without following a symbolic link in ``relative``.

    ``root`` itself is trusted (the node made it, or the operator named it). Raises
    :class:`PathError` for a link or a ``..`` on the way; ``OSError`` for anything else.
    """
    parts = [p for p in relative.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise PathError(f"{relative!r} goes up with '..'")
    fd = os.open(root, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            try:
                child = open_nofollow(part, flags if last else os.O_RDONLY | _DIRECTORY, dir_fd=fd)
            except OSError as exc:
                if os.path.islink(os.path.join(root, *parts[:i + 1])):
                    raise PathError(f"{os.path.join(root, *parts[:i + 1])} is a symbolic link") from None
                raise exc
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise


def resolve_allowed(source: str, allowed: list[AllowedPath], writable: bool) -> tuple[str, AllowedPath]:
    """The real path of a ``local`` input and the allow-list entry that covers it.

    Both the source and every allow-list entry are resolved (symlinks and ``..``) before
    they are compared, so a link inside an allowed directory that points out of it is not
    allowed. A ``ReadWrite`` input must not itself be a symbolic link: it would be written
    back to wherever the link points. Raises :class:`PathError` naming the reason (the
    path may not exist: that is the caller's to say).
    """
    if not isinstance(source, str) or not source or "\0" in source:
        raise PathError(f"{source!r} is not a usable path")
    given = os.path.abspath(source)
    try:
        real = os.path.realpath(given)
        rule = next((a for a in allowed if AllowedPath(os.path.realpath(a.path), a.writable).covers(real)), None)
    except OSError as exc:  # the path changed while it was resolved (a link swapped in and out)
        raise PathError(f"{given} cannot be resolved: {exc.strerror}") from None
    if rule is None:
        shown = given if real == given else f"{given} (which resolves to {real})"
        raise PathError(f"{shown} is not in this node's allow-listed local paths")
    if writable and not rule.writable:
        raise PathError(f"{given} is allow-listed read-only on this node")
    if writable and os.path.islink(given):
        raise PathError(f"{given} is a symbolic link; a ReadWrite input must be the file or directory itself")
    return real, rule


@dataclass
class PinnedPath:
    """An allow-listed path opened once, checked, and kept open while a guest uses it."""

    fd: int
    real_path: str

    @classmethod
    def open(cls, real_path: str, rule: AllowedPath) -> PinnedPath:
        """Open ``real_path`` from its allow-list root without following any link on the way."""
        root = os.path.realpath(rule.path)
        relative = os.path.relpath(real_path, root)
        fd = open_beneath(root, "" if relative == "." else relative)
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
            os.close(fd)
            raise PathError(f"{real_path} is neither a regular file nor a directory")
        return cls(fd, real_path)

    @property
    def host_path(self) -> str:
        """A path that reaches the pinned object itself (its real path where /proc is missing)."""
        return f"{_FD_DIR}/{self.fd}" if os.path.isdir(_FD_DIR) else self.real_path

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
