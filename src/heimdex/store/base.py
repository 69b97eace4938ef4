"""The metadata store: videos, the job ledger, scenes with their text, vectors, tags, faces and people.

The interface comes in roles matching their users: VideoStore and PeopleStore (the service, for
owners), SceneIndex (search), JobLedger (the runner and workers). Every role but JobLedger is scoped
by `owner_id`: a caller can never reach another owner's rows through it. One SQL implementation
(sql.py) serves both backends (sqlite.py, postgres.py), which add only what differs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import numpy as np

from heimdex.domain import (
    ClusterFace,
    FaceCluster,
    FaceObservation,
    MediaInfo,
    Person,
    Scene,
    SceneDraft,
    StageRecord,
    TranscriptEdit,
    Video,
    VideoState,
    Word,
)
from heimdex.matching import FaceMatch

# How a face match (alias `m`) counts, in SQL both dialects read. Sure: confirmed by the owner, or
# found within the match distance and not judged since. Possible: found in the margin above it and
# not judged. A rejected match counts nowhere, and stays so that re-matching does not bring it back.
SURE_MATCH = "(m.verdict = 'confirmed' OR (m.verdict IS NULL AND NOT m.possible))"
POSSIBLE_MATCH = "(m.verdict IS NULL AND m.possible)"
LIVE_MATCH = "(m.verdict IS NULL OR m.verdict <> 'rejected')"
VERDICTS = ("confirmed", "rejected")


def only_possible(possible: Sequence[str], sure: Sequence[str]) -> list[str]:
    """The names a scene has only possible matches of (a scene with a sure face of someone lists
    them as sure even if another of their faces there is possible)."""
    return sorted(set(possible) - set(sure))


@dataclass(frozen=True)
class VectorSet:
    """A model's vectors, tagged with the model that made them so that models never mix."""

    model: str
    vectors: np.ndarray  # (n, dim) float32, L2-normalised

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1]) if self.vectors.ndim == 2 else 0


@dataclass(frozen=True)
class WindowVectors:
    """Passage vectors of windows of a scene's speech (several per long scene); `scenes[i]` is the
    scene index of row i. Dense search scores a scene by its best vector, whole or window."""

    scenes: list[int]
    vectors: VectorSet


@dataclass(frozen=True)
class FrameVectors:
    """Image vectors of a video's sampled frames ("more like this"); row i was taken at `times[i]` in
    scene `scenes[i]`. Image search scores a scene by its best frame."""

    scenes: list[int]
    times: list[float]
    vectors: VectorSet


@dataclass(frozen=True)
class CommitBundle:
    """Everything commit writes for one video, in one transaction."""

    video_id: str
    language: str | None
    scenes: list[SceneDraft]
    text_vectors: VectorSet  # one row per scene, in scene order
    faces: list[FaceObservation]  # each records the model of its embedding
    label_vectors: dict[str, np.ndarray] = field(default_factory=dict)  # tag label -> vector (text model)
    windows: WindowVectors | None = None
    frames: tuple[FrameVectors, ...] = ()  # one per image model (the tagger's, CLIP's)


@dataclass(frozen=True)
class CorrectedText:
    """A scene's text after a transcript correction, with what search reads of it made again: one
    text vector (`text.vectors` has one row) and the windows of its speech."""

    words: list[Word]
    transcript: str
    index_terms: str
    text: VectorSet
    windows: VectorSet  # rows in window order; zero rows when the speech is too short for windows


@dataclass(frozen=True)
class MatchView:
    """One face linked to a person, for review: where it is, how far, and what the owner said."""

    face_pk: int
    video_id: str
    filename: str
    scene_id: str
    scene_index: int
    t_s: float
    distance: float
    possible: bool
    verdict: str | None
    thumbnail_key: str | None
    crop_key: str | None = None  # the face itself, cut out (faces indexed before crops were kept: None)

    @property
    def to_review(self) -> bool:
        """A possible match nobody judged yet: POSSIBLE_MATCH, for a match already read."""
        return self.possible and self.verdict is None


