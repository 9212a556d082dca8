"""Opening the SQLite databases of the network (the orchestrator's job store, each node's execution store)."""
from __future__ import annotations

import sqlite3
from pathlib import Path


def open_db(path: str | Path, schema: str) -> sqlite3.Connection:
    """A connection in autocommit mode that any thread may use (callers serialize with a lock),
    WAL-journaled (durable across process crashes with synchronous=NORMAL), with ``schema`` applied."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(schema)
    return db
