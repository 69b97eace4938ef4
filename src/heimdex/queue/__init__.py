"""Indexing jobs: a narrow queue interface, the worker that runs them, and live progress."""

from heimdex.queue.base import JobQueue, Progress, VideoProgress, Worker, open_queue

__all__ = ["JobQueue", "Progress", "VideoProgress", "Worker", "open_queue"]
