"""Two users: neither can see, stream, search, change or delete what belongs to the other (404)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from tests import assets
from tests.api.backends import blob_keys, job_over
from tests.api.live import LiveServer, eventually, upload, wait_for


@contextmanager
def job_events(server: LiveServer, client: httpx.Client) -> Iterator[list[dict]]:
    """What GET /jobs/events sends `client`'s user while the block runs, as the job dicts received."""
    events: list[dict] = []
    stop = threading.Event()
    stream_client = server.client(client.headers["authorization"].split()[1])

    def listen() -> None:
        try:
            with stream_client.stream("GET", "/jobs/events", timeout=httpx.Timeout(60, read=None)) as r:
                if r.status_code != 200:
                    events.append({"status": r.status_code})
                    return
                for line in r.iter_lines():
                    if line.startswith("data: "):
                        events.append(json.loads(line[6:]))
        except httpx.HTTPError:
            if not stop.is_set():
                raise

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    try:
        yield events
    finally:
        stop.set()
        stream_client.close()
        listener.join(5)


def broken_video(tmp_path, name: str):
    """A file that fails indexing at once (its bytes differ per name: each upload is a new video)."""
    path = tmp_path / name
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + name.encode() + bytes(range(256)) * 40)
    return path


def test_bob_cannot_reach_anything_of_alice(server, alice, bob, news, tmp_path) -> None:
    donna = alice.post("/people", json={"name": "Donna Iso"}).json()["id"]
    alice.post(
        f"/people/{donna}/photos",
        files={"file": ("d.jpg", assets.kphotoalbum_photo("donna.jpg").read_bytes(), "image/jpeg")},
    )
    video = news["id"]
    scene = alice.get(f"/videos/{video}/scenes").json()[0]["id"]
    token = alice.post("/auth/tokens", json={"name": "alice's"}).json()["id"]
    line = alice.get(f"/videos/{video}/transcript").json()["scenes"][0]["lines"][0]
    edit = alice.put(
        f"/videos/{video}/transcript/lines", json={**line, "text": line["text"] + " indeed"}
    ).json()
    reel = alice.post("/reels", json={"scene_ids": [scene], "fade": False}).json()
    assert reel["state"] in ("queued", "running", "done"), reel

    reads = [
        f"/videos/{video}",
        f"/videos/{video}/scenes",
        f"/videos/{video}/stream",
        f"/videos/{video}/thumbnail",
        f"/scenes/{scene}",
        f"/scenes/{scene}/thumbnail",
        f"/people/{donna}",
        f"/people/{donna}/photo",
        f"/people/{donna}/scenes",
        # What users take out of a moment (issue 12): subtitles, the transcript, a scene's clip.
        f"/videos/{video}/subtitles.vtt",
        f"/videos/{video}/subtitles.srt",
        f"/videos/{video}/transcript",
        f"/scenes/{scene}/clip.mp4",
    ]
    for path in reads:
        r = bob.get(path)
        assert r.status_code == 404, path
        # follow: on object storage /stream answers with a redirect to a presigned URL
        assert alice.get(path, follow_redirects=True).status_code == 200, path
    assert bob.get(f"/videos/{video}/stream", headers={"Range": "bytes=0-10"}).status_code == 404

    writes = [
        ("POST", f"/videos/{video}/reprocess", None),
        ("DELETE", f"/videos/{video}", None),
        ("PATCH", f"/people/{donna}", {"name": "Stolen"}),
        ("DELETE", f"/people/{donna}", None),
        ("DELETE", f"/auth/tokens/{token}", None),
        ("POST", f"/videos/{video}/clips", {"start_s": 0.0, "end_s": 1.0}),
        ("PUT", f"/videos/{video}/transcript/lines", {**line, "text": "Bob was here"}),
        ("DELETE", f"/videos/{video}/transcript/edits/{edit['id']}", None),
        ("POST", "/reels", {"scene_ids": [scene]}),
        ("GET", f"/reels/{reel['id']}", None),
        ("GET", f"/reels/{reel['id']}/file", None),
    ]
    for method, path, body in writes:
        r = bob.request(method, path, json=body)
        assert r.status_code == 404, (method, path)
    r = bob.post(f"/people/{donna}/photos", files={"file": ("d.jpg", b"x", "image/jpeg")})
    assert r.status_code == 404

    # Search never crosses owners, whatever the filters say.
    assert alice.get("/search", params={"q": "rooftop garden"}).json()["hits"]
    assert bob.get("/search", params={"q": "rooftop garden"}).json()["hits"] == []
    assert bob.get("/search", params={"q": f"video:{video} garden"}).json()["hits"] == []
    assert bob.get("/search", params={"q": "garden", "video": video}).status_code == 404
    assert bob.get("/search", params={"q": "garden", "person": donna}).status_code == 404
    assert bob.get("/search", params={"q": 'person:"Donna Iso"'}).status_code == 404
    assert bob.get("/videos").json()["total"] == 0 and bob.get("/people").json() == []
    assert bob.get("/jobs").json()["jobs"] == [] and bob.get("/auth/tokens").json() == []

    # Job events: each user's stream carries their own videos and nothing of the other's.
    with job_events(server, alice) as alices, job_events(server, bob) as bobs:
        mine = upload(alice, broken_video(tmp_path, "alice-private-plans.mp4")).json()["videos"][0]["id"]
        theirs = upload(bob, broken_video(tmp_path, "bob-notes.mp4")).json()["videos"][0]["id"]
        for client, vid in ((alice, mine), (bob, theirs)):
            assert wait_for(client, vid)["state"] == "failed"
            eventually(lambda vid=vid: job_over(server, vid), what="the job to end")
        eventually(lambda: any(e.get("video_id") == mine and e["state"] == "failed" for e in alices))
        eventually(lambda: any(e.get("video_id") == theirs and e["state"] == "failed" for e in bobs))
        assert alice.delete(f"/videos/{mine}").status_code == 204
        eventually(lambda: any(e.get("video_id") == mine and e["state"] == "deleted" for e in alices))
    alices_videos = {v["id"] for v in alice.get("/videos").json()["videos"]} | {mine}
    bobs_videos = {v["id"] for v in bob.get("/videos").json()["videos"]}
    assert video in {e.get("video_id") for e in alices}, "alice's stream starts with her library"
    seen_by_bob = {e.get("video_id") for e in bobs}
    assert theirs in seen_by_bob and seen_by_bob <= bobs_videos, bobs
    assert seen_by_bob.isdisjoint(alices_videos), bobs
    assert "alice-private-plans" not in json.dumps(bobs) and "evening news" not in json.dumps(bobs)
    assert bob.delete(f"/videos/{theirs}").status_code == 204

    # Web pages too.
    page = server.client()
    page.post("/auth/login", json={"email": "bob@example.com", "password": "correct horse battery"})
    assert page.get(f"/app/watch/{video}").status_code == 404
    assert page.get(f"/app/people/{donna}").status_code == 404
    assert "evening news" not in page.get("/app").text

    # Everything of alice's is intact.
    assert alice.get(f"/videos/{video}").json()["state"] == "indexed"
    assert alice.get(f"/videos/{video}/transcript").json()["edits"] == [edit]
    assert alice.get(f"/reels/{reel['id']}").status_code == 200
    assert alice.delete(f"/videos/{video}/transcript/edits/{edit['id']}").status_code == 204
    assert alice.get(f"/people/{donna}").json()["name"] == "Donna Iso"
    assert alice.delete(f"/people/{donna}").status_code == 204


