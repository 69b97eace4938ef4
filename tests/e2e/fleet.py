"""Real `heimdex worker` processes and the checks on what they did, shared by the scale-out test
(workers on loopback) and the multi-host test (workers in network namespaces).

Workers log JSON lines; the checks read them (which worker started, finished or abandoned which
stage) and the store's ledger (states, attempts, claims), and compare blob storage with what the
store references.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import TypeVar

import redis

from heimdex.domain import StageRecord, StageState
from heimdex.queue.broker import StageQueue
from heimdex.service import Heimdex
from heimdex.settings import Settings
from tests import assets

T = TypeVar("T")

# Distinct pictures and words per video so that every file has its own hash and its own scenes.
PICTURES = [
    lambda: assets.opencv_sample("home.jpg"),
    lambda: assets.skimage_photo("chelsea"),
    lambda: assets.skimage_photo("stereo_motorcycle"),
    lambda: assets.kphotoalbum_photo("jesper_2.jpg"),
    lambda: assets.kphotoalbum_photo("donna_2.jpg"),
    lambda: assets.skimage_photo("astronaut"),
    lambda: assets.skimage_photo("coffee"),
]
TOPICS = ["harbour", "orchard", "library", "bakery", "stadium", "glacier", "museum", "lighthouse"]


def small_video(i: int) -> Path:
    """About seven seconds, two scenes: a narrated picture, then a captioned one."""
    first, second = PICTURES[i % len(PICTURES)], PICTURES[(i + 3) % len(PICTURES)]
    scenes = [
        {"image": first(), "say": f"Today we visit the {TOPICS[i]} in town number {i + 1}.", "seconds": 3.5},
        {"image": second(), "say": None, "text": f"{TOPICS[i].upper()} {i + 1}", "seconds": 3.0},
    ]
    return assets.narrated_video(f"scale_out_{i}", scenes)


def flush(settings: Settings) -> None:
    """No message of an earlier run is left on the broker."""
    if settings.queue_url.startswith("redis://"):
        redis.Redis.from_url(settings.queue_url).flushdb()
        return
    queue = StageQueue(settings, None)
    queue.counts()  # declares the queues, so that purging them finds them
    queue.broker.flush_all()
    queue.stop()


def env_of(settings: Settings) -> dict[str, str]:
    """A worker's environment: the settings as HEIMDEX_* variables."""
    env = {
        **os.environ,
        "HEIMDEX_HOME": str(settings.home),
        "HEIMDEX_DATABASE_URL": settings.database_url or "",
        "HEIMDEX_STORAGE_URL": settings.storage_url or "",
        "HEIMDEX_QUEUE_URL": settings.queue_url,
        "HEIMDEX_ASR_MODEL": settings.asr_model,
        "HEIMDEX_QUEUE_LEASE_S": str(settings.queue_lease_s),
        "HEIMDEX_CPU_THREADS": "1",  # two workers on two cores
        "HEIMDEX_LOG_LEVEL": "INFO",
        "HEIMDEX_LOG_JSON": "true",
    }
    optional = {
        "HEIMDEX_S3_ENDPOINT_URL": settings.s3_endpoint_url,
        "HEIMDEX_S3_ACCESS_KEY_ID": settings.s3_access_key_id,
        "HEIMDEX_S3_SECRET_ACCESS_KEY": (
            settings.s3_secret_access_key.get_secret_value() if settings.s3_secret_access_key else None
        ),
        "HEIMDEX_S3_REGION": settings.s3_region,
    }
    env.update({k: v for k, v in optional.items() if v is not None})
    return env


