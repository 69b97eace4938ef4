"""Words that a query word may have been heard or typed as: "gale" in a transcript that says "Gail",
"sleet" where Whisper wrote "sleep", "splashdown" as "Flashdown", or a user's "weightlesness".

Only a query word that no scene of the owner holds is looked up (engine.py): a word the library
knows is taken as meant. A near word is one a single edit away (two for long words), or one that
sounds the same (Metaphone), starts with the same letter and is two edits away at most ("Gayle" for
"Gail", not "call"). Words of four letters have too many such neighbours ("bowl": ball, bill, blow)
and are left alone. Full text then
searches the near words too, and a scene holding one earns part of the word's weight (fusion.py).
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


def edits_allowed(word: str) -> int:
    """Edits a near word may be away by spelling alone."""
    return 1 if len(word) < 9 else 2


def sound_key(word: str) -> str:
    return f"{word[:1]}{jellyfish.metaphone(word)}"


class Lexicon:
    """The words of an owner's library, indexed for near-word lookups (a few ms over 100k words)."""

    def __init__(self, words: Iterable[str]) -> None:
        self.words = sorted(
            {w for w in words if w.isalpha() and len(w) >= MIN_LENGTH - 1}
        )  # "sleep" ~ "slee"
        self._by_sound: dict[str, list[str]] = defaultdict(list)
        for word in self.words:
            self._by_sound[sound_key(word)].append(word)

    def near(self, word: str) -> list[str]:
        """Words of the library near `word`, nearest first (not `word` itself)."""
        word = word.lower()
        if len(word) < MIN_LENGTH or not word.isalpha():
            return []
        found: dict[str, int] = {}
        for candidate, distance, _ in process.extract(
            word, self.words, scorer=Levenshtein.distance, score_cutoff=edits_allowed(word), limit=None
        ):
            found[candidate] = distance
        for candidate in self._by_sound.get(sound_key(word), ()):
            distance = Levenshtein.distance(word, candidate, score_cutoff=SOUND_EDITS)
            if distance <= SOUND_EDITS:
                found[candidate] = min(found.get(candidate, distance), distance)
        found.pop(word, None)
        return sorted(found, key=lambda w: (found[w], w))[:MAX_NEAR]