def match_view(row) -> MatchView:
    """A MatchView from a row of person_matches' query (both dialects select the same columns)."""
    return MatchView(
        face_pk=int(row["face_pk"]),
        video_id=row["video_id"],
        filename=row["filename"],
        scene_id=row["scene_id"],
        scene_index=row["idx"],
        t_s=float(row["t_s"]),
        distance=float(row["distance"]),
        possible=bool(row["possible"]),
        verdict=row["verdict"],
        thumbnail_key=row["thumbnail_key"],
        crop_key=row["crop_key"],
    )


def check_verdict(verdict: str | None) -> None:
    if verdict is not None and verdict not in VERDICTS:
        raise ValueError(f"a verdict is one of {VERDICTS} or None, not {verdict!r}")


@dataclass(frozen=True)
class SceneFilter:
    """Restrictions a search applies before ranking."""

    owner_id: str
    video_ids: Sequence[str] = ()
    person_ids: Sequence[str] = ()  # every listed person must appear in the scene
    created_from: float | None = None
    created_to: float | None = None


@dataclass(frozen=True)
class StoredFrame:
    """A sampled frame as frame_vectors knows it: its scene, its place among its video's frames (the
    `part` every image model's row of it shares) and its time in the video."""

    scene_pk: int
    part: int
    t_s: float


@dataclass(frozen=True)
class ScoredScene:
    scene_pk: int
    score: float
    window: int | None = None  # dense_text: the window (part) of the scene that scored, if not the whole


class VideoStore(ABC):
    """Videos as their owner sees them: every call names the owner, and another owner's video is a
    NotFoundError."""

    @abstractmethod
    def add_video(
        self, owner_id: str, filename: str, original_key: str, size_bytes: int, sha256: str | None
    ) -> Video: ...

    @abstractmethod
    def get_video(self, owner_id: str, video_id: str) -> Video:
        """Raises NotFoundError when absent (or owned by someone else)."""

    @abstractmethod
    def get_videos(self, owner_id: str, video_ids: Sequence[str]) -> dict[str, Video]:
        """The owner's videos among these ids, by id, in one query (a page of hits); others absent."""

    @abstractmethod
    def find_video_by_hash(self, owner_id: str, sha256: str) -> Video | None: ...

    @abstractmethod
    def list_videos(self, owner_id: str, state: VideoState | None = None) -> list[Video]: ...

    @abstractmethod
    def video_stages(self, owner_id: str, video_id: str) -> list[StageRecord]:
        """The video's job ledger, for its owner."""

    @abstractmethod
    def requeue_video(self, owner_id: str, video_id: str) -> Video:
        """Forget the video's ledger and mark it queued, so that its next run starts from the first
        stage (reprocess)."""

    @abstractmethod
    def delete_video(self, owner_id: str, video_id: str) -> None:
        """Remove the video and everything derived from it (scenes, vectors, tags, faces, ledger)."""


