"""Unnamed people: face_clusters, and what clustering reads of each face.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02

Mirrors schema step 5 of SQLite (store/sqlite.py). Faces seen before have size and sharpness 0 and
no crop until their video is reprocessed: they can join a cluster but never seed one. Each step is
idempotent (IF NOT EXISTS), like the migrations before it: running it again changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """CREATE TABLE IF NOT EXISTS face_clusters (
            id         text PRIMARY KEY,
            owner_id   text NOT NULL,
            person_id  text REFERENCES people (id) ON DELETE SET NULL,
            hidden     boolean NOT NULL DEFAULT false,
            created_at double precision NOT NULL
        )"""
    )
    op.execute("CREATE INDEX IF NOT EXISTS face_clusters_by_owner ON face_clusters (owner_id)")
    op.execute("ALTER TABLE faces ADD COLUMN IF NOT EXISTS size_px double precision NOT NULL DEFAULT 0")
    op.execute("ALTER TABLE faces ADD COLUMN IF NOT EXISTS sharpness double precision NOT NULL DEFAULT 0")
    op.execute("ALTER TABLE faces ADD COLUMN IF NOT EXISTS crop_key text")
    op.execute(
        "ALTER TABLE faces ADD COLUMN IF NOT EXISTS cluster_id text"
        " REFERENCES face_clusters (id) ON DELETE SET NULL"
    )
    op.execute("CREATE INDEX IF NOT EXISTS faces_by_cluster ON faces (cluster_id)")


def downgrade() -> None:
    for column in ("cluster_id", "crop_key", "sharpness", "size_px"):
        op.execute(f"ALTER TABLE faces DROP COLUMN IF EXISTS {column}")
    op.execute("DROP TABLE IF EXISTS face_clusters")
