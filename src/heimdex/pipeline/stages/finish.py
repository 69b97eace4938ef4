"""sidecar_build (one JSON document per scene) and commit (make the scenes visible, atomically)."""

from __future__ import annotations

import json

import numpy as np

from heimdex import faceclusters
from heimdex.blobs import keys
from heimdex.domain import SIDECAR_SCHEMA_VERSION, FaceObservation, SceneDraft
from heimdex.korean import index_terms
from heimdex.matching import FaceMatch, match_faces
from heimdex.pipeline.artifacts import (
    CLIP_MODEL,
    CLIP_TIMES,
    CLIP_VECTORS,
    DRAFTS,
    FACES_MODEL,
    FACES_PLACED,
    FRAME_MODEL,
    FRAME_TIMES,
    FRAME_VECTORS,
    LABEL_VECTORS,
    OCR_MODEL,
    SIDECAR_DRAFTS,
    TAGGER_MODEL,
    TEXT_MODEL,
    TEXT_VECTORS,
    TRANSCRIPT,
    WINDOW_VECTORS,
)
from heimdex.pipeline.context import StageContext
from heimdex.pipeline.stages.scenes import run_id
from heimdex.store import CommitBundle, FrameVectors, VectorSet, WindowVectors


def _model_names(ctx: StageContext) -> dict[str, str]:
    transcript = ctx.artifacts.load(TRANSCRIPT)
    return {
        "asr": transcript.model,
        "text": ctx.artifacts.load(TEXT_MODEL)["model"],
        "tagger": ctx.artifacts.load(TAGGER_MODEL),
        "ocr": ctx.artifacts.load(OCR_MODEL),
        "faces": ctx.artifacts.load(FACES_MODEL),
    }


def sidecar_build(ctx: StageContext) -> None:
    drafts = ctx.artifacts.load(DRAFTS)
    faces = ctx.artifacts.load(FACES_PLACED)
    transcript = ctx.artifacts.load(TRANSCRIPT)
    models = _model_names(ctx)
    run = run_id(ctx)
    for draft in drafts:
        draft.sidecar_key = keys.sidecar_key(ctx.video.id, run, draft.index)
        doc = {
            "schema_version": SIDECAR_SCHEMA_VERSION,
            "video_id": ctx.video.id,
            "filename": ctx.video.filename,
            "scene_index": draft.index,
            "start_s": round(draft.start_s, 3),
            "end_s": round(draft.end_s, 3),
            "language": transcript.language,
            "transcript": draft.transcript,
            "words": [w.model_dump() for w in draft.words],
            "ocr_text": draft.ocr_text,
            "tags": [t.model_dump() for t in draft.tags],
            "faces": [
                {"t_s": f.t_s, "box": f.box.model_dump(), "score": f.score}
                for f in faces
                if f.scene_index == draft.index
            ],
            "thumbnail": draft.thumbnail_key,
            "models": models,
        }
        ctx.blobs.put_text(draft.sidecar_key, json.dumps(doc, ensure_ascii=False, indent=1))
    ctx.artifacts.save(SIDECAR_DRAFTS, drafts)


def commit(ctx: StageContext) -> None:
    drafts = [
        d.model_copy(update={"index_terms": index_terms(d.transcript, d.ocr_text)})
        for d in ctx.artifacts.load(SIDECAR_DRAFTS)
    ]
    faces = ctx.artifacts.load(FACES_PLACED)
    meta = ctx.artifacts.load(TEXT_MODEL)
    label_vectors = ctx.artifacts.load(LABEL_VECTORS)
    old_prefixes = {
        keys.run_prefix_of(s.thumbnail_key or s.sidecar_key or "") for s in ctx.store.job_scenes(ctx.video.id)
    }
    bundle = CommitBundle(
        video_id=ctx.video.id,
        language=ctx.artifacts.load(TRANSCRIPT).language,
        scenes=drafts,
        text_vectors=VectorSet(meta["model"], ctx.artifacts.load(TEXT_VECTORS)),
        faces=faces,
        label_vectors=dict(zip(meta["labels"], label_vectors, strict=True)),
        windows=_windows(ctx, meta),
        frames=_frames(ctx, drafts),
    )
    ctx.store.commit_video(bundle, _person_matches(ctx, faces))
    _cluster_faces(ctx)
    current = keys.run_prefix(ctx.video.id, run_id(ctx))
    for prefix in old_prefixes - {current, ""}:  # the previous index's thumbnails and sidecars
        ctx.blobs.delete_prefix(prefix)


def _windows(ctx: StageContext, meta: dict) -> WindowVectors | None:
    """The window vectors embed_text made (none from a run that embedded before windows existed)."""
    scenes = meta.get("window_scenes", [])
    if not scenes:
        return None
    return WindowVectors(scenes, VectorSet(meta["model"], ctx.artifacts.load(WINDOW_VECTORS)))


# Each image model's frame vectors: (vectors, their times, the model's name).
_FRAME_SETS = ((FRAME_VECTORS, FRAME_TIMES, FRAME_MODEL), (CLIP_VECTORS, CLIP_TIMES, CLIP_MODEL))


def _frames(ctx: StageContext, drafts: list[SceneDraft]) -> tuple[FrameVectors, ...]:
    """The frames' image vectors, each in the scene its time falls in (scenes were cut after the
    frames were sampled): the tagger's, and a CLIP-style model's when one is configured. None from
    a run that tagged before image vectors existed."""
    found = []
    starts = np.array([d.start_s for d in drafts])
    for vectors, times, model in _FRAME_SETS:
        if drafts and ctx.artifacts.exists(vectors) and ctx.artifacts.exists(model):
            at = ctx.artifacts.load(times)
            places = np.clip(np.searchsorted(starts, at, side="right") - 1, 0, len(drafts) - 1)
            matrix = VectorSet(ctx.artifacts.load(model), ctx.artifacts.load(vectors))
            found.append(FrameVectors([drafts[int(i)].index for i in places], at, matrix))
    return tuple(found)


def _person_matches(ctx: StageContext, faces: list[FaceObservation]) -> dict[int, FaceMatch]:
    """Observation index -> its person (sure or possible), matching each identity model separately."""
    matches: dict[int, FaceMatch] = {}
    for model in {f.model for f in faces}:
        person_ids, photos = ctx.store.person_embeddings(ctx.video.owner_id, model)
        if not person_ids:
            continue
        rows = [i for i, f in enumerate(faces) if f.model == model]
        vectors = np.array([faces[i].embedding for i in rows], dtype=np.float32)
        found = match_faces(
            vectors,
            person_ids,
            photos,
            ctx.models.match_distance(model),
            ctx.models.possible_distance(model),
            rejected=ctx.store.rejected_embeddings(ctx.video.owner_id, model),
        )
        for row, match in found.items():
            matches[rows[row]] = match
    return matches


def _cluster_faces(ctx: StageContext) -> None:
    """The new faces join the owner's unnamed people, or start new ones (after the commit: clusters
    are a view over committed faces, and a failure here leaves the faces waiting for the next run)."""
    owner, model = ctx.video.owner_id, ctx.artifacts.load(FACES_MODEL)
    faceclusters.cluster_new_faces(ctx.store, owner, model, ctx.settings.face_cluster_distance)
    faceclusters.attach_matched_clusters(ctx.store, owner)


def cleanup_work(ctx: StageContext) -> None:
    """Drop the intermediate artifacts (audio, frames...) once the video is committed."""
    ctx.artifacts.clear()
