"""Accounts in the PostgreSQL database of the server store (tables from migrations 0003 and 0004).

Same behaviour as accounts/sqlite.py, for many API processes and threads at once: a small
connection pool of its own, and every write in one transaction.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from heimdex.accounts.base import (
    AccountStore,
    ApiToken,
    RefreshUse,
    User,
    token_from_row,
    user_from_row,
)
from heimdex.db import new_id
from heimdex.db.postgres import open_pool, open_schema
from heimdex.errors import ConflictError, NotFoundError

BUMP_GENERATION = "UPDATE users SET token_generation = token_generation + 1 WHERE id = %s"


class PostgresAccountStore(AccountStore):
    def __init__(self, url: str, *, auto_migrate: bool = True, max_connections: int = 4) -> None:
        # The main store migrates the same database when the server starts; `heimdex users` opens
        # only this one, so it must be able to bring the schema up by itself too (idempotent).
        self.url = open_schema(url, auto_migrate)
        self._pool = open_pool(self.url, "heimdex-accounts", 1, max_connections)

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection]:
        with self._pool.connection() as conn, conn.transaction():
            yield conn

    def _one(self, query: str, params: tuple = ()) -> dict | None:
        with self._pool.connection() as conn:
            return conn.execute(query, params).fetchone()

    def _all(self, query: str, params: tuple = ()) -> list[dict]:
        with self._pool.connection() as conn:
            return conn.execute(query, params).fetchall()

    def close(self) -> None:
        self._pool.close()

    # ------------------------------------------------------------ users
    def create_user(self, email: str, password_hash: str | None, is_admin: bool = False) -> User:
        user_id = new_id()
        try:
            with self._tx() as conn:
                conn.execute(
                    "INSERT INTO users (id, email, password_hash, is_admin, created_at)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    (user_id, email, password_hash, is_admin, time.time()),
                )
        except psycopg.errors.UniqueViolation as exc:
            raise ConflictError(f"an account for {email} already exists") from exc
        return self.get_user(user_id)

    def get_user(self, user_id: str) -> User:
        row = self._one("SELECT * FROM users WHERE id = %s", (user_id,))
        if row is None:
            raise NotFoundError(f"no user {user_id!r}")
        return user_from_row(row)

    def find_user_by_email(self, email: str) -> User | None:
        row = self._one("SELECT * FROM users WHERE lower(email) = lower(%s)", (email,))
        return user_from_row(row) if row else None

    def list_users(self) -> list[User]:
        return [user_from_row(r) for r in self._all("SELECT * FROM users ORDER BY created_at, id")]

    def set_password(self, user_id: str, password_hash: str, *, revoke_tokens: bool = False) -> None:
        with self._tx() as conn:
            conn.execute("UPDATE users SET password_hash = %s WHERE id = %s", (password_hash, user_id))
            if revoke_tokens:
                self._revoke(conn, user_id, api_tokens=True)

    def delete_user(self, user_id: str) -> None:
        with self._tx() as conn:  # refresh and API tokens go with it (ON DELETE CASCADE)
            deleted = conn.execute("DELETE FROM users WHERE id = %s", (user_id,)).rowcount
        if not deleted:
            raise NotFoundError(f"no user {user_id!r}")

    def revoke_tokens(self, user_id: str, *, api_tokens: bool) -> tuple[int, int]:
        with self._tx() as conn:
            return self._revoke(conn, user_id, api_tokens=api_tokens)

    @staticmethod
    def _revoke(conn: psycopg.Connection, user_id: str, *, api_tokens: bool) -> tuple[int, int]:
        # The UPDATE locks the user's row until commit: token inserts wait on it (see _at_generation).
        conn.execute(BUMP_GENERATION, (user_id,))
        sessions = conn.execute(
            "SELECT count(DISTINCT family) AS n FROM refresh_tokens"
            " WHERE user_id = %s AND used_at IS NULL AND expires_at > %s",
            (user_id, time.time()),
        ).fetchone()["n"]
        conn.execute("DELETE FROM refresh_tokens WHERE user_id = %s", (user_id,))
        tokens = 0
        if api_tokens:
            tokens = conn.execute("DELETE FROM api_tokens WHERE user_id = %s", (user_id,)).rowcount
        return sessions, tokens

    @staticmethod
    def _at_generation(conn: psycopg.Connection, user_id: str, generation: int | None) -> bool:
        """Whether the user exists at `generation`, holding a share lock on the row until commit: a
        concurrent revocation (an UPDATE of the row) either finished before, and the new generation
        is seen here, or waits until this token is inserted, and then deletes it."""
        row = conn.execute(
            "SELECT token_generation FROM users WHERE id = %s FOR SHARE", (user_id,)
        ).fetchone()
        return row is not None and (generation is None or row["token_generation"] == generation)

    # ------------------------------------------------------------ refresh tokens
    def add_refresh_token(
        self, digest: str, user_id: str, expires_at: float, *, family: str, generation: int
    ) -> bool:
        with self._tx() as conn:
            # The user's row first: a revocation locks it before deleting tokens, so taking it
            # first keeps the two from waiting on each other's locks (a deadlock).
            if not self._at_generation(conn, user_id, generation):
                return False
            conn.execute("DELETE FROM refresh_tokens WHERE expires_at < %s", (time.time(),))  # keep it small
            conn.execute(
                "INSERT INTO refresh_tokens (digest, user_id, expires_at, family) VALUES (%s, %s, %s, %s)",
                (digest, user_id, expires_at, family),
            )
        return True

    def take_refresh_token(self, digest: str, now: float, grace_s: float = 0.0) -> RefreshUse | None:
        with self._tx() as conn:
            # The conditional UPDATE: of two requests racing with the same unused token, one wins.
            row = conn.execute(
                "UPDATE refresh_tokens SET used_at = %s"
                " WHERE digest = %s AND used_at IS NULL AND expires_at > %s RETURNING user_id, family",
                (now, digest, now),
            ).fetchone()
            if row is not None:
                return RefreshUse(row["user_id"], row["family"], "fresh")
            row = conn.execute(
                "SELECT user_id, family, expires_at, used_at FROM refresh_tokens WHERE digest = %s",
                (digest,),
            ).fetchone()
            if row is None or row["expires_at"] <= now or row["used_at"] is None:
                return None
            if now - row["used_at"] <= grace_s:
                return RefreshUse(row["user_id"], row["family"], "grace")
            # Reused: the user's row first, then their tokens, in the order revoke_tokens locks them.
            conn.execute(BUMP_GENERATION, (row["user_id"],))
            conn.execute("DELETE FROM refresh_tokens WHERE family = %s", (row["family"],))
            return RefreshUse(row["user_id"], row["family"], "reused")

    def revoke_refresh_token(self, digest: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "DELETE FROM refresh_tokens"
                " WHERE family IN (SELECT family FROM refresh_tokens WHERE digest = %s)",
                (digest,),
            )

    # ------------------------------------------------------------ personal API tokens
    def add_api_token(
        self, user_id: str, name: str, digest: str, prefix: str, generation: int | None = None
    ) -> ApiToken | None:
        with self._tx() as conn:
            if not self._at_generation(conn, user_id, generation):
                return None
            row = conn.execute(
                "INSERT INTO api_tokens (id, user_id, name, digest, prefix, created_at)"
                " VALUES (%s, %s, %s, %s, %s, %s) RETURNING *",
                (new_id(), user_id, name, digest, prefix, time.time()),
            ).fetchone()
        return token_from_row(row)

    def find_api_token(self, digest: str) -> ApiToken | None:
        row = self._one("SELECT * FROM api_tokens WHERE digest = %s", (digest,))
        if row is None:
            return None
        now = time.time()
        if row["last_used_at"] is None or now - row["last_used_at"] > 60:  # no write on every request
            with self._tx() as conn:
                conn.execute("UPDATE api_tokens SET last_used_at = %s WHERE id = %s", (now, row["id"]))
        return token_from_row(row)

    def list_api_tokens(self, user_id: str) -> list[ApiToken]:
        rows = self._all("SELECT * FROM api_tokens WHERE user_id = %s ORDER BY created_at, id", (user_id,))
        return [token_from_row(r) for r in rows]

    def delete_api_token(self, user_id: str, token_id: str) -> None:
        with self._tx() as conn:
            deleted = conn.execute(
                "DELETE FROM api_tokens WHERE id = %s AND user_id = %s", (token_id, user_id)
            ).rowcount
        if not deleted:
            raise NotFoundError(f"no token {token_id!r}")
