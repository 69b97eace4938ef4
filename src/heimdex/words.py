"""English stems as the full-text indexes make them, for any layer (search ranks and marks snippets
with them), so that none has to import another's module for them."""

from __future__ import annotations

import functools
import threading

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
