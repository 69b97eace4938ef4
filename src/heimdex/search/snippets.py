"""Snippets: a short window of the scene's text around the matched words, with <mark> highlights.

The text is HTML-escaped and only <mark>...</mark> is added, so a web page can show it as is and a
terminal can turn the marks into colour.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Sequence

from heimdex.korean import has_hangul, morphemes
from heimdex.words import stem

_WORD = re.compile(r"[\w']+", re.UNICODE)


def _matches(token: str, stems: set[str], korean: tuple[str, ...]) -> bool:
    # A Korean word is its morphemes with particles and endings glued on: "정원을" holds "정원". A
    # verb's stem fuses with its ending inside a syllable ("가꾼" is 가꾸 + ㄴ), so a word is also
    # marked when Kiwi finds the query's morpheme in it, as the index did.
    if stem(token) in stems:
        return True
    if not korean or not has_hangul(token):
        return False
    return token.startswith(korean) or not set(korean).isdisjoint(_word_morphemes(token))


@functools.lru_cache(maxsize=65536)
def _word_morphemes(word: str) -> tuple[str, ...]:
    return tuple(morphemes(word))


def _marked(tokens: Sequence[re.Match[str]], terms: Sequence[str]) -> list[int]:
    """Which tokens a snippet marks for `terms`."""
    stems = {stem(t) for t in terms if t}
    korean = tuple(t for t in terms if has_hangul(t))
    return [i for i, m in enumerate(tokens) if _matches(m.group(), stems, korean)]


def mentions(text: str, terms: Sequence[str]) -> bool:
    """Whether a snippet of `text` would mark one of `terms`: which of a scene's texts to show."""
    return bool(_marked(list(_WORD.finditer(text)), terms))


def make_snippet(text: str, terms: Sequence[str], window: int = 32) -> str:
    tokens = list(_WORD.finditer(text))
    if not tokens:
        return ""
    hits = _marked(tokens, terms)
    start = 0
    if hits:  # centre the window on the stretch with the most matched words
        best = max(hits, key=lambda h: sum(1 for x in hits if h <= x < h + window))
        start = max(0, min(best - window // 4, len(tokens) - window))
    end = min(len(tokens), start + window)
    marked = set(hits)
    begin_char = tokens[start].start()
    end_char = tokens[end - 1].end()
    out, cursor = [], begin_char
    for i in range(start, end):
        m = tokens[i]
        out.append(html.escape(text[cursor : m.start()]))
        word = html.escape(m.group())
        out.append(f"<mark>{word}</mark>" if i in marked else word)
        cursor = m.end()
    out.append(html.escape(text[cursor:end_char]))
    snippet = "".join(out).replace("\n", " / ")
    return ("… " if start > 0 else "") + snippet + (" …" if end < len(tokens) else "")
