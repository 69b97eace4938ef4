"""The embedded store: one SQLite file (WAL), FTS5 for text, numpy for vectors.

Dense search keeps each owner's scene vectors in one float32 matrix in memory; a matrix product
over 100k x 384 takes a few milliseconds, so no ANN index is needed at embedded scale. The cache is
invalidated by a generation counter that every commit and delete bumps; an image model's frames
also by a counter of that model's, which re-embedding bumps (and nothing else).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from heimdex.db.base import Row, Session
from heimdex.db.sqlite import SqliteDatabase
from heimdex.errors import HeimdexError
from heimdex.matching import FaceMatch
from heimdex.store.base import CommitBundle, SceneFilter, ScoredScene
from heimdex.store.sql import FACE_COLUMNS, SCENE_COLUMNS, SqlStore
from heimdex.validation import strip_controls


def _best_windows(
    top: Sequence[int], whole: np.ndarray, positions: np.ndarray, parts: np.ndarray, scores: np.ndarray
) -> dict[int, int]:
    """Scene position -> the part of its best window, for the scenes in `top` that a window of theirs
    scored better than the whole. `positions` is sorted (windows are loaded in scene order)."""
    wanted = np.asarray(top, dtype=np.int64)
    starts, ends = np.searchsorted(positions, wanted, "left"), np.searchsorted(positions, wanted, "right")
    best: dict[int, int] = {}
    for i, lo, hi in zip(wanted.tolist(), starts.tolist(), ends.tolist(), strict=True):
        if hi > lo:
            row = lo + int(np.argmax(scores[lo:hi]))
            if scores[row] > whole[i]:
                best[i] = int(parts[row])
    return best


def _vector_rows(rows: Sequence[Row]) -> tuple[np.ndarray, np.ndarray]:
    """(scene pks, matrix) of rows with scene_pk, dim and vector columns."""
    dim = rows[0]["dim"] if rows else 0
    pks = np.fromiter((r["scene_pk"] for r in rows), dtype=np.int64, count=len(rows))
    return pks, SqliteDatabase.matrix(rows, "vector", dim)


_NONE = np.zeros((0, 0), dtype=np.float32)

# Image search scores every frame while an owner has up to EXACT_FRAMES of them (1280-d: ~40 ms for
# 40k frames on a busy 2-core machine). Past that, a coarse pass over the frames projected on their
# COARSE_DIM main directions picks COARSE_POOL frames, which are then scored exactly: a matrix product
# over 200k x 1280 floats (100k scenes) cost 146 ms there, the projected one a tenth of it.
EXACT_FRAMES = 40_000
COARSE_DIM = 128
COARSE_POOL = 4000
_BASIS_SAMPLE = 4096


@dataclass(frozen=True)
class _Frames:
    """One owner's frame vectors grouped by scene: each scene's pk and where its frames start, the
    scene (position) of each frame, and past EXACT_FRAMES the coarse projection of every frame."""

    pks: np.ndarray
    starts: np.ndarray
    scene_of: np.ndarray
    basis: np.ndarray | None = None  # (dim, COARSE_DIM): the frames' main directions
    coarse: np.ndarray | None = None  # (frames, COARSE_DIM)

    @classmethod
    def of(cls, frame_pks: np.ndarray, matrix: np.ndarray) -> _Frames:
        starts = np.flatnonzero(np.r_[True, frame_pks[1:] != frame_pks[:-1]]) if len(frame_pks) else frame_pks
        scene_of = np.cumsum(np.r_[False, frame_pks[1:] != frame_pks[:-1]]) if len(frame_pks) else frame_pks
        if len(matrix) <= EXACT_FRAMES:
            return cls(frame_pks[starts], starts, scene_of)
        # The main directions of the (uncentred) vectors: what keeps inner products best in few dims.
        sample = matrix[np.random.default_rng(0).choice(len(matrix), _BASIS_SAMPLE, replace=False)]
        _, vectors = np.linalg.eigh(sample.T @ sample)
        basis = np.ascontiguousarray(vectors[:, -COARSE_DIM:], dtype=np.float32)
        return cls(frame_pks[starts], starts, scene_of, basis, matrix @ basis)

    def exact(self, matrix: np.ndarray, query: np.ndarray) -> np.ndarray:
        """Each scene's best frame's cosine, from every frame."""
        return np.maximum.reduceat(matrix @ query, self.starts)

    def best(self, matrix: np.ndarray, query: np.ndarray) -> np.ndarray:
        """As exact, or from the COARSE_POOL frames the coarse pass ranks first (-inf for the scenes
        none of whose frames is among them)."""
        if self.basis is None or self.coarse is None:
            return self.exact(matrix, query)
        rough = self.coarse @ (query @ self.basis)
        pool = np.argpartition(-rough, COARSE_POOL - 1)[:COARSE_POOL]
        scores = np.full(len(self.pks), -np.inf, dtype=np.float32)
        np.maximum.at(scores, self.scene_of[pool], matrix[pool] @ query)
        return scores


class _VectorCache:
    """key -> (generation, row ids, matrix), shared by all threads of the process: scene vectors by
    (owner, model), tag-label vectors by (model, ""). Reloaded when a commit has bumped the generation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], tuple[Hashable, Any, np.ndarray]] = {}

    def get(self, key: tuple[str, str], generation: Hashable, load) -> tuple[Any, np.ndarray]:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != generation:
                pks, matrix = load()
                entry = (generation, pks, matrix)
                self._entries[key] = entry
            return entry[1], entry[2]


