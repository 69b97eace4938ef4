"""embed_text: one passage vector per scene (speech + on-screen text + tags), window vectors for
scenes that say several things, and tag-name vectors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from heimdex.domain import SceneDraft
from heimdex.ml.base import TextEmbedder
from heimdex.pipeline.artifacts import DRAFTS, LABEL_VECTORS, TEXT_MODEL, TEXT_VECTORS, WINDOW_VECTORS
from heimdex.pipeline.assemble import scene_text, scene_windows
from heimdex.pipeline.context import StageContext


@dataclass(frozen=True)
class SceneVectors:
    """Passage vectors of scenes: one per scene (zeros for a scene with nothing to say, so that it
    matches no query by accident) and the windows of their speech, `window_scenes[i]` being the scene
    index of window row i."""

    scenes: np.ndarray
    windows: np.ndarray
    window_scenes: list[int]


def embed_scenes(model: TextEmbedder, drafts: Sequence[SceneDraft]) -> SceneVectors:
    """What search reads of the scenes' text, embedded in one model call (a call has a fixed cost)."""
    texts = [scene_text(d) for d in drafts]
    filled = [i for i, t in enumerate(texts) if t.strip()]
    windows = [(d.index, w) for d in drafts for w in scene_windows(d)]
    embedded = model.embed_passages([texts[i] for i in filled] + [w for _, w in windows])
    vectors = np.zeros((len(texts), model.dim), dtype=np.float32)
    if filled:
        vectors[filled] = embedded[: len(filled)]
    window_vectors = np.asarray(embedded[len(filled) :], dtype=np.float32).reshape(-1, model.dim)
    return SceneVectors(vectors, window_vectors, [i for i, _ in windows])


def embed_text(ctx: StageContext) -> None:
    drafts = ctx.artifacts.load(DRAFTS)
    model = ctx.models.text
    embedded = embed_scenes(model, drafts)
    labels = sorted({tag.label for d in drafts for tag in d.tags})
    ctx.artifacts.save(TEXT_VECTORS, embedded.scenes)
    ctx.artifacts.save(WINDOW_VECTORS, embedded.windows)
    ctx.artifacts.save(
        LABEL_VECTORS, model.embed_passages(labels) if labels else np.zeros((0, model.dim), np.float32)
    )
    ctx.artifacts.save(
        TEXT_MODEL, {"model": model.name, "labels": labels, "window_scenes": embedded.window_scenes}
    )
