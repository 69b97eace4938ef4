"""The Dramatiq queue on both real brokers (Redis: a flushed database; RabbitMQ: this session's own
vhost, tests/services.py): stages routed to their queues, duplicate delivery, retries, input errors,
dead letters and reprocess, a worker killed (SIGKILL) or frozen (SIGSTOP) mid-stage. The stages are
stand-ins (tests/queue/harness.py); tests/e2e/test_scale_out.py runs the real ones."""

from __future__ import annotations

import os
import signal
import time

import pytest

from heimdex.domain import StageState, VideoState
from heimdex.pipeline.graph import GRAPH, STAGES
from heimdex.queue.base import DEAD_LETTER_PREFIX
from tests.queue.harness import (
    LEASE_S,
    Running,
    Stages,
    attempts,
    make_worker,
    new_video,
    settings,
    start_process,
    state,
    wait_for,
)

pytestmark = pytest.mark.timeout(300)


def test_every_stage_runs_once_on_the_queue_it_needs(home, store, producer):
    media, heavy = Stages("media"), Stages("heavy")
    video = new_video(store)
    with Running(make_worker(settings(home), media, ["media"])):
        producer.enqueue(video)
        media_stages = [s.name for s in GRAPH.stages if s.queue == "media"]
        wait_for(lambda: all(media.ran(s) for s in media_stages), 30, "the media stages")
        time.sleep(0.5)  # nobody takes the other queues
        assert {s for _, s, _ in media.calls} == set(media_stages)
        assert state(store, video) == VideoState.PROCESSING
        waiting = producer.counts()
        assert waiting["asr"][0] == 1 and waiting["vision"][0] == 2, waiting  # asr_fast; embed, tags
        with Running(make_worker(settings(home), heavy, ["asr", "vision", "index"])):
            wait_for(lambda: state(store, video) == VideoState.INDEXED, 30, "the video indexed")
    assert {s for _, s, _ in heavy.calls} == set(STAGES) - set(media_stages)
    assert attempts(store, video) == dict.fromkeys(STAGES, 1)
    assert all(r.claimed_by is None for r in store.stage_records(video))
    assert store.job_video(video).claimed_by is None
    assert producer.depth() == 0


@pytest.mark.parametrize("broker", ["redis"])  # RabbitMQ pushes within its QoS (queue/idle_fetch.py)
def test_a_busy_worker_leaves_other_queues_messages_to_an_idle_one(home, store, producer, broker):
    """While one worker runs scene detection, the speech stage that audio extraction made ready goes
    to the other, idle worker at once instead of waiting in the busy one's hands."""
    a, b = Stages("a"), Stages("b")
    for stages in (a, b):
        stages.sleep = {"scene_detect": 3.0}
    videos = [new_video(store) for _ in range(3)]
    with Running(make_worker(settings(home), a)), Running(make_worker(settings(home), b)):
        for video in videos:  # one at a time: each video's two media stages go to both workers
            producer.enqueue(video)
            wait_for(lambda v=video: state(store, v) == VideoState.INDEXED, 30, "the video indexed")
            calls = {stage: (who, when) for who, stage, when in a.calls + b.calls}  # each ran once
            detector, detect_started = calls["scene_detect"]
            speaker, speech_started = calls["asr_fast"]
            assert speaker != detector and speech_started < detect_started + 2.0, (calls, video)
            a.calls.clear()
            b.calls.clear()
    assert all(attempts(store, v) == dict.fromkeys(STAGES, 1) for v in videos)


@pytest.mark.parametrize("broker", ["redis"])
def test_a_free_worker_takes_decoding_before_speech(home, store, producer, broker):
    """Speech is asked for last (queue/idle_fetch.py FIRST_ASKED): with audio extracted and scene
    detection and speech both ready, the worker detects scenes and samples frames, which the vision
    stages wait for, before it transcribes."""
    stages = Stages("a")
    videos = [new_video(store) for _ in range(3)]
    with Running(make_worker(settings(home), stages)):
        for video in videos:
            producer.enqueue(video)
            wait_for(lambda v=video: state(store, v) == VideoState.INDEXED, 30, "the video indexed")
            order = [stage for _, stage, _ in stages.calls]
            assert order.index("vision_sample_frames") < order.index("asr_fast"), order
            stages.calls.clear()


