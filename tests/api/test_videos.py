"""Videos over real HTTP: upload of real media, the worker indexing it, scenes, search, Range
streaming, reprocess, delete cleaning everything, limits and bad requests."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path

import httpx
import numpy as np
import psycopg
import pytest
import redis

from heimdex.domain import SearchHit, VideoState
from heimdex.errors import NotFoundError
from heimdex.pipeline.assemble import DANGLE_S
from heimdex.pipeline.graph import STAGES
from heimdex.store import SceneFilter
from tests import assets
from tests.api.backends import (
    BACKENDS,
    TEST_REDIS_DB,
    ThreadWorker,
    blob_keys,
    job_over,
    live_server,
    server_settings,
)
from tests.api.live import LiveServer, eventually, upload, wait_for


def small_video() -> Path:
    """Two photos, two seconds each, no speech: indexes in a few seconds."""
    return assets.narrated_video(
        "api-small",
        [
            {"image": assets.kphotoalbum_photo("donna.jpg"), "say": None, "seconds": 2.0},
            {"image": assets.skimage_photo("astronaut"), "say": None, "seconds": 2.0},
        ],
    )


def owner_index(server: LiveServer, owner_id: str) -> dict[str, object]:
    """What the store holds for an owner, read through the Store interface: the scene count, the
    scenes with a text vector, and the faces of each face model. Deleting a video must bring every
    one back to what it was before the video came."""
    store, models = server.ctx.heimdex.store, server.ctx.heimdex.models
    probe = np.full(models.text.dim, models.text.dim**-0.5, dtype=np.float32)  # any unit vector
    vectors = store.dense_text(SceneFilter(owner_id=owner_id), models.text.name, probe, limit=100_000)
    index: dict[str, object] = {
        "scenes": store.scene_count(owner_id),
        "text vectors": sorted(hit.scene_pk for hit in vectors),
    }
    for model in (models.faces.name, models.appearance.name):
        index[f"faces of {model}"] = store.face_embeddings(owner_id, model)[0]
    return index


# Every read of the Store joins vectors to their scene, so a vector left behind by a deleted scene
# is invisible through it: only the database itself can show one. The same SQL runs on both.
ORPHAN_VECTORS = (
    "SELECT count(*) FROM scene_vectors v LEFT JOIN scenes s ON s.pk = v.scene_pk WHERE s.pk IS NULL"
)


def orphan_vectors(server: LiveServer) -> int:
    url = server.settings.resolved_database_url
    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as db:
            return int(db.execute(ORPHAN_VECTORS).fetchone()[0])
    with psycopg.connect(url) as conn:
        return int(conn.execute(ORPHAN_VECTORS).fetchone()[0])


def test_uploaded_video_is_indexed_with_stages(alice, news) -> None:
    detail = alice.get(f"/videos/{news['id']}").json()
    assert detail["state"] == "indexed" and detail["progress"] == 1.0
    assert detail["scene_count"] >= 4 and detail["filename"] == "evening news.mp4"
    assert [s["stage"] for s in detail["stages"]] == list(STAGES)
    assert all(s["state"] == "done" and s["duration_s"] is not None for s in detail["stages"])
    assert detail["thumbnail"] == f"/videos/{news['id']}/thumbnail"
    thumb = alice.get(detail["thumbnail"])
    assert thumb.headers["content-type"] == "image/webp" and thumb.content[8:12] == b"WEBP"


def test_same_file_again_is_the_same_video(alice, news) -> None:
    from tests.e2e.conftest import news_video

    r = upload(alice, news_video(), "copy.mp4")
    assert r.status_code == 200
    assert r.json()["videos"][0]["id"] == news["id"] and r.json()["videos"][0]["created"] is False


def test_list_filter_and_sort(alice, news) -> None:
    listed = alice.get(
        "/videos", params={"state": "indexed", "q": "NEWS", "sort": "name", "order": "asc"}
    ).json()
    assert news["id"] in [v["id"] for v in listed["videos"]]
    assert alice.get("/videos", params={"q": "no such name"}).json() == {
        "total": 0,
        "limit": 100,
        "offset": 0,
        "videos": [],
    }
    assert alice.get("/videos", params={"state": "failed", "q": "news"}).json()["total"] == 0
    assert alice.get("/videos", params={"sort": "colour"}).status_code == 422
    assert alice.get("/videos", params={"limit": 0}).status_code == 422


def lighthouse_video() -> Path:
    """One scene, a cup of coffee under the caption of the CLI tests' clip (LIGHTHOUSE TOUR)."""
    return assets.narrated_video(
        "api-lighthouse",
        [{"image": assets.skimage_photo("coffee"), "say": None, "text": "LIGHTHOUSE TOUR", "seconds": 2.5}],
    )


