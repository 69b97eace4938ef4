"""Stage claims for server-mode workers: which worker runs a stage of a video now, and until when.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

Mirrors the claimed_by / claim_expires columns of stage_runs in schema_sqlite.sql. A stage, not a
whole video, is the unit of work: the audio and vision branches of one video may run on two workers
at once, each holding its stage's claim. claim_expires is epoch seconds on the database's clock.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE stage_runs ADD COLUMN IF NOT EXISTS claimed_by text")
    op.execute("ALTER TABLE stage_runs ADD COLUMN IF NOT EXISTS claim_expires double precision")


def downgrade() -> None:
    op.execute("ALTER TABLE stage_runs DROP COLUMN IF EXISTS claim_expires, DROP COLUMN IF EXISTS claimed_by")
