"""CLIP end to end, with tiny generated models in both folder layouts (tests/tiny_clip.py: an image's
vector is its mean colour, a colour word points at it). Plumbing only, no quality claimed.

Two real videos are indexed with model A: colour cards (red, green, and blue with a caption saying
RED) and KPhotoAlbum's photos. Text queries reach the cards through the clip channel, a caption
holding the word stays ahead of a card that only looks like it, and "more like this" ranks by A's
vectors. Then the configured model becomes B (the other layout, another dimension, other vectors):
until every frame has a B vector search keeps to A's, through a re-embedding stopped halfway; once
complete, B serves and A's vectors are gone. Both backends.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from heimdex.ml.base import IMAGE_VECTOR_MODEL
from heimdex.ml.registry import Models
from heimdex.reembed import Reembedder, ReembedProgress
from heimdex.search.fusion import CLIP_WEIGHT
from heimdex.service import LOCAL_OWNER, Heimdex
from heimdex.settings import Settings
from tests import assets, tiny_clip
from tests.e2e.conftest import backend_settings
from tests.e2e.test_more_like_this import LIBRARY, library_video

CARDS = {"red": (220, 30, 30), "green": (30, 190, 40), "blue": (30, 40, 210)}
# (backend, layout of model A, layout of model B)
RUNS = [("embedded", "flat", "immich"), ("server", "immich", "flat")]


def cards_video(folder: Path) -> Path:
    scenes = []
    for name, rgb in CARDS.items():
        card = folder / f"{name}.png"
        Image.fromarray(np.full((360, 640, 3), rgb, np.uint8)).save(card)
        caption = "RED ALERT" if name == "blue" else None  # a word on screen: text evidence
        scenes.append({"image": card, "say": None, "text": caption, "seconds": 2.5})
    return assets.narrated_video("clip_colour_cards", scenes)


@dataclass
class Library:
    app: Heimdex  # configured with model A
    settings: Settings
    b_folder: Path
    cards: dict[str, str]  # colour -> scene id
    photos: dict[str, str]  # photo name -> scene id


@pytest.fixture(scope="module", params=RUNS, ids=["-".join(r) for r in RUNS])
def library(request, tmp_path_factory) -> Iterator[Library]:
    backend, first, second = request.param
    folder = tmp_path_factory.mktemp("clip-models")
    a = tiny_clip.write(first, folder / "model-a", **({"name": "model-a"} if first == "flat" else {}))
    b_kwargs = {"name": "model-b"} if second == "flat" else {}
    b = tiny_clip.write(second, folder / "model-b", axes=(3, 4, 5), dim=12, bias=0.6, **b_kwargs)
    with backend_settings(backend, tmp_path_factory.mktemp(f"clip-{backend}")) as base:
        settings = base.model_copy(update={"clip_model": str(a)})
        app = Heimdex(settings, models=Models(settings))
        try:
            ids = {}
            for video_path, names in (
                (cards_video(folder), list(CARDS)),
                (library_video(), [*LIBRARY, "coffee"]),
            ):
                video = app.process(app.add_file(video_path).video.id)
                assert video.state.value == "indexed", video.error
                scenes = app.scenes(LOCAL_OWNER, video.id)
                assert len(scenes) == len(names), [s.index for s in scenes]
                ids.update({names[s.index]: s.id for s in scenes})
            cards = {name: ids[name] for name in CARDS}
            yield Library(app, settings, b, cards, {n: ids[n] for n in [*LIBRARY, "coffee"]})
        finally:
            app.close()


def _switched(library: Library) -> Heimdex:
    """The same deployment, now configured with model B (a new process would be the same)."""
    settings = library.settings.model_copy(update={"clip_model": str(library.b_folder)})
    return Heimdex(settings, store=library.app.store, blobs=library.app.blobs, models=Models(settings))


def _best_frame(app: Heimdex, model: str, scene_id: str, query: np.ndarray) -> float:
    """What the clip channel should score a scene: its best frame's cosine, by `model`'s vectors."""
    return float((app.store.scene_frame_vectors(LOCAL_OWNER, scene_id, model) @ query).max())


def _clip_hits(app: Heimdex, query: str) -> list:
    return [h for h in app.search(query, all_scenes=True, min_confidence="low").hits if "clip" in h.channels]


def _expect_clip_served_by(app: Heimdex, library: Library, model: str) -> None:
    """A colour word finds its card through the clip channel first, scored by `model`'s vectors."""
    clip = app.models.clip_named(model)
    assert clip is not None
    for colour in ("green", "blue"):
        hits = {h.scene_id: h for h in app.search(colour, all_scenes=True, min_confidence="low").hits}
        card = hits[library.cards[colour]].channels
        assert card["clip"]["rank"] == 1, card
        expected = _best_frame(app, model, library.cards[colour], clip.embed_texts([colour])[0])
        assert card["clip"]["score"] == pytest.approx(expected, abs=1e-4)


def _expect_more_like_this_by(app: Heimdex, library: Library, model: str) -> None:
    """More like the red card: the other scenes in the order of `model`'s vectors (mean of the
    example's frames against each scene's best frame)."""
    frames = app.store.scene_frame_vectors(LOCAL_OWNER, library.cards["red"], model)
    example = frames.mean(axis=0) / np.linalg.norm(frames.mean(axis=0))
    hits = app.search("", like=library.cards["red"], all_scenes=True, min_confidence="low").hits
    scores = {h.scene_id: h.channels["image"]["score"] for h in hits}
    assert library.cards["red"] not in scores and len(scores) == len(CARDS) + len(LIBRARY)
    for scene_id, score in scores.items():
        assert score == pytest.approx(_best_frame(app, model, scene_id, example), abs=1e-4)