def test_list_sort_orders_and_search_by_date(server, tmp_path) -> None:
    from tests.cli.test_cli_commands import clip as captioned_clip

    client = server.user("sorting@example.com")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    # (file, name, length in seconds as made), uploaded in this order: every key sorts them differently
    files = [
        (captioned_clip(), "c-lighthouse-old.mp4", 4.0),
        (assets.tiny_clip(), "a-tiny.mp4", 1.0),
        (broken, "d-broken.mp4", None),
        (lighthouse_video(), "B-lighthouse-new.mp4", 2.5),
    ]
    ids, size, length, name = [], {}, {}, {}
    for path, filename, seconds in files:
        r = upload(client, path, filename)
        assert r.status_code == 201, r.text
        video_id = r.json()["videos"][0]["id"]
        ids.append(video_id)
        size[video_id], length[video_id], name[video_id] = path.stat().st_size, seconds or 0.0, filename
    state = {video_id: wait_for(client, video_id)["state"] for video_id in ids}
    assert list(state.values()) == ["indexed", "indexed", "failed", "indexed"], state

    def listed(sort: str, order: str) -> list[str]:
        r = client.get("/videos", params={"sort": sort, "order": order})
        assert r.status_code == 200, r.text
        return [v["id"] for v in r.json()["videos"]]

    expected = {
        "created": ids,
        "name": sorted(ids, key=lambda v: name[v].lower()),  # case does not count
        "size": sorted(ids, key=size.get),
        "duration": sorted(ids, key=length.get),  # the failed file has none: first
    }
    for sort, ascending in expected.items():
        assert listed(sort, "asc") == ascending, sort
        assert listed(sort, "desc") == ascending[::-1], sort
    assert [v["id"] for v in client.get("/videos").json()["videos"]] == ids[::-1], "newest first by default"
    assert [state[v] for v in listed("state", "asc")] == ["failed", "indexed", "indexed", "indexed"]
    assert [state[v] for v in listed("state", "desc")] == ["indexed", "indexed", "indexed", "failed"]
    assert client.get("/videos", params={"order": "sideways"}).status_code == 422

    # Search by date: the same hits as by relevance, the newest video's first, each video's in order.
    params = {"q": "lighthouse tour", "per_video": 10, "min_confidence": "low"}
    relevance = client.get("/search", params=params).json()["hits"]
    r = client.get("/search", params={**params, "sort": "date"})
    assert r.status_code == 200 and r.json()["sort"] == "date"
    by_date = r.json()["hits"]
    assert sorted(h["scene_id"] for h in by_date) == sorted(h["scene_id"] for h in relevance)
    old, new = ids[0], ids[3]
    assert {h["video_id"] for h in by_date} == {old, new}, "both captioned videos are found"
    newest_first = [(ids.index(h["video_id"]) * -1, h["start_s"]) for h in by_date]
    assert newest_first == sorted(newest_first), [(h["video_id"], h["start_s"]) for h in by_date]
    for video_id in ids:
        client.delete(f"/videos/{video_id}")


