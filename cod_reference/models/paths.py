"""Host paths a compute node lets jobs mount as ``local`` inputs (its allow-list)."""
from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass
class AllowedPath:
    """One allow-listed host path: ``PATH``, ``PATH:ro`` or ``PATH:rw``."""

    path: str
    writable: bool

    @classmethod
    def parse(cls, entry: str) -> AllowedPath:
        if entry.endswith((":rw", ":ro")):
            return cls(os.path.abspath(entry[:-3]), entry.endswith(":rw"))
        return cls(os.path.abspath(entry), False)

    def covers(self, path: str) -> bool:
        path = os.path.abspath(path)
        return path == self.path or path.startswith(self.path.rstrip("/") + "/")

    def __str__(self) -> str:
        return f"{self.path}:{'rw' if self.writable else 'ro'}"


def holds_path(local_paths: list[str], path: str) -> bool:
    """Whether a node advertising ``local_paths`` (its ``LocalPaths``) lets jobs mount ``path``."""
    return any(AllowedPath.parse(entry).covers(path) for entry in local_paths)
