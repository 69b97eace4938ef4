"""The Redis queue against a real Redis server (127.0.0.1:6379, a dedicated database flushed per test):
idempotent enqueue, lease expiry and re-queue, backoff, dead letters, claims in the store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
import redis

from heimdex.domain import VideoState
from heimdex.pipeline.runner import StageFailed
from heimdex.queue.base import DEAD_LETTER_PREFIX
from heimdex.queue.redis import RedisJobQueue, RedisWorker
from heimdex.store.sqlite import SqliteStore
from tests import services

REDIS_URL = services.redis_url(13)  # the machine's Redis, or one started for the tests


@pytest.fixture
def queue() -> Iterator[RedisJobQueue]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"no Redis server at {REDIS_URL} ({exc})")
    client.flushdb()
    q = RedisJobQueue(REDIS_URL)
    yield q
    client.flushdb()
    q.stop()


@pytest.fixture
def store(tmp_path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "h.db")
    yield s
    s.close()


class FakeRunner:
    """Stands in for PipelineRunner: ends the video in `outcome` ("indexed", "transient", "input")."""

    def __init__(self, store, outcome: str, runs: list[str]) -> None:
        self.store, self.outcome, self.runs = store, outcome, runs
        self.failure: StageFailed | None = None

    def run(self, video_id: str):
        self.runs.append(video_id)
        if self.outcome == "indexed":
            self.store.set_video_state(video_id, VideoState.INDEXED)
        else:
            self.failure = StageFailed("asr_fast", "boom", retryable=self.outcome == "transient")
            self.store.set_video_state(video_id, VideoState.FAILED, str(self.failure))
        return self.store.job_video(video_id)


def make_worker(store, queue, outcome: str, runs: list[str], **kw) -> RedisWorker:
    app = SimpleNamespace(store=store, runner=lambda **_: FakeRunner(store, outcome, runs))
    return RedisWorker(app, queue, worker_id=kw.pop("worker_id", "w1"), **kw)


def test_enqueue_is_idempotent_while_queued_or_running(queue):
    queue.enqueue("v1")
    queue.enqueue("v1")
    assert queue.depth() == 1
    assert queue.take("w1", 0.1) == "v1"
    queue.enqueue("v1")  # running: not queued a second time
    assert queue.depth() == 0 and queue.take("w2", 0.1) is None
    queue.ack("w1", "v1")
    queue.enqueue("v1")  # finished: may be queued again (reprocess)
    assert queue.depth() == 1


def test_jobs_come_out_in_order(queue):
    for v in ("a", "b", "c"):
        queue.enqueue(v)
    assert [queue.take("w1", 0.1) for _ in range(3)] == ["a", "b", "c"]


def test_an_expired_lease_sends_the_job_to_another_worker(queue):
    queue.enqueue("v1")
    queue.heartbeat("w1", 0.3)
    assert queue.take("w1", 0.1) == "v1"
    assert queue.reap() == [], "w1 is alive"
    assert queue.running() == {"w1": ["v1"]}
    time.sleep(0.5)  # w1 was killed: no heartbeat
    assert queue.reap() == ["v1"]
    assert queue.live_workers() == []
    assert queue.take("w2", 0.1) == "v1"
    assert queue.reap() == [], "reaped once only"


def test_release_puts_the_job_first_in_line(queue):
    queue.enqueue("v1")
    queue.enqueue("v2")
    assert queue.take("w1", 0.1) == "v1"
    queue.release("w1", "v1")
    assert queue.take("w2", 0.1) == "v1"


def test_a_worker_indexes_and_acknowledges(queue, store):
    v = store.add_video("alice", "a.mp4", "k", 1, None)
    queue.enqueue(v.id)
    runs: list[str] = []
    worker = make_worker(store, queue, "indexed", runs)
    worker.handle(queue.take("w1", 0.1))
    assert runs == [v.id] and store.job_video(v.id).state == VideoState.INDEXED
    assert store.job_video(v.id).claimed_by is None, "the claim is released"
    assert queue.depth() == 0 and queue.running() == {}
    queue.enqueue(v.id)
    assert queue.depth() == 1, "no longer pending"


def test_transient_failures_back_off_then_go_to_the_dead_letters(queue, store):
    v = store.add_video("alice", "a.mp4", "k", 1, None)
    queue.enqueue(v.id)
    runs: list[str] = []
    worker = make_worker(store, queue, "transient", runs, retries=2, backoff_s=0.3)
    worker.handle(queue.take("w1", 0.1))
    got = store.job_video(v.id)
    assert got.state == VideoState.QUEUED and got.error.startswith("retry 1/2 in 0s: asr_fast: boom")
    assert queue.take("w1", 0.1) is None, "backoff: not ready yet"
    queue.enqueue(v.id)
    assert queue.depth() == 1, "a job waiting for its retry is not queued twice"
    time.sleep(0.35)
    started = time.monotonic()
    worker.handle(queue.take("w1", 0.1))  # second failure: the delay doubles
    assert store.job_video(v.id).error.startswith("retry 2/2")
    assert queue.take("w1", 0.3) is None
    job = queue.take("w1", 1.0)
    assert job == v.id and time.monotonic() - started >= 0.55
    worker.handle(job)  # third failure: retries exhausted
    got = store.job_video(v.id)
    assert got.state == VideoState.FAILED and got.error.startswith(DEAD_LETTER_PREFIX + " after 3 attempts")
    assert runs == [v.id] * 3
    assert queue.dead_letters()[v.id]["attempts"] == 3
    assert queue.depth() == 0 and queue.running() == {}
    queue.enqueue(v.id)  # reprocess: out of the dead letters, retries counted afresh
    assert queue.dead_letters() == {} and queue.depth() == 1


def test_input_errors_fail_at_once(queue, store):
    v = store.add_video("alice", "a.mp4", "k", 1, None)
    queue.enqueue(v.id)
    runs: list[str] = []
    worker = make_worker(store, queue, "input", runs, retries=3, backoff_s=0)
    worker.handle(queue.take("w1", 0.1))
    got = store.job_video(v.id)
    assert got.state == VideoState.FAILED and got.error == "asr_fast: boom"
    assert queue.depth() == 0 and queue.dead_letters() == {} and runs == [v.id]


def test_a_video_claimed_by_another_worker_is_not_run_twice(queue, store):
    v = store.add_video("alice", "a.mp4", "k", 1, None)
    assert store.claim_video(v.id, "w-other", 30)
    queue.enqueue(v.id)
    runs: list[str] = []
    worker = make_worker(store, queue, "indexed", runs, lease_s=0.4)
    worker.handle(queue.take("w1", 0.1))
    assert runs == [], "the holder is running it"
    assert queue.depth() == 1 and queue.take("w1", 0.05) is None, "looked at again later"
    store.release_claim(v.id, "w-other")
    time.sleep(0.25)
    worker.handle(queue.take("w1", 0.1))
    assert runs == [v.id] and store.job_video(v.id).state == VideoState.INDEXED


def test_a_deleted_video_is_dropped(queue, store):
    queue.enqueue("gone")
    runs: list[str] = []
    worker = make_worker(store, queue, "indexed", runs)
    worker.handle(queue.take("w1", 0.1))  # claim fails: no such row
    # dropped for good: waiting for a claim that can never succeed would loop forever
    assert queue.depth() == 0 and runs == [] and worker.jobs_done == 0
    queue.enqueue("gone")
    assert queue.depth() == 1, "no longer pending: a new enqueue queues it again"


def test_a_reprocess_asked_for_as_the_job_ends_is_not_lost(queue, store):
    v = store.add_video("alice", "a.mp4", "k", 1, None)
    queue.enqueue(v.id)
    runs: list[str] = []

    class ReprocessedAtTheEnd(FakeRunner):
        def run(self, video_id: str):
            video = super().run(video_id)
            if len(runs) == 1:  # the API's reprocess, after the video reads indexed, before the ack
                store.set_video_state(video_id, VideoState.QUEUED)
                queue.enqueue(video_id)  # a no-op: the id is still pending
            return video

    app = SimpleNamespace(store=store, runner=lambda **_: ReprocessedAtTheEnd(store, "indexed", runs))
    worker = RedisWorker(app, queue, worker_id="w1")
    worker.handle(queue.take("w1", 0.1))
    assert queue.depth() == 1, "queued again once the job was acknowledged"
    worker.handle(queue.take("w1", 0.1))
    assert runs == [v.id, v.id] and queue.depth() == 0
    assert store.job_video(v.id).state == VideoState.INDEXED


def test_the_api_only_enqueues_and_loads_no_model(queue, tmp_path):
    """With queue_url=redis:// the API runs no worker: an upload lands in Redis, and no model loads."""
    from fastapi.testclient import TestClient

    from heimdex.api import create_app
    from heimdex.settings import Settings
    from tests import assets

    settings = Settings(home=tmp_path, queue_url=REDIS_URL)
    app = create_app(settings)
    ctx = app.state.ctx
    assert isinstance(ctx.queue, RedisJobQueue)
    with TestClient(app) as client:
        r = client.post("/auth/register", json={"email": "a@example.com", "password": "a-long-password"})
        assert r.status_code == 201, r.text
        client.cookies.clear()  # authenticate by bearer token, as API clients do
        client.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        path = assets.skimage_photo("coffee")  # any file: the API does not look inside before the worker
        with open(path, "rb") as f:
            r = client.post("/videos", files={"file": ("clip.mp4", f, "video/mp4")})
        assert r.status_code == 201, r.text
        video_id = r.json()["videos"][0]["id"]
        assert queue.take("w1", 0.5) == video_id
        r = client.get(f"/videos/{video_id}")
        assert r.json()["state"] == "queued" and r.json()["dead_letter"] is False
    assert ctx.heimdex.models.loaded() == [], "the API loaded a model"
    assert ctx.worker.current is None