def test_scene_detail_has_words_text_tags_and_people(alice, news) -> None:
    scenes = alice.get(f"/videos/{news['id']}/scenes").json()
    garden = next(s for s in scenes if "garden" in s["transcript"].lower())
    detail = alice.get(f"/scenes/{garden['id']}").json()
    words = detail["words"]
    # a sentence's first or last word may lie up to DANGLE_S across the cut (it stays with its sentence)
    slack = DANGLE_S + 0.05
    assert words and all(
        garden["start_s"] - slack <= w["start_s"] <= w["end_s"] <= garden["end_s"] + slack for w in words
    )
    assert any("garden" in w["text"].lower() for w in words)
    assert detail["lines"] and detail["lines"][0]["start_s"] == round(words[0]["start_s"], 3)
    market = next(s for s in scenes if "FARMERS" in s["ocr_text"].upper())
    assert alice.get(f"/scenes/{market['id']}").json()["tags"]
    assert alice.get(f"/scenes/{garden['id']}/thumbnail").content[8:12] == b"WEBP"
    assert alice.get(f"/scenes/{news['id']}-999").status_code == 404
    assert alice.get("/scenes/garbage").status_code == 404


def test_search_returns_cli_hit_shape_with_play_links(alice, news) -> None:
    r = alice.get("/search", params={"q": "rooftop vegetable garden", "limit": 5})
    assert r.status_code == 200
    hits = r.json()["hits"]
    assert hits and "garden" in hits[0]["transcript"].lower()  # Whisper may write "roof top"
    assert set(hits[0]) == set(SearchHit.model_fields) | {"links"}
    top = hits[0]
    assert "<mark>" in top["snippet"] and top["channels"]["fulltext"]["rank"] == 1
    assert top["links"]["play"] == f"/app/watch/{news['id']}?t={top['start_s']}"
    assert alice.get(top["thumbnail"]).status_code == 200

    on_screen = alice.get("/search", params={"q": '"farmers market"'}).json()["hits"]
    assert on_screen and "FARMERS" in on_screen[0]["ocr_text"].upper()
    assert alice.get("/search", params={"q": "helmets", "video": news["id"], "sort": "date"}).json()["hits"]
    assert alice.get("/search", params={"q": "helmets", "from": "2999-01-01"}).json()["hits"] == []
    assert alice.get("/search", params={"q": "helmets", "to": "2999-01-01T00:00:00"}).json()["hits"]


def test_search_hits_carry_a_confidence_to_cut_at(alice, news) -> None:
    def hits(**params) -> list[dict]:
        r = alice.get("/search", params=params)
        assert r.status_code == 200, r.text
        return r.json()["hits"]

    everything = hits(q="rooftop vegetable garden", min_confidence="low", per_video=10)
    assert everything[0]["confidence"] == "high" and "garden" in everything[0]["transcript"].lower()
    assert {h["confidence"] for h in everything} <= {"high", "medium", "low"}
    high = hits(q="rooftop vegetable garden", min_confidence="high", per_video=10)
    assert high and all(h["confidence"] == "high" for h in high)
    default = hits(q="rooftop vegetable garden", per_video=10)
    assert [h["scene_id"] for h in default] == [h["scene_id"] for h in everything if h["confidence"] != "low"]
    unrelated = hits(q="goalkeeper saves a penalty in extra time", per_video=10)
    assert unrelated and all(h["confidence"] == "low" for h in unrelated)  # shown, but marked low
    assert hits(q="goalkeeper saves a penalty in extra time", min_confidence="medium") == []


