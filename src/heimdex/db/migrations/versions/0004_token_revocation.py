"""Accounts: revocable sessions (token generation per user) and refresh token families.

Revision ID: 0004
Revises: 0003
Create Date: 2025-03-15

Mirrors ADDED_COLUMNS of accounts/sqlite.py:
- users.token_generation: bumped by a password change or "log out everywhere"; access tokens carry
  the generation they were issued in and stop working when it moves on.
- refresh_tokens.family and used_at: rotation keeps a used token as a "used" row until it expires,
  so a replay is recognised and the whole family (the session) is deleted. Tokens issued before
  this revision each form a family of their own.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = [
    "ALTER TABLE users ADD COLUMN token_generation integer NOT NULL DEFAULT 0",
    "ALTER TABLE refresh_tokens ADD COLUMN family text",
    "UPDATE refresh_tokens SET family = digest",
    "ALTER TABLE refresh_tokens ALTER COLUMN family SET NOT NULL",
    "ALTER TABLE refresh_tokens ADD COLUMN used_at double precision",
    "CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family)",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS refresh_tokens_by_family")
    op.execute("DELETE FROM refresh_tokens WHERE used_at IS NOT NULL")  # 0003 deleted used tokens
    op.execute("ALTER TABLE refresh_tokens DROP COLUMN used_at, DROP COLUMN family")
    op.execute("ALTER TABLE users DROP COLUMN token_generation")
