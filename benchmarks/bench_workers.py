"""Server-mode ingest throughput with 1 and 2 `heimdex worker` processes.

    python benchmarks/bench_workers.py [--workers 1 2] [--asr-model base]
    python benchmarks/bench_workers.py --pin --corpus long --long-seconds 660   # scale-out, pinned

`--pin`: worker i runs on core i alone (`taskset -c i`, HEIMDEX_CPU_THREADS=1), so that one worker
is one core and two workers are two: the honest scale-out figure on a small machine, where unpinned
workers would each spread over every core. `--corpus long`: one video of `--long-seconds` (the
media benchmark's video, benchmarks/make_long_video.py), whose speech fans out into pieces of
`--asr-piece-s` (HEIMDEX_ASR_PIECE_S) so that two workers share one video; `short`: the eight clips.

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

from benchmarks.make_long_video import make_long_video  # noqa: E402
from heimdex.queue.broker import StageQueue  # noqa: E402
from heimdex.service import Heimdex  # noqa: E402
from heimdex.settings import Settings  # noqa: E402

REDIS_DB = 15


def corpus() -> list[Path]:
    return [small_video(i) for i in range(7)] + [news_video()]


def worker_command(index: int, pin: bool) -> list[str]:
    command = [sys.executable, "-m", "heimdex.cli", "worker"]
    return ["taskset", "-c", str(index), *command] if pin else command


def run(
    workers: int, asr_model: str, videos: list[Path], pin: bool = False, piece_s: float = 180.0
) -> dict[str, object]:
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
            "HEIMDEX_CPU_THREADS": "1" if pin else str(max(1, (os.cpu_count() or 2) // workers)),
            "HEIMDEX_ASR_PIECE_S": str(piece_s),
        }
        logs = [home / f"worker-{i}.log" for i in range(workers)]
        procs = [
            subprocess.Popen(worker_command(i, pin), env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
            for i, log in enumerate(logs)
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
        "pinned": pin,
        "asr_pieces": sum(log.read_text().count("piece.finished") for log in logs),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--asr-model", default="base")
    ap.add_argument("--pin", action="store_true", help="worker i on core i alone, one thread each")
    ap.add_argument("--corpus", choices=["short", "long"], default="short")
    ap.add_argument("--long-seconds", type=int, default=660, help="the long video's length")
    ap.add_argument("--asr-piece-s", type=float, default=180.0)
    args = ap.parse_args()
    videos = corpus() if args.corpus == "short" else [make_long_video(args.long_seconds)]
    results = []
    for count in args.workers:
        result = run(count, args.asr_model, videos, args.pin, args.asr_piece_s)
        results.append(result)
        print(
            f"{count} worker(s): {result['videos']} videos ({result['video_s']} s) in {result['wall_s']} s "
            f"= {result['x_realtime']}x real time, {result['indexed']} indexed, "
            f"{result['asr_pieces']} speech pieces{' (pinned)' if args.pin else ''}",
            flush=True,
        )
    walls = {r["workers"]: r["wall_s"] for r in results}
    if 1 in walls and 2 in walls:
        print(f"two workers / one: {walls[1] / walls[2]:.2f}x", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
