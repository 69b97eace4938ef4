"""A few Prometheus metrics, rendered in the text exposition format (no client library needed)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
STAGE_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)


class Histogram:
    def __init__(self, name: str, help_text: str, buckets: Sequence[float], label: str | None = None) -> None:
        self.name, self.help, self.buckets, self.label = name, help_text, tuple(buckets), label
        self._series: dict[
            str, tuple[list[int], list[float]]
        ] = {}  # label value -> (bucket counts, [sum, count])
        self._lock = threading.Lock()

    def observe(self, value: float, label_value: str = "") -> None:
        with self._lock:
            counts, totals = self._series.setdefault(label_value, ([0] * len(self.buckets), [0.0, 0.0]))
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    counts[i] += 1
            totals[0] += value
            totals[1] += 1

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        with self._lock:
            for value, (counts, (total, count)) in sorted(self._series.items()):
                base = f'{self.label}="{value}"' if self.label else ""
                sep = "," if base else ""
                for bound, n in zip(self.buckets, counts, strict=True):
                    lines.append(f'{self.name}_bucket{{{base}{sep}le="{bound}"}} {n}')
                lines.append(f'{self.name}_bucket{{{base}{sep}le="+Inf"}} {int(count)}')
                labels = f"{{{base}}}" if base else ""
                lines.append(f"{self.name}_sum{labels} {total:.6f}")
                lines.append(f"{self.name}_count{labels} {int(count)}")
        return lines


class Counter:
    def __init__(self, name: str, help_text: str, label: str) -> None:
        self.name, self.help, self.label = name, help_text, label
        self._values: dict[str, int] = {}
        self._lock = threading.Lock()

    def inc(self, label_value: str) -> None:
        with self._lock:
            self._values[label_value] = self._values.get(label_value, 0) + 1

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        with self._lock:
            lines += [f'{self.name}{{{self.label}="{k}"}} {v}' for k, v in sorted(self._values.items())]
        return lines


class Metrics:
    def __init__(self, queue_depth: Callable[[], int]) -> None:
        self._queue_depth = queue_depth
        self.search_latency = Histogram(
            "heimdex_search_latency_seconds", "Search request latency.", LATENCY_BUCKETS
        )
        self.stage_duration = Histogram(
            "heimdex_stage_duration_seconds", "Pipeline stage durations.", STAGE_BUCKETS, label="stage"
        )
        self.jobs = Counter("heimdex_jobs_total", "Indexing jobs finished, by final state.", "state")
        self.http = Counter("heimdex_http_responses_total", "HTTP responses by status class.", "status")

    def render(self) -> str:
        lines = [
            "# HELP heimdex_queue_depth Videos waiting to be indexed.",
            "# TYPE heimdex_queue_depth gauge",
            f"heimdex_queue_depth {self._queue_depth()}",
        ]
        for metric in (self.search_latency, self.stage_duration, self.jobs, self.http):
            lines += metric.render()
        return "\n".join(lines) + "\n"
