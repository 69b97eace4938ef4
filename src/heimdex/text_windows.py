"""Windows of a scene's speech: a scene that says several things (WINDOW_FROM sentences or more) is
also embedded as overlapping windows of WINDOW_SENTENCES consecutive sentences, one sentence apart.
One vector for a 30 s scene dilutes the sentence a query is about (docs/QUALITY.md compares sizes).

Pure, and shared: the pipeline embeds these windows (embed_text) and search shows the one that
matched as the hit's snippet; window `part` of a stored scene is transcript_windows(...)[part].
"""

from __future__ import annotations

import re

WINDOW_SENTENCES = 2
WINDOW_FROM = 3
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def transcript_windows(transcript: str) -> list[str]:
    """Overlapping passages of the transcript (stride one sentence), or none for a short one."""
    sentences = [s for s in _SENTENCE_END.split(transcript.strip()) if s]
    if len(sentences) < WINDOW_FROM:
        return []
    starts = range(len(sentences) - WINDOW_SENTENCES + 1)
    return [" ".join(sentences[i : i + WINDOW_SENTENCES]) for i in starts]
