"""Runs a video's stages with checkpoints, retries, timings and progress events.

Stages form a small dependency graph (pipeline/graph.py). The runner starts every stage
whose inputs are ready, up to `parallel` at once, so the speech branch and the vision branch
overlap. Each stage's start, end, duration, attempts and error go to the job ledger in the store;
a stage marked done is never run again for the same run, which is what makes `index` resumable
after a crash: artifacts are written before the ledger says done, and every stage overwrites
rather than appends, so running one twice changes nothing.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from heimdex.blobs import BlobStore
from heimdex.domain import StageState, Video, VideoState, piece_key
from heimdex.errors import HeimdexError
from heimdex.logging import get_logger
from heimdex.ml.registry import Models
from heimdex.pipeline.context import Artifacts, StageContext
from heimdex.pipeline.events import EventFn, RunAbandoned, StageEvent
from heimdex.pipeline.graph import GRAPH, STAGES, FanOut
from heimdex.pipeline.stages.finish import cleanup_work
from heimdex.settings import Settings
from heimdex.store import Store

log = get_logger(__name__)


class StageFailed(Exception):
    def __init__(self, stage: str, message: str, retryable: bool = False) -> None:
        super().__init__(f"{stage}: {message}")
        self.stage = stage
        self.message = message
        self.retryable = retryable  # False: the input is at fault (HeimdexError), trying again cannot help


@dataclass(frozen=True)
class _Step:
    """What `_run_step` runs: a stage, or a part of a fan-out stage (its plan, a piece, its join)."""

    stage: str  # the stage: events and errors name it
    key: str  # its ledger row: the stage, or a piece's `piece_key`
    call: Callable[[StageContext], Any]
    artifacts: Artifacts  # the view it reads and writes through
    opens: bool = True  # records its start (a plan or a join does not: the stage is already running)
    closes: bool = True  # records itself done (a plan does not: its pieces and join finish the stage)
    began: float | None = None  # a join: when its stage started (wall clock), for the stage's duration


class PipelineRunner:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        blobs: BlobStore,
        models: Models,
        on_event: EventFn | None = None,
        parallel: int = 2,
        keep_going: Callable[[], bool] | None = None,
        claim: str | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.blobs = blobs
        self.models = models
        self.on_event = on_event or (lambda event: None)
        self.parallel = max(1, parallel)
        # Asked before a stage's outcome is recorded (so before the next stage starts). A worker whose
        # claim on the video was taken over (it stalled past its lease) stops there instead of racing
        # the new owner through the remaining stages or writing into its ledger.
        self.keep_going = keep_going or (lambda: True)
        # The worker whose stage claim must still stand when an outcome is recorded (server mode).
        self.claim = claim
        self.failure: StageFailed | None = None  # why the last run failed, for a queue deciding on retries
        self.functions = {stage.name: stage.run.resolve() for stage in GRAPH.stages}  # imports the stages
        # Server mode's stages in pieces (graph.FanOut); the graph run above never uses them.
        self.fanouts: dict[str, FanOut] = {s.name: s.fanout for s in GRAPH.stages if s.fanout is not None}

    def run(self, video_id: str) -> Video:
        """Take the video through every stage not yet done. Returns the video in its final state."""
        video = self.store.job_video(video_id)
        done = {r.stage for r in self.store.stage_records(video_id) if r.state == StageState.DONE}
        if done >= set(STAGES) and video.state == VideoState.INDEXED:
            return video
        self.store.set_video_state(video_id, VideoState.PROCESSING)
        ctx = self._context(video)
        try:
            self._run_graph(ctx, done)
        except RunAbandoned:
            log.warning("video abandoned", video_id=video_id, done=sorted(done))
            raise  # the video's state belongs to its new owner: leave it alone
        except StageFailed as failure:
            self.failure = failure
            self.store.set_video_state(video_id, VideoState.FAILED, str(failure))
            log.warning("video failed", video_id=video_id, stage=failure.stage, error=failure.message)
            return self.store.job_video(video_id)
        cleanup_work(ctx)
        return self.store.job_video(video_id)

    def run_stage(self, video_id: str, stage: str, attempts: int = 1) -> None:
        """Run one stage of the video (server mode: a worker took it from its queue and holds its
        claim), recording it in the ledger like the graph does. StageFailed says why it failed
        (`retryable` or not); RunAbandoned when `keep_going` says the claim was lost."""
        video = self.store.job_video(video_id)
        ctx = self._context(video)
        self._run_stage(ctx, stage, attempts)

    def _context(self, video: Video) -> StageContext:
        return StageContext(
            video=video,
            settings=self.settings,
            store=self.store,
            blobs=self.blobs,
            models=self.models,
            artifacts=Artifacts(self.blobs, video.id),
        )

    def finish(self, video_id: str) -> None:
        """After the last stage: drop the intermediate artifacts."""
        cleanup_work(
            StageContext(
                video=self.store.job_video(video_id),
                settings=self.settings,
                store=self.store,
                blobs=self.blobs,
                models=self.models,
                artifacts=Artifacts(self.blobs, video_id),
            )
        )

    def _run_graph(self, ctx: StageContext, done: set[str]) -> None:
        running: dict[Future, str] = {}
        failure: StageFailed | None = None
        abandoned = False
        with ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="stage") as pool:
            while True:
                if failure is None and not abandoned:  # stages already running finish; no new one starts
                    for stage in self._ready(done, set(running.values())):
                        running[pool.submit(self._run_stage, ctx, stage)] = stage
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    stage = running.pop(future)
                    try:
                        future.result()
                        done.add(stage)
                    except StageFailed as exc:
                        failure = failure or exc  # let stages already running finish, start no more
                    except RunAbandoned:
                        abandoned = True
        if abandoned:  # before a failure: a failure seen after losing the video is not its own
            raise RunAbandoned(ctx.video.id)
        if failure is not None:
            raise failure

    @staticmethod
    def _ready(done: set[str], running: set[str]) -> list[str]:
        return [
            s
            for s in STAGES
            if s not in done and s not in running and all(d in done for d in GRAPH.dependencies[s])
        ]

    def _run_stage(self, ctx: StageContext, stage: str, attempts: int | None = None) -> None:
        declared = GRAPH[stage]
        view = ctx.artifacts.only(stage, reads=declared.inputs, writes=declared.outputs)
        step = _Step(stage, stage, self.functions[stage], view)
        self._run_step(ctx, step, attempts or 1 + self.settings.stage_retries)

    def _run_step(self, ctx: StageContext, step: _Step, attempts: int = 1) -> Any:
        """Run a stage, or a part of one, with its ledger row, events and retries; its result."""
        for attempt in range(1, attempts + 1):
            started = time.perf_counter()
            if step.opens:
                self.store.stage_started(ctx.video.id, step.key)
                self._emit(ctx, step, StageState.RUNNING, 0.0)
            stage_ctx = StageContext(
                **{
                    **ctx.__dict__,
                    "artifacts": step.artifacts,
                    "progress": lambda f, s=step: self._emit(ctx, s, StageState.RUNNING, f),
                }
            )
            try:
                result = step.call(stage_ctx)
            except HeimdexError as exc:  # the input is at fault: retrying cannot help
                self._check_still_owner(ctx)
                message = _in_users_words(ctx, str(exc))
                self._failed(ctx, step, started, message)
                raise StageFailed(step.stage, message) from exc
            except Exception as exc:
                # A worker that stalled past its lease finds its inputs cleared by the new owner:
                # that failure is not the video's, and the ledger is not this worker's to write.
                self._check_still_owner(ctx)
                message = _in_users_words(ctx, f"{type(exc).__name__}: {exc}")
                self._failed(ctx, step, started, message)
                log.warning(
                    "stage error",
                    video_id=ctx.video.id,
                    stage=step.key,
                    attempt=attempt,
                    error=message,
                    trace=traceback.format_exc(limit=6),
                )
                if attempt == attempts:
                    raise StageFailed(step.stage, message, retryable=True) from exc
                time.sleep(0.5 * attempt)
                continue
            elapsed = time.perf_counter() - started
            self._check_still_owner(ctx)
            if step.closes:
                self._done(ctx, step, elapsed)
            return result
        return None

    def _done(self, ctx: StageContext, step: _Step, elapsed: float) -> None:
        if step.began is not None:  # a joined fan-out: the stage took from its plan to its join
            elapsed = max(elapsed, time.time() - step.began)
        recorded = self.store.stage_done(ctx.video.id, step.key, elapsed, claimed_by=self.claim)
        if self.claim is not None and not recorded:
            raise RunAbandoned(ctx.video.id)  # the claim passed on after the check
        if step.key == step.stage:
            self.on_event(StageEvent(ctx.video.id, step.stage, StageState.DONE, 1.0, duration_s=elapsed))
        log.info("stage done", video_id=ctx.video.id, stage=step.key, seconds=round(elapsed, 3))

    # ------------------------------------------------------------ server mode: a stage in pieces
    def plan_pieces(self, video_id: str, stage: str) -> int:
        """Cut a fan-out stage (graph.FanOut) into pieces; 1: run it whole with run_stage. A stage
        cut in several is marked running here; `run_piece` and `join_pieces` finish it."""
        ctx = self._context(self.store.job_video(video_id))
        declared = GRAPH[stage]
        fan = self.fanouts[stage]
        view = ctx.artifacts.only(stage, reads=declared.inputs, writes=(fan.plan_artifact,))
        planned = view.exists(fan.plan_artifact)
        count = self._run_step(ctx, _Step(stage, stage, fan.plan, view, opens=False, closes=False))
        if count > 1 and not planned:
            self.store.stage_started(video_id, stage)
            self.on_event(StageEvent(video_id, stage, StageState.RUNNING, 0.0))
        return count

    def pieces(self, video_id: str, stage: str) -> int:
        """How many pieces the stage's saved plan has (0: none saved)."""
        fan = self.fanouts[stage]
        view = Artifacts(self.blobs, video_id).only(stage, reads=(fan.plan_artifact,), writes=())
        return view.load(fan.plan_artifact).pieces if view.exists(fan.plan_artifact) else 0

    def run_piece(self, video_id: str, stage: str, piece: int) -> None:
        """One piece, in its own ledger row; then the stage's progress is the share of pieces done."""
        ctx = self._context(self.store.job_video(video_id))
        declared = GRAPH[stage]
        fan = self.fanouts[stage]
        view = ctx.artifacts.only(
            stage, reads=(*declared.inputs, fan.plan_artifact), writes=(fan.pieces.at(piece),)
        )
        self._run_step(ctx, _Step(stage, piece_key(stage, piece), lambda c: fan.piece(c, piece), view))
        done = sum(r.state == StageState.DONE for r in self.store.piece_records(video_id, stage))
        self.on_event(StageEvent(video_id, stage, StageState.RUNNING, done / self.pieces(video_id, stage)))

    def join_pieces(self, video_id: str, stage: str) -> None:
        """Every piece is done: write the stage's outputs from theirs and record the stage done."""
        ctx = self._context(self.store.job_video(video_id))
        declared = GRAPH[stage]
        fan = self.fanouts[stage]
        parts = tuple(fan.pieces.at(k) for k in range(self.pieces(video_id, stage)))
        view = ctx.artifacts.only(stage, reads=(fan.plan_artifact, *parts), writes=declared.outputs)
        record = next((r for r in self.store.stage_records(video_id) if r.stage == stage), None)
        began = record.started_at if record is not None else None
        self._run_step(ctx, _Step(stage, stage, fan.join, view, opens=False, began=began))

    def _check_still_owner(self, ctx: StageContext) -> None:
        if not self.keep_going():
            raise RunAbandoned(ctx.video.id)

    def _failed(self, ctx: StageContext, step: _Step, started: float, message: str) -> None:
        elapsed = time.perf_counter() - started
        recorded = self.store.stage_failed(ctx.video.id, step.key, elapsed, message, claimed_by=self.claim)
        if self.claim is not None and not recorded:
            raise RunAbandoned(ctx.video.id)
        if step.key == step.stage:  # a piece failing leaves its stage running: it is retried
            event = StageEvent(ctx.video.id, step.stage, StageState.FAILED, error=message, duration_s=elapsed)
            self.on_event(event)

    def _emit(self, ctx: StageContext, step: _Step, state: StageState, fraction: float) -> None:
        if step.key == step.stage:  # progress is per stage; a piece's shows as its stage's share
            self.on_event(StageEvent(ctx.video.id, step.stage, state, fraction))


def _in_users_words(ctx: StageContext, message: str) -> str:
    """Errors from decoders name the file they opened: our stored copy, or a cache entry of it.
    Say the name the user knows instead (whole paths first, then bare names)."""
    for opened in sorted(ctx.opened_as, key=len, reverse=True):
        message = message.replace(opened, ctx.video.filename)
    return message