# ---------------------------------------------------------------- schema versions
# A new database gets schema_sqlite.sql, which is always the newest schema. A database made by an
# older Heimdex is brought up by the steps after its PRAGMA user_version, in order, in one write
# transaction (so two processes opening it at once do not both apply a step). Each step checks what
# it changes, so that it is also safe on a database that already has it. Version 0 is every release
# before versioning; tests/store/fixtures/ keeps a database made by the last one.


def _alter(db: sqlite3.Connection, changes: Sequence[tuple[str, str, str]], *, if_present: bool) -> None:
    """ALTER TABLE `table` `clause` for each (table, column, clause) whose column is there (or not):
    a step applied to a database that already has it changes nothing."""
    for table, column, clause in changes:
        if (column in _columns(db, table)) == if_present:
            db.execute(f"ALTER TABLE {table} {clause}")


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {r["name"] for r in db.execute(f"PRAGMA table_info({table})")}


# Full text over transcript, on-screen text, tag names and the morphemes of Korean words. Porter
# stemming so that "helmets" finds "helmet"; remove_diacritics so that "cafe" finds "café".
# scenes_vocab: each indexed term's document frequency (near words, near-universal words).
FTS_DDL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS scenes_fts USING fts5 (transcript, ocr_text, tags_text, index_terms,"
    " content = 'scenes', content_rowid = 'pk', tokenize = 'porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS scenes_fts_insert AFTER INSERT ON scenes BEGIN"
    " INSERT INTO scenes_fts (rowid, transcript, ocr_text, tags_text, index_terms)"
    " VALUES (new.pk, new.transcript, new.ocr_text, new.tags_text, new.index_terms); END",
    "CREATE TRIGGER IF NOT EXISTS scenes_fts_delete AFTER DELETE ON scenes BEGIN"
    " INSERT INTO scenes_fts (scenes_fts, rowid, transcript, ocr_text, tags_text, index_terms)"
    " VALUES ('delete', old.pk, old.transcript, old.ocr_text, old.tags_text, old.index_terms); END",
    # a transcript correction rewrites a scene's text in place
    "CREATE TRIGGER IF NOT EXISTS scenes_fts_update AFTER UPDATE OF transcript, ocr_text, tags_text,"
    " index_terms ON scenes BEGIN"
    " INSERT INTO scenes_fts (scenes_fts, rowid, transcript, ocr_text, tags_text, index_terms)"
    " VALUES ('delete', old.pk, old.transcript, old.ocr_text, old.tags_text, old.index_terms);"
    " INSERT INTO scenes_fts (rowid, transcript, ocr_text, tags_text, index_terms)"
    " VALUES (new.pk, new.transcript, new.ocr_text, new.tags_text, new.index_terms); END",
    "CREATE VIRTUAL TABLE IF NOT EXISTS scenes_vocab USING fts5vocab (scenes_fts, row)",
)


