"""Plain data types shared by every layer.

Pipeline stages pass these between each other as JSON artifacts, so they are pydantic models:
typed, validated on load, and serialised with `model_dump_json()`.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from pydantic import BaseModel, Field

SIDECAR_SCHEMA_VERSION = 1


class VideoState(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    INDEXED = "indexed"
    FAILED = "failed"


class StageState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


# ---------------------------------------------------------------- media


class MediaInfo(BaseModel):
    """What upload_validate learns about a file."""

    container: str
    duration_s: float
    width: int
    height: int
    fps: float
    video_codec: str
    audio_codec: str | None = None
    has_audio: bool = False
    rotation: int = 0
    size_bytes: int = 0


# ---------------------------------------------------------------- speech


class Word(BaseModel):
    text: str
    start_s: float
    end_s: float
    probability: float = 1.0
    edit: str | None = None  # the id of the owner's correction that wrote this word (corrections.py)


class TranscriptEdit(BaseModel):
    """An owner's correction of one transcript line: the recognised words between start_s and end_s
    read as `text`. Kept apart from the recognised words so that a reprocess applies it again."""

    id: str
    video_id: str
    start_s: float
    end_s: float
    text: str
    original: list[Word] = Field(default_factory=list)  # the recognised words it replaced
    edited_at: float = 0.0


class Segment(BaseModel):
    start_s: float
    end_s: float
    text: str
    words: list[Word] = Field(default_factory=list)


class Transcript(BaseModel):
    language: str | None = None
    language_probability: float = 0.0
    segments: list[Segment] = Field(default_factory=list)
    model: str = ""


class SpeechPlan(BaseModel):
    """Long audio cut at pauses into pieces that server mode transcribes one message each
    (asr_fast's fan-out). The language is settled here, once, so that every piece agrees."""

    starts: list[int]  # sample offsets where the pieces begin; the first is 0
    samples: int  # the whole audio's length
    language: str | None = None  # None: the pieces detect it (only when there is one piece)
    language_probability: float | None = None
    forced: bool = False  # the language was asked for (or the model knows one only), not detected

    @property
    def pieces(self) -> int:
        return len(self.starts)

    def bounds(self, piece: int) -> tuple[int, int]:
        """The piece's [start, end) in samples."""
        return self.starts[piece], ([*self.starts[1:], self.samples])[piece]


# ---------------------------------------------------------------- vision


class Box(BaseModel):
    """A box in relative image coordinates (0..1), so it survives resizing."""

    x: float
    y: float
    w: float
    h: float

    def holds_centre_of(self, other: Box) -> bool:
        cx, cy = other.x + other.w / 2, other.y + other.h / 2
        return self.x <= cx <= self.x + self.w and self.y <= cy <= self.y + self.h

    def holds_any_centre(self, others: Iterable[Box]) -> bool:
        return any(self.holds_centre_of(other) for other in others)


class OcrLine(BaseModel):
    text: str
    score: float
    box: Box | None = None


class Tag(BaseModel):
    label: str
    score: float
    source: str  # "imagenet" | "coco" | "clip"


class DetectedObject(BaseModel):
    label: str
    score: float
    box: Box


class DetectedFace(BaseModel):
    box: Box
    score: float
    embedding: list[float]


# ---------------------------------------------------------------- pipeline artifacts


class SceneSpan(BaseModel):
    index: int
    start_s: float
    end_s: float


class FrameRef(BaseModel):
    """A sampled frame stored as a small JPEG in blob storage."""

    scene_index: int
    t_s: float
    key: str
    sharpness: float = 0.0
    thumbprint: list[int] = Field(default_factory=list)  # 16x9 grey levels: spots near-duplicate frames


class FrameText(BaseModel):
    """What OCR read in one frame."""

    t_s: float
    lines: list[OcrLine] = Field(default_factory=list)


class FrameTags(BaseModel):
    """What the tagger saw in one frame."""

    t_s: float
    tags: list[Tag] = Field(default_factory=list)
    objects: list[DetectedObject] = Field(default_factory=list)  # the detector's boxes, for pets


class FaceObservation(BaseModel):
    """A face (or, for pets, a whole subject) seen in a frame, with its identity vector."""

    scene_index: int
    t_s: float
    box: Box
    score: float
    embedding: list[float]
    model: str = ""  # the model that made the embedding; identities match only within one model
    # Clustering reads how good a face is: only faces big and sharp enough seed a cluster of their own.
    size_px: float = 0.0  # the box's shorter side in the frame, in pixels
    sharpness: float = 0.0  # variance of the Laplacian of the face crop, at a fixed size
    crop_key: str | None = None  # the face crop shown on the people pages (blobs/keys.face_crop_key)


class SceneDraft(BaseModel):
    """Everything known about one scene before commit makes it visible."""

    index: int
    start_s: float
    end_s: float
    transcript: str = ""
    words: list[Word] = Field(default_factory=list)
    ocr_text: str = ""
    tags: list[Tag] = Field(default_factory=list)
    thumbnail_key: str | None = None
    sidecar_key: str | None = None
    index_terms: str = ""  # what full text also indexes: the morphemes of its Korean words (korean.py)


# ---------------------------------------------------------------- records read back from the store


PIECE_MARK = "#"


def piece_key(stage: str, piece: int) -> str:
    """The ledger row of one piece of a fan-out stage (server mode's asr_fast): `asr_fast#2`. Pieces
    have rows of their own, so they are claimed, retried and recorded like stages; stage lists leave
    them out."""
    return f"{stage}{PIECE_MARK}{piece}"


class StageRecord(BaseModel):
    stage: str
    state: StageState
    attempts: int = 0
    duration_s: float | None = None
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    claimed_by: str | None = None  # the worker running it now (server mode)
    # Server mode, a stage run in pieces (asr_fast on long audio): how many, and how many are done.
    pieces: int = 0
    pieces_done: int = 0


class Video(BaseModel):
    id: str
    owner_id: str
    filename: str
    original_key: str
    size_bytes: int = 0
    sha256: str | None = None
    state: VideoState = VideoState.QUEUED
    error: str | None = None
    info: MediaInfo | None = None
    language: str | None = None
    scene_count: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0
    claimed_by: str | None = None  # the worker holding the video (server mode), while its lease lasts


class Scene(BaseModel):
    id: str
    video_id: str
    index: int
    start_s: float
    end_s: float
    transcript: str = ""
    words: list[Word] = Field(default_factory=list)
    ocr_text: str = ""
    tags: list[Tag] = Field(default_factory=list)
    people: list[str] = Field(default_factory=list)
    possible_people: list[str] = Field(default_factory=list)  # faces that may be theirs: to review
    thumbnail_key: str | None = None
    sidecar_key: str | None = None


class Person(BaseModel):
    id: str
    owner_id: str
    name: str
    photo_count: int = 0
    scene_count: int = 0
    possible_count: int = 0  # scenes with a possible match only, waiting for a confirm or reject
    created_at: float = 0.0


class ClusterFace(BaseModel):
    """One face of an unnamed (or named) person's cluster, where it was seen."""

    face_pk: int
    video_id: str
    filename: str
    scene_id: str
    scene_index: int
    t_s: float
    size_px: float
    sharpness: float
    crop_key: str | None = None
    cluster_id: str | None = None  # None: in no cluster (it could not seed one, and none is near)


class FaceCluster(BaseModel):
    """Faces the clustering found to be one person: unnamed until the owner names it (or an
    enrolled photo matches most of it), then `person_id` is that person."""

    id: str
    owner_id: str
    person_id: str | None = None
    person_name: str | None = None
    hidden: bool = False
    face_count: int = 0
    scene_count: int = 0
    best_faces: list[ClusterFace] = Field(default_factory=list)  # largest and sharpest first
    created_at: float = 0.0


class SearchHit(BaseModel):
    """One result. This is the documented, stable shape of `heimdex search --json` and GET /search."""

    video_id: str
    filename: str
    scene_id: str
    scene_index: int
    start_s: float
    end_s: float
    score: float
    confidence: str = "low"  # "high", "medium" or "low": how sure the evidence makes the match
    transcript: str
    snippet: str
    channels: dict[str, dict[str, float | str]]
    thumbnail: str | None
    people: list[str] = Field(default_factory=list)
    possible_people: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    ocr_text: str = ""
