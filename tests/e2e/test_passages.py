"""A long scene that says several things is found by any one of them: its speech is also embedded as
overlapping windows of two sentences, and a scene scores its best window (both backends)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from heimdex.service import Heimdex
from tests import assets
from tests.e2e.conftest import BACKENDS, backend_app

pytestmark = pytest.mark.slow

TOUR = (
    "Welcome aboard the harbour tour. The ferry to the islands leaves every hour from pier two. "
    "Fishing boats come back at dawn and sell the catch on the quay. "
    "The old lighthouse keeper retired last spring after forty years on the rock."
)


def tour_video():
    return assets.narrated_video(
        "passages_tour",
        [
            {"image": assets.opencv_sample("home.jpg"), "say": TOUR, "voice": "piper", "seconds": 4.0},
            {"image": assets.skimage_photo("coffee"), "say": "Thanks for watching.", "voice": "piper"},
        ],
    )


@pytest.fixture(scope="module", params=BACKENDS)
def app(request, tmp_path_factory, models) -> Iterator[Heimdex]:
    with backend_app(request.param, tmp_path_factory.mktemp(f"passages-{request.param}"), models) as app:
        video = app.process(app.add_file(tour_video()).video.id)
        assert video.state.value == "indexed", video.error
        yield app


@pytest.mark.parametrize(
    "query",
    [
        "when does the boat to the islands depart",  # the second sentence
        "the man who kept the lighthouse stopped working",  # the last one
    ],
)
def test_each_thing_a_long_scene_says_finds_it(app, query) -> None:
    long_scene, _short = app.store.job_scenes(app.videos()[0].id)
    assert long_scene.transcript.count(".") >= 3, long_scene.transcript  # it has windows to match
    hit = app.search(query).hits[0]
    assert hit.scene_index == long_scene.index and "semantic" in hit.channels
