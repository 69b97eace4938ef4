"""Progress events the runner emits. Kept free of heavy imports: the CLI and API import it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from heimdex.domain import StageState


@dataclass(frozen=True)
class StageEvent:
    video_id: str
    stage: str
    state: StageState
    fraction: float = 0.0  # progress within the stage, 0..1
    error: str | None = None
    duration_s: float | None = None


EventFn = Callable[[StageEvent], None]


class RunAbandoned(Exception):
    """A run stopped because its `keep_going` check said so: another worker owns the video now."""


# Histogram buckets (seconds) for stage durations in /metrics; workers in other processes count into
# the same buckets on Redis.
STAGE_BUCKETS: tuple[float, ...] = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
