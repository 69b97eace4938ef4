"""Words that a query word may have been heard or typed as: "sleet" where Whisper wrote "sleep",
"splashdown" as "Flashdown", or a user's "forcast" for "forecast".

Only a query word that no scene of the owner holds is looked up (engine.py): a word the library
knows is taken as meant. A near word keeps the word's first or last letter and is one edit away (two
for words of nine letters or more), or sounds the same (Metaphone), starts with the same letter and
is at most two edits away ("Gayle" for "Gaile", not "Kail"). Words of four letters have too many
neighbours ("bowl": ball, bill, blow) and are left alone. Full text then searches the near words
too, and a scene holding one earns part of the word's weight (fusion.py).

A compound the library holds only as two words is near too: Whisper writes "hose pipe" for the
"hosepipe" someone searches (`splits`). Both halves must be library words of four letters or more,
so that "therapist" is never "the rapist"; the two are then searched as a phrase.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import jellyfish
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

MIN_LENGTH = 5  # shorter words have too many neighbours to guess from
MAX_NEAR = 3  # near words kept per query word, nearest first
SOUND_EDITS = 2  # how far in spelling a word that sounds the same may be
MIN_PART = 4  # the shortest half of a compound (splits)


def edits_allowed(word: str) -> int:
    """Edits a near word may be away by spelling alone."""
    return 1 if len(word) < 9 else 2


def sound_key(word: str) -> str:
    return f"{word[:1]}{jellyfish.metaphone(word)}"


class Lexicon:
    """The words of an owner's library, indexed for near-word lookups."""

    def __init__(self, words: Iterable[str]) -> None:
        kept = sorted({w for w in words if w.isalpha() and len(w) >= MIN_LENGTH - 1})  # "slee" ~ "sleep"
        self._words = frozenset(w for w in kept if len(w) >= MIN_PART)
        # A word k edits away is at most k letters longer or shorter; one edit away, it also keeps its
        # first or its last letter (two edits away, near words are asked to as well: "Flashdown" for
        # "splashdown"). So a lookup compares a few buckets, not the whole vocabulary.
        self._by_end: dict[tuple[int, str, str], list[str]] = defaultdict(
            list
        )  # (length, "first"/"last", letter)
        self._by_sound: dict[str, list[str]] = defaultdict(list)
        for word in kept:
            self._by_end[(len(word), "first", word[0])].append(word)
            self._by_end[(len(word), "last", word[-1])].append(word)
            self._by_sound[sound_key(word)].append(word)

    def _candidates(self, word: str, allowed: int) -> list[str]:
        lengths = range(len(word) - allowed, len(word) + allowed + 1)
        ends = {
            w
            for n in lengths
            for end in (("first", word[0]), ("last", word[-1]))
            for w in self._by_end.get((n, *end), ())
        }
        return list(ends)

    def near(self, word: str) -> list[str]:
        """Words of the library near `word`, nearest first (not `word` itself)."""
        word = word.lower()
        if len(word) < MIN_LENGTH or not word.isalpha():
            return []
        found: dict[str, int] = {}
        allowed = edits_allowed(word)
        for candidate, distance, _ in process.extract(
            word,
            self._candidates(word, allowed),
            scorer=Levenshtein.distance,
            score_cutoff=allowed,
            limit=None,
        ):
            found[candidate] = distance
        for candidate in self._by_sound.get(sound_key(word), ()):
            distance = Levenshtein.distance(word, candidate, score_cutoff=SOUND_EDITS)
            if distance <= SOUND_EDITS:
                found[candidate] = min(found.get(candidate, distance), distance)
        found.pop(word, None)
        return sorted(found, key=lambda w: (found[w], w))[:MAX_NEAR]

    def splits(self, word: str) -> list[str]:
        """`word` as two library words ("hose pipe" for "hosepipe"), each of MIN_PART letters or more."""
        word = word.lower()
        if not word.isalpha():
            return []
        return [
            f"{word[:i]} {word[i:]}"
            for i in range(MIN_PART, len(word) - MIN_PART + 1)
            if word[:i] in self._words and word[i:] in self._words
        ]
