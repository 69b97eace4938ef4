"""The job queue interface, the worker, and the live progress board.

A job is just a video id: everything else (stages done, artifacts, errors) lives in the store's job
ledger, so a job can be taken again after a crash and the pipeline resumes where it stopped.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from heimdex.domain import STAGES, StageState, VideoState
from heimdex.logging import get_logger
from heimdex.pipeline.events import STAGE_WEIGHTS, StageEvent

log = get_logger(__name__)

# Starts the error of a video whose job exhausted its retries (server mode, queue/redis.py).
DEAD_LETTER_PREFIX = "dead-letter"


@dataclass
class VideoProgress:
    video_id: str
    state: str = VideoState.QUEUED.value
    done: dict[str, float] = field(default_factory=dict)  # stage -> seconds
    running: dict[str, float] = field(default_factory=dict)  # stage -> fraction
    error: str | None = None
    updated: float = field(default_factory=time.time)

    @property
    def fraction(self) -> float:
        total = sum(STAGE_WEIGHTS.values())
        got = sum(STAGE_WEIGHTS[s] for s in self.done) + sum(
            STAGE_WEIGHTS[s] * f for s, f in self.running.items()
        )
        return round(min(1.0, got / total), 3)

    def as_dict(self) -> dict:
        return {
            "video_id": self.video_id,
            "state": self.state,
            "progress": self.fraction,
            "stages_done": len(self.done),
            "stages_total": len(STAGES),
            "running": sorted(self.running),
            "error": self.error,
        }


class Progress:
    """What each video's job is doing now, in memory, for /jobs and the web app's live view.

    A version counter lets readers (server-sent events) wait for the next change cheaply.
    """

    def __init__(self) -> None:
        self._videos: dict[str, VideoProgress] = {}
        self._lock = threading.Lock()  # the worker's threads write while request threads read
        self._changed = threading.Condition()
        self.version = 0

    def _touch(self) -> None:
        with self._changed:
            self.version += 1
            self._changed.notify_all()

    def queued(self, video_id: str) -> None:
        with self._lock:
            self._videos[video_id] = VideoProgress(video_id)
        self._touch()

    def finished(self, video_id: str, state: VideoState, error: str | None) -> None:
        # The store has the final state from here on: keep memory bounded by forgetting the entry.
        with self._lock:
            self._videos.pop(video_id, None)
        self._touch()

    def on_event(self, event: StageEvent) -> None:
        with self._lock:
            entry = self._videos.setdefault(event.video_id, VideoProgress(event.video_id))
            entry.state = VideoState.PROCESSING.value
            if event.state == StageState.DONE:
                entry.running.pop(event.stage, None)
                entry.done[event.stage] = event.duration_s or 0.0
            elif event.state == StageState.RUNNING:
                entry.running[event.stage] = event.fraction
            else:
                entry.running.pop(event.stage, None)
            entry.updated = time.time()
        self._touch()

    def get(self, video_id: str) -> VideoProgress | None:
        """A copy, safe to read while the worker goes on."""
        with self._lock:
            entry = self._videos.get(video_id)
            if entry is None:
                return None
            return VideoProgress(
                entry.video_id, entry.state, dict(entry.done), dict(entry.running), entry.error, entry.updated
            )

    def forget(self, video_id: str) -> None:
        with self._lock:
            self._videos.pop(video_id, None)
        self._touch()

    def wait(self, version: int, timeout: float) -> int:
        """Block until the version moves past `version` (or the timeout); returns the new version."""
        with self._changed:
            self._changed.wait_for(lambda: self.version != version, timeout)
            return self.version


class ProgressBoard(Protocol):
    """Where the API reads live progress: Progress (in-process worker) or RedisProgress (remote ones)."""

    def get(self, video_id: str) -> VideoProgress | None: ...

    def forget(self, video_id: str) -> None: ...


class JobQueue(ABC):
    """Where videos wait to be indexed. Implementations: inline (in-process), redis (`heimdex worker`)."""

    @abstractmethod
    def enqueue(self, video_id: str) -> None: ...

    @abstractmethod
    def depth(self) -> int:
        """Jobs waiting (not counting the ones being worked on)."""

    @abstractmethod
    def start(self) -> None:
        """Start consuming (re-enqueueing what a previous run left unfinished)."""

    @abstractmethod
    def stop(self, timeout: float = 10.0) -> None:
        """Stop consuming; a job in progress is left to resume on the next start."""


StageTimer = Callable[[str, float], None]


class Worker:
    """Takes a video id and runs the pipeline on it, reporting progress and stage timings."""

    def __init__(self, heimdex, progress: Progress, on_stage_done: StageTimer | None = None) -> None:
        self.heimdex = heimdex
        self.progress = progress
        self.on_stage_done = on_stage_done or (lambda stage, seconds: None)
        self.current: str | None = None
        # Called with (video_id, final state) after every job, e.g. to run a deletion that waited.
        self.after_job: Callable[[str, str], None] = lambda video_id, state: None

    def handle(self, video_id: str) -> None:
        self.current = video_id
        started = time.perf_counter()
        state = "error"
        try:
            video = self.heimdex.process(video_id, on_event=self._event)
            state = video.state.value
            self.progress.finished(video_id, video.state, video.error)
            log.info(
                "job.done", video_id=video_id, state=state, seconds=round(time.perf_counter() - started, 2)
            )
        except Exception as exc:  # a deleted video, a broken store: the worker must keep going
            log.warning("job.error", video_id=video_id, error=f"{type(exc).__name__}: {exc}")
            self.progress.forget(video_id)
        finally:
            self.current = None
            self.after_job(video_id, state)

    def _event(self, event: StageEvent) -> None:
        self.progress.on_event(event)
        if event.state == StageState.DONE and event.duration_s is not None:
            self.on_stage_done(event.stage, event.duration_s)


def open_queue(url: str, worker: Worker, recover: Callable[[], list[str]]) -> JobQueue:
    """The queue for `url`; `recover` lists videos a previous run left queued or processing."""
    if url.startswith("inline://"):
        from heimdex.queue.inline import InlineQueue

        return InlineQueue(worker, recover)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from heimdex.queue.redis import RedisJobQueue

        return RedisJobQueue(url, recover)  # enqueue only: `heimdex worker` processes consume it
    raise ValueError(f"unsupported queue URL {url!r}: use inline:// or redis://host:port/db")


def is_remote(url: str) -> bool:
    """Whether jobs are run by separate `heimdex worker` processes rather than in this one."""
    return not url.startswith("inline://")
