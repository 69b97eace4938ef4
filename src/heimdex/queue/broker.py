"""Server mode on Dramatiq: a stage of a video is the unit of work, routed by what it needs.

Brokers: Redis (queue_url=redis://, rediss://, unix://) and RabbitMQ (amqp://, amqps://). Four
actors, one per queue of pipeline/graph.py (`heimdex-media`, `heimdex-asr`, `heimdex-vision`,
`heimdex-index`); a message is `(video_id, stage)`, or `(video_id, stage, piece)` for a piece of a
stage that fans out (graph.FanOut: asr_fast on long audio; docs/ARCHITECTURE.md, "Long audio fans
out"). `heimdex worker --queues asr,vision` consumes some of them; by default a worker takes all.

The store is the source of truth, not the broker (StageHandler.handle):
- a message for a deleted or failed video, for a stage already done, or whose dependencies are not
  all done is a no-op (a stage done before is acknowledged by sending what it made ready, which
  repairs a worker killed between the two);
- a worker runs a stage only while it holds the stage's claim in the ledger (a lease renewed by a
  heartbeat thread, judged by the database's clock): a message delivered twice runs once, and a
  worker that stalled past its lease stops before recording anything (RunAbandoned); its outcome
  is written only while its claim stands, checked by the writing statement itself;
- a finished stage sends the stages it made ready; the last one (commit) makes the video indexed.
- a fan-out stage's message plans it and sends its pieces; each piece is claimed under its own ledger
  row (`asr_fast#k`); the worker that finds every piece done, after giving its piece up, takes the
  stage's claim, joins them and sends what the stage made ready (`_join_when_complete`).

Retries are Dramatiq's (Retries middleware, exponential backoff from queue_backoff_s, at most
queue_retries); an input error (a corrupt file: HeimdexError) fails the video at once. Exhausted
retries: Dramatiq moves the message to its dead-letter queue and DeadLetters marks the video failed
with an error starting with DEAD_LETTER_PREFIX, which `status`, the API and the web app show;
`reprocess` clears the ledger and sends the first stage again.

A worker of the vision queue with a CLIP-style model configured also re-embeds the library's frames
that lack that model's vectors (reembed.LibraryReembed: after HEIMDEX_CLIP_MODEL changed, the first
such worker to look takes the store's lease and does it; the others look again every lease).

A worker killed mid-stage: Redis requeues its unacknowledged messages once its heartbeat is older
than heartbeat_timeout (queue_lease_s), checked by the maintenance every other worker runs on each
fetch (maintenance_chance at its maximum); RabbitMQ requeues them when the connection drops, and a
frozen process's connection is dropped after missed heartbeats (heartbeat=queue_lease_s / 2). Either way
the stage restarts from its beginning on another worker, once the stage claim has expired.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import partial
from typing import TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker
from dramatiq.common import dq_name, xq_name
from dramatiq.middleware import CurrentMessage, Middleware, Retries

from heimdex.blobs.keys import video_prefix
from heimdex.domain import StageState, VideoState, piece_key
from heimdex.errors import NotFoundError
from heimdex.logging import get_logger
from heimdex.pipeline.context import Artifacts
from heimdex.pipeline.events import RunAbandoned
from heimdex.pipeline.graph import GRAPH, QUEUES, STAGES
from heimdex.queue.base import DEAD_LETTER_PREFIX, JobQueue
from heimdex.queue.channel import Channel, StageReporter
from heimdex.queue.idle_fetch import FIRST_ASKED, IdleFetch
from heimdex.reembed import LibraryReembed

log = get_logger(__name__)
T = TypeVar("T")

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
AMQP_SCHEMES = ("amqp://", "amqps://")
NAMESPACE = "heimdex"
TIME_LIMIT_MS = 12 * 3600 * 1000  # Dramatiq's default (10 minutes) would kill a long transcription
MAX_BACKOFF_MS = 3600 * 1000


def queue_name(queue: str) -> str:
    return f"heimdex-{queue}"


def parse_queues(spec: str | None) -> list[str]:
    """`asr,vision` -> ["asr", "vision"]; empty or None: every queue."""
    names = [q.strip() for q in (spec or "").split(",") if q.strip()]
    unknown = [q for q in names if q not in QUEUES]
    if unknown:
        raise ValueError(f"unknown queue {unknown[0]!r}: use some of {', '.join(QUEUES)}")
    return names or list(QUEUES)


def _fetch_rank(broker_queue: str) -> int:
    """A broker queue's place in the order a free worker asks them (idle_fetch.FIRST_ASKED)."""
    names = [queue_name(q) for q in FIRST_ASKED]
    return names.index(broker_queue) if broker_queue in names else len(names)


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def make_broker(url: str, lease_s: float, worker: bool = False) -> dramatiq.Broker:
    if url.startswith(REDIS_SCHEMES):
        return RedisBroker(
            url=url,
            namespace=NAMESPACE,
            heartbeat_timeout=int(lease_s * 1000),
            maintenance_chance=MAINTENANCE_SCALE,  # every fetch looks for dead workers' messages
        )
    if url.startswith(AMQP_SCHEMES):
        # Workers' connections beat every few seconds; a producer's connection (the API), idle between
        # sends, keeps the server's heartbeat and reconnects when one was dropped.
        return RabbitmqBroker(url=_with_heartbeat(url, lease_s) if worker else url, confirm_delivery=True)
    raise ValueError(f"unsupported queue URL {url!r}: use redis://host:port/db or amqp://host:port/vhost")


