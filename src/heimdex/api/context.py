"""What the routers share: the application, accounts, the job queue, progress and metrics."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from heimdex.accounts import Accounts
from heimdex.accounts.ratelimit import RateLimiter
from heimdex.api.metrics import Metrics
from heimdex.domain import VideoState
from heimdex.queue import JobQueue, Worker
from heimdex.queue.progress import ProgressBoard
from heimdex.reels import Reels
from heimdex.reembed import LibraryReembed
from heimdex.service import Heimdex
from heimdex.settings import Settings


@dataclass
class Deferred:
    """Deletions asked for while the worker is indexing the same video: done when the job ends."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    deletes: dict[str, Callable[[], None]] = field(default_factory=dict)


@dataclass
class AppContext:
    settings: Settings
    heimdex: Heimdex
    accounts: Accounts
    queue: JobQueue
    worker: Worker
    progress: ProgressBoard
    metrics: Metrics
    upload_limiter: RateLimiter | None
    reels: Reels
    reembed: LibraryReembed
    deferred: Deferred = field(default_factory=Deferred)
    started_at: float = field(default_factory=time.time)

    def recover_jobs(self) -> list[str]:
        """Videos of any account left queued or processing by an earlier run, oldest first."""
        found = []
        for user in self.accounts.users():
            for state in (VideoState.PROCESSING, VideoState.QUEUED):
                found += self.heimdex.videos(user.id, state)
        return [v.id for v in sorted(found, key=lambda v: v.created_at)]
