"""asr_fast in pieces on both real brokers (Redis: its own flushed database; RabbitMQ: this session's
vhost): one message a piece, any worker, joined once when every piece is done, with a piece that fails
once, messages delivered twice, and a worker killed (SIGKILL) mid-piece. The stages are stand-ins
(tests/queue/harness.py: a stand-in plan and pieces, the real join); tests/e2e/test_fanout_speech.py
transcribes real speech in pieces."""

from __future__ import annotations

import itertools
import time

import pytest

from heimdex.domain import StageState, VideoState, piece_key
from heimdex.pipeline.graph import STAGES
from tests.queue import harness

pytestmark = pytest.mark.timeout(300)

PIECES = 4


def piece_attempts(store, video_id: str) -> dict[str, int]:
    return {r.stage: r.attempts for r in store.piece_records(video_id, "asr_fast")}


def pieces_of(*workers: harness.Stages) -> list[tuple[str, str]]:
    """(who, piece) of every piece run, in the order they started."""
    calls = sorted((c for w in workers for c in w.calls if "#" in c[1]), key=lambda c: c[2])
    return [(who, stage) for who, stage, _ in calls]


def assert_joined_once(store, video: str, reader: harness.Stages) -> None:
    """Twelve stages each run once, every piece done once, and the transcript has every piece's
    word once, in time order."""
    assert harness.state(store, video) == VideoState.INDEXED
    assert harness.attempts(store, video) == dict.fromkeys(STAGES, 1)
    records = store.piece_records(video, "asr_fast")
    assert {r.stage for r in records} == {piece_key("asr_fast", k) for k in range(PIECES)}
    assert all(r.state == StageState.DONE and r.claimed_by is None for r in records)
    asr = next(r for r in store.stage_records(video) if r.stage == "asr_fast")
    assert (asr.pieces, asr.pieces_done) == (PIECES, PIECES), "the stage list counts its pieces"
    words = [w for seg in reader.transcript.segments for w in seg.words]
    assert [w.text for w in words] == [f"piece{k}" for k in range(PIECES)]
    assert all(a.end_s <= b.start_s for a, b in itertools.pairwise(words))
    assert store.job_video(video).claimed_by is None


def worker(home, stages: harness.Stages) -> harness.Running:
    """A worker on stand-in stages, in a thread of the test process."""
    return harness.Running(harness.make_worker(harness.settings(home), stages))


def wait_indexed(store, video: str) -> None:
    harness.wait_for(lambda: harness.state(store, video) == VideoState.INDEXED, 60, "the video indexed")


def fanned(who: str) -> harness.Stages:
    stages = harness.Stages(who)
    stages.pieces = PIECES
    stages.sleep = {piece_key("asr_fast", k): 0.6 for k in range(PIECES)}
    return stages


def test_pieces_run_on_two_workers_and_are_joined_once(home, store, producer, broker):
    a, b = fanned("a"), fanned("b")
    video = harness.new_video(store)
    with (
        worker(home, a),
        worker(home, b),
    ):
        producer.enqueue(video)
        wait_indexed(store, video)
        # When both workers finish a last piece at once, the one that finds the join claimed sends
        # its message again for after the lease (broker.py, _claimed); it comes back and is a no-op.
        harness.wait_for(lambda: producer.depth() == 0, harness.LEASE_S + 15, "the queue to drain")
    ran = pieces_of(a, b)
    print(f"{broker}: pieces ran as {ran}")
    assert sorted(stage for _, stage in ran) == [piece_key("asr_fast", k) for k in range(PIECES)]
    assert {who for who, _ in ran} == {"a", "b"}, "one worker ran every piece"
    assert a.ran("asr_fast") + b.ran("asr_fast") == 0, "a fanned-out stage does not also run whole"
    assert_joined_once(store, video, a if a.transcript else b)
    assert piece_attempts(store, video) == {piece_key("asr_fast", k): 1 for k in range(PIECES)}


def test_a_piece_that_fails_once_is_retried_and_the_join_completes(home, store, producer):
    a = fanned("a")
    a.fail = {piece_key("asr_fast", 2): 1}
    video = harness.new_video(store)
    with worker(home, a):
        producer.enqueue(video)
        wait_indexed(store, video)
    assert_joined_once(store, video, a)
    assert piece_attempts(store, video) == {
        **{piece_key("asr_fast", k): 1 for k in range(PIECES)},
        piece_key("asr_fast", 2): 2,
    }


def test_piece_messages_delivered_twice_are_no_ops(home, store, producer):
    a = fanned("a")
    video = harness.new_video(store)
    with worker(home, a):
        producer.enqueue(video)
        harness.wait_for(lambda: a.ran(piece_key("asr_fast", 0)), 30, "the first piece to start")
        for k in range(PIECES):  # while the pieces are queued or running
            producer.send(video, "asr_fast", piece=k)
        producer.send(video, "asr_fast")  # the plan's message again: sends only what is missing
        wait_indexed(store, video)
        for k in range(PIECES):  # after the join: no-ops
            producer.send(video, "asr_fast", piece=k)
        time.sleep(harness.LEASE_S + 1.5)  # the busy ones came back and found their pieces done
    assert [a.ran(piece_key("asr_fast", k)) for k in range(PIECES)] == [1] * PIECES
    assert [a.ran(s) for s in STAGES if s != "asr_fast"] == [1] * (len(STAGES) - 1)
    assert_joined_once(store, video, a)
    assert producer.depth() == 0


@pytest.mark.slow
def test_a_worker_killed_mid_piece_hands_the_piece_over_and_the_join_completes(home, store, producer, broker):
    slow = {piece_key("asr_fast", k): 120.0 for k in range(PIECES)}
    victim = harness.start_process(home, "victim", slow, pieces=PIECES)
    survivor = fanned("survivor")
    video = harness.new_video(store)
    try:
        producer.enqueue(video)

        def victim_in_a_piece() -> str | None:
            return next(
                (
                    r.stage
                    for r in store.piece_records(video, "asr_fast")
                    if r.state == StageState.RUNNING and r.claimed_by == "victim-worker"
                ),
                None,
            )

        harness.wait_for(victim_in_a_piece, 60, "the victim running a piece")
        killed_piece = victim_in_a_piece()
        with worker(home, survivor):
            victim.kill()
            killed = time.time()
            harness.wait_for(lambda: survivor.ran(killed_piece), 60, f"{killed_piece} to come back")
            wait_indexed(store, video)
    finally:
        if victim.poll() is None:
            victim.kill()
        victim.wait()
    redelivered = next(t for _, s, t in survivor.calls if s == killed_piece) - killed
    print(f"{broker}: {killed_piece} restarted on the survivor {redelivered:.1f}s after SIGKILL")
    assert_joined_once(store, video, survivor)
    counts = piece_attempts(store, video)
    assert counts.pop(killed_piece) == 2, "killed once, run once more from its beginning"
    assert set(counts.values()) == {1}
    assert producer.depth() == 0
