"""Corrections laid over recognised words: spread, replaced, taken back, kept whole as a line."""

from __future__ import annotations

import itertools

import pytest

from heimdex import corrections, subtitles
from heimdex.domain import Scene, SceneDraft, TranscriptEdit, Word
from heimdex.errors import InvalidRequestError
from heimdex.validation import InvalidInputError


def words(*spec: tuple[str, float, float]) -> list[Word]:
    return [Word(text=" " + t, start_s=a, end_s=b) for t, a, b in spec]


RECOGNISED = words(
    ("The", 0.0, 0.2), ("ferry", 0.2, 0.6), ("leaves", 0.6, 1.0), ("at", 1.0, 1.1), ("nine.", 1.1, 1.5),
    ("Tickets", 2.5, 3.0), ("cost", 3.0, 3.3), ("four", 3.3, 3.6), ("euros.", 3.6, 4.0),
)  # fmt: skip


def scene(ws: list[Word] = RECOGNISED, start: float = 0.0, end: float = 5.0) -> Scene:
    return Scene(id="v-0000", video_id="v", index=0, start_s=start, end_s=end, words=ws)


def test_a_correction_replaces_the_words_of_its_span_and_keeps_the_others() -> None:
    edit, replaced = corrections.new_edit("v", scene(), 0.0, 1.5, "The ferry leaves at noon.", [])
    assert replaced == [] and [w.text.strip() for w in edit.original] == [
        "The",
        "ferry",
        "leaves",
        "at",
        "nine.",
    ]
    out = corrections.corrected(RECOGNISED, 0.0, 5.0, [edit])
    assert [w.text.strip() for w in out] == "The ferry leaves at noon. Tickets cost four euros.".split()
    assert [w.edit for w in out] == [edit.id] * 5 + [None] * 4
    new = out[:5]  # spread over the span in order, each as long as its share of the letters
    assert new[0].start_s == 0.0 and new[-1].end_s == 1.5
    assert all(a.end_s == pytest.approx(b.start_s, abs=1e-3) for a, b in itertools.pairwise(new))
    assert new[1].end_s - new[1].start_s > new[3].end_s - new[3].start_s  # "ferry" > "at"


def test_taking_a_correction_back_restores_the_recognised_words() -> None:
    edit, _ = corrections.new_edit("v", scene(), 0.0, 1.5, "A different line", [])
    corrected = corrections.corrected(RECOGNISED, 0.0, 5.0, [edit])
    assert corrections.taken_back(corrected, edit) == RECOGNISED


def test_an_overlapping_correction_replaces_the_earlier_one_and_keeps_its_originals() -> None:
    first, _ = corrections.new_edit("v", scene(), 0.0, 1.5, "The ferry leaves at noon.", [])
    now = corrections.corrected(RECOGNISED, 0.0, 5.0, [first])
    second, replaced = corrections.new_edit("v", scene(now), 1.0, 1.5, "at ten.", [first])
    assert replaced == [first] and (second.start_s, second.end_s) == (0.0, 1.5)
    assert second.original == RECOGNISED[:5], "the recognised words, not the first correction's"
    again = corrections.corrected(now, 0.0, 5.0, [second])
    assert [w.text.strip() for w in again][:2] == ["at", "ten."] and {w.edit for w in again[:2]} == {
        second.id
    }
    assert corrections.taken_back(again, second) == RECOGNISED


def test_a_reprocess_lays_corrections_over_new_words_in_the_scene_that_holds_them() -> None:
    edit = TranscriptEdit(id="e1", video_id="v", start_s=2.5, end_s=4.0, text="Tickets are free.")
    first = SceneDraft(index=0, start_s=0.0, end_s=2.0, words=RECOGNISED[:5])
    second = SceneDraft(index=1, start_s=2.0, end_s=5.0, words=RECOGNISED[5:])
    out = corrections.reapply([first, second], [edit])
    assert out[0].words == first.words and out[0].transcript == "The ferry leaves at nine."
    assert out[1].transcript == "Tickets are free." and {w.edit for w in out[1].words} == {"e1"}


def test_a_corrected_line_stays_one_line_and_ends_where_recognised_speech_resumes() -> None:
    long_text = "one two three four five six seven eight nine ten eleven twelve thirteen. fourteen"
    edit, _ = corrections.new_edit("v", scene(), 0.0, 1.5, long_text, [])
    lines = subtitles.lines(corrections.corrected(RECOGNISED, 0.0, 5.0, [edit]))
    assert [(ln.text, ln.edit) for ln in lines] == [(long_text, edit.id), ("Tickets cost four euros.", None)]
    assert (lines[0].start_s, lines[0].end_s) == (0.0, 1.5)


@pytest.mark.parametrize(
    ("start", "end", "why"),
    [
        (1.0, 1.0, "start_s < end_s"),
        (4.0, 6.5, "no scene holds"),
        (0.0, 61.0, "at most 60 s"),
        (-1.0, 1.0, "0 <="),
    ],
)
def test_a_correction_edits_a_line_inside_one_scene(start: float, end: float, why: str) -> None:
    with pytest.raises(InvalidRequestError, match=why):
        corrections.scene_of([scene(), scene([], start=5.0, end=10.0)], start, end)


def test_a_line_whose_first_word_was_said_before_the_cut_is_its_scenes() -> None:
    """assign_words gives a sentence's first word said just before a cut to the scene after it: its
    line starts before that scene, and is still the scene's to correct."""
    later = words(("The", 4.8, 5.1), ("rocket", 5.1, 5.6), ("lifted", 5.6, 6.0), ("off.", 6.0, 6.4))
    first = scene(RECOGNISED)
    second = Scene(id="v-0001", video_id="v", index=1, start_s=5.0, end_s=10.0, words=later)
    assert corrections.scene_of([first, second], 4.8, 6.4) is second
    assert corrections.scene_of([first, second], 2.5, 4.0) is first
    with pytest.raises(InvalidRequestError, match="no scene holds"):
        corrections.scene_of([first, second], 4.0, 6.4)  # the middle is the second's, the start is not


def test_a_corrected_line_is_text_of_a_sensible_size() -> None:
    assert corrections.clean_text("  the  ferry\nleaves ") == "the ferry leaves"
    with pytest.raises(InvalidRequestError, match="needs some text"):
        corrections.clean_text(" \n ")
    with pytest.raises(InvalidRequestError, match="at most 1000"):
        corrections.clean_text("word " * 300)
    with pytest.raises(InvalidInputError, match="control character"):
        corrections.clean_text("bell\x07")
