"""A sliding-window rate limiter kept in memory (one server process; Redis can take over later)."""

from __future__ import annotations

import threading
import time
from collections import deque

from heimdex.errors import HeimdexError


class RateLimited(HeimdexError):
    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimiter:
    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, what: str = "requests") -> None:
        """Count one event for `key`; raise RateLimited when the window already holds `limit` of them."""
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window_s:
                hits.popleft()
            if len(hits) >= self.limit:
                retry = hits[0] + self.window_s - now
                raise RateLimited(f"too many {what}; try again in {int(retry) + 1} s", retry)
            hits.append(now)
            if len(self._hits) > 10_000:  # forget idle keys so memory stays bounded
                self._hits = {k: v for k, v in self._hits.items() if v and v[-1] > now - self.window_s}

    def reset(self, key: str) -> None:
        with self._lock:
            self._hits.pop(key, None)
