"""Pure functions that turn stage outputs into scenes: no I/O, no models, easy to test."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence

from heimdex.domain import (
    FaceObservation,
    FrameRef,
    FrameTags,
    FrameText,
    SceneDraft,
    SceneSpan,
    Tag,
    Transcript,
    Word,
)
from heimdex.text_windows import transcript_windows


def shots_from_cuts(cuts: Sequence[float], duration_s: float) -> list[SceneSpan]:
    """Camera shots between consecutive cuts, covering the whole video."""
    edges = [0.0, *sorted(c for c in cuts if 0.0 < c < duration_s), duration_s]
    return [
        SceneSpan(index=i, start_s=a, end_s=b) for i, (a, b) in enumerate(itertools.pairwise(edges)) if b > a
    ]


def speech_pauses(transcript: Transcript, min_gap_s: float = 0.3) -> list[tuple[float, float]]:
    """Silent intervals between consecutive speech segments, where a long shot is best split."""
    segments = sorted(transcript.segments, key=lambda s: s.start_s)
    return [(a.end_s, b.start_s) for a, b in itertools.pairwise(segments) if b.start_s - a.end_s >= min_gap_s]


def _in_scene(t: float, scenes: Sequence[SceneSpan]) -> int:
    """Index of the scene containing time t (scenes cover the timeline without gaps)."""
    lo, hi = 0, len(scenes) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if scenes[mid].start_s <= t:
            lo = mid
        else:
            hi = mid - 1
    return lo


def assign_words(transcript: Transcript, scenes: Sequence[SceneSpan]) -> list[list[Word]]:
    """Every word goes to exactly one scene: the one holding the word's midpoint, except that a word
    or two dangling across a cut at the start or end of a sentence join the rest of their sentence
    (Whisper's word times run a little early, which put "The" of "The astronaut waved" before the cut)."""
    per_scene: list[list[Word]] = [[] for _ in scenes]
    for segment in transcript.segments:
        words = segment.words or [Word(text=segment.text, start_s=segment.start_s, end_s=segment.end_s)]
        words = [w for w in words if w.text.strip()]
        where = [_in_scene((w.start_s + w.end_s) / 2, scenes) for w in words]
        _keep_sentence_whole(words, where, scenes)
        for word, scene in zip(words, where, strict=True):
            per_scene[scene].append(word)
    return per_scene


DANGLE_WORDS = 2
DANGLE_S = 0.6


def _keep_sentence_whole(words: Sequence[Word], where: list[int], scenes: Sequence[SceneSpan]) -> None:
    """Move at most DANGLE_WORDS words at either end of a sentence across the cut next to them, when
    they lie within DANGLE_S of it."""
    if len(set(where)) < 2:
        return
    head = next(i for i, scene in enumerate(where) if scene != where[0])
    cut = scenes[where[head]].start_s
    if head <= DANGLE_WORDS and cut - words[0].start_s <= DANGLE_S:
        where[:head] = [where[head]] * head
    if len(set(where)) < 2:
        return
    tail = next(i for i, scene in enumerate(reversed(where)) if scene != where[-1])
    cut = scenes[where[-1]].start_s
    if 0 < tail <= DANGLE_WORDS and words[-1].end_s - cut <= DANGLE_S:
        where[-tail:] = [where[-tail - 1]] * tail


def words_to_text(words: Sequence[Word]) -> str:
    """Whisper words carry their own leading spaces; join them back into readable text."""
    return re.sub(
        r"\s+", " ", "".join(w.text if w.text[:1].isspace() else " " + w.text for w in words)
    ).strip()


_NORMALISE = re.compile(r"[^\w]+")


def _norm(text: str) -> str:
    return _NORMALISE.sub(" ", text.lower()).strip()


def merge_ocr(frames: Sequence[FrameText]) -> str:
    """On-screen text of a scene, each distinct line once, in first-seen order.

    A line that is contained in a longer line already kept (OCR of a partly hidden caption) is dropped.
    """
    kept: list[str] = []
    seen: list[str] = []
    for frame in sorted(frames, key=lambda f: f.t_s):
        for line in frame.lines:
            norm = _norm(line.text)
            if not norm or any(norm in other for other in seen):
                continue
            for i in range(len(seen) - 1, -1, -1):  # a longer reading replaces its fragments
                if seen[i] in norm:
                    del seen[i], kept[i]
            seen.append(norm)
            kept.append(line.text.strip())
    return "\n".join(kept)


def merge_tags(frames: Sequence[FrameTags], min_score: float, limit: int = 10) -> list[Tag]:
    """A scene's tags: each label's best score over its frames, above min_score, best first."""
    best: dict[str, Tag] = {}
    for frame in frames:
        for tag in frame.tags:
            if tag.score >= min_score and (tag.label not in best or tag.score > best[tag.label].score):
                best[tag.label] = tag
    return sorted(best.values(), key=lambda t: -t.score)[:limit]


def build_drafts(
    scenes: Sequence[SceneSpan],
    transcript: Transcript,
    ocr: Sequence[FrameText],
    tags: Sequence[FrameTags],
    min_tag_score: float,
) -> list[SceneDraft]:
    words = assign_words(transcript, scenes)
    ocr_by_scene: list[list[FrameText]] = [[] for _ in scenes]
    for frame in ocr:
        ocr_by_scene[_in_scene(frame.t_s, scenes)].append(frame)
    tags_by_scene: list[list[FrameTags]] = [[] for _ in scenes]
    for frame in tags:
        tags_by_scene[_in_scene(frame.t_s, scenes)].append(frame)
    return [
        SceneDraft(
            index=s.index,
            start_s=s.start_s,
            end_s=s.end_s,
            transcript=words_to_text(words[i]),
            words=words[i],
            ocr_text=merge_ocr(ocr_by_scene[i]),
            tags=merge_tags(tags_by_scene[i], min_tag_score),
        )
        for i, s in enumerate(scenes)
    ]


def place_faces(faces: Sequence[FaceObservation], scenes: Sequence[SceneSpan]) -> list[FaceObservation]:
    return [f.model_copy(update={"scene_index": scenes[_in_scene(f.t_s, scenes)].index}) for f in faces]


def sharpest_frame(frames: Sequence[FrameRef], scene: SceneSpan) -> FrameRef | None:
    inside = [f for f in frames if scene.start_s <= f.t_s < scene.end_s]
    return max(inside, key=lambda f: f.sharpness) if inside else None


def pick_frames(frames: Sequence[FrameRef], per_shot: int) -> list[FrameRef]:
    """The `per_shot` sharpest frames of each shot, in time order: tags and faces rarely change within
    a shot, so looking at every frame costs time and finds nothing new."""
    by_shot: dict[int, list[FrameRef]] = {}
    for frame in frames:
        by_shot.setdefault(frame.scene_index, []).append(frame)
    chosen = [f for group in by_shot.values() for f in sorted(group, key=lambda f: -f.sharpness)[:per_shot]]
    return sorted(chosen, key=lambda f: f.t_s)


def distinct_frames(frames: Sequence[FrameRef], min_difference: float = 8.0) -> list[FrameRef]:
    """Drop frames that look like one already kept in the same shot (mean grey-level difference of
    their thumbprints below `min_difference` out of 255): a static or slowly panning shot shows the
    same text, objects and faces, and models cost hundreds of milliseconds a frame."""
    kept: list[FrameRef] = []
    for frame in frames:
        same_shot = [k for k in kept if k.scene_index == frame.scene_index]
        if frame.thumbprint and any(_difference(frame, k) < min_difference for k in same_shot):
            continue
        kept.append(frame)
    return kept


def _difference(a: FrameRef, b: FrameRef) -> float:
    if len(a.thumbprint) != len(b.thumbprint):
        return float("inf")
    return sum(abs(x - y) for x, y in zip(a.thumbprint, b.thumbprint, strict=True)) / len(a.thumbprint)


def choose_in_shots(
    candidates: Sequence[FrameRef], shots: Sequence[SceneSpan], per_scene_cap: int, max_scene_s: float
) -> tuple[list[FrameRef], list[SceneSpan]]:
    """Evenly spaced candidates inside each shot, capped (a long shot may become several scenes, so
    its cap grows with its length). Returns the chosen frames and the shots that had no candidate."""
    chosen: list[FrameRef] = []
    empty: list[SceneSpan] = []
    ordered = sorted(candidates, key=lambda f: f.t_s)
    for shot in shots:
        inside = [f for f in ordered if shot.start_s <= f.t_s < shot.end_s]
        if not inside:
            empty.append(shot)
            continue
        cap = per_scene_cap * max(1, math.ceil((shot.end_s - shot.start_s) / max_scene_s))
        step = len(inside) / min(cap, len(inside))
        picks = [inside[int(i * step + step / 2)] for i in range(min(cap, len(inside)))]
        chosen.extend(f.model_copy(update={"scene_index": shot.index}) for f in picks)
    return chosen, empty


def scene_windows(draft: SceneDraft) -> list[str]:
    """What embed_text embeds as windows of a scene besides the whole (text_windows.py)."""
    return transcript_windows(draft.transcript)


def scene_text(draft: SceneDraft) -> str:
    """What embed_text embeds for a scene: its speech, then its on-screen text, then its tag names."""
    parts = [draft.transcript, draft.ocr_text.replace("\n", ". "), ", ".join(t.label for t in draft.tags)]
    return ". ".join(p for p in parts if p)
