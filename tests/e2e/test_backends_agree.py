"""The two backends answer every query alike: the same corpus indexed on embedded SQLite and on
PostgreSQL + pgvector (with S3 blobs) gives the same hits, in the same order, with the same fused
scores, channel ranks and snippets.

Only a full-text channel's raw score and rank may differ, by design (SQLite's BM25 against
PostgreSQL's ts_rank_cd): fusion uses neither (search/fusion.py scores the words each scene holds,
and breaks ties by the other channels), so the fused order agrees even where they differ. Both
deployments are alive at once (the session-wide `indexed` fixture holds one backend at a time), so
this module indexes its own small corpus, the e2e news video and three short clips, on each with
the session's models.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from heimdex.domain import SearchHit
from heimdex.service import Heimdex
from tests import assets
from tests.e2e.conftest import backend_app, news_video
from tests.e2e.test_scale_out import small_video

pytestmark = pytest.mark.slow

BACKENDS = ("embedded", "server")

# (query, search keywords): every channel alone and together, filters, paging, no cap.
QUERIES: list[tuple[str, dict]] = [
    ("cheap housing close to the railway", {}),  # paraphrase: meaning first
    ("helmets", {}),  # one word: full text
    ("helmits", {}),  # a typo: searched as its near words (SQLite knows stems, PostgreSQL words too)
    ("farmers market", {}),  # on-screen text
    ("a cat", {}),  # tags
    ("person:Jesper", {}),  # a person alone
    ("person:Donna rooftop garden", {}),  # a person, words ranking their scenes
    ('"train station"', {}),  # a quoted phrase is required
    ("harbour", {}),  # a word of one short clip's speech and caption
    ("today we visit the town", {"all_scenes": True, "limit": 20}),  # every clip, no per-video cap
    ("today we visit the town", {"all_scenes": True, "limit": 3, "offset": 2}),  # a later page
    ("ferry timetable this winter", {}),
    ("기차역 근처의 저렴한 주택", {}),  # Korean: the centred query vector
    ("quantum chromodynamics lecture", {}),  # about nothing here: whatever ranks, ranks alike
]
FLOAT = {"rel": 1e-4, "abs": 1e-6}  # float32 vectors in numpy and in pgvector
PARAMS = [pytest.param(q, kw, id=f"{q}{kw or ''}") for q, kw in QUERIES]


@pytest.fixture(scope="module")
def apps(tmp_path_factory, models) -> Iterator[dict[str, Heimdex]]:
    videos = [news_video(), *(small_video(i) for i in range(3))]
    with (
        backend_app("embedded", tmp_path_factory.mktemp("agree-embedded"), models) as embedded,
        backend_app("server", tmp_path_factory.mktemp("agree-server"), models) as server,
    ):
        both = {"embedded": embedded, "server": server}
        for app in both.values():
            for path in videos:
                video = app.process(app.add_file(path).video.id)
                assert video.state.value == "indexed", video.error
            app.enrol("Jesper", [assets.kphotoalbum_photo("jesper.jpg")])
            app.enrol("Donna", [assets.kphotoalbum_photo("donna.jpg")])
        yield both


def scenes_by_file(app: Heimdex) -> dict[str, list]:
    return {v.filename: app.store.job_scenes(v.id) for v in app.videos()}


def test_both_backends_indexed_the_same_scenes(apps):
    """What the searches below compare rests on this: the pipeline wrote the same scenes to both."""
    embedded, server = (scenes_by_file(apps[b]) for b in BACKENDS)
    assert sorted(embedded) == sorted(server) and len(embedded) == 4
    for filename, scenes in embedded.items():
        others = server[filename]
        assert [s.index for s in scenes] == [s.index for s in others], filename
        for a, b in zip(scenes, others, strict=True):
            assert (a.start_s, a.end_s) == pytest.approx((b.start_s, b.end_s)), (filename, a.index)
            assert (a.transcript, a.ocr_text, a.people) == (b.transcript, b.ocr_text, b.people)
            assert [t.label for t in a.tags] == [t.label for t in b.tags]
            assert [t.score for t in a.tags] == pytest.approx([t.score for t in b.tags], **FLOAT)
    assert any(s.people == ["Jesper"] for s in embedded["e2e_news.mp4"])


def comparable(hit: SearchHit) -> dict:
    """A hit without what differs by design: ids (random per deployment), the thumbnail's address
    (a local path or a presigned URL) and the full-text channel's raw score."""
    channels = {
        # a full-text score and rank are each database's own; fusion reads neither (see the docstring)
        name: {k: v for k, v in channel.items() if not (name == "fulltext" and k in ("score", "rank"))}
        for name, channel in hit.channels.items()
    }
    return {
        "scene": (hit.filename, hit.scene_index),
        "times": (hit.start_s, hit.end_s),
        "transcript": hit.transcript,
        "snippet": hit.snippet,
        "people": hit.people,
        "tags": hit.tags,
        "ocr_text": hit.ocr_text,
        "channels": channels,
    }


