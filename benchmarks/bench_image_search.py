"""Search by image at scale: what `heimdex search --image` and POST /search/image pay per query.

    python benchmarks/bench_image_search.py --scenes 10000 100000 [--frames-per-scene 2] [--queries 200]

A SQLite library of `--scenes` scenes in videos of 100, each scene with `--frames-per-scene` frame
vectors of the real model's size (1280-d), committed through commit_video as the pipeline commits
them. The vectors are synthetic but shaped like the real ones (non-negative, as ReLU6 features are,
clustered around 500 "places"), so the matrix product costs what it costs with real features.

Each timed query goes through SearchEngine.search_image (the store's best-frame scoring over every
frame of the owner, the per-video cap, fetching the hits) with a distinct query vector (no cache).
Separately, the cost of turning a real photo into its vector (decode + tagger.image_vector) is timed
over KPhotoAlbum's and scikit-image's photos, and the bytes the new vectors add per scene are read
from the database file. The last line is JSON with the figures and the machine's load averages.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from heimdex.domain import SceneDraft  # noqa: E402
from heimdex.ml.base import IMAGE_VECTOR_DIM, IMAGE_VECTOR_MODEL  # noqa: E402
from heimdex.search.engine import SearchEngine, SearchRequest  # noqa: E402
from heimdex.store import CommitBundle, FrameVectors, SceneFilter, VectorSet  # noqa: E402
from heimdex.store.sqlite import SqliteStore  # noqa: E402

OWNER = "bench"
SCENES_PER_VIDEO = 100  # a 7-minute video at 4 s a scene
PLACES = 500
WARMUP = 5


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def frame_vectors(rng: np.random.Generator, centres: np.ndarray, n: int) -> np.ndarray:
    """Unit rows near random centres, non-negative like the model's features."""
    rows = (
        centres[rng.integers(0, len(centres), n)] + rng.random((n, centres.shape[1]), dtype=np.float32) * 0.6
    )
    rows = np.maximum(rows, 0)
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def places(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.maximum(rng.standard_normal((PLACES, IMAGE_VECTOR_DIM), dtype=np.float32), 0)


def build(store: SqliteStore, scenes: int, per_scene: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    centres = places(seed)
    started = time.perf_counter()
    for start in range(0, scenes, SCENES_PER_VIDEO):
        count = min(SCENES_PER_VIDEO, scenes - start)
        video = store.add_video(OWNER, f"v{start}.mp4", "k", 1, None)
        drafts = [
            SceneDraft(index=i, start_s=i * 4.0, end_s=i * 4.0 + 4, transcript="") for i in range(count)
        ]
        text = np.zeros((count, 8), np.float32)
        text[:, 0] = 1
        frames = FrameVectors(
            [i for i in range(count) for _ in range(per_scene)],
            [i * 4.0 + 1 + k for i in range(count) for k in range(per_scene)],
            VectorSet(IMAGE_VECTOR_MODEL, frame_vectors(rng, centres, count * per_scene)),
        )
        bundle = CommitBundle(video.id, "en", drafts, VectorSet("text", text), [], frames=(frames,))
        store.commit_video(bundle, {})
    return time.perf_counter() - started


def table_bytes(store: SqliteStore, table: str) -> int:
    row = store.db.one("SELECT sum(pgsize) AS n FROM dbstat WHERE name = ?", (table,))
    return int(row["n"] or 0)


def percentiles(times: list[float]) -> dict[str, float]:
    ms = np.array(times) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
    }


def run(size: int, per_scene: int, queries: int, folder: Path) -> dict:
    store = SqliteStore(folder / f"image-{size}.db")
    try:
        load_before = load_average()
        build_s = build(store, size, per_scene, seed=size)
        engine = SearchEngine(store, lambda: None, lambda key: None, query_cache_size=0)
        # Queries are other pictures of the library's places (what "more like this" asks), each new.
        rng, centres = np.random.default_rng(1), places(size)
        # the product's defaults: 10 hits, at most 3 a video
        request = SearchRequest(owner_id=OWNER, query="", limit=10, per_video=3, min_confidence="low")
        first = time.perf_counter()
        engine.search_image(request, IMAGE_VECTOR_MODEL, frame_vectors(rng, centres, 1)[0])
        first_s = time.perf_counter() - first  # loads the owner's frames into memory
        times = []
        vectors = frame_vectors(rng, centres, queries + WARMUP)
        for i, vector in enumerate(vectors):
            started = time.perf_counter()
            hits = engine.search_image(request, IMAGE_VECTOR_MODEL, vector).hits
            if i >= WARMUP:
                times.append(time.perf_counter() - started)
            assert hits, "every query finds scenes"
        recall = recall_at_10(store, vectors[:50])
        frame_table = table_bytes(store, "frame_vectors") + table_bytes(
            store, "sqlite_autoindex_frame_vectors_1"
        )
        return {
            "scenes": size,
            "frames_per_scene": per_scene,
            "build_s": round(build_s, 1),
            "first_search_s": round(first_s, 2),
            "bytes_per_scene": round(frame_table / size),
            **percentiles(times),
            "queries": len(times),
            "recall@10": recall,
            "load_before": load_before,
            "load_after": load_average(),
        }
    finally:
        store.close()


def recall_at_10(store: SqliteStore, vectors: np.ndarray) -> float:
    """The share of the exact 10 best scenes (every frame scored) that the store's search returns."""
    frames, matrix = store._vectors.get((OWNER, f"{IMAGE_VECTOR_MODEL}\x1fframes"), store._generation(), None)
    found = 0
    for vector in vectors:
        exact = {int(frames.pks[i]) for i in np.argsort(-frames.exact(matrix, vector))[:10]}
        got = {s.scene_pk for s in store.image_search(SceneFilter(OWNER), IMAGE_VECTOR_MODEL, vector, 10)}
        found += len(exact & got)
    return round(found / (10 * len(vectors)), 3)


def photo_embedding(rounds: int = 3) -> dict:
    """decode + tagger.image_vector on real photos: what a query adds before the search."""
    from tests import assets

    from heimdex.media import decode_image
    from heimdex.ml.tagger import VisualTagger

    names = ["grand_canyon_2", "skagen_2", "pool_2", "bar55_2", "spiff_2", "new_wave_2", "donna", "sunset"]
    photos = [assets.kphotoalbum_photo(f"{n}.jpg").read_bytes() for n in names]
    photos += [assets.skimage_photo(n).read_bytes() for n in ("astronaut", "coffee", "chelsea", "rocket")]
    tagger = VisualTagger()
    tagger.image_vector(decode_image(photos[0]))
    times, model = [], []
    for _ in range(rounds):
        for data in photos:
            started = time.perf_counter()
            image = decode_image(data)
            decoded = time.perf_counter()
            tagger.image_vector(image)
            times.append(time.perf_counter() - started)
            model.append(time.perf_counter() - decoded)
    return {"photo_to_vector": percentiles(times), "model_only": percentiles(model), "photos": len(photos)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--frames-per-scene", type=int, default=2)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--exact", action="store_true", help="score every frame, however many (no coarse pass)")
    args = ap.parse_args()
    if args.exact:
        from heimdex.store import sqlite

        sqlite.EXACT_FRAMES = 1 << 62
    report: dict = {"cores": os.cpu_count(), "embedding": photo_embedding(), "sizes": []}
    print(json.dumps(report["embedding"]))
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.scenes:
            result = run(size, args.frames_per_scene, args.queries, Path(tmp))
            report["sizes"].append(result)
            print(json.dumps(result))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
