"""The server-mode queue: a reliable queue on Redis (redis-py), consumed by `heimdex worker` processes.

Why not Dramatiq: a job here is only a video id, and exactly-once stage execution comes from the
store (video claims + the job ledger), not from the broker. What the broker must give is "a job is
never lost" and "a job is not queued twice"; Dramatiq's Redis broker gives the first through its own
heartbeat/requeue machinery but has no idempotent enqueue, and its retries and dead letters live in
message state that `heimdex status` and the API cannot see. The reliable-queue pattern below is a
few Redis commands, every step atomic, and easy to test against a real server.

Keys (prefix `heimdex:q:`):
- `ready`            LIST  ids waiting; producers LPUSH, workers BLMOVE from the right;
- `pending`          SET   ids queued, delayed or running: enqueue is a no-op for a member;
- `delayed`          ZSET  id -> when (Redis server time) a retry becomes ready (backoff);
- `processing:<w>`   LIST  ids worker w took; BLMOVE moves an id here atomically, so a crash
                           between "taken" and "started" cannot drop it;
- `lease:<w>`        key with a TTL, refreshed by w's heartbeat; `workers` SET lists every w;
- `attempts`         HASH  id -> transient failures so far;
- `dead`             HASH  id -> JSON {error, attempts, at}: jobs that exhausted their retries;
- `progress:<id>`    JSON  {done, running, updated} of a running job, published by its worker (stage
                           starts and ends at once, fractions at most PUBLISH_EVERY_S apart; a TTL);
- `metrics:stage:<s>` HASH bucket counts, sum and count of stage s's durations; `metrics:stages` SET
                           of stage names; `metrics:jobs` HASH final state -> jobs. The API's /metrics
                           reads them: the workers run the stages, the API answers the scrape.

Every worker reaps: a worker in `workers` whose lease key has expired is dead, and the ids in its
processing list go back to `ready`. Exclusive execution does not rely on the reaper being exact: a
worker must also claim the video in the store (a lease renewed by the same heartbeat), so a job
delivered twice runs once; the pipeline then resumes from the ledger and never repeats a done stage.

Dead letters are recorded where users look: the video's state becomes `failed` with an error that
starts with DEAD_LETTER_PREFIX (shown by `heimdex status` and GET /videos/{id} as dead_letter=true),
and the `dead` hash keeps the details for operators. Enqueueing the video again (reprocess) clears it.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import suppress

import redis

from heimdex.blobs.keys import video_prefix
from heimdex.domain import StageState, VideoState
from heimdex.errors import NotFoundError
from heimdex.logging import get_logger
from heimdex.pipeline.context import Artifacts
from heimdex.pipeline.events import STAGE_BUCKETS, RunAbandoned, StageEvent
from heimdex.queue.base import DEAD_LETTER_PREFIX, JobQueue
from heimdex.queue.progress import Progress, VideoProgress

log = get_logger(__name__)

PREFIX = "heimdex:q:"
PROMOTE_EVERY_S = 0.25  # how late a retry may become ready after its backoff
PUBLISH_EVERY_S = 0.5  # how often a worker publishes a running stage's fraction

# Scripts run atomically on the server; times come from the server's clock so workers need not agree.
_ENQUEUE = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then
  redis.call('LPUSH', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
  redis.call('HDEL', KEYS[4], ARGV[1])
  return 1
end
return 0
"""
_DELAY = """
local t = redis.call('TIME')
redis.call('LREM', KEYS[1], 1, ARGV[1])
redis.call('ZADD', KEYS[2], tonumber(t[1]) + tonumber(t[2]) / 1e6 + tonumber(ARGV[2]), ARGV[1])
"""
_PROMOTE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 100)
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('LPUSH', KEYS[2], id)
end
return #due
"""


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class RedisJobQueue(JobQueue):
    """Producer side (the API, `heimdex index --enqueue`) and the primitives workers use."""

    def __init__(
        self, url: str, recover: Callable[[], list[str]] | None = None, prefix: str = PREFIX
    ) -> None:
        self.redis = redis.Redis.from_url(url, decode_responses=True, health_check_interval=30)
        self._recover = recover or (lambda: [])
        self.prefix = prefix
        self._enqueue = self.redis.register_script(_ENQUEUE)
        self._delay = self.redis.register_script(_DELAY)
        self._promote = self.redis.register_script(_PROMOTE)

    def key(self, name: str) -> str:
        return self.prefix + name

    # ------------------------------------------------------------ JobQueue
    def enqueue(self, video_id: str) -> None:
        keys = [self.key("pending"), self.key("ready"), self.key("attempts"), self.key("dead")]
        added = self._enqueue(keys=keys, args=[video_id])
        log.info("job.enqueued" if added else "job.already_queued", video_id=video_id)

    def depth(self) -> int:
        return int(self.redis.llen(self.key("ready"))) + int(self.redis.zcard(self.key("delayed")))

    def start(self) -> None:
        """The API consumes nothing: it only puts back what the store says is unfinished (idempotent)."""
        for video_id in self._recover():
            self.enqueue(video_id)

    def stop(self, timeout: float = 10.0) -> None:
        self.redis.close()

    # ------------------------------------------------------------ for operators
    def dead_letters(self) -> dict[str, dict]:
        return {k: json.loads(v) for k, v in self.redis.hgetall(self.key("dead")).items()}

    def running(self) -> dict[str, list[str]]:
        """Worker id -> ids it holds, for live workers."""
        return {w: self.redis.lrange(self.key(f"processing:{w}"), 0, -1) for w in self.live_workers()}

    def live_workers(self) -> list[str]:
        return sorted(
            w for w in self.redis.smembers(self.key("workers")) if self.redis.exists(self._lease(w))
        )

    # ------------------------------------------------------------ worker primitives
    def _processing(self, worker_id: str) -> str:
        return self.key(f"processing:{worker_id}")

    def _lease(self, worker_id: str) -> str:
        return self.key(f"lease:{worker_id}")

    def heartbeat(self, worker_id: str, lease_s: float) -> None:
        with self.redis.pipeline() as pipe:
            pipe.set(self._lease(worker_id), "1", px=int(lease_s * 1000))
            pipe.sadd(self.key("workers"), worker_id)
            pipe.execute()

    def leave(self, worker_id: str) -> None:
        """A worker stopping cleanly (its processing list is empty): no need to wait for its lease."""
        with self.redis.pipeline() as pipe:
            pipe.delete(self._lease(worker_id))
            pipe.srem(self.key("workers"), worker_id)
            pipe.execute()

    def take(self, worker_id: str, timeout_s: float = 1.0) -> str | None:
        """The next ready id, moved atomically to the worker's processing list; None after the timeout.

        Blocks in short slices so that a delayed retry falling due meanwhile is promoted and seen.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            self._promote(keys=[self.key("delayed"), self.key("ready")])
            wait = min(deadline - time.monotonic(), PROMOTE_EVERY_S)
            if wait <= 0:
                return None
            got = self.redis.blmove(self.key("ready"), self._processing(worker_id), wait, "RIGHT", "LEFT")
            if got is not None:
                return got

    def ack(self, worker_id: str, video_id: str) -> None:
        """The job is finished (indexed, or failed for good): forget it."""
        with self.redis.pipeline() as pipe:
            pipe.lrem(self._processing(worker_id), 1, video_id)
            pipe.srem(self.key("pending"), video_id)
            pipe.hdel(self.key("attempts"), video_id)
            pipe.execute()

    def delay(self, worker_id: str, video_id: str, seconds: float) -> None:
        """Put the job back to become ready in `seconds` (it stays pending: no duplicate enqueue)."""
        self._delay(keys=[self._processing(worker_id), self.key("delayed")], args=[video_id, seconds])

    def release(self, worker_id: str, video_id: str) -> None:
        """Give the job back at the head of the line (a worker stopping mid-job)."""
        with self.redis.pipeline() as pipe:
            pipe.lrem(self._processing(worker_id), 1, video_id)
            pipe.rpush(self.key("ready"), video_id)
            pipe.execute()

    # ------------------------------------------------------------ live progress and metrics
    def publish_progress(self, progress: VideoProgress, ttl_s: float) -> None:
        data = {"done": progress.done, "running": progress.running, "updated": progress.updated}
        self.redis.set(self.key(f"progress:{progress.video_id}"), json.dumps(data), px=int(ttl_s * 1000))

    def clear_progress(self, video_id: str) -> None:
        self.redis.delete(self.key(f"progress:{video_id}"))

    def progress(self, video_id: str) -> VideoProgress | None:
        """What the worker running this video last published, if one is running it."""
        raw = self.redis.get(self.key(f"progress:{video_id}"))
        if not raw:
            return None
        data = json.loads(raw)
        return VideoProgress(
            video_id, VideoState.PROCESSING.value, data["done"], data["running"], updated=data["updated"]
        )

    def record_stage(self, stage: str, seconds: float) -> None:
        key = self.key(f"metrics:stage:{stage}")
        with self.redis.pipeline() as pipe:  # MULTI: a scrape never sees half an observation
            pipe.sadd(self.key("metrics:stages"), stage)
            for bound in STAGE_BUCKETS:
                if seconds <= bound:
                    pipe.hincrby(key, f"le:{bound}", 1)
            pipe.hincrbyfloat(key, "sum", seconds)
            pipe.hincrby(key, "count", 1)
            pipe.execute()

    def record_job(self, state: str) -> None:
        self.redis.hincrby(self.key("metrics:jobs"), state, 1)

    def stage_series(self) -> dict[str, tuple[list[int], list[float]]]:
        """Per stage: (observations per bucket of STAGE_BUCKETS, [sum, count]), from every worker."""
        out = {}
        for stage in sorted(self.redis.smembers(self.key("metrics:stages"))):
            raw = self.redis.hgetall(self.key(f"metrics:stage:{stage}"))
            counts = [int(raw.get(f"le:{bound}", 0)) for bound in STAGE_BUCKETS]
            out[stage] = (counts, [float(raw.get("sum", 0.0)), float(raw.get("count", 0))])
        return out

    def job_counts(self) -> dict[str, int]:
        return {state: int(n) for state, n in self.redis.hgetall(self.key("metrics:jobs")).items()}

    def count_failure(self, video_id: str) -> int:
        return int(self.redis.hincrby(self.key("attempts"), video_id, 1))

    def bury(self, worker_id: str, video_id: str, error: str, attempts: int) -> None:
        info = json.dumps({"error": error, "attempts": attempts, "at": time.time()})
        with self.redis.pipeline() as pipe:
            pipe.lrem(self._processing(worker_id), 1, video_id)
            pipe.srem(self.key("pending"), video_id)
            pipe.hdel(self.key("attempts"), video_id)
            pipe.hset(self.key("dead"), video_id, info)
            pipe.execute()

    def reap(self) -> list[str]:
        """Re-queue the jobs of workers whose lease expired (killed, or cut off); returns their ids."""
        requeued: list[str] = []
        for worker_id in self.redis.smembers(self.key("workers")):
            if self.redis.exists(self._lease(worker_id)):
                continue
            # LMOVE is atomic per item: two workers reaping at once still move each id once.
            while video_id := self.redis.lmove(
                self._processing(worker_id), self.key("ready"), "RIGHT", "RIGHT"
            ):
                requeued.append(video_id)
                log.warning("job.reaped", video_id=video_id, dead_worker=worker_id)
            self.redis.srem(self.key("workers"), worker_id)
        return requeued


