"""embed_text: one passage vector per scene (speech + on-screen text + tags), window vectors for
scenes that say several things, and tag-name vectors."""

from __future__ import annotations

import numpy as np

from heimdex.pipeline.artifacts import DRAFTS, LABEL_VECTORS, TEXT_MODEL, TEXT_VECTORS, WINDOW_VECTORS
from heimdex.pipeline.assemble import scene_text, scene_windows
from heimdex.pipeline.context import StageContext


def embed_text(ctx: StageContext) -> None:
    drafts = ctx.artifacts.load(DRAFTS)
    model = ctx.models.text
    texts = [scene_text(d) for d in drafts]
    filled = [i for i, t in enumerate(texts) if t.strip()]
    windows = [(d.index, w) for d in drafts for w in scene_windows(d)]
    # One call for scenes and windows: the model batches them (a call has a fixed cost).
    embedded = model.embed_passages([texts[i] for i in filled] + [w for _, w in windows])
    vectors = np.zeros((len(texts), model.dim), dtype=np.float32)
    if filled:  # a scene with nothing to say keeps a zero vector: it matches no query by accident
        vectors[filled] = embedded[: len(filled)]
    labels = sorted({tag.label for d in drafts for tag in d.tags})
    ctx.artifacts.save(TEXT_VECTORS, vectors)
    ctx.artifacts.save(WINDOW_VECTORS, np.asarray(embedded[len(filled) :], dtype=np.float32))
    ctx.artifacts.save(
        LABEL_VECTORS, model.embed_passages(labels) if labels else np.zeros((0, model.dim), np.float32)
    )
    ctx.artifacts.save(
        TEXT_MODEL, {"model": model.name, "labels": labels, "window_scenes": [i for i, _ in windows]}
    )
