"""Host file operations on places a guest could write: never through a symbolic link.

A guest can make links in any directory it may write (wasmtime does not follow them out
of its mounts, but the host is not wasmtime), and it can nest directories deeper than a
path can name. These helpers work from file descriptors so that neither matters; the
compute node uses them too (:mod:`cod_reference.compute.paths`).
"""
from __future__ import annotations

import os
import stat

__all__ = ["open_nofollow", "remove_tree", "tree_size"]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


def open_nofollow(path: str | os.PathLike[str], flags: int = os.O_RDONLY, mode: int = 0o644,
                  dir_fd: int | None = None) -> int:
    """``os.open`` that fails (``ELOOP``) when the last component is a symbolic link."""
    return os.open(path, flags | _NOFOLLOW, mode, dir_fd=dir_fd)


def remove_tree(path: str | os.PathLike[str]) -> None:
    """``rm -rf path`` that never follows a link and needs neither recursion nor long paths,
    however deep a guest nested its directories (``shutil.rmtree`` recurses once per level)."""
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            os.unlink(path)
            return
    except FileNotFoundError:
        return
    fd = open_nofollow(path, os.O_RDONLY | _DIRECTORY)
    names: list[str] = []   # the way down from ``path``, one name per level
    try:
        while True:
            below = None
            with os.scandir(fd) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        below = entry.name
                        break
                    os.unlink(entry.name, dir_fd=fd)
            if below is not None:
                child = open_nofollow(below, os.O_RDONLY | _DIRECTORY, dir_fd=fd)
                os.close(fd)
                fd = child
                names.append(below)
                continue
            if not names:
                break
            parent = open_nofollow("..", os.O_RDONLY | _DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = parent
            os.rmdir(names.pop(), dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(path)


def tree_size(path: str | os.PathLike[str]) -> int:
    """Bytes taken by the files under ``path`` (the root may be a link, say a /proc/self/fd pin;
    links below it are not followed; no recursion)."""
    total = 0
    try:
        root = os.stat(path)
    except OSError:
        return 0
    if not stat.S_ISDIR(root.st_mode):
        return root.st_size
    stack = [os.fspath(path)]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as entries:
                for entry in entries:
                    st = entry.stat(follow_symlinks=False)
                    total += st.st_size
                    if stat.S_ISDIR(st.st_mode):
                        stack.append(entry.path)
        except OSError:
            continue  # gone meanwhile, or a path too long to name: what can be seen is counted
    return total
