"""Subtitle cues from timed words: readable lengths, breaks at pauses and sentences, valid files."""

from __future__ import annotations

import html
import io

import pytest
import srt
import webvtt

from heimdex.domain import Word
from heimdex.subtitles import MAX_CUE_S, MAX_ROW, cues, lines, render


def spoken(text: str, start: float = 0.0, gap: float = 0.05, length: float = 0.3) -> list[Word]:
    words, t = [], start
    for token in text.split():
        words.append(Word(text=token, start_s=t, end_s=t + length))
        t += length + gap
    return words


def test_a_long_sentence_becomes_cues_of_two_readable_rows_at_most():
    words = spoken("the city council met on tuesday evening to discuss " * 6)
    found = cues(words)
    assert len(found) > 1
    for cue in found:
        rows = cue.text.split("\n")
        assert len(rows) <= 2 and all(len(r) <= MAX_ROW for r in rows), cue.text
        assert cue.end_s - cue.start_s <= MAX_CUE_S
    assert " ".join(c.text.replace("\n", " ") for c in found).split() == [w.text for w in words]


def test_cues_break_at_sentence_ends_and_pauses():
    words = spoken("Hello there. General news") + spoken("after a long pause", start=10.0)
    assert [c.text for c in cues(words)] == ["Hello there.", "General news", "after a long pause"]
    assert cues(words)[2].start_s == 10.0


def test_transcript_lines_keep_their_twelve_word_limit():
    words = spoken(" ".join(f"w{i}" for i in range(30)))
    assert [len(line.text.split()) for line in lines(words)] == [12, 12, 6]


@pytest.mark.parametrize("text", ["a <b> & c --> d", "it's 5 > 4"])
def test_vtt_and_srt_documents_parse_with_independent_readers(text):
    words = spoken(f"{text}. Second sentence here.", start=3661.5)
    found = cues(words)
    vtt = render(found, "vtt")
    assert vtt.startswith("WEBVTT\n\n1\n01:01:01.500 --> ")
    parsed = webvtt.from_buffer(io.StringIO(vtt))
    # Cue text is escaped for WebVTT's markup (what a browser shows is the text unescaped).
    assert [html.unescape(c.text) for c in parsed] == [c.text for c in found]
    assert "<" not in parsed[0].text
    assert parsed[0].start == "01:01:01.500"  # webvtt-py rounds start_in_seconds to whole seconds
    subs = list(srt.parse(render(found, "srt")))
    assert [s.content for s in subs] == [c.text for c in found]
    assert subs[-1].end.total_seconds() == pytest.approx(found[-1].end_s)


def test_no_speech_is_an_empty_but_valid_document_and_formats_are_checked():
    assert render(cues([]), "vtt") == "WEBVTT\n\n"
    assert list(webvtt.from_buffer(io.StringIO(render([], "vtt")))) == []
    assert render([], "srt") == ""
    with pytest.raises(ValueError):
        render([], "ass")
