"""A StageWorker on stand-in stage functions, for the queue tests on real brokers.

The twelve real stages need models and media (tests/e2e runs them, with real workers); here each
stage is a function that records who ran it and can sleep or fail as a test says, while everything
else is real: the broker, Dramatiq's worker, retries and dead letters, the SQLite store with its
ledger and stage claims, the runner's stage bookkeeping. Run as a script, it is a worker process
(`python -m tests.queue.harness CONFIG.json`) that a test can kill.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

from heimdex.blobs.local import LocalBlobStore
from heimdex.domain import VideoState
from heimdex.errors import HeimdexError
from heimdex.pipeline.graph import STAGES
from heimdex.pipeline.runner import PipelineRunner
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
    success; -1: always), `bad` stages fail as a bad input would. `calls` lists (who, stage, when)."""

    def __init__(self, who: str) -> None:
        self.who = who
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
        if stage == STAGES[-1]:
            ctx.store.set_video_state(ctx.video.id, VideoState.INDEXED)

    def ran(self, stage: str) -> int:
        return sum(1 for _, s, _ in self.calls if s == stage)


def make_worker(settings: Settings, stages: Stages, queues: list[str] | None = None) -> StageWorker:
    store = SqliteStore(settings.home / "heimdex.db")
    blobs = LocalBlobStore(settings.home / "blobs")

    def runner(on_event=None, keep_going=None, claim=None):
        r = PipelineRunner(settings, store, blobs, None, on_event, keep_going=keep_going, claim=claim)
        r.functions = {name: (lambda ctx, name=name: stages.run(name, ctx)) for name in STAGES}
        return r

    app = SimpleNamespace(store=store, blobs=blobs, runner=runner)
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


def main(config_path: str) -> None:
    from heimdex.logging import configure_logging

    config = json.loads(Path(config_path).read_text())
    configure_logging("INFO", True)
    settings = settings_for(Path(config["home"]), config["queue_url"], queue_lease_s=config["lease_s"])
    stages = Stages(config["who"])
    stages.sleep = config.get("sleep", {})
    worker = make_worker(settings, stages, config.get("queues"))
    signal.signal(signal.SIGTERM, lambda signum, frame: worker.draining.set())  # as `heimdex worker`
    worker.run()


if __name__ == "__main__":
    main(sys.argv[1])