class JobLedger(ABC):
    """The runner's and the workers' side: videos read by id, their state, claims and job ledger, and
    the commit. Only code that holds (or is taking) the video's claim calls these; nothing here is
    reachable from a request."""

    @abstractmethod
    def job_video(self, video_id: str) -> Video:
        """The video a job names, whoever owns it; NotFoundError once it was deleted."""

    @abstractmethod
    def set_video_state(self, video_id: str, state: VideoState, error: str | None = None) -> None: ...

    @abstractmethod
    def set_video_info(self, video_id: str, info: MediaInfo) -> None: ...

    # Server mode runs stages, not whole videos: a worker holds one stage of a video exclusively while
    # it runs it (owner and expiry on the stage's ledger row, judged by the database's clock), so that
    # a message delivered twice runs the stage once. The video row shows a live holder for `status`
    # and for reprocess's conflict check.
    @abstractmethod
    def claim_stage(self, video_id: str, stage: str, worker_id: str, lease_s: float) -> bool:
        """Take the stage unless it is done or another worker holds a live claim on it."""

    @abstractmethod
    def renew_stage_claim(self, video_id: str, stage: str, worker_id: str, lease_s: float) -> bool:
        """Extend the worker's claim on the stage; False when it no longer holds it."""

    @abstractmethod
    def release_stage_claim(self, video_id: str, stage: str, worker_id: str) -> None:
        """Give the stage's claim up (a no-op unless `worker_id` holds it)."""

    # Work for the whole library, not a video's (re-embedding after a CLIP model change), is held by
    # one worker at a time under a named lease, judged by the database's clock as stage claims are.
    @abstractmethod
    def claim_lease(self, name: str, holder: str, lease_s: float) -> bool:
        """Take the lease unless another holder's has not expired (the holder's own is renewed)."""

    @abstractmethod
    def renew_lease(self, name: str, holder: str, lease_s: float) -> bool:
        """Extend the holder's lease; False when it no longer holds it."""

    @abstractmethod
    def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up (a no-op unless `holder` holds it)."""

    @abstractmethod
    def lease_holder(self, name: str) -> str | None:
        """Who holds the lease now (None when nobody does, or their lease expired)."""

    @abstractmethod
    def stage_records(self, video_id: str) -> list[StageRecord]:
        """The stages' rows, not their pieces'; a stage in pieces counts them (`pieces`, `pieces_done`)."""

    @abstractmethod
    def add_pieces(self, video_id: str, stage: str, pieces: int) -> None:
        """A fan-out stage's plan: a pending row for each of its pieces that has none yet."""

    @abstractmethod
    def piece_records(self, video_id: str, stage: str) -> list[StageRecord]:
        """The rows of a fan-out stage's pieces (`domain.piece_key`), claimed and recorded like
        stages under their own keys."""

    @abstractmethod
    def stage_started(self, video_id: str, stage: str) -> None: ...

    @abstractmethod
    def stage_done(self, video_id: str, stage: str, duration_s: float, claimed_by: str | None = None) -> bool:
        """Record the stage done. With `claimed_by` (server mode: the worker that ran it), only while
        that worker still holds the stage's claim, checked in the same statement, so that a worker
        which lost its claim after its last check records nothing: False then."""

    @abstractmethod
    def stage_failed(
        self, video_id: str, stage: str, duration_s: float, error: str, claimed_by: str | None = None
    ) -> bool:
        """Record the stage failed; `claimed_by` as for stage_done."""

    @abstractmethod
    def job_transcript_edits(self, video_id: str) -> list[TranscriptEdit]:
        """The owner's corrections of the video's transcript, which its next commit keeps."""

    @abstractmethod
    def owners(self) -> list[str]:
        """Every owner with a video, sorted (re-embedding goes through them all)."""

    @abstractmethod
    def job_scenes(self, video_id: str) -> list[Scene]:
        """The scenes the video's last commit made visible (the run cleaning up after itself)."""

    @abstractmethod
    def commit_video(self, bundle: CommitBundle, person_matches: dict[int, FaceMatch]) -> None:
        """Atomically replace the video's scenes, vectors, tags and faces, and mark it indexed.

        `person_matches` maps an index into `bundle.faces` to the person it resembles (sure or possible).
        """


