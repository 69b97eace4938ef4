"""Hybrid retrieval over scenes.

Channels, each a ranked list of scenes:
- fulltext: BM25 over transcript, on-screen text and tag names (FTS5 / tsvector);
- semantic: cosine similarity of the query's e5 vector to each scene's text vector;
- visual: the query's similarity to tag names ("a cat" ~ "tabby cat"), times the tag's score;
- person: scenes where the named people appear (a filter when there are other words);
- clip (only with a CLIP-style model serving the owner, see clip_coverage.py): the query's text
  against the scenes' frames by the model's image vectors, a scene scoring its best frame.

They are fused by evidence (fusion.py): where a scene sits in the semantic band below the best
cosine, the IDF-weighted share of the query's words it holds, and its tag evidence; each hit also
gets a confidence from the same evidence. A query word that no scene holds is also searched as the
library's near words (spelling.py): misheard by the speech model, or mistyped.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from heimdex.domain import Scene, SearchHit, Video
from heimdex.errors import InvalidRequestError, NotFoundError
from heimdex.korean import has_hangul, morphemes
from heimdex.ml.base import TextEmbedder
from heimdex.search.fusion import (
    AUTO,
    COUNT_CAP,
    Evidence,
    clip_band,
    confidence,
    cut,
    fuse,
    fuse_image,
    scene_stems,
    semantic_band,
    term_weights,
)
from heimdex.search.hubness import QueryCentring
from heimdex.search.query import ParsedQuery, parse_query
from heimdex.search.snippets import make_snippet, mentions
from heimdex.search.spelling import MAX_NEAR, SHORTEST, Lexicon, spelt_alike
from heimdex.store import SceneFilter, ScoredScene, Store
from heimdex.text_windows import transcript_windows
from heimdex.words import stem

CANDIDATES = 100  # per channel, before fusion
# Tag labels match the query by meaning when the query's vector is this similar to theirs and within
# LABEL_MARGIN of the best label. Measured with e5 on the dev corpus: genuine matches score
# 0.865-0.91 ("a cat" ~ cat, "bike" ~ motorcycle, "puppy" ~ dog), unrelated pairs up to 0.855
# ("insects that migrate" ~ nematode worm, "the moon" ~ trilobite).
LABEL_MARGIN = 0.02
LABEL_MIN_SIMILARITY = 0.86
LABEL_STANDOUT = 0.03  # how far the best label must be above the 90th percentile of all labels
MAX_LABELS = 6  # labels matched by meaning
MAX_MATCHED_LABELS = 24  # all matched labels
QUERY_CACHE_SIZE = 1024
EMBED_THREADS = 4  # searches embedding their queries at once (the model's own threads are its own)
EXAMPLE_WITHIN = 5  # "more like this": the example's own scene is looked for among this many first
LABEL_WORD_WEIGHT = 0.9  # a query word that is literally a word of the label
_LABEL_WORD = re.compile(r"[\w']+")
# (owner, query text) -> (model, the text's vector) of the CLIP-style model whose frame vectors serve
# the owner, or None: the service decides which (clip_coverage.py) and embeds.
ClipQuery = Callable[[str, str], tuple[str, np.ndarray] | None]


@dataclass(frozen=True)
class SearchRequest:
    owner_id: str
    query: str
    limit: int = 10
    offset: int = 0
    per_video: int | None = 3  # None: no cap
    video_ids: tuple[str, ...] = ()
    people: tuple[str, ...] = ()
    created_from: float | None = None
    created_to: float | None = None
    min_confidence: str = AUTO  # low | medium | high, or auto: hide the low tail after better hits
    exclude_scene: str | None = None  # "more like this": the scene the example came from


@dataclass(frozen=True)
class QueryWords:
    """The query's words (loose terms and the words of its phrases), how many of the owner's scenes
    hold each, and the near words of those that none holds."""

    words: list[str]
    counts: dict[str, int]
    near: dict[str, list[str]]

    @property
    def near_terms(self) -> list[str]:
        return [w for words in self.near.values() for w in words]

    def near_stems(self) -> dict[str, frozenset[str]]:
        """Each missing word's near words as stems; a compound's halves as "stem stem" (fusion.coverage)."""
        stems = lambda words: frozenset(" ".join(map(stem, w.split())) for w in words)  # noqa: E731
        return {stem(word): stems(near) for word, near in self.near.items()}


@dataclass
class SearchResult:
    hits: list[SearchHit]
    took_ms: float
    query: ParsedQuery


class SearchEngine:
    def __init__(
        self,
        store: Store,
        embedder: Callable[[], TextEmbedder],
        thumbnail_ref: Callable[[str], str | None],
        cache_dir: Path | None = None,
        query_cache_size: int = QUERY_CACHE_SIZE,  # 0: embed every query (benchmarks)
        clip_query: ClipQuery | None = None,
    ) -> None:
        self.store = store
        self._clip_query = clip_query
        self._cache_size = query_cache_size
        self._embedder = embedder  # loaded on first use: a people-only query needs no model
        self._thumbnail_ref = thumbnail_ref
        self.centring = QueryCentring(cache_dir=cache_dir)
        self._vectors: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._lexicons: dict[str, tuple[object, Lexicon]] = {}  # owner -> (the store's word list, index)
        self._heads: tuple[list[str], dict[str, list[int]]] | None = None  # see _label_heads
        self._embed_pool = ThreadPoolExecutor(EMBED_THREADS, thread_name_prefix="query-embed")

    def search(self, request: SearchRequest) -> SearchResult:
        started = time.perf_counter()
        query = parse_query(request.query)
        if any(has_hangul(t) for t in query.terms):  # Korean words are searched as their morphemes
            query = replace(query, terms=list(dict.fromkeys(m for t in query.terms for m in _morphemes(t))))
        with self.store.one_connection():
            flt = self._filter(request, query)
            # The query is embedded while the database looks its words up and ranks full text: the
            # model runs in this process, the SQL in the server's, and neither waits for the other.
            pending = self._embedding(query)
            words = self._words(flt.owner_id, query)
            channels, labels, reference = self._channels(flt, query, words, pending)
            fused = cut(self._fuse(flt.owner_id, channels, reference, words), request.min_confidence)
            hits = self._hits(request, query, fused, channels, labels, words)
        return SearchResult(hits=hits, took_ms=(time.perf_counter() - started) * 1000, query=query)

    def _embedding(self, query: ParsedQuery) -> Future[tuple[TextEmbedder, np.ndarray]] | None:
        """The embedder and the query's vector, computed on the engine's threads; None when the query
        needs no vector (no free text, or a quoted phrase, which only full text answers)."""
        if not query.has_text or query.phrases:
            return None

        def embed() -> tuple[TextEmbedder, np.ndarray]:
            embedder = self._embedder()
            return embedder, self._query_vector(embedder, query.text)

        return self._embed_pool.submit(embed)

    def search_image(self, request: SearchRequest, model: str, vector: np.ndarray) -> SearchResult:
        """Scenes whose frames look like the example image (its `model` vector). `request.query` may
        hold person: and video: terms, which filter as in a text search; its free words are ignored."""
        started = time.perf_counter()
        query = parse_query(request.query)
        flt = self._filter(request, query)
        # one more candidate, in case the example's own scene ("more like this") is among them
        ranked = self._without_example(request, self.store.image_search(flt, model, vector, CANDIDATES + 1))
        channels = {"image": ranked}
        if flt.person_ids:
            channels["person"] = self.store.scenes_with_people(flt, CANDIDATES)
        fused = cut(fuse_image(ranked, channels.get("person")), request.min_confidence)
        hits = self._hits(request, ParsedQuery(), fused, channels, {}, QueryWords([], {}, {}))
        return SearchResult(hits=hits, took_ms=(time.perf_counter() - started) * 1000, query=query)

    def _without_example(self, request: SearchRequest, ranked: list[ScoredScene]) -> list[ScoredScene]:
        """The ranking without the example's own scene, found among the first few (it is nearly always
        first): left in, it would set the confidence cut of the rest. _hits drops it anywhere else."""
        if request.exclude_scene is None:
            return ranked
        top = self.store.scenes_by_pk(request.owner_id, [s.scene_pk for s in ranked[:EXAMPLE_WITHIN]])
        return [s for s in ranked if s.scene_pk not in top or top[s.scene_pk].id != request.exclude_scene]

    def _filter(self, request: SearchRequest, query: ParsedQuery) -> SceneFilter:
        if query.unnamed:
            example = {"person": 'person:Donna or person:"Mary Ann"', "video": "video:<video id>"}
            key = query.unnamed[0]
            raise InvalidRequestError(f"{key}: needs a name after the colon, as in {example[key]}")
        person_ids = []
        for name in (*request.people, *query.people):
            try:
                person_ids.append(self.store.get_person(request.owner_id, name).id)
            except NotFoundError as exc:
                raise NotFoundError(
                    f"no enrolled person called {name!r} (see `heimdex people list`)"
                ) from exc
        return SceneFilter(
            owner_id=request.owner_id,
            video_ids=(*request.video_ids, *query.videos),
            person_ids=tuple(dict.fromkeys(person_ids)),
            created_from=request.created_from,
            created_to=request.created_to,
        )

    def _words(self, owner_id: str, query: ParsedQuery) -> QueryWords:
        words = [*query.terms, *(w for p in query.phrases for w in _LABEL_WORD.findall(p))]
        counts = self.store.term_counts(owner_id, words, COUNT_CAP) if words else {}
        missing = [t for t in query.terms if counts.get(t, 0) == 0 and len(t) >= SHORTEST]
        if not missing or query.phrases:  # a quoted phrase means exactly these words
            return QueryWords(words, counts, {})
        lexicon = self._lexicon(owner_id)
        # Each missing word's candidates, nearest first: near the word, near its stem, and the word
        # as a compound written apart.
        found = {t: (lexicon.near(t, None), lexicon.near(stem(t), None), lexicon.splits(t)) for t in missing}
        # The library's words may be another owner's (SQLite's index is shared) or a deleted video's
        # (PostgreSQL's list only grows): of each list, the nearest MAX_NEAR the owner's scenes hold.
        asked = [w for lists in found.values() for ws in lists for w in ws]
        held = self.store.term_counts(owner_id, asked, 1)
        kept = lambda ws: [w for w in ws if held.get(w)][:MAX_NEAR]  # noqa: E731
        near = {t: list(dict.fromkeys(w for ws in lists for w in kept(ws))) for t, lists in found.items()}
        return QueryWords(words, counts, {t: ws for t, ws in near.items() if ws})

    def _lexicon(self, owner_id: str) -> Lexicon:
        """The owner's near-word index, rebuilt when the store's vocabulary changes."""
        words = self.store.vocabulary(owner_id)
        with self._cache_lock:
            # SQLite hands every owner the same word list: one index serves them all.
            shared = next((lex for listed, lex in self._lexicons.values() if listed is words), None)
            if shared is not None:
                self._lexicons[owner_id] = (words, shared)
                return shared
        lexicon = Lexicon(words)
        with self._cache_lock:
            self._lexicons[owner_id] = (words, lexicon)
        return lexicon

    def _channels(
        self,
        flt: SceneFilter,
        query: ParsedQuery,
        words: QueryWords,
        pending: Future[tuple[TextEmbedder, np.ndarray]] | None,
    ) -> tuple[dict[str, list[ScoredScene]], dict[str, float], float]:
        """The ranked list of each channel, the tag labels the query matched, and the cosine that a
        semantic hit must stand out from (fusion.semantic_band); `pending` is the query's embedding
        (see _embedding)."""
        channels: dict[str, list[ScoredScene]] = {}
        if flt.person_ids:
            channels["person"] = self.store.scenes_with_people(flt, CANDIDATES)
        if not query.has_text:
            return channels, {}, 0.0
        terms = [*query.terms, *words.near_terms]
        channels["fulltext"] = self.store.full_text(flt, terms, query.phrases, CANDIDATES)
        if pending is None:  # a quoted phrase is a hard requirement: no channel may add scenes without it
            return channels, {}, 0.0
        embedder, vector = pending.result()
        centred, scale = self.centring.centre(embedder, query.text, vector)
        semantic = [
            ScoredScene(s.scene_pk, s.score * scale, s.window)
            for s in self.store.dense_text(flt, embedder.name, centred, CANDIDATES)
        ]
        band = semantic_band(semantic)
        if band:
            channels["semantic"] = band
        reference = self.centring.background_level(embedder, centred) * scale
        labels = self._matching_labels(embedder.name, vector, query.terms)
        if labels:
            channels["visual"] = self.store.scenes_with_labels(flt, labels, CANDIDATES)
        looks = self._clip_channel(flt, query.text)
        if looks:
            channels["clip"] = looks
        return channels, labels, reference

    def _clip_channel(self, flt: SceneFilter, text: str) -> list[ScoredScene]:
        """Scenes by their best frame's CLIP similarity to the query's text, cut to its band."""
        found = self._clip_query(flt.owner_id, text) if self._clip_query is not None else None
        if found is None:
            return []
        model, vector = found
        return clip_band(self.store.image_search(flt, model, vector, CANDIDATES))

    def _query_vector(self, embedder: TextEmbedder, text: str) -> np.ndarray:
        """The query's vector, remembered: paging through results and repeated searches (the web app
        re-runs the query on every page) would otherwise pay 10-70 ms of embedding each time."""
        if not self._cache_size:
            return embedder.embed_queries([text])[0]
        key = (embedder.name, text)
        with self._cache_lock:
            vector = self._vectors.get(key)
            if vector is not None:
                self._vectors.move_to_end(key)
                return vector
        vector = embedder.embed_queries([text])[0]
        with self._cache_lock:
            self._vectors[key] = vector
            while len(self._vectors) > self._cache_size:
                self._vectors.popitem(last=False)
        return vector

    def _matching_labels(self, model: str, vector: np.ndarray, terms: list[str]) -> dict[str, float]:
        """Tag labels that mean what the query says, with a similarity as weight: by meaning (the
        query's e5 vector against each label's) and by word (a query word that is a word of the label,
        so "people walking in a street" reaches "people" although the sentence as a whole is far
        from the one-word label)."""
        names, matrix = self.store.label_vectors(model)
        if not names or matrix.shape[1] != vector.shape[0]:
            return {}
        matched: dict[str, float] = {}
        sims = matrix @ vector
        best = float(sims.max())
        # A real match stands out from the crowd of labels; a query the model cannot place (a name, a
        # made-up word) is about equally close to hundreds of them, and must match none.
        crowd = float(np.percentile(sims, 90)) if len(sims) >= 20 else -1.0
        if best >= LABEL_MIN_SIMILARITY and best - crowd >= LABEL_STANDOUT:
            close = np.flatnonzero(sims >= best - LABEL_MARGIN)
            for i in close[np.argsort(-sims[close])][:MAX_LABELS]:
                if not _spelt_like_a_term(names[i], terms):  # "gale" is near "vale" for e5, not in meaning
                    matched[names[i]] = float(sims[i])
        heads = self._label_heads(names)
        stems = {stem(t) for t in terms if len(t) >= 3}
        for i in sorted({i for s in stems for i in heads.get(s, ())}):
            name = names[i]
            matched[name] = max(matched.get(name, 0.0), float(sims[i]), LABEL_WORD_WEIGHT)
        if len(matched) > MAX_MATCHED_LABELS:
            # "dog" names 130 breeds: scoring every scene tagged with any of them cost ~60 ms at 100k
            # scenes. Keep the strongest (word matches first, then by meaning); full text still finds
            # every scene whose tags contain the word.
            closeness = dict(zip(names, sims.tolist(), strict=True))
            ranked = sorted(matched, key=lambda n: (-matched[n], -closeness[n]))
            matched = {n: matched[n] for n in ranked[:MAX_MATCHED_LABELS]}
        return matched

    def _label_heads(self, names: list[str]) -> dict[str, list[int]]:
        """Label positions by the stems of their head nouns (_label_stems), for this list of labels
        (the store hands out the same list while the labels are unchanged): a search used to stem
        every label's words again, ~1000 labels each time."""
        with self._cache_lock:
            if self._heads is not None and self._heads[0] is names:
                return self._heads[1]
        heads: dict[str, list[int]] = {}
        for i, name in enumerate(names):
            for head in _label_stems(name):
                heads.setdefault(head, []).append(i)
        with self._cache_lock:
            self._heads = (names, heads)
        return heads

    def _fuse(
        self,
        owner_id: str,
        channels: dict[str, list[ScoredScene]],
        semantic_reference: float,
        words: QueryWords,
    ) -> list[tuple[int, Evidence]]:
        """Channels fused by evidence (fusion.py); the full-text hits' words say which of the query's
        words (or their near words) each holds."""
        weights: dict[str, float] = {}
        stems_of: dict[int, frozenset[str]] = {}
        near = words.near_stems()
        fulltext = channels.get("fulltext", [])
        if fulltext:
            if words.words:
                weights = term_weights(words.words, words.counts, self.store.scene_count(owner_id))
            texts = self.store.scene_texts(owner_id, [s.scene_pk for s in fulltext])
            wanted = set(weights).union(*near.values())  # the only stems coverage asks about
            stems_of = {pk: scene_stems([text], wanted) for pk, text in texts.items()}
        return fuse(channels, weights, stems_of, semantic_reference, near)

    def _hits(
        self,
        request: SearchRequest,
        query: ParsedQuery,
        fused: list[tuple[int, Evidence]],
        channels: dict[str, list[ScoredScene]],
        labels: dict[str, float],
        words: QueryWords,
    ) -> list[SearchHit]:
        ranks = {
            name: {s.scene_pk: (rank, s.score) for rank, s in enumerate(ranked, start=1)}
            for name, ranked in channels.items()
        }
        windows = {s.scene_pk: s.window for s in channels.get("semantic", ()) if s.window is not None}
        wanted = request.offset + request.limit
        chosen: list[tuple[int, Evidence]] = []
        per_video: dict[str, int] = {}
        scenes: dict[int, Scene] = {}
        # Fetch scenes in pages: the per-video cap may skip many of the best-ranked ones.
        page_size = max(20, wanted * 2)  # just enough: the per-video cap may skip some
        for page_start in range(0, len(fused), page_size):
            page = fused[page_start : page_start + page_size]
            scenes.update(self.store.scenes_by_pk(request.owner_id, [pk for pk, _ in page]))
            for pk, evidence in page:
                scene = scenes.get(pk)
                if scene is None or scene.id == request.exclude_scene:
                    continue
                seen = per_video.get(scene.video_id, 0)
                if request.per_video is not None and seen >= request.per_video:
                    continue
                per_video[scene.video_id] = seen + 1
                chosen.append((pk, evidence))
                if len(chosen) >= wanted:
                    break
            if len(chosen) >= wanted:
                break
        page = chosen[request.offset : wanted]
        # One query for the page's videos (one each cost a round trip per hit's video).
        videos = self.store.get_videos(request.owner_id, [scenes[pk].video_id for pk, _ in page])
        hits = []
        for pk, evidence in page:
            scene = scenes[pk]
            video = videos.get(scene.video_id)
            if video is None:  # deleted since its scenes were read
                continue
            hit = self._hit(scene, video, evidence, query, ranks, pk, labels, words, windows.get(pk))
            hits.append(hit)
        return hits

    def _hit(
        self,
        scene: Scene,
        video: Video,
        evidence: Evidence,
        query: ParsedQuery,
        ranks: dict[str, dict[int, tuple[int, float]]],
        pk: int,
        labels: dict[str, float],
        words: QueryWords,
        window: int | None,
    ) -> SearchHit:
        explained: dict[str, dict[str, float | str]] = {}
        for name, by_pk in ranks.items():
            if pk in by_pk:
                rank, raw = by_pk[pk]
                explained[name] = {"rank": rank, "score": round(raw, 4)}
        if "visual" in explained:
            matched = [t.label for t in scene.tags if t.label in labels]
            explained["visual"]["labels"] = ", ".join(matched)
        near = (w for t in words.near_terms for w in t.split())  # a compound's halves are words
        terms = [*query.terms, *(w for p in query.phrases for w in p.split()), *near]
        source = scene.transcript
        if terms and not mentions(source, terms) and mentions(scene.ocr_text, terms):
            source = scene.ocr_text  # the words matched on screen, not in speech
        elif window is not None and not (terms and mentions(source, terms)):
            source = _window_text(scene.transcript, window)  # what the meaning matched, in a long scene
        return SearchHit(
            video_id=video.id,
            filename=video.filename,
            scene_id=scene.id,
            scene_index=scene.index,
            start_s=round(scene.start_s, 3),
            end_s=round(scene.end_s, 3),
            score=round(evidence.score, 6),
            confidence=confidence(evidence),
            transcript=scene.transcript,
            snippet=make_snippet(source or scene.ocr_text, terms),
            channels=explained,
            thumbnail=self._thumbnail_ref(scene.thumbnail_key) if scene.thumbnail_key else None,
            people=scene.people,
            possible_people=scene.possible_people,
            tags=[t.label for t in scene.tags],
            ocr_text=scene.ocr_text,
        )


@functools.lru_cache(maxsize=8192)
def _morphemes(term: str) -> list[str]:
    return (morphemes(term) or [term]) if has_hangul(term) else [term]


def _spelt_like_a_term(label: str, terms: list[str]) -> bool:
    return any(spelt_alike(term, word) for word in _LABEL_WORD.findall(label) for term in terms)


def _label_stems(label: str) -> frozenset[str]:
    """The head noun of each synonym in a label ("street sign" -> sign, "tabby cat" -> cat, and the
    everyday word the tagger appends, "kelpie, dog" -> dog): matching every word would send "walking"
    to "walking stick" and "red" to "red-breasted merganser"."""
    heads = set()
    for synonym in label.lower().split(","):
        words = _LABEL_WORD.findall(synonym)
        if words:
            heads.add(stem(words[-1]))
    return frozenset(heads)


def _window_text(transcript: str, part: int) -> str:
    windows = transcript_windows(transcript)
    return windows[part] if 0 <= part < len(windows) else transcript
