"""A library of frame vectors for the image benchmarks (bench_image_search.py, bench_clip_coverage.py):
videos of SCENES_PER_VIDEO scenes, each scene with a few sampled frames that have a vector of each
image model, committed through commit_video as the pipeline commits them."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np

from heimdex.domain import SceneDraft
from heimdex.store import CommitBundle, FrameVectors, Store, VectorSet

SCENES_PER_VIDEO = 100  # a 7-minute video at 4 s a scene

# (model name, n -> n unit rows of that model's vectors)
FrameModel = tuple[str, Callable[[int], np.ndarray]]


def commit_library(
    store: Store, owner: str, scenes: int, per_scene: int, models: Sequence[FrameModel]
) -> list[str]:
    """`scenes` scenes of `owner` in videos of SCENES_PER_VIDEO, `per_scene` frames each (one second
    apart), every frame with a vector of each model; returns the video ids."""
    videos = []
    for start in range(0, scenes, SCENES_PER_VIDEO):
        count = min(SCENES_PER_VIDEO, scenes - start)
        video = store.add_video(owner, f"v{start}.mp4", "k", 1, None)
        drafts = [
            SceneDraft(index=i, start_s=i * 4.0, end_s=i * 4.0 + 4, transcript="") for i in range(count)
        ]
        text = np.zeros((count, 8), np.float32)
        text[:, 0] = 1
        scene_of = [i for i in range(count) for _ in range(per_scene)]
        times = [i * 4.0 + 1 + k for i in range(count) for k in range(per_scene)]
        frames = tuple(
            FrameVectors(scene_of, times, VectorSet(model, rows(len(times)))) for model, rows in models
        )
        bundle = CommitBundle(video.id, "en", drafts, VectorSet("text", text), [], frames=frames)
        store.commit_video(bundle, {})
        videos.append(video.id)
    return videos


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def percentiles(times: Sequence[float]) -> dict[str, float]:
    """p50 and p95 in ms of times in seconds."""
    ms = np.array(times) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
    }
