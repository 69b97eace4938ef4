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
from collections.abc import Callable, Iterator, Sequence
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


def load(store: Store, corpus: Corpus, per_video: int, keep: list[np.ndarray] | None = None) -> float:
    """Commit the corpus video by video; `keep` collects the vectors in load order (ground truth)."""
    started = time.perf_counter()
    for i, (texts, vectors) in enumerate(corpus.batches(per_video)):
        if keep is not None:
            keep.append(vectors)
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


def exact_top10(vectors: np.ndarray, pks: np.ndarray, queries: np.ndarray) -> list[set[int]]:
    """The true 10 nearest scenes of each query by cosine (unit vectors: the largest dot products),
    computed in numpy: a sequential scan of 1M rows per query in PostgreSQL took seconds each."""
    out = []
    for start in range(0, len(queries), 20):
        sims = queries[start : start + 20] @ vectors.T
        top = np.argpartition(-sims, 10, axis=1)[:, :10]
        out += [set(pks[row].tolist()) for row in top]
    return out


def scene_pks_in_load_order(store, vectors: np.ndarray) -> np.ndarray:
    """Scene pks in the order their vectors were generated, checked on a sample of rows."""
    with store.db.pool.connection() as conn:
        rows = conn.execute(
            "SELECT scene_pk FROM scene_vectors WHERE kind = 'text' AND model = %s ORDER BY scene_pk",
            (MODEL,),
        ).fetchall()
        pks = np.array([r["scene_pk"] for r in rows])
        for i in np.linspace(0, len(pks) - 1, 7).astype(int):
            stored = conn.execute(
                "SELECT vector FROM scene_vectors WHERE scene_pk = %s AND kind = 'text'", (int(pks[i]),)
            ).fetchone()["vector"]
            stored = stored.to_numpy() if hasattr(stored, "to_numpy") else stored  # pgvector's Vector
            if not np.allclose(np.asarray(stored, dtype=np.float32), vectors[i], atol=1e-5):
                raise RuntimeError("scene pks do not follow the load order: no numpy ground truth")
    return pks


def ef_sweep(store, queries: np.ndarray, truth: list[set[int]], efs: list[int], n: int) -> dict[str, object]:
    """Recall@10 and the latency of the store's own dense query (LIMIT 100, as the engine asks) for
    several hnsw.ef_search values, each on a connection of its own."""
    import psycopg
    from pgvector.psycopg import register_vector

    everyone = SceneFilter(owner_id=OWNER)
    out: dict[str, object] = {}
    for ef in efs:
        with psycopg.connect(store.url, autocommit=True) as conn:
            register_vector(conn)
            conn.execute(f"SET hnsw.ef_search = {int(ef)}")
            conn.execute("SET hnsw.iterative_scan = strict_order")

            def dense(q: np.ndarray, limit: int, conn=conn) -> list[int]:
                statement, params = store.dense_sql(everyone, MODEL, q, limit, approximate=True)
                return [row[0] for row in conn.execute(statement, params).fetchall()]

            found = sum(len(set(dense(q, 10)) & truth[i]) for i, q in enumerate(queries[: len(truth)]))
            out[f"ef_search={ef}"] = {
                "recall_at_10": round(found / (10 * len(truth)), 4),
                **latency(lambda i, dense=dense: dense(queries[i], LIMIT), n),
            }
        print(json.dumps({f"ef_search={ef}": out[f"ef_search={ef}"]}), file=sys.stderr, flush=True)
    return out


def uses_hnsw(store, query: np.ndarray, dim: int) -> bool:
    """Whether the planner picks the HNSW index for the store's own dense query."""
    statement, params = store.dense_sql(SceneFilter(owner_id=OWNER), MODEL, query, LIMIT, approximate=True)
    with store.db.pool.connection() as conn:
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
    return build_indexes(store, [("text", MODEL, dim)], rows)


def build_indexes(store, indexes: Sequence[tuple[str, str, int]], rows: int) -> float:
    """Build these (kind, model, dim) HNSW indexes after a bulk load, then VACUUM ANALYZE; seconds."""
    started = time.perf_counter()
    dim = max((d for _, _, d in indexes), default=0)
    # The whole graph must fit in maintenance_work_mem, or the build crawls: the vectors plus about
    # 300 bytes of neighbour lists per row (m=16), with a margin.
    memory_mb = max(1024, int(rows * (dim * 4 + 300) * 1.3 / 2**20))
    with store.db.pool.connection() as conn:
        conn.execute(f"SET maintenance_work_mem = '{memory_mb}MB'")
        conn.execute("SET max_parallel_maintenance_workers = 1")  # + the leader: both cores
        with conn.transaction():
            for kind, model, d in indexes:
                store.create_vector_index(conn, kind, model, d)
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
        kept: list[np.ndarray] = []
        figures: dict[str, object] = {"load_s": round(load(store, corpus, args.per_video, kept), 1)}
        if name == "postgres":
            if not args.incremental:
                figures["index_build_s"] = round(build_index(store, args.dim, args.scenes), 1)
            figures["dense_plan_uses_hnsw"] = uses_hnsw(store, query_vectors[0], args.dim)
            vectors = np.vstack(kept)
            truth = exact_top10(vectors, scene_pks_in_load_order(store, vectors), query_vectors[:100])
            del vectors, kept
            efs = [int(x) for x in args.ef_search.split(",")]
            figures["ef_sweep"] = ef_sweep(store, query_vectors, truth, efs, args.queries)
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
    parser.add_argument(
        "--ef-search", default="100", help="PostgreSQL: hnsw.ef_search values to measure recall and latency"
    )
    args = parser.parse_args()
    results = {"scenes": args.scenes, "dim": args.dim, "queries": args.queries, "limit": LIMIT}
    for name in args.backends.split(","):
        results[name] = run_backend(name.strip(), args)
        print(json.dumps({name: results[name]}), file=sys.stderr)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
