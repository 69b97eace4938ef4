"""Possible face matches and the owner's verdicts.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

Mirrors face_matches.possible / verdict of schema_sqlite.sql: `possible` marks a face found in the
margin above the match distance; `verdict` is NULL (the matcher's call), 'confirmed' or 'rejected'.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE face_matches ADD COLUMN possible boolean NOT NULL DEFAULT false")
    op.execute(
        "ALTER TABLE face_matches ADD COLUMN verdict text"
        " CHECK (verdict IS NULL OR verdict IN ('confirmed', 'rejected'))"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE face_matches DROP COLUMN verdict, DROP COLUMN possible")
