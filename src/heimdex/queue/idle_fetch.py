"""A Redis worker fetches a stage message only while it has a thread free to run it.

Dramatiq gives each queue a consumer of its own, each holding up to its prefetch of messages. A
worker busy with a long stage of the media queue would still take one message of every other queue
it consumes (the plan of a video's speech, a piece of it) and keep it until that stage ends, while
another worker sat idle: on the pinned 11-minute benchmark the second worker waited 22 s for the
speech plan that the first held behind scene detection (docs/PERFORMANCE.md). So a worker's queue
consumers fetch only while the messages it holds are fewer than its threads; its delay-queue
consumers (retries, messages sent for later) are left as they are.

A free worker also takes its queues in an order (FIRST_ASKED): a consumer fetches only while no
queue before its own has messages ready. Media first (decoding, which every later stage of a video
waits for), then vision and index, and speech last, whose pieces are many, long and interchangeable,
so that taking one later delays nothing else. Without it a worker done with scene detection took a
speech piece before the frame sampling that four vision stages waited on, and the other worker sat
idle at the end of the benchmark.

Redis only: its consumers ask for messages, so not asking is enough. A busy consumer still calls
the broker about once a second with nothing to fetch, which keeps the worker's heartbeat fresh
(Redis's maintenance would otherwise take it for dead and requeue the message it is running).
RabbitMQ pushes messages within its QoS (one unacknowledged a consumer) whether asked or not, and
its connections need servicing, so there a busy worker may still hold one message of each queue.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import redis
from dramatiq.broker import Consumer, MessageProxy
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import q_name

BUSY_POLL_S = 0.05  # how often a consumer that may not fetch looks again
FIRST_ASKED = ("media", "vision", "index", "asr")
BEAT_S = 1.0  # a busy consumer's empty fetch, which is the worker's heartbeat in Redis


class IdleFetch:
    """How many messages this worker's queue consumers hold (fetched, not yet acknowledged), against
    its threads."""

    def __init__(self, threads: int, rank: Callable[[str], int]) -> None:
        self.threads = threads
        self.rank = rank  # a broker queue's place in FIRST_ASKED
        self._held = 0
        self._lock = threading.Lock()
        self._ranked: list[tuple[int, str]] = []  # (rank, Redis list of ready messages) of each queue
        self._client = None

    def install(self, broker) -> None:
        """Gate the queue consumers `broker` makes from now on (a no-op unless it is Redis)."""
        if not isinstance(broker, RedisBroker):
            return
        consume = broker.consume
        self._client = broker.client

        def gated_consume(queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Consumer:
            consumer = consume(queue_name, prefetch=prefetch, timeout=timeout)
            if q_name(queue_name) != queue_name:  # a delay queue
                return consumer
            rank = self.rank(queue_name)
            with self._lock:
                self._ranked = sorted({*self._ranked, (rank, f"{broker.namespace}:{queue_name}")})
            beat = lambda: broker.do_fetch(queue_name, 0)  # noqa: E731
            return _GatedConsumer(consumer, self, rank, beat)

        broker.consume = gated_consume

    def free(self, rank: int = 0) -> bool:
        """Whether a consumer of this rank may fetch: a thread is free, and no queue this worker takes
        before it has a message ready."""
        with self._lock:
            if self._held >= self.threads:
                return False
            before = [key for r, key in self._ranked if r < rank]
        if not before:
            return True
        pipe = self._client.pipeline(transaction=False)
        for key in before:
            pipe.llen(key)
        try:
            return not any(pipe.execute())
        except redis.RedisError:
            return True  # the consumer's own fetch meets the broken connection and reconnects

    def took(self) -> None:
        with self._lock:
            self._held += 1

    def done(self) -> None:
        with self._lock:
            self._held = max(0, self._held - 1)


class _GatedConsumer(Consumer):
    def __init__(self, inner: Consumer, gate: IdleFetch, rank: int, beat: Callable[[], object]) -> None:
        self.inner = inner
        self.gate = gate
        self.rank = rank
        self.beat = beat
        self.beaten = time.monotonic()

    def __next__(self) -> MessageProxy | None:
        if not self.gate.free(self.rank):  # busy, or an earlier queue has work
            time.sleep(BUSY_POLL_S)
            if time.monotonic() - self.beaten >= BEAT_S:
                self.beat()
                self.beaten = time.monotonic()
            return None
        message = next(self.inner)
        self.beaten = time.monotonic()
        if message is not None:
            self.gate.took()
        return message

    def ack(self, message: MessageProxy) -> None:
        try:
            self.inner.ack(message)
        finally:
            self.gate.done()

    def nack(self, message: MessageProxy) -> None:
        try:
            self.inner.nack(message)
        finally:
            self.gate.done()

    def requeue(self, messages) -> None:
        self.inner.requeue(messages)

    def close(self) -> None:
        self.inner.close()
