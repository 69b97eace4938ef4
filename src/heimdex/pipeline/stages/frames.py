"""The vision branch: sample frames, read on-screen text, tag what is seen, find faces."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from heimdex.blobs.keys import face_crop_key
from heimdex.domain import Box, DetectedFace, FaceObservation, FrameRef, FrameTags, FrameText
from heimdex.media import decode_frames, decode_image, encode_jpeg, face_crop, sharpness
from heimdex.ml.base import IMAGE_VECTOR_DIM, IMAGE_VECTOR_MODEL
from heimdex.pipeline.artifacts import (
    CANDIDATES,
    CLIP_MODEL,
    CLIP_TIMES,
    CLIP_VECTORS,
    CUTS,
    FACES,
    FACES_MODEL,
    FRAME_MODEL,
    FRAME_TIMES,
    FRAME_VECTORS,
    FRAMES,
    MEDIA_INFO,
    OCR,
    OCR_MODEL,
    TAGGER_MODEL,
    TAGS,
)
from heimdex.pipeline.assemble import choose_in_shots, distinct_frames, pick_frames, shots_from_cuts
from heimdex.pipeline.context import StageContext
from heimdex.pipeline.stages.framestore import store_frame
from heimdex.pipeline.stages.scenes import run_id

TAG_FRAMES_PER_SHOT = 2
FACE_FRAMES_PER_SHOT = 4
OCR_FRAMES_PER_SHOT = 2  # captions persist through a shot; OCR costs 0.2-0.6 s a frame
FACE_DETAIL_MAX_SIDE = 1920  # frames looked at again for small faces: up to full HD


def vision_sample_frames(ctx: StageContext) -> None:
    """About one frame a second per shot, capped, chosen from the frames scene_detect kept; shots too
    short to hold one get their middle frame decoded."""
    info = ctx.artifacts.load(MEDIA_INFO)
    shots = shots_from_cuts(ctx.artifacts.load(CUTS), info.duration_s)
    candidates = ctx.artifacts.load(CANDIDATES)
    s = ctx.settings
    chosen, empty = choose_in_shots(candidates, shots, s.max_frames_per_scene, s.max_scene_s)
    if empty:
        with ctx.original() as path:
            middles = {round((shot.start_s + shot.end_s) / 2, 3): shot for shot in empty}
            for t, image in decode_frames(path, sorted(middles), max_side=s.frame_max_side):
                chosen.append(store_frame(ctx, t, image, middles[t].index))
    ctx.artifacts.save(FRAMES, sorted(chosen, key=lambda f: f.t_s))


def _frames(ctx: StageContext, per_shot: int) -> list[FrameRef]:
    """The sharpest frames of each shot that differ from each other: the ones worth a model's time."""
    return distinct_frames(pick_frames(ctx.artifacts.load(FRAMES), per_shot))


def vision_embed_frames(ctx: StageContext) -> None:
    """On-screen text by OCR (and image vectors when a CLIP-style model is configured)."""
    frames = _frames(ctx, OCR_FRAMES_PER_SHOT)
    texts: list[FrameText] = []
    for i, frame in enumerate(frames):
        lines = ctx.models.ocr.read(decode_image(ctx.blobs.get_bytes(frame.key)))
        texts.append(FrameText(t_s=frame.t_s, lines=lines))
        ctx.progress((i + 1) / len(frames))
    ctx.artifacts.save(OCR, texts)
    ctx.artifacts.save(OCR_MODEL, ctx.models.ocr.name)
    clip = ctx.models.clip
    if clip is not None:
        # The frames the tagger embeds (vision_affect_tags): every image model has a vector of each
        # sampled frame, which is how re-embedding counts an owner's frames (clip_coverage.py).
        shown = _frames(ctx, TAG_FRAMES_PER_SHOT)
        images = [decode_image(ctx.blobs.get_bytes(f.key)) for f in shown]
        ctx.artifacts.save(CLIP_VECTORS, clip.embed_images(images) if images else np.zeros((0, clip.dim)))
        ctx.artifacts.save(CLIP_TIMES, [f.t_s for f in shown])
        ctx.artifacts.save(CLIP_MODEL, clip.name)


def vision_affect_tags(ctx: StageContext) -> None:
    """Tags of the sharpest distinct frames, and their image vectors (the frames are decoded once)."""
    frames = _frames(ctx, TAG_FRAMES_PER_SHOT)
    tagger = ctx.models.tagger
    out: list[FrameTags] = []
    vectors = np.zeros((len(frames), IMAGE_VECTOR_DIM), dtype=np.float32)
    for i, frame in enumerate(frames):
        image = decode_image(ctx.blobs.get_bytes(frame.key))
        tags, objects = tagger.analyze(image)
        out.append(FrameTags(t_s=frame.t_s, tags=tags, objects=objects))
        vectors[i] = tagger.image_vector(image)
        ctx.progress((i + 1) / len(frames))
    ctx.artifacts.save(TAGS, out)
    ctx.artifacts.save(TAGGER_MODEL, tagger.name)
    ctx.artifacts.save(FRAME_VECTORS, vectors)
    ctx.artifacts.save(FRAME_TIMES, [f.t_s for f in frames])
    ctx.artifacts.save(FRAME_MODEL, IMAGE_VECTOR_MODEL)


