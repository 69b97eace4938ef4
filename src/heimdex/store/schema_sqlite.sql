-- Heimdex embedded schema, newest version (SQLite >= 3.35 with FTS5); older files are upgraded by
-- the steps in sqlite.py (SCHEMA_STEPS). Applied idempotently at open.
PRAGMA foreign_keys = ON;

CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS videos (
    id           TEXT PRIMARY KEY,
    owner_id     TEXT NOT NULL,
    filename     TEXT NOT NULL,
    original_key TEXT NOT NULL,
    size_bytes   INTEGER NOT NULL DEFAULT 0,
    sha256       TEXT,
    state        TEXT NOT NULL,
    error        TEXT,
    info         TEXT,
    language     TEXT,
    scene_count  INTEGER NOT NULL DEFAULT 0,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL,
    claimed_by   TEXT,  -- the worker indexing the video (server mode), until claim_expires
    claim_expires REAL
);
CREATE INDEX IF NOT EXISTS videos_by_owner ON videos (owner_id, created_at);
CREATE INDEX IF NOT EXISTS videos_by_hash ON videos (owner_id, sha256);

-- The job ledger: one row per (video, stage).
CREATE TABLE IF NOT EXISTS stage_runs (
    video_id    TEXT NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    stage       TEXT NOT NULL,
    state       TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    duration_s  REAL,
    error       TEXT,
    started_at  REAL,
    finished_at REAL,
    claimed_by  TEXT,  -- the worker running the stage now (server mode), until claim_expires
    claim_expires REAL,
    PRIMARY KEY (video_id, stage)
);

