"""The SQL store: every query SQLite and PostgreSQL share, written once over a `Database`.

What differs by backend stays in sqlite.py and postgres.py: full text (FTS5 vs tsvector), dense
search (numpy over cached matrices vs HNSW), tag ranking, the bulk commit, caches and the schema.
Queries use `?` placeholders and read columns by name; the database's dialect fills in the rest.
"""

from __future__ import annotations

import json
import time
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from heimdex.db import new_id
from heimdex.db.base import Database, Row, Session, loads
from heimdex.domain import (
    PIECE_MARK,
    ClusterFace,
    FaceCluster,
    FaceObservation,
    MediaInfo,
    Person,
    Scene,
    SceneDraft,
    StageRecord,
    StageState,
    Tag,
    TranscriptEdit,
    Video,
    VideoState,
    Word,
    piece_key,
)
from heimdex.errors import ConflictError, NotFoundError
from heimdex.store.base import (
    LIVE_MATCH,
    POSSIBLE_MATCH,
    SURE_MATCH,
    ClusteringFaces,
    CommitBundle,
    CorrectedText,
    MatchView,
    SceneFilter,
    ScoredScene,
    Store,
    StoredFrame,
    check_verdict,
    match_view,
    only_possible,
)

NAME_SEPARATOR = "\x1f"  # joins a scene's people names in one column; never in a name (see validation)
# A confirmed face ranks with the nearest: the owner said so.
RANKED_DISTANCE = "CASE WHEN m.verdict = 'confirmed' THEN 0.0 ELSE m.distance END"


