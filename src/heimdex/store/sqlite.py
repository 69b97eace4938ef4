"""The embedded store: one SQLite file (WAL), FTS5 for text, numpy for vectors.

Dense search keeps each owner's scene vectors in one float32 matrix in memory; a matrix product
over 100k x 384 takes a few milliseconds, so no ANN index is needed at embedded scale. The cache is
invalidated by a generation counter that every commit and delete bumps.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from heimdex.domain import (
    MediaInfo,
    Person,
    Scene,
    StageRecord,
    StageState,
    Tag,
    Video,
    VideoState,
    Word,
)
from heimdex.errors import ConflictError, NotFoundError
from heimdex.matching import FaceMatch
from heimdex.sqlite_db import SqliteConnections
from heimdex.store.base import (
    LIVE_MATCH,
    POSSIBLE_MATCH,
    SURE_MATCH,
    CommitBundle,
    MatchView,
    SceneFilter,
    ScoredScene,
    Store,
    check_verdict,
    match_view,
    only_possible,
)
from heimdex.validation import strip_controls


def _blob(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype=np.float32).tobytes()


def _matrix(blobs: Sequence[bytes], dim: int) -> np.ndarray:
    if not blobs:
        return np.zeros((0, dim), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), dim)


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


def _vector_rows(rows: Sequence[sqlite3.Row]) -> tuple[np.ndarray, np.ndarray]:
    """(scene pks, matrix) of rows with scene_pk, dim and vector columns."""
    dim = rows[0]["dim"] if rows else 0
    pks = np.fromiter((r["scene_pk"] for r in rows), dtype=np.int64, count=len(rows))
    return pks, _matrix([r["vector"] for r in rows], dim)


def new_id() -> str:
    return uuid.uuid4().hex[:16]


_NONE = np.zeros((0, 0), dtype=np.float32)


class _VectorCache:
    """key -> (generation, row ids, matrix), shared by all threads of the process: scene vectors by
    (owner, model), tag-label vectors by (model, ""). Reloaded when a commit has bumped the generation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], tuple[int, Any, np.ndarray]] = {}

    def get(self, key: tuple[str, str], generation: int, load) -> tuple[Any, np.ndarray]:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != generation:
                pks, matrix = load()
                entry = (generation, pks, matrix)
                self._entries[key] = entry
            return entry[1], entry[2]


