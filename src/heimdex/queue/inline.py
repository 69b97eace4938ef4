"""The embedded queue: a thread in the server process works through an in-memory queue.

Jobs are not persisted here: the store is the record. On start, every video that a previous run
left queued or processing (a crash, a restart) is put back in line, and the pipeline resumes from
its last finished stage.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from heimdex.logging import get_logger
from heimdex.queue.base import JobQueue
from heimdex.queue.worker import Worker

log = get_logger(__name__)
_STOP = object()


class InlineQueue(JobQueue):
    def __init__(self, worker: Worker, recover: Callable[[], list[str]]) -> None:
        self.worker = worker
        self._recover = recover
        self._queue: queue.Queue = queue.Queue()
        self._pending: set[str] = set()  # an id waits at most once
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def enqueue(self, video_id: str) -> None:
        with self._lock:
            if video_id in self._pending:
                return
            self._pending.add(video_id)
        self.worker.progress.queued(video_id)
        self._queue.put(video_id)

    def depth(self) -> int:
        with self._lock:
            return len(self._pending)

    def start(self) -> None:
        if self._thread is not None:
            return
        for video_id in self._recover():
            log.info("job.recovered", video_id=video_id)
            self.enqueue(video_id)
        self._thread = threading.Thread(target=self._run, name="heimdex-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        self._stopping.set()  # jobs still waiting stay queued in the store and are recovered next start
        self._queue.put(_STOP)
        self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP or self._stopping.is_set():
                return
            with self._lock:
                self._pending.discard(item)
            self.worker.handle(item)
