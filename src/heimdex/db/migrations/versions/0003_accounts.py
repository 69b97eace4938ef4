"""Accounts for `heimdex serve` on PostgreSQL: users, refresh tokens and personal API tokens.

Revision ID: 0003
Revises: 0002
Create Date: 2025-03-01

Mirrors the SCHEMA of accounts/sqlite.py. SQLite compares emails with COLLATE NOCASE; here a unique
index on lower(email) does the same (accounts/postgres.py looks emails up by lower() as well).
Tokens are stored as SHA-256 digests only, as in SQLite.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = [
    """CREATE TABLE users (
        id            text PRIMARY KEY,
        email         text NOT NULL,
        password_hash text,
        is_admin      boolean NOT NULL DEFAULT false,
        created_at    double precision NOT NULL
    )""",
    "CREATE UNIQUE INDEX users_by_email ON users (lower(email))",
    """CREATE TABLE refresh_tokens (
        digest     text PRIMARY KEY,
        user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        expires_at double precision NOT NULL
    )""",
    "CREATE INDEX refresh_tokens_by_user ON refresh_tokens (user_id)",
    """CREATE TABLE api_tokens (
        id           text PRIMARY KEY,
        user_id      text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        name         text NOT NULL,
        digest       text NOT NULL UNIQUE,
        prefix       text NOT NULL,
        created_at   double precision NOT NULL,
        last_used_at double precision
    )""",
    "CREATE INDEX api_tokens_by_user ON api_tokens (user_id)",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS api_tokens, refresh_tokens, users")
