"""Search latency of the two stores at scale, and the recall of PostgreSQL's HNSW search.

    python benchmarks/bench_store.py --scenes 100000            # both backends
    python benchmarks/bench_store.py --scenes 1000000 --backends postgres --queries 200

Synthetic but shaped like the real thing: 384-d "embeddings" drawn from a mixture of Gaussians
around a few hundred topic centres (then L2-normalised), and transcripts drawn from a vocabulary
with Zipf word frequencies. Queries are new points near the same centres and 1-3 mid-frequency
words. PostgreSQL comes from HEIMDEX_TEST_POSTGRES_URL or the bundled server of tests/services.py.

PostgreSQL is loaded through commit_video like any indexing run, but with its HNSW index dropped
during the load and built once afterwards (--incremental keeps it: slower, as on a live server).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.services starts the PostgreSQL server

from heimdex.domain import SceneDraft  # noqa: E402
from heimdex.store import CommitBundle, SceneFilter, Store, VectorSet  # noqa: E402
from heimdex.store.postgres import _index_name  # noqa: E402

OWNER = "bench"
MODEL = "bench-e5"
LIMIT = 100  # the engine asks each channel for 100 candidates


# ---------------------------------------------------------------- synthetic data


class Corpus:
    def __init__(self, scenes: int, dim: int, clusters: int, vocabulary: int, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.scenes, self.dim = scenes, dim
        self.centres = self._normalise(self.rng.normal(size=(clusters, dim)))
        self.weights = self.rng.dirichlet(np.full(clusters, 0.5))  # topics of uneven size
        self.words = self._vocabulary(vocabulary)
        ranks = np.arange(1, vocabulary + 1)
        self.word_p = (1.0 / ranks**1.07) / np.sum(1.0 / ranks**1.07)  # Zipf's law

    @staticmethod
    def _normalise(x: np.ndarray) -> np.ndarray:
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    def _vocabulary(self, n: int) -> list[str]:
        syllables = [c + v for c in "bdfghklmnprstvz" for v in "aeiou"]
        words: set[str] = set()
        while len(words) < n:
            words.add("".join(self.rng.choice(syllables, size=self.rng.integers(2, 4))))
        return sorted(words)

    def vectors(self, n: int, spread: float = 0.75) -> np.ndarray:
        topics = self.rng.choice(len(self.centres), size=n, p=self.weights)
        noise = self.rng.normal(scale=spread / np.sqrt(self.dim), size=(n, self.dim))
        return self._normalise(self.centres[topics] + noise)

    def transcripts(self, n: int) -> list[str]:
        lengths = self.rng.integers(15, 60, size=n)
        ids = self.rng.choice(len(self.words), size=int(lengths.sum()), p=self.word_p)
        out, start = [], 0
        for length in lengths:
            out.append(" ".join(self.words[i] for i in ids[start : start + length]))
            start += length
        return out

    def text_queries(self, n: int) -> list[list[str]]:
        # mid-frequency words: what people search for (the top ranks are the "the, a, of" of this language)
        return [
            [self.words[i] for i in self.rng.integers(50, 5000, size=self.rng.integers(1, 4))]
            for _ in range(n)
        ]

    def batches(self, per_video: int) -> Iterator[tuple[list[str], np.ndarray]]:
        for start in range(0, self.scenes, per_video):
            n = min(per_video, self.scenes - start)
            yield self.transcripts(n), self.vectors(n)


def load(store: Store, corpus: Corpus, per_video: int) -> float:
    started = time.perf_counter()
    for i, (texts, vectors) in enumerate(corpus.batches(per_video)):
        video = store.add_video(OWNER, f"{i}.mp4", "k", 1, None)
        scenes = [
            SceneDraft(index=j, start_s=j * 5.0, end_s=j * 5.0 + 5, transcript=t) for j, t in enumerate(texts)
        ]
        bundle = CommitBundle(video.id, "en", scenes, VectorSet(MODEL, vectors), [])
        store.commit_video(bundle, {})
        if i % 100 == 0:
            print(f"  {min((i + 1) * per_video, corpus.scenes)} scenes", file=sys.stderr, flush=True)
    return time.perf_counter() - started


# ---------------------------------------------------------------- measuring


def latency(fn: Callable[[int], object], n: int, warmup: int = 5) -> dict[str, float]:
    for i in range(warmup):
        fn(i)
    times = []
    for i in range(n):
        started = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - started) * 1000)
    return {
        "p50_ms": round(float(np.percentile(times, 50)), 2),
        "p95_ms": round(float(np.percentile(times, 95)), 2),
    }


def search_figures(store: Store, queries: np.ndarray, words: list[list[str]], n: int) -> dict[str, object]:
    everyone = SceneFilter(owner_id=OWNER)
    return {
        "dense_text": latency(lambda i: store.dense_text(everyone, MODEL, queries[i], LIMIT), n),
        "full_text": latency(lambda i: store.full_text(everyone, words[i], [], LIMIT), n),
    }


def recall_at_10(store, queries: np.ndarray, n: int) -> float:
    flt = SceneFilter(owner_id=OWNER)
    found = 0
    for q in queries[:n]:
        approx = {h.scene_pk for h in store._dense(flt, MODEL, q, 10, approximate=True)}
        exact = {h.scene_pk for h in store._dense(flt, MODEL, q, 10, approximate=False)}
        found += len(approx & exact)
    return round(found / (10 * n), 4)


def uses_hnsw(store, query: np.ndarray, dim: int) -> bool:
    """Whether the planner picks the HNSW index for the store's own dense query."""
    statement, params = store.dense_sql(SceneFilter(owner_id=OWNER), MODEL, query, LIMIT, approximate=True)
    with store._pool.connection() as conn:
        plan = " ".join(r["QUERY PLAN"] for r in conn.execute(b"EXPLAIN " + statement.as_bytes(conn), params))
    return _index_name("text", MODEL, dim) in plan