def faces_enroll_match(ctx: StageContext) -> None:
    """Faces with their identity vectors, and animals with their appearance vectors (pets).

    Matching to enrolled people happens at commit, against the people enrolled at that moment, and
    again whenever someone is enrolled later, so nothing here depends on who is enrolled now.
    """
    tagged = ctx.artifacts.load(TAGS)
    observations = _faces(ctx, _people(tagged)) + _subjects(ctx, tagged)
    ctx.artifacts.save(FACES, observations)
    ctx.artifacts.save(FACES_MODEL, ctx.models.faces.name)


def _faces(ctx: StageContext, people: dict[float, list[Box]]) -> list[FaceObservation]:
    """Faces of the sampled frames. A frame where the tagger boxed a person with no face found is
    looked at again at the original's size, with the people's boxes (a face in a wide shot is a few
    dozen pixels of the sampled frame, too few to find or to tell who it is)."""
    frames = _frames(ctx, FACE_FRAMES_PER_SHOT)
    info = ctx.artifacts.load(MEDIA_INFO)
    larger = max(info.width, info.height) > ctx.settings.frame_max_side
    model = ctx.models.faces
    run = run_id(ctx)
    found: list[FaceObservation] = []
    again: list[FrameRef] = []
    # Progress counts each look at a frame: the frames, and the second looks known so far (the share
    # done never falls as second looks are added, since at most one is added per frame looked at).
    looked = 0

    def looked_at_one() -> None:
        nonlocal looked
        looked += 1
        ctx.progress(looked / (len(frames) + len(again)))

    for frame in frames:
        image = decode_image(ctx.blobs.get_bytes(frame.key))
        faces = model.analyze(image)
        boxes = people.get(round(frame.t_s, 3), [])
        if larger and any(not b.holds_any_centre(f.box for f in faces) for b in boxes):
            again.append(frame)
        else:
            found += _observed_all(ctx, run, image, frame, faces)
        looked_at_one()
    if again:
        found += _faces_at_full_size(ctx, run, again, people, looked_at_one)
    return sorted(found, key=lambda f: f.t_s)


def _faces_at_full_size(
    ctx: StageContext,
    run: str,
    frames: list[FrameRef],
    people: dict[float, list[Box]],
    looked_at_one: Callable[[], None],
) -> list[FaceObservation]:
    """The faces of `frames` decoded again from the original, searched with their people's boxes."""
    model = ctx.models.faces
    by_time = {round(f.t_s, 3): f for f in frames}
    found: list[FaceObservation] = []
    with ctx.original() as path:
        for t, image in decode_frames(path, list(by_time), max_side=FACE_DETAIL_MAX_SIDE, exact=True):
            frame = by_time.pop(round(t, 3))
            found += _observed_all(ctx, run, image, frame, model.analyze(image, people[round(t, 3)]))
            looked_at_one()
    for frame in by_time.values():  # the decoder did not reach it: what the sampled frame shows
        image = decode_image(ctx.blobs.get_bytes(frame.key))
        found += _observed_all(ctx, run, image, frame, model.analyze(image))
        looked_at_one()
    return found


def _people(tagged: list[FrameTags]) -> dict[float, list[Box]]:
    """The boxes of persons the tagger's detector found, by frame time."""
    return {
        round(f.t_s, 3): boxes for f in tagged if (boxes := [o.box for o in f.objects if o.label == "person"])
    }


def _observed_all(
    ctx: StageContext, run: str, image: np.ndarray, frame: FrameRef, faces: list[DetectedFace]
) -> list[FaceObservation]:
    return [
        _observed(ctx, image, frame, face, face_crop_key(ctx.video.id, run, frame.t_s, n))
        for n, face in enumerate(faces)
    ]


def _observed(
    ctx: StageContext, image: np.ndarray, frame: FrameRef, face: DetectedFace, crop_key: str
) -> FaceObservation:
    """A face with what clustering judges it by (size, sharpness) and its crop, stored now: the
    frames are work files, gone once the video is committed."""
    crop = face_crop(image, face.box)
    ctx.blobs.put_bytes(crop_key, encode_jpeg(crop))
    # The size in the sampled frame, also for a frame looked at again at full size: clustering's
    # trust in a face (faceclusters.SEED_MIN_PX) was measured at that scale.
    h, w = image.shape[:2]
    scale = min(1.0, ctx.settings.frame_max_side / max(h, w))
    return FaceObservation(
        scene_index=frame.scene_index,
        t_s=frame.t_s,
        box=face.box,
        score=face.score,
        embedding=face.embedding,
        model=ctx.models.faces.name,
        size_px=round(min(face.box.w * w, face.box.h * h) * scale, 1),
        sharpness=round(sharpness(crop), 1),
        crop_key=crop_key,
    )


def _subjects(ctx: StageContext, tags: list[FrameTags]) -> list[FaceObservation]:
    """Animals the tagger's detector boxed, embedded by appearance (no second detector pass)."""
    tagged = {round(f.t_s, 3): f for f in tags if f.objects}
    embedder = ctx.models.appearance
    found: list[FaceObservation] = []
    for frame in ctx.artifacts.load(FRAMES):
        detections = tagged.get(round(frame.t_s, 3))
        if detections is None:
            continue
        image = decode_image(ctx.blobs.get_bytes(frame.key))
        for subject in embedder.analyze(image, detections.objects):
            found.append(
                FaceObservation(
                    scene_index=frame.scene_index,
                    t_s=frame.t_s,
                    box=subject.box,
                    score=subject.score,
                    embedding=subject.embedding,
                    model=embedder.name,
                )
            )
    return found
