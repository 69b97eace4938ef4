"""The two deployments the API tests run on, with real servers and no mocks.

- "embedded": SQLite, blobs as local files, the in-process worker (what `heimdex serve` does alone);
- "server": PostgreSQL + pgvector, S3 (SeaweedFS), Redis as the Dramatiq broker, and a `heimdex
  worker` running the stages. The worker is the real StageWorker in a thread of the test process
  rather than a subprocess, so that it shares the models the session has already loaded (a
  subprocess would load them again).

The servers come from tests/services.py. Redis databases used here: 12 for the session's server
(tests/api/conftest.py), 11 for the servers single tests start; 13 and 14 belong to tests/queue and
tests/e2e. Each is flushed before and after use.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from heimdex.blobs import BlobStore
from heimdex.blobs.local import LocalBlobStore
from heimdex.blobs.s3 import S3BlobStore
from heimdex.domain import VideoState
from heimdex.errors import NotFoundError
from heimdex.queue.broker import StageQueue, StageWorker
from heimdex.service import Heimdex
from heimdex.settings import Settings
from tests import services
from tests.api.live import LiveServer, shared_models

BACKENDS = ["embedded", "server"]
SESSION_REDIS_DB = 12
TEST_REDIS_DB = 11
_WORKER_STOP_S = 120.0  # draining finishes the job in hand first: a video takes seconds to index


@contextmanager
def fresh_redis(db: int) -> Iterator[str]:
    """The URL of a Redis database emptied before and after use (no job of an earlier run leaks in)."""
    url = services.redis_url(db)
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


@contextmanager
def server_settings(redis_db: int) -> Iterator[dict[str, str]]:
    """Settings fields of a fresh server-mode deployment: its own database, bucket and Redis database."""
    with (
        services.fresh_postgres() as database,
        services.fresh_bucket() as bucket,
        fresh_redis(redis_db) as queue,
    ):
        yield {
            "database_url": database,
            "storage_url": f"s3://{bucket}",
            "queue_url": queue,
            **services.s3_endpoint().settings_fields(),
        }


class ThreadWorker:
    """What `heimdex worker` runs (see heimdex.cli.worker), in a thread: StageWorker on its own
    Heimdex (its own store connections and blob client, as a separate process would have)."""

    def __init__(self, settings: Settings) -> None:
        self.heimdex = Heimdex(settings, models=shared_models())
        self.runner = StageWorker(self.heimdex, settings)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="heimdex-worker", daemon=True)

    def _run(self) -> None:
        try:
            self.runner.run()
        except BaseException as exc:  # reported at teardown: a dead worker would otherwise look idle
            self.error = exc

    def __enter__(self) -> ThreadWorker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.runner.draining.set()  # what SIGTERM does: take no new job, finish the current one
        self._thread.join(_WORKER_STOP_S)
        stuck = self._thread.is_alive()
        if not stuck:  # a stuck thread may still use the store: leave it to die with the process
            self.heimdex.close()
        if stuck:
            raise RuntimeError(f"the worker did not stop within {_WORKER_STOP_S:.0f} s")
        if self.error is not None:
            raise RuntimeError(f"the worker died: {self.error!r}") from self.error


@contextmanager
def live_server(backend: str, home: Path, *, redis_db: int, **settings: object) -> Iterator[LiveServer]:
    """A running LiveServer on `backend`; on "server" with a worker that indexes what it queues."""
    if backend == "embedded":
        with LiveServer(home, **settings) as live:
            yield live
        return
    if backend != "server":
        raise ValueError(f"unknown backend {backend!r}: use one of {BACKENDS}")
    with (
        server_settings(redis_db) as fields,
        LiveServer(home, **fields, **settings) as live,
        ThreadWorker(live.settings),
    ):
        yield live


def job_over(live: LiveServer, video_id: str) -> bool:
    """Whether the video's job is over: no worker runs it (nor, on the server backend, waits to),
    and the deletion it may have held back is done."""
    queue = live.ctx.queue
    if isinstance(queue, StageQueue):
        # Over: indexed or failed (or deleted), no stage held by a worker, no message waiting.
        store = live.ctx.heimdex.store
        try:
            video = store.job_video(video_id)
        except NotFoundError:
            return queue.depth() == 0
        held = any(r.claimed_by for r in store.stage_records(video_id))
        over = video.state in (VideoState.INDEXED, VideoState.FAILED)
        return over and not held and queue.depth() == 0
    return live.ctx.worker.current != video_id and not live.ctx.deferred.deletes.get(video_id)


def blob_keys(blobs: BlobStore, prefix: str) -> list[str]:
    """Everything stored under `prefix` (a folder-like key ending in '/').

    The BlobStore interface has no listing (the product never needs one), so this asks each backend's
    storage directly. For files the folder itself counts too: deleting a video must not leave even
    an empty directory behind.
    """
    if isinstance(blobs, LocalBlobStore):
        folder = blobs.path(prefix)
        if not folder.exists():
            return []
        return sorted(p.relative_to(blobs.root).as_posix() for p in [folder, *folder.rglob("*")])
    if isinstance(blobs, S3BlobStore):  # the listing delete_prefix uses
        names = blobs._list(blobs.object_key(prefix, folder=True))
        return sorted(name.removeprefix(blobs.prefix) for name in names)
    raise TypeError(f"no way to list {blobs!r}")
