"""Transcript corrections on a real narrated video, on both backends: the scene's words, full text
and vectors (whole scene and windows) follow the correction at once, a reprocess keeps it, and
taking it back restores the speech as recognised."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from heimdex import subtitles
from heimdex.corrections import with_words
from heimdex.errors import ConflictError, InvalidRequestError, NotFoundError
from heimdex.pipeline.assemble import scene_text, scene_windows
from heimdex.service import LOCAL_OWNER, Heimdex
from heimdex.store.base import SceneFilter
from tests import assets
from tests.e2e.conftest import BACKENDS, backend_app

FERRY = "The harbour ferry leaves at nine every morning. Tickets cost four euros. Bicycles ride free."
# Whisper hears the narration as one sentence (no windows); the correction makes it three (windows).
CORRECTED = "The harbour ferry leaves at noon from Zeelandia pier. Tickets cost four euros."
ROCKET = "The rocket lifted off into the clouds."


def ferry_video():
    return assets.narrated_video(
        "corrections-ferry",
        [
            {"image": assets.skimage_photo("coffee"), "say": FERRY, "seconds": 4.0},
            {
                "image": assets.skimage_photo("rocket"),
                "say": "The rocket lifted off into the clouds.",
                "seconds": 3.0,
            },
        ],
    )


@pytest.fixture(scope="module", params=BACKENDS)
def ferry(request, tmp_path_factory, models) -> Iterator[tuple[Heimdex, str]]:
    with backend_app(request.param, tmp_path_factory.mktemp(f"corrections-{request.param}"), models) as app:
        video = app.process(app.add_file(ferry_video()).video.id)
        assert video.state.value == "indexed", video.error
        yield app, video.id


def first_line(app: Heimdex, video_id: str) -> tuple[subtitles.Line, str]:
    scene = app.scenes(LOCAL_OWNER, video_id)[0]
    return subtitles.lines(scene.words)[0], scene.id


def best_dense(app: Heimdex, text: str):
    """The scene whose stored vectors are nearest to `text` embedded as a passage: a stored vector
    made from exactly that text scores 1."""
    vector = app.models.text.embed_passages([text])[0]
    hits = app.store.dense_text(SceneFilter(owner_id=LOCAL_OWNER), app.models.text.name, vector, 5)
    return hits[0]


def test_a_correction_changes_words_full_text_and_vectors_and_survives_a_reprocess(ferry) -> None:
    app, video_id = ferry
    line, scene_id = first_line(app, video_id)
    assert "ferry" in line.text.lower() and line.edit is None
    assert not [h for h in app.search("Zeelandia").hits if "fulltext" in h.channels]

    edit = app.correct_line(LOCAL_OWNER, video_id, line.start_s, line.end_s, CORRECTED)
    assert edit.text == CORRECTED and " ".join(w.text.strip() for w in edit.original) == line.text

    scene = app.scene(LOCAL_OWNER, scene_id)
    assert scene.transcript.startswith(CORRECTED) and "bicycles ride free" in scene.transcript.lower()
    assert subtitles.lines(scene.words)[0] == subtitles.Line(edit.start_s, edit.end_s, CORRECTED, edit.id)
    hit = app.search("Zeelandia").hits[0]
    assert hit.scene_id == scene_id and "fulltext" in hit.channels and "<mark>Zeelandia</mark>" in hit.snippet
    draft = with_words(scene, scene.words)
    whole = best_dense(app, scene_text(draft))
    assert whole.score > 0.99 and whole.window is None, "the scene's vector is its corrected text's"
    windows = scene_windows(draft)
    assert windows and CORRECTED in windows[0]
    assert best_dense(app, windows[0]).window is not None, "its windows are made again too"

    app.reprocess(video_id)
    assert app.process(video_id).state.value == "indexed"
    scene = app.scenes(LOCAL_OWNER, video_id)[0]
    assert scene.transcript.startswith(CORRECTED), "a reprocess lays the correction over the new words"
    assert [e.id for e in app.transcript_edits(LOCAL_OWNER, video_id)] == [edit.id]
    assert app.search("Zeelandia").hits[0].scene_id == scene.id

    app.take_back_correction(LOCAL_OWNER, video_id, edit.id)
    scene = app.scenes(LOCAL_OWNER, video_id)[0]
    assert (
        subtitles.lines(scene.words)[0].text == line.text
        and app.transcript_edits(LOCAL_OWNER, video_id) == []
    )
    assert not [h for h in app.search("Zeelandia").hits if "fulltext" in h.channels]
    assert best_dense(app, scene_text(with_words(scene, scene.words))).score > 0.99


def test_corrections_are_the_owners_and_need_an_indexed_video(ferry) -> None:
    app, video_id = ferry
    line, _ = first_line(app, video_id)
    with pytest.raises(NotFoundError):
        app.correct_line("someone-else", video_id, line.start_s, line.end_s, "Not yours")
    with pytest.raises(NotFoundError):
        app.transcript_edits("someone-else", video_id)
    with pytest.raises(NotFoundError):
        app.take_back_correction(LOCAL_OWNER, video_id, "no-such-edit")
    with pytest.raises(InvalidRequestError, match="no scene holds"):
        app.correct_line(LOCAL_OWNER, video_id, 0.5, 9.5, "Across both scenes")
    app.reprocess(video_id)  # queued again: its scenes are about to be replaced
    try:
        with pytest.raises(ConflictError, match="once it is indexed"):
            app.correct_line(LOCAL_OWNER, video_id, line.start_s, line.end_s, "Too early")
    finally:
        assert app.process(video_id).state.value == "indexed"


KOREAN = "로켓이 구름 속으로 날아올랐다"  # "The rocket flew up into the clouds"


def test_a_korean_correction_is_found_by_its_morphemes_before_and_after_a_reprocess(ferry) -> None:
    """Korean words in a transcript (here a correction: the test voices speak no Korean Whisper can
    read) are full text by their morphemes, on both stores, and the snippet marks the whole word."""
    app, video_id = ferry
    scene = app.scenes(LOCAL_OWNER, video_id)[1]
    line = subtitles.lines(scene.words)[0]
    assert "rocket" in line.text.lower()
    assert not [h for h in app.search("구름").hits if "fulltext" in h.channels]
    edit = app.correct_line(LOCAL_OWNER, video_id, line.start_s, line.end_s, KOREAN)
    try:
        for when in ("corrected", "reprocessed"):
            for query, marked in (("구름", "구름"), ("로켓은", "로켓이"), ("날아오르는", "날아올랐다")):
                hits = [h for h in app.search(query).hits if "fulltext" in h.channels]
                assert hits and hits[0].scene_id == scene.id, (when, query, hits)
                assert f"<mark>{marked}</mark>" in hits[0].snippet, (when, query, hits[0].snippet)
            if when == "corrected":
                app.reprocess(video_id)
                assert app.process(video_id).state.value == "indexed"
    finally:
        app.take_back_correction(LOCAL_OWNER, video_id, edit.id)
    assert not [h for h in app.search("구름").hits if "fulltext" in h.channels]
