"""SQLite: connections to one file, shared by the embedded store and the account store.

sqlite3 connections are not thread-safe, and the API server and the pipeline runner use threads, so
each thread gets its own connection (WAL lets readers and one writer work at once). Writes go through
`tx()`, which takes the write lock up front (BEGIN IMMEDIATE) so two writers never deadlock upgrading
a read lock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from heimdex.db.base import Database, Row, Session
from heimdex.private_files import private_dir, private_file


class SqliteConnections:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            # Created 0600 in a 0700 folder before SQLite opens it: its -wal and -shm files copy the
            # database's mode. The file holds password hashes and tokens.
            private_file(private_dir(self.path.parent) / self.path.name)
        self._local = threading.local()

    @property
    def db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA busy_timeout = 30000")
            self._local.db = db
        return db

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        """Close this thread's connection (the others close with their threads)."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


class _SqliteSession(Session):
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, query: Any, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self._db.execute(query, params)

    def many(self, query: str, rows: Sequence[Sequence[Any]]) -> None:
        self._db.executemany(query, rows)

    def one(self, query: Any, params: Sequence[Any] = ()) -> Row | None:
        # Stepped to the end: an UPDATE .. RETURNING left half-read would keep the statement open,
        # and SQLite refuses to COMMIT while a write statement is in progress.
        rows = self._db.execute(query, params).fetchall()
        return rows[0] if rows else None


class SqliteDatabase(Database):
    """One SQLite file: a connection per thread (SqliteConnections), vectors as float32 blobs."""

    unique_violation = sqlite3.IntegrityError

    def __init__(self, path: str | Path) -> None:
        self.connections = SqliteConnections(path)

    @contextmanager
    def tx(self) -> Iterator[Session]:
        with self.connections.tx() as db:
            yield _SqliteSession(db)

    @contextmanager
    def session(self) -> Iterator[Session]:
        yield _SqliteSession(self.connections.db)

    def close(self) -> None:
        self.connections.close()

    def now(self) -> str:
        return "((julianday('now') - 2440587.5) * 86400.0)"

    def in_list(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        return f"{column} IN ({','.join('?' * len(values))})", list(values)

    def joined(self, expression: str, separator: str, order: str = "") -> str:
        return f"group_concat({expression}, {separator})"

    def vector(self, values: Any) -> bytes:
        return np.ascontiguousarray(values, dtype=np.float32).tobytes()

    @staticmethod
    def matrix(rows: Sequence[Row], column: str, dim: int) -> np.ndarray:
        if not rows:
            return np.zeros((0, dim), dtype=np.float32)
        return np.frombuffer(b"".join(r[column] for r in rows), dtype=np.float32).reshape(len(rows), dim)
