"""Index real narrated media with the real models, then search it through every channel.

Every test runs on both backends (tests/e2e/conftest.py): [embedded] and [server]; the same
assertions hold on both."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import httpx
import pytest

from heimdex.domain import STAGES, StageState
from heimdex.errors import InvalidMediaError, NotFoundError
from heimdex.pipeline.assemble import DANGLE_S
from tests import assets
from tests.api.backends import blob_keys
from tests.e2e.conftest import BACKENDS, backend_app, heimdex_cli, news_video, settings_env

pytestmark = pytest.mark.slow


def news(app):
    (video,) = [v for v in app.videos() if v.filename == "e2e_news.mp4"]
    return video


def top(app, query, **kw):
    hits = app.search(query, **kw).hits
    assert hits, f"no hits for {query!r}"
    return hits[0]


def fetch(ref: str) -> bytes:
    """The bytes behind a hit's thumbnail: a (presigned) URL on object storage, else a local path."""
    return httpx.get(ref).raise_for_status().content if ref.startswith("http") else Path(ref).read_bytes()


def test_every_stage_ran_once_and_was_recorded(indexed):
    video = news(indexed)
    records = {r.stage: r for r in indexed.stages(video.id)}
    assert set(records) == set(STAGES)
    assert all(r.state == StageState.DONE and r.attempts == 1 and r.duration_s >= 0 for r in records.values())
    assert video.info.has_audio and video.info.width == 640 and video.language == "en"


def test_scenes_follow_the_cuts(indexed):
    scenes = indexed.store.list_scenes(news(indexed).id)
    assert len(scenes) == 5  # five photos, hard cuts between them
    assert scenes[0].start_s == 0 and scenes[-1].end_s == pytest.approx(
        news(indexed).info.duration_s, abs=0.1
    )
    for a, b in itertools.pairwise(scenes):
        assert a.end_s == b.start_s  # no gap, no overlap


def test_each_word_belongs_to_one_scene(indexed):
    scenes = indexed.store.list_scenes(news(indexed).id)
    spoken = [w for s in scenes for w in s.words]
    assert len({(w.start_s, w.text) for w in spoken}) == len(spoken)
    for scene in scenes:  # by midpoint, but a sentence's edge word may sit up to DANGLE_S across the cut
        assert all(
            scene.start_s - DANGLE_S <= (w.start_s + w.end_s) / 2 <= scene.end_s + DANGLE_S
            for w in scene.words
        )
    assert [w.text for w in scenes[1].words][:2] == ["Our", "guest"]  # "Our" starts before the cut
    assert "rooftop" in scenes[1].transcript.lower() and "helmet" in scenes[4].transcript.lower()
    assert scenes[2].transcript == ""  # the silent scene


def test_paraphrased_speech_query(indexed):
    hit = top(indexed, "cheap housing close to the railway")
    assert (hit.filename, hit.scene_index) == ("e2e_news.mp4", 0)
    assert "semantic" in hit.channels


def test_keyword_query_highlights_the_word(indexed):
    hit = top(indexed, "helmets")
    assert hit.scene_index == 4 and "fulltext" in hit.channels
    assert re.search(r"<mark>helmets?</mark>", hit.snippet)  # Whisper may hear the singular


def test_on_screen_text_query(indexed):
    hit = top(indexed, "farmers market")
    assert hit.scene_index == 2 and "FARMERS MARKET" in hit.ocr_text.upper()
    assert "<mark>" in hit.snippet


def test_visual_query_through_tags(indexed):
    hit = top(indexed, "a cat")
    assert hit.scene_index == 2 and "visual" in hit.channels
    assert any("cat" in t for t in hit.tags)


