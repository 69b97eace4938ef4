"""Connections to one SQLite file, shared by the embedded store and the account store.

sqlite3 connections are not thread-safe, and the API server and the pipeline runner use threads, so
each thread gets its own connection (WAL lets readers and one writer work at once). Writes go through
`tx()`, which takes the write lock up front (BEGIN IMMEDIATE) so two writers never deadlock upgrading
a read lock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
