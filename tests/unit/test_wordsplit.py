"""Spaces put back into runs of letters that OCR glued together (ml/wordsplit.py)."""

from __future__ import annotations

import pytest

from heimdex.ml.wordsplit import restore_spaces, split_run


@pytest.mark.parametrize(
    ("glued", "words"),
    [
        ("BLACKICEALERT", "BLACK ICE ALERT"),
        ("EDIBLEFLOWERSSOLD HERE", "EDIBLE FLOWERS SOLD HERE"),
        ("MISSION CONTROLLIVE", "MISSION CONTROL LIVE"),
        ("CLOSEDONMONDAYS", "CLOSED ON MONDAYS"),
        ("nightlights", "night lights"),
    ],
)
def test_glued_words_are_split_in_their_own_case(glued: str, words: str) -> None:
    assert restore_spaces(glued) == words


@pytest.mark.parametrize(
    "whole",
    [
        "Fraunhofer",  # one word the list knows
        "MASTERCLASS",
        "Grindelwald",  # a place: "grind el wald" would need a rare two-letter part
        "Heimdex",  # a name: "heim dex" are rare words
        "Kobenhavn",
        "EBU Tech 3304-4.2",  # short runs, digits and punctuation are left alone
        "Sanity and insanity",
    ],
)
def test_words_names_and_short_runs_stay_whole(whole: str) -> None:
    assert restore_spaces(whole) == whole


def test_non_ascii_runs_are_left_alone() -> None:
    assert split_run("KØBENHAVNLUFTHAVN") == ["KØBENHAVNLUFTHAVN"]
    assert restore_spaces("KØBENHAVNLUFTHAVN 정원을") == "KØBENHAVNLUFTHAVN 정원을"
