"""Opening the SQLite databases of the network (the orchestrator's job store, each node's execution store)."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from .errors import CodError


class UnusableDatabase(CodError, ValueError):
    """A database file that is damaged, not SQLite, or another program's (the message names the file)."""


def open_db(path: str | Path, schema: str) -> sqlite3.Connection:
    """A connection in autocommit mode that any thread may use (callers serialize with a lock),
    WAL-journaled (durable across process crashes with synchronous=NORMAL), with ``schema`` applied.
    Raises :class:`UnusableDatabase` when ``path`` cannot hold this schema."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    try:
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(schema)
        missing = _missing_columns(db, schema)
    except sqlite3.DatabaseError as exc:
        db.close()
        raise UnusableDatabase(f"{path} is damaged or not a cod database ({exc}): move it away, or start with "
                               "another --data-dir") from None
    if missing:
        db.close()
        raise UnusableDatabase(f"{path} belongs to another program or version (its tables lack {', '.join(missing)}): "
                               "move it away, or start with another --data-dir")
    return db


def _missing_columns(db: sqlite3.Connection, schema: str) -> list[str]:
    """``table.column`` of ``schema`` that ``db`` lacks (tables of the same name made by someone else)."""
    expected = sqlite3.connect(":memory:")
    try:
        expected.executescript(schema)
        missing = []
        for (table,) in expected.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall():
            want = [row[1] for row in expected.execute(f"PRAGMA table_info({table})")]
            have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            missing += [f"{table}.{column}" for column in want if column not in have]
        return missing
    finally:
        expected.close()
