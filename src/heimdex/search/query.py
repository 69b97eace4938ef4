"""Query syntax.

bridge budget                    words: full text + meaning
"bridge budget"                  a quoted phrase must appear as written
person:Donna rooftop garden      only scenes where Donna appears (several person: allowed)
person:"Mary Ann"                names with spaces are quoted
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from heimdex.validation import strip_controls

_TOKEN = re.compile(
    r'(?P<key>person|video):(?:"(?P<qval>[^"]*)"|(?P<val>\S+))|(?P<bare>person|video):(?=\s|$)'
    r'|"(?P<phrase>[^"]*)"|(?P<word>[^\s"]+)',
    re.IGNORECASE,
)
_WORD_CHARS = re.compile(r"[\w']+", re.UNICODE)

# Words that carry no meaning for full-text ranking (the dense channel still sees the whole text).
STOPWORDS = frozenset(
    """
a about after all also am an and any are as at be been before being but by can could did do does
doing for from had has have having he her here hers him his how i if in into is it its just me more
most my no not of on once only or other our out over own same she should so some such than that the
their them then there these they this those through to too under until up very was we were what when
where which while who whom why will with would you your yours show find scene scenes video videos
talk talks talked talking said say says saying moment part clip
""".split()
)


@dataclass
class ParsedQuery:
    text: str = ""  # the free text (words and phrases), for the dense channels
    terms: list[str] = field(default_factory=list)  # words for full text, stopwords removed
    phrases: list[str] = field(default_factory=list)
    people: list[str] = field(default_factory=list)
    videos: list[str] = field(default_factory=list)
    unnamed: list[str] = field(default_factory=list)  # person: or video: with nothing after it

    @property
    def has_text(self) -> bool:
        return bool(self.text.strip())


def parse_query(raw: str) -> ParsedQuery:
    """Never raises: any text parses (control characters count as spaces; an unmatched quote is not
    a phrase but a word; FTS operators such as NEAR( or * are only words)."""
    query = ParsedQuery()
    free: list[str] = []
    for match in _TOKEN.finditer(strip_controls(raw)):
        if match["key"]:
            # an unterminated quote (person:"Mary) is not part of the name
            value = (match["qval"] if match["qval"] is not None else match["val"]).strip().strip('"').strip()
            key = match["key"].lower()
            if value:
                (query.people if key == "person" else query.videos).append(value)
            else:
                query.unnamed.append(key)
        elif match["bare"]:
            query.unnamed.append(match["bare"].lower())
        elif match["phrase"] is not None:
            phrase = match["phrase"].strip()
            if phrase:
                query.phrases.append(phrase)
                free.append(phrase)
        else:
            free.append(match["word"])
            query.terms.extend(w for w in _WORD_CHARS.findall(match["word"].lower()) if w not in STOPWORDS)
    query.text = " ".join(free)
    return query
