"""Server mode scaled out, with real servers, on each Dramatiq broker: PostgreSQL (tests/services.py),
Redis (database 14, flushed) or RabbitMQ (the session's own vhost), and a blob folder shared by every
process (file://, standing in for S3, which test_s3_pipeline.py covers: SeaweedFS would only add
start-up time here).

Two `heimdex worker` processes index six videos queued at once: every video ends indexed, no stage
ran twice for a video, no scene is duplicated, and both workers ran stages. Then one worker is killed
(SIGKILL) in the middle of a stage and the other one runs that stage again from its beginning once
the lease runs out, and finishes the video. Last, a worker is frozen (SIGSTOP) mid-stage for longer
than its lease: another worker takes the stage over and indexes the video; woken up (SIGCONT), the
frozen one finishes the stage it was in, sees that its claim is gone and records nothing.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from heimdex.domain import StageState, VideoState
from heimdex.pipeline.graph import STAGES
from heimdex.queue.broker import StageQueue
from heimdex.service import Heimdex
from heimdex.settings import Settings
from tests import services
from tests.e2e.fleet import (
    Workers,
    check_ran_again,
    check_scenes,
    dead_letters,
    flush,
    running,
    small_video,
    wait_for,
)

__all__ = ["small_video"]  # other tests and benchmarks import it from here

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

REDIS_DB = 14
LEASE_S = 4.0


@pytest.fixture(params=["redis", "rabbitmq"])
def server(request, tmp_path_factory) -> Iterator[Settings]:
    queue_url = services.broker_url(request.param, REDIS_DB)
    home = tmp_path_factory.mktemp("server")
    settings = Settings(
        home=home,
        database_url="sqlite:///unused",
        storage_url=f"file://{home / 'shared-blobs'}",
        queue_url=queue_url,
        asr_model="tiny.en",
        queue_lease_s=LEASE_S,
    )
    flush(settings)
    with services.fresh_postgres() as url:
        yield settings.model_copy(update={"database_url": url})
    flush(settings)


def test_two_workers_share_the_work_and_survive_a_kill(server, tmp_path) -> None:
    videos = [small_video(i) for i in range(8)]  # made before the clock starts (cached between runs)
    app = Heimdex(server)  # the producer: adds and enqueues, loads no model
    queue = StageQueue(server, app.store)
    workers = Workers(server, tmp_path)
    try:
        workers.start("a")
        workers.start("b")
        started = time.monotonic()
        wait_for(lambda: workers.ready("a") and workers.ready("b"), 120, "two workers ready", workers)
        print(f"workers ready in {time.monotonic() - started:.1f}s")

        # ------------------------------------------------ phase 1: six videos at once
        started = time.monotonic()
        ids = []
        for path in videos[:6]:
            added = app.add_file(path)
            assert added.is_new
            ids.append(added.video.id)
            queue.enqueue(added.video.id)
        queue.enqueue(ids[0])  # enqueueing twice queues once
        # A video reads "indexed" as soon as its commit stage lands; the worker logs job.done a
        # moment later, once the work files are dropped. Wait for the log, not just the state.
        wait_for(lambda: workers.done(ids), 240, "six videos indexed", workers)
        print(f"six videos indexed in {time.monotonic() - started:.1f}s")
        for video_id in ids:
            video = app.video(video_id)
            assert video.state == VideoState.INDEXED, video.error
            records = {r.stage: r for r in app.stages(video_id)}
            assert set(records) == set(STAGES)
            attempts = {s: r.attempts for s, r in records.items()}
            assert attempts == dict.fromkeys(STAGES, 1), f"a stage ran twice: {attempts}"
            check_scenes(app, video_id)
        ran = {name: workers.events(name, "stage.finished") for name in workers.procs}
        assert ran["a"] and ran["b"], "one worker ran every stage"
        assert len(ran["a"]) + len(ran["b"]) == len(ids) * len(STAGES), "a stage finished twice"
        done_by = {name: {e["video_id"] for e in workers.events(name, "job.done")} for name in workers.procs}
        assert done_by["a"] | done_by["b"] == set(ids) and not done_by["a"] & done_by["b"]
        assert queue.depth() == 0 and dead_letters(queue) == 0
        assert app.search("harbour").hits[0].video_id == ids[0], "the workers' index is searchable"

        # ------------------------------------------------ phase 2: kill a worker mid-stage
        victim_video = app.add_file(videos[6]).video.id
        queue.enqueue(victim_video)

        what = "a stage of the seventh video to start"
        holder, stage_killed = wait_for(lambda: running(app, victim_video), 60, what, workers)
        victim = workers.pid_of(holder)
        survivor = "b" if victim == "a" else "a"
        before = {r.stage: r for r in app.stages(victim_video)}
        workers.procs[victim].kill()
        killed_at = time.monotonic()
        print(f"killed worker {victim} during {stage_killed}")

        def restarted() -> bool:
            return any(
                e["video_id"] == victim_video and e["stage"] == stage_killed
                for e in workers.events(survivor, "stage.started")
            )

        def survivor_finished() -> bool:  # job.done is logged just before the claim is released
            return workers.done([victim_video], by=survivor) and app.video(victim_video).claimed_by is None

        wait_for(restarted, 60, f"{stage_killed} to come back to the survivor", workers)
        broker = server.queue_url.split(":")[0]
        print(f"{broker}: {stage_killed} restarted {time.monotonic() - killed_at:.1f}s after SIGKILL")
        wait_for(survivor_finished, 120, "the survivor", workers)
        print(f"the survivor finished {time.monotonic() - killed_at:.1f}s after the kill")
        assert app.video(victim_video).state == VideoState.INDEXED
        records = {r.stage: r for r in app.stages(victim_video)}
        assert set(records) == set(STAGES)
        check_ran_again(before, records, holder)
        check_scenes(app, victim_video)
        assert app.video(victim_video).claimed_by is None
        assert queue.depth() == 0

        # ------------------------------------------------ phase 3: a worker stalls past its lease
        workers.start("c")
        wait_for(lambda: workers.ready("c"), 120, "a third worker ready", workers)
        stalled_video = app.add_file(videos[7]).video.id
        queue.enqueue(stalled_video)
        what = "a stage of the eighth video to start"
        staller = workers.pid_of(wait_for(lambda: running(app, stalled_video), 60, what, workers)[0])
        other = next(n for n in (survivor, "c") if n != staller)
        os.kill(workers.procs[staller].pid, signal.SIGSTOP)  # frozen: no heartbeat, no claim renewal
        try:

            def taken_over() -> bool:
                return workers.done([stalled_video], by=other) and app.video(stalled_video).claimed_by is None

            wait_for(taken_over, 120, "the other worker to take the stalled job over", workers)
        finally:
            os.kill(workers.procs[staller].pid, signal.SIGCONT)
        # It wakes up inside a stage, finishes it, and then finds its claim gone: it must stop there
        # rather than race through the remaining stages, and tidy what that last stage wrote.
        gave_up = lambda: bool(workers.events(staller, "job.abandoned"))  # noqa: E731
        wait_for(gave_up, 60, "the stalled worker to give up", workers)
        assert stalled_video not in {e["video_id"] for e in workers.events(staller, "job.done")}
        assert app.video(stalled_video).state == VideoState.INDEXED
        check_scenes(app, stalled_video)
        work = Path(server.storage_url.removeprefix("file://")) / "videos" / stalled_video / "work"
        assert not work.exists() or not any(work.iterdir()), "the abandoned stage's artifacts stayed"
        records = app.stages(stalled_video)
        assert all(r.state == StageState.DONE for r in records) and {r.stage for r in records} == set(STAGES)
        assert queue.depth() == 0 and dead_letters(queue) == 0
    finally:
        workers.stop_all()
        app.close()
        queue.stop()
    assert workers.procs[survivor].returncode == 0, "SIGTERM: the idle worker stops cleanly"
