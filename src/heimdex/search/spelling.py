"""Words that a query word may have been heard or typed as: "sleet" where Whisper wrote "sleep",
"splashdown" as "Flashdown", or a user's "forcast" for "forecast".

Only a query word that no scene of the owner holds is looked up (engine.py): a word the library
knows is taken as meant. A near word keeps the word's first or last letter and is one edit away (two
for words of nine letters or more), or sounds the same (Metaphone), starts with the same letter and
is at most two edits away ("Gayle" for "Gaile", not "Kail"), or is pronounced the same by the CMU
Pronouncing Dictionary ("Gail" for "gale", "flower" for "flour"; homophones.txt). Words of four
letters have too many neighbours by spelling ("bowl": ball, bill, blow), so only their homophones
are near. Full text then searches the near words too, and a scene holding one earns part of the
word's weight (fusion.py).

A compound the library holds only as two words is near too: Whisper writes "hose pipe" for the
"hosepipe" someone searches (`splits`). Both halves must be library words of four letters or more,
so that "therapist" is never "the rapist"; the two are then searched as a phrase.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from functools import cache
from importlib.resources import files

import jellyfish
import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from heimdex.words import stem

SHORTEST = 4  # the shortest word looked up at all (by its homophones only)
MIN_LENGTH = 5  # shorter words have too many neighbours by spelling to guess from
MAX_NEAR = 3  # near words kept per query word, nearest first
SOUND_EDITS = 2  # how far in spelling a word that sounds the same may be
MIN_PART = 4  # the shortest half of a compound (splits)


def edits_allowed(word: str) -> int:
    """Edits a near word may be away by spelling alone."""
    return 1 if len(word) < 9 else 2


def sound_key(word: str) -> str:
    return f"{word[:1]}{jellyfish.metaphone(word)}"


@cache
def _homophone_lines() -> tuple[list[str], dict[str, list[int]]]:
    """homophones.txt's groups, and the lines of each word (a word said two ways is in two groups;
    a line is split only when it is asked for)."""
    lines = files("heimdex.search").joinpath("homophones.txt").read_text().splitlines()
    lines_of: dict[str, list[int]] = {}
    for i, line in enumerate(lines):
        if not line.startswith("#"):
            for word in line.split():
                lines_of.setdefault(word, []).append(i)
    return lines, lines_of


def homophones(word: str) -> tuple[str, ...]:
    """Words pronounced as `word` is (CMU Pronouncing Dictionary), not `word` itself."""
    word = word.lower()
    lines, lines_of = _homophone_lines()
    found = (w for i in lines_of.get(word, ()) for w in lines[i].split() if w != word)
    return tuple(dict.fromkeys(found))


def spelt_alike(word: str, other: str) -> bool:
    """Two different words one letter apart ("gale" and "vale"; not "boat" and "boats", nor "grey"
    and "gray", said alike). e5 places such pairs close whatever they mean, its word pieces being
    mostly the same."""
    word, other = word.lower(), other.lower()
    return (
        min(len(word), len(other)) >= SHORTEST
        and Levenshtein.distance(word, other) == 1
        and stem(word) != stem(other)
        and other not in homophones(word)
    )


class Lexicon:
    """The words of an owner's library, indexed for near-word lookups."""

    def __init__(self, words: Iterable[str]) -> None:
        kept = sorted({w for w in words if len(w) >= SHORTEST - 1 and w.isalpha()})  # "slee" ~ "sleep"
        self._known = frozenset(kept)
        self._parts = frozenset(w for w in kept if len(w) >= MIN_PART)  # halves of compounds (splits)
        # A word k edits away is at most k letters longer or shorter; one edit away, it also keeps its
        # first or its last letter (two edits away, near words are asked to as well: "Flashdown" for
        # "splashdown"). So a lookup compares those words, not the whole vocabulary. Their lengths and
        # end letters are arrays (code points, from one fixed-width array of all the words): an
        # owner's first lookup builds the index, and dicts of buckets cost 15-35 ms for 9k words.
        self._words = kept
        letters = np.array(kept or [""]).view(np.uint32).reshape(max(1, len(kept)), -1)
        self._lengths = np.char.str_len(np.array(kept, dtype=str)) if kept else np.zeros(0, np.int64)
        self._first = letters[: len(kept), 0]
        self._last = letters[np.arange(len(kept)), np.maximum(self._lengths - 1, 0)]
        # Words by sound key, made for one first letter at a time when a lookup needs it (a key starts
        # with the word's first letter): Metaphone over a whole library was most of the build.
        self._by_sound: dict[str, list[str]] = {}
        self._sounded: set[str] = set()
        self._lock = threading.Lock()

    def _sounding(self, key: str) -> list[str]:
        letter = key[:1]
        with self._lock:
            if letter not in self._sounded:
                for i in np.flatnonzero(self._first == ord(letter)).tolist():
                    word = self._words[i]
                    self._by_sound.setdefault(sound_key(word), []).append(word)
                self._sounded.add(letter)
            return self._by_sound.get(key, [])

    def _candidates(self, word: str, allowed: int) -> list[str]:
        lengths = (self._lengths >= len(word) - allowed) & (self._lengths <= len(word) + allowed)
        ends = (self._first == ord(word[0])) | (self._last == ord(word[-1]))
        return [self._words[i] for i in np.flatnonzero(lengths & ends).tolist()]

    def near(self, word: str, limit: int | None = MAX_NEAR) -> list[str]:
        """Words of the library near `word`, nearest first (not `word` itself); None: all of them."""
        word = word.lower()
        if len(word) < SHORTEST or not word.isalpha():
            return []
        found = {w: 0 for w in homophones(word) if w in self._known}  # nearest of all: heard the same
        if len(word) < MIN_LENGTH:
            return sorted(found)[:limit]
        allowed = edits_allowed(word)
        for candidate, distance, _ in process.extract(
            word,
            self._candidates(word, allowed),
            scorer=Levenshtein.distance,
            score_cutoff=allowed,
            limit=None,
        ):
            found[candidate] = min(found.get(candidate, distance), distance)
        for candidate in self._sounding(sound_key(word)):
            distance = Levenshtein.distance(word, candidate, score_cutoff=SOUND_EDITS)
            if distance <= SOUND_EDITS:
                found[candidate] = min(found.get(candidate, distance), distance)
        found.pop(word, None)
        return sorted(found, key=lambda w: (found[w], w))[:limit]

    def splits(self, word: str) -> list[str]:
        """`word` as two library words ("hose pipe" for "hosepipe"), each of MIN_PART letters or more."""
        word = word.lower()
        if not word.isalpha():
            return []
        return [
            f"{word[:i]} {word[i:]}"
            for i in range(MIN_PART, len(word) - MIN_PART + 1)
            if word[:i] in self._parts and word[i:] in self._parts
        ]