class RedisProgress:
    """The API's progress board when workers are remote: what they publish on Redis. Reading it never
    fails a request: without Redis the API falls back to the job ledger's stage states."""

    def __init__(self, queue: RedisJobQueue) -> None:
        self.queue = queue

    def get(self, video_id: str) -> VideoProgress | None:
        try:
            return self.queue.progress(video_id)
        except redis.RedisError as exc:
            log.warning("progress.unavailable", video_id=video_id, error=str(exc))
            return None

    def forget(self, video_id: str) -> None:
        with suppress(redis.RedisError):
            self.queue.clear_progress(video_id)


class _JobReporter:
    """Follows one job's stage events (from the runner's threads): publishes its progress, throttled
    (a stage starting or ending at once, fractions within a stage at most every PUBLISH_EVERY_S), and
    counts stage durations for /metrics. Reporting is a courtesy: a Redis error never fails the job."""

    def __init__(self, queue: RedisJobQueue, video_id: str, ttl_s: float) -> None:
        self.queue, self.video_id, self.ttl_s = queue, video_id, ttl_s
        self.board = Progress()
        self._last = 0.0
        self._lock = threading.Lock()

    def on_event(self, event: StageEvent) -> None:
        self.board.on_event(event)
        if event.state == StageState.DONE and event.duration_s is not None:
            self._quietly(self.queue.record_stage, event.stage, event.duration_s)
        now = time.monotonic()
        within_stage = event.state == StageState.RUNNING and event.fraction > 0
        with self._lock:
            if within_stage and now - self._last < PUBLISH_EVERY_S:
                return
            self._last = now
        current = self.board.get(self.video_id)
        if current is not None:
            self._quietly(self.queue.publish_progress, current, self.ttl_s)

    def finished(self, state: str | None) -> None:
        self._quietly(self.queue.clear_progress, self.video_id)
        if state is not None:
            self._quietly(self.queue.record_job, state)

    def _quietly(self, call: Callable, *args) -> None:
        try:
            call(*args)
        except redis.RedisError as exc:
            log.debug("job.report_failed", video_id=self.video_id, error=str(exc))


