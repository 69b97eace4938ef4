"""What a CLIP model change costs the store: counting an owner's frames per model, and writing the new
model's vectors while re-embedding.

    python benchmarks/bench_clip_coverage.py --scenes 10000 100000 [--queries 50]

A SQLite library of `--scenes` scenes in videos of 100, each scene with 2 frames that have a vector
of the tagger (1280-d) and of an "old" CLIP model (512-d), committed through commit_video as the
pipeline commits them; the vectors are random (neither query reads their values). Timed:
- frame_vector_counts(owner), what Heimdex.clip_coverage runs (at most every COVERAGE_TTL_S per
  owner and process), with its query plan;
- re-embedding's store half for one video of 200 frames: frames_missing, then add_frame_vectors in
  chunks of reembed.CHUNK with 512-d vectors of a "new" model (decoding and the model's own time are
  left out: they are the model's and the video's, not the store's).
The last line is JSON with the figures and the machine's load averages.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from benchmarks.frame_library import commit_library, load_average, percentiles  # noqa: E402
from heimdex.ml.base import IMAGE_VECTOR_DIM, IMAGE_VECTOR_MODEL  # noqa: E402
from heimdex.reembed import CHUNK  # noqa: E402
from heimdex.store.sqlite import SqliteStore  # noqa: E402

OWNER = "bench"
FRAMES_PER_SCENE = 2
CLIP_DIM = 512
MODELS = ((IMAGE_VECTOR_MODEL, IMAGE_VECTOR_DIM), ("clip-old", CLIP_DIM))


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    rows = rng.standard_normal((n, dim), dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def build(store: SqliteStore, scenes: int, rng: np.random.Generator) -> list[str]:
    models = [(model, partial(unit_rows, rng, dim=dim)) for model, dim in MODELS]
    return commit_library(store, OWNER, scenes, FRAMES_PER_SCENE, models)


def run(size: int, queries: int, folder: Path) -> dict:
    store = SqliteStore(folder / f"coverage-{size}.db")
    rng = np.random.default_rng(size)
    try:
        load_before = load_average()
        started = time.perf_counter()
        videos = build(store, size, rng)
        build_s = time.perf_counter() - started
        plan = store.db.all(
            "EXPLAIN QUERY PLAN SELECT f.model, count(*) AS n FROM frame_vectors f"
            " JOIN scenes s ON s.pk = f.scene_pk WHERE s.owner_id = ? GROUP BY f.model",
            (OWNER,),
        )
        counts, times = {}, []
        for _ in range(queries):
            started = time.perf_counter()
            counts = store.frame_vector_counts(OWNER)
            times.append(time.perf_counter() - started)
        assert counts == {IMAGE_VECTOR_MODEL: size * 2, "clip-old": size * 2}, counts
        started = time.perf_counter()
        missing = store.frames_missing(OWNER, videos[-1], "clip-new")
        listed_s = time.perf_counter() - started
        started = time.perf_counter()
        for at in range(0, len(missing), CHUNK):
            chunk = missing[at : at + CHUNK]
            store.add_frame_vectors(OWNER, "clip-new", chunk, unit_rows(rng, len(chunk), CLIP_DIM))
        written_s = time.perf_counter() - started
        return {
            "scenes": size,
            "frames": size * FRAMES_PER_SCENE,
            "build_s": round(build_s, 1),
            "counts": percentiles(times),
            "counts_plan": [r["detail"] for r in plan],
            "frames_missing_ms": round(listed_s * 1000, 1),
            "add_frame_vectors_ms_per_frame": round(written_s * 1000 / len(missing), 2),
            "video_frames": len(missing),
            "load_before": load_before,
            "load_after": load_average(),
        }
    finally:
        store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--queries", type=int, default=50)
    args = ap.parse_args()
    report: dict = {"cores": os.cpu_count(), "sizes": []}
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.scenes:
            result = run(size, args.queries, Path(tmp))
            report["sizes"].append(result)
            print(json.dumps(result), flush=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
