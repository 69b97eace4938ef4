"""Live progress and stage metrics of remote workers, on Redis (a side channel beside the broker).

Workers run stages, not videos: one video's audio and vision branches may run on two workers at once,
so progress is kept per stage. Keys (prefix `heimdex:live:`):
- `progress:<video>`   HASH  `run:<stage>` -> fraction of a running stage, `done:<stage>` -> seconds;
                             a TTL that every write renews (a video no worker touches fades out);
- `metrics:stage:<s>`  HASH  bucket counts, sum and count of stage s's durations; `metrics:stages` SET
                             of stage names; `metrics:jobs` HASH final state -> videos. The API's
                             /metrics reads them: the workers run the stages, the API answers the scrape.

With a redis:// broker the channel is the broker's Redis; with amqp:// it is `progress_url` if set
(else no live progress: the API shows the ledger's stage states, and /metrics no stage timings).
Reporting is a courtesy: a Redis error never fails a stage or a request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import suppress

import redis

from heimdex.domain import StageState, VideoState
from heimdex.logging import get_logger
from heimdex.pipeline.events import STAGE_BUCKETS, StageEvent
from heimdex.queue.progress import VideoProgress

log = get_logger(__name__)

PREFIX = "heimdex:live:"
PUBLISH_EVERY_S = 0.5  # how often a worker publishes a running stage's fraction
PROGRESS_TTL_S = 600.0
# Dramatiq's Prometheus middleware's buckets for dramatiq_message_duration_milliseconds.
MESSAGE_BUCKETS_MS = (
    5,
    10,
    25,
    50,
    75,
    100,
    250,
    500,
    750,
    1000,
    2500,
    5000,
    7500,
    10000,
    30000,
    60000,
    600000,
    900000,
)


class Channel:
    def __init__(self, url: str, prefix: str = PREFIX) -> None:
        self.redis = redis.Redis.from_url(url, decode_responses=True, health_check_interval=30)
        self.prefix = prefix

    def key(self, name: str) -> str:
        return self.prefix + name

    def close(self) -> None:
        self.redis.close()

    # ------------------------------------------------------------ progress
    def stage_running(self, video_id: str, stage: str, fraction: float) -> None:
        key = self.key(f"progress:{video_id}")
        with self.redis.pipeline() as pipe:
            pipe.hset(key, f"run:{stage}", f"{fraction:.3f}")
            pipe.expire(key, int(PROGRESS_TTL_S))
            pipe.execute()

    def stage_ended(self, video_id: str, stage: str, seconds: float | None) -> None:
        key = self.key(f"progress:{video_id}")
        with self.redis.pipeline() as pipe:
            pipe.hdel(key, f"run:{stage}")
            if seconds is not None:
                pipe.hset(key, f"done:{stage}", f"{seconds:.3f}")
            pipe.expire(key, int(PROGRESS_TTL_S))
            pipe.execute()

    def clear(self, video_id: str) -> None:
        self.redis.delete(self.key(f"progress:{video_id}"))

    def progress(self, video_id: str) -> VideoProgress | None:
        raw = self.redis.hgetall(self.key(f"progress:{video_id}"))
        if not raw:
            return None
        done = {k[5:]: float(v) for k, v in raw.items() if k.startswith("done:")}
        running = {k[4:]: float(v) for k, v in raw.items() if k.startswith("run:")}
        return VideoProgress(video_id, VideoState.PROCESSING.value, done, running)

    # ------------------------------------------------------------ metrics
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
        out = {}
        for stage in sorted(self.redis.smembers(self.key("metrics:stages"))):
            raw = self.redis.hgetall(self.key(f"metrics:stage:{stage}"))
            counts = [int(raw.get(f"le:{bound}", 0)) for bound in STAGE_BUCKETS]
            out[stage] = (counts, [float(raw.get("sum", 0.0)), float(raw.get("count", 0))])
        return out

    def record_message(self, queue: str, actor: str, outcome: str, milliseconds: float | None) -> None:
        """One message processed by a worker, in Dramatiq's Prometheus terms: `outcome` is `ok`,
        `error` (it raised), `retry` (it raised and comes back) or `reject` (dead-lettered)."""
        labels = f"{queue}|{actor}"
        key = self.key("metrics:dramatiq")
        with self.redis.pipeline() as pipe:
            pipe.hincrby(key, f"messages|{labels}", 1)
            if outcome != "ok":
                pipe.hincrby(key, f"errors|{labels}", 1)
            if outcome in ("retry", "reject"):
                pipe.hincrby(key, f"{outcome}s|{labels}", 1)
            if milliseconds is not None:
                for bound in MESSAGE_BUCKETS_MS:
                    if milliseconds <= bound:
                        pipe.hincrby(key, f"le:{bound}|{labels}", 1)
                pipe.hincrbyfloat(key, f"sum|{labels}", milliseconds)
                pipe.hincrby(key, f"count|{labels}", 1)
            pipe.execute()

    def message_metrics(self) -> dict[str, str]:
        """The raw counters record_message keeps (rendered by api/metrics.py)."""
        return self.redis.hgetall(self.key("metrics:dramatiq"))

    def job_counts(self) -> dict[str, int]:
        return {state: int(n) for state, n in self.redis.hgetall(self.key("metrics:jobs")).items()}


class ChannelProgress:
    """The API's progress board with remote workers: what they publish. Never fails a request."""

    def __init__(self, channel: Channel | None) -> None:
        self.channel = channel

    def get(self, video_id: str) -> VideoProgress | None:
        if self.channel is None:
            return None
        try:
            return self.channel.progress(video_id)
        except redis.RedisError as exc:
            log.warning("progress.unavailable", video_id=video_id, error=str(exc))
            return None

    def forget(self, video_id: str) -> None:
        if self.channel is not None:
            with suppress(redis.RedisError):
                self.channel.clear(video_id)


class StageReporter:
    """Follows one stage's events (from the runner): publishes its progress, throttled, and counts
    its duration for /metrics."""

    def __init__(self, channel: Channel | None, video_id: str) -> None:
        self.channel, self.video_id = channel, video_id
        self._last = 0.0
        self._lock = threading.Lock()

    def on_event(self, event: StageEvent) -> None:
        if self.channel is None:
            return
        if event.state == StageState.RUNNING:
            now = time.monotonic()
            with self._lock:
                if event.fraction > 0 and now - self._last < PUBLISH_EVERY_S:
                    return
                self._last = now
            self.quietly(self.channel.stage_running, event.video_id, event.stage, event.fraction)
            return
        done = event.state == StageState.DONE
        self.quietly(
            self.channel.stage_ended, event.video_id, event.stage, event.duration_s if done else None
        )
        if done and event.duration_s is not None:
            self.quietly(self.channel.record_stage, event.stage, event.duration_s)

    def quietly(self, call: Callable, *args) -> None:
        if self.channel is None:
            return
        try:
            call(*args)
        except redis.RedisError as exc:
            log.debug("progress.report_failed", video_id=self.video_id, error=str(exc))
