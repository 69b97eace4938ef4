"""Accounts in the embedded SQLite database (own tables next to the main store's, created idempotently)."""

from __future__ import annotations

from pathlib import Path

from heimdex.accounts.sql import SqlAccountStore
from heimdex.db.sqlite import SqliteDatabase

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id               TEXT PRIMARY KEY,
    email            TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash    TEXT,
    is_admin         INTEGER NOT NULL DEFAULT 0,
    created_at       REAL NOT NULL,
    token_generation INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    digest     TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at REAL NOT NULL,
    family     TEXT NOT NULL DEFAULT '',
    used_at    REAL
);
CREATE INDEX IF NOT EXISTS refresh_tokens_by_user ON refresh_tokens (user_id);
CREATE TABLE IF NOT EXISTS api_tokens (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    digest       TEXT NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    created_at   REAL NOT NULL,
    last_used_at REAL
);
CREATE INDEX IF NOT EXISTS api_tokens_by_user ON api_tokens (user_id);
"""

# Columns added after the first release: databases created before get them on open (what
# migration 0004 does on PostgreSQL). Tokens issued before belong to a family of their own.
ADDED_COLUMNS = [
    ("users", "token_generation", "INTEGER NOT NULL DEFAULT 0", None),
    ("refresh_tokens", "family", "TEXT NOT NULL DEFAULT ''", "UPDATE refresh_tokens SET family = digest"),
    ("refresh_tokens", "used_at", "REAL", None),
]
INDEXES = "CREATE INDEX IF NOT EXISTS refresh_tokens_by_family ON refresh_tokens (family);"


class SqliteAccountStore(SqlAccountStore):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        super().__init__(SqliteDatabase(self.path))
        self.db.connections.db.executescript(SCHEMA)
        self._upgrade()

    def _upgrade(self) -> None:
        """Add the columns a database of an older version lacks (idempotent; under the write lock,
        so two processes opening the same old database do not both add them)."""
        with self.db.tx() as s:
            for table, column, definition, backfill in ADDED_COLUMNS:
                present = {row["name"] for row in s.all(f"PRAGMA table_info({table})")}
                if column not in present:
                    s.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
                    if backfill:
                        s.execute(backfill)
            s.execute(INDEXES)
