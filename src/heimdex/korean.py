"""Korean words as full text can match them: morphemes from Kiwi (kiwipiepy, its model packaged).

Korean glues particles and endings to words ("정원을", "정원에서", "가꾼"), and both full-text
engines split only at spaces, so "정원" would never match "정원을". The pipeline stores, beside a
scene's text, the content morphemes of its Hangul words (`index_terms`); a query's Hangul words are
searched as their morphemes too. Text without Hangul costs nothing (Kiwi is not even loaded).
"""

from __future__ import annotations

import threading
from functools import lru_cache

from heimdex.logging import get_logger

log = get_logger(__name__)

# Content morphemes: nouns, numerals, pronouns, verb and adjective stems, roots, foreign words,
# numbers, Chinese characters. Particles, endings and affixes carry no topic.
CONTENT_TAGS = ("NNG", "NNP", "NNB", "NR", "NP", "VV", "VA", "XR", "SL", "SN", "SH")
NOUN_SUFFIX = "XSN"  # 손 + 님: a noun's suffix stays on it ("손님", a guest, not a hand)
_lock = threading.RLock()  # one Kiwi, one analysis at a time (re-entered while it is first made)


def has_hangul(text: str) -> bool:
    return any("\uac00" <= ch <= "\ud7a3" for ch in text)


@lru_cache(maxsize=1)
def _kiwi():
    from kiwipiepy import Kiwi

    with _lock:
        return Kiwi(num_workers=-1)  # in the calling thread: no pool of its own


def morphemes(text: str) -> list[str]:
    """The content morphemes of the Hangul words in `text`, in order (words without Hangul are
    left to the full-text engine as they are)."""
    words = [w for w in text.split() if has_hangul(w)]
    if not words:
        return []
    with _lock:
        tokens = _kiwi().tokenize(" ".join(words))
    found: list[str] = []
    previous_tag = ""
    for token in tokens:
        if token.tag == NOUN_SUFFIX and found and previous_tag.startswith("NN"):
            found[-1] += token.form
        elif token.tag in CONTENT_TAGS:
            found.append(token.form.lower())
        previous_tag = token.tag
    return found


def index_terms(*texts: str) -> str:
    """What full text also indexes for a scene: its Hangul words' morphemes, space separated."""
    return " ".join(m for text in texts if has_hangul(text) for m in morphemes(text))
