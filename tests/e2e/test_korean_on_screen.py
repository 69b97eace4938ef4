"""A video with a Korean caption and an English one, indexed for real: the Korean text on screen is
read, and full text finds it by its morphemes ("광장" in "광장에서"), on both backends."""

from __future__ import annotations

import pytest

from tests import assets
from tests.e2e.conftest import BACKENDS, backend_app

CAPTION = "서울 시청 앞 광장에서"


def video():
    return assets.narrated_video(
        "korean-caption-plaza",
        [
            {"image": assets.kphotoalbum_photo("donna_2.jpg"), "say": None, "text": CAPTION,
             "font": assets.HANGUL_FONT, "seconds": 3.0},
            {"image": assets.skimage_photo("chelsea"), "say": None, "text": "CAT CAFE OPEN", "seconds": 3.0},
        ],
    )  # fmt: skip


@pytest.mark.parametrize("backend", BACKENDS)
def test_korean_text_on_screen_is_read_and_found(backend, tmp_path, models) -> None:
    with backend_app(backend, tmp_path / "home", models) as app:
        added = app.add_file(video())
        assert app.process(added.video.id).state.value == "indexed"
        scenes = app.scenes("local", added.video.id)
        # Read from a video frame, one syllable may come out wrong ("앞" as "Ob"): the words searched
        # for must be there.
        assert "서울" in scenes[0].ocr_text and "광장에서" in scenes[0].ocr_text, scenes[0].ocr_text
        assert scenes[1].ocr_text == "CAT CAFE OPEN"
        for query in ("광장", "시청 광장은"):  # the word alone, or with another ending than on screen
            hits = app.search(query, limit=3).hits
            assert hits and hits[0].scene_index == 0 and "fulltext" in hits[0].channels, query
            assert hits[0].ocr_text == scenes[0].ocr_text
