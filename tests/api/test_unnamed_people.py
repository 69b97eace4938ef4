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
from tests.e2e.conftest import PEOPLE_FIRST, PEOPLE_SECOND, people_video


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
    in_group = carol.get(f"/unnamed-people/{jesper['id']}/faces/{face['face']}/crop")  # the older URL
    assert in_group.content == crop.content and face["group"] == jesper["id"]
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
        ("GET", f"/unnamed-people/{group['id']}/faces/{face['face']}/crop", None),
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


@pytest.fixture(scope="module")
def erin(live: LiveServer) -> Iterator[httpx.Client]:
    """The second video alone: Jesper's 41-px faces (grand_canyon_2.jpg, from 0:06) start no group."""
    with live.user("erin@example.com") as client:
        r = upload(client, people_video("people-second", PEOPLE_SECOND), "later.mp4")
        assert r.status_code == 201, r.text
        assert wait_for(client, r.json()["videos"][0]["id"])["state"] == "indexed"
        yield client


def test_faces_in_no_group_given_to_a_person_and_two_people_merged(erin: httpx.Client) -> None:
    listing = erin.get("/faces/ungrouped").json()
    assert listing["total"] == 2 and all(6 <= f["t_s"] < 8 and f["group"] is None for f in listing["faces"])
    face, other = listing["faces"]
    crop = erin.get(face["crop"])
    assert crop.status_code == 200 and crop.headers["content-type"] == "image/jpeg"
    assert face["links"]["play"] == f"/app/watch/{face['video_id']}?t={face['t_s']}"
    assert erin.get("/faces/ungrouped", params={"limit": 1, "offset": 1}).json()["faces"] == [other]

    # A person with no group yet: the face starts one of theirs, and its scene is theirs at once.
    kanal = erin.post("/people", json={"name": "Jesper Kanal"}).json()
    r = erin.post(face["links"]["assign"], json={"person": kanal["id"]})
    assert r.status_code == 200 and r.json()["face"] == face["face"]
    group = erin.get(f"/unnamed-people/{r.json()['group']}").json()
    assert group["person_name"] == "Jesper Kanal" and [f["face"] for f in group["faces"]] == [face["face"]]
    assert erin.get(f"/people/{kanal['id']}").json()["scene_count"] == 1
    # The other face into a group; a face goes to one place only.
    jesper = erin.get("/unnamed-people").json()[0]
    assert erin.post(other["links"]["assign"], json={"group": jesper["id"]}).json()["group"] == jesper["id"]
    assert erin.get("/faces/ungrouped").json() == {"total": 0, "faces": []}
    both = {"group": jesper["id"], "person": kanal["id"]}
    assert erin.post(other["links"]["assign"], json=both).status_code == 422
    assert erin.post(other["links"]["assign"], json={"group": "0000000000000000"}).status_code == 404

    # Jesper's group named; the two people merged: one name finds every scene of both.
    named = erin.post(jesper["links"]["name"], json={"name": "Jesper"}).json()
    assert erin.post(f"/people/{named['id']}/merge", json={"into": named["id"]}).status_code == 422
    r = erin.post(f"/people/{kanal['id']}/merge", json={"into": named["id"]})
    assert r.status_code == 200 and r.json()["id"] == named["id"] and r.json()["name"] == "Jesper"
    assert r.json()["scene_count"] > named["scene_count"]
    assert erin.get(f"/people/{kanal['id']}").status_code == 404
    assert [p["name"] for p in erin.get("/people").json()] == ["Jesper"]
    hits = erin.get("/search", params={"q": "person:Jesper", "per_video": 100}).json()["hits"]
    scenes = {h["scene_id"] for h in hits}
    assert face["scene_id"] in scenes and jesper["best_faces"][0]["scene_id"] in scenes

    # Two named groups merge too (once a conflict): the source's person joins the target's.
    anne = erin.get("/unnamed-people").json()[0]
    assert erin.post(anne["links"]["name"], json={"name": "Anne"}).status_code == 200
    r = erin.post(anne["links"]["merge"], json={"into": jesper["id"]})
    assert r.status_code == 200 and r.json()["person_name"] == "Jesper"
    assert [p["name"] for p in erin.get("/people").json()] == ["Jesper"]


def test_another_user_reaches_no_face_and_merges_no_person(erin: httpx.Client, dave: httpx.Client) -> None:
    person = erin.get("/people").json()[0]
    group = erin.get("/unnamed-people", params={"named": "true"}).json()[0]
    face = group["best_faces"][0]
    mine = dave.post("/people", json={"name": "Dave's Jesper"}).json()
    assert dave.get("/faces/ungrouped").json() == {"total": 0, "faces": []}
    attempts = [
        ("GET", face["crop"], None),
        ("POST", face["links"]["assign"], {}),
        ("POST", face["links"]["assign"], {"person": mine["id"]}),
        ("POST", face["links"]["assign"], {"group": group["id"]}),
        ("POST", f"/people/{person['id']}/merge", {"into": mine["id"]}),
        ("POST", f"/people/{mine['id']}/merge", {"into": person["id"]}),
    ]
    for method, path, body in attempts:
        r = dave.request(method, path, json=body)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
    # Nor can erin put her face with his person.
    assert erin.post(face["links"]["assign"], json={"person": mine["id"]}).status_code == 404
    assert erin.get(f"/unnamed-people/{group['id']}").json()["face_count"] == group["face_count"]
    assert erin.get(f"/people/{person['id']}").json()["name"] == person["name"]
    assert dave.get(f"/people/{mine['id']}").json()["name"] == "Dave's Jesper"