def ranking(hits: list[SearchHit]) -> list[str]:
    """Each hit as "file#scene channel:rank ...", to read a disagreement at a glance (full text
    only as present: its rank is each database's own)."""
    return [
        f"{h.filename}#{h.scene_index} "
        + " ".join(
            name if name == "fulltext" else f"{name}:{int(float(c['rank']))}"
            for name, c in sorted(h.channels.items())
        )
        for h in hits
    ]


def search_both(apps: dict[str, Heimdex], query: str, **kw) -> tuple[list[SearchHit], list[SearchHit]]:
    embedded, server = (apps[b].search(query, **kw).hits for b in BACKENDS)
    return embedded, server


@pytest.mark.parametrize(("query", "kw"), PARAMS)
def test_same_hits_same_order_same_snippets(apps, query, kw):
    embedded, server = search_both(apps, query, **kw)
    assert embedded, f"no hits for {query!r}: nothing compared"
    assert ranking(embedded) == ranking(server)
    assert [comparable(h) for h in embedded] == [comparable(h) for h in server]
    # the fused score is computed from the same evidence on both: equal up to float32 rounding
    assert [h.score for h in embedded] == pytest.approx([h.score for h in server], **FLOAT)
    for a, b in zip(embedded, server, strict=True):
        for name in set(a.channels) - {"fulltext"}:
            assert a.channels[name].get("score") == pytest.approx(b.channels[name].get("score"), **FLOAT)


def test_full_text_scorers_differ_but_the_fused_order_does_not(apps):
    """ "a cat": the two full-text scorers (BM25 normalises by document length, ts_rank_cd with
    normalisation 1 by its logarithm; the field weights differ too) order the two cat-tagged scenes
    differently. Fusion never reads that order when other channels rank the scenes, so the hits agree."""

    def ranks(hits: list[SearchHit], channel: str) -> dict[tuple[str, int], float]:
        return {
            (h.filename, h.scene_index): h.channels[channel]["rank"] for h in hits if channel in h.channels
        }

    embedded, server = search_both(apps, "a cat")
    assert ranks(embedded, "fulltext") != ranks(server, "fulltext")  # the scorers do disagree here
    assert ranking(embedded) == ranking(server)
    for channel in ("semantic", "visual", "person"):
        assert ranks(embedded, channel) == ranks(server, channel), channel


def test_video_filter_agrees(apps):
    """`video:ID` takes each deployment's own id for the same file."""
    results = []
    for backend in BACKENDS:
        app = apps[backend]
        (news,) = [v for v in app.videos() if v.filename == "e2e_news.mp4"]
        results.append(app.search(f"video:{news.id} garden", all_scenes=True).hits)
    embedded, server = results
    assert embedded and {h.filename for h in embedded} == {"e2e_news.mp4"}
    assert ranking(embedded) == ranking(server)
    assert [comparable(h) for h in embedded] == [comparable(h) for h in server]


def test_the_queries_reach_every_channel(apps):
    """The comparison above is only as good as its queries: together they use every channel."""
    used = {
        name for q, kw in QUERIES for hit in apps["embedded"].search(q, **kw).hits for name in hit.channels
    }
    assert used == {"fulltext", "semantic", "visual", "person"}


def test_a_typo_finds_the_word_on_both_backends(apps):
    """SQLite's vocabulary holds stems ("helmet"), PostgreSQL's words and stems: both find the scene
    that says "helmets" for "helmits", through full text."""
    for backend in BACKENDS:
        hits = apps[backend].search("helmits").hits
        assert hits and "fulltext" in hits[0].channels and "<mark>helmets</mark>" in hits[0].snippet, backend


def test_a_short_word_finds_its_homophone_on_both_backends(apps):
    """Four letters get no near words by spelling, only by sound: "ware" finds the scene that says
    "wear" (CMU Pronouncing Dictionary: W EH R) through full text, and only that scene. (Where it
    ranks is fusion's: a lone near word earns part of a word's weight, and the meaning of a single
    word is weak evidence either way.)"""
    for backend in BACKENDS:
        by_words = [h for h in apps[backend].search("ware").hits if "fulltext" in h.channels]
        assert len(by_words) == 1 and "<mark>wear</mark>" in by_words[0].snippet, backend