class SqlStore(Store):
    """The shared half of both stores. Subclasses give the database, the retrieval channels that
    each backend does its own way, and `commit_video`."""

    def __init__(self, db: Database) -> None:
        self.db = db
        joined = db.joined("n.name", f"'{NAME_SEPARATOR}'", order=f"n.name{db.collate_c}")
        names = (
            f"(SELECT {joined} FROM"
            " (SELECT DISTINCT p.name FROM faces f JOIN face_matches m ON m.face_pk = f.pk"
            f" JOIN people p ON p.id = m.person_id WHERE f.scene_pk = s.pk AND {{}} ORDER BY 1) n)"
        )
        self._scene_sql = (
            f"SELECT s.*, {names.format(SURE_MATCH)} AS people_names,"
            f" {names.format(POSSIBLE_MATCH)} AS possible_names FROM scenes s"
        )

    def one_connection(self) -> AbstractContextManager[None]:
        return self.db.pinned()

    def close(self) -> None:
        self.db.close()

    def _changed(self, s: Session) -> None:
        """Called inside every write that changes what search sees (scenes, people, face links)."""

    def _frames_changed(self, s: Session, model: str) -> None:
        """Called inside a write that changes only `model`'s frame vectors (re-embedding)."""

    # ------------------------------------------------------------ videos
    def add_video(
        self, owner_id: str, filename: str, original_key: str, size_bytes: int, sha256: str | None
    ) -> Video:
        now, video_id = time.time(), new_id()
        with self.db.tx() as s:
            s.execute(
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
        return self.get_video(owner_id, video_id)

    def get_video(self, owner_id: str, video_id: str) -> Video:
        row = self.db.one("SELECT * FROM videos WHERE id = ? AND owner_id = ?", (video_id, owner_id))
        if row is None:
            raise NotFoundError(f"no video {video_id!r}")
        return _video(row)

    def get_videos(self, owner_id: str, video_ids: Sequence[str]) -> dict[str, Video]:
        if not video_ids:
            return {}
        among, params = self.db.in_list("id", sorted(set(video_ids)))
        rows = self.db.all(f"SELECT * FROM videos WHERE owner_id = ? AND {among}", [owner_id, *params])
        return {r["id"]: _video(r) for r in rows}

    def find_video_by_hash(self, owner_id: str, sha256: str) -> Video | None:
        row = self.db.one(
            "SELECT * FROM videos WHERE owner_id = ? AND sha256 = ? ORDER BY created_at LIMIT 1",
            (owner_id, sha256),
        )
        return _video(row) if row else None

    def list_videos(self, owner_id: str, state: VideoState | None = None) -> list[Video]:
        query, params = "SELECT * FROM videos WHERE owner_id = ?", [owner_id]
        if state is not None:
            query += " AND state = ?"
            params.append(VideoState(state).value)
        rows = self.db.all(f"{query} ORDER BY created_at, id{self.db.collate_c}", params)
        return [_video(r) for r in rows]

    def video_stages(self, owner_id: str, video_id: str) -> list[StageRecord]:
        return self.stage_records(self.get_video(owner_id, video_id).id)

    def requeue_video(self, owner_id: str, video_id: str) -> Video:
        with self.db.tx() as s:
            if self._locked_video(s, video_id, owner_id) is None:
                raise NotFoundError(f"no video {video_id!r}")
            s.execute("DELETE FROM stage_runs WHERE video_id = ?", (video_id,))
            s.execute(
                "UPDATE videos SET state = ?, error = NULL, updated_at = ? WHERE id = ?",
                (VideoState.QUEUED.value, time.time(), video_id),
            )
        return self.get_video(owner_id, video_id)

    def delete_video(self, owner_id: str, video_id: str) -> None:
        with self.db.tx() as s:
            if self._locked_video(s, video_id, owner_id) is None:
                raise NotFoundError(f"no video {video_id!r}")
            # Faces and scenes first, so that SQLite's full-text triggers see each scene go.
            s.execute("DELETE FROM faces WHERE video_id = ?", (video_id,))
            s.execute("DELETE FROM scenes WHERE video_id = ?", (video_id,))
            s.execute("DELETE FROM videos WHERE id = ?", (video_id,))
            self._changed(s)

    def _locked_video(self, s: Session, video_id: str, owner_id: str | None = None) -> Row | None:
        """The video's id and owner, its row held until the transaction ends (where the database
        locks rows); None if the video is gone (or not the owner's). Every transaction that writes
        a video's row and its stage rows, scenes or faces takes this lock first: with one order of
        locks a delete, which cascades from the video to its stage rows, cannot deadlock with a
        worker's claim, which writes both."""
        owned, params = (" AND owner_id = ?", (video_id, owner_id)) if owner_id else ("", (video_id,))
        return s.one(f"SELECT id, owner_id FROM videos WHERE id = ?{owned}{self._for_update}", params)

    # ------------------------------------------------------------ the job ledger
    def job_video(self, video_id: str) -> Video:
        row = self.db.one("SELECT * FROM videos WHERE id = ?", (video_id,))
        if row is None:
            raise NotFoundError(f"no video {video_id!r}")
        return _video(row)

    def set_video_state(self, video_id: str, state: VideoState, error: str | None = None) -> None:
        with self.db.tx() as s:
            s.execute(
                "UPDATE videos SET state = ?, error = ?, updated_at = ? WHERE id = ?",
                (VideoState(state).value, error, time.time(), video_id),
            )

    def set_video_info(self, video_id: str, info: MediaInfo) -> None:
        with self.db.tx() as s:
            s.execute(
                "UPDATE videos SET info = ?, updated_at = ? WHERE id = ?",
                (info.model_dump_json(), time.time(), video_id),
            )

    def claim_stage(self, video_id: str, stage: str, worker_id: str, lease_s: float) -> bool:
        now = self.db.now()
        with self.db.tx() as s:
            if self._locked_video(s, video_id) is None:
                return False
            cur = s.execute(
                "INSERT INTO stage_runs (video_id, stage, state, attempts, claimed_by, claim_expires)"
                f" VALUES (?, ?, ?, 0, ?, {now} + ?) ON CONFLICT (video_id, stage) DO UPDATE SET"
                " claimed_by = excluded.claimed_by, claim_expires = excluded.claim_expires"
                " WHERE stage_runs.state <> ? AND (stage_runs.claimed_by IS NULL"
                f" OR stage_runs.claimed_by = excluded.claimed_by OR stage_runs.claim_expires < {now})",
                (video_id, stage, StageState.PENDING.value, worker_id, lease_s, StageState.DONE.value),
            )
            if cur.rowcount != 1:
                return False
            s.execute(
                f"UPDATE videos SET claimed_by = ?, claim_expires = {now} + ? WHERE id = ?",
                (worker_id, lease_s, video_id),
            )
            return True

    def renew_stage_claim(self, video_id: str, stage: str, worker_id: str, lease_s: float) -> bool:
        now = self.db.now()
        with self.db.tx() as s:
            if self._locked_video(s, video_id) is None:
                return False
            cur = s.execute(
                f"UPDATE stage_runs SET claim_expires = {now} + ?"
                " WHERE video_id = ? AND stage = ? AND claimed_by = ?",
                (lease_s, video_id, stage, worker_id),
            )
            if cur.rowcount != 1:
                return False
            s.execute(
                f"UPDATE videos SET claim_expires = {now} + ? WHERE id = ? AND claimed_by = ?",
                (lease_s, video_id, worker_id),
            )
            return True

    def release_stage_claim(self, video_id: str, stage: str, worker_id: str) -> None:
        now = self.db.now()
        with self.db.tx() as s:
            if self._locked_video(s, video_id) is None:
                return
            s.execute(
                "UPDATE stage_runs SET claimed_by = NULL, claim_expires = NULL"
                " WHERE video_id = ? AND stage = ? AND claimed_by = ?",
                (video_id, stage, worker_id),
            )
            # The video shows another live holder of one of its stages, if any is left.
            live = f"FROM stage_runs WHERE video_id = ? AND claimed_by IS NOT NULL AND claim_expires > {now}"
            s.execute(
                f"UPDATE videos SET claimed_by = (SELECT MIN(claimed_by) {live}),"
                f" claim_expires = (SELECT MAX(claim_expires) {live}) WHERE id = ?",
                (video_id, video_id, video_id),
            )

    def claim_lease(self, name: str, holder: str, lease_s: float) -> bool:
        now = self.db.now()
        with self.db.tx() as s:
            cur = s.execute(
                f"INSERT INTO leases (name, holder, expires) VALUES (?, ?, {now} + ?)"
                " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires = excluded.expires"
                f" WHERE leases.holder = excluded.holder OR leases.expires < {now}",
                (name, holder, lease_s),
            )
            return cur.rowcount == 1

    def renew_lease(self, name: str, holder: str, lease_s: float) -> bool:
        with self.db.tx() as s:
            cur = s.execute(
                f"UPDATE leases SET expires = {self.db.now()} + ? WHERE name = ? AND holder = ?",
                (lease_s, name, holder),
            )
            return cur.rowcount == 1

    def release_lease(self, name: str, holder: str) -> None:
        with self.db.tx() as s:
            s.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))

    def lease_holder(self, name: str) -> str | None:
        row = self.db.one(f"SELECT holder FROM leases WHERE name = ? AND expires >= {self.db.now()}", (name,))
        return row["holder"] if row else None

    def stage_records(self, video_id: str) -> list[StageRecord]:
        rows = self._stage_rows(video_id, "LIKE", "%")
        pieces = [r for r in rows if PIECE_MARK in r.stage]
        return [_counting_pieces(r, pieces) for r in rows if PIECE_MARK not in r.stage]

    def add_pieces(self, video_id: str, stage: str, pieces: int) -> None:
        with self.db.tx() as s:
            for piece in range(pieces):
                s.execute(
                    "INSERT INTO stage_runs (video_id, stage, state, attempts) VALUES (?, ?, ?, 0)"
                    " ON CONFLICT (video_id, stage) DO NOTHING",
                    (video_id, piece_key(stage, piece), StageState.PENDING.value),
                )

    def piece_records(self, video_id: str, stage: str) -> list[StageRecord]:
        return self._stage_rows(video_id, "LIKE", f"{stage}{PIECE_MARK}%")

    def _stage_rows(self, video_id: str, like: str, pattern: str) -> list[StageRecord]:
        rows = self.db.all(
            f"SELECT * FROM stage_runs WHERE video_id = ? AND stage {like} ?"
            f" ORDER BY stage{self.db.collate_c}",
            (video_id, pattern),
        )
        return [
            StageRecord(
                stage=r["stage"],
                state=StageState(r["state"]),
                attempts=r["attempts"],
                duration_s=r["duration_s"],
                error=r["error"],
                started_at=r["started_at"],
                finished_at=r["finished_at"],
                claimed_by=r["claimed_by"] if (r["claim_expires"] or 0) > time.time() else None,
            )
            for r in rows
        ]

    def stage_started(self, video_id: str, stage: str) -> None:
        with self.db.tx() as s:
            s.execute(
                "INSERT INTO stage_runs (video_id, stage, state, attempts, started_at) VALUES (?, ?, ?, 1, ?)"
                " ON CONFLICT (video_id, stage) DO UPDATE SET state = excluded.state,"
                " attempts = stage_runs.attempts + 1, started_at = excluded.started_at, error = NULL",
                (video_id, stage, StageState.RUNNING.value, time.time()),
            )

    def stage_done(self, video_id: str, stage: str, duration_s: float, claimed_by: str | None = None) -> bool:
        return self._finish_stage(video_id, stage, StageState.DONE, duration_s, None, claimed_by)

    def stage_failed(
        self, video_id: str, stage: str, duration_s: float, error: str, claimed_by: str | None = None
    ) -> bool:
        return self._finish_stage(video_id, stage, StageState.FAILED, duration_s, error, claimed_by)

    def _finish_stage(
        self,
        video_id: str,
        stage: str,
        state: StageState,
        duration_s: float,
        error: str | None,
        claimed_by: str | None,
    ) -> bool:
        # The claim is checked by the UPDATE itself: a check, then a write, would leave a window in
        # which the claim could pass to another worker (a host cut off between the two).
        fence, params = (" AND claimed_by = ?", (claimed_by,)) if claimed_by is not None else ("", ())
        with self.db.tx() as s:
            cur = s.execute(
                "UPDATE stage_runs SET state = ?, duration_s = ?, error = ?, finished_at = ?"
                f" WHERE video_id = ? AND stage = ?{fence}",
                (state.value, duration_s, error, time.time(), video_id, stage, *params),
            )
            return cur.rowcount == 1

    def job_scenes(self, video_id: str) -> list[Scene]:
        return self._scenes_where("s.video_id = ?", [video_id])

    def owners(self) -> list[str]:
        return [r["owner_id"] for r in self.db.all("SELECT DISTINCT owner_id FROM videos ORDER BY owner_id")]

    # ------------------------------------------------------------ commit
    @abstractmethod
    def commit_video(self, bundle: CommitBundle, person_matches: dict) -> None: ...

    def _committed_video(self, s: Session, bundle: CommitBundle) -> Row:
        """The video row a commit writes to, checked and locked first (`_locked_video`)."""
        if len(bundle.text_vectors.vectors) != len(bundle.scenes):
            raise ValueError("one text vector per scene is required")
        row = self._locked_video(s, bundle.video_id)
        if row is None:
            raise NotFoundError(f"no video {bundle.video_id!r}")
        return row

    _for_update = ""  # PostgreSQL locks the row; SQLite's write transaction already excludes others

    @staticmethod
    def _scene_row(video: Row, draft: SceneDraft) -> tuple:
        """The scenes row of a draft (the columns of SCENE_COLUMNS)."""
        return (
            f"{video['id']}-{draft.index:04d}",
            video["id"],
            video["owner_id"],
            draft.index,
            draft.start_s,
            draft.end_s,
            draft.transcript,
            words_json(draft.words),
            draft.ocr_text,
            " ".join(t.label for t in draft.tags),
            draft.thumbnail_key,
            draft.sidecar_key,
            draft.index_terms,
        )

    def _face_row(self, video: Row, scene_pk: int, face: FaceObservation) -> tuple:
        """The faces row of an observation (the columns of FACE_COLUMNS)."""
        return (
            scene_pk,
            video["id"],
            video["owner_id"],
            face.t_s,
            face.box.model_dump_json(),
            face.score,
            face.model,
            self.db.vector(face.embedding),
            face.size_px,
            face.sharpness,
            face.crop_key,
        )

    def _finish_commit(self, s: Session, video: Row, bundle: CommitBundle) -> None:
        s.execute(
            "UPDATE videos SET state = ?, error = NULL, language = ?, scene_count = ?, updated_at = ?"
            " WHERE id = ?",
            (VideoState.INDEXED.value, bundle.language, len(bundle.scenes), time.time(), video["id"]),
        )
        self._changed(s)

    # ------------------------------------------------------------ scenes
    def scenes_by_pk(self, owner_id: str, scene_pks: Sequence[int]) -> dict[int, Scene]:
        if not scene_pks:
            return {}
        among, params = self.db.in_list("s.pk", [int(pk) for pk in scene_pks])
        rows = self._scene_rows(f"s.owner_id = ? AND {among}", [owner_id, *params])
        tags = self._tags_for([r["pk"] for r in rows])
        return {int(r["pk"]): _scene(r, tags.get(r["pk"], [])) for r in rows}

    def list_scenes(self, owner_id: str, video_id: str) -> list[Scene]:
        return self._scenes_where("s.video_id = ? AND s.owner_id = ?", [video_id, owner_id])

    def get_scene(self, owner_id: str, scene_id: str) -> Scene:
        found = self._scenes_where("s.id = ? AND s.owner_id = ?", [scene_id, owner_id])
        if not found:
            raise NotFoundError(f"no scene {scene_id!r}")
        return found[0]

    def _scene_rows(self, where: str, params: Sequence[Any]) -> list[Row]:
        return self.db.all(f"{self._scene_sql} WHERE {where} ORDER BY s.idx", params)

    def _scenes_where(self, where: str, params: Sequence[Any]) -> list[Scene]:
        rows = self._scene_rows(where, params)
        tags = self._tags_for([r["pk"] for r in rows])
        return [_scene(r, tags.get(r["pk"], [])) for r in rows]

    def scene_count(self, owner_id: str) -> int:
        return int(self.db.one("SELECT count(*) AS n FROM scenes WHERE owner_id = ?", (owner_id,))["n"])

    def _tags_for(self, scene_pks: Sequence[int]) -> dict[int, list[Tag]]:
        out: dict[int, list[Tag]] = {}
        if not scene_pks:
            return out
        among, params = self.db.in_list("scene_pk", list(scene_pks))
        rows = self.db.all(
            f"SELECT * FROM scene_tags WHERE {among} ORDER BY score DESC, label{self.db.collate_c}", params
        )
        for row in rows:
            out.setdefault(row["scene_pk"], []).append(
                Tag(label=row["label"], score=row["score"], source=row["source"])
            )
        return out

    def scene_texts(self, owner_id: str, scene_pks: Sequence[int]) -> dict[int, str]:
        if not scene_pks:
            return {}
        among, params = self.db.in_list("s.pk", [int(pk) for pk in scene_pks])
        labels = self.db.joined("t.label", "', '")
        rows = self.db.all(
            "SELECT s.pk, s.transcript, s.ocr_text, s.index_terms,"
            f" (SELECT {labels} FROM scene_tags t WHERE t.scene_pk = s.pk) AS labels"
            f" FROM scenes s WHERE s.owner_id = ? AND {among}",
            [owner_id, *params],
        )
        return {
            int(r["pk"]): "\n".join(
                filter(None, (r["transcript"], r["ocr_text"], r["labels"], r["index_terms"]))
            )
            for r in rows
        }

    # ------------------------------------------------------------ transcript corrections
    def job_transcript_edits(self, video_id: str) -> list[TranscriptEdit]:
        rows = self.db.all("SELECT * FROM transcript_edits WHERE video_id = ? ORDER BY start_s", (video_id,))
        return [_edit(r) for r in rows]

    def transcript_edits(self, owner_id: str, video_id: str) -> list[TranscriptEdit]:
        self.get_video(owner_id, video_id)
        return self.job_transcript_edits(video_id)

    def correct_scene(
        self,
        owner_id: str,
        scene_id: str,
        text: CorrectedText,
        save: TranscriptEdit | None,
        drop: Sequence[str] = (),
    ) -> None:
        vector = self.db.vector
        with self.db.tx() as s:
            row = s.one("SELECT pk, video_id FROM scenes WHERE id = ? AND owner_id = ?", (scene_id, owner_id))
            if row is None:
                raise NotFoundError(f"no scene {scene_id!r}")
            pk = row["pk"]
            if drop:
                among, params = self.db.in_list("id", list(drop))
                s.execute(
                    f"DELETE FROM transcript_edits WHERE video_id = ? AND {among}", [row["video_id"], *params]
                )
            if save is not None:
                s.execute(
                    "INSERT INTO transcript_edits"
                    " (id, video_id, owner_id, start_s, end_s, text, original, edited_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        save.id,
                        row["video_id"],
                        owner_id,
                        save.start_s,
                        save.end_s,
                        save.text,
                        words_json(save.original),
                        save.edited_at,
                    ),
                )
            s.execute(
                "UPDATE scenes SET transcript = ?, words = ?, index_terms = ? WHERE pk = ?",
                (text.transcript, words_json(text.words), text.index_terms, pk),
            )
            s.execute("DELETE FROM scene_vectors WHERE scene_pk = ? AND kind = 'text'", (pk,))
            s.execute(
                "INSERT INTO scene_vectors (scene_pk, kind, model, dim, vector) VALUES (?, 'text', ?, ?, ?)",
                (pk, text.text.model, text.text.dim, vector(text.text.vectors[0])),
            )
            s.execute("DELETE FROM scene_windows WHERE scene_pk = ?", (pk,))
            s.many(
                "INSERT INTO scene_windows (scene_pk, part, model, dim, vector) VALUES (?, ?, ?, ?, ?)",
                [
                    (pk, part, text.windows.model, text.windows.dim, vector(v))
                    for part, v in enumerate(text.windows.vectors)
                ],
            )
            self._changed(s)

    # ------------------------------------------------------------ retrieval channels
    def _filter_sql(self, flt: SceneFilter) -> tuple[str, list[Any]]:
        """WHERE conditions on scenes `s` (and videos `v`) for a filter."""
        conds, params = ["s.owner_id = ?"], [flt.owner_id]
        if flt.video_ids:
            among, more = self.db.in_list("s.video_id", list(flt.video_ids))
            conds.append(among)
            params.extend(more)
        if flt.created_from is not None:
            conds.append("v.created_at >= ?")
            params.append(flt.created_from)
        if flt.created_to is not None:
            conds.append("v.created_at <= ?")
            params.append(flt.created_to)
        for person_id in flt.person_ids:
            conds.append(
                "EXISTS (SELECT 1 FROM faces f JOIN face_matches m ON m.face_pk = f.pk"
                f" WHERE f.scene_pk = s.pk AND m.person_id = ? AND {LIVE_MATCH})"
            )
            params.append(person_id)
        return " AND ".join(conds), params

    @staticmethod
    def _restricts(flt: SceneFilter) -> bool:
        return bool(
            flt.video_ids or flt.person_ids or flt.created_from is not None or flt.created_to is not None
        )

    def scene_frame_vectors(self, owner_id: str, scene_id: str, model: str) -> np.ndarray:
        pk = self.db.one("SELECT pk FROM scenes WHERE id = ? AND owner_id = ?", (scene_id, owner_id))
        if pk is None:
            raise NotFoundError(f"no scene {scene_id!r}")
        rows = self._vector_rows(
            "SELECT dim, vector FROM frame_vectors WHERE scene_pk = ? AND model = ? ORDER BY part",
            (int(pk["pk"]), model),
        )
        return self.db.matrix(rows, "vector", rows[0]["dim"] if rows else 0)

    def _frame_rows(self, bundle: CommitBundle, pk_of: dict[int, int]) -> list[tuple]:
        """(scene pk, part, t_s, model, dim, vector) of the bundle's frame vectors, for either insert."""
        return [
            (pk_of[index], part, float(t), frames.vectors.model, frames.vectors.dim, self.db.vector(v))
            for frames in bundle.frames
            for part, (index, t, v) in enumerate(
                zip(frames.scenes, frames.times, frames.vectors.vectors, strict=True)
            )
        ]

    # ------------------------------------------------------------ frame vectors, model by model
    def frame_vector_counts(self, owner_id: str) -> dict[str, int]:
        rows = self.db.all(
            "SELECT f.model, count(*) AS n FROM frame_vectors f JOIN scenes s ON s.pk = f.scene_pk"
            " WHERE s.owner_id = ? GROUP BY f.model",
            (owner_id,),
        )
        return {r["model"]: int(r["n"]) for r in rows}

    def frames_missing(self, owner_id: str, video_id: str, model: str) -> list[StoredFrame]:
        # Grouped by (scene, part): every image model's row of a frame shares them.
        rows = self.db.all(
            "SELECT f.scene_pk, f.part, min(f.t_s) AS t_s FROM frame_vectors f"
            " JOIN scenes s ON s.pk = f.scene_pk WHERE s.owner_id = ? AND s.video_id = ? AND f.model <> ?"
            " AND NOT EXISTS (SELECT 1 FROM frame_vectors g"
            " WHERE g.scene_pk = f.scene_pk AND g.part = f.part AND g.model = ?)"
            " GROUP BY f.scene_pk, f.part ORDER BY t_s, f.part",
            (owner_id, video_id, model, model),
        )
        return [StoredFrame(int(r["scene_pk"]), int(r["part"]), float(r["t_s"])) for r in rows]

    def add_frame_vectors(
        self, owner_id: str, model: str, frames: Sequence[StoredFrame], vectors: np.ndarray
    ) -> int:
        if len(frames) != len(vectors):
            raise ValueError(f"{len(frames)} frames but {len(vectors)} vectors")
        if not frames:
            return 0
        among, params = self.db.in_list("f.scene_pk", sorted({f.scene_pk for f in frames}))
        with self.db.tx() as s:
            # Locked (PostgreSQL), so that a commit replacing the video's scenes waits for this one.
            held = s.all(
                "SELECT f.scene_pk, f.part, f.t_s, f.model FROM frame_vectors f"
                f" JOIN scenes s ON s.pk = f.scene_pk WHERE s.owner_id = ? AND {among}{self._for_update}",
                [owner_id, *params],
            )
            # A frame is the same one only where another model's row of it still has its time: SQLite
            # hands a reprocessed video's new scenes the old scenes' pks again.
            now = {(r["scene_pk"], r["part"]): r["t_s"] for r in held if r["model"] != model}
            done = {(r["scene_pk"], r["part"]) for r in held if r["model"] == model}
            rows = [
                (f.scene_pk, f.part, f.t_s, model, int(vectors.shape[1]), self.db.vector(v))
                for f, v in zip(frames, vectors, strict=True)
                if now.get((f.scene_pk, f.part)) == f.t_s and (f.scene_pk, f.part) not in done
            ]
            s.many(  # DO NOTHING: another re-embedder may have added the same frame meanwhile
                "INSERT INTO frame_vectors (scene_pk, part, t_s, model, dim, vector)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                rows,
            )
            self._frames_changed(s, model)
        return len(rows)

    def delete_frame_vectors(self, owner_id: str, model: str) -> int:
        with self.db.tx() as s:
            cur = s.execute(
                "DELETE FROM frame_vectors WHERE model = ?"
                " AND scene_pk IN (SELECT pk FROM scenes WHERE owner_id = ?)",
                (model, owner_id),
            )
            self._frames_changed(s, model)
            return int(cur.rowcount)

    def label_vectors(self, model: str) -> tuple[list[str], np.ndarray]:
        rows = self._vector_rows(
            f"SELECT label, dim, vector FROM label_vectors WHERE model = ? ORDER BY label{self.db.collate_c}",
            (model,),
        )
        return [r["label"] for r in rows], self.db.matrix(rows, "vector", rows[0]["dim"] if rows else 0)

    def scenes_with_people(self, flt: SceneFilter, limit: int) -> list[ScoredScene]:
        if not flt.person_ids:
            return []
        where, params = self._filter_sql(flt)
        among, people = self.db.in_list("m.person_id", list(flt.person_ids))
        rows = self.db.all(
            f"SELECT s.pk, min({RANKED_DISTANCE}) AS distance FROM scenes s"
            " JOIN videos v ON v.id = s.video_id JOIN faces f ON f.scene_pk = s.pk"
            " JOIN face_matches m ON m.face_pk = f.pk"
            f" WHERE {among} AND {LIVE_MATCH} AND {where}"
            f" GROUP BY s.pk ORDER BY distance, s.video_id{self.db.collate_c}, s.idx LIMIT ?",
            [*people, *params, limit],
        )
        return [ScoredScene(int(r["pk"]), 1.0 - float(r["distance"])) for r in rows]

    # ------------------------------------------------------------ people and faces
    _PERSON_SQL = (
        "SELECT p.*, (SELECT count(*) FROM person_photos ph WHERE ph.person_id = p.id) AS photo_count,"
        " (SELECT count(DISTINCT f.scene_pk) FROM face_matches m JOIN faces f ON f.pk = m.face_pk"
        f"  WHERE m.person_id = p.id AND {SURE_MATCH}) AS scene_count,"
        " (SELECT count(DISTINCT f.scene_pk) FROM face_matches m JOIN faces f ON f.pk = m.face_pk"
        f"  WHERE m.person_id = p.id AND {POSSIBLE_MATCH}) AS possible_count FROM people p"
    )

    def add_person(self, owner_id: str, name: str) -> Person:
        name = name.strip()
        if not name:
            raise ValueError("a person needs a name")
        try:
            with self.db.tx() as s:
                s.execute(
                    "INSERT INTO people (id, owner_id, name, created_at) VALUES (?, ?, ?, ?)",
                    (new_id(), owner_id, name, time.time()),
                )
        except self.db.unique_violation as exc:
            raise ConflictError(f"a person named {name!r} already exists") from exc
        return self.get_person(owner_id, name)

    def get_person(self, owner_id: str, name_or_id: str) -> Person:
        row = self.db.one(
            f"{self._PERSON_SQL} WHERE p.owner_id = ? AND (p.id = ? OR lower(p.name) = lower(?))",
            (owner_id, name_or_id, name_or_id.strip()),
        )
        if row is None:
            raise NotFoundError(f"no person {name_or_id!r}")
        return _person(row)

    def list_people(self, owner_id: str) -> list[Person]:
        rows = self.db.all(
            f"{self._PERSON_SQL} WHERE p.owner_id = ? ORDER BY lower(p.name){self.db.collate_c}", (owner_id,)
        )
        return [_person(r) for r in rows]

    def rename_person(self, owner_id: str, person_id: str, name: str) -> Person:
        person = self.get_person(owner_id, person_id)
        try:
            with self.db.tx() as s:
                s.execute("UPDATE people SET name = ? WHERE id = ?", (name.strip(), person.id))
        except self.db.unique_violation as exc:
            raise ConflictError(f"a person named {name!r} already exists") from exc
        return self.get_person(owner_id, person.id)

    def delete_person(self, owner_id: str, person_id: str) -> None:
        person = self.get_person(owner_id, person_id)
        with self.db.tx() as s:  # photos and face matches cascade
            s.execute("DELETE FROM people WHERE id = ?", (person.id,))
            self._changed(s)

    def add_person_photo(
        self, owner_id: str, person_id: str, blob_key: str, model: str, embedding: np.ndarray
    ) -> None:
        person = self.get_person(owner_id, person_id)
        with self.db.tx() as s:
            s.execute(
                "INSERT INTO person_photos (person_id, blob_key, model, embedding, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (person.id, blob_key, model, self.db.vector(embedding), time.time()),
            )

    def person_photo_keys(self, owner_id: str, person_id: str) -> list[str]:
        person = self.get_person(owner_id, person_id)
        rows = self.db.all(
            f"SELECT blob_key FROM person_photos WHERE person_id = ? ORDER BY blob_key{self.db.collate_c}",
            (person.id,),
        )
        return [r["blob_key"] for r in rows]

    def merge_people(
        self, owner_id: str, source_id: str, target_id: str, photo_keys: Mapping[str, str]
    ) -> None:
        source, target = self.get_person(owner_id, source_id), self.get_person(owner_id, target_id)
        if source.id == target.id:
            raise ValueError("a person cannot be merged into themselves")
        src, dst = source.id, target.id
        of_source = "SELECT face_pk FROM face_matches WHERE person_id = ?"
        with self.db.tx() as s:
            s.many(
                "UPDATE person_photos SET person_id = ?, blob_key = ? WHERE person_id = ? AND blob_key = ?",
                [(dst, new, src, old) for old, new in photo_keys.items()],
            )
            # One face matched to both: the target's match goes where the source's was judged and the
            # target's was not, or where the source's was confirmed and the target's rejected.
            s.execute(
                "DELETE FROM face_matches WHERE person_id = ? AND verdict IS NULL"
                f" AND face_pk IN ({of_source} AND verdict IS NOT NULL)",
                (dst, src),
            )
            s.execute(
                "DELETE FROM face_matches WHERE person_id = ? AND verdict = 'rejected'"
                f" AND face_pk IN ({of_source} AND verdict = 'confirmed')",
                (dst, src),
            )
            s.execute(
                "UPDATE face_matches SET person_id = ? WHERE person_id = ?"
                " AND face_pk NOT IN (SELECT face_pk FROM face_matches WHERE person_id = ?)",
                (dst, src, dst),
            )
            s.execute("UPDATE face_clusters SET person_id = ? WHERE person_id = ?", (dst, src))
            s.execute("DELETE FROM people WHERE id = ?", (src,))  # what is left of theirs cascades
            self._changed(s)

    def person_embeddings(self, owner_id: str, model: str) -> tuple[list[str], np.ndarray]:
        # Confirmed faces are examples like photos: each decision of the owner's teaches the matcher.
        rows = self._vector_rows(
            "SELECT person_id, embedding FROM ("
            " SELECT ph.person_id, ph.embedding, 0 AS kind, ph.id AS n FROM person_photos ph"
            "  JOIN people p ON p.id = ph.person_id WHERE p.owner_id = ? AND ph.model = ?"
            " UNION ALL SELECT m.person_id, f.embedding, 1 AS kind, f.pk AS n FROM face_matches m"
            "  JOIN faces f ON f.pk = m.face_pk JOIN people p ON p.id = m.person_id"
            "  WHERE p.owner_id = ? AND f.model = ? AND m.verdict = 'confirmed'"
            ") x ORDER BY kind, n",
            (owner_id, model, owner_id, model),
        )
        return [r["person_id"] for r in rows], self.db.matrix(rows, "embedding", self._dim(rows))

    def rejected_embeddings(self, owner_id: str, model: str) -> tuple[list[str], np.ndarray]:
        rows = self._vector_rows(
            "SELECT m.person_id, f.embedding FROM face_matches m JOIN faces f ON f.pk = m.face_pk"
            " JOIN people p ON p.id = m.person_id"
            " WHERE p.owner_id = ? AND f.model = ? AND m.verdict = 'rejected' ORDER BY f.pk",
            (owner_id, model),
        )
        return [r["person_id"] for r in rows], self.db.matrix(rows, "embedding", self._dim(rows))

    def face_embeddings(self, owner_id: str, model: str) -> tuple[list[int], np.ndarray]:
        rows = self._vector_rows(
            "SELECT pk, embedding FROM faces WHERE owner_id = ? AND model = ? ORDER BY pk", (owner_id, model)
        )
        return [int(r["pk"]) for r in rows], self.db.matrix(rows, "embedding", self._dim(rows))

    def _vector_rows(self, query: str, params: Sequence[Any]) -> list[Row]:
        """Rows holding vectors (PostgreSQL reads them in binary)."""
        return self.db.all(query, params)

    @staticmethod
    @abstractmethod
    def _dim(rows: Sequence[Row]) -> int:
        """The dimension of the `embedding` column of rows (0 when there are none)."""

    def replace_person_matches(
        self, owner_id: str, person_id: str, matches: Sequence[tuple[int, float, bool]]
    ) -> None:
        person = self.get_person(owner_id, person_id)
        with self.db.tx() as s:
            s.execute("DELETE FROM face_matches WHERE person_id = ? AND verdict IS NULL", (person.id,))
            # Only the owner's faces; a judged match of the same face stays as the owner left it.
            s.many(
                "INSERT INTO face_matches (face_pk, person_id, distance, possible)"
                " SELECT pk, ?, ?, ? FROM faces WHERE pk = ? AND owner_id = ?"
                " ON CONFLICT (face_pk, person_id) DO NOTHING",
                [(person.id, float(d), bool(p), int(pk), owner_id) for pk, d, p in matches],
            )
            self._changed(s)

    def judged_faces(self, owner_id: str) -> set[int]:
        rows = self.db.all(
            "SELECT m.face_pk FROM face_matches m JOIN people p ON p.id = m.person_id"
            " WHERE p.owner_id = ? AND m.verdict IS NOT NULL",
            (owner_id,),
        )
        return {int(r["face_pk"]) for r in rows}

    def person_matches(
        self, owner_id: str, person_id: str, *, possible_only: bool = False
    ) -> list[MatchView]:
        rows = self.db.all(
            "SELECT m.face_pk, m.distance, m.possible, m.verdict, f.t_s, f.crop_key, s.id AS scene_id,"
            " s.idx, s.thumbnail_key, v.id AS video_id, v.filename FROM face_matches m"
            " JOIN people p ON p.id = m.person_id JOIN faces f ON f.pk = m.face_pk"
            " JOIN scenes s ON s.pk = f.scene_pk JOIN videos v ON v.id = s.video_id"
            f" WHERE p.owner_id = ? AND m.person_id = ?{' AND ' + POSSIBLE_MATCH if possible_only else ''}"
            f" ORDER BY m.distance, v.id{self.db.collate_c}, s.idx, m.face_pk",
            (owner_id, person_id),
        )
        return [match_view(r) for r in rows]

    def set_match_verdict(self, owner_id: str, person_id: str, face_pk: int, verdict: str | None) -> None:
        check_verdict(verdict)
        with self.db.tx() as s:
            cur = s.execute(
                "UPDATE face_matches SET verdict = ? WHERE face_pk = ? AND person_id = ?"
                " AND person_id IN (SELECT id FROM people WHERE owner_id = ?)",
                (verdict, int(face_pk), person_id, owner_id),
            )
            if cur.rowcount != 1:
                raise NotFoundError(f"no face {face_pk} linked to person {person_id!r}")
            self._changed(s)

    # ------------------------------------------------------------ unnamed people (face clusters)
    _CLUSTER_SQL = (
        "SELECT c.id AS cluster_id, c.owner_id, c.person_id, c.hidden, c.created_at, p.name AS person_name,"
        " f.pk AS face_pk, f.video_id, v.filename, s.id AS scene_id, s.idx, f.scene_pk, f.t_s, f.size_px,"
        " f.sharpness, f.crop_key FROM face_clusters c JOIN faces f ON f.cluster_id = c.id"
        " JOIN scenes s ON s.pk = f.scene_pk JOIN videos v ON v.id = f.video_id"
        " LEFT JOIN people p ON p.id = c.person_id WHERE c.owner_id = ?"
    )
    _BEST_FIRST = " ORDER BY f.size_px DESC, f.sharpness DESC, f.pk"

    def clustering_faces(self, owner_id: str, model: str) -> ClusteringFaces:
        rows = self._vector_rows(
            "SELECT pk, cluster_id, size_px, sharpness, embedding FROM faces"
            " WHERE owner_id = ? AND model = ? ORDER BY pk",
            (owner_id, model),
        )
        return ClusteringFaces(
            pks=[int(r["pk"]) for r in rows],
            clusters=[r["cluster_id"] for r in rows],
            size_px=[float(r["size_px"]) for r in rows],
            sharpness=[float(r["sharpness"]) for r in rows],
            vectors=self.db.matrix(rows, "embedding", self._dim(rows)),
        )

    def add_to_clusters(
        self, owner_id: str, joins: dict[int, str], groups: Sequence[Sequence[int]]
    ) -> list[str]:
        put = (
            "UPDATE faces SET cluster_id = ? WHERE pk = ? AND owner_id = ? AND cluster_id IS NULL"
            " AND EXISTS (SELECT 1 FROM face_clusters c WHERE c.id = ? AND c.owner_id = ?)"
        )
        made = [new_id() for _ in groups]
        with self.db.tx() as s:
            s.many(
                "INSERT INTO face_clusters (id, owner_id, created_at) VALUES (?, ?, ?)",
                [(cid, owner_id, time.time()) for cid in made],
            )
            moves = [*joins.items(), *((pk, cid) for cid, g in zip(made, groups, strict=True) for pk in g)]
            s.many(put, [(cid, int(pk), owner_id, cid, owner_id) for pk, cid in moves])
        return made

    def _clusters(self, owner_id: str, where: str, params: Sequence[Any], best: int) -> list[FaceCluster]:
        rows = self.db.all(f"{self._CLUSTER_SQL}{where}{self._BEST_FIRST}", [owner_id, *params])
        grouped: dict[str, list[Row]] = {}
        for row in rows:
            grouped.setdefault(row["cluster_id"], []).append(row)
        clusters = [_cluster(group, best) for group in grouped.values()]
        return sorted(clusters, key=lambda c: (-c.face_count, -c.scene_count, c.created_at, c.id))

    def list_clusters(self, owner_id: str, *, hidden: bool = False, best: int = 4) -> list[FaceCluster]:
        return self._clusters(owner_id, "" if hidden else " AND NOT c.hidden", (), best)

    def get_cluster(self, owner_id: str, cluster_id: str, *, best: int = 4) -> FaceCluster:
        found = self._clusters(owner_id, " AND c.id = ?", (cluster_id,), best)
        if not found:
            raise NotFoundError(f"no unnamed person {cluster_id!r}")
        return found[0]

    def cluster_faces(self, owner_id: str, cluster_id: str) -> list[ClusterFace]:
        return self.get_cluster(owner_id, cluster_id, best=10**9).best_faces

    _FACE_SQL = (
        "SELECT f.pk AS face_pk, f.cluster_id, f.video_id, v.filename, s.id AS scene_id, s.idx, f.t_s,"
        " f.size_px, f.sharpness, f.crop_key FROM faces f JOIN scenes s ON s.pk = f.scene_pk"
        " JOIN videos v ON v.id = f.video_id WHERE f.owner_id = ?"
    )

    def unclustered_faces(self, owner_id: str, model: str) -> list[ClusterFace]:
        rows = self.db.all(
            f"{self._FACE_SQL} AND f.model = ? AND f.cluster_id IS NULL{self._BEST_FIRST}", (owner_id, model)
        )
        return [_cluster_face(r) for r in rows]

    def get_face(self, owner_id: str, face_pk: int) -> ClusterFace:
        row = self.db.one(f"{self._FACE_SQL} AND f.pk = ?", (owner_id, int(face_pk)))
        if row is None:
            raise NotFoundError(f"no face {face_pk}")
        return _cluster_face(row)

    def face_cluster(self, owner_id: str, face_pk: int) -> str | None:
        row = self.db.one(
            "SELECT cluster_id FROM faces WHERE pk = ? AND owner_id = ?", (int(face_pk), owner_id)
        )
        if row is None:
            raise NotFoundError(f"no face {face_pk}")
        return row["cluster_id"]

    def _own_cluster(self, s: Session, owner_id: str, cluster_id: str) -> None:
        if (
            s.one("SELECT id FROM face_clusters WHERE id = ? AND owner_id = ?", (cluster_id, owner_id))
            is None
        ):
            raise NotFoundError(f"no unnamed person {cluster_id!r}")

    def set_cluster_person(self, owner_id: str, cluster_id: str, person_id: str | None) -> None:
        if person_id is not None:
            person_id = self.get_person(owner_id, person_id).id
        with self.db.tx() as s:
            self._own_cluster(s, owner_id, cluster_id)
            s.execute("UPDATE face_clusters SET person_id = ? WHERE id = ?", (person_id, cluster_id))

    def set_cluster_hidden(self, owner_id: str, cluster_id: str, hidden: bool) -> None:
        with self.db.tx() as s:
            self._own_cluster(s, owner_id, cluster_id)
            s.execute("UPDATE face_clusters SET hidden = ? WHERE id = ?", (bool(hidden), cluster_id))

    def merge_clusters(self, owner_id: str, source_id: str, target_id: str) -> None:
        if source_id == target_id:
            raise ValueError("a person cannot be merged into themselves")
        with self.db.tx() as s:
            self._own_cluster(s, owner_id, source_id)
            self._own_cluster(s, owner_id, target_id)
            s.execute("UPDATE faces SET cluster_id = ? WHERE cluster_id = ?", (target_id, source_id))
            s.execute("DELETE FROM face_clusters WHERE id = ?", (source_id,))

    def move_face(self, owner_id: str, face_pk: int, cluster_id: str | None) -> str:
        before = self.face_cluster(owner_id, face_pk)
        with self.db.tx() as s:
            if cluster_id is None:
                cluster_id = new_id()
                s.execute(
                    "INSERT INTO face_clusters (id, owner_id, created_at) VALUES (?, ?, ?)",
                    (cluster_id, owner_id, time.time()),
                )
            else:
                self._own_cluster(s, owner_id, cluster_id)
            s.execute("UPDATE faces SET cluster_id = ? WHERE pk = ?", (cluster_id, int(face_pk)))
            if before is not None:  # a cluster left without faces is gone
                s.execute(
                    "DELETE FROM face_clusters WHERE id = ?"
                    " AND NOT EXISTS (SELECT 1 FROM faces WHERE cluster_id = ?)",
                    (before, before),
                )
        return cluster_id

    def confirm_faces(self, owner_id: str, person_id: str, face_pks: Sequence[int]) -> None:
        person = self.get_person(owner_id, person_id)
        own = "SELECT pk FROM faces WHERE pk = ? AND owner_id = ?"
        with self.db.tx() as s:
            s.many(
                f"DELETE FROM face_matches WHERE face_pk IN ({own}) AND person_id <> ? AND verdict IS NULL",
                [(int(pk), owner_id, person.id) for pk in face_pks],
            )
            s.many(
                "INSERT INTO face_matches (face_pk, person_id, distance, possible, verdict)"
                " SELECT pk, ?, 0.0, ?, 'confirmed' FROM faces WHERE pk = ? AND owner_id = ?"
                " ON CONFLICT (face_pk, person_id) DO UPDATE SET verdict = 'confirmed'",
                [(person.id, False, int(pk), owner_id) for pk in face_pks],
            )
            self._changed(s)

    def cluster_votes(self, owner_id: str) -> list[tuple[str, str, int]]:
        rows = self.db.all(
            "SELECT c.id AS cluster_id, m.person_id, count(*) AS n FROM face_clusters c"
            " JOIN faces f ON f.cluster_id = c.id JOIN face_matches m ON m.face_pk = f.pk"
            f" WHERE c.owner_id = ? AND c.person_id IS NULL AND {SURE_MATCH}"
            f" GROUP BY c.id, m.person_id ORDER BY c.id{self.db.collate_c}, n DESC",
            (owner_id,),
        )
        return [(r["cluster_id"], r["person_id"], int(r["n"])) for r in rows]