# ---------------------------------------------------------------- backends


@contextmanager
def sqlite_store() -> Iterator[Store]:
    from heimdex.store.sqlite import SqliteStore

    with tempfile.TemporaryDirectory(prefix="heimdex-bench-") as folder:
        store = SqliteStore(Path(folder) / "bench.db")
        try:
            yield store
        finally:
            store.close()


@contextmanager
def postgres_store() -> Iterator[Store]:
    from tests import services

    from heimdex.store.postgres import PostgresStore

    with services.fresh_postgres() as url:
        store = PostgresStore(url)
        try:
            yield store
        finally:
            store.close()


def build_index(store, dim: int, rows: int) -> float:
    """Build the model's HNSW index in one pass over the loaded rows (far faster than row by row)."""
    started = time.perf_counter()
    # The whole graph must fit in maintenance_work_mem, or the build crawls: the vectors plus about
    # 300 bytes of neighbour lists per row (m=16), with a margin.
    memory_mb = max(1024, int(rows * (dim * 4 + 300) * 1.3 / 2**20))
    with store._pool.connection() as conn:
        conn.execute(f"SET maintenance_work_mem = '{memory_mb}MB'")
        conn.execute("SET max_parallel_maintenance_workers = 1")  # + the leader: both cores
        with conn.transaction():
            store.create_vector_index(conn, "text", MODEL, dim)
        conn.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


def run_backend(name: str, args: argparse.Namespace) -> dict[str, object]:
    corpus = Corpus(args.scenes, args.dim, args.clusters, args.vocabulary, args.seed)
    queries = Corpus(1, args.dim, args.clusters, args.vocabulary, args.seed)  # same centres, new points
    query_vectors = queries.vectors(args.queries)
    query_words = queries.text_queries(args.queries)
    opener = sqlite_store if name == "sqlite" else postgres_store
    with opener() as store:
        if name == "postgres" and not args.incremental:
            # load without the graph (commit_video believes it exists); build_index makes it after
            store._indexes.add(_index_name("text", MODEL, args.dim))
        print(f"{name}: loading {args.scenes} scenes", file=sys.stderr)
        figures: dict[str, object] = {"load_s": round(load(store, corpus, args.per_video), 1)}
        if name == "postgres":
            if not args.incremental:
                figures["index_build_s"] = round(build_index(store, args.dim, args.scenes), 1)
            figures["recall_at_10"] = recall_at_10(store, query_vectors, min(args.queries, 100))
            figures["dense_plan_uses_hnsw"] = uses_hnsw(store, query_vectors[0], args.dim)
        figures.update(search_figures(store, query_vectors, query_words, args.queries))
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenes", type=int, default=100_000)
    parser.add_argument("--backends", default="postgres,sqlite")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--clusters", type=int, default=300)
    parser.add_argument("--vocabulary", type=int, default=30_000)
    parser.add_argument("--per-video", type=int, default=100, help="scenes per committed video")
    parser.add_argument(
        "--incremental", action="store_true", help="PostgreSQL: keep the HNSW index during load"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    results = {"scenes": args.scenes, "dim": args.dim, "queries": args.queries, "limit": LIMIT}
    for name in args.backends.split(","):
        results[name] = run_backend(name.strip(), args)
        print(json.dumps({name: results[name]}), file=sys.stderr)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
