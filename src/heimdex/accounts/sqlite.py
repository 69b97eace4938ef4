"""Accounts in the embedded SQLite database (own tables next to the main store's, created idempotently)."""

from __future__ import annotations

import sqlite3
import time
from contextlib import AbstractContextManager
from pathlib import Path

from heimdex.accounts.base import (
    AccountStore,
    ApiToken,
    RefreshUse,
    User,
    token_from_row,
    user_from_row,
)
from heimdex.db import new_id
from heimdex.db.sqlite import SqliteConnections
from heimdex.errors import ConflictError, NotFoundError

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
BUMP_GENERATION = "UPDATE users SET token_generation = token_generation + 1 WHERE id = ?"
INDEXES = "CREATE INDEX IF NOT EXISTS refresh_tokens_by_family ON refresh_tokens (family);"


class SqliteAccountStore(AccountStore):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._connections = SqliteConnections(self.path)
        self._db.executescript(SCHEMA)
        self._upgrade()

    def _upgrade(self) -> None:
        """Add the columns a database of an older version lacks (idempotent; under the write lock,
        so two processes opening the same old database do not both add them)."""
        with self._tx() as db:
            for table, column, definition, backfill in ADDED_COLUMNS:
                present = {row["name"] for row in db.execute(f"PRAGMA table_info({table})")}
                if column not in present:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
                    if backfill:
                        db.execute(backfill)
            db.execute(INDEXES)

    @property
    def _db(self) -> sqlite3.Connection:
        return self._connections.db

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._connections.tx()

    def close(self) -> None:
        self._connections.close()

    # ------------------------------------------------------------ users
    def create_user(self, email: str, password_hash: str | None, is_admin: bool = False) -> User:
        user_id = new_id()
        try:
            with self._tx() as db:
                db.execute(
                    "INSERT INTO users (id, email, password_hash, is_admin, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (user_id, email, password_hash, int(is_admin), time.time()),
                )
        except sqlite3.IntegrityError as exc:
            raise ConflictError(f"an account for {email} already exists") from exc
        return self.get_user(user_id)

    def get_user(self, user_id: str) -> User:
        row = self._db.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no user {user_id!r}")
        return user_from_row(row)

    def find_user_by_email(self, email: str) -> User | None:
        row = self._db.execute("SELECT * FROM users WHERE email = ?", (email,)).fetchone()
        return user_from_row(row) if row else None

    def list_users(self) -> list[User]:
        rows = self._db.execute("SELECT * FROM users ORDER BY created_at").fetchall()
        return [user_from_row(r) for r in rows]

    def set_password(self, user_id: str, password_hash: str, *, revoke_tokens: bool = False) -> None:
        with self._tx() as db:
            db.execute("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))
            if revoke_tokens:
                self._revoke(db, user_id, api_tokens=True)

    def delete_user(self, user_id: str) -> None:
        with self._tx() as db:  # refresh and API tokens go with it (ON DELETE CASCADE)
            deleted = db.execute("DELETE FROM users WHERE id = ?", (user_id,)).rowcount
        if not deleted:
            raise NotFoundError(f"no user {user_id!r}")

    def revoke_tokens(self, user_id: str, *, api_tokens: bool) -> tuple[int, int]:
        with self._tx() as db:
            return self._revoke(db, user_id, api_tokens=api_tokens)

    @staticmethod
    def _revoke(db: sqlite3.Connection, user_id: str, *, api_tokens: bool) -> tuple[int, int]:
        db.execute(BUMP_GENERATION, (user_id,))
        sessions = db.execute(
            "SELECT count(DISTINCT family) FROM refresh_tokens"
            " WHERE user_id = ? AND used_at IS NULL AND expires_at > ?",
            (user_id, time.time()),
        ).fetchone()[0]
        db.execute("DELETE FROM refresh_tokens WHERE user_id = ?", (user_id,))
        tokens = (
            db.execute("DELETE FROM api_tokens WHERE user_id = ?", (user_id,)).rowcount if api_tokens else 0
        )
        return sessions, tokens

    @staticmethod
    def _at_generation(db: sqlite3.Connection, user_id: str, generation: int | None) -> bool:
        row = db.execute("SELECT token_generation FROM users WHERE id = ?", (user_id,)).fetchone()
        return row is not None and (generation is None or row["token_generation"] == generation)

    # ------------------------------------------------------------ refresh tokens
    def add_refresh_token(
        self, digest: str, user_id: str, expires_at: float, *, family: str, generation: int
    ) -> bool:
        with self._tx() as db:  # BEGIN IMMEDIATE: no revocation can run between check and insert
            db.execute("DELETE FROM refresh_tokens WHERE expires_at < ?", (time.time(),))  # keep it small
            if not self._at_generation(db, user_id, generation):
                return False
            db.execute(
                "INSERT INTO refresh_tokens (digest, user_id, expires_at, family) VALUES (?, ?, ?, ?)",
                (digest, user_id, expires_at, family),
            )
        return True

    def take_refresh_token(self, digest: str, now: float, grace_s: float = 0.0) -> RefreshUse | None:
        with self._tx() as db:
            row = db.execute(
                "SELECT user_id, family, expires_at, used_at FROM refresh_tokens WHERE digest = ?", (digest,)
            ).fetchone()
            if row is None or row["expires_at"] <= now:
                return None
            if row["used_at"] is None:
                db.execute("UPDATE refresh_tokens SET used_at = ? WHERE digest = ?", (now, digest))
                return RefreshUse(row["user_id"], row["family"], "fresh")
            if now - row["used_at"] <= grace_s:
                return RefreshUse(row["user_id"], row["family"], "grace")
            db.execute("DELETE FROM refresh_tokens WHERE family = ?", (row["family"],))
            db.execute(BUMP_GENERATION, (row["user_id"],))
            return RefreshUse(row["user_id"], row["family"], "reused")

    def revoke_refresh_token(self, digest: str) -> None:
        with self._tx() as db:
            db.execute(
                "DELETE FROM refresh_tokens"
                " WHERE family IN (SELECT family FROM refresh_tokens WHERE digest = ?)",
                (digest,),
            )

    # ------------------------------------------------------------ personal API tokens
    def add_api_token(
        self, user_id: str, name: str, digest: str, prefix: str, generation: int | None = None
    ) -> ApiToken | None:
        token_id = new_id()
        with self._tx() as db:
            if not self._at_generation(db, user_id, generation):
                return None
            db.execute(
                "INSERT INTO api_tokens (id, user_id, name, digest, prefix, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (token_id, user_id, name, digest, prefix, time.time()),
            )
            # read in the same transaction: a revocation right after the commit may delete it
            row = db.execute("SELECT * FROM api_tokens WHERE id = ?", (token_id,)).fetchone()
        return token_from_row(row)

    def find_api_token(self, digest: str) -> ApiToken | None:
        row = self._db.execute("SELECT * FROM api_tokens WHERE digest = ?", (digest,)).fetchone()
        if row is None:
            return None
        now = time.time()
        if row["last_used_at"] is None or now - row["last_used_at"] > 60:  # no write on every request
            with self._tx() as db:
                db.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ?", (now, row["id"]))
        return token_from_row(row)

    def list_api_tokens(self, user_id: str) -> list[ApiToken]:
        rows = self._db.execute("SELECT * FROM api_tokens WHERE user_id = ? ORDER BY created_at", (user_id,))
        return [token_from_row(r) for r in rows.fetchall()]

    def delete_api_token(self, user_id: str, token_id: str) -> None:
        with self._tx() as db:
            deleted = db.execute(
                "DELETE FROM api_tokens WHERE id = ? AND user_id = ?", (token_id, user_id)
            ).rowcount
        if not deleted:
            raise NotFoundError(f"no token {token_id!r}")