class SceneIndex(ABC):
    """What search reads: scenes and the retrieval channels, all scoped by owner."""

    def one_connection(self) -> AbstractContextManager[None]:
        """The calls made inside the block, on this thread, share one database connection: a search
        reads through a dozen of them, and each would otherwise take (and check) a pooled one."""
        return nullcontext()

    @abstractmethod
    def scenes_by_pk(self, owner_id: str, scene_pks: Sequence[int]) -> dict[int, Scene]:
        """The owner's scenes among `scene_pks` (others are left out)."""

    @abstractmethod
    def list_scenes(self, owner_id: str, video_id: str) -> list[Scene]:
        """The video's scenes in order; empty for another owner's video."""

    @abstractmethod
    def get_scene(self, owner_id: str, scene_id: str) -> Scene:
        """One scene by its id; NotFoundError when absent or someone else's."""

    @abstractmethod
    def scene_count(self, owner_id: str) -> int: ...

    @abstractmethod
    def full_text(
        self, flt: SceneFilter, terms: Sequence[str], phrases: Sequence[str], limit: int
    ) -> list[ScoredScene]:
        """BM25 over transcript, on-screen text and tags; best first."""

    @abstractmethod
    def scene_texts(self, owner_id: str, scene_pks: Sequence[int]) -> dict[int, str]:
        """The words full text searches in each scene (transcript, on-screen text, tag labels), without
        building whole scenes: fusion reads them for every full-text hit."""

    @abstractmethod
    def vocabulary(self, owner_id: str) -> Sequence[str]:
        """The words full text indexes for the owner (may include other owners' words, words of
        videos since deleted, and stems):
        candidates for near-word lookups, which check each against term_counts. The same object is
        returned while the words have not changed, so that callers can keep an index of it."""

    @abstractmethod
    def term_counts(self, owner_id: str, terms: Sequence[str], cap: int) -> dict[str, int]:
        """How many of the owner's scenes hold each term (as full text matches it), counted up to
        `cap`: a term that common carries little evidence however much more common it is."""

    @abstractmethod
    def dense_text(self, flt: SceneFilter, model: str, query: np.ndarray, limit: int) -> list[ScoredScene]:
        """Cosine similarity of the query vector to scene text vectors made by `model`, a scene scoring
        its best vector (the whole scene, or a window of its speech); best first."""

    @abstractmethod
    def image_search(self, flt: SceneFilter, model: str, query: np.ndarray, limit: int) -> list[ScoredScene]:
        """Cosine similarity of an image vector to the frame vectors made by `model`, a scene scoring
        its best frame; best first."""

    @abstractmethod
    def scene_frame_vectors(self, owner_id: str, scene_id: str, model: str) -> np.ndarray:
        """The (n, dim) frame vectors of one of the owner's scenes, in time order (empty when it has
        none); NotFoundError for another owner's scene."""

    @abstractmethod
    def label_vectors(self, model: str) -> tuple[list[str], np.ndarray]:
        """All known tag labels and their vectors for `model` (tag names, shared by every owner)."""

    @abstractmethod
    def scenes_with_labels(
        self, flt: SceneFilter, label_weights: dict[str, float], limit: int
    ) -> list[ScoredScene]:
        """Scenes tagged with any of the labels, scored by max(label weight * tag score)."""

    @abstractmethod
    def scenes_with_people(self, flt: SceneFilter, limit: int) -> list[ScoredScene]:
        """Scenes where every person in the filter appears, best face match first."""


