"""Long speech fanned out, for real: `heimdex worker` processes on each Dramatiq broker (Redis: its
own flushed database; RabbitMQ: the session's vhost), PostgreSQL, a shared blob folder, Whisper
tiny.en. A 70-second narrated video with HEIMDEX_ASR_PIECE_S=20 is cut into three pieces; two workers
take only the asr queue, so both transcribe pieces, and a third runs the rest. The joined transcript
has each spoken keyword once, in time order. Then the video is reprocessed and the worker holding a
piece is killed (SIGKILL): the other one transcribes that piece again and the join completes, with no
stage run twice and no scene doubled; a piece's message delivered again after the join is a no-op.

The narration is piper's neural voice (tests/assets.py): Whisper hears it as well as a person, so a
keyword missing or doubled means the cut lost or repeated it, not that the voice was bad (espeak-ng
would synthesise faster, but tiny.en mishears its robotic voice). Synthesis is cached between runs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from heimdex.domain import StageState, VideoState, piece_key
from heimdex.pipeline.graph import STAGES
from heimdex.queue.broker import StageQueue
from heimdex.service import Heimdex
from heimdex.settings import Settings
from tests import assets, services
from tests.e2e.fleet import PICTURES, Workers, dead_letters, flush, wait_for
from tests.e2e.test_scale_out import LEASE_S

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

# Redis databases are shared by the session: 11 and 12 are the API tests' (their server lives until the
# session ends and would take these messages), 13 the queue tests', 14 test_scale_out's, 15 the benchmark's.
REDIS_DB = 10
PIECE_S = 20  # 70 s of speech: three pieces (none shorter than ml/asr.py's 20 s)

SENTENCES = assets.STORY  # five scenes of four sentences, one keyword each
KEYWORDS = [k for k, _ in SENTENCES]


def long_video() -> Path:
    scenes = [
        {"image": PICTURES[i](), "say": " ".join(s for _, s in SENTENCES[4 * i : 4 * i + 4]), "seconds": 3}
        for i in range(5)
    ]
    return assets.narrated_video("fanout_speech", scenes)


@pytest.fixture(params=["redis", "rabbitmq"])
def server(request, tmp_path_factory, monkeypatch) -> Iterator[Settings]:
    home = tmp_path_factory.mktemp("server")
    settings = Settings(
        home=home,
        database_url="sqlite:///unused",
        storage_url=f"file://{home / 'shared-blobs'}",
        queue_url=services.broker_url(request.param, REDIS_DB),
        asr_model="tiny.en",
        queue_lease_s=LEASE_S,
        asr_piece_s=PIECE_S,
    )
    monkeypatch.setenv("HEIMDEX_ASR_PIECE_S", str(PIECE_S))  # the workers' environment (env_of)
    flush(settings)
    with services.fresh_postgres() as url:
        yield settings.model_copy(update={"database_url": url})
    flush(settings)


def heard(app: Heimdex, video_id: str) -> list[tuple[str, float]]:
    """(keyword, start) of every keyword in the committed scenes' words, in order."""
    words = [w for s in app.store.job_scenes(video_id) for w in s.words]
    starts = [w.start_s for w in words]
    assert starts == sorted(starts), "words out of time order"
    return [(t, w.start_s) for w in words if (t := re.sub(r"[^a-z]", "", w.text.lower())) in KEYWORDS]


def check_transcript(app: Heimdex, video_id: str) -> None:
    found = [k for k, _ in heard(app, video_id)]
    assert found == KEYWORDS, f"keywords heard (in order): {found}"  # none lost or doubled at a cut


def pieces_by_worker(workers: Workers, video_id: str) -> dict[str, list[int]]:
    return {
        name: sorted(e["piece"] for e in workers.events(name, "piece.finished") if e["video_id"] == video_id)
        for name in workers.procs
    }


def holder_of_a_piece(app: Heimdex, video_id: str) -> tuple[str, int] | None:
    """(worker, piece) of a piece a worker holds and transcribes, if one does."""
    for piece in range(3):
        for r in app.store.piece_records(video_id, "asr_fast"):
            if r.stage == piece_key("asr_fast", piece) and r.state == StageState.RUNNING and r.claimed_by:
                return r.claimed_by, piece
    return None


