import itertools

from heimdex.domain import FrameRef, OcrLine, SceneDraft, SceneSpan, Segment, Tag, Transcript, Word
from heimdex.pipeline.assemble import (
    FrameTags,
    FrameText,
    assign_words,
    build_drafts,
    choose_in_shots,
    distinct_frames,
    merge_ocr,
    merge_tags,
    pick_frames,
    scene_windows,
    shots_from_cuts,
    speech_pauses,
    words_to_text,
)


def spans(*edges: float) -> list[SceneSpan]:
    return [SceneSpan(index=i, start_s=a, end_s=b) for i, (a, b) in enumerate(itertools.pairwise(edges))]


def test_shots_cover_the_video_and_ignore_cuts_outside_it():
    shots = shots_from_cuts([12.0, 3.0, -1.0, 50.0], 20.0)
    assert [(s.start_s, s.end_s) for s in shots] == [(0.0, 3.0), (3.0, 12.0), (12.0, 20.0)]
    assert [s.index for s in shots] == [0, 1, 2]


def test_choose_in_shots_spreads_and_caps_and_reports_empty_shots():
    shots = spans(0, 2, 12, 100, 100.5)
    candidates = [FrameRef(scene_index=-1, t_s=t + 0.2, key=str(t)) for t in range(100)]
    chosen, empty = choose_in_shots(candidates, shots, per_scene_cap=4, max_scene_s=30)
    assert [s.index for s in empty] == [3]  # half a second, no candidate inside
    per_shot = {i: [f.t_s for f in chosen if f.scene_index == i] for i in range(3)}
    assert len(per_shot[0]) == 2 and len(per_shot[1]) == 4 and len(per_shot[2]) == 12  # long shot: cap x3
    assert all(2 <= t < 12 for t in per_shot[1]) and per_shot[1] == sorted(set(per_shot[1]))


def test_distinct_frames_drops_lookalikes_within_a_shot_only():
    a = FrameRef(scene_index=0, t_s=1, key="a", thumbprint=[100] * 144)
    a2 = FrameRef(scene_index=0, t_s=2, key="a2", thumbprint=[103] * 144)
    b = FrameRef(scene_index=0, t_s=3, key="b", thumbprint=[180] * 144)
    other_shot = FrameRef(scene_index=1, t_s=4, key="c", thumbprint=[100] * 144)
    assert [f.key for f in distinct_frames([a, a2, b, other_shot])] == ["a", "b", "c"]


def transcript(*words: tuple[str, float, float]) -> Transcript:
    ws = [Word(text=t, start_s=a, end_s=b) for t, a, b in words]
    return Transcript(
        language="en",
        segments=[
            Segment(start_s=ws[0].start_s, end_s=ws[-1].end_s, text="".join(w.text for w in ws), words=ws)
        ],
    )


def test_every_word_lands_in_exactly_one_scene():
    t = transcript((" the", 0.1, 0.4), (" bridge", 1.8, 2.3), (" budget", 2.4, 3.0), (" vote", 5.0, 5.5))
    scenes = spans(0, 2, 4, 6)
    per_scene = assign_words(t, scenes)
    assert [[w.text.strip() for w in ws] for ws in per_scene] == [["the"], ["bridge", "budget"], ["vote"]]
    assert sum(len(ws) for ws in per_scene) == 4


def test_a_word_dangling_across_a_cut_stays_with_its_sentence():
    t = transcript((" The", 5.8, 5.95), (" astronaut", 6.1, 6.6), (" waved", 6.7, 7.0), (" home.", 7.1, 7.4))
    per_scene = assign_words(t, spans(0, 6, 10))
    assert [w.text for w in per_scene[0]] == [] and len(per_scene[1]) == 4
    ending = transcript(
        (" we", 3.0, 3.2), (" planted", 3.3, 3.8), (" tomatoes", 3.9, 5.8), (" too.", 6.02, 6.3)
    )
    per_scene = assign_words(ending, spans(0, 6, 10))
    assert len(per_scene[0]) == 4 and per_scene[1] == []


