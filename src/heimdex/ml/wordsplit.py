"""Spaces the OCR recogniser dropped, put back: "BLACKICEALERT" -> "BLACK ICE ALERT".

PP-OCR reads a caption set in a wide, tightly kerned font as one run of letters. Left glued, its
words never match a query in full text, and the text vector of a scene whose only text is the run
sits near every query (the vector of a word the model cannot split into meaning). The run is split
by the most probable sequence of English words (wordninja's unigram costs from English Wikipedia),
and the split is kept only when it is plainly words: a run the word list knows as one word
("Fraunhofer", "masterclass") stays whole, and so does a run whose parts would include a rare
fragment (a name such as "Heimdex" is not cut into "heim dex").
"""

from __future__ import annotations

import functools
import math
import re

MIN_RUN = 7  # shorter runs are nearly always one word, a code or an abbreviation
# A part must be a frequent English word (wordninja costs the word of rank r at log(r * log N)): one
# of the 30,000 most frequent, or of the 500 most frequent when it has two letters ("no", "of"), as
# a place name's fragments are rarer ("Grindelwald" would be "grind el wald", "Heimdex" "heim dex").
# One-letter parts ("a", "i") are more often a misread than a word.
MAX_PART_RANK = 30_000
MAX_SHORT_PART_RANK = 500
_RUN = re.compile(r"[^\W\d_]+")  # runs of letters of any script: "KØBENHAVN" is one run


@functools.cache
def _model():
    import wordninja

    return wordninja.DEFAULT_LANGUAGE_MODEL


@functools.cache
def _max_cost(rank: int) -> float:
    return math.log(rank * math.log(len(_model()._wordcost)))


def _frequent(part: str, costs: dict[str, float]) -> bool:
    if len(part) < 2:
        return False
    return costs.get(part, math.inf) <= _max_cost(MAX_PART_RANK if len(part) > 2 else MAX_SHORT_PART_RANK)


def split_run(run: str) -> list[str]:
    """`run` as words, in its own case style, or [run] when it should stay whole."""
    lower = run.lower()
    if len(run) < MIN_RUN or not run.isalpha() or not run.isascii():
        return [run]
    costs = _model()._wordcost
    if lower in costs:
        return [run]
    parts = _model().split(lower)
    if len(parts) < 2 or not all(_frequent(p, costs) for p in parts):
        return [run]
    out, start = [], 0
    for part in parts:  # the run's own letters, so "NO DRONESALLOWED" stays upper case
        out.append(run[start : start + len(part)])
        start += len(part)
    return out


def restore_spaces(text: str) -> str:
    """`text` with every glued run of letters split into its words (see split_run)."""
    return _RUN.sub(lambda m: " ".join(split_run(m.group(0))), text)