class PeopleStore(ABC):
    """Enrolled people, their photos, and the faces linked to them; every call names the owner."""

    @abstractmethod
    def add_person(self, owner_id: str, name: str) -> Person: ...

    @abstractmethod
    def get_person(self, owner_id: str, name_or_id: str) -> Person: ...

    @abstractmethod
    def list_people(self, owner_id: str) -> list[Person]: ...

    @abstractmethod
    def rename_person(self, owner_id: str, person_id: str, name: str) -> Person: ...

    @abstractmethod
    def delete_person(self, owner_id: str, person_id: str) -> None:
        """Remove the person, their photos and every link to faces."""

    @abstractmethod
    def add_person_photo(
        self, owner_id: str, person_id: str, blob_key: str, model: str, embedding: np.ndarray
    ) -> None: ...

    @abstractmethod
    def person_photo_keys(self, owner_id: str, person_id: str) -> list[str]:
        """The blob keys of the person's enrolled photos, in key order (0000, the one shown, first)."""

    @abstractmethod
    def merge_people(
        self, owner_id: str, source_id: str, target_id: str, photo_keys: Mapping[str, str]
    ) -> None:
        """Two people who are one, in one transaction: source's photos (their blob keys renamed by
        `photo_keys`, old -> new), matches and clusters become target's, and source is deleted. Where
        both have a match of one face, a judged one wins over an undecided one, and confirmed over
        rejected (the owner said both; the last word, joining them, says the face is this person)."""

    @abstractmethod
    def person_embeddings(self, owner_id: str, model: str) -> tuple[list[str], np.ndarray]:
        """(person_id per row, (n, dim) embeddings) of every example of the owner's people: enrolled
        photos, and faces the owner confirmed (named clusters, confirmed matches)."""

    @abstractmethod
    def rejected_embeddings(self, owner_id: str, model: str) -> tuple[list[str], np.ndarray]:
        """(person_id per row, (n, dim)) of the faces the owner rejected for each person."""

    @abstractmethod
    def face_embeddings(self, owner_id: str, model: str) -> tuple[list[int], np.ndarray]:
        """(face pk per row, (n, dim)) of every face seen in the owner's indexed videos."""

    @abstractmethod
    def replace_person_matches(
        self, owner_id: str, person_id: str, matches: Sequence[tuple[int, float, bool]]
    ) -> None:
        """Set the faces (face pk, distance, possible) that the matcher finds for the person, replacing
        its earlier findings. Matches the owner confirmed or rejected stay as they are; faces of other
        owners are left out."""

    @abstractmethod
    def judged_faces(self, owner_id: str) -> set[int]:
        """Faces with a confirmed or rejected match: re-matching leaves them alone."""

    @abstractmethod
    def person_matches(
        self, owner_id: str, person_id: str, *, possible_only: bool = False
    ) -> list[MatchView]:
        """The faces linked to the person (rejected ones too, marked so), nearest first."""

    @abstractmethod
    def set_match_verdict(self, owner_id: str, person_id: str, face_pk: int, verdict: str | None) -> None:
        """Confirm or reject one face's match to the person; None makes it the matcher's call again.
        NotFoundError when the owner has no such match."""


class FrameModels(ABC):
    """An owner's frame vectors model by model, for re-embedding them with another image model
    (reembed.py): how many each model has, the frames one lacks, adding its vectors, retiring a
    model's. Scoped by owner like SceneIndex."""

    @abstractmethod
    def frame_vector_counts(self, owner_id: str) -> dict[str, int]:
        """Model -> how many frame vectors of it the owner's scenes have."""

    @abstractmethod
    def frames_missing(self, owner_id: str, video_id: str, model: str) -> list[StoredFrame]:
        """The video's frames that have a vector of some image model but none of `model`, in time
        order (empty for another owner's video)."""

    @abstractmethod
    def add_frame_vectors(
        self, owner_id: str, model: str, frames: Sequence[StoredFrame], vectors: np.ndarray
    ) -> int:
        """Store `model`'s vector of each frame (row i of `vectors` is frames[i]'s). Frames the owner's
        scenes no longer hold at that part and time (the video was reprocessed or deleted meanwhile),
        and frames that have a vector of `model` already, are skipped; returns how many were added."""

    @abstractmethod
    def delete_frame_vectors(self, owner_id: str, model: str) -> int:
        """Remove every frame vector of `model` from the owner's scenes; returns how many."""


class TranscriptCorrections(ABC):
    """The owner's corrections of transcripts, kept over the recognised words (corrections.py)."""

    @abstractmethod
    def transcript_edits(self, owner_id: str, video_id: str) -> list[TranscriptEdit]:
        """The video's corrections in time order; NotFoundError for another owner's video."""

    @abstractmethod
    def correct_scene(
        self,
        owner_id: str,
        scene_id: str,
        text: CorrectedText,
        save: TranscriptEdit | None,
        drop: Sequence[str] = (),
    ) -> None:
        """In one transaction: store `save` and forget the edits `drop`, and give the scene `text`
        (its words, full text and vectors)."""


@dataclass(frozen=True)
class ClusteringFaces:
    """The owner's faces of one model as clustering reads them: row i is face `pks[i]`, in cluster
    `clusters[i]` (None: not yet clustered), with its size, sharpness and identity vector."""

    pks: list[int]
    clusters: list[str | None]
    size_px: list[float]
    sharpness: list[float]
    vectors: np.ndarray