def test_search_bad_requests(alice, news) -> None:
    for params, status in (
        ({}, 400),
        ({"q": "x", "limit": 0}, 422),
        ({"q": "x", "limit": 1000}, 422),
        ({"q": "x", "from": "last tuesday"}, 400),
        ({"q": "x", "sort": "random"}, 422),
        ({"q": "x", "min_confidence": "certain"}, 422),
        ({"q": "x", "person": "Nobody"}, 404),
        ({"q": "x", "video": "0123456789abcdef"}, 404),
    ):
        r = alice.get("/search", params=params)
        assert r.status_code == status, (params, r.text)
        assert r.json()["message"] and "Traceback" not in r.text


def test_stream_supports_range_requests(server, alice, news) -> None:
    from tests.e2e.conftest import news_video

    original = news_video().read_bytes()
    url = f"/videos/{news['id']}/stream"
    if server.backend == "server":
        # Object storage serves the file itself: the API only redirects to a short-lived URL.
        moved = alice.get(url)
        assert moved.status_code == 307 and "X-Amz-Signature" in moved.headers["location"]

    def play(**headers: str) -> httpx.Response:
        r = alice.get(url, headers=headers, follow_redirects=True)
        assert [h.status_code for h in r.history] == ([307] if server.backend == "server" else [])
        return r

    full = play()
    assert full.status_code == 200 and full.content == original
    assert full.headers["accept-ranges"] == "bytes" and full.headers["content-type"] == "video/mp4"
    part = play(Range="bytes=1000-1999")
    assert part.status_code == 206 and part.content == original[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(original)}"
    tail = play(Range="bytes=-500")
    assert tail.status_code == 206 and tail.content == original[-500:]
    assert play(Range=f"bytes={len(original) + 10}-").status_code == 416
    # HEAD (players and download managers ask it first): the same headers, no body, on both backends
    # (object storage signs a URL for one method: a GET URL answers HEAD with 403).
    head = alice.head(url, follow_redirects=True)
    assert head.status_code == 200 and head.content == b"", head.status_code
    assert int(head.headers["content-length"]) == len(original)


def test_sse_progress_then_delete_cleans_everything(server, alice) -> None:
    events: list[dict] = []
    stop = threading.Event()

    def listen() -> None:
        try:
            with alice.stream("GET", "/jobs/events", timeout=httpx.Timeout(60, read=None)) as stream:
                for line in stream.iter_lines():
                    if line.startswith("data: "):
                        events.append(json.loads(line[6:]))
                    if stop.is_set():
                        return
        except httpx.HTTPError:
            if not stop.is_set():  # the server closing the stream at the end of the session is expected
                raise

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    before = owner_index(server, alice.user_id)
    r = upload(alice, small_video())
    assert r.status_code == 201
    video_id = r.json()["videos"][0]["id"]
    done = wait_for(alice, video_id)
    assert done["state"] == "indexed", done["error"]
    mine = lambda: [e for e in events if e["video_id"] == video_id]  # noqa: E731
    eventually(lambda: any(e["state"] == "indexed" for e in mine()), what="the indexed event")
    states = [e["state"] for e in mine()]
    assert "processing" in states and states[-1] == "indexed"
    # Live progress: from the in-process worker (embedded) or as the remote worker publishes it on
    # Redis (server): the stages running now, and a fraction that moves within them.
    assert any(0 < e.get("progress", 0) < 1 for e in mine())
    assert any(e.get("running") for e in mine() if e["state"] == "processing"), mine()

    scenes = alice.get(f"/videos/{video_id}/scenes").json()
    blobs, prefix = server.ctx.heimdex.blobs, f"videos/{video_id}/"
    assert any(key.endswith(".webp") for key in blob_keys(blobs, prefix))
    assert owner_index(server, alice.user_id) != before
    # The worker acknowledges the job just after the video reads indexed: let it finish, so that
    # the deletion below is the plain one, not the one that waits for a running job.
    eventually(lambda: job_over(server, video_id), what="the job to end")

    assert alice.delete(f"/videos/{video_id}").status_code == 204
    for path in (
        f"/videos/{video_id}",
        f"/videos/{video_id}/stream",
        f"/videos/{video_id}/thumbnail",
        f"/scenes/{scenes[0]['id']}",
        f"/scenes/{scenes[0]['id']}/thumbnail",
    ):
        assert alice.get(path).status_code == 404, path
    assert alice.delete(f"/videos/{video_id}").status_code == 404
    assert blob_keys(blobs, prefix) == []
    store = server.ctx.heimdex.store
    with pytest.raises(NotFoundError):
        store.job_video(video_id)
    assert store.job_scenes(video_id) == [] and store.stage_records(video_id) == []
    assert owner_index(server, alice.user_id) == before  # scenes, their vectors, faces: all gone
    assert orphan_vectors(server) == 0
    eventually(lambda: any(e["state"] == "deleted" for e in mine()), what="the deleted event")
    stop.set()


