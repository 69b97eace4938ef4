"""Search by image and "more like this" on real photos, the real tagger and both backends.

The library is a silent video of real photos (one scene each); the queries are other photos of the
same places (KPhotoAlbum's demo pairs). Jesper is enrolled by a photo of his face, so that person
terms filter an image search as they filter a text search.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from heimdex.errors import InvalidMediaError, NotFoundError
from heimdex.service import Heimdex
from heimdex.settings import Settings
from tests import assets
from tests.e2e.conftest import BACKENDS, backend_app

LIBRARY = ["pool", "bar55", "spiff", "jesper_2", "sunset", "snow", "cold_water"]


def library_video():
    scenes = [
        {"image": assets.kphotoalbum_photo(f"{n}.jpg"), "say": None, "text": None, "seconds": 2.5}
        for n in LIBRARY
    ]
    scenes.append({"image": assets.skimage_photo("coffee"), "say": None, "text": None, "seconds": 2.5})
    return assets.narrated_video("more_like_this_e2e", scenes)


@pytest.fixture(scope="module", params=BACKENDS)
def library(request: pytest.FixtureRequest, tmp_path_factory, models) -> Iterator[tuple[Heimdex, dict]]:
    home = tmp_path_factory.mktemp(f"mlt-{request.param}")
    with backend_app(request.param, home, models) as app:
        video = app.process(app.add_file(library_video()).video.id)
        assert video.state.value == "indexed", video.error
        app.enrol("Jesper", [assets.kphotoalbum_photo("jesper.jpg")])
        scenes = {[*LIBRARY, "coffee"][s.index]: s for s in app.scenes(video.owner_id, video.id)}
        assert len(scenes) == len(LIBRARY) + 1
        yield app, scenes


def _photo(name: str) -> bytes:
    return assets.kphotoalbum_photo(f"{name}.jpg").read_bytes()


@pytest.mark.parametrize("query, wanted", [("pool_2", "pool"), ("bar55_2", "bar55"), ("spiff_2", "spiff")])
def test_another_photo_of_the_place_finds_its_scene_first(library, query, wanted):
    app, scenes = library
    result = app.search("", image=_photo(query), all_scenes=True, min_confidence="low")
    assert result.hits[0].scene_id == scenes[wanted].id, [h.scene_index for h in result.hits]
    assert set(result.hits[0].channels) == {"image"}
    assert result.hits[0].channels["image"]["rank"] == 1
    scores = [h.score for h in result.hits]
    assert scores == sorted(scores, reverse=True) and len(result.hits) == len(scenes)


def test_the_per_video_cap_and_limits_apply(library):
    app, _ = library
    assert len(app.search("", image=_photo("pool_2"), min_confidence="low").hits) == 3, "3 a video by default"
    assert len(app.search("", image=_photo("pool_2"), per_video=5, min_confidence="low").hits) == 5
    paged = app.search("", image=_photo("pool_2"), all_scenes=True, limit=2, offset=1, min_confidence="low")
    everything = app.search("", image=_photo("pool_2"), all_scenes=True, min_confidence="low")
    assert [h.scene_id for h in paged.hits] == [h.scene_id for h in everything.hits[1:3]]


def test_person_terms_filter_an_image_search(library):
    app, scenes = library
    hits = app.search("person:Jesper", image=_photo("pool_2"), all_scenes=True, min_confidence="low").hits
    with_jesper = app.search("person:Jesper", all_scenes=True, min_confidence="low").hits
    assert scenes["jesper_2"].id in [h.scene_id for h in hits]
    assert {h.scene_id for h in hits} == {h.scene_id for h in with_jesper} and len(hits) < len(scenes)
    assert all(set(h.channels) == {"image", "person"} for h in hits)
    scores = [h.channels["image"]["score"] for h in hits]
    assert scores == sorted(scores, reverse=True), "ranked by look, not by face distance"
    with pytest.raises(NotFoundError):
        app.search("person:Nobody", image=_photo("pool_2"))


def test_more_like_this_leaves_the_scene_out_and_ranks_the_rest(library):
    app, scenes = library
    pool = scenes["pool"]
    hits = app.search("", like=pool.id, all_scenes=True, min_confidence="low").hits
    assert pool.id not in [h.scene_id for h in hits]
    assert len(hits) == len(scenes) - 1
    # With the default confidence cut, the scene's own (perfect) match must not hide the others.
    assert len(app.search("", like=pool.id).hits) == 3
    # The example is the scene's own frames: searching by its thumbnail ranks the scene itself first.
    thumb = app.blobs.get_bytes(pool.thumbnail_key)
    first = app.search("", image=thumb, all_scenes=True, min_confidence="low").hits[0]
    assert first.scene_id == pool.id and first.confidence == "high", first


def test_other_owners_see_nothing_of_it(library):
    app, scenes = library
    assert app.search("", image=_photo("pool_2"), owner_id="bob").hits == []
    with pytest.raises(NotFoundError):
        app.search("", like=scenes["pool"].id, owner_id="bob")


def test_bad_photos_are_refused_clearly(library, tmp_path):
    app, _ = library
    with pytest.raises(InvalidMediaError, match="not a supported image"):
        app.search("", image=b"%PDF-1.4 not a photo")
    with pytest.raises(InvalidMediaError, match="no such file"):
        app.search("", image=tmp_path / "missing.jpg")
    small = Heimdex(Settings(home=tmp_path / "small", max_image_pixels=10_000), models=app.models)
    try:
        big = io.BytesIO()
        Image.fromarray(np.zeros((200, 200, 3), np.uint8)).save(big, "PNG")
        with pytest.raises(InvalidMediaError, match="pixels"):
            small.search("", image=big.getvalue())
    finally:
        small.close()
