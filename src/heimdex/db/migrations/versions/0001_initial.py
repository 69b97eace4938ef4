"""The initial schema: videos, the job ledger, scenes with full text, vectors, tags, faces and people.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Mirrors schema_sqlite.sql. Differences, and why:
- vectors are pgvector `vector` columns without a fixed dimension, so several models can coexist;
  the HNSW index each (model, dim) needs is created by the store when the model is first committed
  (an HNSW index needs one dimension: it is a partial expression index, see postgres.py);
- full text is a generated tsvector over transcript (A), on-screen text (B) and tags (C), mixing
  'english' stemming with 'simple' words so that stop words, names and non-English text still match;
  diacritics are folded first ("cafe" finds "café"), as SQLite's remove_diacritics does;
- states are CHECKed against the enum VALUES that domain.py writes ('indexed', not 'INDEXED');
- times stay epoch seconds (double precision) because the domain models carry floats.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Latin letters with diacritics and their bare letter (translate() is immutable, unaccent is an
# extension that is not always installed).
_ACCENTED = "àáâãäåāăąçćĉċčďđèéêëēĕėęěĝğġģĥħìíîïĩīĭįıĵķĺļľŀłñńņňòóôõöøōŏőŕŗřśŝşšșţťŧțùúûüũūŭůűųŵýÿŷźżž"
_BARE = "aaaaaaaaacccccddeeeeeeeeegggghhiiiiiiiiijklllllnnnnooooooooorrrsssssttttuuuuuuuuuuwyyyzzz"
assert len(_ACCENTED) == len(_BARE)

UPGRADE = [
    "CREATE EXTENSION IF NOT EXISTS vector",
    f"""CREATE FUNCTION heimdex_fold(t text) RETURNS text
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        AS $$ SELECT translate(lower(t), '{_ACCENTED}', '{_BARE}') $$""",
    # The document and query sides must use the same configurations: both live here, in one place.
    """CREATE FUNCTION heimdex_doc(t text, weight "char") RETURNS tsvector
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        AS $$ SELECT setweight(to_tsvector('english', heimdex_fold(t))
                               || to_tsvector('simple', heimdex_fold(t)), weight) $$""",
    """CREATE FUNCTION heimdex_term_query(t text) RETURNS tsquery
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        AS $$ SELECT plainto_tsquery('english', heimdex_fold(t))
                     || plainto_tsquery('simple', heimdex_fold(t)) $$""",
    """CREATE FUNCTION heimdex_phrase_query(t text) RETURNS tsquery
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        AS $$ SELECT phraseto_tsquery('english', heimdex_fold(t))
                     || phraseto_tsquery('simple', heimdex_fold(t)) $$""",
    """CREATE TABLE videos (
        id           text PRIMARY KEY,
        owner_id     text NOT NULL,
        filename     text NOT NULL,
        original_key text NOT NULL,
        size_bytes   bigint NOT NULL DEFAULT 0,
        sha256       text,
        state        text NOT NULL CHECK (state IN ('queued', 'processing', 'indexed', 'failed')),
        error        text,
        info         jsonb,
        language     text,
        scene_count  integer NOT NULL DEFAULT 0,
        created_at   double precision NOT NULL,
        updated_at   double precision NOT NULL
    )""",
    "CREATE INDEX videos_by_owner ON videos (owner_id, created_at)",
    "CREATE INDEX videos_by_hash ON videos (owner_id, sha256)",
    """CREATE TABLE stage_runs (
        video_id    text NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
        stage       text NOT NULL,
        state       text NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed')),
        attempts    integer NOT NULL DEFAULT 0,
        duration_s  double precision,
        error       text,
        started_at  double precision,
        finished_at double precision,
        PRIMARY KEY (video_id, stage)
    )""",
    """CREATE TABLE scenes (
        pk            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id            text NOT NULL UNIQUE,
        video_id      text NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
        owner_id      text NOT NULL,
        idx           integer NOT NULL,
        start_s       double precision NOT NULL,
        end_s         double precision NOT NULL,
        transcript    text NOT NULL DEFAULT '',
        words         jsonb NOT NULL DEFAULT '[]',
        ocr_text      text NOT NULL DEFAULT '',
        tags_text     text NOT NULL DEFAULT '',
        thumbnail_key text,
        sidecar_key   text,
        fts           tsvector GENERATED ALWAYS AS (
            heimdex_doc(transcript, 'A') || heimdex_doc(ocr_text, 'B') || heimdex_doc(tags_text, 'C')
        ) STORED,
        UNIQUE (video_id, idx)
    )""",
    "CREATE INDEX scenes_by_owner ON scenes (owner_id)",
    "CREATE INDEX scenes_fts ON scenes USING gin (fts)",
    # Every vector records its model and dimension: a new model re-embeds, never mixes.
    """CREATE TABLE scene_vectors (
        scene_pk bigint NOT NULL REFERENCES scenes (pk) ON DELETE CASCADE,
        kind     text NOT NULL,
        model    text NOT NULL,
        dim      integer NOT NULL,
        vector   vector NOT NULL CHECK (vector_dims(vector) = dim),
        PRIMARY KEY (scene_pk, kind, model)
    )""",
    "CREATE INDEX scene_vectors_by_model ON scene_vectors (model, kind, dim)",
    """CREATE TABLE scene_tags (
        scene_pk bigint NOT NULL REFERENCES scenes (pk) ON DELETE CASCADE,
        label    text NOT NULL,
        score    double precision NOT NULL,
        source   text NOT NULL,
        PRIMARY KEY (scene_pk, label)
    )""",
    "CREATE INDEX scene_tags_by_label ON scene_tags (label)",
    """CREATE TABLE label_vectors (
        label  text NOT NULL,
        model  text NOT NULL,
        dim    integer NOT NULL,
        vector vector NOT NULL CHECK (vector_dims(vector) = dim),
        PRIMARY KEY (label, model)
    )""",
    """CREATE TABLE faces (
        pk        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        scene_pk  bigint NOT NULL REFERENCES scenes (pk) ON DELETE CASCADE,
        video_id  text NOT NULL,
        owner_id  text NOT NULL,
        t_s       double precision NOT NULL,
        box       jsonb NOT NULL,
        score     double precision NOT NULL,
        model     text NOT NULL,
        embedding vector NOT NULL
    )""",
    "CREATE INDEX faces_by_owner ON faces (owner_id, model)",
    "CREATE INDEX faces_by_scene ON faces (scene_pk)",
    "CREATE INDEX faces_by_video ON faces (video_id)",
    """CREATE TABLE people (
        id         text PRIMARY KEY,
        owner_id   text NOT NULL,
        name       text NOT NULL,
        created_at double precision NOT NULL
    )""",
    "CREATE UNIQUE INDEX people_by_name ON people (owner_id, lower(name))",
    """CREATE TABLE person_photos (
        id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        person_id  text NOT NULL REFERENCES people (id) ON DELETE CASCADE,
        blob_key   text NOT NULL,
        model      text NOT NULL,
        embedding  vector NOT NULL,
        created_at double precision NOT NULL
    )""",
    "CREATE INDEX person_photos_by_person ON person_photos (person_id)",
    """CREATE TABLE face_matches (
        face_pk   bigint NOT NULL REFERENCES faces (pk) ON DELETE CASCADE,
        person_id text NOT NULL REFERENCES people (id) ON DELETE CASCADE,
        distance  double precision NOT NULL,
        PRIMARY KEY (face_pk, person_id)
    )""",
    "CREATE INDEX face_matches_by_person ON face_matches (person_id)",
]

DOWNGRADE = [
    "DROP TABLE IF EXISTS face_matches, person_photos, people, faces, label_vectors, scene_tags,"
    " scene_vectors, scenes, stage_runs, videos",
    'DROP FUNCTION IF EXISTS heimdex_phrase_query(text), heimdex_term_query(text), heimdex_doc(text, "char"),'
    " heimdex_fold(text)",
    # The vector extension stays: other schemas in the database may use it.
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
