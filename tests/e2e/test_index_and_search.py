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

from heimdex.domain import StageState
from heimdex.errors import InvalidMediaError, NotFoundError
from heimdex.pipeline.assemble import DANGLE_S
from heimdex.pipeline.graph import STAGES
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
    scenes = indexed.store.job_scenes(news(indexed).id)
    assert len(scenes) == 5  # five photos, hard cuts between them
    assert scenes[0].start_s == 0 and scenes[-1].end_s == pytest.approx(
        news(indexed).info.duration_s, abs=0.1
    )
    for a, b in itertools.pairwise(scenes):
        assert a.end_s == b.start_s  # no gap, no overlap


def test_each_word_belongs_to_one_scene(indexed):
    scenes = indexed.store.job_scenes(news(indexed).id)
    spoken = [w for s in scenes for w in s.words]
    assert len({(w.start_s, w.text) for w in spoken}) == len(spoken)
    for scene in scenes:  # by midpoint, but a sentence's edge word may sit up to DANGLE_S across the cut
        assert all(
            scene.start_s - DANGLE_S <= (w.start_s + w.end_s) / 2 <= scene.end_s + DANGLE_S
            for w in scene.words
        )
    assert [w.text for w in scenes[1].words][:2] == ["Our", "guest"]  # "Our" starts before the cut
    assert re.search(r"roof ?top", scenes[1].transcript.lower())  # Whisper writes it either way
    assert "helmet" in scenes[4].transcript.lower()
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
    # person: filters; the other words only rank within the person's scenes. Alone, these words
    # find the garden scene (1); with person:Jesper only his scene (3) may come back, and it does.
    assert top(indexed, "rooftop garden").scene_index == 1
    assert [h.scene_index for h in indexed.search("person:Jesper rooftop garden").hits] == [3]
    indexed.remove_person("Jesper")
    with pytest.raises(NotFoundError):
        indexed.search("person:Jesper")
    assert all(not s.people for s in indexed.store.job_scenes(news(indexed).id))


def test_a_face_just_past_the_threshold_is_a_possible_match_to_review(indexed, monkeypatch):
    """Jesper's face in the news video is a sure match with the default threshold. With a threshold
    just below its distance it falls in the margin: found as possible, marked so in hits, and the
    owner's confirm or reject decides, also when everyone is matched again."""
    jesper = indexed.enrol("Jesper", [assets.kphotoalbum_photo("jesper.jpg")])
    try:
        (sure,) = indexed.person_matches("Jesper")
        assert not sure.possible and sure.distance < indexed.settings.face_match_distance
        settings = indexed.models.settings
        monkeypatch.setattr(settings, "face_match_distance", sure.distance - 0.01)
        monkeypatch.setattr(settings, "possible_match_margin", 0.05)
        indexed.rematch_people(jesper.owner_id)
        person = indexed.store.get_person(jesper.owner_id, jesper.id)
        assert (person.scene_count, person.possible_count) == (0, 1)
        (hit,) = indexed.search("person:Jesper").hits
        assert hit.scene_index == 3 and hit.people == [] and hit.possible_people == ["Jesper"]
        assert hit.confidence == "medium", "a possible face is still shown, marked possible"
        (review,) = indexed.person_matches("Jesper", possible_only=True)
        assert review.face_pk == sure.face_pk and review.verdict is None

        assert indexed.judge_match("Jesper", review.face_pk, "confirmed").scene_count == 1
        indexed.rematch_people(jesper.owner_id)  # the owner's word outlasts re-matching
        assert indexed.search("person:Jesper").hits[0].people == ["Jesper"]
        assert indexed.judge_match("Jesper", review.face_pk, "rejected").scene_count == 0
        indexed.rematch_people(jesper.owner_id)
        assert indexed.search("person:Jesper").hits == []
        assert indexed.judge_match("Jesper", review.face_pk, None).possible_count == 1  # undo
        with pytest.raises(NotFoundError):
            indexed.judge_match("Jesper", review.face_pk + 10_000, "confirmed")
    finally:
        indexed.remove_person("Jesper")


def test_cli_review_confirm_and_reject(indexed):
    """The same review through the real CLI, with a threshold (from the environment) that puts
    Jesper's face in the margin."""
    (sure,) = _enrolled_distance(indexed)
    env = {
        **settings_env(indexed.settings),
        "HEIMDEX_FACE_MATCH_DISTANCE": str(sure - 0.01),
        "HEIMDEX_POSSIBLE_MATCH_MARGIN": "0.05",
    }
    home = indexed.settings.home
    photo = str(assets.kphotoalbum_photo("jesper.jpg"))
    try:
        added = heimdex_cli(home, "people", "add", "Jesper", photo, env=env).stdout
        assert "seen in 0 scenes" in added and "1 more scene may show Jesper" in added
        review = heimdex_cli(home, "people", "review", "Jesper", "--json", env=env).stdout
        (face,) = json.loads(review)
        assert face["possible"] and face["filename"] == "e2e_news.mp4" and face["verdict"] is None
        table = heimdex_cli(home, "people", "review", "Jesper", env=env).stdout
        assert str(face["face_pk"]) in table and "possible" in table
        hits = json.loads(heimdex_cli(home, "search", "person:Jesper", "--json", env=env).stdout)
        assert [h["possible_people"] for h in hits] == [["Jesper"]] and hits[0]["people"] == []
        confirmed = heimdex_cli(home, "people", "confirm", "Jesper", str(face["face_pk"]), env=env).stdout
        assert "Jesper: seen in 1 scenes" in confirmed
        assert "nothing to review" in heimdex_cli(home, "people", "review", "Jesper", env=env).stdout
        heimdex_cli(home, "people", "reject", "Jesper", str(face["face_pk"]), env=env)
        assert json.loads(heimdex_cli(home, "search", "person:Jesper", "--json", env=env).stdout) == []
        wrong = heimdex_cli(home, "people", "confirm", "Jesper", "99999999", env=env, check=False)
        assert wrong.returncode != 0 and "no face 99999999" in wrong.stdout + wrong.stderr
        assert "Traceback" not in wrong.stdout + wrong.stderr
        huge = heimdex_cli(home, "people", "reject", "Jesper", str(10**30), env=env, check=False)
        assert huge.returncode == 2 and "Traceback" not in huge.stdout + huge.stderr
    finally:
        heimdex_cli(home, "people", "remove", "Jesper", env=env, check=False)


def _enrolled_distance(app) -> list[float]:
    """Jesper's match distances with the default threshold (enrolled, measured, removed)."""
    app.enrol("Jesper", [assets.kphotoalbum_photo("jesper.jpg")])
    try:
        return [m.distance for m in app.person_matches("Jesper")]
    finally:
        app.remove_person("Jesper")


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
    for scene in indexed.store.job_scenes(news(indexed).id):
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
        before = app.store.job_scenes(video.id)
        again = app.add_file(news_video())
        assert not again.is_new and again.video.id == video.id  # same content, same video
        app.reprocess(video.id)
        app.process(video.id)
        after = app.store.job_scenes(video.id)
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
