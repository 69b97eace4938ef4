"""Cut detection on real videos and the pure scene planner."""

from __future__ import annotations

import itertools
import random
import wave

import pytest

from heimdex.media import detect_cuts, plan_scenes, probe
from tests.assets import (
    forensics_sample,
    kphotoalbum_photo,
    narrated_video,
    opencv_sample,
    skimage_photo,
    speech_wav,
)

SAYINGS = [
    "Welcome to the harbour, where the fishing boats come in every morning.",
    "The astronaut trained for six years before the launch.",
    None,
    "Coffee is served at noon in the main hall.",
]


def _wav_seconds(path) -> float:
    with wave.open(str(path)) as wav:
        return wav.getnframes() / wav.getframerate()


def test_cuts_between_narrated_photos_are_found_within_a_fifth_of_a_second():
    images = [
        kphotoalbum_photo("donna.jpg"),
        skimage_photo("astronaut"),
        skimage_photo("coffee"),
        opencv_sample("fruits.jpg"),
    ]
    scenes = [{"image": img, "say": say, "seconds": 2.5} for img, say in zip(images, SAYINGS, strict=True)]
    video = narrated_video("scenes-four-photos", scenes)
    # Each scene lasts its narration + 0.8 s (the same default voice), at least 2.5 s.
    lengths = [
        max(2.5, _wav_seconds(speech_wav(say, f"scenes-{i}")) + 0.8) if say else 2.5
        for i, say in enumerate(SAYINGS)
    ]
    expected = [sum(lengths[: i + 1]) for i in range(len(lengths) - 1)]
    cuts = detect_cuts(video)
    assert len(cuts) == len(expected), (cuts, expected)
    for cut, want in zip(cuts, expected, strict=True):
        assert cut == pytest.approx(want, abs=0.2)


def test_fast_and_exact_decoding_agree_on_a_real_trailer():
    path = opencv_sample("Megamind.avi")  # MPEG-4 ASP with several hard cuts
    fast, exact = detect_cuts(path), detect_cuts(path, fast=False)
    assert fast, "the trailer has cuts"
    assert all(0 < c < probe(path).duration_s for c in fast)
    assert len(fast) == len(exact)
    assert all(abs(a - b) <= 0.2 for a, b in zip(fast, exact, strict=True))


def test_a_static_street_camera_has_no_cuts():
    assert detect_cuts(opencv_sample("vtest.avi")) == []


def test_theora_without_skipping_support():
    assert detect_cuts(forensics_sample("movie2/movie-hello.ogg")) == []


# ---------------------------------------------------------------- plan_scenes


def _check_cover(scenes, duration):
    assert scenes[0].start_s == 0 and scenes[-1].end_s == duration
    assert [s.index for s in scenes] == list(range(len(scenes)))
    for a, b in itertools.pairwise(scenes):
        assert a.end_s == b.start_s
    assert all(s.end_s > s.start_s for s in scenes)


def test_plain_cuts_become_scenes():
    scenes = plan_scenes([4.0, 9.5], 15.0, min_scene_s=1.0, max_scene_s=30.0)
    assert [(s.start_s, s.end_s) for s in scenes] == [(0, 4.0), (4.0, 9.5), (9.5, 15.0)]


def test_messy_cuts_are_cleaned():
    messy = [9.5, -1, 4.0, 4.0, 15.0, 99.0, float("nan")]
    scenes = plan_scenes(messy, 15.0, min_scene_s=1.0, max_scene_s=30.0)
    assert [(s.start_s, s.end_s) for s in scenes] == [(0, 4.0), (4.0, 9.5), (9.5, 15.0)]


def test_short_shots_are_merged():
    # A flash (10.0-10.3) and a short tail (19.6-20) join their neighbours.
    scenes = plan_scenes([0.4, 5.0, 10.0, 10.3, 19.6], 20.0, min_scene_s=1.0, max_scene_s=30.0)
    _check_cover(scenes, 20.0)
    assert [s.start_s for s in scenes] == [0, 5.0, 10.0]
    assert all(s.end_s - s.start_s >= 1.0 for s in scenes)


def test_long_shot_is_split_in_a_speech_pause():
    pauses = [(3.0, 3.2), (17.0, 18.0), (21.0, 21.4), (40.0, 41.0)]
    scenes = plan_scenes([], 50.0, min_scene_s=1.0, max_scene_s=30.0, pauses=pauses)
    _check_cover(scenes, 50.0)
    # First piece: the longest pause between 15 and 30 s is 17-18, so split at 17.5; the remaining
    # 32.5 s are split again at the middle of 40-41 (within 15-30 s of 17.5).
    assert [s.start_s for s in scenes] == [0, 17.5, 40.5]


def test_long_shot_without_pauses_is_split_evenly():
    scenes = plan_scenes([], 70.0, min_scene_s=1.0, max_scene_s=30.0)
    assert [round(s.end_s - s.start_s, 3) for s in scenes] == [23.333, 23.333, 23.334]


def test_edge_cases():
    assert plan_scenes([], 0.0, min_scene_s=1, max_scene_s=30) == []
    tiny = plan_scenes([0.2], 0.5, min_scene_s=1, max_scene_s=30)
    assert [(s.start_s, s.end_s) for s in tiny] == [(0, 0.5)]


def test_random_inputs_keep_every_invariant():
    rng = random.Random(3)
    for _ in range(300):
        duration = rng.uniform(0.5, 3600)
        cuts = [rng.uniform(-5, duration + 5) for _ in range(rng.randint(0, 200))]
        pauses = [(a, a + rng.uniform(0.1, 3)) for a in (rng.uniform(0, duration) for _ in range(50))]
        scenes = plan_scenes(cuts, duration, min_scene_s=1.0, max_scene_s=30.0, pauses=pauses)
        _check_cover(scenes, duration)
        assert all(s.end_s - s.start_s <= 30.0 + 1e-6 for s in scenes)
        if duration >= 1.0:
            assert all(s.end_s - s.start_s >= 1.0 - 1e-6 for s in scenes)