class Workers:
    """`heimdex worker` processes by name, each logging to <folder>/<name>.log."""

    def __init__(self, settings: Settings, folder: Path) -> None:
        self.settings, self.folder = settings, folder
        self.procs: dict[str, subprocess.Popen] = {}

    def start(
        self,
        name: str,
        prefix: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        queues: str | None = None,
    ) -> None:
        """`prefix` runs the worker through another command (e.g. `ip netns exec`), which must exec it
        so that the process's pid stays the worker's (worker ids carry it); `queues` limits what it
        takes (`heimdex worker --queues`)."""
        log = open(self.folder / f"{name}.log", "w")  # noqa: SIM115 - the process owns it
        only = ["--queues", queues] if queues else []
        self.procs[name] = subprocess.Popen(
            [*prefix, sys.executable, "-m", "heimdex.cli", "worker", *only],
            env=dict(env) if env is not None else env_of(self.settings),
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def events(self, name: str, event: str) -> list[dict]:
        found = []
        for line in (self.folder / f"{name}.log").read_text().splitlines():
            if line.startswith("{") and f'"{event}"' in line:
                with suppress(json.JSONDecodeError):  # the last line may be half written
                    found.append(json.loads(line))
        return found

    def ready(self, name: str) -> bool:
        return bool(self.events(name, "worker.started"))

    def done(self, video_ids: list[str], by: str | None = None) -> bool:
        """Whether every video has a job.done line (its commit ran) in the log of worker `by` (or of
        any worker)."""
        names = [by] if by else list(self.procs)
        finished = {e["video_id"] for name in names for e in self.events(name, "job.done")}
        return set(video_ids) <= finished

    def finished_stages(self, video_id: str) -> dict[str, list[str]]:
        """Stage -> the workers (by name) that logged stage.finished for it."""
        out: dict[str, list[str]] = {}
        for name in self.procs:
            for e in self.events(name, "stage.finished"):
                if e["video_id"] == video_id:
                    out.setdefault(e["stage"], []).append(name)
        return out

    def tail(self, name: str, lines: int = 25) -> str:
        return "\n".join((self.folder / f"{name}.log").read_text().splitlines()[-lines:])

    def pid_of(self, worker_id: str) -> str:
        return next(n for n, p in self.procs.items() if f":{p.pid}:" in worker_id)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_for(predicate: Callable[[], T], timeout: float, what: str, workers: Workers) -> T:
    """The predicate's first truthy value: what was seen, rather than asked again (a stage seen
    running may be over by the next look)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        for name, proc in workers.procs.items():
            if proc.poll() is not None and proc.returncode not in (0, -signal.SIGKILL):
                raise AssertionError(f"worker {name} exited {proc.returncode}:\n{workers.tail(name)}")
        time.sleep(0.3)
    tails = "\n".join(f"--- worker {name}:\n{workers.tail(name)}" for name in workers.procs)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{tails}")


def check_scenes(app: Heimdex, video_id: str, expected: int = 2) -> None:
    scenes = app.store.job_scenes(video_id)
    assert len(scenes) == expected, [(s.index, s.start_s, s.end_s) for s in scenes]
    assert len({s.id for s in scenes}) == len(scenes)
    assert [s.index for s in scenes] == list(range(expected))


def check_ran_again(before: dict[str, StageRecord], after: dict[str, StageRecord], holder: str) -> None:
    """After a worker was lost: every stage is done; the one it held (running, in `before`) ran once
    more, and every other stage exactly once."""
    assert all(r.state == StageState.DONE for r in after.values()), after
    for stage, record in after.items():
        was = before.get(stage)
        if was is not None and was.state == StageState.DONE:
            assert record.attempts == 1, f"{stage} was done before the loss and ran again"
        elif was is not None and was.state == StageState.RUNNING and was.claimed_by == holder:
            assert record.attempts == 2, f"{stage}: lost once, then run once more"
        else:
            assert record.attempts == 1, stage


def running(app: Heimdex, video_id: str) -> tuple[str, str] | None:
    """(worker, stage) of a stage of the video that a worker holds and runs, if one does."""
    for r in app.stages(video_id):
        if r.state == StageState.RUNNING and r.claimed_by is not None:
            return r.claimed_by, r.stage
    return None


def dead_letters(queue: StageQueue) -> int:
    return sum(dead for _, _, dead in queue.counts().values())


def referenced_keys(app: Heimdex, video_ids: Sequence[str]) -> set[str]:
    """Every blob key the store refers to for these videos: originals, thumbnails, sidecars and the
    crops of their faces."""
    keys: set[str] = set()
    for video_id in video_ids:
        keys.add(app.store.job_video(video_id).original_key)
        for scene in app.store.job_scenes(video_id):
            keys |= {k for k in (scene.thumbnail_key, scene.sidecar_key) if k}
        crops = app.store.db.all("SELECT crop_key FROM faces WHERE video_id = ?", (video_id,))
        keys |= {r["crop_key"] for r in crops if r["crop_key"]}
    return keys
