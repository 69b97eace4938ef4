"""English stems and folded words, as the full-text indexes make them, for code on either side of the
store: search marks snippets with them, and the PostgreSQL store estimates from them how many scenes
hold a word (to choose how to find them)."""

from __future__ import annotations

import functools
import threading
import unicodedata

import snowballstemmer


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The Snowball English stem, so that "helmets" matches "helmet" and "oranges" "orange" (the
    Porter family, as SQLite's porter tokenizer and PostgreSQL's english configuration use).
    Words of other scripts come back unchanged."""
    english = getattr(_stemmers, "english", None)
    if english is None:  # a stemmer object keeps state while it works: one per thread
        english = _stemmers.english = snowballstemmer.stemmer("english")
    return english.stemWord(word.lower())


_stemmers = threading.local()


def fold(text: str) -> str:
    """Lower case without diacritics, close to the index's heimdex_fold (migration 0001)."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))
