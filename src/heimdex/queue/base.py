"""The job queue interface, and `open_queue` to pick an implementation by URL.

A job is a video id (server mode sends its stages, queue/broker.py): everything else (stages done,
artifacts, errors) lives in the store's job ledger, so a job can be taken again after a crash and
the pipeline resumes where it stopped. The in-process worker is queue/worker.py; live progress is
queue/progress.py.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from heimdex.queue.worker import Worker

# Starts the error of a video whose stage exhausted its retries (server mode, queue/broker.py).
DEAD_LETTER_PREFIX = "dead-letter"


class JobQueue(ABC):
    """Where videos wait to be indexed: inline (in-process), broker (Dramatiq, `heimdex worker`)."""

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


REMOTE_SCHEMES = ("redis://", "rediss://", "unix://", "amqp://", "amqps://")


def open_queue(settings, worker: Worker, recover: Callable[[], list[str]], store=None) -> JobQueue:
    """The queue for settings.queue_url; `recover` lists videos a previous run left queued or processing."""
    url = settings.queue_url
    if url.startswith("inline://"):
        from heimdex.queue.inline import InlineQueue

        return InlineQueue(worker, recover)
    if url.startswith(REMOTE_SCHEMES):
        from heimdex.queue.broker import StageQueue  # dramatiq: a server-mode package

        return StageQueue(settings, store, recover)  # sends only: `heimdex worker` processes consume
    raise ValueError(
        f"unsupported queue URL {url!r}: use inline://, redis://host:port/db or amqp://host/vhost"
    )


def is_remote(url: str) -> bool:
    """Whether jobs are run by separate `heimdex worker` processes rather than in this one."""
    return not url.startswith("inline://")
