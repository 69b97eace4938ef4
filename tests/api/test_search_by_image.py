"""POST /search/image and GET /scenes/{id}/similar over HTTP: real uploads, the real tagger, two users.

Runs on SQLite with local files, and on PostgreSQL + S3 with the in-process worker (no Redis: the
queue is not what is tested here)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
import pytest

from tests import assets, services
from tests.api.live import LiveServer, upload, wait_for
from tests.e2e.test_more_like_this import LIBRARY, library_video

DEPLOYMENTS = ["sqlite", "postgres"]


@pytest.fixture(scope="module", params=DEPLOYMENTS)
def live(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp(f"api-image-{request.param}")
    with contextlib.ExitStack() as stack:
        fields: dict = {}
        if request.param == "postgres":
            fields = {
                "database_url": stack.enter_context(services.fresh_postgres()),
                "storage_url": f"s3://{stack.enter_context(services.fresh_bucket())}",
                **services.s3_endpoint().settings_fields(),
            }
        yield stack.enter_context(LiveServer(home, **fields))


@pytest.fixture(scope="module")
def users(live: LiveServer) -> Iterator[tuple[httpx.Client, httpx.Client, dict]]:
    with live.user("alice@example.com") as alice, live.user("bob@example.com") as bob:
        r = upload(alice, library_video(), "holiday.mp4")
        assert r.status_code == 201, r.text
        video = wait_for(alice, r.json()["videos"][0]["id"])
        assert video["state"] == "indexed", video["error"]
        scenes = alice.get(f"/videos/{video['id']}/scenes").json()
        yield alice, bob, {[*LIBRARY, "coffee"][s["index"]]: s for s in scenes}


def _post_photo(client: httpx.Client, name: str, data: bytes, **params) -> httpx.Response:
    return client.post("/search/image", params=params, files={"file": (name, data, "image/jpeg")})


def test_a_photo_finds_the_scene_of_the_same_place(users):
    alice, _, scenes = users
    photo = assets.kphotoalbum_photo("bar55_2.jpg").read_bytes()
    r = _post_photo(alice, "bar.jpg", photo, min_confidence="low", per_video=100)
    assert r.status_code == 200, r.text
    hits = r.json()["hits"]
    assert hits[0]["scene_id"] == scenes["bar55"]["id"] and "image" in hits[0]["channels"]
    assert len(hits) == len(scenes)
    assert len(_post_photo(alice, "bar.jpg", photo, min_confidence="low").json()["hits"]) == 3, (
        "per-video cap"
    )


def test_more_like_this_over_http(users):
    alice, _, scenes = users
    r = alice.get(
        f"/scenes/{scenes['spiff']['id']}/similar", params={"min_confidence": "low", "per_video": 100}
    )
    assert r.status_code == 200, r.text
    ids = [h["scene_id"] for h in r.json()["hits"]]
    assert scenes["spiff"]["id"] not in ids and len(ids) == len(scenes) - 1


def test_bob_finds_nothing_of_alices(users):
    _, bob, scenes = users
    photo = assets.kphotoalbum_photo("bar55_2.jpg").read_bytes()
    r = _post_photo(bob, "bar.jpg", photo, min_confidence="low")
    assert r.status_code == 200 and r.json()["hits"] == []
    assert bob.get(f"/scenes/{scenes['spiff']['id']}/similar").status_code == 404
    video_id = scenes["spiff"]["video_id"]
    assert _post_photo(bob, "bar.jpg", photo, video=video_id).status_code == 404


def test_bad_uploads_are_4xx_with_a_reason(users):
    alice, _, _ = users
    r = _post_photo(alice, "notes.jpg", b"this is not a picture")
    assert r.status_code == 422 and "not a supported image" in r.json()["message"], r.text
    r = _post_photo(alice, "notes.txt", b"text")
    assert r.status_code == 415, r.text
    r = alice.post("/search/image", content=b"x", headers={"content-type": "application/json"})
    assert r.status_code == 415, r.text
    r = alice.post("/search/image", files={"other": ("a.jpg", b"x", "image/jpeg")}, data={"q": "x"})
    assert r.status_code in (400, 422) and r.status_code != 500, r.text
    big = b"\xff\xd8" + b"\x00" * (21 * 1024 * 1024)
    r = _post_photo(alice, "big.jpg", big)
    assert r.status_code == 413, r.text
    assert alice.get("/scenes/nope/similar").status_code == 404