def test_frames_have_both_models_vectors(library):
    counts = library.app.store.frame_vector_counts(LOCAL_OWNER)
    assert set(counts) == {IMAGE_VECTOR_MODEL, library.app.models.clip.name}
    assert len(set(counts.values())) == 1, f"the same frames: {counts}"
    coverage = library.app.clip_coverage(LOCAL_OWNER)
    assert coverage.complete and coverage.serving == library.app.models.clip.name


def test_text_finds_cards_through_the_clip_channel(library):
    """The green card holds no words at all (no speech, caption or tag): only its look finds it. The
    blue card's caption is close to "blue" by meaning, and its look takes it further ahead."""
    app = library.app
    _expect_clip_served_by(app, library, app.models.clip.name)
    green = {h.scene_id: h for h in app.search("green", all_scenes=True, min_confidence="low").hits}
    assert set(green[library.cards["green"]].channels) == {"clip"}
    blue = app.search("blue", all_scenes=True, min_confidence="low").hits
    assert blue[0].scene_id == library.cards["blue"] and set(blue[0].channels) == {"semantic", "clip"}
    assert blue[0].score > blue[1].score + CLIP_WEIGHT * 0.5


def test_words_on_screen_stay_ahead_of_a_look(library):
    """ "red": the blue card says it (RED ALERT), the red card only looks it: the words come first, the
    look second, and with the default cut the look alone (low confidence) is not shown."""
    app = library.app
    hits = app.search("red", all_scenes=True, min_confidence="low").hits
    assert [h.scene_id for h in hits[:2]] == [library.cards["blue"], library.cards["red"]]
    assert "fulltext" in hits[0].channels and set(hits[1].channels) == {"clip"}
    assert hits[1].confidence == "low"
    assert library.cards["red"] not in [h.scene_id for h in app.search("red", all_scenes=True).hits]


def test_without_clip_configured_nothing_changes(library):
    """The same deployment without HEIMDEX_CLIP_MODEL: no clip channel, and the text channels rank
    as they did (the clip-only hits gone, the rest in their order)."""
    plain = library.settings.model_copy(update={"clip_model": None})
    off = Heimdex(plain, store=library.app.store, blobs=library.app.blobs, models=Models(plain))
    for query in ("red", "green", "pool party"):
        without = off.search(query, all_scenes=True, min_confidence="low").hits
        assert not any("clip" in h.channels for h in without)
        with_clip = library.app.search(query, all_scenes=True, min_confidence="low").hits
        texts = [h.scene_id for h in with_clip if set(h.channels) - {"clip"}]
        assert sorted(texts) == sorted(h.scene_id for h in without)
    assert library.cards["green"] not in [h.scene_id for h in off.search("green", all_scenes=True).hits]
    assert off.clip_for(LOCAL_OWNER) is None


def test_more_like_this_uses_the_clip_vectors(library):
    _expect_more_like_this_by(library.app, library, library.app.models.clip.name)


def test_a_model_change_reembeds_and_search_keeps_the_old_vectors_until_complete(library):
    app = _switched(library)
    old, new = library.app.models.clip.name, app.models.clip.name
    assert old != new
    frames = app.store.frame_vector_counts(LOCAL_OWNER)[IMAGE_VECTOR_MODEL]
    coverage = app.clip_coverage(LOCAL_OWNER)
    assert (coverage.configured, coverage.serving, coverage.embedded, coverage.missing) == (
        new,
        old,
        0,
        frames,
    )
    _expect_clip_served_by(app, library, old)  # B loaded to index, A to answer

    # Stopped after its first chunk: a part of the frames have B's vectors, and search keeps to A's.
    moves: list[ReembedProgress] = []
    reembedder = Reembedder(app, retire_after_s=0)  # one process, which counts again at once
    stopped = reembedder.run(on_progress=moves.append, keep_going=lambda: len(moves) < 2)
    counts = app.store.frame_vector_counts(LOCAL_OWNER)
    assert 0 < stopped == counts[new] < frames and counts[old] == frames, counts
    assert app.clip_coverage(LOCAL_OWNER).serving == old
    _expect_clip_served_by(app, library, old)
    _expect_more_like_this_by(app, library, old)

    # Run again: it embeds only what is missing, and once complete B serves and A's vectors go.
    moves.clear()
    rest = reembedder.run(on_progress=moves.append)
    assert stopped + rest == frames
    assert moves[0] == ReembedProgress(0, frames - stopped) and moves[-1].done == moves[-1].total == rest
    assert [m.done for m in moves] == sorted(m.done for m in moves)
    assert app.store.frame_vector_counts(LOCAL_OWNER) == {IMAGE_VECTOR_MODEL: frames, new: frames}
    coverage = app.clip_coverage(LOCAL_OWNER)
    assert coverage.complete and coverage.serving == new
    _expect_clip_served_by(app, library, new)
    _expect_more_like_this_by(app, library, new)
    assert reembedder.run() == 0, "nothing left to do"
