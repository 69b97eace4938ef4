"""Search by image at scale: what `heimdex search --image` and POST /search/image pay per query.

    python benchmarks/bench_image_search.py --scenes 10000 100000 [--frames-per-scene 2] [--queries 200]
    python benchmarks/bench_image_search.py --backend postgres --scenes 10000 100000 [--ef-search 100]

A library of `--scenes` scenes of one owner in videos of 100, each scene with `--frames-per-scene`
frame vectors of the real model's size (1280-d), committed through commit_video as the pipeline
commits them. The vectors are synthetic but shaped like the real ones (non-negative, as ReLU6
features are, clustered around 500 "places"), so the matrix product costs what it costs with real
features. SQLite (embedded), or PostgreSQL + pgvector (server mode: the bundled server of
tests/services.py, or HEIMDEX_TEST_POSTGRES_URL), where the frames' HNSW index is built once after
the load, as bench_store.py does.

Each timed query goes through SearchEngine.search_image (the store's best-frame scoring, the
per-video cap, fetching the hits) with a distinct query vector (no cache). Recall@10: the share of
the exact 10 best scenes (every frame scored in numpy) that the store's image_search returns.

On PostgreSQL, what does not depend on the machine's load is reported beside the times: the
statements a search sends, the CPU time a search costs the client and the server's backends, and the
HNSW statement's EXPLAIN (ANALYZE, BUFFERS): its execution time, buffers and the index it uses.

Separately, the cost of turning a real photo into its vector (decode + tagger.image_vector) is timed
over KPhotoAlbum's and scikit-image's photos (--no-photos skips it), and the bytes the new vectors add
per scene are read from the database. The last line is JSON with the figures and the load averages.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from benchmarks.bench_store import build_indexes  # noqa: E402
from benchmarks.frame_library import commit_library, load_average, percentiles  # noqa: E402
from heimdex.ml.base import IMAGE_VECTOR_DIM, IMAGE_VECTOR_MODEL  # noqa: E402
from heimdex.search.engine import SearchEngine, SearchRequest  # noqa: E402
from heimdex.store import SceneFilter, Store  # noqa: E402

OWNER = "bench"
PLACES = 500
WARMUP = 5
RECALL_QUERIES = 50
EXPLAINED = 20  # HNSW statements run again under EXPLAIN ANALYZE, for the server's own figures


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


def build(store: Store, scenes: int, per_scene: int, seed: int) -> float:
    rng, centres = np.random.default_rng(seed), places(seed)
    started = time.perf_counter()
    model = (IMAGE_VECTOR_MODEL, lambda n: frame_vectors(rng, centres, n))
    commit_library(store, OWNER, scenes, per_scene, [model])
    return time.perf_counter() - started


@contextmanager
def open_store(backend: str, folder: Path, size: int) -> Iterator[tuple[Store, str | None]]:
    """A fresh store, and on PostgreSQL its URL. There commit_video is told the frames' HNSW index
    exists, so that the load writes no graph (built after it, in one pass: build_indexes)."""
    if backend == "sqlite":
        from heimdex.store.sqlite import SqliteStore

        store = SqliteStore(folder / f"image-{size}.db")
        try:
            yield store, None
        finally:
            store.close()
        return
    from tests import services

    from heimdex.store.postgres import FRAME, PostgresStore, _index_name

    with services.fresh_postgres() as url:
        store = PostgresStore(url)
        store._indexes.add(_index_name(FRAME, IMAGE_VECTOR_MODEL, IMAGE_VECTOR_DIM))
        try:
            yield store, url
        finally:
            store.close()


@contextmanager
def with_ef_search(url: str, ef_search: int) -> Iterator[Store]:
    """Another PostgresStore on the same database, its connections set to this hnsw.ef_search."""
    from heimdex.store.postgres import PostgresStore

    store = PostgresStore(url, ef_search=ef_search)
    try:
        yield store
    finally:
        store.close()


def run(size: int, per_scene: int, queries: int, folder: Path, backend: str, ef_search: list[int]) -> dict:
    with open_store(backend, folder, size) as (store, url):
        figures: dict = {"scenes": size, "backend": backend, "frames_per_scene": per_scene}
        figures["build_s"] = round(build(store, size, per_scene, seed=size), 1)
        exact = ExactFrames(store)
        if url is None:
            figures.update(measure(store, size, queries, exact))
        else:
            from heimdex.store.postgres import FRAME

            index = [(FRAME, IMAGE_VECTOR_MODEL, IMAGE_VECTOR_DIM)]
            figures["index_build_s"] = round(build_indexes(store, index, size * per_scene), 1)
            figures["by_ef_search"] = []
            for ef in ef_search or [store.ef_search]:
                with with_ef_search(url, ef) as tuned:
                    figures["by_ef_search"].append({"ef_search": ef, **measure(tuned, size, queries, exact)})
                    print(json.dumps(figures["by_ef_search"][-1]), flush=True)
        figures["bytes_per_scene"] = round(frame_bytes(store) / size)
        return figures


def measure(store: Store, size: int, queries: int, exact: ExactFrames) -> dict:
    """Timed image searches (each a new query), their CPU time and recall; on PostgreSQL also the
    statements a search sends and the HNSW statement's own figures."""
    load_before = load_average()
    engine = SearchEngine(store, lambda: None, lambda key: None, query_cache_size=0)
    # Queries are other pictures of the library's places (what "more like this" asks), each new.
    rng, centres = np.random.default_rng(1), places(size)
    # the product's defaults: 10 hits, at most 3 a video
    request = SearchRequest(owner_id=OWNER, query="", limit=10, per_video=3, min_confidence="low")
    first = time.perf_counter()
    engine.search_image(request, IMAGE_VECTOR_MODEL, frame_vectors(rng, centres, 1)[0])
    figures: dict = {"first_search_s": round(time.perf_counter() - first, 2)}  # SQLite loads the frames
    vectors = frame_vectors(rng, centres, queries + WARMUP)
    times, cpu = [], Cpu(store)
    for i, vector in enumerate(vectors):
        if i == WARMUP:
            cpu.start()
        started = time.perf_counter()
        hits = engine.search_image(request, IMAGE_VECTOR_MODEL, vector).hits
        if i >= WARMUP:
            times.append(time.perf_counter() - started)
        assert hits, "every query finds scenes"
    figures.update(percentiles(times), queries=len(times), cpu_ms_per_search=cpu.per(len(times)))
    figures["load_during"] = [load_before, load_average()]
    figures["recall@10"] = recall_at_10(store, exact, vectors[:RECALL_QUERIES])
    if hasattr(store.db, "binary"):
        search = lambda: engine.search_image(request, IMAGE_VECTOR_MODEL, vectors[0])  # noqa: E731
        figures["statements_per_search"] = statements(store, search)
        figures["hnsw_statement"] = explained(store, vectors[:EXPLAINED])
    return figures


