"""The search engine over a real SQLite store with the real e5 text model (it loads in milliseconds)."""

from __future__ import annotations

import pytest

from heimdex.domain import SceneDraft, Tag
from heimdex.ml.text_embed import E5Embedder
from heimdex.search.engine import SearchEngine, SearchRequest
from heimdex.store import CommitBundle, ScoredScene, VectorSet
from heimdex.store.sqlite import SqliteStore

SCENES = {
    "council.mp4": [
        "The council approved the bridge repair budget.",
        "Residents asked about parking fees.",
        "The bridge will close for two weeks in May.",
        "Bridge traffic moves to the ferry.",
    ],
    "garden.mp4": ["She planted tomatoes on her rooftop garden.", "A cat sleeps on the sofa."],
}
TAGS = {("garden.mp4", 1): [Tag(label="tabby cat", score=0.8, source="imagenet")]}


class CountingEmbedder:
    """The real embedder, counting how often it is asked (to see the query-vector cache work)."""

    def __init__(self, inner: E5Embedder) -> None:
        self.inner, self.name, self.dim, self.calls = inner, inner.name, inner.dim, 0

    def embed_queries(self, texts):
        self.calls += 1
        return self.inner.embed_queries(texts)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    e5 = E5Embedder()
    store = SqliteStore(tmp_path_factory.mktemp("engine") / "h.db")
    labels = sorted({t.label for tags in TAGS.values() for t in tags})
    label_vectors = dict(zip(labels, e5.embed_passages(labels), strict=True))
    for name, texts in SCENES.items():
        video = store.add_video("me", name, "k", 1, name)
        drafts = [
            SceneDraft(
                index=i, start_s=i * 10.0, end_s=i * 10.0 + 10, transcript=t, tags=TAGS.get((name, i), [])
            )
            for i, t in enumerate(texts)
        ]
        store.commit_video(
            CommitBundle(
                video.id,
                "en",
                drafts,
                VectorSet(e5.name, e5.embed_passages(texts)),
                [],
                label_vectors=label_vectors,
            ),
            {},
        )
    counting = CountingEmbedder(e5)
    yield SearchEngine(store, lambda: counting, lambda key: key), counting
    store.close()


def search(engine, query, **kw):
    return engine[0].search(SearchRequest(owner_id="me", query=query, **kw)).hits


def test_at_most_n_hits_per_video_unless_asked(engine):
    capped = search(engine, "bridge", per_video=2)
    assert sum(h.filename == "council.mp4" for h in capped) == 2
    uncapped = search(engine, "bridge", per_video=None)
    assert sum(h.filename == "council.mp4" for h in uncapped) >= 3


def test_offset_pages_without_repeating(engine):
    first = search(engine, "bridge", per_video=None, limit=2)
    second = search(engine, "bridge", per_video=None, limit=2, offset=2)
    assert len(first) == 2 and not {h.scene_id for h in first} & {h.scene_id for h in second}


def test_quoted_phrase_is_required(engine):
    hits = search(engine, '"repair budget"')
    assert [h.scene_index for h in hits] == [0] and "<mark>repair</mark>" in hits[0].snippet


def test_visual_words_reach_tags(engine):
    (hit, *_) = search(engine, "a kitten")
    assert (hit.filename, hit.scene_index) == ("garden.mp4", 1)


def test_other_owners_see_nothing(engine):
    assert engine[0].search(SearchRequest(owner_id="someone else", query="bridge")).hits == []


def test_query_vectors_are_cached(engine):
    search(engine, "when does the bridge close")
    before = engine[1].calls
    search(engine, "when does the bridge close", offset=1)
    assert engine[1].calls == before


def test_fusion_ties_go_to_the_closer_meaning():
    # scene 1: first by words, second by meaning; scene 2: the other way round. Same RRF score.
    channels = {
        "fulltext": [ScoredScene(1, 3.2), ScoredScene(2, 2.9)],
        "semantic": [ScoredScene(2, 0.47), ScoredScene(1, 0.42)],
    }
    fused = SearchEngine._fuse(channels)
    assert [pk for pk, _ in fused] == [2, 1]
    assert fused[0][1] == pytest.approx(fused[1][1])
