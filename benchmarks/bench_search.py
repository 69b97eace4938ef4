"""End-to-end search latency: what `heimdex search` and GET /search pay per query, warm.

    python benchmarks/bench_search.py --scenes 10000 100000 [--backend sqlite|postgres] [--queries 300]

Each query goes through SearchEngine.search: parsing, the real e5 query embedding, full text, dense
similarity, tag-label matching, fusion, the per-video cap and fetching the hits with snippets. The
corpus is synthetic (bench_store.Corpus: clustered 384-d vectors, Zipf transcripts) plus three real
ImageNet tag labels per scene with their real e5 label vectors, so the visual channel does real work.

Every timed query is a different string (a third everyday English queries built from word lists,
"a black dog near the harbour", two thirds 1-3 mid-frequency corpus words), and the engine's cache of
recent query vectors is turned off, so every query pays its embedding: a first search, not a page
of one already run. The warm-up queries are distinct from the timed ones.

Prints p50/p95 per size; the last line is JSON with the figures and the machine's load (load
averages before and after each size, core count), since the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_store import Corpus, postgres_store, sqlite_store  # noqa: E402
from heimdex.domain import SceneDraft, Tag  # noqa: E402
from heimdex.ml.tagger import VisualTagger  # noqa: E402
from heimdex.ml.text_embed import E5Embedder  # noqa: E402
from heimdex.search.engine import SearchEngine, SearchRequest  # noqa: E402
from heimdex.store import CommitBundle, Store, VectorSet, WindowVectors  # noqa: E402

OWNER = "bench"
PER_VIDEO = 100
# Long scenes (three or more sentences) also have window vectors: in the dev corpus 15 scenes of 90
# had windows, three on average. Every sixth scene here gets three.
WINDOWS_EVERY, WINDOWS_PER_LONG_SCENE = 6, 3
WARMUP = 5

# Word lists for everyday queries: things a tagger or a narrator names, where, and what happens.
ADJECTIVES = "red blue green black white small big old young wet sunny crowded empty busy quiet".split()
THINGS = (
    "dog cat horse bird car bicycle boat bus train truck motorcycle airplane umbrella guitar piano"
    " laptop phone camera clock chair table bottle cup pizza cake apple banana flower tree bridge"
    " tower lighthouse castle church fountain statue kite ball tent"
).split()
PEOPLE = ["children", "people", "a woman", "a man", "students", "tourists", "a crowd", "a family", "fans"]
DOING = (
    "playing football|walking|running|dancing|cooking dinner|reading|singing|swimming|riding bikes"
    "|waiting for a bus|eating lunch|talking|laughing|shopping|painting a wall|fishing"
).split("|")
PLACES = (
    "beach|park|street|kitchen|harbour|market|station|garden|forest|lake|mountain|stadium|office"
    "|classroom|museum|airport|farm|river|city square|rooftop"
).split("|")
PREPOSITIONS = ["on the", "in the", "near the", "at the", "by the"]
TOPICS = (
    "budget|housing|election|weather|traffic|school|hospital|tax|climate|energy|water|transport"
    "|football|music|film|science|health|police|bridge|park"
).split("|")
EVENTS = "meeting|report|vote|forecast|plan|strike|protest|festival|interview|results|debate|repairs".split(
    "|"
)


def everyday_queries(n: int, seed: int) -> list[str]:
    """`n` distinct everyday queries, built from the word lists above (the same for the same seed)."""
    rng = random.Random(seed)
    templates = [
        lambda: (
            f"a {rng.choice(ADJECTIVES)} {rng.choice(THINGS)} {rng.choice(PREPOSITIONS)} {rng.choice(PLACES)}"
        ),
        lambda: f"{rng.choice(PEOPLE)} {rng.choice(DOING)} {rng.choice(PREPOSITIONS)} {rng.choice(PLACES)}",
        lambda: f"{rng.choice(TOPICS)} {rng.choice(EVENTS)}",
        lambda: f"{rng.choice(ADJECTIVES)} {rng.choice(THINGS)}",
        lambda: f"when did they talk about the {rng.choice(TOPICS)} {rng.choice(EVENTS)}",
    ]
    out: dict[str, None] = {}
    while len(out) < n:
        out[rng.choice(templates)()] = None
    return list(out)


def word_queries(corpus: Corpus, n: int, avoid: set[str]) -> list[str]:
    """`n` distinct queries of 1-3 mid-frequency corpus words (they reach the full-text channel)."""
    out: dict[str, None] = {}
    while len(out) < n:
        for words in corpus.text_queries(n):
            text = " ".join(words)
            if text not in avoid and len(out) < n:
                out[text] = None
    return list(out)


def queries_for(corpus: Corpus, n: int, seed: int) -> list[str]:
    """`n` distinct queries, every third an everyday one, the others corpus words."""
    everyday = everyday_queries(n // 3 + 1, seed)
    words = word_queries(corpus, n - len(everyday) + 1, set(everyday))
    mixed = [everyday.pop() if i % 3 == 0 else words.pop() for i in range(n)]
    assert len(set(mixed)) == n
    return mixed


class CountingEmbedder:
    """The real embedder, counting query embeddings: proves that no timed query skipped its own."""

    def __init__(self, inner: E5Embedder) -> None:
        self.inner, self.queries = inner, 0
        self.name, self.dim = inner.name, inner.dim

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        self.queries += len(texts)
        return self.inner.embed_queries(texts)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self.inner.embed_passages(texts)


def load(store: Store, corpus: Corpus, embedder: E5Embedder, labels: list[str]) -> float:
    label_vectors = dict(zip(labels, embedder.embed_passages(labels), strict=True))
    rng = np.random.default_rng(1)
    started = time.perf_counter()
    for i, (texts, _) in enumerate(corpus.batches(PER_VIDEO)):
        # Scene vectors live in the real e5 space (around embedded topic sentences), so real queries
        # land among them as they would in a real library.
        vectors = corpus.vectors(len(texts))
        video = store.add_video(OWNER, f"{i}.mp4", "k", 1, None)
        scenes = [
            SceneDraft(
                index=j,
                start_s=j * 5.0,
                end_s=j * 5.0 + 5,
                transcript=t,
                tags=[
                    Tag(label=labels[k], score=float(rng.uniform(0.2, 0.9)), source="imagenet")
                    for k in rng.choice(len(labels), size=3, replace=False)
                ],
            )
            for j, t in enumerate(texts)
        ]
        first = i == 0
        long_scenes = [j for j in range(len(texts)) if j % WINDOWS_EVERY == 0]
        window_scenes = [j for j in long_scenes for _ in range(WINDOWS_PER_LONG_SCENE)]
        windows = WindowVectors(window_scenes, VectorSet(embedder.name, corpus.vectors(len(window_scenes))))
        store.commit_video(
            CommitBundle(
                video.id,
                "en",
                scenes,
                VectorSet(embedder.name, vectors),
                [],
                label_vectors=label_vectors if first else {},
                windows=windows,
            ),
            {},
        )
    return time.perf_counter() - started


@contextmanager
def open_store(backend: str, model: str, dim: int) -> Iterator[Store]:
    """A fresh store; on PostgreSQL the HNSW index is built once after the load (see build_index)."""
    if backend == "sqlite":
        with sqlite_store() as store:
            yield store
        return
    from heimdex.store.postgres import WINDOW, _index_name

    with postgres_store() as store:
        for kind in ("text", WINDOW):  # load without the graphs, build them after
            store._indexes.add(_index_name(kind, model, dim))
        yield store


def build_index(store: Store, model: str, dim: int) -> float:
    started = time.perf_counter()
    with store.db.pool.connection() as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        with conn.transaction():
            for kind in ("text", "window"):
                store.create_vector_index(conn, kind, model, dim)
        conn.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run(size: int, n: int, backend: str, embedder: E5Embedder, labels: list[str]) -> dict[str, object]:
    corpus = Corpus(size, embedder.dim, clusters=300, vocabulary=20_000, seed=size)
    # Put the topic centres into the model's own space: real sentences' embeddings.
    topics = [" ".join(corpus.words[j] for j in corpus.rng.integers(0, 2000, size=6)) for _ in range(300)]
    corpus.centres = embedder.embed_passages(topics)
    with open_store(backend, embedder.name, embedder.dim) as store:
        figures: dict[str, object] = {"scenes": size, "backend": backend}
        figures["load_s"] = round(load(store, corpus, embedder, labels), 1)
        queries = queries_for(corpus, n + WARMUP, seed=size)  # after the load: the same corpus as before
        timed, warmup = queries[:n], queries[n:]
        if backend == "postgres":
            figures["index_build_s"] = round(build_index(store, embedder.name, embedder.dim), 1)
        counting = CountingEmbedder(embedder)
        engine = SearchEngine(store, lambda: counting, lambda key: key, query_cache_size=0)
        for q in warmup:
            engine.search(SearchRequest(owner_id=OWNER, query=q))
        counting.queries = 0
        figures["load_avg_before"] = load_average()
        times, hit_counts = [], []
        for q in timed:
            started = time.perf_counter()
            hits = engine.search(SearchRequest(owner_id=OWNER, query=q)).hits
            times.append((time.perf_counter() - started) * 1000)
            hit_counts.append(len(hits))
        figures["load_avg_after"] = load_average()
    assert counting.queries == n, f"{counting.queries} query embeddings for {n} queries"
    figures.update(
        queries=n,
        distinct_queries=len(set(timed)),
        query_embeddings=counting.queries,
        p50_ms=round(float(np.percentile(times, 50)), 2),
        p95_ms=round(float(np.percentile(times, 95)), 2),
        max_ms=round(max(times), 2),
        mean_hits=round(float(np.mean(hit_counts)), 2),
        examples=timed[:6],
    )
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--queries", type=int, default=300, help="timed queries per size, all distinct")
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument(
        "--embed-threads",
        type=int,
        default=os.cpu_count() or 1,
        help="threads of the query embedder (default: the cores, as Settings.cpu_threads gives heimdex)",
    )
    args = ap.parse_args()
    machine = {"nproc": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0))}
    before = load_average()
    embedder = E5Embedder(threads=args.embed_threads)
    labels = sorted(set(VisualTagger(threads=1).labels))
    results = []
    for size in args.scenes:
        result = run(size, args.queries, args.backend, embedder, labels)
        results.append(result)
        print(
            f"{size:>8} scenes ({args.backend}): search p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms"
            f" over {result['queries']} distinct queries (load {result['load_s']} s;"
            f" load avg {result['load_avg_before'][0]} -> {result['load_avg_after'][0]})",
            flush=True,
        )
    summary = {
        "benchmark": "search",
        "backend": args.backend,
        "query_vector_cache": False,
        "embed_threads": args.embed_threads,
        **machine,
        "load_avg_before": before,
        "load_avg_after": load_average(),
        "sizes": results,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