def test_reprocess_indexes_again(server, alice) -> None:
    r = upload(alice, small_video(), "again.mp4")
    video_id = r.json()["videos"][0]["id"]
    first = wait_for(alice, video_id)
    assert first["state"] == "indexed", first["error"]
    asked = time.time()
    r = alice.post(f"/videos/{video_id}/reprocess")
    # The worker may already hold the job when the answer is written: queued or processing, but
    # never the old run's "indexed". What proves the new run is the ledger below.
    assert r.status_code == 202 and r.json()["id"] == video_id and r.json()["state"] != "indexed"
    again = wait_for(alice, video_id)
    assert again["state"] == "indexed" and again["scene_count"] == first["scene_count"]
    assert again["updated_at"] > first["updated_at"]
    stages = alice.get(f"/videos/{video_id}").json()["stages"]
    assert [s["stage"] for s in stages] == list(STAGES)
    ran_anew = [(s["stage"], s["state"], s["attempts"], s["started_at"] >= asked) for s in stages]
    assert ran_anew == [(stage, "done", 1, True) for stage in STAGES], "every stage ran again, once"
    # A worker elsewhere (server mode) is indexing the video: its run must not lose its files under
    # it. (Holding the claim of an indexed video, a worker is only acknowledging: no conflict.)
    store, remote = server.ctx.heimdex.store, "host-b:4242:remote"
    store.stage_started(video_id, "commit")  # it runs commit again, holding the stage's claim
    assert store.claim_stage(video_id, "commit", remote, lease_s=30)
    store.set_video_state(video_id, VideoState.PROCESSING)
    ledger = [(s.stage, s.state, s.attempts) for s in store.stage_records(video_id)]
    r = alice.post(f"/videos/{video_id}/reprocess")
    assert r.status_code == 409 and "being indexed" in r.json()["message"]
    assert [(s.stage, s.state, s.attempts) for s in store.stage_records(video_id)] == ledger, "nothing reset"
    assert store.stage_done(video_id, "commit", 0.1, claimed_by=remote)
    store.set_video_state(video_id, VideoState.INDEXED)
    assert alice.post(f"/videos/{video_id}/reprocess").status_code == 202, "acknowledging is no conflict"
    store.release_stage_claim(video_id, "commit", remote)
    assert wait_for(alice, video_id)["state"] == "indexed"
    alice.delete(f"/videos/{video_id}")