class RedisWorker:
    """What `heimdex worker` runs: pull ids, claim the video, run the pipeline, retry or bury.

    One heartbeat thread keeps the worker's Redis lease and its store claims alive and reaps dead
    workers; `concurrency` threads each run one video at a time.
    """

    def __init__(
        self,
        heimdex,
        queue: RedisJobQueue,
        *,
        lease_s: float = 30.0,
        retries: int = 3,
        backoff_s: float = 10.0,
        concurrency: int = 1,
        worker_id: str | None = None,
    ) -> None:
        self.heimdex = heimdex
        self.store = heimdex.store
        self.queue = queue
        self.lease_s = lease_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.concurrency = max(1, concurrency)
        self.worker_id = worker_id or new_worker_id()
        self.current: set[str] = set()
        self._lock = threading.Lock()
        self.draining = threading.Event()  # take no new job; finish the current ones
        self._stopped = threading.Event()  # the heartbeat must not re-register a worker that left
        self.jobs_done = 0

    # ------------------------------------------------------------ lifecycle
    def run(self) -> None:
        """Work until `draining` is set and the current jobs are finished."""
        self.queue.heartbeat(self.worker_id, self.lease_s)
        beat = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        beat.start()
        threads = [
            threading.Thread(target=self._consume, name=f"consumer-{i}", daemon=True)
            for i in range(self.concurrency)
        ]
        for t in threads:
            t.start()
        log.info(
            "worker.started", worker_id=self.worker_id, concurrency=self.concurrency, lease_s=self.lease_s
        )
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(0.5)
        self._stopped.set()
        self.queue.leave(self.worker_id)
        log.info("worker.stopped", worker_id=self.worker_id, jobs=self.jobs_done)

    def release_all(self) -> None:
        """Hand the current jobs back now (a second SIGTERM): another worker resumes them from the ledger."""
        self.draining.set()
        with self._lock:
            held = list(self.current)
        for video_id in held:
            self.queue.release(self.worker_id, video_id)
            self.store.release_claim(video_id, self.worker_id)
            log.warning("job.released", video_id=video_id, worker_id=self.worker_id)

    def _heartbeat_loop(self) -> None:
        interval = max(0.2, self.lease_s / 3)
        while not self._stopped.is_set():
            try:
                self.queue.heartbeat(self.worker_id, self.lease_s)
                with self._lock:
                    held = list(self.current)
                for video_id in held:
                    if not self.store.renew_claim(video_id, self.worker_id, self.lease_s):
                        # Stalled past the lease and another worker claimed the video: the runner
                        # stops at the end of the current stage (_still_owner says so).
                        log.error("claim.lost", video_id=video_id, worker_id=self.worker_id)
                self.queue.reap()
            except Exception as exc:  # Redis or the database briefly away: keep beating
                log.warning("worker.heartbeat_error", error=f"{type(exc).__name__}: {exc}")
            self._stopped.wait(interval)

    def _consume(self) -> None:
        while not self.draining.is_set():
            try:
                video_id = self.queue.take(self.worker_id, timeout_s=1.0)
            except redis.RedisError as exc:
                log.warning("worker.queue_error", error=str(exc))
                time.sleep(1.0)
                continue
            if video_id is None:
                continue
            try:
                self.handle(video_id)
            except Exception as exc:  # the store unreachable on claim, Redis on ack: keep the job, go on
                log.error("job.error", video_id=video_id, error=f"{type(exc).__name__}: {exc}")
                with suppress(Exception):
                    self.queue.delay(self.worker_id, video_id, max(1.0, self.backoff_s))

    # ------------------------------------------------------------ one job
    def handle(self, video_id: str) -> None:
        if not self.store.claim_video(video_id, self.worker_id, self.lease_s):
            if self._deleted(video_id):  # no row to claim: looking again later would loop forever
                self.queue.ack(self.worker_id, video_id)
                log.info("job.dropped", video_id=video_id, reason="deleted")
                return
            # Another worker holds it (a job delivered twice): look again once its lease could be over.
            log.info("job.busy", video_id=video_id, worker_id=self.worker_id)
            self.queue.delay(self.worker_id, video_id, self.lease_s / 2)
            return
        with self._lock:
            self.current.add(video_id)
        log.info("job.started", video_id=video_id, worker_id=self.worker_id)
        try:
            self._run(video_id)
        finally:
            with self._lock:
                self.current.discard(video_id)
            self.store.release_claim(video_id, self.worker_id)
            self.jobs_done += 1

    def _run(self, video_id: str) -> None:
        started = time.perf_counter()
        # The TTL outlives a healthy worker's pauses between events, and a dead worker by little.
        reporter = _JobReporter(self.queue, video_id, ttl_s=max(60.0, 3 * self.lease_s))
        runner = self.heimdex.runner(
            on_event=reporter.on_event, keep_going=lambda: self._still_owner(video_id)
        )
        try:
            video = runner.run(video_id)
        except Exception as exc:
            if not isinstance(exc, RunAbandoned):  # an abandoned job's progress is its new owner's now
                reporter.finished(None)
            if self._deleted(video_id):
                # Deleted (through the API) while it waited or while it ran: the claim or the ledger
                # writes that followed failed, and the stages that were running may have written blobs
                # after the API removed the video's. The pipeline is over: nothing is written after this.
                self.heimdex.blobs.delete_prefix(video_prefix(video_id))
                self.queue.ack(self.worker_id, video_id)
                log.info("job.dropped", video_id=video_id, reason="deleted")
                return
            if isinstance(exc, RunAbandoned):
                # The new owner took the job from this worker's list when it reaped it: nothing to ack.
                log.warning("job.abandoned", video_id=video_id, worker_id=self.worker_id)
                self._tidy_after_abandon(video_id)
                return
            # the database or storage away: the job is fine, try it later
            self._retry_or_bury(video_id, f"{type(exc).__name__}: {exc}")
            return
        seconds = round(time.perf_counter() - started, 2)
        reporter.finished(video.state.value)
        if video.state == VideoState.INDEXED:
            self._acknowledge(video_id)
            log.info("job.done", video_id=video_id, worker_id=self.worker_id, seconds=seconds)
        elif runner.failure is not None and runner.failure.retryable:
            self._retry_or_bury(video_id, str(runner.failure))
        else:  # the input is at fault (corrupt file...): already failed in the store, no retry
            self._acknowledge(video_id)
            log.warning("job.failed", video_id=video_id, error=video.error, seconds=seconds)

    def _tidy_after_abandon(self, video_id: str) -> None:
        """The stage this worker was running when it stalled may have written intermediate artifacts
        after the new owner committed and cleared them. Once nobody works on the video, drop them."""
        try:
            video = self.store.job_video(video_id)
            if video.claimed_by is None and video.state in (VideoState.INDEXED, VideoState.FAILED):
                Artifacts(self.heimdex.blobs, video_id).clear()
        except Exception as exc:  # leftovers cost disk, not correctness: never fail the worker for them
            log.warning("job.tidy_failed", video_id=video_id, error=f"{type(exc).__name__}: {exc}")

    def _still_owner(self, video_id: str) -> bool:
        """Asked by the runner as each stage ends: whether this worker still holds the video's claim
        (renewing it). After a stall longer than the lease another worker may have claimed it."""
        try:
            return self.store.renew_claim(video_id, self.worker_id, self.lease_s)
        except Exception:  # the store away: the next stage will fail and be retried like any error
            return True

    def _acknowledge(self, video_id: str) -> None:
        """Forget the finished job. The video reads indexed (or failed) a moment before this: a
        reprocess asked for in between found the id still pending, so its enqueue was a no-op. The
        store, set back to queued by the reprocess, tells: queue the video again then."""
        self.queue.ack(self.worker_id, video_id)
        try:
            again = self.store.job_video(video_id).state == VideoState.QUEUED
        except Exception:  # deleted meanwhile, or the store away (a restarted API re-enqueues it)
            return
        if again:
            self.queue.enqueue(video_id)

    def _deleted(self, video_id: str) -> bool:
        """Whether the video is gone from the store (False when the store cannot tell right now)."""
        try:
            self.store.job_video(video_id)
        except NotFoundError:
            return True
        except Exception:  # the store unreachable: not a deletion; the caller retries as for any error
            return False
        return False

    def _retry_or_bury(self, video_id: str, error: str) -> None:
        failures = self.queue.count_failure(video_id)
        if failures > self.retries:
            message = f"{DEAD_LETTER_PREFIX} after {failures} attempts: {error}"
            self._set_state(video_id, VideoState.FAILED, message)
            self.queue.bury(self.worker_id, video_id, error, failures)
            log.error("job.dead_letter", video_id=video_id, attempts=failures, error=error)
            return
        delay = min(self.backoff_s * 2 ** (failures - 1), 3600.0)
        self._set_state(
            video_id, VideoState.QUEUED, f"retry {failures}/{self.retries} in {delay:.0f}s: {error}"
        )
        self.queue.delay(self.worker_id, video_id, delay)
        log.warning("job.retry", video_id=video_id, attempt=failures, delay_s=delay, error=error)

    def _set_state(self, video_id: str, state: VideoState, error: str) -> None:
        try:
            self.store.set_video_state(video_id, state, error)
        except Exception as exc:  # the store may be what is failing: the queue still records the outcome
            log.warning("job.state_not_saved", video_id=video_id, error=f"{type(exc).__name__}: {exc}")
