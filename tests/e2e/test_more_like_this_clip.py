"""With a CLIP-style model configured, its image vectors are stored per frame beside the tagger's and
serve search by image. The model is a tiny generated one (tests/tiny_clip.py: an image's vector
is its mean colour): it proves the plumbing, not any search quality."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from heimdex.media import decode_image
from heimdex.ml.base import IMAGE_VECTOR_DIM, IMAGE_VECTOR_MODEL
from heimdex.ml.registry import Models
from heimdex.search.engine import SearchRequest
from heimdex.service import Heimdex
from heimdex.settings import Settings
from tests import tiny_clip
from tests.e2e.test_more_like_this import LIBRARY, library_video
from tests.tiny_clip import DIM

CLIP_NAME = "tiny-test-clip"


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Iterator[tuple[Heimdex, dict]]:
    folder = tiny_clip.write_flat(tmp_path_factory.mktemp("tiny-clip"), CLIP_NAME)
    settings = Settings(home=tmp_path_factory.mktemp("clip-home"), clip_model=str(folder))
    app = Heimdex(settings, models=Models(settings))
    try:
        video = app.process(app.add_file(library_video()).video.id)
        assert video.state.value == "indexed", video.error
        yield app, {[*LIBRARY, "coffee"][s.index]: s for s in app.scenes(video.owner_id, video.id)}
    finally:
        app.close()


def test_both_models_vectors_are_stored_per_frame(library):
    app, scenes = library
    owner = app.videos()[0].owner_id
    for scene in scenes.values():
        clip = app.store.scene_frame_vectors(owner, scene.id, CLIP_NAME)
        tagger = app.store.scene_frame_vectors(owner, scene.id, IMAGE_VECTOR_MODEL)
        assert clip.shape[1] == DIM and tagger.shape[1] == IMAGE_VECTOR_DIM and len(clip) >= 1


def test_clip_serves_search_by_image_and_more_like_this(library):
    app, scenes = library
    pool = scenes["pool"]
    thumb = app.blobs.get_bytes(pool.thumbnail_key)
    hits = app.search("", image=thumb, all_scenes=True, min_confidence="low").hits
    assert hits[0].scene_id == pool.id and set(hits[0].channels) == {"image"}
    # A flat picture of the scene's mean colour: to the tiny CLIP (mean colours) nearly the same as
    # some scenes' frames, to the tagger's features like none of them. A near-1 cosine says CLIP
    # served the channel.
    mean = decode_image(thumb).reshape(-1, 3).mean(axis=0)
    flat = io.BytesIO()
    Image.fromarray(np.tile(mean.astype(np.uint8), (64, 64, 1))).save(flat, "PNG")
    hits = app.search("", image=flat.getvalue(), all_scenes=True, min_confidence="low").hits
    request = SearchRequest(owner_id=app.videos()[0].owner_id, query="", per_video=None, min_confidence="low")
    vector = app.models.tagger.image_vector(decode_image(flat.getvalue()))
    by_tagger = app.search_engine.search_image(request, IMAGE_VECTOR_MODEL, vector).hits
    assert hits[0].channels["image"]["score"] > 0.98 > 0.5 > by_tagger[0].channels["image"]["score"]
    similar = app.search("", like=pool.id, all_scenes=True, min_confidence="low").hits
    assert pool.id not in [h.scene_id for h in similar] and len(similar) == len(scenes) - 1
