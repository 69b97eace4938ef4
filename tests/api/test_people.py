"""People over real HTTP: enrol photos, find them in indexed videos, rename, delete."""

from __future__ import annotations

from tests import assets
from tests.api.backends import blob_keys


def photo(name: str) -> tuple[str, bytes, str]:
    return (name, assets.kphotoalbum_photo(name).read_bytes(), "image/jpeg")


def test_enrol_find_rename_delete(server, alice, bob, news) -> None:
    r = alice.post("/people", json={"name": "  Donna  "})
    assert r.status_code == 201 and r.json()["name"] == "Donna" and r.json()["photo_count"] == 0
    donna = r.json()["id"]
    assert alice.post("/people", json={"name": "Donna"}).status_code == 409

    r = alice.post(f"/people/{donna}/photos", files={"file": photo("donna.jpg")})
    assert r.status_code == 200, r.text
    assert r.json()["photo_count"] == 1 and r.json()["scene_count"] >= 1
    assert alice.get(f"/people/{donna}/photo").headers["content-type"] == "image/jpeg"
    blobs = server.ctx.heimdex.blobs
    assert blob_keys(blobs, f"people/{donna}/"), "the enrolled photo is kept"

    scenes = alice.get(f"/people/{donna}/scenes").json()["hits"]
    assert scenes and all("Donna" in h["people"] for h in scenes)
    assert any("garden" in h["transcript"].lower() for h in scenes)  # Whisper may write "roof top"
    hits = alice.get("/search", params={"q": "garden", "person": "Donna"}).json()["hits"]
    assert hits and hits[0]["people"] == ["Donna"] and "person" in hits[0]["channels"]
    assert alice.get("/search", params={"q": 'person:"Donna"'}).json()["hits"]

    # Review: every linked face, nearest first; the owner's verdict decides over the matcher's.
    listing = alice.get(f"/people/{donna}/matches").json()
    assert listing["total"] == len(listing["matches"]) >= 1
    match = listing["matches"][0]
    assert not match["possible"] and match["verdict"] is None and match["filename"] == "evening news.mp4"
    assert alice.get(match["thumbnail"]).headers["content-type"] == "image/webp"
    assert alice.get(f"/people/{donna}/matches", params={"possible": "true"}).json()["matches"] == []
    seen_in = r.json()["scene_count"]
    r = alice.put(match["links"]["self"], json={"verdict": "rejected"})
    assert r.status_code == 200 and r.json()["scene_count"] == seen_in - 1
    rejected = alice.get(f"/scenes/{match['scene_id']}").json()
    assert "Donna" not in rejected["people"] + rejected["possible_people"]
    assert alice.put(match["links"]["self"], json={"verdict": None}).json()["scene_count"] == seen_in
    assert bob.put(match["links"]["self"], json={"verdict": "rejected"}).status_code == 404
    assert bob.get(f"/people/{donna}/matches").status_code == 404
    assert alice.put(match["links"]["self"], json={"verdict": "maybe"}).status_code == 422
    assert alice.put(match["links"]["self"], json={}).status_code == 422
    assert alice.put(f"/people/{donna}/matches/999999999", json={"verdict": "confirmed"}).status_code == 404
    assert alice.put(f"/people/{donna}/matches/0", json={"verdict": "confirmed"}).status_code == 422
    assert alice.put(f"/people/{donna}/matches/{10**30}", json={"verdict": None}).status_code == 422

    r = alice.patch(f"/people/{donna}", json={"name": "Donna Smith"})
    assert r.status_code == 200 and r.json()["name"] == "Donna Smith"
    assert [p["name"] for p in alice.get("/people").json()] == ["Donna Smith"]
    assert alice.get(f"/scenes/{scenes[0]['scene_id']}").json()["people"] == ["Donna Smith"]

    assert alice.delete(f"/people/{donna}").status_code == 204
    assert alice.get(f"/people/{donna}").status_code == 404
    assert alice.get(f"/scenes/{scenes[0]['scene_id']}").json()["people"] == []
    assert blob_keys(blobs, f"people/{donna}/") == []


def test_people_bad_requests(alice, tmp_path) -> None:
    person = alice.post("/people", json={"name": "Nobody Yet"}).json()["id"]
    no_face = assets.skimage_photo("coffee")
    r = alice.post(
        f"/people/{person}/photos", files={"file": ("coffee.png", no_face.read_bytes(), "image/png")}
    )
    assert r.status_code == 422 and "no face" in r.json()["message"]
    r = alice.post(f"/people/{person}/photos", files={"file": ("notes.txt", b"hello", "text/plain")})
    assert r.status_code == 415
    r = alice.post(f"/people/{person}/photos", files={"file": ("broken.jpg", b"not a jpeg", "image/jpeg")})
    assert r.status_code == 422 and "not a supported image" in r.json()["message"], r.text
    assert alice.post("/people", json={"name": ""}).status_code == 422
    assert alice.post("/people", json={"name": "   "}).status_code == 400
    assert alice.patch(f"/people/{person}", json={}).status_code == 422
    assert alice.get("/people/0000000000000000").status_code == 404
    alice.delete(f"/people/{person}")
