"""Video claims for server-mode workers: who is indexing a video, and until when.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01

Mirrors the claimed_by / claim_expires columns of schema_sqlite.sql. claim_expires is epoch seconds
on the database server's clock (see SqlStore.claim_stage, which sets them).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE videos ADD COLUMN IF NOT EXISTS claimed_by text")
    op.execute("ALTER TABLE videos ADD COLUMN IF NOT EXISTS claim_expires double precision")


def downgrade() -> None:
    op.execute("ALTER TABLE videos DROP COLUMN IF EXISTS claim_expires, DROP COLUMN IF EXISTS claimed_by")
