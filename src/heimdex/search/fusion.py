"""Score-aware fusion of the retrieval channels, and how confident each hit is.

Reciprocal rank fusion, used before, treats the first full-text hit alike whether it holds every word
of the query or one common word of ten; paraphrased questions share a word or two with many scenes,
so two weak channel matches outranked the scene the meaning channel put first. Here each channel
gives evidence on a scale of its own meaning, and the evidence is added:

- semantic: where the scene's cosine lies in the band of SEMANTIC_BAND below the query's best one
  (1 at the best, 0 at the band's floor; e5 cosines live in a narrow range, so only the band says
  anything);
- full text: the IDF-weighted share of the query's words that the scene holds (coverage): all of
  them is 1, one common word of many is near 0;
- visual: the tag score times the label's match weight (engine.py);
- person: a filter when there are other words; alone, its own order (nearest face first);
- clip (only with a CLIP-style model configured, see clip_coverage.py): where the scene's best
  frame lies in the band of CLIP_BAND below the best frame's CLIP similarity to the query's text,
  times CLIP_WEIGHT;
- image (search by example image, `fuse_image`): the cosine of the scene's best frame to the image.

A tiny rank-fusion term only breaks ties. The weights were chosen by cross-validation on the
development sets (docs/QUALITY.md has the folds); no threshold is tuned to a single query.
Everything here is computed from backend-neutral numbers (cosines, words, tag scores), so SQLite and
PostgreSQL rank alike although their raw full-text scores differ.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from heimdex.errors import HeimdexError
from heimdex.store import ScoredScene
from heimdex.words import stem

SEMANTIC_BAND = 0.08
# A hit's cosine above the query's background level (hubness.background_level), as a share of the
# best cosine (centred Korean queries have cosines on a smaller scale): this much counts as much as
# holding every word of the query.
STANDOUT_SCALE = 0.059
FULLTEXT_WEIGHT = 1.0
VISUAL_WEIGHT = 0.5
# The CLIP channel, chosen rather than measured (no real CLIP model is installable here). Its
# text-image cosines sit in a narrow range, as e5's do, so only a band below the best says anything.
# Its weight is a quarter of full text's: a scene that looks like the query but holds none of its
# words (or its meaning) can pass scenes of weak text evidence, never one that holds the query's words
# or its meaning best (1.0 each). It adds nothing to the confidence, which is measured on text evidence:
# a scene found by its look alone is "low", shown when nothing better was found (see cut).
CLIP_BAND = 0.05
CLIP_WEIGHT = 0.25
TIE_WEIGHT = 1e-3
RRF_K = 60
COUNT_CAP = 1000  # scene counts past this make a word "common"; counting further costs time, not sense
# A scene holding a near word (spelling.py: "Gail" for the query's "gale") holds this share of the
# query word: likely what was said, but not what was asked.
NEAR_CREDIT = 0.6
_WORD = re.compile(r"[\w']+", re.UNICODE)


@dataclass
class Evidence:
    """What the channels say about one scene."""

    semantic: float | None = None  # cosine to the query, if among the semantic candidates
    semantic_strength: float = 0.0  # 0..1 place in the band below the best cosine
    coverage: float = 0.0  # 0..1 IDF-weighted share of the query's words in the scene
    visual: float = 0.0  # 0..1 tag evidence
    person: bool = False
    standout: float = 0.0  # cosine above the query's background level, over the best (0: none)
    image: float | None = None  # search by image: the cosine of the scene's best frame
    clip: float = 0.0  # 0..1 place in the CLIP band below the best frame's similarity to the text
    tie: float = 0.0
    channels: set[str] = field(default_factory=set)

    @property
    def score(self) -> float:
        return (
            self.semantic_strength
            + FULLTEXT_WEIGHT * self.coverage
            + VISUAL_WEIGHT * self.visual
            + TIE_WEIGHT * self.tie
            + (self.image or 0.0)
            + CLIP_WEIGHT * self.clip
        )


def scene_stems(texts: Iterable[str], wanted: Iterable[str] | None = None) -> frozenset[str]:
    """The stems of the texts' words; with `wanted`, only stems that may be among those (a stem
    starts with its word's first letter, so only words starting like a wanted stem are stemmed:
    stemming was most of fusion's time)."""
    words: set[str] = set()
    for text in texts:  # distinct words first: stemming is the costly part
        words.update(w.lstrip("'") for w in _WORD.findall(text.lower()))
    if wanted is not None:
        initials = {s[:1] for s in wanted}
        words = {w for w in words if w[:1] in initials}
    return frozenset(stem(w) for w in words if w)