def _with_heartbeat(url: str, lease_s: float) -> str:
    """The AMQP heartbeat (seconds) unless the URL sets one: a frozen worker's connection is closed,
    and its messages requeued, after about that long."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    # RabbitMQ drops a peer after missing heartbeats for about twice the interval: half the lease.
    query.setdefault("heartbeat", str(max(2, round(lease_s / 2))))
    return urlunsplit(parts._replace(query=urlencode(query)))


def progress_channel(settings) -> Channel | None:
    """Where remote workers publish live progress and stage timings (see queue/channel.py)."""
    url = settings.progress_url or (
        settings.queue_url if settings.queue_url.startswith(REDIS_SCHEMES) else None
    )
    return Channel(url) if url else None


class StageQueue(JobQueue):
    """The broker and the four actors. Producers (the API, `heimdex index --enqueue`) only send; a
    worker passes the function its actors run."""

    def __init__(
        self,
        settings,
        store,
        recover: Callable[[], list[str]] | None = None,
        run: Callable[..., None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self._recover = recover or (lambda: [])
        self.broker = make_broker(settings.queue_url, settings.queue_lease_s, worker=run is not None)
        self.broker.add_middleware(CurrentMessage())
        self.max_retries = settings.queue_retries
        self.actors = {
            q: dramatiq.actor(
                run or _producer_only,
                broker=self.broker,
                actor_name=f"heimdex_stage_{q}",
                queue_name=queue_name(q),
                max_retries=settings.queue_retries,
                min_backoff=max(1, int(settings.queue_backoff_s * 1000)),
                max_backoff=MAX_BACKOFF_MS,
                time_limit=TIME_LIMIT_MS,
            )
            for q in QUEUES
        }

    # ------------------------------------------------------------ JobQueue
    def enqueue(self, video_id: str) -> None:
        """Send the video's stages that are ready by its ledger (the first one for a new video)."""
        done = {r.stage for r in self.store.stage_records(video_id) if r.state == StageState.DONE}
        for stage in GRAPH.ready(done):
            self.send(video_id, stage)

    def send(self, video_id: str, stage: str, delay_s: float | None = None, piece: int | None = None) -> None:
        """A message `(video, stage)`, or `(video, stage, piece)` for a piece of a fan-out stage."""
        delay = int(delay_s * 1000) if delay_s else None
        args = (video_id, stage) if piece is None else (video_id, stage, piece)
        self.actors[GRAPH[stage].queue].send_with_options(args=args, delay=delay)
        log.info("stage.enqueued", video_id=video_id, stage=stage, piece=piece, delay_s=delay_s)

    def depth(self) -> int:
        """Stage messages waiting (ready or delayed), over every queue."""
        return sum(ready + delayed for ready, delayed, _ in self.counts().values())

    def counts(self) -> dict[str, tuple[int, int, int]]:
        """Per queue: messages (ready, delayed for a retry, dead-lettered)."""
        out = {}
        for q in QUEUES:
            name = queue_name(q)
            if isinstance(self.broker, RedisBroker):
                client = self.broker.client
                out[q] = (
                    int(client.llen(f"{NAMESPACE}:{name}")),
                    int(client.llen(f"{NAMESPACE}:{dq_name(name)}")),
                    int(client.zcard(f"{NAMESPACE}:{xq_name(name)}")),
                )
            else:
                out[q] = self._amqp_counts(name)
        return out

    def _amqp_counts(self, name: str) -> tuple[int, int, int]:
        import pika

        for attempt in (1, 2):  # a connection idle past its heartbeats was closed: open another
            try:
                self.broker.declare_queue(name, ensure=True)
                return tuple(self.broker.get_queue_message_counts(name))
            except (pika.exceptions.AMQPError, ConnectionError):
                del self.broker.connection
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def start(self) -> None:
        """The API consumes nothing: it only sends again what the store says is unfinished (a no-op
        for stages already queued or running: the workers check the ledger and the claims)."""
        for video_id in self._recover():
            with suppress(NotFoundError):
                self.enqueue(video_id)

    def stop(self, timeout: float = 10.0) -> None:
        self.broker.close()


