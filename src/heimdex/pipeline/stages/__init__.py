"""The twelve stages. Each is `stage(ctx) -> None`: it reads its inputs (artifacts, the original),
writes its outputs as artifacts, and can run again safely (idempotent)."""

from heimdex.pipeline.stages.audio import asr_fast, audio_extract
from heimdex.pipeline.stages.finish import commit, sidecar_build
from heimdex.pipeline.stages.frames import (
    faces_enroll_match,
    vision_affect_tags,
    vision_embed_frames,
    vision_sample_frames,
)
from heimdex.pipeline.stages.scenes import align_merge, scene_detect
from heimdex.pipeline.stages.text import embed_text
from heimdex.pipeline.stages.validate import upload_validate

STAGE_FUNCTIONS = {
    "upload_validate": upload_validate,
    "audio_extract": audio_extract,
    "asr_fast": asr_fast,
    "scene_detect": scene_detect,
    "align_merge": align_merge,
    "embed_text": embed_text,
    "vision_sample_frames": vision_sample_frames,
    "vision_embed_frames": vision_embed_frames,
    "vision_affect_tags": vision_affect_tags,
    "faces_enroll_match": faces_enroll_match,
    "sidecar_build": sidecar_build,
    "commit": commit,
}

# What each stage reads. The runner runs the audio branch (audio_extract, asr_fast) and the vision
# branch (scene_detect ... faces_enroll_match) side by side; they meet at align_merge.
STAGE_DEPENDENCIES: dict[str, tuple[str, ...]] = {
    "upload_validate": (),
    "audio_extract": ("upload_validate",),
    "asr_fast": ("audio_extract",),
    "scene_detect": ("upload_validate",),
    "vision_sample_frames": ("scene_detect",),
    "vision_embed_frames": ("vision_sample_frames",),
    "vision_affect_tags": ("vision_sample_frames",),
    "faces_enroll_match": ("vision_affect_tags",),  # reuses the detector's animal boxes
    "align_merge": ("asr_fast", "vision_embed_frames", "vision_affect_tags", "faces_enroll_match"),
    "embed_text": ("align_merge",),
    "sidecar_build": ("embed_text",),
    "commit": ("sidecar_build",),
}