def term_weights(terms: Sequence[str], counts: Mapping[str, int], total: int) -> dict[str, float]:
    """IDF of each query word's stem among the owner's scenes (words no scene holds count fully)."""
    weights: dict[str, float] = {}
    for term in terms:
        key = stem(term)
        idf = math.log(1.0 + max(total, 1) / (1.0 + counts.get(term, 0)))
        weights[key] = max(weights.get(key, 0.0), idf)
    return weights


def coverage(
    weights: Mapping[str, float],
    stems: frozenset[str],
    near: Mapping[str, frozenset[str]] | None = None,
) -> float:
    """The weighted share of the query's words (stems) the scene holds; `near` maps a word the
    library lacks to the stems of its near words, each worth NEAR_CREDIT of it."""
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    held = 0.0
    for key, weight in weights.items():
        if key in stems:
            held += weight
        elif near and any(all(part in stems for part in w.split()) for w in near.get(key, ())):
            held += NEAR_CREDIT * weight  # a near word, or both halves of a compound written apart
    return held / total


def semantic_band(ranked: Sequence[ScoredScene]) -> list[ScoredScene]:
    """The semantic hits worth fusing: the band below the best (the rest is noise, e5 similarities
    sitting in a narrow range)."""
    if not ranked:
        return []
    floor = ranked[0].score - SEMANTIC_BAND
    return [s for s in ranked if s.score >= floor]


def clip_band(ranked: Sequence[ScoredScene]) -> list[ScoredScene]:
    """The CLIP hits worth fusing: the band below the best frame's similarity (as semantic_band)."""
    if not ranked:
        return []
    floor = ranked[0].score - CLIP_BAND
    return [s for s in ranked if s.score >= floor]


def fuse(
    channels: Mapping[str, Sequence[ScoredScene]],
    weights: Mapping[str, float],
    stems_of: Mapping[int, frozenset[str]],
    semantic_reference: float = 0.0,
    near: Mapping[str, frozenset[str]] | None = None,
) -> list[tuple[int, Evidence]]:
    """Scenes best first, with their evidence. `stems_of` holds the words of the full-text hits and
    `near` the near words of query words no scene holds (see coverage); the semantic channel is
    already cut to its band (semantic_band), and `semantic_reference` is the query's background
    level."""
    evidence: dict[int, Evidence] = {}
    # Ties are broken by rank fusion over the backend-neutral channels: a full-text rank is the
    # database's own (BM25 or ts_rank_cd) and only counts when nothing else ranks the scenes.
    neutral = {name for name in channels if name != "fulltext"}
    for name, ranked in channels.items():
        for rank, item in enumerate(ranked, start=1):
            e = evidence.setdefault(item.scene_pk, Evidence())
            e.channels.add(name)
            if name in neutral or not neutral:
                e.tie += 1.0 / (RRF_K + rank)
    semantic = channels.get("semantic", ())
    for item in semantic:
        e = evidence[item.scene_pk]
        e.semantic = item.score
        e.semantic_strength = max(0.0, 1.0 - (semantic[0].score - item.score) / SEMANTIC_BAND)
        e.standout = max(0.0, item.score - semantic_reference) / max(semantic[0].score, 1e-6)
    for item in channels.get("fulltext", ()):
        stems = stems_of.get(item.scene_pk, frozenset())
        # A phrase-only query has no loose words: matching the phrase is the whole of it.
        evidence[item.scene_pk].coverage = coverage(weights, stems, near) if weights else 1.0
    for item in channels.get("visual", ()):
        evidence[item.scene_pk].visual = min(1.0, item.score)
    looks = channels.get("clip", ())  # already cut to its band (clip_band)
    for item in looks:
        evidence[item.scene_pk].clip = max(0.0, 1.0 - (looks[0].score - item.score) / CLIP_BAND)
    people = channels.get("person")
    if people is not None:
        for item in people:
            evidence[item.scene_pk].person = True
        if len(channels) > 1:  # the person filtered the other channels: only their scenes count
            evidence = {pk: e for pk, e in evidence.items() if e.channels - {"person"}}
    meaning = {pk: e.semantic if e.semantic is not None else -2.0 for pk, e in evidence.items()}
    return sorted(evidence.items(), key=lambda item: (-round(item[1].score, 9), -meaning[item[0]], item[0]))


