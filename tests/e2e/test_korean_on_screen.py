"""Videos with Korean on screen, indexed for real on both backends: the Korean text is read, full
text finds it by its morphemes ("광장" in "광장에서"), and the snippet marks the Korean word. One video
mixes the two languages in each scene: English speech under Korean captions."""

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


def mixed_video():
    """English narration over Korean captions (a Korean broadcast's subtitles the other way round)."""
    return assets.narrated_video(
        "korean-captions-english-speech",
        [
            {"image": assets.kphotoalbum_photo("donna_2.jpg"), "text": "옥상 정원 채소 판매",
             "font": assets.HANGUL_FONT,
             "say": "Fresh vegetables from the community garden are sold here every Saturday."},
            {"image": assets.skimage_photo("rocket"), "text": "로켓 발사 준비 완료",
             "font": assets.HANGUL_FONT, "say": "The rocket is ready for launch tomorrow morning."},
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
            assert "<mark>광장에서</mark>" in hits[0].snippet, hits[0].snippet


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_video_of_english_speech_under_korean_captions(backend, tmp_path, models) -> None:
    with backend_app(backend, tmp_path / "home", models) as app:
        added = app.add_file(mixed_video())
        video = app.process(added.video.id)
        assert video.state.value == "indexed" and video.language == "en", (video.state, video.language)
        scenes = app.scenes("local", video.id)
        assert len(scenes) == 2 and "garden" in scenes[0].transcript.lower(), scenes
        assert "정원" in scenes[0].ocr_text and "발사" in scenes[1].ocr_text, [s.ocr_text for s in scenes]
        # A Korean query finds the caption (with other endings), an English one the speech, each
        # marking the words of the text that matched.
        for query, index, marked in (
            ("정원에서 파는 채소", 0, "<mark>정원</mark>"),
            ("발사를 준비", 1, "<mark>발사</mark>"),
            ("garden vegetables", 0, "<mark>garden</mark>"),
            ("rocket launch", 1, "<mark>rocket</mark>"),
        ):
            hits = app.search(query, limit=3).hits
            assert hits and hits[0].scene_index == index and "fulltext" in hits[0].channels, (query, hits)
            assert marked in hits[0].snippet.lower(), (query, hits[0].snippet)