def test_a_message_delivered_twice_or_for_a_done_stage_is_a_no_op(home, store, producer):
    stages = Stages("a")
    stages.sleep = {"asr_fast": 1.0}
    video = new_video(store)
    with Running(make_worker(settings(home, worker_queues=""), stages)):
        for _ in range(3):
            producer.enqueue(video)
        wait_for(lambda: stages.ran("asr_fast"), 30, "asr_fast to start")
        producer.send(video, "asr_fast")  # while it runs: busy, looked at again later
        producer.send(video, "commit")  # not ready yet
        wait_for(lambda: state(store, video) == VideoState.INDEXED, 30, "the video indexed")
        for stage in ("upload_validate", "align_merge", "commit"):  # done: no-ops
            producer.send(video, stage)
        time.sleep(LEASE_S + 1.0)  # past the lease: the busy message came back and found asr_fast done
    assert [stages.ran(s) for s in STAGES] == [1] * len(STAGES)
    assert attempts(store, video) == dict.fromkeys(STAGES, 1)
    assert state(store, video) == VideoState.INDEXED


def test_transient_failures_retry_with_backoff_and_input_errors_fail_at_once(home, store, producer):
    stages = Stages("a")
    stages.fail = {"embed_text": 1}
    flaky, bad = new_video(store), new_video(store)
    with Running(make_worker(settings(home), stages)):
        producer.enqueue(flaky)
        wait_for(lambda: state(store, flaky) == VideoState.INDEXED, 30, "the flaky video indexed")
        assert attempts(store, flaky)["embed_text"] == 2, "failed once, retried once"
        stages.bad = {"scene_detect"}
        producer.enqueue(bad)
        wait_for(lambda: state(store, bad) == VideoState.FAILED, 30, "the bad video failed")
        time.sleep(0.5)
    video = store.job_video(bad)
    assert "not a video" in video.error and not video.error.startswith(DEAD_LETTER_PREFIX)
    assert attempts(store, bad)["scene_detect"] == 1, "an input error is not retried"
    assert stages.ran("scene_detect") == 2 and "align_merge" not in attempts(store, bad)
    assert sum(dead for _, _, dead in producer.counts().values()) == 0


def test_exhausted_retries_make_a_dead_letter_that_reprocess_revives(home, store, producer):
    stages = Stages("a")
    stages.fail = {"vision_affect_tags": -1}
    video = new_video(store)
    with Running(make_worker(settings(home), stages)):
        producer.enqueue(video)
        wait_for(lambda: state(store, video) == VideoState.FAILED, 40, "a dead letter")
        failed = store.job_video(video)
        assert failed.error.startswith(f"{DEAD_LETTER_PREFIX} after 3 attempts:"), failed.error
        assert "vision_affect_tags broke" in failed.error
        assert stages.ran("vision_affect_tags") == 3, "the first attempt and two retries"
        assert producer.counts()["vision"][2] == 1, "Dramatiq's dead-letter queue holds the message"
        assert "align_merge" not in attempts(store, video)
        stages.fail = {}
        store.requeue_video("owner", video)  # what reprocess does (Heimdex.reprocess also clears blobs)
        producer.enqueue(video)
        wait_for(lambda: state(store, video) == VideoState.INDEXED, 30, "the revived video indexed")
    assert attempts(store, video) == dict.fromkeys(STAGES, 1), "reprocess starts a fresh ledger"


def running_on(store, video_id: str, stage: str, who: str) -> bool:
    return any(
        r.stage == stage and r.state == StageState.RUNNING and r.claimed_by == f"{who}-worker"
        for r in store.stage_records(video_id)
    )


