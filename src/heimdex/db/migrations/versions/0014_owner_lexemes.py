"""Each owner's words, kept for near-word lookups (search/spelling.py): PostgreSQL only.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03

An owner's first search with a word the library lacks read the owner's whole vocabulary with
ts_stat over every scene (40-70 ms for 900 scenes on a loaded machine, seconds for 120k). The store
now adds the lexemes of a video's scenes here after each commit (and a corrected scene's), and never
removes any: a word a deleted video held stays listed, and the engine keeps only near words that a
scene of the owner still holds. SQLite lists its words from FTS5's own vocabulary and has no such
table. Filled here from the scenes already committed.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """CREATE TABLE IF NOT EXISTS owner_lexemes (
            owner_id text NOT NULL,
            lexeme   text NOT NULL,
            PRIMARY KEY (owner_id, lexeme)
        )"""
    )
    op.execute(
        "INSERT INTO owner_lexemes (owner_id, lexeme)"
        " SELECT DISTINCT s.owner_id, w FROM scenes s, unnest(tsvector_to_array(s.fts)) AS w"
        " ON CONFLICT DO NOTHING"
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS owner_lexemes")
