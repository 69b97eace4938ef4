"""scene_detect (camera cuts) and align_merge (scenes with their words, text, tags and faces)."""

from __future__ import annotations

import numpy as np

from heimdex.blobs import keys
from heimdex.corrections import reapply
from heimdex.domain import FrameRef, SceneDraft
from heimdex.media import (
    FrameSampler,
    decode_frames,
    decode_image,
    detect_cuts,
    encode_webp,
    plan_scenes,
)
from heimdex.pipeline.artifacts import (
    CANDIDATES,
    CUTS,
    DRAFTS,
    FACES,
    FACES_PLACED,
    FRAMES,
    MEDIA_INFO,
    OCR,
    RUN,
    TAGS,
    TRANSCRIPT,
)
from heimdex.pipeline.assemble import build_drafts, place_faces, sharpest_frame, speech_pauses
from heimdex.pipeline.context import StageContext
from heimdex.pipeline.stages.framestore import store_frame


def scene_detect(ctx: StageContext) -> None:
    """Camera cuts; and, in the same decoding pass, candidate frames for the vision stages (decoding
    is most of the cost of both, so the video is decoded once)."""
    info = ctx.artifacts.load(MEDIA_INFO)
    candidates: dict[int, FrameRef] = {}

    def keep(t: float, image: np.ndarray) -> None:
        ctx.progress(min(1.0, t / max(info.duration_s, 1e-3)))
        candidates[round(t * 1000)] = store_frame(ctx, t, image)

    sampler = FrameSampler(
        every_s=1.0 / ctx.settings.frames_per_second, max_side=ctx.settings.frame_max_side, on_frame=keep
    )
    with ctx.original() as path:
        cuts = detect_cuts(path, sampler=sampler)
    ctx.artifacts.save(CANDIDATES, sorted(candidates.values(), key=lambda f: f.t_s))
    ctx.artifacts.save(CUTS, cuts)


def run_id(ctx: StageContext) -> str:
    """This run's id (upload_validate made it): its thumbnails and sidecars go under keys.run_prefix."""
    return ctx.artifacts.load(RUN)["run_id"]


def align_merge(ctx: StageContext) -> None:
    info = ctx.artifacts.load(MEDIA_INFO)
    transcript = ctx.artifacts.load(TRANSCRIPT)
    cuts = ctx.artifacts.load(CUTS)
    scenes = plan_scenes(
        cuts,
        info.duration_s,
        min_scene_s=ctx.settings.min_scene_s,
        max_scene_s=ctx.settings.max_scene_s,
        pauses=speech_pauses(transcript),
    )
    drafts = build_drafts(
        scenes,
        transcript,
        ocr=ctx.artifacts.load(OCR),
        tags=ctx.artifacts.load(TAGS),
        min_tag_score=ctx.settings.tag_min_score,
    )
    drafts = reapply(drafts, ctx.store.job_transcript_edits(ctx.video.id))  # the owner's corrections
    frames = ctx.artifacts.load(FRAMES)
    run = run_id(ctx)
    for scene, draft in zip(scenes, drafts, strict=True):
        draft.thumbnail_key = keys.thumbnail_key(ctx.video.id, run, scene.index)
        _write_thumbnail(ctx, sharpest_frame(frames, scene), (scene.start_s + scene.end_s) / 2, draft)
    faces = place_faces(ctx.artifacts.load(FACES), scenes)
    ctx.artifacts.save(DRAFTS, drafts)
    ctx.artifacts.save(FACES_PLACED, faces)


def _write_thumbnail(ctx: StageContext, frame: FrameRef | None, midpoint_s: float, draft: SceneDraft) -> None:
    if frame is not None:
        image = decode_image(ctx.blobs.get_bytes(frame.key))
    else:  # a scene too short to have a sampled frame: decode its middle
        with ctx.original() as path:
            decoded = decode_frames(path, [midpoint_s], max_side=ctx.settings.frame_max_side)
        if not decoded:
            draft.thumbnail_key = None
            return
        image = decoded[0][1]
    ctx.blobs.put_bytes(draft.thumbnail_key, encode_webp(image, max_side=ctx.settings.thumbnail_max_side))
