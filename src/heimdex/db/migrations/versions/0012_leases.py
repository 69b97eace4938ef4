"""Named leases: work for the whole library that one worker at a time does.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03

Mirrors leases of schema_sqlite.sql. A `heimdex worker` whose CLIP-style model has not embedded
every frame takes the lease "reembed" (JobLedger.claim_lease), renews it while it re-embeds and
gives it up after; GET /search/clip says whether someone holds it. IF NOT EXISTS, as 0011.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """CREATE TABLE IF NOT EXISTS leases (
            name    text PRIMARY KEY,
            holder  text NOT NULL,
            expires double precision NOT NULL
        )"""
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS leases")