def test_a_sentence_really_spanning_a_cut_is_split_by_time():
    t = transcript(
        (" one", 1, 2),
        (" two", 3, 4),
        (" three", 5, 5.5),
        (" four", 6.5, 7),
        (" five", 8, 9),
        (" six", 9, 10),
    )
    per_scene = assign_words(t, spans(0, 6, 11))
    assert [len(ws) for ws in per_scene] == [3, 3]


def test_words_to_text_joins_whisper_words():
    words = [Word(text=" Hello", start_s=0, end_s=1), Word(text=" world.", start_s=1, end_s=2)]
    assert words_to_text(words) == "Hello world."


def test_speech_pauses_between_segments():
    t = Transcript(
        segments=[
            Segment(start_s=0, end_s=2, text="a"),
            Segment(start_s=2.1, end_s=4, text="b"),
            Segment(start_s=6, end_s=7, text="c"),
        ]
    )
    assert speech_pauses(t) == [(4, 6)]


def test_merge_ocr_dedupes_lines_and_keeps_the_longest_reading():
    frames = [
        FrameText(t_s=1, lines=[OcrLine(text="GALLERY OPEN", score=0.9)]),
        FrameText(t_s=2, lines=[OcrLine(text="GALLERY OPENING FRIDAY", score=0.9)]),
        FrameText(
            t_s=3,
            lines=[OcrLine(text="gallery opening friday!", score=0.9), OcrLine(text="Main St", score=0.8)],
        ),
    ]
    assert merge_ocr(frames) == "GALLERY OPENING FRIDAY\nMain St"


def test_merge_tags_keeps_best_score_per_label():
    frames = [
        FrameTags(
            t_s=1,
            tags=[
                Tag(label="tabby cat", score=0.4, source="imagenet"),
                Tag(label="lamp", score=0.05, source="imagenet"),
            ],
        ),
        FrameTags(t_s=2, tags=[Tag(label="tabby cat", score=0.7, source="imagenet")]),
    ]
    tags = merge_tags(frames, min_score=0.1)
    assert [(t.label, t.score) for t in tags] == [("tabby cat", 0.7)]


def test_build_drafts_puts_text_and_tags_in_the_right_scene():
    t = transcript((" rooftop", 0.5, 1.0), (" garden", 3.0, 3.5))
    drafts = build_drafts(
        spans(0, 2, 4),
        t,
        ocr=[FrameText(t_s=3.0, lines=[OcrLine(text="LUNAR ECLIPSE", score=0.9)])],
        tags=[FrameTags(t_s=1.0, tags=[Tag(label="moon", score=0.5, source="imagenet")])],
        min_tag_score=0.1,
    )
    assert drafts[0].transcript == "rooftop" and drafts[1].transcript == "garden"
    assert drafts[1].ocr_text == "LUNAR ECLIPSE" and drafts[0].ocr_text == ""
    assert [t.label for t in drafts[0].tags] == ["moon"] and drafts[1].tags == []


def test_pick_frames_takes_the_sharpest_per_shot_in_time_order():
    frames = [
        FrameRef(scene_index=0, t_s=t, key=f"k{t}", sharpness=s)
        for t, s in [(0.5, 1.0), (1.5, 9.0), (2.5, 5.0)]
    ] + [FrameRef(scene_index=1, t_s=4.0, key="x")]
    assert [f.t_s for f in pick_frames(frames, 2)] == [1.5, 2.5, 4.0]


def test_a_scene_that_says_several_things_gets_windows():
    def draft(text: str) -> SceneDraft:
        return SceneDraft(index=0, start_s=0, end_s=30, transcript=text)

    said = "The bridge closes in May. Parking fees go up! Will the ferry run? The library opens late."
    assert scene_windows(draft(said)) == [
        "The bridge closes in May. Parking fees go up!",
        "Parking fees go up! Will the ferry run?",
        "Will the ferry run? The library opens late.",
    ]
    assert scene_windows(draft("One thing. And another.")) == [], "a short scene is its own window"
    assert scene_windows(draft("")) == [] and scene_windows(draft("no full stop at all")) == []
