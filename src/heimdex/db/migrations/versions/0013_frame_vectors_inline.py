"""Frame vectors kept in their table's rows, not in TOAST.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03

A 1280-d vector is 5 kB, past PostgreSQL's 2 kB TOAST threshold, and pgvector's default storage
(EXTERNAL) moved every frame vector out of line: each candidate row of a search by image read its
heap row, the TOAST index and three TOAST pages to compute its distance. MAIN keeps a vector in the
row while the row fits a page (up to ~2000 dimensions), which cut the HNSW statement's buffers by a
fifth and its CPU time as much at 10k scenes, for 16% more bytes per scene (docs/PERFORMANCE.md,
"Search by image"). It applies to rows written from now on; earlier ones stay where they are.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE frame_vectors ALTER COLUMN vector SET STORAGE MAIN")


def downgrade() -> None:
    op.execute("ALTER TABLE frame_vectors ALTER COLUMN vector SET STORAGE EXTERNAL")