def _create_fts(db: sqlite3.Connection) -> None:
    for statement in FTS_DDL:
        db.execute(statement)


def _rebuild_fts(db: sqlite3.Connection) -> None:
    """Full text made again in FTS_DDL's shape, indexing every scene already there."""
    for trigger in ("scenes_fts_insert", "scenes_fts_delete", "scenes_fts_update"):
        db.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    db.execute("DROP TABLE IF EXISTS scenes_vocab")
    db.execute("DROP TABLE IF EXISTS scenes_fts")
    _create_fts(db)
    db.execute("INSERT INTO scenes_fts (scenes_fts) VALUES ('rebuild')")


def _index_korean_morphemes(db: sqlite3.Connection) -> None:
    _alter(
        db, (("scenes", "index_terms", "ADD COLUMN index_terms TEXT NOT NULL DEFAULT ''"),), if_present=False
    )
    _rebuild_fts(db)  # a new column of full text: the index is made again (scenes committed before
    # have no morphemes until they are reprocessed)


def _unnamed_people(db: sqlite3.Connection) -> None:
    """face_clusters, and what clustering reads of each face (size, sharpness, crop, its cluster)."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS face_clusters (id TEXT PRIMARY KEY, owner_id TEXT NOT NULL,"
        " person_id TEXT REFERENCES people (id) ON DELETE SET NULL, hidden INTEGER NOT NULL DEFAULT 0,"
        " created_at REAL NOT NULL)"
    )
    _alter(
        db,
        (
            ("faces", "size_px", "ADD COLUMN size_px REAL NOT NULL DEFAULT 0"),
            ("faces", "sharpness", "ADD COLUMN sharpness REAL NOT NULL DEFAULT 0"),
            ("faces", "crop_key", "ADD COLUMN crop_key TEXT"),
            (
                "faces",
                "cluster_id",
                "ADD COLUMN cluster_id TEXT REFERENCES face_clusters (id) ON DELETE SET NULL",
            ),
        ),
        if_present=False,
    )


SCHEMA_STEPS: tuple[tuple[str, Callable[[sqlite3.Connection], None]], ...] = (
    (  # -> 1
        "claims and possible face matches (added before versions were kept)",
        lambda db: _alter(
            db,
            (
                ("videos", "claimed_by", "ADD COLUMN claimed_by TEXT"),
                ("videos", "claim_expires", "ADD COLUMN claim_expires REAL"),
                ("face_matches", "possible", "ADD COLUMN possible INTEGER NOT NULL DEFAULT 0"),
                ("face_matches", "verdict", "ADD COLUMN verdict TEXT"),
            ),
            if_present=False,
        ),
    ),
    (  # -> 2
        "JSON columns named as on PostgreSQL, so that both stores share their SQL",
        lambda db: _alter(
            db,
            (
                ("videos", "info_json", "RENAME COLUMN info_json TO info"),
                ("scenes", "words_json", "RENAME COLUMN words_json TO words"),
                ("faces", "box_json", "RENAME COLUMN box_json TO box"),
            ),
            if_present=True,
        ),
    ),
    (  # -> 3
        "stage claims: a stage runs on one worker at a time (server mode)",
        lambda db: _alter(
            db,
            (
                ("stage_runs", "claimed_by", "ADD COLUMN claimed_by TEXT"),
                ("stage_runs", "claim_expires", "ADD COLUMN claim_expires REAL"),
            ),
            if_present=False,
        ),
    ),
    ("the morphemes of Korean words in full text", _index_korean_morphemes),  # -> 4
    ("unnamed people: faces clustered, with their size, sharpness and crop", _unnamed_people),  # -> 5
)
SCHEMA_VERSION = len(SCHEMA_STEPS)


def migrate_sqlite(db: sqlite3.Connection) -> int:
    """Bring the database to SCHEMA_VERSION; returns the version it was at."""
    new = not _columns(db, "videos")
    if new:  # executescript runs outside transactions: the script is idempotent (IF NOT EXISTS)
        db.executescript(files("heimdex.store").joinpath("schema_sqlite.sql").read_text())
    db.execute("BEGIN IMMEDIATE")
    try:
        found = SCHEMA_VERSION if new else int(db.execute("PRAGMA user_version").fetchone()[0])
        if found > SCHEMA_VERSION:
            raise HeimdexError(
                f"this database was made by a newer Heimdex (schema {found}, this one knows {SCHEMA_VERSION})"
            )
        for _, step in SCHEMA_STEPS[found:]:
            step(db)
        _create_fts(db)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('generation', '0')")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    if not new:  # tables and indexes newer than the database (all IF NOT EXISTS)
        db.executescript(files("heimdex.store").joinpath("schema_sqlite.sql").read_text())
    return found


class SqliteStore(SqlStore):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        super().__init__(SqliteDatabase(self.path))
        self._vectors = _VectorCache()
        self._labels = _VectorCache()
        self._counts = _VectorCache()  # scenes per owner: counting 100k index entries took 6 ms a search
        self._vocabulary = _VectorCache()  # FTS5's term list, for near-word lookups
        migrate_sqlite(self.db.connections.db)

    @property
    def _db(self) -> sqlite3.Connection:
        return self.db.connections.db

    def _generation(self) -> int:
        return int(self._db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])

    def _changed(self, s: Session) -> None:
        s.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")

    def _frames_changed(self, s: Session, model: str) -> None:
        # A counter of the model's own: re-embedding writes a few dozen frames at a time, and bumping
        # the generation would throw every cached matrix away each time (an owner's text vectors, and
        # the frames of the model search is still using: 25 s to reload at 100k scenes).
        s.execute(
            "INSERT INTO meta (key, value) VALUES (?, '1')"
            " ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
            (f"frames:{model}",),
        )

    def _frame_generation(self, model: str) -> tuple[int, int]:
        """What a cache of `model`'s frames is stale against: every commit, and its own changes."""
        key = f"frames:{model}"
        rows = self._db.execute("SELECT key, value FROM meta WHERE key IN ('generation', ?)", (key,))
        found = {r[0]: int(r[1]) for r in rows.fetchall()}
        return found["generation"], found.get(key, 0)

    @staticmethod
    def _dim(rows: Sequence[Row]) -> int:
        return len(rows[0]["embedding"]) // 4 if rows else 0

    # ------------------------------------------------------------ commit
    def commit_video(self, bundle: CommitBundle, person_matches: dict[int, FaceMatch]) -> None:
        text, vector = bundle.text_vectors, self.db.vector
        with self.db.tx() as s:
            video = self._committed_video(s, bundle)
            s.execute("DELETE FROM faces WHERE video_id = ?", (video["id"],))
            s.execute("DELETE FROM scenes WHERE video_id = ?", (video["id"],))
            scene_pks: dict[int, int] = {}
            for draft, scene_vector in zip(bundle.scenes, text.vectors, strict=True):
                cur = s.execute(
                    f"INSERT INTO scenes ({SCENE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    self._scene_row(video, draft),
                )
                pk = scene_pks[draft.index] = int(cur.lastrowid)
                s.execute(
                    "INSERT INTO scene_vectors VALUES (?, 'text', ?, ?, ?)",
                    (pk, text.model, text.dim, vector(scene_vector)),
                )
                s.many(  # the last of a repeated label wins
                    "INSERT OR REPLACE INTO scene_tags VALUES (?, ?, ?, ?)",
                    [(pk, t.label, t.score, t.source) for t in draft.tags],
                )
            if bundle.windows is not None:
                windows = bundle.windows.vectors
                s.many(
                    "INSERT INTO scene_windows VALUES (?, ?, ?, ?, ?)",
                    [
                        (scene_pks[index], part, windows.model, windows.dim, vector(v))
                        for part, (index, v) in enumerate(
                            zip(bundle.windows.scenes, windows.vectors, strict=True)
                        )
                    ],
                )
            s.many("INSERT INTO frame_vectors VALUES (?, ?, ?, ?, ?, ?)", self._frame_rows(bundle, scene_pks))
            s.many(
                "INSERT OR IGNORE INTO label_vectors VALUES (?, ?, ?, ?)",
                [
                    (label, text.model, int(v.shape[0]), vector(v))
                    for label, v in bundle.label_vectors.items()
                ],
            )
            for i, face in enumerate(bundle.faces):
                cur = s.execute(
                    f"INSERT INTO faces ({FACE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    self._face_row(video, scene_pks[face.scene_index], face),
                )
                if (match := person_matches.get(i)) is not None:
                    s.execute(
                        "INSERT INTO face_matches (face_pk, person_id, distance, possible)"
                        " VALUES (?, ?, ?, ?)",
                        (cur.lastrowid, match.person_id, match.distance, match.possible),
                    )
            self._finish_commit(s, video, bundle)

    # ------------------------------------------------------------ scenes and channels
    def scene_count(self, owner_id: str) -> int:
        load = lambda: (super(SqliteStore, self).scene_count(owner_id), _NONE)  # noqa: E731
        count, _ = self._counts.get((owner_id, ""), self._generation(), load)
        return int(count)

    def full_text(
        self, flt: SceneFilter, terms: Sequence[str], phrases: Sequence[str], limit: int
    ) -> list[ScoredScene]:
        match = _fts_match(self._selective(terms), phrases)
        if not match:
            return []
        where, params = self._filter_sql(flt)
        # Rank inside FTS5 first (no joins per matching row), then filter the best few hundred; only if
        # the filter leaves too few does the exact query run. Measured at 100k scenes for a word in 64%
        # of them: 207 ms in one query, 134 ms in two steps.
        pool = max(limit * 4, 400)
        ranked = (
            "SELECT rowid, bm25(scenes_fts, 1.0, 0.9, 0.4, 0.9) AS rank FROM scenes_fts"
            " WHERE scenes_fts MATCH ? ORDER BY rank LIMIT ?"
        )
        rows = self._db.execute(
            f"SELECT s.pk, f.rank FROM ({ranked}) f CROSS JOIN scenes s ON s.pk = f.rowid"
            f" JOIN videos v ON v.id = s.video_id WHERE {where} ORDER BY f.rank LIMIT ?",
            [match, pool, *params, limit],
        ).fetchall()
        if len(rows) < limit and self._fts_count(match) > pool:
            rows = self._db.execute(
                "SELECT s.pk, bm25(scenes_fts, 1.0, 0.9, 0.4, 0.9) AS rank FROM scenes_fts"
                " JOIN scenes s ON s.pk = scenes_fts.rowid JOIN videos v ON v.id = s.video_id"
                f" WHERE scenes_fts MATCH ? AND {where} ORDER BY rank LIMIT ?",
                [match, *params, limit],
            ).fetchall()
        return [ScoredScene(r[0], -float(r[1])) for r in rows]

    def vocabulary(self, owner_id: str) -> Sequence[str]:
        # FTS5's index is one for all owners: its term list is the cheap source (tens of ms at 100k
        # scenes, once per generation); the engine keeps only words the owner's scenes hold.
        load = lambda: (tuple(r[0] for r in self._db.execute("SELECT term FROM scenes_vocab")), _NONE)  # noqa: E731
        words, _ = self._vocabulary.get(("", ""), self._generation(), load)
        return words

    def term_counts(self, owner_id: str, terms: Sequence[str], cap: int) -> dict[str, int]:
        counts = {}
        for term in dict.fromkeys(terms):
            match = _fts_match([term], [])
            counts[term] = (
                self._db.execute(
                    "SELECT count(*) FROM (SELECT 1 FROM scenes_fts f CROSS JOIN scenes s ON s.pk = f.rowid"
                    " WHERE scenes_fts MATCH ? AND s.owner_id = ? LIMIT ?)",
                    (match, owner_id, cap),
                ).fetchone()[0]
                if match
                else 0
            )
        return counts

    def _fts_count(self, match: str) -> int:
        row = self._db.execute(
            "SELECT count(*) FROM scenes_fts WHERE scenes_fts MATCH ?", (match,)
        ).fetchone()
        return int(row[0])

    def _selective(self, terms: Sequence[str]) -> list[str]:
        """Drop loose terms found in over a quarter of all scenes while another term remains: BM25 gives
        them almost no weight, yet scoring every scene that holds them is most of a query's cost."""
        terms = [t for t in terms if t.strip()]
        if len(terms) < 2:
            return terms
        total = self._db.execute("SELECT count(*) FROM scenes").fetchone()[0]
        if total < 1000:
            return terms
        marks = ",".join("?" * len(terms))
        counts = dict(
            self._db.execute(
                f"SELECT term, doc FROM scenes_vocab WHERE term IN ({marks})", [t.lower() for t in terms]
            ).fetchall()
        )
        kept = [t for t in terms if counts.get(t.lower(), 0) <= total / 4]
        return kept or terms

    def _load_text_vectors(self, owner_id: str, model: str) -> tuple[np.ndarray, np.ndarray]:
        rows = self._db.execute(
            "SELECT sv.scene_pk, sv.dim, sv.vector FROM scene_vectors sv JOIN scenes s ON s.pk = sv.scene_pk"
            " WHERE s.owner_id = ? AND sv.kind = 'text' AND sv.model = ? ORDER BY sv.scene_pk",
            (owner_id, model),
        ).fetchall()
        return _vector_rows(rows)

    def _load_windows(
        self, owner_id: str, model: str, pks: np.ndarray
    ) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
        """((the position in `pks` of each window's scene, its part, where each scene's windows
        start), the windows' matrix)."""
        rows = self._db.execute(
            "SELECT w.scene_pk, w.part, w.dim, w.vector FROM scene_windows w"
            " JOIN scenes s ON s.pk = w.scene_pk WHERE s.owner_id = ? AND w.model = ?"
            " ORDER BY w.scene_pk, w.part",
            (owner_id, model),
        ).fetchall()
        scene_pks, matrix = _vector_rows(rows)
        positions = np.minimum(np.searchsorted(pks, scene_pks), max(len(pks) - 1, 0))
        # A commit between loading the scenes and their windows: keep windows whose scene is loaded.
        known = pks[positions] == scene_pks if len(pks) else np.zeros(len(rows), dtype=bool)
        parts = np.fromiter((r["part"] for r in rows), dtype=np.int64, count=len(rows))
        positions = positions[known]
        starts = np.flatnonzero(np.r_[True, positions[1:] != positions[:-1]]) if len(positions) else positions
        return (positions, parts[known], starts), matrix[known]

    def dense_text(self, flt: SceneFilter, model: str, query: np.ndarray, limit: int) -> list[ScoredScene]:
        generation = self._generation()
        pks, matrix = self._vectors.get(
            (flt.owner_id, model), generation, lambda: self._load_text_vectors(flt.owner_id, model)
        )
        if not len(pks) or matrix.shape[1] != query.shape[0]:
            return []
        query = query.astype(np.float32)
        scores = matrix @ query
        (positions, parts, starts), windows = self._vectors.get(
            (flt.owner_id, f"{model}\x1fwindows"),
            generation,
            lambda: self._load_windows(flt.owner_id, model, pks),
        )
        window_scores = None
        if len(positions) and windows.shape[1] == query.shape[0]:
            window_scores = windows @ query
            whole = scores.copy()
            # A scene scores its best window: windows come grouped by scene, so reduce per group.
            scenes = positions[starts]
            scores[scenes] = np.maximum(whole[scenes], np.maximum.reduceat(window_scores, starts))
        top = self._top(flt, pks, scores, limit)
        windows_of = (
            _best_windows(top, whole, positions, parts, window_scores) if window_scores is not None else {}
        )
        return [ScoredScene(int(pks[i]), float(scores[i]), windows_of.get(int(i))) for i in top]

    def _top(self, flt: SceneFilter, pks: np.ndarray, scores: np.ndarray, limit: int) -> list[int]:
        """Positions of the `limit` best scores among the scenes the filter allows, best first."""
        if self._restricts(flt):
            allowed = self._allowed_pks(flt)
            scores = np.where(np.isin(pks, allowed), scores, -np.inf)
        k = min(limit, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [int(i) for i in top if np.isfinite(scores[i])]

    def _load_frames(self, owner_id: str, model: str) -> tuple[_Frames, np.ndarray]:
        """The owner's frames of `model`, grouped by scene (see _Frames), and their matrix."""
        rows = self._db.execute(
            "SELECT f.scene_pk, f.dim, f.vector FROM frame_vectors f JOIN scenes s ON s.pk = f.scene_pk"
            " WHERE s.owner_id = ? AND f.model = ? ORDER BY f.scene_pk, f.part",
            (owner_id, model),
        ).fetchall()
        frame_pks, matrix = _vector_rows(rows)
        return _Frames.of(frame_pks, matrix), matrix

    def image_search(self, flt: SceneFilter, model: str, query: np.ndarray, limit: int) -> list[ScoredScene]:
        frames, matrix = self._vectors.get(
            (flt.owner_id, f"{model}\x1fframes"),
            self._frame_generation(model),
            lambda: self._load_frames(flt.owner_id, model),
        )
        if not len(frames.pks) or matrix.shape[1] != query.shape[0] or limit <= 0:
            return []
        query = query.astype(np.float32)
        # A filter may keep scenes the coarse pass would not reach: filtered searches are exact.
        scores = frames.exact(matrix, query) if self._restricts(flt) else frames.best(matrix, query)
        return [
            ScoredScene(int(frames.pks[i]), float(scores[i]))
            for i in self._top(flt, frames.pks, scores, limit)
        ]

    def _allowed_pks(self, flt: SceneFilter) -> np.ndarray:
        where, params = self._filter_sql(flt)
        rows = self._db.execute(
            f"SELECT s.pk FROM scenes s JOIN videos v ON v.id = s.video_id WHERE {where}", params
        ).fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def label_vectors(self, model: str) -> tuple[list[str], np.ndarray]:
        # Cached like scene vectors (a commit bumps the generation): reading 1000 labels' vectors
        # back from SQLite cost 4 ms a query.
        load = lambda: super(SqliteStore, self).label_vectors(model)  # noqa: E731
        return self._labels.get((model, ""), self._generation(), load)

    def scenes_with_labels(
        self, flt: SceneFilter, label_weights: dict[str, float], limit: int
    ) -> list[ScoredScene]:
        if not label_weights:
            return []
        where, params = self._filter_sql(flt)
        weights = ",".join("(?, ?)" for _ in label_weights)
        weight_params = [x for item in label_weights.items() for x in item]
        # The weights are a table joined on label (a CASE over 130 dog breeds cost 445 ms at 100k scenes).
        # Scores come from the covering (label, score, scene_pk) index alone; only the best few hundred
        # scenes are then joined and filtered (all 33k tagged rows of "dog": 266 ms joined, this ~20 ms).
        best = (
            f"WITH w (label, weight) AS (VALUES {weights})"
            " SELECT t.scene_pk, max(t.score * w.weight) AS score FROM w"
            " CROSS JOIN scene_tags t INDEXED BY scene_tags_by_label_score ON t.label = w.label"
            " GROUP BY t.scene_pk ORDER BY score DESC"
        )
        filtered = (
            "SELECT b.scene_pk AS pk, b.score FROM ({}) b CROSS JOIN scenes s ON s.pk = b.scene_pk"
            f" JOIN videos v ON v.id = s.video_id WHERE {where} ORDER BY b.score DESC LIMIT ?"
        )
        pool = max(limit * 4, 400)
        rows = self._db.execute(
            filtered.format(best + " LIMIT ?"), [*weight_params, pool, *params, limit]
        ).fetchall()
        if len(rows) < limit:  # the filter removed too many of the best: rank the filtered set itself
            rows = self._db.execute(filtered.format(best), [*weight_params, *params, limit]).fetchall()
        return [ScoredScene(r["pk"], float(r["score"])) for r in rows]


def _fts_quote(text: str) -> str:
    """An FTS5 string: operators and quotes inside are plain text. FTS5 reads the query as a C string,
    so a NUL (or any control character) would cut it short: those become spaces."""
    return '"' + strip_controls(text).replace('"', '""') + '"'


def _fts_match(terms: Sequence[str], phrases: Sequence[str]) -> str:
    """Quoted phrases must all appear; loose terms are optional and only add to the BM25 rank.

    FTS5 ranks over every phrase in the expression, so `P AND (t1 OR t2 OR P)` keeps exactly the
    scenes containing P while still rewarding scenes that also contain t1 or t2.
    """
    required = " AND ".join(_fts_quote(p) for p in phrases if strip_controls(p).strip())
    optional = " OR ".join(_fts_quote(t) for t in terms if strip_controls(t).strip())
    if required and optional:
        return f"{required} AND ({optional} OR {required})"
    return required or optional
