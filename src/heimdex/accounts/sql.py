"""The account store for both databases: every query written once over a `Database` (db/base.py).

Every write is one transaction. Races are settled the same way on both: a conditional UPDATE takes
a refresh token (of two requests with the same token, one wins), and token inserts first read the
user's row, which PostgreSQL share-locks (`FOR SHARE`) and SQLite's write transaction already holds.
"""

from __future__ import annotations

import time

from heimdex.accounts.base import (
    AccountStore,
    ApiToken,
    RefreshUse,
    User,
    token_from_row,
    user_from_row,
)
from heimdex.db import new_id
from heimdex.db.base import Database, Session
from heimdex.errors import ConflictError, NotFoundError

BUMP_GENERATION = "UPDATE users SET token_generation = token_generation + 1 WHERE id = ?"


class SqlAccountStore(AccountStore):
    _for_share = ""  # PostgreSQL: " FOR SHARE" (SQLite's write transaction excludes other writers)

    def __init__(self, db: Database) -> None:
        self.db = db

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------ users
    def create_user(self, email: str, password_hash: str | None, is_admin: bool = False) -> User:
        user_id = new_id()
        try:
            with self.db.tx() as s:
                s.execute(
                    "INSERT INTO users (id, email, password_hash, is_admin, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (user_id, email, password_hash, bool(is_admin), time.time()),
                )
        except self.db.unique_violation as exc:
            raise ConflictError(f"an account for {email} already exists") from exc
        return self.get_user(user_id)

    def get_user(self, user_id: str) -> User:
        row = self.db.one("SELECT * FROM users WHERE id = ?", (user_id,))
        if row is None:
            raise NotFoundError(f"no user {user_id!r}")
        return user_from_row(row)

    def find_user_by_email(self, email: str) -> User | None:
        row = self.db.one("SELECT * FROM users WHERE lower(email) = lower(?)", (email,))
        return user_from_row(row) if row else None

    def list_users(self) -> list[User]:
        rows = self.db.all(f"SELECT * FROM users ORDER BY created_at, id{self.db.collate_c}")
        return [user_from_row(r) for r in rows]

    def set_password(self, user_id: str, password_hash: str, *, revoke_tokens: bool = False) -> None:
        with self.db.tx() as s:
            s.execute("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))
            if revoke_tokens:
                self._revoke(s, user_id, api_tokens=True)

    def delete_user(self, user_id: str) -> None:
        with self.db.tx() as s:  # refresh and API tokens go with it (ON DELETE CASCADE)
            deleted = s.execute("DELETE FROM users WHERE id = ?", (user_id,)).rowcount
        if not deleted:
            raise NotFoundError(f"no user {user_id!r}")

    def revoke_tokens(self, user_id: str, *, api_tokens: bool) -> tuple[int, int]:
        with self.db.tx() as s:
            return self._revoke(s, user_id, api_tokens=api_tokens)

    @staticmethod
    def _revoke(s: Session, user_id: str, *, api_tokens: bool) -> tuple[int, int]:
        # The UPDATE locks the user's row until commit: token inserts wait on it (see _at_generation).
        s.execute(BUMP_GENERATION, (user_id,))
        sessions = s.one(
            "SELECT count(DISTINCT family) AS n FROM refresh_tokens"
            " WHERE user_id = ? AND used_at IS NULL AND expires_at > ?",
            (user_id, time.time()),
        )["n"]
        s.execute("DELETE FROM refresh_tokens WHERE user_id = ?", (user_id,))
        tokens = (
            s.execute("DELETE FROM api_tokens WHERE user_id = ?", (user_id,)).rowcount if api_tokens else 0
        )
        return sessions, tokens

    def _at_generation(self, s: Session, user_id: str, generation: int | None) -> bool:
        """Whether the user exists at `generation`, holding the row until commit: a concurrent
        revocation (an UPDATE of the row) either finished before, and the new generation is seen
        here, or waits until this token is inserted, and then deletes it."""
        row = s.one(f"SELECT token_generation FROM users WHERE id = ?{self._for_share}", (user_id,))
        return row is not None and (generation is None or row["token_generation"] == generation)

    # ------------------------------------------------------------ refresh tokens
    def add_refresh_token(
        self, digest: str, user_id: str, expires_at: float, *, family: str, generation: int
    ) -> bool:
        with self.db.tx() as s:
            # The user's row first: a revocation locks it before deleting tokens, so taking it
            # first keeps the two from waiting on each other's locks (a deadlock).
            if not self._at_generation(s, user_id, generation):
                return False
            s.execute("DELETE FROM refresh_tokens WHERE expires_at < ?", (time.time(),))  # keep it small
            s.execute(
                "INSERT INTO refresh_tokens (digest, user_id, expires_at, family) VALUES (?, ?, ?, ?)",
                (digest, user_id, expires_at, family),
            )
        return True

    def take_refresh_token(self, digest: str, now: float, grace_s: float = 0.0) -> RefreshUse | None:
        with self.db.tx() as s:
            # The conditional UPDATE: of two requests racing with the same unused token, one wins.
            row = s.one(
                "UPDATE refresh_tokens SET used_at = ?"
                " WHERE digest = ? AND used_at IS NULL AND expires_at > ? RETURNING user_id, family",
                (now, digest, now),
            )
            if row is not None:
                return RefreshUse(row["user_id"], row["family"], "fresh")
            row = s.one(
                "SELECT user_id, family, expires_at, used_at FROM refresh_tokens WHERE digest = ?", (digest,)
            )
            if row is None or row["expires_at"] <= now or row["used_at"] is None:
                return None
            if now - row["used_at"] <= grace_s:
                return RefreshUse(row["user_id"], row["family"], "grace")
            # Reused: the user's row first, then their tokens, in the order revoke_tokens locks them.
            s.execute(BUMP_GENERATION, (row["user_id"],))
            s.execute("DELETE FROM refresh_tokens WHERE family = ?", (row["family"],))
            return RefreshUse(row["user_id"], row["family"], "reused")

    def revoke_refresh_token(self, digest: str) -> None:
        with self.db.tx() as s:
            s.execute(
                "DELETE FROM refresh_tokens"
                " WHERE family IN (SELECT family FROM refresh_tokens WHERE digest = ?)",
                (digest,),
            )

    # ------------------------------------------------------------ personal API tokens
    def add_api_token(
        self, user_id: str, name: str, digest: str, prefix: str, generation: int | None = None
    ) -> ApiToken | None:
        with self.db.tx() as s:
            if not self._at_generation(s, user_id, generation):
                return None
            # Read back in the same transaction: a revocation right after the commit may delete it.
            row = s.one(
                "INSERT INTO api_tokens (id, user_id, name, digest, prefix, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?) RETURNING *",
                (new_id(), user_id, name, digest, prefix, time.time()),
            )
        return token_from_row(row)

    def find_api_token(self, digest: str) -> ApiToken | None:
        row = self.db.one("SELECT * FROM api_tokens WHERE digest = ?", (digest,))
        if row is None:
            return None
        now = time.time()
        if row["last_used_at"] is None or now - row["last_used_at"] > 60:  # no write on every request
            with self.db.tx() as s:
                s.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ?", (now, row["id"]))
        return token_from_row(row)

    def list_api_tokens(self, user_id: str) -> list[ApiToken]:
        rows = self.db.all(
            f"SELECT * FROM api_tokens WHERE user_id = ? ORDER BY created_at, id{self.db.collate_c}",
            (user_id,),
        )
        return [token_from_row(r) for r in rows]

    def delete_api_token(self, user_id: str, token_id: str) -> None:
        with self.db.tx() as s:
            deleted = s.execute(
                "DELETE FROM api_tokens WHERE id = ? AND user_id = ?", (token_id, user_id)
            ).rowcount
        if not deleted:
            raise NotFoundError(f"no token {token_id!r}")
