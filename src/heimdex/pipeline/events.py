"""Progress events the runner emits. Kept free of heavy imports: the CLI and API import it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from heimdex.domain import StageState


@dataclass(frozen=True)
class StageEvent:
    video_id: str
    stage: str
    state: StageState
    fraction: float = 0.0  # progress within the stage, 0..1
    error: str | None = None
    duration_s: float | None = None


EventFn = Callable[[StageEvent], None]


class RunAbandoned(Exception):
    """A run stopped because its `keep_going` check said so: another worker owns the video now."""


# Rough share of indexing time per stage, so that one progress figure moves evenly.
STAGE_WEIGHTS: dict[str, int] = {
    "upload_validate": 1,
    "audio_extract": 3,
    "asr_fast": 30,
    "scene_detect": 15,
    "align_merge": 2,
    "embed_text": 4,
    "vision_sample_frames": 10,
    "vision_embed_frames": 15,
    "vision_affect_tags": 6,
    "faces_enroll_match": 6,
    "sidecar_build": 1,
    "commit": 2,
}

# Histogram buckets (seconds) for stage durations in /metrics; workers in other processes count into
# the same buckets on Redis.
STAGE_BUCKETS: tuple[float, ...] = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
