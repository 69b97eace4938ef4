"""The live progress board: what each video's job is doing now, for /jobs, the web app and the CLI.

The in-process worker writes to a `Progress`; with remote workers the API reads a `ChannelProgress`
(queue/channel.py). Both answer `ProgressBoard`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

from heimdex.domain import StageState, VideoState
from heimdex.pipeline.events import StageEvent
from heimdex.pipeline.graph import STAGE_WEIGHTS, STAGES


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
    """Where the API reads live progress: Progress (in-process worker) or ChannelProgress (remote ones)."""

    def get(self, video_id: str) -> VideoProgress | None: ...

    def forget(self, video_id: str) -> None: ...