def fuse_image(
    image: Sequence[ScoredScene], people: Sequence[ScoredScene] | None = None
) -> list[tuple[int, Evidence]]:
    """Search by image: scenes in the order of their best frame's cosine (the store applied the
    filter, people included); the person channel only says which of them it also ranked."""
    with_people = {s.scene_pk for s in people or ()}
    fused = []
    for rank, item in enumerate(image, start=1):
        channels = {"image", "person"} if item.scene_pk in with_people else {"image"}
        e = Evidence(image=item.score, tie=1.0 / (RRF_K + rank), person=bool(with_people), channels=channels)
        fused.append((item.scene_pk, e))
    return fused


# Image search's confidence, on the cosine of the best frame (EfficientNet-Lite3 penultimate features
# are non-negative, so unrelated pictures still score ~0.3-0.58). On the photo pairs of
# eval/more_like_this.py the other photo of a pair scored 0.55-0.64 and the best wrong scene up to
# 0.58: the cosine alone barely tells them apart, so a hit is medium from 0.6 and high from 0.75
# (the same picture again); below, the closest scenes are shown marked low.
IMAGE_HIGH = 0.75
IMAGE_MEDIUM = 0.6


# Confidence levels on the combined evidence (standout / STANDOUT_SCALE + coverage + visual / 2). Set
# on the development sets with queries that have no answer (eval/no_answer_queries.json): their best
# hits scored 0.25-1.45, median 0.55; right first hits scored median 1.6 (docs/QUALITY.md).
HIGH_EVIDENCE = 1.6
MEDIUM_EVIDENCE = 1.2


def evidence_strength(e: Evidence) -> float:
    return e.standout / STANDOUT_SCALE + e.coverage + 0.5 * e.visual


def confidence(e: Evidence) -> str:
    """ "high", "medium" or "low". A face match alone is at least medium: it is identity, not words."""
    if e.image is not None:
        return "high" if e.image >= IMAGE_HIGH else "medium" if e.image >= IMAGE_MEDIUM or e.person else "low"
    strength = evidence_strength(e)
    if strength >= HIGH_EVIDENCE:
        return "high"
    if strength >= MEDIUM_EVIDENCE or e.person:
        return "medium"
    return "low"


LEVELS = ("low", "medium", "high")
AUTO = "auto"


def cut(fused: list[tuple[int, Evidence]], min_confidence: str) -> list[tuple[int, Evidence]]:
    """Hits at `min_confidence` or above. "auto" (the default) hides the low-confidence hits after a
    best hit that is not low; when the best is low itself, every hit is shown (marked low)."""
    if min_confidence == AUTO:
        if not fused or confidence(fused[0][1]) == "low":
            return fused  # the best is weak: show everything, marked low, rather than nothing
        return [(pk, e) for pk, e in fused if confidence(e) != "low"]
    if min_confidence not in LEVELS:
        raise HeimdexError(f"min_confidence must be auto, {', '.join(LEVELS)}; got {min_confidence!r}")
    floor = LEVELS.index(min_confidence)
    return [(pk, e) for pk, e in fused if LEVELS.index(confidence(e)) >= floor]
