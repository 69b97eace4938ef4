"""Windows of a long scene's speech, each with its own text vector.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

Mirrors scene_windows of schema_sqlite.sql. A scene that says several things is also embedded as
overlapping windows of a few sentences; dense search scores a scene by its best vector. Their HNSW
indexes are partial per (model, dim) and made on first use, as for scene_vectors.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """CREATE TABLE scene_windows (
            scene_pk bigint NOT NULL REFERENCES scenes (pk) ON DELETE CASCADE,
            part     integer NOT NULL,
            model    text NOT NULL,
            dim      integer NOT NULL,
            vector   vector NOT NULL CHECK (vector_dims(vector) = dim),
            PRIMARY KEY (scene_pk, part, model)
        )"""
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS scene_windows")
