"""Evidence fusion (search/fusion.py): pure functions over channel lists, so each rule is shown alone."""

from __future__ import annotations

import pytest

from heimdex.search.fusion import (
    CLIP_BAND,
    CLIP_WEIGHT,
    SEMANTIC_BAND,
    clip_band,
    confidence,
    coverage,
    cut,
    fuse,
    scene_stems,
    semantic_band,
    term_weights,
)
from heimdex.search.snippets import stem
from heimdex.store import ScoredScene


def test_a_common_word_carries_little_and_a_rare_one_much():
    weights = term_weights(["people", "karaoke"], {"people": 900, "karaoke": 2}, total=1000)
    assert coverage(weights, scene_stems(["Karaoke night"])) > 0.85
    assert coverage(weights, scene_stems(["Many people came"])) < 0.15
    assert coverage(weights, scene_stems(["People at karaoke"])) == pytest.approx(1.0)


def test_words_match_by_stem():
    weights = term_weights(["oranges"], {"oranges": 1}, total=10)
    assert coverage(weights, scene_stems(["an orange on the table"])) == 1.0


def test_a_near_word_or_both_halves_of_a_compound_earn_part_of_the_word():
    weights = term_weights(["hosepipe"], {"hosepipe": 0}, total=10)
    near = {stem("hosepipe"): frozenset({"hose pipe", stem("hosepipes")})}
    held = coverage(weights, scene_stems(["the hose pipe ban is lifted"]), near)
    assert 0 < held < 1.0, "a near match counts, less than the word itself"
    assert coverage(weights, scene_stems(["a pipe organ"]), near) == 0.0, "one half is not the compound"


def test_one_shared_common_word_does_not_outrank_the_meaning():
    # Scene 1 shares one common word with a paraphrased question and is 5th by meaning; scene 2
    # holds none of its words but is first by meaning. RRF put scene 1 first (two channels).
    weights = term_weights(
        ["shut", "web", "pages", "take"], {"take": 40, "shut": 3, "web": 2, "pages": 2}, 100
    )
    semantic = semantic_band([ScoredScene(2, 0.85), *(ScoredScene(pk, 0.83) for pk in (3, 4, 5, 1))])
    channels = {"fulltext": [ScoredScene(1, 4.4)], "semantic": semantic}
    fused = fuse(channels, weights, {1: scene_stems(["Take your work seriously"])}, 0.8)
    assert fused[0][0] == 2


def test_holding_every_word_wins_over_a_slightly_closer_meaning():
    weights = term_weights(["estuary", "geese"], {"estuary": 1, "geese": 1}, 100)
    semantic = semantic_band([ScoredScene(2, 0.85), ScoredScene(1, 0.84)])
    fused = fuse(
        {"fulltext": [ScoredScene(1, 7.0)], "semantic": semantic},
        weights,
        {1: scene_stems(["Geese rest in the estuary"])},
        0.8,
    )
    assert [pk for pk, _ in fused] == [1, 2]


def test_the_semantic_band_drops_the_far_tail():
    kept = semantic_band([ScoredScene(1, 0.9), ScoredScene(2, 0.9 - SEMANTIC_BAND - 0.01)])
    assert [s.scene_pk for s in kept] == [1]


def test_exact_ties_are_broken_the_same_way_on_every_backend():
    # two scenes with the same coverage and the same place in the band: meaning decides, then pk
    weights = term_weights(["bridge"], {"bridge": 3}, 10)
    semantic = semantic_band([ScoredScene(2, 0.47), ScoredScene(1, 0.47)])
    stems = {1: scene_stems(["bridge"]), 2: scene_stems(["bridge"])}
    fused = fuse(
        {"fulltext": [ScoredScene(1, 3.0), ScoredScene(2, 2.9)], "semantic": semantic},
        weights,
        stems,
        0.4,
    )
    # full text ranked 1 first, but that order is the database's own (BM25 or ts_rank_cd): the
    # backend-neutral semantic order breaks the tie, so both stores answer alike
    assert [pk for pk, _ in fused] == [2, 1]


