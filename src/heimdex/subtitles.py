"""Timed lines from recognised words: the player's transcript lines, and subtitles (WebVTT, SubRip).

Pure: words in (with their times), text out. A line ends at a pause, after a sentence, or when it
is long enough; a subtitle cue is also kept readable: at most two rows of MAX_ROW characters and
MAX_CUE_S seconds on screen, as common subtitle guidelines ask.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from heimdex.domain import Word

MAX_ROW = 42  # characters per subtitle row
MAX_CUE_S = 7.0  # seconds a cue stays on screen at most
PAUSE_S = 0.7  # silence that ends a line
FORMATS = ("vtt", "srt")


@dataclass(frozen=True)
class Line:
    start_s: float
    end_s: float
    text: str
    edit: str | None = None  # the owner's correction this line shows (corrections.py)


def lines(
    words: Iterable[Word],
    *,
    max_words: int | None = 12,
    fits: Callable[[str], bool] | None = None,
    max_s: float | None = None,
    pause_s: float = PAUSE_S,
) -> list[Line]:
    """Words grouped into lines, in order: a new line after a sentence end or a pause longer than
    `pause_s`, or when adding the next word would pass `max_words` or `max_s`, or make a text that
    `fits` refuses."""
    out: list[Line] = []
    current: list[Word] = []
    for word in words:
        if not word.text.strip():
            continue
        if current and _ends_before(current, word, max_words, fits, max_s, pause_s):
            out.append(_line(current))
            current = []
        current.append(word)
    if current:
        out.append(_line(current))
    return out


def _ends_before(
    current: list[Word],
    word: Word,
    max_words: int | None,
    fits: Callable[[str], bool] | None,
    max_s: float | None,
    pause_s: float,
) -> bool:
    if current[-1].edit != word.edit:
        return True  # a correction is its own line, so that it can be edited again as one
    if word.edit is not None:  # within a correction only readability breaks a line (a cue's rows)
        return fits is not None and not fits(_text([*current, word]))
    return (
        current[-1].text.rstrip().endswith((".", "?", "!"))
        or word.start_s - current[-1].end_s > pause_s
        or (max_words is not None and len(current) >= max_words)
        or (fits is not None and not fits(_text([*current, word])))
        or (max_s is not None and word.end_s - current[0].start_s > max_s)
    )


def _text(words: Sequence[Word]) -> str:
    return " ".join(w.text.strip() for w in words)


def _line(words: Sequence[Word]) -> Line:
    return Line(round(words[0].start_s, 3), round(words[-1].end_s, 3), _text(words), words[0].edit)


def cues(words: Iterable[Word]) -> list[Line]:
    """Subtitle cues: lines of at most two rows, each row at most MAX_ROW characters where a word
    allows it, never longer than MAX_CUE_S on screen."""
    found = lines(words, max_words=None, fits=lambda text: _rows(text) is not None, max_s=MAX_CUE_S)
    return [Line(c.start_s, c.end_s, _rows(c.text) or c.text) for c in found]


def _rows(text: str) -> str | None:
    """The text as one row, or two broken at the space that balances them best; None when it does
    not fit in two rows of MAX_ROW (a single word longer than a row is let through as it is)."""
    if len(text) <= MAX_ROW or " " not in text:
        return text
    cuts = [i for i, ch in enumerate(text) if ch == " " and i <= MAX_ROW and len(text) - i - 1 <= MAX_ROW]
    if not cuts:
        return None
    cut = min(cuts, key=lambda i: abs(2 * i + 1 - len(text)))
    return f"{text[:cut]}\n{text[cut + 1 :]}"


def render(cue_list: Sequence[Line], fmt: str) -> str:
    """The cues as a WebVTT or SubRip document."""
    if fmt not in FORMATS:
        raise ValueError(f"a subtitle format is one of {FORMATS}, not {fmt!r}")
    blocks = []
    for n, cue in enumerate(cue_list, start=1):
        start, end = _clock(cue.start_s, fmt), _clock(max(cue.end_s, cue.start_s + 0.001), fmt)
        text = _escaped(cue.text) if fmt == "vtt" else cue.text
        blocks.append(f"{n}\n{start} --> {end}\n{text}\n")
    header = "WEBVTT\n\n" if fmt == "vtt" else ""
    return header + "\n".join(blocks)


def _escaped(text: str) -> str:
    """Cue text as WebVTT reads it: & and < start markup there, and "-->" ends nothing inside a cue."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clock(seconds: float, fmt: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{'.' if fmt == 'vtt' else ','}{ms:03d}"
