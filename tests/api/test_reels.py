"""Highlight reels over the API: a background job with progress, then an MP4 opened with PyAV."""

from __future__ import annotations

import time
from pathlib import Path

import av
import numpy as np
import pytest


def finished(client, reel: dict, timeout: float = 120) -> dict:
    seen = []
    deadline = time.monotonic() + timeout
    while reel["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, f"reel still {reel['state']} after {timeout} s"
        time.sleep(0.2)
        reel = client.get(reel["links"]["self"]).json()
        seen.append(reel["progress"])
    assert seen == sorted(seen), "progress only moves forward"
    return reel


def test_a_reel_of_two_scenes_fades_through_black(alice, news, tmp_path: Path) -> None:
    scenes = alice.get(f"/videos/{news['id']}/scenes").json()
    picked = [scenes[-1], scenes[0]]  # any order: the reel keeps it
    r = alice.post("/reels", json={"scene_ids": [s["id"] for s in picked]})
    assert r.status_code == 202, r.text
    reel = finished(alice, r.json())
    assert reel["state"] == "done" and reel["progress"] == 1.0, reel
    expected = sum(s["end_s"] - s["start_s"] for s in picked)
    file = alice.get(reel["links"]["file"], follow_redirects=True)  # object storage: a presigned URL
    assert file.status_code == 200 and file.headers["content-type"] == "video/mp4"
    path = tmp_path / "reel.mp4"
    path.write_bytes(file.content)
    with av.open(str(path)) as container:
        rate = float(container.streams.video[0].average_rate)
        frames = [f.to_ndarray(format="gray") for f in container.decode(video=0)]
        container.seek(0)
        audio = list(container.decode(audio=0))
        assert audio[0].layout.name == "stereo" and audio[0].sample_rate == 48000
    assert len(frames) / rate == pytest.approx(expected, abs=3 / rate)
    assert reel["length_s"] == pytest.approx(expected, abs=3 / rate)
    boundary = round((picked[0]["end_s"] - picked[0]["start_s"]) * rate)
    brightness = [float(np.mean(f)) for f in frames]
    near = brightness[max(0, boundary - 3) : boundary + 3]  # a part's frames are whole frames in it
    assert brightness[0] < 12 and min(near) < 12, "each scene fades from and to black"
    assert brightness[boundary // 2] > 40, "the middle of a scene is the scene"
    assert sum(f.samples for f in audio) / 48000 == pytest.approx(expected, abs=0.1)


def test_reels_are_their_owners_and_their_requests_are_checked(alice, bob, news) -> None:
    scene = alice.get(f"/videos/{news['id']}/scenes").json()[0]
    assert bob.post("/reels", json={"scene_ids": [scene["id"]]}).status_code == 404
    assert alice.post("/reels", json={"scene_ids": []}).status_code == 422
    assert alice.post("/reels", json={"scene_ids": [scene["id"]] * 51}).status_code == 422
    assert alice.post("/reels", json={"scene_ids": [f"{news['id']}-9999"]}).status_code == 404
    reel = finished(alice, alice.post("/reels", json={"scene_ids": [scene["id"]], "fade": False}).json())
    assert reel["state"] == "done"
    for path in (reel["links"]["self"], reel["links"]["file"]):
        assert bob.get(path).status_code == 404
    assert alice.get("/reels/nosuchreel").status_code == 404
    assert alice.get("/reels/../etc").status_code == 404


def test_a_reel_longer_than_the_limit_or_of_nonsense_is_refused(alice, news, server, monkeypatch) -> None:
    scenes = alice.get(f"/videos/{news['id']}/scenes").json()
    heimdex = server.ctx.heimdex
    monkeypatch.setattr(heimdex, "settings", heimdex.settings.model_copy(update={"reel_max_s": 2.0}))
    r = alice.post("/reels", json={"scene_ids": [s["id"] for s in scenes]})
    assert r.status_code == 422 and "the limit is 2 s" in r.json()["message"], r.text
    for body in ({"scene_ids": "not a list"}, {"scene_ids": [None]}, {"scene_ids": [""]}, {}):
        r = alice.post("/reels", json=body)
        assert r.status_code in (404, 422) and r.json()["message"], (body, r.text)