def _cluster_face(row: Row) -> ClusterFace:
    return ClusterFace(
        face_pk=int(row["face_pk"]),
        video_id=row["video_id"],
        filename=row["filename"],
        scene_id=row["scene_id"],
        scene_index=row["idx"],
        t_s=float(row["t_s"]),
        size_px=float(row["size_px"]),
        sharpness=float(row["sharpness"]),
        crop_key=row["crop_key"],
        cluster_id=row["cluster_id"],
    )


def _one_per_scene_first(rows: Sequence[Row]) -> list[Row]:
    """The best face of each scene, then the rest (each in the order given): the crops shown differ,
    rather than one face seen in a few frames of one shot."""
    scenes: set[int] = set()
    first: list[int] = []
    for i, row in enumerate(rows):
        if row["scene_pk"] not in scenes:
            scenes.add(row["scene_pk"])
            first.append(i)
    chosen = set(first)
    return [rows[i] for i in first] + [r for i, r in enumerate(rows) if i not in chosen]


def _cluster(rows: Sequence[Row], best: int) -> FaceCluster:
    """A cluster from its faces' rows, best face first."""
    first = rows[0]
    return FaceCluster(
        id=first["cluster_id"],
        owner_id=first["owner_id"],
        person_id=first["person_id"],
        person_name=first["person_name"],
        hidden=bool(first["hidden"]),
        face_count=len(rows),
        scene_count=len({r["scene_pk"] for r in rows}),
        best_faces=[_cluster_face(r) for r in _one_per_scene_first(rows)[:best]],
        created_at=float(first["created_at"]),
    )


