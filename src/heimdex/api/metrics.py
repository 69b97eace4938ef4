"""A few Prometheus metrics, rendered in the text exposition format (no client library needed)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from heimdex.pipeline.events import STAGE_BUCKETS

# One histogram series: (count per bucket, [sum, count]); Prometheus buckets are cumulative.
Series = tuple[list[int], list[float]]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Histogram:
    def __init__(self, name: str, help_text: str, buckets: Sequence[float], label: str | None = None) -> None:
        self.name, self.help, self.buckets, self.label = name, help_text, tuple(buckets), label
        self._series: dict[str, Series] = {}  # label value -> series
        self._lock = threading.Lock()

    def observe(self, value: float, label_value: str = "") -> None:
        with self._lock:
            counts, totals = self._series.setdefault(label_value, ([0] * len(self.buckets), [0.0, 0.0]))
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    counts[i] += 1
            totals[0] += value
            totals[1] += 1

    def render(self, series: dict[str, Series] | None = None) -> list[str]:
        """The exposition lines, of this histogram's observations or of `series` counted elsewhere."""
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        with self._lock:
            shown = self._series if series is None else series
            for value, (counts, (total, count)) in sorted(shown.items()):
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

    def render(self, values: dict[str, int] | None = None) -> list[str]:
        """The exposition lines, of this counter or of `values` counted elsewhere."""
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        with self._lock:
            items = sorted((self._values if values is None else values).items())
            lines += [f'{self.name}{{{self.label}="{k}"}} {v}' for k, v in items]
        return lines


class WorkerMetrics(Protocol):
    """Stage timings and job outcomes counted by workers in other processes (queue/channel.py)."""

    def stage_series(self) -> dict[str, Series]: ...

    def job_counts(self) -> dict[str, int]: ...


class Metrics:
    """The API's metrics. With remote workers, stage timings and job outcomes come from them."""

    def __init__(self, queue_depth: Callable[[], int], workers: WorkerMetrics | None = None) -> None:
        self._queue_depth = queue_depth
        self.workers = workers
        self.broker = None  # server mode: the Dramatiq queues (StageQueue.counts)
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
            "# HELP heimdex_queue_depth Jobs waiting (videos in process; stage messages in server mode).",
            "# TYPE heimdex_queue_depth gauge",
            f"heimdex_queue_depth {self._queue_depth()}",
        ]
        lines += self.search_latency.render()
        if self.workers is None:
            lines += self.stage_duration.render() + self.jobs.render()
        else:
            lines += self.stage_duration.render(self._from_workers(self.workers.stage_series))
            lines += self.jobs.render(self._from_workers(self.workers.job_counts))
        lines += self.http.render()
        if self.broker is not None:
            lines += self._broker_lines()
        if self.workers is not None and hasattr(self.workers, "message_metrics"):
            lines += _dramatiq_lines(self._from_workers(self.workers.message_metrics))
        return "\n".join(lines) + "\n"

    def _broker_lines(self) -> list[str]:
        """Dramatiq's queues as the broker counts them: stage messages ready, delayed (a retry's
        backoff) and dead-lettered, per queue."""
        try:
            counts = self.broker.counts()
        except Exception:  # the broker away: /metrics still answers
            return []
        lines = [
            "# HELP dramatiq_queue_messages Stage messages in the broker, by queue and kind.",
            "# TYPE dramatiq_queue_messages gauge",
        ]
        for queue, values in sorted(counts.items()):
            for kind, n in zip(("ready", "delayed", "dead"), values, strict=True):
                lines.append(f'dramatiq_queue_messages{{queue="{queue}",kind="{kind}"}} {n}')
        return lines

    @staticmethod
    def _from_workers(read: Callable[[], dict]) -> dict:
        try:
            return read()
        except Exception:  # Redis away: /metrics still answers, without the workers' figures
            return {}


_DRAMATIQ_COUNTERS = {
    "messages": ("dramatiq_messages_total", "The total number of messages processed."),
    "errors": ("dramatiq_message_errors_total", "The total number of errored messages."),
    "retrys": ("dramatiq_message_retries_total", "The total number of retried messages."),
    "rejects": ("dramatiq_message_rejects_total", "The total number of dead-lettered messages."),
}


def _dramatiq_lines(raw: dict[str, str]) -> list[str]:
    """Dramatiq's message metrics, as its Prometheus middleware names them, from every worker's
    counts on the side channel (queue/channel.py record_message)."""
    from heimdex.queue.channel import MESSAGE_BUCKETS_MS

    def labels(queue: str, actor: str) -> str:
        return f'queue_name="{queue}",actor_name="{actor}"'

    lines: list[str] = []
    for field, (name, help_text) in _DRAMATIQ_COUNTERS.items():
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
        for key, value in sorted(raw.items()):
            kind, queue, actor = key.split("|")
            if kind == field:
                lines.append(f"{name}{{{labels(queue, actor)}}} {int(value)}")
    name = "dramatiq_message_duration_milliseconds"
    lines += [f"# HELP {name} The time spent processing messages.", f"# TYPE {name} histogram"]
    for key, count in sorted(raw.items()):
        kind, queue, actor = key.split("|")
        if kind != "count":
            continue
        base = labels(queue, actor)
        for bound in MESSAGE_BUCKETS_MS:  # counted per bucket as <= bound: cumulative already
            lines.append(
                f'{name}_bucket{{{base},le="{bound}"}} {int(raw.get(f"le:{bound}|{queue}|{actor}", 0))}'
            )
        lines.append(f'{name}_bucket{{{base},le="+Inf"}} {int(count)}')
        lines.append(f"{name}_sum{{{base}}} {float(raw.get(f'sum|{queue}|{actor}', 0.0)):.3f}")
        lines.append(f"{name}_count{{{base}}} {int(count)}")
    return lines