def spoken_video():
    """One narrated scene: long enough (a few seconds of indexing) to delete it mid-job."""
    return assets.narrated_video(
        "api-spoken",
        [
            {
                "image": assets.skimage_photo("coffee"),
                "say": "A cup of coffee on a saucer, seen from above.",
                "seconds": 3.0,
            }
        ],
    )


def test_delete_during_indexing_waits_for_the_job(server, alice, bob, news) -> None:
    r = upload(bob, spoken_video(), "bobs.mp4")
    assert r.status_code == 201
    mine = r.json()["videos"][0]
    assert mine["created"]
    video = f"/videos/{mine['id']}"
    eventually(lambda: bob.get(video).json()["state"] == "processing", what="the worker to take bob's video")
    r = bob.delete(video)
    if server.backend == "embedded":
        # The pipeline is not interrupted mid-stage: the deletion is accepted and done when the job ends.
        assert r.status_code == 202
    else:
        # The job runs in another process, which the API cannot wait for: the rows go now, and the
        # worker drops the job (and whatever its last stage wrote) as soon as it notices.
        assert r.status_code == 204
    eventually(lambda: bob.get(video).status_code == 404, timeout=120, what="bob's delete")
    # Only once the job is over can nothing more be written for the video.
    eventually(lambda: job_over(server, mine["id"]), timeout=120, what="the job to end")
    blobs = server.ctx.heimdex.blobs
    prefix = f"videos/{mine['id']}/"
    eventually(lambda: not blob_keys(blobs, prefix), what="the files to go")  # removed just after the rows
    # The same file uploaded by alice is her own video, untouched by bob's deletion.
    r = upload(alice, spoken_video(), "alices.mp4")
    assert r.status_code == 201 and r.json()["videos"][0]["id"] != mine["id"]
    assert wait_for(alice, r.json()["videos"][0]["id"])["state"] == "indexed"
    played = alice.get(f"/videos/{news['id']}/stream", headers={"Range": "bytes=0-9"}, follow_redirects=True)
    assert played.status_code == 206
