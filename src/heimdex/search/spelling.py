"""Words that a query word may have been heard or typed as: "sleet" where Whisper wrote "sleep",
"splashdown" as "Flashdown", or a user's "forcast" for "forecast".

Only a query word that no scene of the owner holds is looked up (engine.py): a word the library
knows is taken as meant. A near word keeps the word's first or last letter and is one edit away (two
for words of nine letters or more), or sounds the same (Metaphone), starts with the same letter and
is at most two edits away ("Gayle" for "Gaile", not "Kail"). Words of four letters have too many
neighbours ("bowl": ball, bill, blow) and are left alone. Full text then searches the near words
too, and a scene holding one earns part of the word's weight (fusion.py).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable

import jellyfish
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

MIN_LENGTH = 5  # shorter words have too many neighbours to guess from
MAX_NEAR = 3  # near words kept per query word, nearest first
SOUND_EDITS = 2  # how far in spelling a word that sounds the same may be


def edits_allowed(word: str) -> int:
    """Edits a near word may be away by spelling alone."""
    return 1 if len(word) < 9 else 2


def sound_key(word: str) -> str:
    return f"{word[:1]}{jellyfish.metaphone(word)}"


class Lexicon:
    """The words of an owner's library, indexed for near-word lookups."""

    def __init__(self, words: Iterable[str]) -> None:
        kept = sorted({w for w in words if w.isalpha() and len(w) >= MIN_LENGTH - 1})  # "slee" ~ "sleep"
        # A word k edits away is at most k letters longer or shorter; one edit away, it also keeps its
        # first or its last letter (two edits away, near words are asked to as well: "Flashdown" for
        # "splashdown"). So a lookup compares a few buckets, not the whole vocabulary.
        self._by_end: dict[tuple[int, str, str], list[str]] = defaultdict(
            list
        )  # (length, "first"/"last", letter)
        self._by_first: dict[str, list[str]] = defaultdict(list)
        for word in kept:
            self._by_end[(len(word), "first", word[0])].append(word)
            self._by_end[(len(word), "last", word[-1])].append(word)
            self._by_first[word[0]].append(word)
        # Words by sound key, made for one first letter at a time when a lookup needs it (a key starts
        # with the word's first letter): Metaphone over a whole library was most of the build, and an
        # owner's first lookup paid it in full.
        self._by_sound: dict[str, list[str]] = {}
        self._sounded: set[str] = set()
        self._lock = threading.Lock()

    def _sounding(self, key: str) -> list[str]:
        letter = key[:1]
        with self._lock:
            if letter not in self._sounded:
                for word in self._by_first.get(letter, ()):
                    self._by_sound.setdefault(sound_key(word), []).append(word)
                self._sounded.add(letter)
            return self._by_sound.get(key, [])

    def _candidates(self, word: str, allowed: int) -> list[str]:
        lengths = range(len(word) - allowed, len(word) + allowed + 1)
        ends = {
            w
            for n in lengths
            for end in (("first", word[0]), ("last", word[-1]))
            for w in self._by_end.get((n, *end), ())
        }
        return list(ends)

    def near(self, word: str, limit: int | None = MAX_NEAR) -> list[str]:
        """Words of the library near `word`, nearest first (not `word` itself); None: all of them."""
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
        for candidate in self._sounding(sound_key(word)):
            distance = Levenshtein.distance(word, candidate, score_cutoff=SOUND_EDITS)
            if distance <= SOUND_EDITS:
                found[candidate] = min(found.get(candidate, distance), distance)
        found.pop(word, None)
        return sorted(found, key=lambda w: (found[w], w))[:limit]
