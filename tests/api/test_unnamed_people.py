"""/unnamed-people over real HTTP, on SQLite with files and on PostgreSQL with S3 (the pipeline in the
server's process: no queue). Carol's groups are listed, named, merged, split and hidden; Dave reaches
none of them through any endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from tests import services
from tests.api.live import LiveServer, upload, wait_for
from tests.e2e.conftest import PEOPLE_FIRST, people_video


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live(request, tmp_path_factory) -> Iterator[LiveServer]:
    with ExitStack() as stack:
        settings: dict = {}
        if request.param == "postgres":
            settings = {
                "database_url": stack.enter_context(services.fresh_postgres()),
                "storage_url": f"s3://{stack.enter_context(services.fresh_bucket())}",
                **services.s3_endpoint().settings_fields(),
            }
        yield stack.enter_context(LiveServer(tmp_path_factory.mktemp(f"unnamed-{request.param}"), **settings))


@pytest.fixture(scope="module")
def carol(live: LiveServer) -> Iterator[httpx.Client]:
    with live.user("carol@example.com") as client:
        r = upload(client, people_video("people-first", PEOPLE_FIRST), "friends.mp4")
        assert r.status_code == 201, r.text
        assert wait_for(client, r.json()["videos"][0]["id"])["state"] == "indexed"
        yield client


@pytest.fixture(scope="module")
def dave(live: LiveServer) -> Iterator[httpx.Client]:
    with live.user("dave@example.com") as client:
        yield client


def test_list_name_merge_move_hide(carol: httpx.Client) -> None:
    groups = carol.get("/unnamed-people").json()
    assert [g["face_count"] for g in groups] == sorted((g["face_count"] for g in groups), reverse=True)
    jesper = groups[0]
    face = jesper["best_faces"][0]
    crop = carol.get(face["crop"])
    assert crop.status_code == 200 and crop.headers["content-type"] == "image/jpeg"
    detail = carol.get(jesper["links"]["self"]).json()
    assert len(detail["faces"]) == jesper["face_count"] and detail["person_name"] is None

    r = carol.post(jesper["links"]["name"], json={"name": "  Jesper  "})
    assert r.status_code == 200 and r.json()["name"] == "Jesper" and r.json()["scene_count"] >= 3
    hits = carol.get("/search", params={"q": "person:Jesper"}).json()["hits"]
    assert hits and all("Jesper" in h["people"] + h["possible_people"] for h in hits)
    assert jesper["id"] not in {g["id"] for g in carol.get("/unnamed-people").json()}
    named = carol.get("/unnamed-people", params={"named": "true"}).json()
    assert next(g for g in named if g["id"] == jesper["id"])["person_name"] == "Jesper"

    qt_logo = [
        g for g in carol.get("/unnamed-people").json() if all(2 <= f["t_s"] < 4 for f in g["best_faces"])
    ]
    a, b = qt_logo[:2]  # Jim and Wayne
    r = carol.post(a["links"]["merge"], json={"into": b["id"]})
    assert r.status_code == 200 and r.json()["face_count"] == a["face_count"] + b["face_count"]
    assert carol.get(a["links"]["self"]).status_code == 404
    assert carol.post(b["links"]["merge"], json={"into": b["id"]}).status_code == 422
    moving = r.json()["best_faces"][0]
    r = carol.post(moving["links"]["move"], json={"to": None})
    assert r.status_code == 200 and r.json()["group"] != b["id"]
    alone = r.json()["group"]
    assert carol.post(moving["links"]["move"], json={}).status_code == 404, "no longer in that group"

    r = carol.put(f"/unnamed-people/{alone}/hidden", json={"hidden": True})
    assert r.status_code == 200 and r.json()["hidden"] is True
    assert alone not in {g["id"] for g in carol.get("/unnamed-people").json()}
    assert alone in {g["id"] for g in carol.get("/unnamed-people", params={"hidden": "true"}).json()}
    assert carol.post("/unnamed-people/cluster").json() == {"new_groups": []}
    assert carol.post(f"/unnamed-people/{alone}/name", json={"name": ""}).status_code == 422


def test_another_user_reaches_no_group(carol: httpx.Client, dave: httpx.Client) -> None:
    group = carol.get("/unnamed-people", params={"named": "true", "hidden": "true"}).json()[0]
    other = carol.get("/unnamed-people", params={"hidden": "true"}).json()[-1]
    face = group["best_faces"][0]
    assert dave.get("/unnamed-people", params={"named": "true", "hidden": "true"}).json() == []
    attempts = [
        ("GET", group["links"]["self"], None),
        ("GET", face["crop"], None),
        ("POST", group["links"]["name"], {"name": "Stolen"}),
        ("POST", group["links"]["merge"], {"into": other["id"]}),
        ("POST", f"/unnamed-people/{other['id']}/merge", {"into": group["id"]}),
        ("POST", face["links"]["move"], {"to": None}),
        ("PUT", group["links"]["hidden"], {"hidden": True}),
    ]
    for method, path, body in attempts:
        r = dave.request(method, path, json=body)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
    assert dave.post("/unnamed-people/cluster").json() == {"new_groups": []}
    assert dave.get("/people").json() == []
    after = carol.get(group["links"]["self"]).json()
    assert after["face_count"] == group["face_count"] and after["hidden"] == group["hidden"]
    assert after["person_name"] == group["person_name"]
