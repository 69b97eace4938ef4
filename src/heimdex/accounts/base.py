"""The account store interface: users, refresh tokens and personal API tokens.

Tokens are stored only as SHA-256 digests, so a copy of the database cannot be replayed against
the server. The interface is kept narrow so that a PostgreSQL implementation is a small file.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field


class User(BaseModel):
    id: str
    email: str
    # None for users who only sign in through an external provider; never in a repr (logs, tracebacks).
    password_hash: str | None = Field(None, repr=False)
    is_admin: bool = False
    created_at: float = 0.0
    # Bumped when the password changes or the user logs out everywhere: access tokens carry the
    # generation they were issued in (claim "gen") and stop working when it moves on.
    token_generation: int = 0


class ApiToken(BaseModel):
    id: str
    user_id: str
    name: str
    prefix: str  # the first characters, so a user can tell tokens apart
    created_at: float = 0.0
    last_used_at: float | None = None


def user_from_row(row: Mapping[str, Any]) -> User:
    """A users row of either database (SQLite gives is_admin as 0/1)."""
    return User(
        id=row["id"],
        email=row["email"],
        password_hash=row["password_hash"],
        is_admin=bool(row["is_admin"]),
        created_at=row["created_at"],
        token_generation=row["token_generation"],
    )


def token_from_row(row: Mapping[str, Any]) -> ApiToken:
    """An api_tokens row of either database; the digest stays in the database."""
    return ApiToken(
        id=row["id"],
        user_id=row["user_id"],
        name=row["name"],
        prefix=row["prefix"],
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
    )


@dataclass(frozen=True)
class RefreshUse:
    """What presenting a refresh token found.

    - "fresh": it was unused and is now marked used (rotation);
    - "grace": it had been used moments ago (two tabs refreshing at once): a new pair may be issued;
    - "reused": it had been used before: copied or replayed, so its whole family was deleted and
      the user's token generation bumped (every access token of theirs stops working at once; their
      other sessions renew theirs with their own refresh tokens).
    """

    user_id: str
    family: str
    state: Literal["fresh", "grace", "reused"]


class AccountStore(ABC):
    # ------------------------------------------------------------ users
    @abstractmethod
    def create_user(self, email: str, password_hash: str | None, is_admin: bool = False) -> User:
        """Raises ConflictError when the email is taken (emails compare case-insensitively)."""

    @abstractmethod
    def get_user(self, user_id: str) -> User:
        """Raises NotFoundError."""

    @abstractmethod
    def find_user_by_email(self, email: str) -> User | None: ...

    @abstractmethod
    def list_users(self) -> list[User]: ...

    @abstractmethod
    def set_password(self, user_id: str, password_hash: str, *, revoke_tokens: bool = False) -> None:
        """With revoke_tokens, also what revoke_tokens(user_id, api_tokens=True) does, in the same
        transaction."""

    @abstractmethod
    def delete_user(self, user_id: str) -> None:
        """The account with its refresh and API tokens (not its videos). Raises NotFoundError."""

    @abstractmethod
    def revoke_tokens(self, user_id: str, *, api_tokens: bool) -> tuple[int, int]:
        """Log the user out everywhere: bump token_generation (their access tokens stop working),
        delete every refresh token and, with api_tokens, every personal API token. Returns how many
        sessions (refresh token families still valid) and API tokens went."""

    # ------------------------------------------------------------ refresh tokens
    @abstractmethod
    def add_refresh_token(
        self, digest: str, user_id: str, expires_at: float, *, family: str, generation: int
    ) -> bool:
        """Store a refresh token of `family`, only if the user still exists and is at `generation`
        (checked under a lock on the user, so a token issued while the user's tokens are being
        revoked cannot survive the revocation). False when not stored."""

    @abstractmethod
    def take_refresh_token(self, digest: str, now: float, grace_s: float = 0.0) -> RefreshUse | None:
        """Use a refresh token (rotation). Used tokens stay as "used" rows until they expire, so
        that a replay is recognised: within grace_s of the first use it is "grace", later it is
        "reused" and the whole family is deleted. None for unknown or expired tokens."""

    @abstractmethod
    def revoke_refresh_token(self, digest: str) -> None:
        """Logout: delete the token's whole family (the session it belongs to)."""

    # ------------------------------------------------------------ personal API tokens
    @abstractmethod
    def add_api_token(
        self, user_id: str, name: str, digest: str, prefix: str, generation: int | None = None
    ) -> ApiToken | None:
        """None when `generation` is given and the user is no longer at it (or is gone)."""

    @abstractmethod
    def find_api_token(self, digest: str) -> ApiToken | None:
        """The token with this digest (and records that it was used)."""

    @abstractmethod
    def list_api_tokens(self, user_id: str) -> list[ApiToken]: ...

    @abstractmethod
    def delete_api_token(self, user_id: str, token_id: str) -> None:
        """Raises NotFoundError when absent or another user's."""

    @abstractmethod
    def close(self) -> None: ...


def open_account_store(database_url: str) -> AccountStore:
    """The account store living in the same database as the main store (own tables)."""
    if database_url.startswith("sqlite:///"):
        from heimdex.accounts.sqlite import SqliteAccountStore

        return SqliteAccountStore(database_url.removeprefix("sqlite:///"))
    if database_url.startswith(("postgresql://", "postgres://")):
        from heimdex.accounts.postgres import PostgresAccountStore

        return PostgresAccountStore(database_url)
    raise ValueError(
        f"unsupported database URL for accounts {database_url!r}: use sqlite:///path or postgresql://..."
    )
