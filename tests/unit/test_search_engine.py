"""The search engine over a real SQLite store with the real e5 text model (it loads in milliseconds)."""

from __future__ import annotations

import pytest

from heimdex.domain import SceneDraft, Tag
from heimdex.errors import HeimdexError
from heimdex.ml.text_embed import E5Embedder
from heimdex.search.engine import LABEL_MIN_SIMILARITY, SearchEngine, SearchRequest
from heimdex.search.query import parse_query
from heimdex.store import CommitBundle, VectorSet, WindowVectors
from heimdex.store.sqlite import SqliteStore
from heimdex.text_windows import transcript_windows

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

    def embed_passages(self, texts):
        return self.inner.embed_passages(texts)


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


def test_hits_carry_a_confidence_and_can_be_cut(engine):
    everything = search(engine, "when does the bridge close", min_confidence="low", per_video=None)
    assert (everything[0].scene_index, everything[0].confidence) == (2, "high")
    assert "low" in {h.confidence for h in everything[1:]}  # a shared word alone is weak evidence
    default = search(engine, "when does the bridge close", per_video=None)
    assert [h.scene_id for h in default] == [h.scene_id for h in everything if h.confidence != "low"]
    assert [h.scene_index for h in search(engine, "when does the bridge close", min_confidence="high")] == [2]


def test_a_query_with_no_answer_shows_its_closest_scenes_as_low(engine):
    hits = search(engine, "goalkeeper saves a penalty in extra time")
    assert hits and all(h.confidence == "low" for h in hits)
    assert search(engine, "goalkeeper saves a penalty in extra time", min_confidence="medium") == []


def test_an_unknown_confidence_level_is_refused(engine):
    with pytest.raises(HeimdexError, match="min_confidence"):
        search(engine, "bridge", min_confidence="certain")


def test_a_word_the_library_lacks_is_searched_as_its_near_words(engine):
    (hit, *_) = search(engine, "tomatos")  # a typo, or what the speech model wrote
    assert (hit.filename, hit.scene_index) == ("garden.mp4", 0) and "fulltext" in hit.channels
    assert "<mark>tomatoes</mark>" in hit.snippet
    words = engine[0]._words("me", parse_query("councel budget"))
    assert words.near == {"councel": ["council"]}, "a word the library holds is taken as meant"
    assert engine[0]._words("me", parse_query('"councel"')).near == {}, "a quoted phrase is exact"
    assert engine[0].search(SearchRequest(owner_id="someone else", query="tomatos")).hits == []
    assert engine[0]._words("someone else", parse_query("tomatos")).near == {}, "only the owner's words"


def test_a_compound_the_library_writes_apart_is_searched_as_its_two_words(engine):
    """ "hosepipe" where Whisper wrote "hose pipe": here "rooftopgarden" for "rooftop garden"."""
    words = engine[0]._words("me", parse_query("rooftopgarden"))
    assert words.near == {"rooftopgarden": ["rooftop garden"]}
    (hit, *_) = search(engine, "rooftopgarden")
    assert (hit.filename, hit.scene_index) == ("garden.mp4", 0) and "fulltext" in hit.channels
    assert "<mark>rooftop</mark> <mark>garden</mark>" in hit.snippet


def test_a_long_scene_is_found_by_one_of_its_sentences_and_shows_it(tmp_path):
    """The window that matched is the snippet, not the start of a long scene."""
    e5 = E5Embedder()
    store = SqliteStore(tmp_path / "h.db")
    said = (
        "Welcome to the evening bulletin. The council met for three hours to discuss the budget. "
        "Parking fees in the old town go up in March. The swimming pool will reopen after the summer"
        " with a new slide. Our reporter spoke to farmers about the dry spring. Rain is expected"
        " tomorrow across the north."
    )
    texts = [said, "A short word from our sponsor."]
    windows = transcript_windows(said)
    video = store.add_video("me", "bulletin.mp4", "k", 1, "h")
    drafts = [
        SceneDraft(index=i, start_s=i * 30.0, end_s=i * 30.0 + 30, transcript=t) for i, t in enumerate(texts)
    ]
    bundle = CommitBundle(
        video.id,
        "en",
        drafts,
        VectorSet(e5.name, e5.embed_passages(texts)),
        [],
        windows=WindowVectors([0] * len(windows), VectorSet(e5.name, e5.embed_passages(windows))),
    )
    store.commit_video(bundle, {})
    engine = SearchEngine(store, lambda: e5, lambda key: key)
    (hit, *_) = engine.search(SearchRequest(owner_id="me", query="children's waterslide comeback")).hits
    assert hit.scene_index == 0 and "semantic" in hit.channels
    assert "swimming pool" in hit.snippet and "Welcome" not in hit.snippet, hit.snippet
    store.close()


def test_a_label_spelt_like_a_query_word_is_not_matched_by_meaning(tmp_path):
    """e5 puts "gale" next to the label "valley, vale" (one letter apart, nothing alike in meaning):
    every scene tagged a valley outranked the one where "gale" was heard as "Gail"."""
    e5 = E5Embedder()
    store = SqliteStore(tmp_path / "h.db")
    label = "valley, vale"
    texts = ["Sanity and insanity overlap a fine grey line.", "Gail force winds are expected on the shore."]
    video = store.add_video("me", "weather.mp4", "k", 1, None)
    drafts = [
        SceneDraft(
            index=0,
            start_s=0,
            end_s=10,
            transcript=texts[0],
            tags=[Tag(label=label, score=0.9, source="imagenet")],
        ),
        SceneDraft(index=1, start_s=10, end_s=20, transcript=texts[1], tags=[]),
    ]
    vectors = VectorSet(e5.name, e5.embed_passages(texts))
    label_vectors = {label: e5.embed_passages([label])[0]}
    store.commit_video(CommitBundle(video.id, "en", drafts, vectors, [], label_vectors=label_vectors), {})
    engine = SearchEngine(store, lambda: e5, lambda key: key)
    try:
        assert float(label_vectors[label] @ e5.embed_queries(["gale"])[0]) >= LABEL_MIN_SIMILARITY
        hits = engine.search(SearchRequest(owner_id="me", query="gale", min_confidence="low")).hits
        assert hits[0].scene_index == 1 and "fulltext" in hits[0].channels
        assert all("visual" not in h.channels for h in hits)
        (valley, *_) = engine.search(SearchRequest(owner_id="me", query="a valley")).hits
        assert valley.scene_index == 0 and valley.channels["visual"]["labels"] == label, "its own words match"
    finally:
        store.close()
