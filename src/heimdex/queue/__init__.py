"""Indexing jobs: a narrow queue interface (base.py), the in-process worker that runs them
(worker.py), and live progress (progress.py)."""

from heimdex.queue.base import JobQueue, open_queue
from heimdex.queue.progress import Progress, VideoProgress
from heimdex.queue.worker import Worker

__all__ = ["JobQueue", "Progress", "VideoProgress", "Worker", "open_queue"]