class ExactFrames:
    """Every frame vector of the owner in numpy: the exact ranking recall is measured against."""

    def __init__(self, store: Store) -> None:
        sql = (
            "SELECT f.scene_pk, f.vector FROM frame_vectors f JOIN scenes s ON s.pk = f.scene_pk"
            " WHERE s.owner_id = ? AND f.model = ?"
        )
        params = (OWNER, IMAGE_VECTOR_MODEL)
        if hasattr(store.db, "binary"):  # PostgreSQL: pgvector values
            rows = store.db.binary(sql, params)
            self.matrix = np.stack([r["vector"].to_numpy() for r in rows]).astype(np.float32)
        else:  # SQLite: float32 blobs
            rows = store.db.all(sql, params)
            self.matrix = np.stack([np.frombuffer(r["vector"], np.float32) for r in rows])
        self.pks = np.array([r["scene_pk"] for r in rows], dtype=np.int64)

    def top(self, query: np.ndarray, k: int) -> set[int]:
        """The k scenes whose best frame is nearest (the vectors are unit rows)."""
        order = np.argsort(-(self.matrix @ query))
        best: list[int] = []
        for pk in self.pks[order].tolist():
            if pk not in best:
                best.append(pk)
                if len(best) == k:
                    break
        return set(best)


def recall_at_10(store: Store, exact: ExactFrames, vectors: np.ndarray) -> float:
    """The share of the exact 10 best scenes that the store's image search returns."""
    found = 0
    for vector in vectors:
        got = {s.scene_pk for s in store.image_search(SceneFilter(OWNER), IMAGE_VECTOR_MODEL, vector, 10)}
        found += len(exact.top(vector, 10) & got)
    return round(found / (10 * len(vectors)), 3)


