"""Every artifact the stages pass to each other, named once with its type.

An artifact is one blob under the video's work prefix (keys.work_key): JSON validated into its
type on load, or a numpy array (.npy). Stages load and save them through `ctx.artifacts` with these
constants, never with a file name; pipeline/graph.py declares which stage writes and reads each.

Light on purpose: the stage graph (and through it the CLI and API) imports this module, so numpy
appears only in type annotations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from heimdex.domain import (
    FaceObservation,
    FrameRef,
    FrameTags,
    FrameText,
    MediaInfo,
    SceneDraft,
    SpeechPlan,
    Transcript,
)

if TYPE_CHECKING:
    import numpy as np

T = TypeVar("T")


class _ArrayKind:
    def __repr__(self) -> str:
        return "ARRAY"


ARRAY: Any = _ArrayKind()  # the kind of an artifact stored as a numpy .npy file


@dataclass(frozen=True)
class Artifact(Generic[T]):
    """A typed artifact name: `ctx.artifacts.load(MEDIA_INFO)` is a MediaInfo."""

    name: str  # the blob's name under the work prefix
    kind: Any  # what load() returns: anything pydantic validates (a model, list[...], dict, str), or ARRAY
    source: bool = False  # given to the pipeline (the original upload), not written by a stage

    @property
    def is_array(self) -> bool:
        return self.kind is ARRAY

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Pieces(Generic[T]):
    """One artifact per piece of a fan-out stage: `SPEECH_PIECES.at(2)` is speech_piece_002.json."""

    stem: str
    kind: Any

    def at(self, piece: int) -> Artifact[T]:
        return Artifact(f"{self.stem}_{piece:03d}.json", self.kind)


# The uploaded file. Not in the work folder: stages open it by ctx.video.original_key.
ORIGINAL: Artifact[bytes] = Artifact("original", bytes, source=True)

MEDIA_INFO: Artifact[MediaInfo] = Artifact("media_info.json", MediaInfo)
RUN: Artifact[dict] = Artifact("run.json", dict)  # {"run_id": ...}: names keys.run_prefix
AUDIO: Artifact[np.ndarray] = Artifact("audio.npy", ARRAY)  # 16 kHz mono float32
TRANSCRIPT: Artifact[Transcript] = Artifact("transcript.json", Transcript)
# Server mode's fan-out of asr_fast (pipeline/graph.py FanOut): the plan, then one transcript a piece.
SPEECH_PLAN: Artifact[SpeechPlan] = Artifact("speech_plan.json", SpeechPlan)
SPEECH_PIECES: Pieces[Transcript] = Pieces("speech_piece", Transcript)  # on the whole audio's clock
CUTS: Artifact[list[float]] = Artifact("cuts.json", list[float])  # camera cuts, seconds
CANDIDATES: Artifact[list[FrameRef]] = Artifact("candidates.json", list[FrameRef])  # scene_detect's frames
FRAMES: Artifact[list[FrameRef]] = Artifact("frames.json", list[FrameRef])  # the frames chosen per shot
OCR: Artifact[list[FrameText]] = Artifact("ocr.json", list[FrameText])
OCR_MODEL: Artifact[str] = Artifact("model-ocr.json", str)
# Written only when a CLIP-style model is configured; commit stores them as frame vectors of that model.
CLIP_VECTORS: Artifact[np.ndarray] = Artifact("clip.npy", ARRAY)
CLIP_TIMES: Artifact[list[float]] = Artifact("clip_times.json", list[float])
CLIP_MODEL: Artifact[str] = Artifact("model-clip.json", str)
TAGS: Artifact[list[FrameTags]] = Artifact("tags.json", list[FrameTags])
TAGGER_MODEL: Artifact[str] = Artifact("model-tagger.json", str)
# Image vectors of the tagged frames ("more like this"), one row per time, and the model that made them.
FRAME_VECTORS: Artifact[np.ndarray] = Artifact("frame_vectors.npy", ARRAY)
FRAME_TIMES: Artifact[list[float]] = Artifact("frame_times.json", list[float])
FRAME_MODEL: Artifact[str] = Artifact("model-frames.json", str)
FACES: Artifact[list[FaceObservation]] = Artifact("faces.json", list[FaceObservation])
FACES_MODEL: Artifact[str] = Artifact("model-faces.json", str)
DRAFTS: Artifact[list[SceneDraft]] = Artifact("drafts.json", list[SceneDraft])  # with thumbnail keys
FACES_PLACED: Artifact[list[FaceObservation]] = Artifact("faces_placed.json", list[FaceObservation])
TEXT_VECTORS: Artifact[np.ndarray] = Artifact("text_vectors.npy", ARRAY)  # one row per scene
WINDOW_VECTORS: Artifact[np.ndarray] = Artifact("window_vectors.npy", ARRAY)
LABEL_VECTORS: Artifact[np.ndarray] = Artifact("label_vectors.npy", ARRAY)
# {"model": ..., "labels": [...], "window_scenes": [...]}: the rows of the three arrays above
TEXT_MODEL: Artifact[dict] = Artifact("text_model.json", dict)
# The drafts again, each with its sidecar's key: what commit stores.
SIDECAR_DRAFTS: Artifact[list[SceneDraft]] = Artifact("sidecar_drafts.json", list[SceneDraft])