def test_progress_and_stage_timings_go_through_redis(queue):
    """What a remote worker publishes is what the API's progress board and /metrics read."""
    from heimdex.domain import StageState
    from heimdex.pipeline.events import StageEvent
    from heimdex.queue.redis import RedisProgress, _JobReporter

    board = RedisProgress(queue)
    reporter = _JobReporter(queue, "v1", ttl_s=30)
    assert board.get("v1") is None
    reporter.on_event(StageEvent("v1", "asr_fast", StageState.RUNNING))
    reporter.on_event(StageEvent("v1", "scene_detect", StageState.DONE, duration_s=2.0))
    live = board.get("v1")
    assert live is not None and live.state == "processing"
    assert live.running == {"asr_fast": 0.0} and live.done == {"scene_detect": 2.0}
    assert 0 < live.fraction < 1
    reporter.on_event(StageEvent("v1", "asr_fast", StageState.RUNNING, fraction=0.5))  # throttled...
    assert board.get("v1").running == {"asr_fast": 0.0}
    time.sleep(0.55)
    reporter.on_event(StageEvent("v1", "asr_fast", StageState.RUNNING, fraction=0.6))  # ...not for long
    assert board.get("v1").running == {"asr_fast": 0.6}
    assert 0 < queue.redis.pttl(queue.key("progress:v1")) <= 30_000
    reporter.on_event(StageEvent("v1", "asr_fast", StageState.DONE, duration_s=40.0))
    reporter.finished("indexed")
    assert board.get("v1") is None
    series = queue.stage_series()
    assert set(series) == {"scene_detect", "asr_fast"}
    counts, (total, count) = series["asr_fast"]
    assert (total, count) == (40.0, 1.0) and counts == [0, 0, 0, 0, 0, 0, 0, 1, 1, 1]  # > 30 s, <= 60 s
    assert queue.job_counts() == {"indexed": 1}
