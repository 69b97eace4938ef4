"""Clips of real videos over the API, opened with PyAV: where they start and end, as documented
(a copied clip starts on the last keyframe at or before the asked time, an exact one within a frame)."""

from __future__ import annotations

import json
from pathlib import Path

import av
import pytest

from tests.assets import keyframes
from tests.e2e.conftest import news_video


def opened(data: bytes, tmp_path: Path) -> dict:
    """What PyAV reads in a clip: its streams, its frames' times, its length."""
    path = tmp_path / "clip.mp4"
    path.write_bytes(data)
    with av.open(str(path)) as container:
        types = sorted(s.type for s in container.streams)
        rate = float(container.streams.video[0].average_rate)
        times = [frame.time for frame in container.decode(video=0)]
        container.seek(0)
        audio = [frame for frame in container.decode(audio=0)]
    return {
        "types": types,
        "first": times[0],
        "length": times[-1] + 1 / rate,
        "frame": 1 / rate,
        "audio_s": sum(f.samples for f in audio) / audio[0].sample_rate if audio else 0.0,
    }


def clip_of(client, scene_id: str, **params):
    r = client.get(f"/scenes/{scene_id}/clip.mp4", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "video/mp4"
    return r, float(r.headers["x-heimdex-clip-start"]), float(r.headers["x-heimdex-clip-end"])


@pytest.fixture(scope="module")
def scene(alice, news) -> dict:
    scenes = alice.get(f"/videos/{news['id']}/scenes").json()
    later = [s for s in scenes if s["start_s"] > 1.0]
    assert later, scenes
    return later[len(later) // 2]


def test_a_copied_scene_clip_starts_on_the_keyframe_before_it(alice, scene, tmp_path) -> None:
    r, start, end = clip_of(alice, scene["id"])
    before = [k for k in keyframes(news_video()) if k <= scene["start_s"] + 1e-3]
    assert start == pytest.approx(before[-1], abs=0.002), "the last keyframe at or before the scene"
    assert scene["end_s"] - 0.05 <= end <= scene["end_s"] + 0.5, "the end, or frames decoded before it"
    got = opened(r.content, tmp_path)
    assert got["types"] == ["audio", "video"] and got["first"] == pytest.approx(0.0, abs=1e-6)
    assert got["length"] == pytest.approx(end - start, abs=2 * got["frame"])
    assert got["audio_s"] == pytest.approx(end - start, abs=0.1)
    name = r.headers["content-disposition"]
    assert name.startswith('attachment; filename="evening news ') and name.endswith(".mp4")


def test_an_exact_clip_starts_within_a_frame(alice, scene, tmp_path) -> None:
    r, start, end = clip_of(alice, scene["id"], exact=True)
    got = opened(r.content, tmp_path)
    assert abs(start - scene["start_s"]) <= got["frame"] and end == pytest.approx(scene["end_s"], abs=0.05)
    assert got["length"] == pytest.approx(scene["end_s"] - scene["start_s"], abs=2 * got["frame"])
    # AAC adds its priming and pads to whole frames of 1024 samples (about 23 ms each).
    assert got["audio_s"] == pytest.approx(scene["end_s"] - scene["start_s"], abs=0.1)


def test_a_clip_between_two_times_and_bad_times(alice, bob, news, tmp_path) -> None:
    r = alice.post(f"/videos/{news['id']}/clips", json={"start_s": 1.0, "end_s": 2.5, "exact": True})
    assert r.status_code == 200, r.text
    got = opened(r.content, tmp_path)
    assert got["length"] == pytest.approx(1.5, abs=2 * got["frame"])
    assert float(r.headers["x-heimdex-clip-start"]) == pytest.approx(1.0, abs=got["frame"])
    past_the_end = alice.post(f"/videos/{news['id']}/clips", json={"start_s": 2.0, "end_s": 10_000})
    assert past_the_end.status_code == 200
    assert float(past_the_end.headers["x-heimdex-clip-end"]) <= news["duration_s"] + 0.05
    for body in ({"start_s": 3, "end_s": 2}, {"start_s": news["duration_s"] + 5, "end_s": 10_000}):
        r = alice.post(f"/videos/{news['id']}/clips", json=body)
        assert r.status_code == 422 and "start before end" in r.json()["message"], r.text
    assert alice.post(f"/videos/{news['id']}/clips", json={"start_s": -1, "end_s": 2}).status_code == 422
    assert bob.post(f"/videos/{news['id']}/clips", json={"start_s": 0, "end_s": 1}).status_code == 404
    scene_id = alice.get(f"/videos/{news['id']}/scenes").json()[0]["id"]
    assert bob.get(f"/scenes/{scene_id}/clip.mp4").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"start_s": float("nan"), "end_s": 2.0},
        {"start_s": float("inf"), "end_s": float("inf")},
        {"start_s": 1.0, "end_s": float("nan")},
        {"start_s": "soon", "end_s": 2.0},
        {"start_s": 1e308, "end_s": 1e308},
        {"end_s": 2.0},
        [],
    ],
)
def test_a_clip_of_nonsense_times_is_a_4xx(alice, news, body) -> None:
    # httpx writes NaN and Infinity as JSON does not (Python's json does): the server reads them.
    r = alice.post(
        f"/videos/{news['id']}/clips",
        content=json.dumps(body),
        headers={"content-type": "application/json"},
    )
    assert r.status_code in (400, 422), (body, r.status_code, r.text)
    assert r.json()["message"], r.text


