"""Odd search input never breaks the engine or either store's full-text query (SQLite FTS5 and
PostgreSQL tsquery), and control characters are refused by one rule everywhere (heimdex.validation).

Real stores (the `store` fixture runs each test on SQLite and on PostgreSQL) and the real e5 model."""

from __future__ import annotations

import pytest

from heimdex.domain import SceneDraft
from heimdex.errors import InvalidRequestError, NotFoundError
from heimdex.ml.text_embed import E5Embedder
from heimdex.search.engine import SearchEngine, SearchRequest
from heimdex.search.query import parse_query
from heimdex.store import CommitBundle, SceneFilter, VectorSet
from heimdex.validation import InvalidInputError, check_text, find_control, strip_controls

TEXTS = [
    "The council approved the bridge repair budget.",
    "Residents asked about parking fees near the café.",
    "회의에서 다리 보수 예산을 승인했습니다.",
]
NASTY = [
    '"a\x00b"',
    "a\x00b",
    '"bridge\x00',
    "\x00",
    '"',
    '""',
    'a"b',
    '"a" "b',
    "*",
    "bridge*",
    "NEAR(",
    "NEAR(bridge budget, 2)",
    "a AND",
    "AND OR NOT",
    "-",
    "-bridge",
    "^",
    "^bridge",
    "'",
    "''",
    "bridge:budget",
    "transcript:bridge",
    "{transcript ocr}: bridge",
    "(",
    ")",
    "()",
    "!",
    "&|!<->",
    "\\",
    "%_",
    ":*",
    "person:",
    'person:"',
    "video:",
    "😀",
    "🏳️‍🌈 bridge",
    "\u200b",
    "\ufeffbridge",
    "café",
    "회의",
    "a\x01b\x1fc\x7fd\x9fe",
    "\t\n\r",
    "x" * 5000,
    "bridge " * 300,
    '"' * 999,
]


@pytest.fixture(scope="module")
def e5() -> E5Embedder:
    return E5Embedder()


@pytest.fixture
def engine(store, e5) -> SearchEngine:
    video = store.add_video("me", "council.mp4", "k", 1, None)
    drafts = [
        SceneDraft(index=i, start_s=i * 5.0, end_s=i * 5.0 + 5, transcript=t) for i, t in enumerate(TEXTS)
    ]
    store.commit_video(
        CommitBundle(video.id, "en", drafts, VectorSet(e5.name, e5.embed_passages(TEXTS)), []), {}
    )
    return SearchEngine(store, lambda: e5, lambda key: key)


def search(engine: SearchEngine, query: str) -> list:
    return engine.search(SearchRequest(owner_id="me", query=query, per_video=None)).hits


def test_parse_query_takes_anything() -> None:
    for raw in NASTY:
        query = parse_query(raw)
        for text in (query.text, *query.terms, *query.phrases, *query.people, *query.videos):
            assert find_control(text) is None, (raw, text)
    assert parse_query('person:"Mary bridge').people == ["Mary"]  # an unterminated quote
    assert parse_query('person:" bridge').people == [] and parse_query('person:"').terms == []
    assert parse_query("person: rooftop").unnamed == ["person"] and parse_query("person:").terms == []
    assert parse_query('person:"" video:').unnamed == ["person", "video"]
    assert parse_query('person:Donna video:v1 "person:" garden').unnamed == []


def test_nasty_queries_never_fail_on_either_store(engine) -> None:
    for raw in NASTY:
        if parse_query(raw).unnamed:  # person: or video: alone: the user is told what to write
            with pytest.raises(InvalidRequestError, match="needs a name after the colon"):
                search(engine, raw)
        else:
            search(engine, raw)  # no exception from FTS5's parser, tsquery or PostgreSQL's NUL check


def test_control_characters_are_spaces_and_the_words_still_count(engine) -> None:
    # The NUL that used to end FTS5's query mid-string ("unterminated string") and that PostgreSQL
    # refuses in any text: the phrase around it is still found.
    hits = search(engine, '"bridge\x00repair"')
    assert [h.scene_index for h in hits] == [0]
    assert [h.scene_index for h in search(engine, '"회의에서\x01다리"')] == [2]


def test_store_full_text_takes_raw_control_characters(store, engine) -> None:
    """The stores' own query builders, below the parser (other callers may not parse first)."""
    flt = SceneFilter(owner_id="me")
    for terms, phrases, expected in (
        (["bridge\x00"], [], 1),
        ([], ["bridge\x00repair"], 1),
        (["\x00"], ["\x00", "\x01\x02"], 0),
        (['"', "*", "-", "^", ":", "'"], [], 0),
        (["NEAR(", "bridge*"], [], 2),  # operators are plain words: "near" and "bridge"
        ([], ['a"b', "NEAR(", "a AND"], 0),
    ):
        assert len(store.full_text(flt, terms, phrases, 10)) == expected, (terms, phrases)


def test_unknown_person_with_a_nul_is_not_found_not_a_crash(engine) -> None:
    with pytest.raises(NotFoundError, match="no enrolled person"):
        search(engine, 'person:"Ann\x00Lee" bridge')


def test_the_validation_rule() -> None:
    assert find_control("회의 café 😀 \u200b") is None
    assert find_control("a\x00b") == "U+0000"
    assert find_control("a\x7f") == "U+007F" and find_control("a\x85") == "U+0085"
    assert find_control("a\tb\nc") == "U+0009"
    assert find_control("a\tb\nc\r", allow_whitespace=True) is None
    assert find_control("a\x0bb", allow_whitespace=True) == "U+000B"
    with pytest.raises(InvalidInputError, match=r"the name contains a control character \(U\+0001\)"):
        check_text("An\x01n", "the name")
    assert check_text("Ann Lee", "the name") == "Ann Lee"
    assert strip_controls("a\x00b\tc\x9f") == "a b c "