def commits(workers: Workers) -> int:
    return len(workers.events("rest", "job.done"))


def test_long_speech_fans_out_to_two_workers_and_survives_a_kill(server, tmp_path) -> None:
    video_path = long_video()  # made before the clock starts (cached between runs)
    app = Heimdex(server)
    queue = StageQueue(server, app.store)
    workers = Workers(server, tmp_path)
    broker = server.queue_url.split(":")[0]
    try:
        for name, queues in (("a", "asr"), ("b", "asr"), ("rest", "media,vision,index")):
            workers.start(name, queues=queues)
        wait_for(lambda: all(workers.ready(n) for n in workers.procs), 120, "three workers", workers)

        # ------------------------------------------------ phase 1: three pieces on two workers
        started = time.monotonic()
        video = app.add_file(video_path).video.id
        queue.enqueue(video)
        wait_for(lambda: workers.done([video]), 300, "the video indexed", workers)
        print(f"{broker}: indexed in {time.monotonic() - started:.1f}s")
        assert app.video(video).state == VideoState.INDEXED, app.video(video).error
        ran = pieces_by_worker(workers, video)
        print(f"{broker}: pieces by worker {ran}")
        assert sorted(ran["a"] + ran["b"]) == [0, 1, 2] and not ran["rest"], ran
        assert ran["a"] and ran["b"], "one worker transcribed every piece"
        joined = [e for n in workers.procs for e in workers.events(n, "stage.joined")]
        assert len(joined) == 1 and joined[0]["pieces"] == 3, joined
        records = {r.stage: r for r in app.stages(video)}
        assert set(records) == set(STAGES), "stage lists show the twelve stages, not the pieces"
        assert {s: r.attempts for s, r in records.items()} == dict.fromkeys(STAGES, 1)
        assert (records["asr_fast"].pieces, records["asr_fast"].pieces_done) == (3, 3)
        check_transcript(app, video)
        scenes = len(app.store.job_scenes(video))
        assert queue.depth() == 0 and dead_letters(queue) == 0

        # ------------------------------------------------ phase 2: kill the worker holding a piece
        app.reprocess(video)
        queue.enqueue(video)
        wait_for(lambda: holder_of_a_piece(app, video), 120, "a piece to start", workers)
        holder, piece = holder_of_a_piece(app, video)
        key = piece_key("asr_fast", piece)
        victim = workers.pid_of(holder)
        survivor = "b" if victim == "a" else "a"
        workers.procs[victim].kill()
        killed_at = time.monotonic()
        print(f"{broker}: killed worker {victim} during {key}")
        wait_for(lambda: commits(workers) == 2, 300, "the video indexed again", workers)
        print(f"{broker}: indexed again {time.monotonic() - killed_at:.1f}s after the kill")
        pieces = {r.stage: r.attempts for r in app.store.piece_records(video, "asr_fast")}
        assert pieces.pop(key) == 2, "killed once, then transcribed once more"
        assert set(pieces.values()) == {1}, pieces
        records = {r.stage: r for r in app.stages(video)}
        assert {s: r.attempts for s, r in records.items()} == dict.fromkeys(STAGES, 1)
        assert all(r.state == StageState.DONE for r in records.values())
        check_transcript(app, video)
        assert len(app.store.job_scenes(video)) == scenes, "a scene doubled"

        # ------------------------------------------------ phase 3: a piece's message again
        before = len(workers.events(survivor, "piece.started"))
        queue.send(video, "asr_fast", piece=piece)
        wait_for(lambda: queue.depth() == 0, 30, "the message taken", workers)
        time.sleep(1.0)
        assert len(workers.events(survivor, "piece.started")) == before, "a done piece ran again"
        assert app.store.piece_records(video, "asr_fast") and dead_letters(queue) == 0
    finally:
        workers.stop_all()
        app.close()
        queue.stop()
