"""Image vectors of sampled frames ("more like this").

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

Mirrors frame_vectors of schema_sqlite.sql: the image vectors of a scene's sampled frames, each with
its model and dimension; image search scores a scene by its best frame. Their HNSW indexes are
partial per (model, dim) and made on first use, as for scene_vectors and scene_windows. IF NOT
EXISTS, as 0007 and 0008 are: a database whose recorded revision is behind what it holds upgrades.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """CREATE TABLE IF NOT EXISTS frame_vectors (
            scene_pk bigint NOT NULL REFERENCES scenes (pk) ON DELETE CASCADE,
            part     integer NOT NULL,
            t_s      double precision NOT NULL,
            model    text NOT NULL,
            dim      integer NOT NULL,
            vector   vector NOT NULL CHECK (vector_dims(vector) = dim),
            PRIMARY KEY (scene_pk, part, model)
        )"""
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS frame_vectors")
