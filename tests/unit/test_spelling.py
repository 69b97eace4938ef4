"""Near words: what a query word the library lacks may have been heard or typed as."""

from __future__ import annotations

from heimdex.search.spelling import Lexicon, homophones, spelt_alike

WORDS = ["gail", "call", "sleep", "sweet", "flashdown", "forecast", "harbour", "ball", "bill", "pole"]


def test_one_edit_away_or_two_for_long_words() -> None:
    lexicon = Lexicon(WORDS)
    assert lexicon.near("sleet") == ["sleep", "sweet"]  # both one edit away
    assert lexicon.near("splashdown") == ["flashdown"]  # long: two edits
    assert lexicon.near("forcast") == ["forecast"]  # a typo
    assert lexicon.near("harbor") == ["harbour"]


def test_what_is_too_short_or_too_far_has_no_near_word() -> None:
    lexicon = Lexicon(WORDS)
    assert lexicon.near("bowl") == [], "four letters: ball, bill and blow are all as near"
    assert lexicon.near("apple") == [], "pole is not apple"
    assert lexicon.near("maharaja") == []
    assert lexicon.near("sleep") == [], "a word is not near itself"
    assert lexicon.near("h2o-x") == [] and lexicon.near("") == []


def test_sounds_alike_and_starts_alike() -> None:
    lexicon = Lexicon(["gayle", "kail", "gaily"])
    assert lexicon.near("gaile") == ["gayle", "gaily"]  # pronounced the same; then one edit away
    assert "kail" not in lexicon.near("gaile")  # sounds alike but starts otherwise


def test_a_word_pronounced_the_same_is_near_whatever_its_length_or_spelling() -> None:
    lexicon = Lexicon([*WORDS, "flower", "knight", "gale"])
    assert lexicon.near("gale") == ["gail"], "four letters: only what sounds the same (G EY L)"
    assert lexicon.near("Gayle") == ["gail", "gale"]  # both homophones, and gail is one edit away
    assert lexicon.near("flour") == ["flower"]  # two edits, but heard the same
    assert lexicon.near("night") == ["knight"]  # another first letter, the same sound
    assert lexicon.near("bell") == [], "ball and bill are spelled near but sound otherwise"
    assert "gale" in homophones("GAIL") and "gail" not in homophones("gail")


def test_a_compound_is_two_library_words_of_four_letters_or_more() -> None:
    lexicon = Lexicon(["hose", "pipe", "splash", "down", "rapist", "lessness", "weight"])
    assert lexicon.splits("hosepipe") == ["hose pipe"]  # Whisper writes it apart
    assert lexicon.splits("Splashdown") == ["splash down"]
    assert lexicon.splits("therapist") == [], "'the' is too short to be half of a word"
    assert lexicon.splits("weightlessness") == ["weight lessness"]  # only what the library holds
    assert lexicon.splits("hose") == [] and lexicon.splits("hose-pipe") == []


def test_words_spelt_alike_are_one_letter_apart_and_not_one_word() -> None:
    assert spelt_alike("gale", "vale") and spelt_alike("Boat", "goat")
    assert not spelt_alike("boat", "boats"), "one word, two forms"
    assert not spelt_alike("grey", "gray") and not spelt_alike("colour", "color"), "said alike"
    assert not spelt_alike("cat", "bat"), "too short to tell"
    assert not spelt_alike("gale", "gale") and not spelt_alike("gale", "gold")
