"""A StageWorker on stand-in stage functions, for the queue tests on real brokers.

The twelve real stages need models and media (tests/e2e runs them, with real workers); here each
stage is a function that records who ran it and can sleep or fail as a test says, while everything
else is real: the broker, Dramatiq's worker, retries and dead letters, the SQLite store with its
ledger and stage claims, the runner's stage bookkeeping. Run as a script, it is a worker process
(`python -m tests.queue.harness CONFIG.json`) that a test can kill.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

from heimdex.blobs.local import LocalBlobStore
from heimdex.domain import Segment, SpeechPlan, Transcript, VideoState, Word, piece_key
from heimdex.errors import HeimdexError
from heimdex.ml.registry import Models
from heimdex.pipeline.artifacts import SPEECH_PIECES, SPEECH_PLAN, TRANSCRIPT
from heimdex.pipeline.graph import GRAPH, STAGES, FanOut
from heimdex.pipeline.runner import PipelineRunner
from heimdex.pipeline.stages.audio import SAMPLE_RATE
from heimdex.queue.broker import StageWorker
from heimdex.settings import Settings
from heimdex.store.sqlite import SqliteStore


def settings_for(home: Path, queue_url: str, **fields) -> Settings:
    return Settings(
        home=home,
        database_url=f"sqlite:///{home / 'heimdex.db'}",
        storage_url=f"file://{home / 'blobs'}",
        queue_url=queue_url,
        **fields,
    )


class Stages:
    """What the stand-in stages do: `sleep[stage]` seconds, `fail[stage]` transient failures (then
    success; -1: always), `bad` stages fail as a bad input would. `calls` lists (who, stage, when).
    asr_fast fans out into `pieces` pieces (1: it runs whole); a piece is named `asr_fast#k` in
    `sleep`, `fail` and `calls`, and writes a transcript with the word `piece<k>`; the join is the real
    one (speech_join), and `transcript` is what align_merge read."""

    def __init__(self, who: str) -> None:
        self.who = who
        self.pieces = 1
        self.transcript: Transcript | None = None
        self.sleep: dict[str, float] = {}
        self.fail: dict[str, int] = {}
        self.bad: set[str] = set()
        self.calls: list[tuple[str, str, float]] = []
        self._lock = threading.Lock()

    def run(self, stage: str, ctx) -> None:
        with self._lock:
            self.calls.append((self.who, stage, time.time()))
            left = self.fail.get(stage, 0)
            if left > 0:
                self.fail[stage] = left - 1
        if stage in self.bad:
            raise HeimdexError("this file is not a video")
        if left != 0:
            raise RuntimeError(f"{stage} broke")
        time.sleep(self.sleep.get(stage, 0.0))
        if stage == "align_merge" and ctx.artifacts.exists(TRANSCRIPT):
            self.transcript = ctx.artifacts.load(TRANSCRIPT)
        if stage == STAGES[-1]:
            ctx.store.set_video_state(ctx.video.id, VideoState.INDEXED)

    def ran(self, stage: str) -> int:
        return sum(1 for _, s, _ in self.calls if s == stage)

    def plan(self, ctx) -> int:
        if self.pieces > 1:
            starts = [k * SAMPLE_RATE for k in range(self.pieces)]
            ctx.artifacts.save(SPEECH_PLAN, SpeechPlan(starts=starts, samples=self.pieces * SAMPLE_RATE))
        return self.pieces

    def piece(self, ctx, piece: int) -> None:
        self.run(piece_key("asr_fast", piece), ctx)
        word = Word(text=f"piece{piece}", start_s=piece + 0.2, end_s=piece + 0.6)
        segment = Segment(start_s=word.start_s, end_s=word.end_s, text=word.text, words=[word])
        transcript = Transcript(language="en", segments=[segment], model="fake")
        ctx.artifacts.save(SPEECH_PIECES.at(piece), transcript)

    def fanout(self) -> FanOut:
        return GRAPH["asr_fast"].fanout._replace(plan=self.plan, piece=self.piece)


def make_worker(settings: Settings, stages: Stages, queues: list[str] | None = None) -> StageWorker:
    store = SqliteStore(settings.home / "heimdex.db")
    blobs = LocalBlobStore(settings.home / "blobs")

    def runner(on_event=None, keep_going=None, claim=None):
        r = PipelineRunner(settings, store, blobs, None, on_event, keep_going=keep_going, claim=claim)
        r.functions = {name: (lambda ctx, name=name: stages.run(name, ctx)) for name in STAGES}
        r.fanouts = {"asr_fast": stages.fanout()}
        return r

    # What StageWorker uses of Heimdex; no CLIP-style model, so nothing re-embeds (reembed.py).
    models = Models(settings)
    app = SimpleNamespace(store=store, blobs=blobs, runner=runner, models=models)
    return StageWorker(app, settings, queues=queues, worker_id=f"{stages.who}-worker")


class Running:
    """A StageWorker in a thread of the test process."""

    def __init__(self, worker: StageWorker) -> None:
        self.worker = worker
        self.thread = threading.Thread(target=worker.run, daemon=True)

    def __enter__(self) -> Running:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.worker.draining.set()
        self.thread.join(60)
        assert not self.thread.is_alive(), "the worker did not stop"


REDIS_DB = 13
REPO = Path(__file__).resolve().parents[2]
# HEIMDEX_TEST_QUEUE_LEASE_S=30 measures redelivery with the default lease (the kill and stall tests).
LEASE_S = float(os.environ.get("HEIMDEX_TEST_QUEUE_LEASE_S", "3"))


def settings(home: Path, **fields) -> Settings:
    """A test's settings: its broker (`home/url`, written by the `home` fixture), a short lease."""
    defaults = {"queue_lease_s": LEASE_S, "queue_retries": 2, "queue_backoff_s": 0.05}
    return settings_for(home, (home / "url").read_text(), **{**defaults, **fields})


def new_video(store) -> str:
    return store.add_video("owner", "a.mp4", "videos/{video_id}/original.mp4", 1, None).id


def wait_for(predicate, timeout: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def state(store, video_id: str) -> VideoState:
    return store.job_video(video_id).state


def attempts(store, video_id: str) -> dict[str, int]:
    return {r.stage: r.attempts for r in store.stage_records(video_id)}


def start_process(home: Path, who: str, sleep: dict[str, float], pieces: int = 1) -> subprocess.Popen:
    """A worker process on stand-in stages (`main`), for a test to kill or freeze."""
    config = home / f"{who}.json"
    lease_s = settings(home).queue_lease_s
    config.write_text(
        json.dumps(
            {
                "home": str(home),
                "queue_url": (home / "url").read_text(),
                "lease_s": lease_s,
                "who": who,
                "sleep": sleep,
                "pieces": pieces,
            }
        )
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    log = open(home / f"{who}.log", "w")  # noqa: SIM115 - the process owns it
    return subprocess.Popen(
        [sys.executable, "-m", "tests.queue.harness", str(config)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )


def main(config_path: str) -> None:
    from heimdex.logging import configure_logging

    config = json.loads(Path(config_path).read_text())
    configure_logging("INFO", True)
    settings = settings_for(Path(config["home"]), config["queue_url"], queue_lease_s=config["lease_s"])
    stages = Stages(config["who"])
    stages.sleep = config.get("sleep", {})
    stages.pieces = config.get("pieces", 1)
    worker = make_worker(settings, stages, config.get("queues"))
    signal.signal(signal.SIGTERM, lambda signum, frame: worker.draining.set())  # as `heimdex worker`
    worker.run()


if __name__ == "__main__":
    main(sys.argv[1])