def test_broken_file_fails_with_a_reason(alice, tmp_path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    r = upload(alice, broken)
    assert r.status_code == 201
    failed = wait_for(alice, r.json()["videos"][0]["id"])
    assert failed["state"] == "failed" and failed["error"]
    # The reason names the file the user uploaded, not the copy the worker decoded.
    assert failed["error"].startswith("upload_validate: broken.mp4 is an incomplete or damaged"), failed
    stage = next(s for s in alice.get(f"/videos/{failed['id']}").json()["stages"] if s["state"] == "failed")
    assert stage["stage"] == "upload_validate" and stage["error"]


def test_upload_bad_requests(alice, tmp_path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    r = upload(alice, text)
    assert r.status_code == 415 and "not a video" in r.json()["message"]
    r = alice.post("/videos", files={"other": ("x.mp4", b"123")}, data={"note": "hi"})
    assert r.status_code == 201, r.text  # a file part under another name is still a file
    assert [v["filename"] for v in r.json()["videos"]] == ["x.mp4"]
    alice.delete(f"/videos/{r.json()['videos'][0]['id']}")  # cleaning up: test_videos covers delete
    r = alice.post("/videos", files={"note": (None, "no file")})  # multipart, but no part is a file
    assert r.status_code == 400 and "no file in the upload" in r.json()["message"]
    r = alice.post("/videos", data={"note": "no file"})  # a plain form: not multipart at all
    assert r.status_code == 415 and "multipart/form-data" in r.json()["message"]
    r = alice.post("/videos", content=b"raw bytes", headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 415
    assert alice.post(f"/videos/{'f' * 16}/reprocess").status_code == 404
    r = alice.post("/videos/presign")  # no body
    assert r.status_code == 422 and r.json()["message"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_upload_size_limit_is_enforced_while_streaming(backend, tmp_path) -> None:
    with live_server(
        backend, tmp_path / "home", redis_db=TEST_REDIS_DB, upload_max_bytes=100_000, user_uploads_per_hour=2
    ) as small:
        client = small.user("limits@example.com")
        big = tmp_path / "big.mp4"
        big.write_bytes(b"\x01" * 300_000)
        # Declared length past the limit: refused before reading.
        r = upload(client, big)
        assert r.status_code == 413 and "upload limit" in r.json()["message"]

        # No declared length (chunked): refused as the bytes arrive.
        def chunks():
            yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.mp4"\r\n\r\n'
            for _ in range(30):
                yield b"\x02" * 10_000
            yield b"\r\n--b--\r\n"

        r = client.post(
            "/videos", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=b"}
        )
        assert r.status_code == 413
        assert not list((small.settings.home / "uploads").glob(".upload-*"))  # partial files removed
        assert client.get("/videos").json()["total"] == 0
        # Per-user uploads per hour: the two attempts above count.
        r = upload(client, small_video())
        assert r.status_code == 429 and r.json()["message"].startswith("too many uploads")


@pytest.mark.parametrize("backend", BACKENDS)
def test_worker_resumes_jobs_left_by_a_previous_run(backend, tmp_path) -> None:
    if backend == "embedded":
        with LiveServer(tmp_path, worker_enabled=False) as first:  # stops before indexing anything
            video_id, token = leave_a_job(first)
        with LiveServer(tmp_path) as second:
            client = second.client(token)  # the same secret key (kept under home) still signs valid tokens
            assert wait_for(client, video_id)["state"] == "indexed"
        return
    with server_settings(TEST_REDIS_DB) as fields:
        with LiveServer(tmp_path, **fields) as first:  # no worker is running
            video_id, token = leave_a_job(first)
        # Redis lost the job (restarted without persistence, say): only the store still knows of it,
        # and the API puts what the store says is unfinished back in the queue when it starts.
        with closing(redis.Redis.from_url(fields["queue_url"])) as client:
            client.flushdb()
        with LiveServer(tmp_path, **fields) as second, ThreadWorker(second.settings):
            client = second.client(token)
            assert wait_for(client, video_id)["state"] == "indexed"


def leave_a_job(server: LiveServer) -> tuple[str, str]:
    """Upload a video to a server whose worker does not run, and leave it as a killed job would:
    processing. Returns the video id and the uploader's access token."""
    client = server.user("restart@example.com")
    token = client.headers["authorization"].split()[1]
    video_id = upload(client, small_video()).json()["videos"][0]["id"]
    server.ctx.heimdex.store.set_video_state(video_id, VideoState.PROCESSING)  # as if killed mid-job
    assert client.get("/jobs").json()["jobs"][0]["video_id"] == video_id
    client.close()
    return video_id, token