def test_a_clip_longer_than_the_limit_is_refused(alice, news, server, monkeypatch) -> None:
    heimdex = server.ctx.heimdex
    monkeypatch.setattr(heimdex, "settings", heimdex.settings.model_copy(update={"clip_max_s": 1.0}))
    r = alice.post(f"/videos/{news['id']}/clips", json={"start_s": 0.0, "end_s": 2.0})
    assert r.status_code == 422 and "at most 1 s" in r.json()["message"], r.text
    scene = next(s for s in alice.get(f"/videos/{news['id']}/scenes").json() if s["end_s"] - s["start_s"] > 1)
    r = alice.get(f"/scenes/{scene['id']}/clip.mp4")
    assert r.status_code == 422 and "at most 1 s" in r.json()["message"], r.text
    assert alice.get(f"/scenes/{news['id']}-9999/clip.mp4").status_code == 404, "an unknown scene"


def test_a_clip_of_a_scene_by_its_id(alice, bob, news, scene, tmp_path) -> None:
    """POST /videos/{id}/clips {scene_id} cuts the scene as GET /scenes/{id}/clip.mp4 does."""
    r = alice.post(f"/videos/{news['id']}/clips", json={"scene_id": scene["id"], "exact": True})
    assert r.status_code == 200, r.text
    got = opened(r.content, tmp_path)
    assert abs(float(r.headers["x-heimdex-clip-start"]) - scene["start_s"]) <= got["frame"]
    assert got["length"] == pytest.approx(scene["end_s"] - scene["start_s"], abs=2 * got["frame"])
    for body, status, says in (
        ({"scene_id": scene["id"], "start_s": 1.0}, 422, "not both"),
        ({"start_s": 1.0}, 422, "start_s and end_s, or a scene_id"),
        ({}, 422, "start_s and end_s, or a scene_id"),
        ({"scene_id": ""}, 422, "at least 1 character"),
        ({"scene_id": f"{news['id']}-9999"}, 404, "no scene"),
        ({"scene_id": "elsewhere-0000"}, 404, "no scene"),
    ):
        r = alice.post(f"/videos/{news['id']}/clips", json=body)
        assert r.status_code == status and says in r.json()["message"], (body, r.text)
    assert bob.post(f"/videos/{news['id']}/clips", json={"scene_id": scene["id"]}).status_code == 404
