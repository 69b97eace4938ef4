"""The in-process worker: takes a video id and runs the pipeline on it, reporting progress."""

from __future__ import annotations

import time
from collections.abc import Callable

from heimdex.domain import StageState
from heimdex.logging import get_logger
from heimdex.pipeline.events import StageEvent
from heimdex.queue.progress import Progress

log = get_logger(__name__)

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