# The columns _scene_row and _face_row fill, in order.
SCENE_COLUMNS = (
    "id, video_id, owner_id, idx, start_s, end_s, transcript, words, ocr_text, tags_text,"
    " thumbnail_key, sidecar_key, index_terms"
)
FACE_COLUMNS = "scene_pk, video_id, owner_id, t_s, box, score, model, embedding, size_px, sharpness, crop_key"


def _counting_pieces(record: StageRecord, pieces: list[StageRecord]) -> StageRecord:
    """`record` with the count of its pieces and of those done (none: not run in pieces)."""
    mine = [p for p in pieces if p.stage.startswith(f"{record.stage}{PIECE_MARK}")]
    if not mine:
        return record
    done = sum(p.state == StageState.DONE for p in mine)
    return record.model_copy(update={"pieces": len(mine), "pieces_done": done})


def _video(row: Row) -> Video:
    info = loads(row["info"])
    return Video(
        id=row["id"],
        owner_id=row["owner_id"],
        filename=row["filename"],
        original_key=row["original_key"],
        size_bytes=row["size_bytes"],
        sha256=row["sha256"],
        state=VideoState(row["state"]),
        error=row["error"],
        info=MediaInfo.model_validate(info) if info else None,
        language=row["language"],
        scene_count=row["scene_count"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        claimed_by=row["claimed_by"] if (row["claim_expires"] or 0) > time.time() else None,
    )


def words_json(words: Sequence[Word]) -> str:
    """Words as the scenes and transcript_edits rows keep them (a word without an edit says nothing
    of edits)."""
    return json.dumps([w.model_dump(exclude_none=True) for w in words])


def _edit(row: Row) -> TranscriptEdit:
    return TranscriptEdit(
        id=row["id"],
        video_id=row["video_id"],
        start_s=row["start_s"],
        end_s=row["end_s"],
        text=row["text"],
        original=[Word(**w) for w in loads(row["original"])],
        edited_at=row["edited_at"],
    )


def _names(joined: str | None) -> list[str]:
    return joined.split(NAME_SEPARATOR) if joined else []


def _scene(row: Row, tags: list[Tag]) -> Scene:
    sure, possible = _names(row["people_names"]), _names(row["possible_names"])
    return Scene(
        id=row["id"],
        video_id=row["video_id"],
        index=row["idx"],
        start_s=row["start_s"],
        end_s=row["end_s"],
        transcript=row["transcript"],
        words=[Word(**w) for w in loads(row["words"])],
        ocr_text=row["ocr_text"],
        tags=tags,
        people=sure,
        possible_people=only_possible(possible, sure),
        thumbnail_key=row["thumbnail_key"],
        sidecar_key=row["sidecar_key"],
    )


def _person(row: Row) -> Person:
    return Person(
        id=row["id"],
        owner_id=row["owner_id"],
        name=row["name"],
        photo_count=row["photo_count"],
        scene_count=row["scene_count"],
        possible_count=row["possible_count"],
        created_at=row["created_at"],
    )
