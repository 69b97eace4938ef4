"""The morphemes of Korean words in full text: scenes.index_terms, in the tsvector with the transcript.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

Mirrors schema step 4 of SQLite (store/sqlite.py). The generated `fts` column is made again with the
new column in it (a STORED generated column's expression cannot be altered in place); scenes
committed before have no morphemes until they are reprocessed.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FTS = (
    "heimdex_doc(transcript, 'A') || heimdex_doc(index_terms, 'A')"
    " || heimdex_doc(ocr_text, 'B') || heimdex_doc(tags_text, 'C')"
)
FTS_BEFORE = "heimdex_doc(transcript, 'A') || heimdex_doc(ocr_text, 'B') || heimdex_doc(tags_text, 'C')"


def _fts(expression: str) -> None:
    op.execute("ALTER TABLE scenes DROP COLUMN fts")  # its GIN index goes with it
    op.execute(f"ALTER TABLE scenes ADD COLUMN fts tsvector GENERATED ALWAYS AS ({expression}) STORED")
    op.execute("CREATE INDEX scenes_fts ON scenes USING gin (fts)")


def upgrade() -> None:
    op.execute("ALTER TABLE scenes ADD COLUMN IF NOT EXISTS index_terms text NOT NULL DEFAULT ''")
    _fts(FTS)


def downgrade() -> None:
    _fts(FTS_BEFORE)
    op.execute("ALTER TABLE scenes DROP COLUMN IF EXISTS index_terms")