@pytest.mark.slow
def test_a_worker_killed_mid_stage_hands_its_stage_to_another_within_the_lease(home, store, producer, broker):
    victim = start_process(home, "victim", {"asr_fast": 120.0})
    survivor = Stages("survivor")
    video = new_video(store)
    try:
        producer.enqueue(video)
        wait_for(lambda: running_on(store, video, "asr_fast", "victim"), 60, "the victim running asr_fast")
        # Only now the survivor starts: the victim took every stage so far.
        with Running(make_worker(settings(home), survivor)):
            victim.kill()
            killed = time.time()
            wait_for(lambda: survivor.ran("asr_fast"), 60, "asr_fast to come back")
            wait_for(lambda: state(store, video) == VideoState.INDEXED, 30, "the video indexed")
    finally:
        if victim.poll() is None:
            victim.kill()
        victim.wait()
    redelivered = next(t for _, s, t in survivor.calls if s == "asr_fast") - killed
    print(f"{broker}: asr_fast restarted on the survivor {redelivered:.1f}s after SIGKILL (lease {LEASE_S}s)")
    assert redelivered < 60
    counts = attempts(store, video)
    assert counts["asr_fast"] == 2, "killed once, run once more from its beginning"
    assert {s: n for s, n in counts.items() if s != "asr_fast"} == dict.fromkeys(
        set(STAGES) - {"asr_fast"}, 1
    )
    assert producer.depth() == 0


@pytest.mark.slow
def test_a_worker_frozen_past_its_lease_loses_the_stage_and_records_nothing(home, store, producer, broker):
    staller = start_process(home, "staller", {"embed_text": 2 * LEASE_S + 2})
    other = Stages("other")
    video = new_video(store)
    try:
        producer.enqueue(video)
        wait_for(
            lambda: running_on(store, video, "embed_text", "staller"), 60, "the staller running embed_text"
        )
        with Running(make_worker(settings(home), other)):
            os.kill(staller.pid, signal.SIGSTOP)
            stopped = time.time()
            try:
                wait_for(lambda: state(store, video) == VideoState.INDEXED, 90, "the other worker to finish")
            finally:
                os.kill(staller.pid, signal.SIGCONT)
            taken = next(t for _, s, t in other.calls if s == "embed_text") - stopped
            print(f"{broker}: embed_text taken over {taken:.1f}s after SIGSTOP (lease {LEASE_S}s)")
            log = home / "staller.log"
            # Woken up, it sleeps out its stage (a stand-in's sleep counts the time it was frozen).
            wait_for(lambda: '"job.abandoned"' in log.read_text(), 2 * LEASE_S + 30, "the staller to give up")
    finally:
        staller.send_signal(signal.SIGTERM)
        staller.wait(30)
    assert staller.returncode == 0, "SIGTERM: an idle worker stops cleanly"
    assert attempts(store, video) == {**dict.fromkeys(STAGES, 1), "embed_text": 2}
    assert all(r.state == StageState.DONE for r in store.stage_records(video))


@pytest.mark.slow
def test_sigterm_mid_stage_finishes_the_stage_and_loses_nothing(home, store, producer, broker):
    leaving = start_process(home, "leaving", {"scene_detect": 2.0})
    stayer = Stages("stayer")
    video = new_video(store)
    try:
        producer.enqueue(video)
        wait_for(lambda: running_on(store, video, "scene_detect", "leaving"), 60, "scene_detect to start")
        leaving.send_signal(signal.SIGTERM)
        leaving.wait(60)
    finally:
        if leaving.poll() is None:
            leaving.kill()
    assert leaving.returncode == 0
    records = {r.stage: r for r in store.stage_records(video)}
    assert records["scene_detect"].state == StageState.DONE, "the stage in hand was finished"
    with Running(make_worker(settings(home), stayer)):
        wait_for(lambda: state(store, video) == VideoState.INDEXED, 60, "the rest of the video")
    assert attempts(store, video) == dict.fromkeys(STAGES, 1), "nothing ran twice, nothing was lost"
    assert stayer.ran("scene_detect") == 0