def test_person_enrolled_after_indexing_is_found_then_removed(indexed):
    person = indexed.enrol("Jesper", [assets.kphotoalbum_photo("jesper.jpg")])  # another photo of him
    assert person.scene_count == 1
    hit = top(indexed, "person:Jesper")
    assert hit.scene_index == 3 and hit.people == ["Jesper"] and "person" in hit.channels
    assert [h.scene_index for h in indexed.search("person:jesper ferry timetable").hits] == [3]
    # person: filters; the other words only rank within the person's scenes
    assert {h.scene_index for h in indexed.search("person:Jesper rooftop garden").hits} <= {3}
    indexed.remove_person("Jesper")
    with pytest.raises(NotFoundError):
        indexed.search("person:Jesper")
    assert all(not s.people for s in indexed.store.list_scenes(news(indexed).id))


def test_pet_enrolled_by_appearance(indexed):
    """KPhotoAlbum's Donna is a dog: no human face, so she is enrolled and found by appearance."""
    donna = indexed.enrol("Donna", [assets.kphotoalbum_photo("donna.jpg")])
    assert donna.photo_count == 1
    hits = indexed.search("person:Donna").hits
    assert [h.scene_index for h in hits] == [1] and hits[0].people == ["Donna"]
    assert [h.scene_index for h in indexed.search("person:Donna rooftop garden").hits] == [1]
    indexed.remove_person("Donna")


def test_enrolment_photo_without_face_or_animal_is_refused(indexed):
    with pytest.raises(InvalidMediaError, match="no face"):
        indexed.enrol("Coffee", [assets.skimage_photo("coffee")])
    assert [p.name for p in indexed.people()] == []  # nothing half-created


def test_sidecars_and_thumbnails(indexed):
    for scene in indexed.store.list_scenes(news(indexed).id):
        doc = json.loads(indexed.blobs.get_text(scene.sidecar_key))
        assert doc["schema_version"] == 1 and doc["scene_index"] == scene.index
        assert doc["transcript"] == scene.transcript and doc["models"]["asr"].startswith("whisper")
        webp = indexed.blobs.get_bytes(scene.thumbnail_key)
        assert webp[:4] == b"RIFF" and webp[8:12] == b"WEBP"


def test_cli_search_json_shape(indexed):
    env = settings_env(indexed.settings)  # server mode: the same database and bucket
    proc = heimdex_cli(indexed.settings.home, "search", "rooftop garden", "--json", env=env)
    hits = json.loads(proc.stdout)
    assert hits and hits[0]["filename"] == "e2e_news.mp4" and hits[0]["scene_index"] == 1
    assert fetch(hits[0]["thumbnail"])[8:12] == b"WEBP"
    for key in (
        "video_id",
        "filename",
        "scene_id",
        "start_s",
        "end_s",
        "score",
        "transcript",
        "snippet",
        "channels",
        "thumbnail",
    ):
        assert key in hits[0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_reindex_replaces_scenes_and_old_files(backend, tmp_path, models):
    with backend_app(backend, tmp_path, models) as app:
        video = app.add_file(news_video()).video
        app.process(video.id)
        before = app.store.list_scenes(video.id)
        again = app.add_file(news_video())
        assert not again.is_new and again.video.id == video.id  # same content, same video
        app.reprocess(video.id)
        app.process(video.id)
        after = app.store.list_scenes(video.id)
        assert [s.id for s in after] == [s.id for s in before]
        assert app.store.scene_count("local") == len(before)
        folder = f"videos/{video.id}/"
        runs = {
            key.removeprefix(f"{folder}runs/").split("/")[0]
            for key in blob_keys(app.blobs, f"{folder}runs/")
            if key.startswith(f"{folder}runs/")
        }
        assert len(runs) == 1 and not blob_keys(app.blobs, f"{folder}work/")
        (run,) = runs  # the new index's thumbnails and sidecars; the old run's are gone
        assert all(s.thumbnail_key.startswith(f"{folder}runs/{run}/") for s in after)
        app.delete_video(video.id)
        assert app.store.scene_count("local") == 0 and not blob_keys(app.blobs, folder)