class SqliteStore(Store):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._connections = SqliteConnections(self.path)
        self._vectors = _VectorCache()
        self._labels = _VectorCache()
        self._counts = _VectorCache()  # scenes per owner: counting 100k index entries took 6 ms a search
        self._vocabulary = _VectorCache()  # FTS5's term list, for near-word lookups
        # executescript manages its own transaction; the schema is idempotent (IF NOT EXISTS).
        self._db.executescript(files("heimdex.store").joinpath("schema_sqlite.sql").read_text())
        self._add_missing_columns()
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('generation', '0')")
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '1')")

    # Columns added after the first release: (table, column, type). A database made by an older
    # Heimdex gets them here (CREATE TABLE IF NOT EXISTS does not touch an existing table).
    _ADDED_COLUMNS = (
        ("videos", "claimed_by", "TEXT"),
        ("videos", "claim_expires", "REAL"),
        ("face_matches", "possible", "INTEGER NOT NULL DEFAULT 0"),
        ("face_matches", "verdict", "TEXT"),
    )

    def _add_missing_columns(self) -> None:
        with self._tx() as db:
            for table, column, kind in self._ADDED_COLUMNS:
                present = {r["name"] for r in db.execute(f"PRAGMA table_info({table})")}
                if column not in present:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    # ------------------------------------------------------------ connections
    @property
    def _db(self) -> sqlite3.Connection:
        return self._connections.db

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._connections.tx()

    def close(self) -> None:
        self._connections.close()

    def _generation(self) -> int:
        return int(self._db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])

    @staticmethod
    def _bump_generation(db: sqlite3.Connection) -> None:
        db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")

    # ------------------------------------------------------------ videos
    def add_video(
        self, owner_id: str, filename: str, original_key: str, size_bytes: int, sha256: str | None
    ) -> Video:
        now = time.time()
        video_id = new_id()
        with self._tx() as db:
            db.execute(
                "INSERT INTO videos (id, owner_id, filename, original_key, size_bytes, sha256, state,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    video_id,
                    owner_id,
                    filename,
                    original_key.format(video_id=video_id),
                    size_bytes,
                    sha256,
                    VideoState.QUEUED.value,
                    now,
                    now,
                ),
            )
        return self.get_video(video_id)

    def get_video(self, video_id: str, owner_id: str | None = None) -> Video:
        row = self._db.execute("SELECT * FROM videos WHERE id = ?", (video_id,)).fetchone()
        if row is None or (owner_id is not None and row["owner_id"] != owner_id):
            raise NotFoundError(f"no video {video_id!r}")
        return self._video(row)

    def find_video_by_hash(self, owner_id: str, sha256: str) -> Video | None:
        row = self._db.execute(
            "SELECT * FROM videos WHERE owner_id = ? AND sha256 = ? ORDER BY created_at LIMIT 1",
            (owner_id, sha256),
        ).fetchone()
        return self._video(row) if row else None

    def list_videos(self, owner_id: str, state: VideoState | None = None) -> list[Video]:
        sql, params = "SELECT * FROM videos WHERE owner_id = ?", [owner_id]
        if state is not None:
            sql += " AND state = ?"
            params.append(state.value)
        rows = self._db.execute(sql + " ORDER BY created_at, id", params).fetchall()
        return [self._video(r) for r in rows]

    def set_video_state(self, video_id: str, state: VideoState, error: str | None = None) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE videos SET state = ?, error = ?, updated_at = ? WHERE id = ?",
                (state.value, error, time.time(), video_id),
            )

    def set_video_info(self, video_id: str, info: MediaInfo) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE videos SET info_json = ?, updated_at = ? WHERE id = ?",
                (info.model_dump_json(), time.time(), video_id),
            )

    def delete_video(self, video_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM faces WHERE video_id = ?", (video_id,))
            db.execute("DELETE FROM scenes WHERE video_id = ?", (video_id,))
            db.execute("DELETE FROM videos WHERE id = ?", (video_id,))
            self._bump_generation(db)

    @staticmethod
    def _video(row: sqlite3.Row) -> Video:
        return Video(
            id=row["id"],
            owner_id=row["owner_id"],
            filename=row["filename"],
            original_key=row["original_key"],
            size_bytes=row["size_bytes"],
            sha256=row["sha256"],
            state=VideoState(row["state"]),
            error=row["error"],
            info=MediaInfo.model_validate_json(row["info_json"]) if row["info_json"] else None,
            language=row["language"],
            scene_count=row["scene_count"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            claimed_by=row["claimed_by"] if (row["claim_expires"] or 0) > time.time() else None,
        )

    # ------------------------------------------------------------ claims
    def claim_video(self, video_id: str, worker_id: str, lease_s: float) -> bool:
        now = time.time()
        with self._tx() as db:
            cur = db.execute(
                "UPDATE videos SET claimed_by = ?, claim_expires = ? WHERE id = ?"
                " AND (claimed_by IS NULL OR claimed_by = ? OR claim_expires < ?)",
                (worker_id, now + lease_s, video_id, worker_id, now),
            )
            return cur.rowcount == 1

    def renew_claim(self, video_id: str, worker_id: str, lease_s: float) -> bool:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE videos SET claim_expires = ? WHERE id = ? AND claimed_by = ?",
                (time.time() + lease_s, video_id, worker_id),
            )
            return cur.rowcount == 1

    def release_claim(self, video_id: str, worker_id: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE videos SET claimed_by = NULL, claim_expires = NULL WHERE id = ? AND claimed_by = ?",
                (video_id, worker_id),
            )

    # ------------------------------------------------------------ the job ledger
    def stage_records(self, video_id: str) -> list[StageRecord]:
        rows = self._db.execute("SELECT * FROM stage_runs WHERE video_id = ?", (video_id,)).fetchall()
        return [
            StageRecord(
                stage=r["stage"],
                state=StageState(r["state"]),
                attempts=r["attempts"],
                duration_s=r["duration_s"],
                error=r["error"],
                started_at=r["started_at"],
                finished_at=r["finished_at"],
            )
            for r in rows
        ]

    def stage_started(self, video_id: str, stage: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO stage_runs (video_id, stage, state, attempts, started_at) VALUES (?, ?, ?, 1, ?)"
                " ON CONFLICT (video_id, stage) DO UPDATE SET state = excluded.state,"
                " attempts = stage_runs.attempts + 1, started_at = excluded.started_at, error = NULL",
                (video_id, stage, StageState.RUNNING.value, time.time()),
            )

    def stage_done(self, video_id: str, stage: str, duration_s: float) -> None:
        self._finish_stage(video_id, stage, StageState.DONE, duration_s, None)

    def stage_failed(self, video_id: str, stage: str, duration_s: float, error: str) -> None:
        self._finish_stage(video_id, stage, StageState.FAILED, duration_s, error)

    def _finish_stage(
        self, video_id: str, stage: str, state: StageState, duration_s: float, error: str | None
    ) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE stage_runs SET state = ?, duration_s = ?, error = ?, finished_at = ?"
                " WHERE video_id = ? AND stage = ?",
                (state.value, duration_s, error, time.time(), video_id, stage),
            )

    def reset_stages(self, video_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM stage_runs WHERE video_id = ?", (video_id,))

    # ------------------------------------------------------------ commit
    def commit_video(self, bundle: CommitBundle, person_matches: dict[int, FaceMatch]) -> None:
        video = self.get_video(bundle.video_id)
        text = bundle.text_vectors
        if len(text.vectors) != len(bundle.scenes):
            raise ValueError("one text vector per scene is required")
        with self._tx() as db:
            db.execute("DELETE FROM faces WHERE video_id = ?", (video.id,))
            db.execute("DELETE FROM scenes WHERE video_id = ?", (video.id,))
            scene_pks: dict[int, int] = {}
            for draft, vector in zip(bundle.scenes, text.vectors, strict=True):
                cur = db.execute(
                    "INSERT INTO scenes (id, video_id, owner_id, idx, start_s, end_s, transcript, words_json,"
                    " ocr_text, tags_text, thumbnail_key, sidecar_key) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        f"{video.id}-{draft.index:04d}",
                        video.id,
                        video.owner_id,
                        draft.index,
                        draft.start_s,
                        draft.end_s,
                        draft.transcript,
                        json.dumps([w.model_dump() for w in draft.words]),
                        draft.ocr_text,
                        " ".join(t.label for t in draft.tags),
                        draft.thumbnail_key,
                        draft.sidecar_key,
                    ),
                )
                pk = int(cur.lastrowid)
                scene_pks[draft.index] = pk
                db.execute(
                    "INSERT INTO scene_vectors VALUES (?, 'text', ?, ?, ?)",
                    (pk, text.model, text.dim, _blob(vector)),
                )
                db.executemany(
                    "INSERT OR REPLACE INTO scene_tags VALUES (?, ?, ?, ?)",
                    [(pk, t.label, t.score, t.source) for t in draft.tags],
                )
            if bundle.windows is not None:
                windows = bundle.windows.vectors
                db.executemany(
                    "INSERT INTO scene_windows VALUES (?, ?, ?, ?, ?)",
                    [
                        (scene_pks[index], part, windows.model, windows.dim, _blob(vector))
                        for part, (index, vector) in enumerate(
                            zip(bundle.windows.scenes, windows.vectors, strict=True)
                        )
                    ],
                )
            for label, vector in bundle.label_vectors.items():
                db.execute(
                    "INSERT OR IGNORE INTO label_vectors VALUES (?, ?, ?, ?)",
                    (label, text.model, int(vector.shape[0]), _blob(vector)),
                )
            for i, face in enumerate(bundle.faces):
                cur = db.execute(
                    "INSERT INTO faces (scene_pk, video_id, owner_id, t_s, box_json, score, model, embedding)"
                    " VALUES (?,?,?,?,?,?,?,?)",
                    (
                        scene_pks[face.scene_index],
                        video.id,
                        video.owner_id,
                        face.t_s,
                        face.box.model_dump_json(),
                        face.score,
                        face.model,
                        _blob(np.asarray(face.embedding)),
                    ),
                )
                if (match := person_matches.get(i)) is not None:
                    db.execute(
                        "INSERT INTO face_matches (face_pk, person_id, distance, possible)"
                        " VALUES (?, ?, ?, ?)",
                        (cur.lastrowid, match.person_id, match.distance, int(match.possible)),
                    )
            db.execute(
                "UPDATE videos SET state = ?, error = NULL, language = ?, scene_count = ?, updated_at = ?"
                " WHERE id = ?",
                (VideoState.INDEXED.value, bundle.language, len(bundle.scenes), time.time(), video.id),
            )
            self._bump_generation(db)

    # ------------------------------------------------------------ scenes
    _NAMES_SQL = (
        "(SELECT group_concat(name, '\x1f') FROM (SELECT DISTINCT p.name FROM faces f"
        " JOIN face_matches m ON m.face_pk = f.pk JOIN people p ON p.id = m.person_id"
        " WHERE f.scene_pk = s.pk AND {} ORDER BY p.name))"
    )
    _SCENE_SQL = (
        f"SELECT s.*, {_NAMES_SQL.format(SURE_MATCH)} AS people_names,"
        f" {_NAMES_SQL.format(POSSIBLE_MATCH)} AS possible_names FROM scenes s"
    )

    def scenes_by_pk(self, scene_pks: Sequence[int]) -> dict[int, Scene]:
        if not scene_pks:
            return {}
        marks = ",".join("?" * len(scene_pks))
        rows = self._db.execute(f"{self._SCENE_SQL} WHERE s.pk IN ({marks})", list(scene_pks)).fetchall()
        tags = self._tags_for([r["pk"] for r in rows])
        return {r["pk"]: self._scene(r, tags.get(r["pk"], [])) for r in rows}

    def list_scenes(self, video_id: str) -> list[Scene]:
        rows = self._db.execute(
            f"{self._SCENE_SQL} WHERE s.video_id = ? ORDER BY s.idx", (video_id,)
        ).fetchall()
        tags = self._tags_for([r["pk"] for r in rows])
        return [self._scene(r, tags.get(r["pk"], [])) for r in rows]

    def scene_count(self, owner_id: str) -> int:
        load = lambda: (self._count(owner_id), _NONE)  # noqa: E731
        count, _ = self._counts.get((owner_id, ""), self._generation(), load)
        return int(count)

    def _count(self, owner_id: str) -> int:
        return int(
            self._db.execute("SELECT count(*) FROM scenes WHERE owner_id = ?", (owner_id,)).fetchone()[0]
        )

    def _tags_for(self, scene_pks: Sequence[int]) -> dict[int, list[Tag]]:
        out: dict[int, list[Tag]] = {}
        if not scene_pks:
            return out
        marks = ",".join("?" * len(scene_pks))
        for row in self._db.execute(
            f"SELECT * FROM scene_tags WHERE scene_pk IN ({marks}) ORDER BY score DESC", list(scene_pks)
        ):
            out.setdefault(row["scene_pk"], []).append(
                Tag(label=row["label"], score=row["score"], source=row["source"])
            )
        return out

    @staticmethod
    def _scene(row: sqlite3.Row, tags: list[Tag]) -> Scene:
        return Scene(
            id=row["id"],
            video_id=row["video_id"],
            index=row["idx"],
            start_s=row["start_s"],
            end_s=row["end_s"],
            transcript=row["transcript"],
            words=[Word(**w) for w in json.loads(row["words_json"])],
            ocr_text=row["ocr_text"],
            tags=tags,
            people=_names(row["people_names"]),
            possible_people=only_possible(_names(row["possible_names"]), _names(row["people_names"])),
            thumbnail_key=row["thumbnail_key"],
            sidecar_key=row["sidecar_key"],
        )

    # ------------------------------------------------------------ retrieval channels
    @staticmethod
    def _filter_sql(flt: SceneFilter) -> tuple[str, list]:
        """WHERE conditions on scenes `s` (and videos `v`) for a filter."""
        conds, params = ["s.owner_id = ?"], [flt.owner_id]
        if flt.video_ids:
            conds.append(f"s.video_id IN ({','.join('?' * len(flt.video_ids))})")
            params.extend(flt.video_ids)
        if flt.created_from is not None:
            conds.append("v.created_at >= ?")
            params.append(flt.created_from)
        if flt.created_to is not None:
            conds.append("v.created_at <= ?")
            params.append(flt.created_to)
        for person_id in flt.person_ids:
            conds.append(
                "s.pk IN (SELECT f.scene_pk FROM faces f JOIN face_matches m ON m.face_pk = f.pk"
                f" WHERE m.person_id = ? AND {LIVE_MATCH})"
            )
            params.append(person_id)
        return " AND ".join(conds), params

    @staticmethod
    def _restricts(flt: SceneFilter) -> bool:
        return bool(
            flt.video_ids or flt.person_ids or flt.created_from is not None or flt.created_to is not None
        )

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
            "SELECT rowid, bm25(scenes_fts, 1.0, 0.9, 0.4) AS rank FROM scenes_fts"
            " WHERE scenes_fts MATCH ? ORDER BY rank LIMIT ?"
        )
        rows = self._db.execute(
            f"SELECT s.pk, f.rank FROM ({ranked}) f CROSS JOIN scenes s ON s.pk = f.rowid"
            f" JOIN videos v ON v.id = s.video_id WHERE {where} ORDER BY f.rank LIMIT ?",
            [match, pool, *params, limit],
        ).fetchall()
        if len(rows) < limit and self._fts_count(match) > pool:
            rows = self._db.execute(
                "SELECT s.pk, bm25(scenes_fts, 1.0, 0.9, 0.4) AS rank FROM scenes_fts"
                " JOIN scenes s ON s.pk = scenes_fts.rowid JOIN videos v ON v.id = s.video_id"
                f" WHERE scenes_fts MATCH ? AND {where} ORDER BY rank LIMIT ?",
                [match, *params, limit],
            ).fetchall()
        return [ScoredScene(r[0], -float(r[1])) for r in rows]

    def scene_texts(self, scene_pks: Sequence[int]) -> dict[int, str]:
        if not scene_pks:
            return {}
        marks = ",".join("?" * len(scene_pks))
        rows = self._db.execute(
            "SELECT s.pk, s.transcript, s.ocr_text,"
            " (SELECT group_concat(t.label, ', ') FROM scene_tags t WHERE t.scene_pk = s.pk) AS labels"
            f" FROM scenes s WHERE s.pk IN ({marks})",
            list(scene_pks),
        ).fetchall()
        return {r["pk"]: "\n".join(filter(None, (r["transcript"], r["ocr_text"], r["labels"]))) for r in rows}

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
        if self._restricts(flt):
            allowed = self._allowed_pks(flt)
            scores = np.where(np.isin(pks, allowed), scores, -np.inf)
        k = min(limit, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        top = [i for i in top if np.isfinite(scores[i])]
        windows_of = (
            _best_windows(top, whole, positions, parts, window_scores) if window_scores is not None else {}
        )
        return [ScoredScene(int(pks[i]), float(scores[i]), windows_of.get(int(i))) for i in top]

    def _allowed_pks(self, flt: SceneFilter) -> np.ndarray:
        where, params = self._filter_sql(flt)
        rows = self._db.execute(
            f"SELECT s.pk FROM scenes s JOIN videos v ON v.id = s.video_id WHERE {where}", params
        ).fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def label_vectors(self, model: str) -> tuple[list[str], np.ndarray]:
        # Cached like scene vectors (a commit bumps the generation): reading 1000 labels' vectors
        # back from SQLite cost 4 ms a query.
        labels, matrix = self._labels.get((model, ""), self._generation(), lambda: self._load_labels(model))
        return labels, matrix

    def _load_labels(self, model: str) -> tuple[list[str], np.ndarray]:
        rows = self._db.execute(
            "SELECT label, dim, vector FROM label_vectors WHERE model = ? ORDER BY label", (model,)
        ).fetchall()
        dim = rows[0]["dim"] if rows else 0
        return [r["label"] for r in rows], _matrix([r["vector"] for r in rows], dim)

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

    # A confirmed face ranks with the nearest: the owner said so.
    _RANKED_DISTANCE = "CASE WHEN m.verdict = 'confirmed' THEN 0.0 ELSE m.distance END"

    def scenes_with_people(self, flt: SceneFilter, limit: int) -> list[ScoredScene]:
        if not flt.person_ids:
            return []
        where, params = self._filter_sql(flt)
        marks = ",".join("?" * len(flt.person_ids))
        rows = self._db.execute(
            f"SELECT s.pk, min({self._RANKED_DISTANCE}) AS distance FROM scenes s"
            " JOIN videos v ON v.id = s.video_id JOIN faces f ON f.scene_pk = s.pk"
            " JOIN face_matches m ON m.face_pk = f.pk"
            f" WHERE m.person_id IN ({marks}) AND {LIVE_MATCH} AND {where}"
            " GROUP BY s.pk ORDER BY distance, s.video_id, s.idx"
            " LIMIT ?",
            [*flt.person_ids, *params, limit],
        ).fetchall()
        return [ScoredScene(r["pk"], 1.0 - float(r["distance"])) for r in rows]

    # ------------------------------------------------------------ people and faces
    def add_person(self, owner_id: str, name: str) -> Person:
        name = name.strip()
        if not name:
            raise ValueError("a person needs a name")
        try:
            with self._tx() as db:
                db.execute(
                    "INSERT INTO people (id, owner_id, name, created_at) VALUES (?, ?, ?, ?)",
                    (new_id(), owner_id, name, time.time()),
                )
        except sqlite3.IntegrityError as exc:
            raise ConflictError(f"a person named {name!r} already exists") from exc
        return self.get_person(owner_id, name)

    _PERSON_SQL = (
        "SELECT p.*, (SELECT count(*) FROM person_photos ph WHERE ph.person_id = p.id) AS photo_count,"
        " (SELECT count(DISTINCT f.scene_pk) FROM face_matches m JOIN faces f ON f.pk = m.face_pk"
        f"  WHERE m.person_id = p.id AND {SURE_MATCH}) AS scene_count,"
        " (SELECT count(DISTINCT f.scene_pk) FROM face_matches m JOIN faces f ON f.pk = m.face_pk"
        f"  WHERE m.person_id = p.id AND {POSSIBLE_MATCH}) AS possible_count FROM people p"
    )

    def get_person(self, owner_id: str, name_or_id: str) -> Person:
        row = self._db.execute(
            f"{self._PERSON_SQL} WHERE p.owner_id = ? AND (p.id = ? OR p.name = ? COLLATE NOCASE)",
            (owner_id, name_or_id, name_or_id.strip()),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"no person {name_or_id!r}")
        return self._person(row)

    def list_people(self, owner_id: str) -> list[Person]:
        rows = self._db.execute(
            f"{self._PERSON_SQL} WHERE p.owner_id = ? ORDER BY p.name COLLATE NOCASE", (owner_id,)
        ).fetchall()
        return [self._person(r) for r in rows]

    def rename_person(self, owner_id: str, person_id: str, name: str) -> Person:
        person = self.get_person(owner_id, person_id)
        try:
            with self._tx() as db:
                db.execute("UPDATE people SET name = ? WHERE id = ?", (name.strip(), person.id))
        except sqlite3.IntegrityError as exc:
            raise ConflictError(f"a person named {name!r} already exists") from exc
        return self.get_person(owner_id, person.id)

    def delete_person(self, owner_id: str, person_id: str) -> None:
        person = self.get_person(owner_id, person_id)
        with self._tx() as db:
            db.execute("DELETE FROM people WHERE id = ?", (person.id,))
            self._bump_generation(db)

    @staticmethod
    def _person(row: sqlite3.Row) -> Person:
        return Person(
            id=row["id"],
            owner_id=row["owner_id"],
            name=row["name"],
            photo_count=row["photo_count"],
            scene_count=row["scene_count"],
            possible_count=row["possible_count"],
            created_at=row["created_at"],
        )

    def add_person_photo(self, person_id: str, blob_key: str, model: str, embedding: np.ndarray) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO person_photos (person_id, blob_key, model, embedding, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (person_id, blob_key, model, _blob(embedding), time.time()),
            )

    def person_embeddings(self, owner_id: str, model: str) -> tuple[list[str], np.ndarray]:
        rows = self._db.execute(
            "SELECT ph.person_id, ph.embedding FROM person_photos ph JOIN people p ON p.id = ph.person_id"
            " WHERE p.owner_id = ? AND ph.model = ? ORDER BY ph.id",
            (owner_id, model),
        ).fetchall()
        dim = len(rows[0]["embedding"]) // 4 if rows else 0
        return [r["person_id"] for r in rows], _matrix([r["embedding"] for r in rows], dim)

    def face_embeddings(self, owner_id: str, model: str) -> tuple[list[int], np.ndarray]:
        rows = self._db.execute(
            "SELECT pk, embedding FROM faces WHERE owner_id = ? AND model = ? ORDER BY pk", (owner_id, model)
        ).fetchall()
        dim = len(rows[0]["embedding"]) // 4 if rows else 0
        return [r["pk"] for r in rows], _matrix([r["embedding"] for r in rows], dim)

    def replace_person_matches(self, person_id: str, matches: Sequence[tuple[int, float, bool]]) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM face_matches WHERE person_id = ? AND verdict IS NULL", (person_id,))
            db.executemany(  # OR IGNORE: a judged match of the same face stays as the owner left it
                "INSERT OR IGNORE INTO face_matches (face_pk, person_id, distance, possible)"
                " VALUES (?, ?, ?, ?)",
                [(face_pk, person_id, dist, int(possible)) for face_pk, dist, possible in matches],
            )
            self._bump_generation(db)

    def judged_faces(self, owner_id: str) -> set[int]:
        rows = self._db.execute(
            "SELECT m.face_pk FROM face_matches m JOIN people p ON p.id = m.person_id"
            " WHERE p.owner_id = ? AND m.verdict IS NOT NULL",
            (owner_id,),
        ).fetchall()
        return {r["face_pk"] for r in rows}

    def person_matches(
        self, owner_id: str, person_id: str, *, possible_only: bool = False
    ) -> list[MatchView]:
        rows = self._db.execute(
            "SELECT m.face_pk, m.distance, m.possible, m.verdict, f.t_s, s.id AS scene_id, s.idx,"
            " s.thumbnail_key, v.id AS video_id, v.filename FROM face_matches m"
            " JOIN people p ON p.id = m.person_id JOIN faces f ON f.pk = m.face_pk"
            " JOIN scenes s ON s.pk = f.scene_pk JOIN videos v ON v.id = s.video_id"
            f" WHERE p.owner_id = ? AND m.person_id = ?{' AND ' + POSSIBLE_MATCH if possible_only else ''}"
            " ORDER BY m.distance, v.id, s.idx, m.face_pk",
            (owner_id, person_id),
        ).fetchall()
        return [match_view(r) for r in rows]

    def set_match_verdict(self, owner_id: str, person_id: str, face_pk: int, verdict: str | None) -> None:
        check_verdict(verdict)
        with self._tx() as db:
            cur = db.execute(
                "UPDATE face_matches SET verdict = ? WHERE face_pk = ? AND person_id = ?"
                " AND person_id IN (SELECT id FROM people WHERE owner_id = ?)",
                (verdict, face_pk, person_id, owner_id),
            )
            if cur.rowcount != 1:
                raise NotFoundError(f"no face {face_pk} linked to person {person_id!r}")
            self._bump_generation(db)


def _names(joined: str | None) -> list[str]:
    return joined.split("\x1f") if joined else []


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
