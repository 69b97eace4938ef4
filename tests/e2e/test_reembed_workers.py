"""Server mode re-embeds by itself after a CLIP model change: real `heimdex worker` processes of the
vision queue, started with the new HEIMDEX_CLIP_MODEL, on Redis and on RabbitMQ, with PostgreSQL and
a blob folder shared by every process (file://, as test_scale_out.py). Tiny generated models
(tests/tiny_clip.py, both layouts; plumbing only).

Alice's colour cards are indexed with one model. Then the API server and two workers are configured
with the other one: the API alone re-embeds nothing (it only sends stages), and GET /search/clip says
her searches keep the earlier vectors. The two workers start; exactly one takes the store's lease
and re-embeds, while GET /search/clip, read all along, shows the earlier model serving until the new
set is complete, `reembedding` while the lease is held, and counts that only grow (Bob's show none
of her frames). Once complete,
the new model serves (a colour word finds its card by the new vectors) and the earlier vectors are
gone. The second broker's run switches back to the first model, whose vectors were deleted: it is
re-embedded again from the originals.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from heimdex.ml.base import IMAGE_VECTOR_MODEL
from heimdex.ml.registry import Models
from heimdex.settings import Settings
from tests import services, tiny_clip
from tests.api.live import LiveServer, upload, wait_for
from tests.e2e.fleet import Workers, env_of, flush
from tests.e2e.test_clip import cards_video

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

REDIS_DB = 9  # 10-14 belong to other tests (tests/api/backends.py, tests/queue, tests/e2e)
LEASE_S = 4.0


@dataclass
class Deployment:
    settings: Settings  # PostgreSQL, shared blobs; no queue and no CLIP model set
    models: dict[str, Path]  # model name -> folder
    token: str  # alice's
    alice: str
    bob: str  # a token of another user, who has nothing
    frames: int
    serving: list[str]  # the model configured last, then the one before


def _live(settings: Settings, model: Path, **more) -> LiveServer:
    configured = settings.model_copy(update={"clip_model": str(model), **more})
    fields = configured.model_dump(exclude={"home"}, exclude_unset=True)
    return LiveServer(settings.home, models=Models(configured), **fields)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Iterator[Deployment]:
    folder = tmp_path_factory.mktemp("reembed-workers")
    a = tiny_clip.write_flat(folder / "model-a", "model-a")
    b = tiny_clip.write_immich(folder / "model-b", axes=(3, 4, 5), dim=12, bias=0.6)
    names = {Models(Settings(home=folder, clip_model=str(m))).clip.name: m for m in (a, b)}
    home = folder / "home"
    with services.fresh_postgres() as url:
        settings = Settings(
            home=home,
            database_url=url,
            storage_url=f"file://{home / 'shared-blobs'}",
            asr_model="tiny.en",
            queue_lease_s=LEASE_S,
        )
        # Indexed by the in-process worker of `heimdex serve` with model A, on the server's database.
        with (
            _live(settings, a) as live,
            live.user("alice@example.com") as alice,
            live.user("bob@example.com") as bob,
        ):
            r = upload(alice, cards_video(folder))
            assert r.status_code == 201, r.text
            assert wait_for(alice, r.json()["videos"][0]["id"])["state"] == "indexed"
            status = alice.get("/search/clip").json()
            assert status["complete"] and status["serving"] == "model-a", status
            token, alice_id = alice.headers["Authorization"], alice.user_id
            bob_token = bob.headers["Authorization"]
        yield Deployment(settings, names, token, alice_id, bob_token, status["frames"], ["model-a"])


def _clip_score(client: httpx.Client, query: str) -> float:
    r = client.get("/search", params={"q": query, "min_confidence": "low", "per_video": 100})
    assert r.status_code == 200, r.text
    return max(h["channels"]["clip"]["score"] for h in r.json()["hits"] if "clip" in h["channels"])


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_workers_reembed_after_a_model_change_one_at_a_time(deployment, broker, tmp_path) -> None:
    old = deployment.serving[0]
    new = next(name for name in deployment.models if name != old)
    queue_url = services.broker_url(broker, REDIS_DB)
    settings = deployment.settings.model_copy(update={"queue_url": queue_url})
    flush(settings)
    workers = Workers(settings, tmp_path)
    env = {**env_of(settings), "HEIMDEX_CLIP_MODEL": str(deployment.models[new])}
    with _live(settings, deployment.models[new], queue_url=queue_url) as live:
        alice = httpx.Client(base_url=live.url, headers={"Authorization": deployment.token}, timeout=60)
        before = alice.get("/search/clip").json()
        assert before == {
            "model": new,
            "serving": old,
            "frames": deployment.frames,
            "embedded": 0,
            "complete": False,
            "reembedding": False,
        }, "the API process re-embeds nothing in server mode"
        by_old = _clip_score(alice, "green")
        bob = httpx.Client(base_url=live.url, headers={"Authorization": deployment.bob}, timeout=60)
        assert bob.get("/search/clip").json()["frames"] == 0, "alice's frames are hers"
        try:
            workers.start("a", env=env, queues="vision")
            workers.start("b", env=env, queues="vision")
            seen = _watch(alice, workers)
        finally:
            workers.stop_all()
        assert any(s["reembedding"] for s in seen), "the lease is held while the work goes on"
        embedded = [s["embedded"] for s in seen]
        assert embedded == sorted(embedded), embedded
        assert all(s["serving"] == old for s in seen if not s["complete"]), seen
        after = alice.get("/search/clip").json()
        assert (after["serving"], after["embedded"], after["complete"]) == (new, deployment.frames, True)
        assert _clip_score(alice, "green") != pytest.approx(by_old, abs=1e-3)
        counts = live.ctx.heimdex.store.frame_vector_counts(deployment.alice)
        assert counts == {IMAGE_VECTOR_MODEL: deployment.frames, new: deployment.frames}, counts

    started = {n: workers.events(n, "reembed.started") for n in ("a", "b")}
    assert sorted(len(e) for e in started.values()) == [0, 1], f"one worker re-embeds: {started}"
    finished = [e for n in ("a", "b") for e in workers.events(n, "reembed.finished")]
    assert [e["frames"] for e in finished] == [deployment.frames], finished
    deployment.serving.insert(0, new)


def _watch(alice: httpx.Client, workers: Workers, timeout: float = 240) -> list[dict]:
    """GET /search/clip every tenth of a second until the new set is complete and nobody holds the
    lease any more (the earlier vectors are retired before it is given up); what it said meanwhile."""
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = alice.get("/search/clip").json()
        seen.append(status)
        if status["complete"] and not status["reembedding"] and any(s["reembedding"] for s in seen):
            return seen
        for name, proc in workers.procs.items():
            assert proc.poll() is None, f"worker {name} exited:\n{workers.tail(name)}"
        time.sleep(0.1)
    tails = "\n".join(f"--- {n}:\n{workers.tail(n)}" for n in workers.procs)
    raise AssertionError(f"no re-embedding seen through in {timeout} s: {seen[-3:]}\n{tails}")