class FaceClusters(ABC):
    """Unnamed people: the owner's faces grouped into clusters; every call names the owner, and
    another owner's cluster or face is a NotFoundError."""

    @abstractmethod
    def clustering_faces(self, owner_id: str, model: str) -> ClusteringFaces: ...

    @abstractmethod
    def add_to_clusters(
        self, owner_id: str, joins: dict[int, str], groups: Sequence[Sequence[int]]
    ) -> list[str]:
        """Put unclustered faces (by pk) into existing clusters (`joins`) and into new ones (`groups`,
        one new cluster each, whose ids are returned). A face clustered meanwhile is left where it is."""

    @abstractmethod
    def list_clusters(self, owner_id: str, *, hidden: bool = False, best: int = 4) -> list[FaceCluster]:
        """The owner's clusters with faces, largest first (hidden ones only when asked), each with its
        `best` faces."""

    @abstractmethod
    def get_cluster(self, owner_id: str, cluster_id: str, *, best: int = 4) -> FaceCluster: ...

    @abstractmethod
    def cluster_faces(self, owner_id: str, cluster_id: str) -> list[ClusterFace]:
        """Every face of the cluster, largest and sharpest first."""

    @abstractmethod
    def unclustered_faces(self, owner_id: str, model: str) -> list[ClusterFace]:
        """The owner's faces of `model` in no cluster (too small or blurred to seed one, and near
        none), largest and sharpest first."""

    @abstractmethod
    def get_face(self, owner_id: str, face_pk: int) -> ClusterFace:
        """One face of the owner's, where it was seen and its cluster (NotFoundError otherwise)."""

    @abstractmethod
    def face_cluster(self, owner_id: str, face_pk: int) -> str | None:
        """The cluster a face of the owner's is in (NotFoundError for no such face)."""

    @abstractmethod
    def set_cluster_person(self, owner_id: str, cluster_id: str, person_id: str | None) -> None: ...

    @abstractmethod
    def set_cluster_hidden(self, owner_id: str, cluster_id: str, hidden: bool) -> None: ...

    @abstractmethod
    def merge_clusters(self, owner_id: str, source_id: str, target_id: str) -> None:
        """Move every face of `source` into `target` and drop `source`."""

    @abstractmethod
    def move_face(self, owner_id: str, face_pk: int, cluster_id: str | None) -> str:
        """Put one face into another cluster, or (None) into a new cluster of its own; returns the
        face's cluster id."""

    @abstractmethod
    def confirm_faces(self, owner_id: str, person_id: str, face_pks: Sequence[int]) -> None:
        """The owner says these faces are the person: confirmed matches (examples for later matching),
        and the faces' undecided matches to anyone else dropped."""

    @abstractmethod
    def cluster_votes(self, owner_id: str) -> list[tuple[str, str, int]]:
        """(unnamed cluster, person, faces of the cluster surely matched to the person)."""


class Store(VideoStore, JobLedger, SceneIndex, PeopleStore, FaceClusters, TranscriptCorrections, FrameModels):
    """One object implements every role; each caller types what it uses (the API the owner-scoped
    roles through the service, the runner and workers the JobLedger)."""

    @abstractmethod
    def close(self) -> None: ...


def open_store(
    url: str, *, hnsw_ef_search: int | None = None, idle_transaction_timeout_s: float = 30.0
) -> Store:
    """The store for `url`. `hnsw_ef_search` tunes PostgreSQL's approximate vector search (SQLite's is
    exact); past `idle_transaction_timeout_s` PostgreSQL ends a session left idle inside a transaction
    (a frozen worker), so that its locks do not outlive its lease."""
    if url.startswith("sqlite:///"):
        from heimdex.store.sqlite import SqliteStore

        return SqliteStore(url.removeprefix("sqlite:///"))
    if url.startswith(("postgresql://", "postgres://")):
        from heimdex.store.postgres import EF_SEARCH, PostgresStore

        return PostgresStore(
            url,
            ef_search=hnsw_ef_search or EF_SEARCH,
            idle_transaction_timeout_s=idle_transaction_timeout_s,
        )
    raise ValueError(
        f"unsupported database URL {url!r}: use sqlite:///path or postgresql://user@host:port/db"
    )
