"""End-to-end search latency: what `heimdex search` and GET /search pay per query, warm.

    python benchmarks/bench_search.py --scenes 10000 100000 [--backend sqlite|postgres] [--queries 200]

Each query goes through SearchEngine.search: parsing, the real e5 query embedding (whole query and
its words), full text, dense similarity, tag-label matching, fusion, the per-video cap and fetching
the hits with snippets. The corpus is synthetic (bench_store.Corpus: clustered 384-d vectors, Zipf
transcripts) plus three real ImageNet tag labels per scene with their real e5 label vectors, so the
visual channel does real work. Prints p50/p95 per size and JSON on the last line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_store import Corpus, latency  # noqa: E402
from heimdex.domain import SceneDraft, Tag  # noqa: E402
from heimdex.ml.tagger import VisualTagger  # noqa: E402
from heimdex.ml.text_embed import E5Embedder  # noqa: E402
from heimdex.search.engine import SearchEngine, SearchRequest  # noqa: E402
from heimdex.store import CommitBundle, Store, VectorSet  # noqa: E402
from heimdex.store.sqlite import SqliteStore  # noqa: E402

OWNER = "bench"
PER_VIDEO = 100
EVERYDAY_QUERIES = [
    "a dog on the beach",
    "people walking in a street",
    "a red car",
    "budget meeting",
    "cup of coffee",
    "children playing football",
]


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
        store.commit_video(
            CommitBundle(
                video.id,
                "en",
                scenes,
                VectorSet(embedder.name, vectors),
                [],
                label_vectors=label_vectors if first else {},
            ),
            {},
        )
    return time.perf_counter() - started


def run(size: int, queries: int, embedder: E5Embedder, labels: list[str]) -> dict[str, object]:
    corpus = Corpus(size, embedder.dim, clusters=300, vocabulary=20_000, seed=size)
    # Put the topic centres into the model's own space: real sentences' embeddings.
    topics = [" ".join(corpus.words[j] for j in corpus.rng.integers(0, 2000, size=6)) for _ in range(300)]
    corpus.centres = embedder.embed_passages(topics)
    home = Path(tempfile.mkdtemp(prefix="heimdex-bench-search-"))
    store = SqliteStore(home / "bench.db")
    load_s = load(store, corpus, embedder, labels)
    engine = SearchEngine(store, lambda: embedder, lambda key: key)
    texts = [" ".join(words) for words in corpus.text_queries(queries)]
    mixed = [EVERYDAY_QUERIES[i % len(EVERYDAY_QUERIES)] if i % 3 == 0 else texts[i] for i in range(queries)]
    figures = latency(
        lambda i: engine.search(SearchRequest(owner_id=OWNER, query=mixed[i % queries])), queries
    )
    hits = engine.search(SearchRequest(owner_id=OWNER, query=mixed[1])).hits
    store.close()
    return {"scenes": size, "load_s": round(load_s, 1), "search": figures, "hits": len(hits)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    embedder = E5Embedder()
    labels = sorted(set(VisualTagger(threads=1).labels))
    results = []
    for size in args.scenes:
        result = run(size, args.queries, embedder, labels)
        results.append(result)
        search = result["search"]
        print(f"{size:>8} scenes: search p50 {search['p50_ms']} ms, p95 {search['p95_ms']} ms "
              f"(load {result['load_s']} s)", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