def _producer_only(video_id: str, stage: str, piece: int | None = None) -> None:
    raise RuntimeError("this process only sends stages: `heimdex worker` runs them")


class DeadLetters(Middleware):
    """After Dramatiq's Retries gave a message up: the video is failed, where users look."""

    def __init__(self, store, channel: Channel | None = None) -> None:
        self.store = store
        self.channel = channel

    def after_process_message(self, broker, message, *, result=None, exception=None):
        if exception is None or not message.failed:
            return
        video_id, stage = message.args[:2]  # a piece's message has its number third
        attempts = message.options.get("retries", 0)
        error = f"{DEAD_LETTER_PREFIX} after {attempts} attempts: {exception}"
        try:
            self.store.set_video_state(video_id, VideoState.FAILED, error)
        except Exception as exc:  # deleted meanwhile, or the store is what fails
            log.warning("job.state_not_saved", video_id=video_id, error=f"{type(exc).__name__}: {exc}")
        log.error("job.dead_letter", video_id=video_id, stage=stage, attempts=attempts, error=str(exception))
        if self.channel is not None:
            StageReporter(self.channel, video_id).quietly(self.channel.clear, video_id)
            StageReporter(self.channel, video_id).quietly(self.channel.record_job, "failed")


class MessageMetrics(Middleware):
    """Dramatiq's message metrics (those of its Prometheus middleware: messages, errors, retries,
    rejects, durations per queue and actor), counted on the side channel for every worker, so that
    the API's /metrics shows them for the whole fleet (a per-process exporter could not)."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self._started: dict[str, float] = {}
        self._lock = threading.Lock()

    def before_process_message(self, broker, message):
        with self._lock:
            self._started[message.message_id] = time.monotonic()

    def after_process_message(self, broker, message, *, result=None, exception=None):
        with self._lock:
            started = self._started.pop(message.message_id, None)
        outcome = "ok" if exception is None else "reject" if message.failed else "retry"
        ms = (time.monotonic() - started) * 1000 if started is not None else None
        with suppress(Exception):  # metrics are a courtesy
            self.channel.record_message(message.queue_name, message.actor_name, outcome, ms)


class StageRetry(Exception):
    """A stage failed transiently: Dramatiq retries the message later."""


class _Over(Exception):
    """Nothing follows the message: the claim was lost, the video deleted or failed."""


class StageHandler:
    """What a worker's actors run for one message `(video_id, stage)`."""

    def __init__(self, heimdex, queue: StageQueue, worker_id: str, lease_s: float, channel) -> None:
        self.heimdex = heimdex
        self.store = heimdex.store
        self.queue = queue
        self.worker_id = worker_id
        self.lease_s = lease_s
        self.channel = channel
        self.held: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def handle(self, video_id: str, stage: str, piece: int | None = None) -> None:
        try:
            self._handle(video_id, stage, piece)
        except _Over:  # the claim was lost, or the video deleted or failed: nothing follows
            return

    def _handle(self, video_id: str, stage: str, piece: int | None) -> None:
        try:
            video = self.store.job_video(video_id)
        except NotFoundError:
            log.info("stage.dropped", video_id=video_id, stage=stage, reason="deleted")
            return
        if video.state == VideoState.FAILED:
            log.info("stage.dropped", video_id=video_id, stage=stage, reason="failed")
            return
        done = self._done(video_id)
        if stage in done:  # delivered twice, or the worker died between done and sending the next
            self._send_ready(video_id, stage)
            log.info("stage.duplicate", video_id=video_id, stage=stage, piece=piece)
            return
        if any(d not in done for d in GRAPH.dependencies[stage]):
            log.info("stage.not_ready", video_id=video_id, stage=stage)  # its last dependency sends it
            return
        if piece is not None:
            self._piece(video, stage, piece)
        else:
            with self._claimed(
                video_id, stage, lambda: self.queue.send(video_id, stage, self.lease_s)
            ) as mine:
                if mine:
                    self._run(video, stage)
        if GRAPH[stage].fanout is not None:  # after the claim is given up: see _join_when_complete
            self._join_when_complete(video, stage)

    @contextmanager
    def _claimed(self, video_id: str, key: str, resend: Callable[[], None]) -> Iterator[bool]:
        """Hold the ledger row `key` (a stage, or a piece of one) while the block runs; False when
        another worker holds it. Then the message is sent again for once its lease could be over, in
        case that worker loses its claim and gives the work up (a no-op if it finishes)."""
        if not self.store.claim_stage(video_id, key, self.worker_id, self.lease_s):
            log.info("stage.busy", video_id=video_id, stage=key, worker_id=self.worker_id)
            resend()
            yield False
            return
        with self._lock:
            self.held.add((video_id, key))
        try:
            yield True
        finally:
            with self._lock:
                self.held.discard((video_id, key))
            with suppress(Exception):
                self.store.release_stage_claim(video_id, key, self.worker_id)

    def _runner(self, video, key: str):
        """A runner that goes on only while this worker holds `key`."""
        reporter = StageReporter(self.channel, video.id)
        return self.heimdex.runner(
            on_event=reporter.on_event,
            keep_going=lambda: self._still_owner(video.id, key),
            claim=self.worker_id,  # an outcome is recorded only while this worker still holds its row
        )

    def _working(self, video) -> None:
        if video.state == VideoState.QUEUED:  # a new video, or one whose stage waits for a retry
            self.store.set_video_state(video.id, VideoState.PROCESSING)

    def _run(self, video, stage: str) -> None:
        self._working(video)
        runner = self._runner(video, stage)
        if stage in runner.fanouts:  # long audio: pieces on any workers, joined when all are done
            pieces = self._attempt(video.id, stage, lambda: runner.plan_pieces(video.id, stage))
            if pieces > 1:
                self._send_pieces(video.id, stage, pieces)
                return
        log.info("stage.started", video_id=video.id, stage=stage, worker_id=self.worker_id)
        self._attempt(video.id, stage, lambda: runner.run_stage(video.id, stage, attempts=1))
        self._finished(video.id, stage, runner)

    def _piece(self, video, stage: str, piece: int) -> None:
        key = piece_key(stage, piece)
        if any(
            r.stage == key and r.state == StageState.DONE for r in self.store.piece_records(video.id, stage)
        ):
            log.info("piece.duplicate", video_id=video.id, stage=stage, piece=piece)  # the join may be left
            return
        resend = partial(self.queue.send, video.id, stage, self.lease_s, piece)
        with self._claimed(video.id, key, resend) as mine:
            if not mine:
                return
            runner = self._runner(video, key)
            if piece >= runner.pieces(video.id, stage):  # from before a reprocess: its plan is gone
                log.info("piece.dropped", video_id=video.id, stage=stage, piece=piece, reason="no plan")
                return
            self._working(video)
            log.info("piece.started", video_id=video.id, stage=stage, piece=piece, worker_id=self.worker_id)
            self._attempt(video.id, stage, lambda: runner.run_piece(video.id, stage, piece))
            log.info("piece.finished", video_id=video.id, stage=stage, piece=piece, worker_id=self.worker_id)

    def _send_pieces(self, video_id: str, stage: str, pieces: int) -> None:
        """One message a piece that is neither done nor held (all of them, after the plan is made)."""
        self.store.add_pieces(video_id, stage, pieces)  # so that stage lists count them from now
        records = {r.stage: r for r in self.store.piece_records(video_id, stage)}
        for piece in range(pieces):
            record = records[piece_key(stage, piece)]
            if record.state != StageState.DONE and record.claimed_by is None:
                self.queue.send(video_id, stage, piece=piece)

    def _join_when_complete(self, video, stage: str) -> None:
        """Once every piece is done, join them and finish the stage. Asked after each piece (and the
        plan) gave its claim up, so that of two pieces ending at once at least one sees both done;
        the stage's claim lets one of them join, and a worker killed mid-join leaves its message to
        be delivered again, which asks again. A join finding the stage done is a no-op."""
        video_id = video.id
        runner = self._runner(video, stage)
        if stage not in runner.fanouts:
            return
        pieces = runner.pieces(video_id, stage)
        done = {r.stage for r in self.store.piece_records(video_id, stage) if r.state == StageState.DONE}
        if not pieces or any(piece_key(stage, k) not in done for k in range(pieces)):
            return
        if stage in self._done(video_id):
            return
        # Held: another worker joins them, or still sends the pieces and asks again when it lets go;
        # the message sent for after the lease covers a joiner killed before it could ask again.
        with self._claimed(video_id, stage, partial(self.queue.send, video_id, stage, self.lease_s)) as mine:
            if not mine:
                return
            if stage in self._done(video_id):
                return
            self._attempt(video_id, stage, lambda: runner.join_pieces(video_id, stage))
            log.info("stage.joined", video_id=video_id, stage=stage, pieces=pieces, worker_id=self.worker_id)
        self._finished(video_id, stage, runner)

    def _attempt(self, video_id: str, stage: str, call: Callable[[], T]) -> T:
        """Run `call` (a stage, or the plan, a piece or the join of one) and return what it returns;
        its failure becomes the video's outcome or a retry. _Over when nothing follows: the claim was
        lost, the video deleted (now or while it ran) or failed by its input."""
        from heimdex.pipeline.runner import StageFailed

        try:
            result = call()
        except RunAbandoned:
            if not self._deleted(video_id):  # the claim went with the video's rows: drop what it wrote
                log.warning("job.abandoned", video_id=video_id, stage=stage, worker_id=self.worker_id)
                self._tidy_after_abandon(video_id)
            raise _Over from None
        except StageFailed as failure:
            if self._deleted(video_id):
                raise _Over from None
            if not failure.retryable:  # the input is at fault: trying again cannot help
                self.store.set_video_state(video_id, VideoState.FAILED, str(failure))
                self._video_over(video_id, "failed")
                log.warning("job.failed", video_id=video_id, stage=stage, error=str(failure))
                raise _Over from None
            self._will_retry(video_id, str(failure))
            raise StageRetry(str(failure)) from failure
        except Exception as exc:
            if self._deleted(video_id):
                raise _Over from None
            self._will_retry(video_id, f"{type(exc).__name__}: {exc}")
            raise
        if self._deleted(video_id):  # deleted while it ran: nothing follows
            raise _Over
        return result

    def _finished(self, video_id: str, stage: str, runner) -> None:
        log.info("stage.finished", video_id=video_id, stage=stage, worker_id=self.worker_id)
        if stage == STAGES[-1]:
            runner.finish(video_id)
            self._video_over(video_id, "indexed")
            log.info("job.done", video_id=video_id, worker_id=self.worker_id)
            return
        self._send_ready(video_id, stage)

    def _done(self, video_id: str) -> set[str]:
        return {r.stage for r in self.store.stage_records(video_id) if r.state == StageState.DONE}

    def _send_ready(self, video_id: str, finished: str) -> None:
        """Send the stages waiting for `finished` that are ready now. Read after this stage was
        recorded done: of two branches ending at once, at least one sees the other done."""
        records = {r.stage: r for r in self.store.stage_records(video_id)}
        done = {s for s, r in records.items() if r.state == StageState.DONE}
        for stage in GRAPH.dependents(finished):
            held = records.get(stage) is not None and records[stage].claimed_by is not None
            if stage not in done and not held and all(d in done for d in GRAPH.dependencies[stage]):
                self.queue.send(video_id, stage)  # a stage someone holds has its message already

    def _will_retry(self, video_id: str, error: str) -> None:
        message = CurrentMessage.get_current_message()
        retries = message.options.get("retries", 0) if message is not None else 0
        if retries >= self.queue.max_retries:
            return  # the last attempt: DeadLetters writes the outcome
        with suppress(Exception):
            self.store.set_video_state(
                video_id, VideoState.QUEUED, f"retry {retries + 1}/{self.queue.max_retries}: {error}"
            )
        log.warning("stage.retry", video_id=video_id, attempt=retries + 1, error=error)

    def _video_over(self, video_id: str, state: str) -> None:
        if self.channel is not None:
            StageReporter(self.channel, video_id).quietly(self.channel.clear, video_id)
            StageReporter(self.channel, video_id).quietly(self.channel.record_job, state)

    def _still_owner(self, video_id: str, stage: str) -> bool:
        try:
            return self.store.renew_stage_claim(video_id, stage, self.worker_id, self.lease_s)
        except Exception:  # the store away: the stage's outcome will fail to record and be retried
            return True

    def _deleted(self, video_id: str) -> bool:
        try:
            self.store.job_video(video_id)
        except NotFoundError:
            # Deleted while the stage ran: it may have written blobs after the API removed the video's.
            with suppress(Exception):
                self.heimdex.blobs.delete_prefix(video_prefix(video_id))
            log.info("stage.dropped", video_id=video_id, reason="deleted")
            return True
        except Exception:
            return False
        return False

    def _tidy_after_abandon(self, video_id: str) -> None:
        """The stage this worker ran while it stalled may have written artifacts after the new owner
        committed and cleared them: once the video is over and nobody holds it, drop them."""
        try:
            video = self.store.job_video(video_id)
            if video.claimed_by is None and video.state in (VideoState.INDEXED, VideoState.FAILED):
                Artifacts(self.heimdex.blobs, video_id).clear()
        except Exception as exc:
            log.warning("job.tidy_failed", video_id=video_id, error=f"{type(exc).__name__}: {exc}")

    def renew_all(self) -> None:
        with self._lock:
            held = list(self.held)
        for video_id, stage in held:
            if not self.store.renew_stage_claim(video_id, stage, self.worker_id, self.lease_s):
                log.error("claim.lost", video_id=video_id, stage=stage, worker_id=self.worker_id)

    def release_all(self) -> None:
        with self._lock:
            held = list(self.held)
        for video_id, stage in held:
            with suppress(Exception):
                self.store.release_stage_claim(video_id, stage, self.worker_id)
            log.warning("stage.released", video_id=video_id, stage=stage, worker_id=self.worker_id)