-- Work for the whole library that one worker at a time does (server mode: re-embedding after a
-- CLIP model change), held by `holder` until `expires` (the database's clock), renewed while it runs.
CREATE TABLE IF NOT EXISTS leases (
    name    TEXT PRIMARY KEY,
    holder  TEXT NOT NULL,
    expires REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS scenes (
    pk            INTEGER PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    video_id      TEXT NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    owner_id      TEXT NOT NULL,
    idx           INTEGER NOT NULL,
    start_s       REAL NOT NULL,
    end_s         REAL NOT NULL,
    transcript    TEXT NOT NULL DEFAULT '',
    words         TEXT NOT NULL DEFAULT '[]',
    ocr_text      TEXT NOT NULL DEFAULT '',
    tags_text     TEXT NOT NULL DEFAULT '',
    thumbnail_key TEXT,
    sidecar_key   TEXT,
    index_terms   TEXT NOT NULL DEFAULT '',  -- morphemes of its Korean words (korean.py)
    UNIQUE (video_id, idx)
);
CREATE INDEX IF NOT EXISTS scenes_by_owner ON scenes (owner_id);

-- The owner's corrections of transcripts, with the recognised words each replaced (corrections.py).
CREATE TABLE IF NOT EXISTS transcript_edits (
    id        TEXT PRIMARY KEY,
    video_id  TEXT NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    owner_id  TEXT NOT NULL,
    start_s   REAL NOT NULL,
    end_s     REAL NOT NULL,
    text      TEXT NOT NULL,
    original  TEXT NOT NULL DEFAULT '[]',
    edited_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS transcript_edits_by_video ON transcript_edits (video_id, start_s);

-- Full text (scenes_fts, scenes_vocab and the triggers that fill them) is created by FTS_DDL in
-- sqlite.py, so that a schema step can rebuild it when its columns change.

-- Every vector records the model that made it and its dimension: a new model re-embeds, never mixes.
CREATE TABLE IF NOT EXISTS scene_vectors (
    scene_pk INTEGER NOT NULL REFERENCES scenes (pk) ON DELETE CASCADE,
    kind     TEXT NOT NULL,
    model    TEXT NOT NULL,
    dim      INTEGER NOT NULL,
    vector   BLOB NOT NULL,
    PRIMARY KEY (scene_pk, kind, model)
);
CREATE INDEX IF NOT EXISTS scene_vectors_by_model ON scene_vectors (model, kind);

-- Windows of a long scene's speech (a few overlapping sentences each), embedded by the text model.
CREATE TABLE IF NOT EXISTS scene_windows (
    scene_pk INTEGER NOT NULL REFERENCES scenes (pk) ON DELETE CASCADE,
    part     INTEGER NOT NULL,
    model    TEXT NOT NULL,
    dim      INTEGER NOT NULL,
    vector   BLOB NOT NULL,
    PRIMARY KEY (scene_pk, part, model)
);

-- Image vectors of a scene's sampled frames ("more like this": a scene scores its best frame).
CREATE TABLE IF NOT EXISTS frame_vectors (
    scene_pk INTEGER NOT NULL REFERENCES scenes (pk) ON DELETE CASCADE,
    part     INTEGER NOT NULL,
    t_s      REAL NOT NULL,
    model    TEXT NOT NULL,
    dim      INTEGER NOT NULL,
    vector   BLOB NOT NULL,
    PRIMARY KEY (scene_pk, part, model)
);

CREATE TABLE IF NOT EXISTS scene_tags (
    scene_pk INTEGER NOT NULL REFERENCES scenes (pk) ON DELETE CASCADE,
    label    TEXT NOT NULL,
    score    REAL NOT NULL,
    source   TEXT NOT NULL,
    PRIMARY KEY (scene_pk, label)
);
DROP INDEX IF EXISTS scene_tags_by_label;
CREATE INDEX IF NOT EXISTS scene_tags_by_label_score ON scene_tags (label, score, scene_pk);

-- Text vectors of tag names, so that "a cat" can reach scenes tagged "tabby cat".
CREATE TABLE IF NOT EXISTS label_vectors (
    label  TEXT NOT NULL,
    model  TEXT NOT NULL,
    dim    INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (label, model)
);

-- Unnamed people: faces clustered per owner (faceclusters.py). A cluster named becomes a person's.
CREATE TABLE IF NOT EXISTS face_clusters (
    id         TEXT PRIMARY KEY,
    owner_id   TEXT NOT NULL,
    person_id  TEXT REFERENCES people (id) ON DELETE SET NULL,
    hidden     INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS face_clusters_by_owner ON face_clusters (owner_id);

CREATE TABLE IF NOT EXISTS faces (
    pk        INTEGER PRIMARY KEY,
    scene_pk  INTEGER NOT NULL REFERENCES scenes (pk) ON DELETE CASCADE,
    video_id  TEXT NOT NULL,
    owner_id  TEXT NOT NULL,
    t_s       REAL NOT NULL,
    box       TEXT NOT NULL,
    score     REAL NOT NULL,
    model     TEXT NOT NULL,
    embedding BLOB NOT NULL,
    size_px   REAL NOT NULL DEFAULT 0,
    sharpness REAL NOT NULL DEFAULT 0,
    crop_key  TEXT,
    cluster_id TEXT REFERENCES face_clusters (id) ON DELETE SET NULL
);
CREATE INDEX IF NOT EXISTS faces_by_owner ON faces (owner_id, model);
CREATE INDEX IF NOT EXISTS faces_by_scene ON faces (scene_pk);
CREATE INDEX IF NOT EXISTS faces_by_cluster ON faces (cluster_id);

CREATE TABLE IF NOT EXISTS people (
    id         TEXT PRIMARY KEY,
    owner_id   TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS people_by_name ON people (owner_id, name COLLATE NOCASE);

CREATE TABLE IF NOT EXISTS person_photos (
    id         INTEGER PRIMARY KEY,
    person_id  TEXT NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    blob_key   TEXT NOT NULL,
    model      TEXT NOT NULL,
    embedding  BLOB NOT NULL,
    created_at REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS face_matches (
    face_pk   INTEGER NOT NULL REFERENCES faces (pk) ON DELETE CASCADE,
    person_id TEXT NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    distance  REAL NOT NULL,
    possible  INTEGER NOT NULL DEFAULT 0,  -- found in the margin above the match distance
    verdict   TEXT,                        -- NULL (the matcher's call), 'confirmed' or 'rejected'
    PRIMARY KEY (face_pk, person_id)
);
CREATE INDEX IF NOT EXISTS face_matches_by_person ON face_matches (person_id);
