"""End-to-end search latency: what `heimdex search` and GET /search pay per query, warm.

    python benchmarks/bench_search.py --scenes 10000 100000 [--backend sqlite|postgres] [--queries 300]
    python benchmarks/bench_search.py --backend postgres --scenes 1000000 --owners 1000   # server mode
        [--keep-library] [--profile FILE] [--graph-walk-recall]

With --owners (PostgreSQL), the scenes are spread over that many owners, a few of them big (12%, 5%,
2% and 0.8% of the scenes by default, --big-owners), the rest ~800 scenes each at 1M; each owner has
two enrolled people seen in 5% of their scenes each. The library is loaded with COPY (the rows
commit_video writes), the HNSW graphs built after. Every timed query is another owner's (one in five a
big owner's, one in seven names a person), --rounds rounds of new distinct queries; figures per round
and their median, split by small/big owners, person queries and an owner's first search in the
process, and where the time went (each store method the engine called, the query embedding, the
near-word index build, round trips to the server: mean and p95 per search, which a loaded machine
shifts less than the totals). Dense recall@10 is measured inside owners against the exact top 10 in
numpy (scene and window vectors read back with plain SQL), for the store's own path and, with
--graph-walk-recall, for the owner-filtered HNSW walk. --keep-library keeps the loaded library in a
database of its own (tests/services.py kept_database, named after what was loaded) and the next run
with the same sizes searches it again instead of loading for half an hour; the queries are the same
either way.

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
import cProfile
import hashlib
import json
import os
import pstats
import random
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_store import Corpus, build_indexes, postgres_store, sqlite_store  # noqa: E402
from heimdex.domain import SceneDraft, Tag  # noqa: E402
from heimdex.ml.tagger import VisualTagger  # noqa: E402
from heimdex.ml.text_embed import E5Embedder  # noqa: E402
from heimdex.search.engine import CANDIDATES, SearchEngine, SearchRequest  # noqa: E402
from heimdex.store import CommitBundle, SceneFilter, Store, VectorSet, WindowVectors  # noqa: E402
from heimdex.store.sql import SCENE_COLUMNS  # noqa: E402

OWNER = "bench"
T = TypeVar("T")
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
    """The real embedder, counting query embeddings: proves that no timed query skipped its own (and
    timing them, with `timings`)."""

    def __init__(self, inner: E5Embedder, timings: Timings | None = None) -> None:
        self.inner, self.queries, self.timings = inner, 0, timings
        self.name, self.dim = inner.name, inner.dim

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        self.queries += len(texts)
        if self.timings is None:
            return self.inner.embed_queries(texts)
        return self.timings.timed("embed_query", self.inner.embed_queries)(texts)

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


def build_index(store: Store, model: str, dim: int, rows: int = 0) -> float:
    """The scene and window graphs of the model, built once after the load (bench_store.build_indexes)."""
    return build_indexes(store, [("text", model, dim), ("window", model, dim)], rows)


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


# ---------------------------------------------------------------- many owners (server mode, issue 10)

FACE_MODEL = "bench-face"
PEOPLE_NAMES = ("Ann", "Ben")  # every owner enrols two people
FACE_SHARE = 0.05  # share of an owner's scenes where each of them appears
BIG_SHARES = (0.12, 0.05, 0.02, 0.008)  # default big owners, as shares of all scenes


def owner_plan(scenes: int, owners: int, big: list[int], seed: int) -> list[str]:
    """The owner of each video (PER_VIDEO scenes): `big` owners with about those many scenes, the
    rest of the videos dealt round-robin to the other owners; shuffled, so that owners' scenes
    interleave in the tables as on a shared server."""
    videos = -(-scenes // PER_VIDEO)
    plan = [f"big-{k}" for k, n in enumerate(big) for _ in range(max(1, round(n / PER_VIDEO)))]
    small = owners - len(big)
    if small <= 0 or len(plan) >= videos:
        raise SystemExit("--big-owners leave no videos or no owners for the others")
    plan += [f"owner-{j % small:04d}" for j in range(videos - len(plan))]
    random.Random(seed).shuffle(plan)
    return plan


@dataclass
class OwnerVectors:
    """What an owner's exact dense search is computed from: scene pks, their vectors, and windows,
    read back with plain SQL (not through the store's search paths)."""

    pks: np.ndarray
    vectors: np.ndarray
    window_pks: np.ndarray
    windows: np.ndarray

    @classmethod
    def read(cls, store, owner: str, model: str) -> OwnerVectors:
        def rows(table: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
            got = store.db.binary(
                f"SELECT v.scene_pk, v.vector FROM scenes s JOIN {table} v ON v.scene_pk = s.pk"
                f" WHERE s.owner_id = ? AND v.model = ?{kind}",
                (owner, model),
            )
            pks = np.array([r["scene_pk"] for r in got], dtype=np.int64)
            return pks, np.stack([r["vector"].to_numpy() for r in got]) if got else np.zeros((0, 1))

        return cls(*rows("scene_vectors", " AND v.kind = 'text'"), *rows("scene_windows", ""))

    def exact_top(self, query: np.ndarray, k: int) -> list[int]:
        best = dict(zip(self.pks.tolist(), (self.vectors @ query).tolist(), strict=True))
        if len(self.window_pks):
            for pk, sim in zip(self.window_pks.tolist(), (self.windows @ query).tolist(), strict=True):
                if sim > best[pk]:
                    best[pk] = sim
        return [pk for pk, _ in sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]


def copy_load(
    store,
    corpus: Corpus,
    embedder: E5Embedder,
    labels: list[str],
    plan: list[str],
) -> float:
    """Load with COPY, the rows commit_video writes (scenes through its own row builder, so the
    generated tsvector is the same), 100 videos a transaction: a 1M-scene load through commit_video
    took ~10 min without tags and windows. Vectors go in binary. Indexes stay (GIN, btree); the HNSW
    graphs are built after (build_index)."""
    from pgvector.psycopg import register_vector

    label_vectors = dict(zip(labels, embedder.embed_passages(labels), strict=True))
    rng = np.random.default_rng(1)
    people: dict[str, list[str]] = {}
    started = time.perf_counter()
    now = time.time()
    with store.db.pool.connection() as conn:
        register_vector(conn)
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO label_vectors (label, model, dim, vector) VALUES (%s, %s, %s, %b)",
                [(k, embedder.name, embedder.dim, v.astype(np.float32)) for k, v in label_vectors.items()],
            )
            for owner in dict.fromkeys(plan):
                people[owner] = [f"{owner}-p{k}" for k in range(len(PEOPLE_NAMES))]
                cur.executemany(
                    "INSERT INTO people (id, owner_id, name, created_at) VALUES (%s, %s, %s, %s)",
                    [(pid, owner, name, now) for pid, name in zip(people[owner], PEOPLE_NAMES, strict=True)],
                )
        batches = corpus.batches(PER_VIDEO)
        for first in range(0, len(plan), 100):
            with conn.transaction(), conn.cursor() as cur:
                videos, scene_rows, vectors, windows, tags = [], [], [], [], []
                for i in range(first, min(first + 100, len(plan))):
                    texts, _ = next(batches)
                    video = {"id": f"v{i:06d}", "owner_id": plan[i]}
                    videos.append(
                        (video["id"], plan[i], f"{i}.mp4", "k", 1, "indexed", "en", len(texts), now, now)
                    )
                    vecs = corpus.vectors(len(texts))
                    long_scenes = [j for j in range(len(texts)) if j % WINDOWS_EVERY == 0]
                    wins = [j for j in long_scenes for _ in range(WINDOWS_PER_LONG_SCENE)]
                    wvecs = corpus.vectors(len(wins))
                    for j, t in enumerate(texts):
                        chosen = rng.choice(len(labels), size=3, replace=False)
                        draft = SceneDraft(
                            index=j,
                            start_s=j * 5.0,
                            end_s=j * 5.0 + 5,
                            transcript=t,
                            tags=[Tag(label=labels[k], score=0.5, source="imagenet") for k in chosen],
                        )
                        scene_rows.append(store._scene_row(video, draft))
                        tags += [(video["id"], j, labels[k], float(rng.uniform(0.2, 0.9))) for k in chosen]
                    vectors.append((video["id"], vecs))
                    windows.append((video["id"], wins, wvecs))
                with cur.copy(
                    "COPY videos (id, owner_id, filename, original_key, size_bytes, state, language,"
                    " scene_count, created_at, updated_at) FROM STDIN"
                ) as cp:
                    for row in videos:
                        cp.write_row(row)
                with cur.copy(f"COPY scenes ({SCENE_COLUMNS}) FROM STDIN") as cp:
                    for row in scene_rows:
                        cp.write_row(row)
                ids = [v[0] for v in videos]
                cur.execute("SELECT pk, video_id, idx FROM scenes WHERE video_id = ANY(%s)", (ids,))
                pk_of = {(r["video_id"], r["idx"]): int(r["pk"]) for r in cur.fetchall()}
                owner_of = {v[0]: v[1] for v in videos}
                with cur.copy(
                    "COPY scene_vectors (scene_pk, kind, model, dim, vector) FROM STDIN (FORMAT BINARY)"
                ) as cp:
                    cp.set_types(["bigint", "text", "text", "integer", "vector"])
                    for vid, vecs in vectors:
                        pks = [pk_of[(vid, j)] for j in range(len(vecs))]
                        for pk, v in zip(pks, vecs, strict=True):
                            cp.write_row((pk, "text", embedder.name, embedder.dim, v))
                with cur.copy(
                    "COPY scene_windows (scene_pk, part, model, dim, vector) FROM STDIN (FORMAT BINARY)"
                ) as cp:
                    cp.set_types(["bigint", "integer", "text", "integer", "vector"])
                    for vid, wins, wvecs in windows:
                        pks = [pk_of[(vid, j)] for j in wins]
                        for part, (pk, v) in enumerate(zip(pks, wvecs, strict=True)):
                            cp.write_row((pk, part, embedder.name, embedder.dim, v))
                with cur.copy("COPY scene_tags (scene_pk, label, score, source) FROM STDIN") as cp:
                    for vid, j, label, score in tags:
                        cp.write_row((pk_of[(vid, j)], label, score, "imagenet"))
                # faces: each person of the owner in FACE_SHARE of the scenes, one face a scene at most
                face_scene, face_person = [], []
                for (vid, _j), pk in pk_of.items():
                    draw = rng.random()
                    for k, pid in enumerate(people[owner_of[vid]]):
                        if FACE_SHARE * k <= draw < FACE_SHARE * (k + 1):
                            face_scene.append(pk)
                            face_person.append(pid)
                if face_scene:
                    cur.execute(
                        "INSERT INTO faces (scene_pk, video_id, owner_id, t_s, box, score, model, embedding)"
                        ' SELECT s.pk, s.video_id, s.owner_id, s.start_s, \'{"x":0,"y":0,"w":10,"h":10}\','
                        " 0.9, %s, '[0.5,0.5,0.5,0.5]' FROM scenes s WHERE s.pk = ANY(%s)",
                        (FACE_MODEL, face_scene),
                    )
                    cur.execute(
                        "INSERT INTO face_matches (face_pk, person_id, distance, possible)"
                        " SELECT f.pk, p.person_id, p.distance, false FROM faces f"
                        " JOIN unnest(%s::bigint[], %s::text[], %s::float8[])"
                        " AS p (scene_pk, person_id, distance)"
                        " ON p.scene_pk = f.scene_pk",
                        (face_scene, face_person, rng.uniform(0.2, 0.5, size=len(face_scene)).tolist()),
                    )
            done = min(first + 100, len(plan)) * PER_VIDEO
            if (first // 100) % 10 == 0:
                print(f"  {done} scenes ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
        conn.execute("ANALYZE")
    return time.perf_counter() - started


def percentiles(times: list[float]) -> dict[str, float]:
    return {
        "n": len(times),
        "p50_ms": round(float(np.percentile(times, 50)), 2),
        "p95_ms": round(float(np.percentile(times, 95)), 2),
    }


def dense_recall(store, model: str, embedder, owners: list[str], texts: list[str]) -> dict[str, float]:
    """Recall@10 of the store's dense channel (asked for CANDIDATES, as the engine asks) inside each
    query's owner, against the exact top 10 of that owner's scene and window vectors in numpy, and
    the channel's latency."""
    found, times, truth = 0, [], {}
    for owner, text in zip(owners, texts, strict=True):
        if owner not in truth:
            truth[owner] = OwnerVectors.read(store, owner, model)
        query = embedder.embed_queries([text])[0]
        started = time.perf_counter()
        hits = store.dense_text(SceneFilter(owner_id=owner), model, query, CANDIDATES)
        times.append((time.perf_counter() - started) * 1000)
        found += len({s.scene_pk for s in hits[:10]} & set(truth[owner].exact_top(query, 10)))
    return {"recall_at_10": round(found / (10 * len(texts)), 4), **percentiles(times)}


class Timings:
    """Where each search's time goes: the store methods the engine calls, the query embedding (on
    the engine's own thread, overlapping the SQL), the near-word index build, and the database round
    trips (statements, pool checks, BEGIN/COMMIT). Components are summed per search."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.current: dict[str, float] = defaultdict(float)
        self.searches: list[dict[str, float]] = []

    def add(self, name: str, value: float) -> None:
        with self.lock:
            self.current[name] += value

    def timed(self, name: str, fn: Callable[..., T]) -> Callable[..., T]:
        def run(*args: object, **kwargs: object) -> T:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(name, (time.perf_counter() - started) * 1000)

        return run

    def end_search(self, wall_ms: float) -> None:
        with self.lock:
            self.current["wall"] = wall_ms
            self.searches.append(dict(self.current))
            self.current.clear()

    def summary(self) -> dict[str, dict[str, float]]:
        """Per component: mean and p95 over all searches (0 where a search did not use it), and the
        share of searches that used it; slowest first."""
        names = {k for one in self.searches for k in one}
        out = {}
        for name in names:
            values = [one.get(name, 0.0) for one in self.searches]
            out[name] = {
                "mean": round(float(np.mean(values)), 2),
                "p95": round(float(np.percentile(values, 95)), 2),
                "used_by": round(sum(1 for v in values if v) / len(values), 2),
            }
        return dict(sorted(out.items(), key=lambda kv: -kv[1]["mean"]))


class TimedStore:
    """The store, each public method the engine calls timed into `timings` as store.<name>."""

    def __init__(self, store: Store, timings: Timings) -> None:
        self._store, self._timings = store, timings

    def __getattr__(self, name: str) -> object:
        attr = getattr(self._store, name)
        if name.startswith("_") or name == "one_connection" or not callable(attr):
            return attr
        return self._timings.timed(f"store.{name}", attr)


@contextmanager
def counting_round_trips(timings: Timings) -> Iterator[None]:
    """Count what goes to the server from this process: statements (a pool's liveness check is an
    empty one) and transaction commands. A benchmark's instrument only: psycopg is patched meanwhile."""
    import psycopg

    execute, command = psycopg.Cursor.execute, psycopg.Connection._exec_command

    def counted_execute(self, *args, **kwargs):
        timings.add("round_trips", 1)
        return execute(self, *args, **kwargs)

    def counted_command(self, *args, **kwargs):
        timings.add("round_trips", 1)
        return command(self, *args, **kwargs)

    psycopg.Cursor.execute, psycopg.Connection._exec_command = counted_execute, counted_command
    try:
        yield
    finally:
        psycopg.Cursor.execute, psycopg.Connection._exec_command = execute, command


@contextmanager
def timed_lexicons(timings: Timings) -> Iterator[None]:
    """Time the engine's near-word index builds (search/spelling.py Lexicon)."""
    from heimdex.search import engine as engine_module

    original = engine_module.Lexicon
    engine_module.Lexicon = timings.timed("lexicon_build", original)
    try:
        yield
    finally:
        engine_module.Lexicon = original


def library_name(size: int, args: argparse.Namespace, big: list[int]) -> str:
    """The kept library's database name: it changes with anything that changes what is loaded."""
    recipe = json.dumps(
        [size, args.owners, big, PER_VIDEO, WINDOWS_EVERY, WINDOWS_PER_LONG_SCENE, FACE_SHARE]
    )
    return f"{size}s_{args.owners}o_{hashlib.sha1(recipe.encode()).hexdigest()[:8]}"


@contextmanager
def owners_library(name: str | None, model: str, dim: int) -> Iterator[tuple[Store, dict | None]]:
    """The store of the many-owner library and, when it was built by an earlier run (--keep-library),
    that build's figures. Without a name: a new database, dropped at exit. With one: a database kept
    on the server (tests/services.py kept_database), used again when its build had finished."""
    if name is None:
        with open_store("postgres", model, dim) as store:
            yield store, None
        return
    import psycopg
    from tests import services

    from heimdex.store.postgres import WINDOW, PostgresStore, _index_name

    url, existed = services.kept_database(name)
    built = None
    if existed:
        with psycopg.connect(url, autocommit=True) as conn:
            if conn.execute("SELECT to_regclass('bench_library') IS NOT NULL").fetchone()[0]:
                built = conn.execute("SELECT figures FROM bench_library").fetchone()[0]
        if built is None:  # an earlier build stopped half-way: start again
            services.drop_kept_database(url)
            url, _ = services.kept_database(name)
    store = PostgresStore(url)
    if built is None:
        for kind in ("text", WINDOW):  # load without the graphs, build them after
            store._indexes.add(_index_name(kind, model, dim))
    try:
        yield store, built
    finally:
        store.close()


def mark_built(store, figures: dict[str, object]) -> None:
    with store.db.tx() as s:
        s.execute("CREATE TABLE bench_library (figures jsonb NOT NULL)")
        s.execute("INSERT INTO bench_library (figures) VALUES (?::jsonb)", (json.dumps(figures),))


def build_library(store, size: int, args, embedder, labels: list[str], plan: list[str]) -> dict[str, object]:
    corpus = Corpus(size, embedder.dim, clusters=300, vocabulary=20_000, seed=size)
    topics = [" ".join(corpus.words[j] for j in corpus.rng.integers(0, 2000, size=6)) for _ in range(300)]
    corpus.centres = embedder.embed_passages(topics)
    figures: dict[str, object] = {"load_s": round(copy_load(store, corpus, embedder, labels, plan), 1)}
    figures["index_build_s"] = round(build_index(store, embedder.name, embedder.dim, size), 1)
    figures["built"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    figures["load_avg_at_build_end"] = load_average()
    print(
        f"  loaded in {figures['load_s']} s, HNSW built in {figures['index_build_s']} s",
        file=sys.stderr,
        flush=True,
    )
    return figures


def run_owners(
    size: int, args: argparse.Namespace, embedder: E5Embedder, labels: list[str]
) -> dict[str, object]:
    """The whole search on PostgreSQL with the scenes spread over many owners, every query another
    owner's: most of them small (below EXACT_BELOW), one in five one of the big owners."""
    n, rounds = args.queries, args.rounds
    big = args.big_owners if args.big_owners is not None else [round(size * s) for s in BIG_SHARES]
    plan = owner_plan(size, args.owners, big, seed=size)
    big_owners = [f"big-{k}" for k in range(len(big))]
    small_owners = sorted(set(plan) - set(big_owners))
    name = library_name(size, args, big) if args.keep_library else None
    with owners_library(name, embedder.name, embedder.dim) as (store, built):
        figures: dict[str, object] = {"scenes": size, "backend": "postgres", "owners": len(set(plan))}
        if built is None:
            built = build_library(store, size, args, embedder, labels, plan)
            if name is not None:
                mark_built(store, built)
        else:
            print(f"  the library {name} built {built['built']}: used again", file=sys.stderr, flush=True)
            figures["library_reused"] = name
        figures.update(built)
        figures["big_owner_scenes"] = {o: store.scene_count(o) for o in big_owners}
        figures["small_owner_scenes"] = int(np.median([plan.count(o) * PER_VIDEO for o in small_owners]))
        # The queries' words come from the corpus's vocabulary (the same seed: the same words), drawn
        # by a corpus of their own, so that a library used again gets the same queries.
        words = Corpus(1, embedder.dim, clusters=300, vocabulary=20_000, seed=size)
        queries = queries_for(words, n * rounds + WARMUP + 2 * args.recall_queries, seed=size)
        rng = random.Random(size)

        def owner_of(i: int) -> str:
            return big_owners[i // 5 % len(big_owners)] if i % 5 == 4 else rng.choice(small_owners)

        def request(i: int, text: str) -> SearchRequest:
            owner = owner_of(i)
            if i % 7 == 3:  # some queries name a person: the person channel, and a filter on the others
                text = f"person:{PEOPLE_NAMES[i % 2]} {text}"
            return SearchRequest(owner_id=owner, query=text)

        timings = Timings()
        counting = CountingEmbedder(embedder, timings)
        engine = SearchEngine(
            TimedStore(store, timings), lambda: counting, lambda key: key, query_cache_size=0
        )
        seen: set[str] = set()  # owners searched before (the store keeps some data per owner)
        for i, q in enumerate(queries[:WARMUP]):
            warm = request(i, q)
            engine.search(warm)
            seen.add(warm.owner_id)
        timed = queries[WARMUP : WARMUP + n * rounds]
        profile = cProfile.Profile() if args.profile else None

        per_round = []
        for r in range(rounds):
            counting.queries = 0
            timings.searches.clear()
            load_before = load_average()
            times: dict[str, list[float]] = {"small": [], "big": [], "person": [], "owner_first": []}
            every, hit_counts = [], []
            with counting_round_trips(timings), timed_lexicons(timings):
                for i, q in enumerate(timed[r * n : (r + 1) * n]):
                    req = request(i, q)
                    timings.current.clear()
                    if profile is not None:
                        profile.enable()
                    started = time.perf_counter()
                    hits = engine.search(req).hits
                    ms = (time.perf_counter() - started) * 1000
                    if profile is not None:
                        profile.disable()
                    timings.end_search(ms)
                    every.append(ms)
                    times["big" if req.owner_id in big_owners else "small"].append(ms)
                    if req.query.startswith("person:"):
                        times["person"].append(ms)
                    if req.owner_id not in seen:  # the owner's first search in this process (nothing cached)
                        times["owner_first"].append(ms)
                        seen.add(req.owner_id)
                    hit_counts.append(len(hits))
            assert counting.queries == n, f"{counting.queries} query embeddings for {n} queries"
            figures_round = {
                "all": percentiles(every),
                **{k: percentiles(v) for k, v in times.items() if v},
                "max_ms": round(max(every), 2),
                "mean_hits": round(float(np.mean(hit_counts)), 2),
                "load_avg_before": load_before,
                "load_avg_after": load_average(),
                "components_ms": timings.summary(),
            }
            per_round.append(figures_round)
            print(f"  round {r + 1}: {json.dumps(figures_round)}", file=sys.stderr, flush=True)
        if profile is not None:
            profile.dump_stats(args.profile)
            pstats.Stats(profile, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
        figures["rounds"] = per_round
        figures["median_p50_ms"] = round(float(np.median([x["all"]["p50_ms"] for x in per_round])), 2)
        figures["median_p95_ms"] = round(float(np.median([x["all"]["p95_ms"] for x in per_round])), 2)
        figures["p50_ms"], figures["p95_ms"] = figures["median_p50_ms"], figures["median_p95_ms"]
        rest = queries[WARMUP + n * rounds :]
        k = args.recall_queries
        figures["dense_recall"] = {
            "small_owners": dense_recall(
                store, embedder.name, embedder, [rng.choice(small_owners) for _ in range(k)], rest[:k]
            ),
            **{
                o: dense_recall(store, embedder.name, embedder, [o] * (k // 2), rest[k : k + k // 2])
                for o in big_owners
            },
        }
        if args.graph_walk_recall:
            # The graph walk filtered to one owner (hnsw.iterative_scan), which large owners used before
            # their vectors were kept in memory, and still use past the store's memory budget.
            budget, store.dense_cache_bytes = store.dense_cache_bytes, 0
            figures["dense_recall_graph_walk"] = {
                o: dense_recall(store, embedder.name, embedder, [o] * (k // 2), rest[k : k + k // 2])
                for o in big_owners
                if figures["big_owner_scenes"][o] >= store.exact_below
            }
            store.dense_cache_bytes = budget
        figures["queries"] = n
        figures["distinct_queries"] = len(set(timed))
        figures["examples"] = [request(i, q).query for i, q in enumerate(timed[:6])]
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
    ap.add_argument(
        "--owners", type=int, default=1, help="PostgreSQL: spread the scenes over this many owners"
    )
    ap.add_argument(
        "--big-owners",
        type=lambda v: [int(x) for x in v.split(",") if x],
        default=None,
        help="with --owners: scene counts of the big owners (default 12%%, 5%%, 2%%, 0.8%% of the scenes)",
    )
    ap.add_argument("--rounds", type=int, default=3, help="with --owners: timed rounds (new queries each)")
    ap.add_argument("--recall-queries", type=int, default=100, help="with --owners: dense recall queries")
    ap.add_argument(
        "--keep-library",
        action="store_true",
        help="with --owners: keep the loaded library in its own database and use it again next time"
        " (built once: 1M scenes took ~30 min to load and index)",
    )
    ap.add_argument("--profile", help="with --owners: write cProfile stats of the timed searches here")
    ap.add_argument(
        "--graph-walk-recall",
        action="store_true",
        help="with --owners: also the recall of the owner-filtered HNSW walk for the big owners (slow)",
    )
    args = ap.parse_args()
    if args.owners > 1 and args.backend != "postgres":
        ap.error("--owners is for --backend postgres (server mode)")
    machine = {"nproc": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0))}
    before = load_average()
    embedder = E5Embedder(threads=args.embed_threads)
    labels = sorted(set(VisualTagger(threads=1).labels))
    results = []
    for size in args.scenes:
        if args.owners > 1:
            result = run_owners(size, args, embedder, labels)
            results.append(result)
            print(
                f"{size:>8} scenes over {result['owners']} owners (postgres): whole search, median of"
                f" {args.rounds} rounds: p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms;"
                f" dense recall@10 {json.dumps(result['dense_recall'])}; load avg now {load_average()}",
                flush=True,
            )
            continue
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
        "owners": args.owners,
        **machine,
        "load_avg_before": before,
        "load_avg_after": load_average(),
        "sizes": results,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