class StageWorker:
    """What `heimdex worker` runs: a Dramatiq worker on some queues, and a heartbeat thread that
    keeps the claims of the stages it runs alive."""

    def __init__(
        self,
        heimdex,
        settings,
        queues: list[str] | None = None,
        concurrency: int = 1,
        worker_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.worker_id = worker_id or new_worker_id()
        self.queues = queues or list(QUEUES)
        self.concurrency = max(1, concurrency)
        self.handler: StageHandler | None = None
        self.queue = StageQueue(
            settings, heimdex.store, run=lambda v, s, p=None: self.handler.handle(v, s, p)
        )
        self.channel = progress_channel(settings)
        self.queue.broker.add_middleware(DeadLetters(heimdex.store, self.channel), before=Retries)
        if self.channel is not None:
            self.queue.broker.add_middleware(MessageMetrics(self.channel), before=Retries)
        self.handler = StageHandler(heimdex, self.queue, self.worker_id, settings.queue_lease_s, self.channel)
        self.reembed = self._reembed(heimdex)
        self.draining = threading.Event()
        self._stopped = threading.Event()
        self._worker: dramatiq.Worker | None = None

    def _reembed(self, heimdex) -> LibraryReembed | None:
        """A worker of the vision queue holds the image models: with a CLIP-style model configured it
        re-embeds the frames that lack its vectors (after a model change), one worker at a time."""
        if "vision" not in self.queues or not heimdex.models.clip_configured:
            return None
        return LibraryReembed(heimdex, self.worker_id, self.settings.queue_lease_s)

    def run(self) -> None:
        """Work until `draining` is set; then finish the stages in hand and stop."""
        worker = self._worker = dramatiq.Worker(
            self.queue.broker,
            queues={queue_name(q) for q in self.queues},
            worker_threads=self.concurrency,
            worker_timeout=100,  # ms: an idle consumer's longest wait between fetches (idle_fetch.py)
        )
        worker.queue_prefetch = self.concurrency  # what one worker holds, others may take
        # ... and none while its threads are busy; media's first when one comes free
        IdleFetch(self.concurrency, _fetch_rank).install(self.queue.broker)
        beat = threading.Thread(target=self._heartbeat, name="claims", daemon=True)
        beat.start()
        worker.start()
        log.info("worker.started", worker_id=self.worker_id, queues=self.queues, concurrency=self.concurrency)
        if self.reembed is not None:
            self.reembed.start()
        self.draining.wait()
        if self.reembed is not None:
            self.reembed.stop()  # at the end of its chunk: the next look, here or elsewhere, goes on
        worker.stop(timeout=24 * 3600 * 1000)
        self._stopped.set()
        self.queue.broker.close()
        if self.channel is not None:
            self.channel.close()
        log.info("worker.stopped", worker_id=self.worker_id)

    def _heartbeat(self) -> None:
        interval = max(0.2, self.settings.queue_lease_s / 3)
        while not self._stopped.wait(interval):
            try:
                self.handler.renew_all()
            except Exception as exc:
                log.warning("worker.heartbeat_error", error=f"{type(exc).__name__}: {exc}")
