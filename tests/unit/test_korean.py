"""Korean morphemes for full text (Kiwi, its packaged model) and Korean words in snippets."""

from __future__ import annotations

from heimdex.korean import has_hangul, index_terms, morphemes
from heimdex.search.snippets import make_snippet


def test_particles_and_endings_come_off_and_a_noun_keeps_its_suffix():
    assert morphemes("옥상에 정원을 가꾼 손님") == ["옥상", "정원", "가꾸", "손님"]
    assert morphemes("정원을") == morphemes("정원에서") == morphemes("정원") == ["정원"]


def test_only_hangul_words_are_analysed():
    assert morphemes("rooftop garden 2024") == []
    assert index_terms("the garden", "") == ""
    assert index_terms("서울 시청 앞 광장에서", "FARMERS 시장") == "서울 시청 앞 광장 시장"
    assert has_hangul("a정") and not has_hangul("abc 漢字")


def test_snippets_mark_korean_words_that_hold_the_query_morpheme():
    snippet = make_snippet("오늘 정원을 가꾸는 방법", ["정원"])
    assert "<mark>정원을</mark>" in snippet and "<mark>오늘</mark>" not in snippet
    assert "<mark>garden</mark>" in make_snippet("the garden grows", ["gardens"])


def test_snippets_mark_a_verb_whose_stem_is_fused_with_its_ending():
    # "가꾼" is 가꾸 + ㄴ inside one syllable: no prefix of it is the stem the query searched for.
    terms = morphemes("가꾸는")
    assert terms == ["가꾸"]
    snippet = make_snippet("옥상에 정원을 가꾼 손님", terms)
    assert snippet == "옥상에 정원을 <mark>가꾼</mark> 손님"
    assert (
        make_snippet("옥상에 정원을 가꾼 손님", morphemes("손님이")) == "옥상에 정원을 가꾼 <mark>손님</mark>"
    )
