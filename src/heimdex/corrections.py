"""Transcript corrections: an owner's edit of a line, laid over the recognised words.

An edit names a span of the video's clock and the text said there. Applying it removes the words
whose middle lies in the span and puts the edit's words in their place, spread over the span in
proportion to their length (a correction has no timings of its own). Edits are stored apart from
the scenes, with the words they replaced, so that a reprocess, which recognises the speech again,
lays them over the new words (align_merge), and so that an edit can be taken back.

Pure: words and edits in, words out. The service does the storing and the re-embedding.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from heimdex.db import new_id
from heimdex.domain import Scene, SceneDraft, TranscriptEdit, Word
from heimdex.errors import InvalidRequestError
from heimdex.pipeline.assemble import words_to_text
from heimdex.validation import check_text

MAX_TEXT = 1000  # characters in one corrected line
MAX_SPAN_S = 60.0  # a line of the player is a few seconds; a minute is already a paragraph
_EDGE_S = 0.05  # a line's times are rounded; this much outside its scene still counts as inside


def clean_text(text: str) -> str:
    """The corrected line as it will be stored: one line, spaces squeezed. Refuses what is not a
    line of speech."""
    check_text(text, "a corrected line", allow_whitespace=True)
    cleaned = " ".join(text.split())
    if not cleaned:
        raise InvalidRequestError("a corrected line needs some text (take the correction back instead)")
    if len(cleaned) > MAX_TEXT:
        raise InvalidRequestError(f"a corrected line holds at most {MAX_TEXT} characters")
    return cleaned


def scene_of(scenes: Sequence[Scene], start_s: float, end_s: float) -> Scene:
    """The scene that holds the span; a correction edits one line, and a line lies in one scene.

    That is the scene playing at the span's middle (as `corrected` and `scene_at` find it again),
    if the span lies within the scene or its words: a sentence's first word or two said just before
    a cut belong to the scene after it (assemble.assign_words), so its line starts before the scene."""
    if not end_s > start_s >= 0:
        raise InvalidRequestError("a corrected line needs 0 <= start_s < end_s")
    if end_s - start_s > MAX_SPAN_S:
        raise InvalidRequestError(f"a corrected line spans at most {MAX_SPAN_S:.0f} s")
    if scenes:
        scene = scene_at(scenes, (start_s + end_s) / 2)
        low = min([scene.start_s, *(w.start_s for w in scene.words)])
        high = max([scene.end_s, *(w.end_s for w in scene.words)])
        if low - _EDGE_S <= start_s and end_s <= high + _EDGE_S:
            return scene
    raise InvalidRequestError(f"no scene holds {start_s:.2f}-{end_s:.2f} s: a line lies within one scene")


def scene_at(scenes: Sequence[Scene], t_s: float) -> Scene:
    """The scene playing at `t_s` (the last one also at its very end)."""
    for scene in scenes:
        if scene.start_s <= t_s < scene.end_s:
            return scene
    if scenes and t_s >= scenes[-1].start_s:
        return scenes[-1]
    raise InvalidRequestError(f"no scene plays at {t_s:.2f} s")


def in_span(word: Word, start_s: float, end_s: float) -> bool:
    middle = (word.start_s + word.end_s) / 2
    return start_s <= middle <= end_s


def edit_words(edit: TranscriptEdit) -> list[Word]:
    """The edit's text as words spread over its span, each as long as its share of the letters."""
    tokens = edit.text.split()
    weights = [len(t) + 1 for t in tokens]  # +1: the gap after a word takes time too
    total, at, out = sum(weights), edit.start_s, []
    for token, weight in zip(tokens, weights, strict=True):
        end = at + (edit.end_s - edit.start_s) * weight / total
        out.append(Word(text=" " + token, start_s=round(at, 3), end_s=round(end, 3), edit=edit.id))
        at = end
    return out


def new_edit(
    video_id: str, scene: Scene, start_s: float, end_s: float, text: str, existing: Sequence[TranscriptEdit]
) -> tuple[TranscriptEdit, list[TranscriptEdit]]:
    """The edit of a line, and the earlier edits it replaces (those it overlaps): it covers their
    spans too and keeps the recognised words they replaced, so that taking it back restores speech
    as recognised."""
    replaced = [e for e in existing if e.start_s < end_s and start_s < e.end_s]
    start = min([start_s, *(e.start_s for e in replaced)])
    end = max([end_s, *(e.end_s for e in replaced)])
    recognised = [w for w in scene.words if w.edit is None and in_span(w, start, end)]
    original = sorted([*recognised, *(w for e in replaced for w in e.original)], key=lambda w: w.start_s)
    edit = TranscriptEdit(
        id=new_id(),
        video_id=video_id,
        start_s=round(start, 3),
        end_s=round(end, 3),
        text=text,
        original=original,
        edited_at=time.time(),
    )
    return edit, replaced


def corrected(
    words: Sequence[Word], start_s: float, end_s: float, edits: Sequence[TranscriptEdit]
) -> list[Word]:
    """A scene's words (the scene spans start_s..end_s) with `edits` laid over them: words inside an
    edit's span or written by an earlier version of an edit give way, and each edit whose middle lies
    in the scene adds its words."""
    ids = {e.id for e in edits}
    kept = [w for w in words if w.edit not in ids and not any(in_span(w, e.start_s, e.end_s) for e in edits)]
    added = [w for e in edits if start_s <= (e.start_s + e.end_s) / 2 < end_s for w in edit_words(e)]
    return sorted([*kept, *added], key=lambda w: w.start_s)


def taken_back(words: Sequence[Word], edit: TranscriptEdit) -> list[Word]:
    """A scene's words without `edit`: the words it wrote go, the recognised ones it replaced return."""
    kept = [w for w in words if w.edit != edit.id]
    return sorted([*kept, *edit.original], key=lambda w: w.start_s)


def with_words(scene: Scene | SceneDraft, words: Sequence[Word]) -> SceneDraft:
    """The scene as a draft with these words: what embedding and full text take."""
    return SceneDraft(
        index=scene.index,
        start_s=scene.start_s,
        end_s=scene.end_s,
        transcript=words_to_text(words),
        words=list(words),
        ocr_text=scene.ocr_text,
        tags=scene.tags,
    )


def reapply(drafts: Sequence[SceneDraft], edits: Sequence[TranscriptEdit]) -> list[SceneDraft]:
    """A reprocessed video's scene drafts with the owner's corrections laid over the new words."""
    if not edits:
        return list(drafts)
    out = []
    for d in drafts:
        words = corrected(d.words, d.start_s, d.end_s, edits)
        out.append(d.model_copy(update={"words": words, "transcript": words_to_text(words)}))
    return out