def test_a_person_filter_keeps_only_scenes_the_text_found():
    fused = fuse(
        {"person": [ScoredScene(1, 0.3), ScoredScene(2, 0.4)], "semantic": [ScoredScene(2, 0.8)]}, {}, {}, 0.7
    )
    assert [pk for pk, _ in fused] == [2]
    alone = fuse({"person": [ScoredScene(1, 0.3), ScoredScene(2, 0.4)]}, {}, {})
    assert [pk for pk, _ in alone] == [1, 2] and all(confidence(e) == "medium" for _, e in alone)


def test_confidence_follows_the_evidence():
    weights = term_weights(["lopsided"], {"lopsided": 1}, 100)
    semantic = semantic_band([ScoredScene(pk, 0.84 - pk * 0.001) for pk in range(1, 12)])
    reference = 0.82  # the query's background level
    fused = dict(
        fuse(
            {"fulltext": [ScoredScene(1, 5.0)], "semantic": semantic},
            weights,
            {1: scene_stems(["lopsided mug"])},
            reference,
        )
    )
    assert confidence(fused[1]) in ("medium", "high")
    assert confidence(fused[11]) == "low"  # neither its words nor its meaning stand out


def test_auto_cut_hides_the_low_tail_only_after_better_hits():
    semantic = semantic_band([ScoredScene(1, 0.90), *(ScoredScene(pk, 0.84) for pk in range(2, 12))])
    fused = fuse({"semantic": semantic}, {}, {}, 0.80)
    assert confidence(dict(fused)[1]) == "high"
    assert [pk for pk, _ in cut(fused, "auto")] == [1]
    assert len(cut(fused, "low")) == 11
    flat = semantic_band([ScoredScene(pk, 0.84) for pk in range(1, 12)])
    nothing_better = fuse({"semantic": flat}, {}, {}, 0.83)
    assert len(cut(nothing_better, "auto")) == 11  # all low: shown, marked low
    assert cut(nothing_better, "medium") == []


def test_stemming_only_what_coverage_asks_about_gives_the_same_coverage():
    text = "Lying in the sun, the 'villagers' studied happily while geese rested in the estuary"
    weights = {stem(w): 1.0 for w in ("lie", "villager", "study", "happy", "goose", "rest", "absent")}
    everything = scene_stems([text])
    wanted = scene_stems([text], weights)
    assert wanted <= everything and coverage(weights, wanted) == coverage(weights, everything)
    assert {stem("lying"), stem("villagers"), stem("studied")} <= wanted
    assert stem("estuary") not in wanted and "the" not in wanted  # no wanted stem starts so


def test_the_clip_channel_orders_scenes_alike_in_text_but_never_passes_the_words():
    """CLIP evidence (a scene's look against the query's text) breaks the order of scenes the text
    channels rate alike, and lifts a scene they did not find above weak text evidence; a scene
    holding the query's words stays first however well another looks, and looks add no confidence."""
    weights = term_weights(["lighthouse"], {"lighthouse": 2}, 100)
    looks = clip_band([ScoredScene(3, 0.31), ScoredScene(2, 0.30), ScoredScene(9, 0.31 - CLIP_BAND - 0.01)])
    assert [s.scene_pk for s in looks] == [3, 2], "the band below the best, as for meaning"
    semantic = semantic_band([ScoredScene(1, 0.86), ScoredScene(2, 0.79), ScoredScene(4, 0.79)])
    channels = {"fulltext": [ScoredScene(1, 5.0)], "semantic": semantic, "clip": looks}
    stems = {1: scene_stems(["the lighthouse at dusk"])}
    fused = fuse(channels, weights, stems, 0.78)
    assert [pk for pk, _ in fused] == [1, 2, 3, 4]
    evidence = dict(fused)
    assert evidence[3].clip == 1.0 and evidence[2].clip == pytest.approx(0.8)
    assert evidence[3].score == pytest.approx(CLIP_WEIGHT + evidence[3].tie * 1e-3)
    assert evidence[2].score > evidence[4].score, "alike by meaning: the look decides"
    assert evidence[3].score > evidence[4].score, "a good look passes a weak meaning"
    assert confidence(evidence[3]) == "low", "a look alone is no evidence of the words"
    assert [pk for pk, _ in cut(fused, "auto")] == [1], "so the auto cut hides it after a sure hit"
    without = fuse({k: v for k, v in channels.items() if k != "clip"}, weights, stems, 0.78)
    assert [pk for pk, e in without] == [1, 2, 4] and all(e.clip == 0 for _, e in without)
