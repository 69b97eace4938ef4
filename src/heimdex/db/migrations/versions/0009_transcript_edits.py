"""The owner's transcript corrections: transcript_edits.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

Mirrors transcript_edits of schema_sqlite.sql (a new table: SQLite needs no schema step). An edit is
kept apart from the scene it changed, with the recognised words it replaced, so that a reprocess lays
it over the new words again (corrections.py). It goes with its video.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """CREATE TABLE IF NOT EXISTS transcript_edits (
            id        text PRIMARY KEY,
            video_id  text NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
            owner_id  text NOT NULL,
            start_s   double precision NOT NULL,
            end_s     double precision NOT NULL,
            text      text NOT NULL,
            original  jsonb NOT NULL DEFAULT '[]',
            edited_at double precision NOT NULL
        )"""
    )
    op.execute("CREATE INDEX IF NOT EXISTS transcript_edits_by_video ON transcript_edits (video_id, start_s)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS transcript_edits")