def frame_bytes(store: Store) -> int:
    """What frame_vectors takes on disk with its indexes (SQLite: its pages and primary key's)."""
    if hasattr(store.db, "binary"):
        row = store.db.one("SELECT pg_total_relation_size('frame_vectors') AS n")
        return int(row["n"])
    row = store.db.one(
        "SELECT sum(pgsize) AS n FROM dbstat"
        " WHERE name IN ('frame_vectors', 'sqlite_autoindex_frame_vectors_1')"
    )
    return int(row["n"] or 0)


class Cpu:
    """CPU seconds this process and (on PostgreSQL) the benchmark database's backends spent: what a
    search costs whatever else the machine runs (waiting for a core is not counted)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.server = hasattr(store.db, "binary")
        self.started = (0.0, 0.0)

    def _backends(self) -> float:
        if not self.server:
            return 0.0
        rows = self.store.db.all("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        ticks = 0
        for r in rows:
            try:
                fields = Path(f"/proc/{r['pid']}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # another machine's server: its CPU is not ours to read
                return float("nan")
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def start(self) -> None:
        self.started = (time.process_time(), self._backends())

    def per(self, n: int) -> dict[str, float]:
        client, server = time.process_time() - self.started[0], self._backends() - self.started[1]
        out = {"client": round(client * 1000 / n, 2)}
        if self.server:
            out["server"] = round(server * 1000 / n, 2)
        return out


def statements(store: Store, search) -> int:
    """How many statements one search sends (the round trips it waits for)."""
    from heimdex.db import postgres

    sent = 0
    session = postgres._PostgresSession
    execute, binary = session.execute, session.binary

    def counted(method):
        def call(self, *args, **kwargs):
            nonlocal sent
            sent += 1
            return method(self, *args, **kwargs)

        return call

    session.execute, session.binary = counted(execute), counted(binary)
    try:
        search()
    finally:
        session.execute, session.binary = execute, binary
    return sent


def explained(store: Store, vectors: np.ndarray) -> dict:
    """EXPLAIN (ANALYZE, BUFFERS) of image_search's HNSW statement as search_image sends it (its
    candidates' frames): the server's execution time, the buffers it touched, the index it used."""
    from heimdex.search.engine import CANDIDATES
    from heimdex.store.postgres import FRAME, FRAME_ROWS_PER_SCENE

    limit = (CANDIDATES + 1) * FRAME_ROWS_PER_SCENE[0]  # its first try
    times, hit, read, rows, index = [], [], [], [], ""
    with store.db.pool.connection() as conn:
        for vector in vectors:
            statement, params = store.dense_sql(
                SceneFilter(OWNER), IMAGE_VECTOR_MODEL, vector, limit, True, FRAME
            )
            plan = conn.execute(
                b"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement.as_bytes(conn), params
            ).fetchone()
            top = (plan["QUERY PLAN"] if isinstance(plan, dict) else plan[0])[0]
            times.append(top["Execution Time"] / 1000)
            hit.append(top["Plan"].get("Shared Hit Blocks", 0))
            read.append(top["Plan"].get("Shared Read Blocks", 0))
            rows.append(top["Plan"].get("Actual Rows", 0))
            index = index or _index_used(top["Plan"])
    return {
        "limit": limit,
        "execution": percentiles(times),
        "shared_hit_blocks_p50": int(np.median(hit)),
        "shared_read_blocks_p50": int(np.median(read)),
        "rows_p50": int(np.median(rows)),
        "index": index,
    }


def _index_used(plan: dict) -> str:
    if "Index Name" in plan:
        return plan["Index Name"]
    return next((name for p in plan.get("Plans", []) if (name := _index_used(p))), "")


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
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument(
        "--exact", action="store_true", help="SQLite: score every frame, however many (no coarse pass)"
    )
    ap.add_argument(
        "--ef-search", type=int, nargs="*", default=[], help="PostgreSQL: hnsw.ef_search values to time"
    )
    ap.add_argument("--no-photos", action="store_true", help="skip timing real photos to their vectors")
    args = ap.parse_args()
    if args.exact:
        from heimdex.store import sqlite

        sqlite.EXACT_FRAMES = 1 << 62
    report: dict = {"cores": os.cpu_count(), "sizes": []}
    if not args.no_photos:
        report["embedding"] = photo_embedding()
        print(json.dumps(report["embedding"]), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.scenes:
            result = run(size, args.frames_per_scene, args.queries, Path(tmp), args.backend, args.ef_search)
            report["sizes"].append(result)
            print(json.dumps(result), flush=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
