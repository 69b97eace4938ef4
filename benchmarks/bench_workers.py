"""Server-mode ingest throughput with 1 and 2 `heimdex worker` processes.

    python benchmarks/bench_workers.py [--workers 1 2] [--asr-model base]

Real servers as in the tests (tests/services.py): PostgreSQL with pgvector, Redis as the Dramatiq
broker, and a shared
file:// blob folder. The corpus is the tests' real narrated clips (seven of about 7 s and the 31 s
news clip). For each worker count: a fresh database and queue, the workers start and load their
models (not timed), then every video is enqueued and the clock runs until all are indexed. Each
worker gets cores / workers threads. Prints one line per count and JSON on the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests import services  # noqa: E402
from tests.e2e.conftest import news_video  # noqa: E402
from tests.e2e.test_scale_out import small_video  # noqa: E402

from heimdex.queue.broker import StageQueue  # noqa: E402
from heimdex.service import Heimdex  # noqa: E402
from heimdex.settings import Settings  # noqa: E402

REDIS_DB = 15


def corpus() -> list[Path]:
    return [small_video(i) for i in range(7)] + [news_video()]


def run(workers: int, asr_model: str, videos: list[Path]) -> dict[str, object]:
    queue_url = services.redis_url(REDIS_DB)
    redis.Redis.from_url(queue_url).flushdb()
    home = Path(tempfile.mkdtemp(prefix="heimdex-bench-workers-"))
    with services.fresh_postgres() as database_url:
        settings = Settings(
            home=home,
            database_url=database_url,
            storage_url=f"file://{home / 'blobs'}",
            queue_url=queue_url,
            asr_model=asr_model,
        )
        env = {
            **os.environ,
            "HEIMDEX_HOME": str(home),
            "HEIMDEX_DATABASE_URL": database_url,
            "HEIMDEX_STORAGE_URL": settings.storage_url or "",
            "HEIMDEX_QUEUE_URL": queue_url,
            "HEIMDEX_ASR_MODEL": asr_model,
            "HEIMDEX_CPU_THREADS": str(max(1, (os.cpu_count() or 2) // workers)),
        }
        logs = [home / f"worker-{i}.log" for i in range(workers)]
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "heimdex.cli", "worker"],
                env=env,
                stdout=log.open("w"),
                stderr=subprocess.STDOUT,
            )
            for log in logs
        ]
        app = Heimdex(settings)
        queue = StageQueue(settings, app.store)
        try:
            deadline = time.monotonic() + 180
            # workers load their models before taking stages
            while not all("worker.started" in log.read_text() for log in logs):
                if time.monotonic() > deadline:
                    raise RuntimeError("workers did not start")
                time.sleep(0.2)
            started = time.perf_counter()
            ids = [app.add_file(path).video.id for path in videos]
            for video_id in ids:
                queue.enqueue(video_id)
            while not all(app.video(v).state.value in ("indexed", "failed") for v in ids):
                time.sleep(0.2)
            wall = time.perf_counter() - started
            states = [app.video(v).state.value for v in ids]
            seconds = sum(app.video(v).info.duration_s for v in ids if app.video(v).info)
            app.close()
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(60)
            queue.stop()
    return {
        "workers": workers,
        "videos": len(videos),
        "video_s": round(seconds, 1),
        "wall_s": round(wall, 1),
        "x_realtime": round(seconds / wall, 2),
        "indexed": states.count("indexed"),
        "asr_model": asr_model,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--asr-model", default="base")
    args = ap.parse_args()
    videos = corpus()
    results = []
    for count in args.workers:
        result = run(count, args.asr_model, videos)
        results.append(result)
        print(
            f"{count} worker(s): {result['videos']} videos ({result['video_s']} s) in {result['wall_s']} s "
            f"= {result['x_realtime']}x real time, {result['indexed']} indexed",
            flush=True,
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
