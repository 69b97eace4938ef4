"""GET /search/clip and `heimdex serve` re-embedding in the background after HEIMDEX_CLIP_MODEL
changes, over HTTP with tiny generated models (tests/tiny_clip.py; plumbing only)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from heimdex.ml.base import IMAGE_VECTOR_MODEL
from heimdex.ml.registry import Models
from heimdex.settings import Settings
from tests import tiny_clip
from tests.api.live import LiveServer, eventually, upload, wait_for
from tests.e2e.test_clip import cards_video


def _server(home: Path, model: Path, *, worker: bool = True) -> LiveServer:
    settings = {"clip_model": str(model), "worker_enabled": worker}
    return LiveServer(home, models=Models(Settings(home=home, **settings)), **settings)


def _clip_hit(client: httpx.Client, query: str) -> dict:
    r = client.get("/search", params={"q": query, "min_confidence": "low", "per_video": 100})
    assert r.status_code == 200, r.text
    found = [h["channels"]["clip"] for h in r.json()["hits"] if "clip" in h["channels"]]
    assert found, r.json()["hits"]
    return min(found, key=lambda c: c["rank"])


def test_a_model_change_is_reembedded_by_serve_and_reported(tmp_path) -> None:
    a = tiny_clip.write_flat(tmp_path / "a", "model-a")
    b = tiny_clip.write_immich(tmp_path / "b", axes=(3, 4, 5), dim=12, bias=0.6)
    home = tmp_path / "home"
    with (
        _server(home, a) as live,
        live.user("alice@example.com") as alice,
        live.user("bob@example.com") as bob,
    ):
        token, alice_id = alice.headers["Authorization"], alice.user_id
        r = upload(alice, cards_video(tmp_path))
        assert r.status_code == 201, r.text
        assert wait_for(alice, r.json()["videos"][0]["id"])["state"] == "indexed"
        status = alice.get("/search/clip").json()
        frames = status["frames"]
        assert frames > 0 and status == {
            "model": "model-a",
            "serving": "model-a",
            "frames": frames,
            "embedded": frames,
            "complete": True,
            "reembedding": False,
        }
        by_a = _clip_hit(alice, "green")
        assert bob.get("/search/clip").json()["frames"] == 0

    # Model B configured, the worker off: nothing re-embeds, and searches keep to A's vectors.
    with _server(home, b, worker=False) as live, live.client() as anonymous:
        alice = httpx.Client(base_url=live.url, headers={"Authorization": token}, timeout=60)
        status = alice.get("/search/clip").json()
        assert status["model"] == "clip-onnx/b" and status["serving"] == "model-a"
        assert (status["embedded"], status["complete"], status["reembedding"]) == (0, False, False)
        assert _clip_hit(alice, "green") == by_a
        assert anonymous.get("/search/clip").status_code == 401

    # With the worker, serve re-embeds in the background; then B serves and A's vectors are gone.
    with _server(home, b) as live:
        alice = httpx.Client(base_url=live.url, headers={"Authorization": token}, timeout=60)
        eventually(lambda: alice.get("/search/clip").json()["complete"], what="re-embedding")
        eventually(lambda: not alice.get("/search/clip").json()["reembedding"], what="the job to end")
        status = alice.get("/search/clip").json()
        assert status["serving"] == "clip-onnx/b" and status["embedded"] == frames
        assert _clip_hit(alice, "green")["score"] != pytest.approx(by_a["score"], abs=1e-3)
        counts = live.ctx.heimdex.store.frame_vector_counts(alice_id)
        assert set(counts) == {"clip-onnx/b", IMAGE_VECTOR_MODEL}
