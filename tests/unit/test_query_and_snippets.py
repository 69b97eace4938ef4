from heimdex.search.query import parse_query
from heimdex.search.snippets import make_snippet, stem


def test_parse_people_phrases_and_words():
    q = parse_query('person:Donna person:"Mary Ann" rooftop "bridge budget" when did she talk')
    assert q.people == ["Donna", "Mary Ann"]
    assert q.phrases == ["bridge budget"]
    assert q.terms == ["rooftop"]  # stopwords go; the phrase is matched as a phrase
    assert q.text == "rooftop bridge budget when did she talk"


def test_parse_only_person_has_no_text():
    q = parse_query("person:Donna")
    assert q.people == ["Donna"] and not q.has_text


def test_parse_korean_words_are_terms():
    q = parse_query("다리 예산")
    assert q.terms == ["다리", "예산"]


def test_snippet_highlights_stems_and_escapes_html():
    s = make_snippet("Police ask riders to wear <b>helmets</b> on the highway.", ["helmet", "highway"])
    assert "<mark>helmets</mark>" in s and "<mark>highway</mark>" in s
    assert "&lt;b&gt;" in s


def test_snippet_windows_long_text_around_matches():
    text = " ".join(f"w{i}" for i in range(200)) + " bridge budget " + " ".join(f"v{i}" for i in range(200))
    s = make_snippet(text, ["bridge"], window=20)
    assert "<mark>bridge</mark>" in s and s.startswith("… ") and s.endswith(" …")
    assert len(s.split()) < 30


def test_stem_puts_inflections_together():
    # the old suffix stripper gave "oranges" -> "orang" but kept "orange": the plural missed the singular
    for forms in (
        ["orange", "oranges"],
        ["helmet", "helmets"],
        ["run", "running", "runs"],
        ["butterfly", "butterflies"],
        ["gorge", "gorges"],
    ):
        assert len({stem(w) for w in forms}) == 1, forms
    assert stem("News") == "news" and stem("옥상") == "옥상"


def test_snippet_marks_the_singular_for_a_plural_query():
    # (a snippet runs from the first to the last word of its window)
    assert make_snippet("She sold one orange at the market.", ["oranges"]) == (
        "She sold one <mark>orange</mark> at the market"
    )
