"""The CLIP-style ONNX plug, tested with tiny models generated in both folder layouts
(tests/tiny_clip.py: plumbing only, no quality claim)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from heimdex.errors import ModelUnavailableError
from heimdex.ml.base import ImageTextEmbedder
from heimdex.ml.clip import OnnxClipEmbedder, read_config
from tests import assets, tiny_clip
from tests.ml.conftest import load_rgb
from tests.tiny_clip import CONTEXT, DIM, SIDE

RED, GREEN, BLUE = (230, 20, 20), (20, 200, 30), (10, 30, 240)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    return {layout: tiny_clip.write(layout, tmp_path_factory.mktemp(layout)) for layout in tiny_clip.LAYOUTS}


@pytest.fixture(scope="module", params=tiny_clip.LAYOUTS)
def clip(request, folders, tmp_path_factory) -> OnnxClipEmbedder:
    return OnnxClipEmbedder(
        str(folders[request.param]), cache_dir=tmp_path_factory.mktemp("cache"), threads=1
    )


def _solid(rgb: tuple[int, int, int], h: int = 90, w: int = 160) -> np.ndarray:
    return np.broadcast_to(np.asarray(rgb, np.uint8), (h, w, 3)).copy()


def test_is_an_image_text_embedder(clip) -> None:
    assert isinstance(clip, ImageTextEmbedder)
    assert clip.dim == DIM and clip.image_size == SIDE and clip.context_length == CONTEXT


def test_each_layout_names_its_model(folders, tmp_path) -> None:
    flat = OnnxClipEmbedder(str(folders["flat"]), cache_dir=tmp_path)
    immich = OnnxClipEmbedder(str(folders["immich"]), cache_dir=tmp_path)
    assert flat.name == "tiny-test-clip", "clip.json's name"
    assert immich.name == f"clip-onnx/{folders['immich'].name}", "no clip.json: the folder's name"


def test_colours_meet_their_words(clip) -> None:
    images = clip.embed_images([_solid(RED), _solid(GREEN), _solid(BLUE)])
    texts = clip.embed_texts(["a photo of red", "GREEN", "blue photo"])
    assert images.dtype == texts.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1, atol=1e-5)
    assert (images @ texts.T).argmax(axis=1).tolist() == [0, 1, 2]
    # Padding to the context length with the pad token (Immich: the tokenizer config's, whose vector
    # is zero; flat: masked out): "red" alone is exactly the red word's direction.
    assert float(texts[0] @ clip.embed_texts(["red"])[0]) < 0.999 < float(images[0] @ images[0])
    assert clip.embed_texts(["red"])[0][:3].tolist() == pytest.approx(
        np.array([1, -1, -1]) / 3**0.5, abs=1e-5
    )


def test_real_photos_of_any_shape(clip) -> None:
    photos = [
        load_rgb(assets.skimage_photo("astronaut")),
        load_rgb(assets.opencv_sample("messi5.jpg")),
        load_rgb(assets.skimage_photo("camera"))[:, :, 0],
    ]
    vectors = clip.embed_images(photos * 7)  # 21 images: more than one internal batch
    assert vectors.shape == (21, DIM) and np.isfinite(vectors).all()
    np.testing.assert_allclose(vectors[0], vectors[3], atol=1e-6)


def test_empty_inputs_and_long_text(clip) -> None:
    assert clip.embed_images([]).shape == (0, DIM)
    assert clip.embed_texts([]).shape == (0, DIM)
    long = clip.embed_texts(["red " * 50])  # truncated to the context length, not an error
    assert long.shape == (1, DIM) and long[0].argmax() == 0


def _stripes() -> np.ndarray:
    """A wide picture: pure red, green and blue thirds."""
    thirds = [_solid(rgb, 60, 60) for rgb in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    return np.concatenate(thirds, axis=1)


@pytest.mark.parametrize("mode", ["shortest", "squash", "longest"])
def test_immich_preprocessing_is_read_from_its_config(tmp_path, mode) -> None:
    """preprocess_cfg.json's resize_mode decides what of a wide picture the encoder sees: its centre
    (shortest side to S, cropped), all of it squeezed, or all of it inside black bars."""
    folder = tiny_clip.write_immich(tmp_path / "m", resize_mode=mode, nested=mode == "squash")
    clip = OnnxClipEmbedder(str(folder), cache_dir=tmp_path)
    assert read_config(folder).preprocessing.resize_mode == mode
    assert clip.image_size == SIDE and clip.context_length == CONTEXT, "from config.json / preprocess_cfg"
    r, g, b = clip.embed_images([_stripes()])[0][:3]
    if mode == "shortest":
        assert g > 0 > r and g > 0 > b, "the centre third is green"
    elif mode == "squash":
        assert r == pytest.approx(g, abs=0.05) and r == pytest.approx(b, abs=0.05), "all three, evenly"
    else:
        assert r < 0 and g < 0 and b < 0, "black bars above and below pull every colour down"


def test_clip_json_overrides_the_immich_configs(tmp_path) -> None:
    folder = tiny_clip.write_immich(tmp_path / "m")
    (folder / "clip.json").write_text(json.dumps({"name": "mine", "image_size": 32, "resize_mode": "squash"}))
    clip = OnnxClipEmbedder(str(folder), cache_dir=tmp_path)
    assert (clip.name, clip.image_size, clip.context_length) == ("mine", 32, CONTEXT)
    assert read_config(folder).preprocessing.resize_mode == "squash"


def test_a_config_heimdex_cannot_follow_is_refused(tmp_path) -> None:
    folder = tiny_clip.write_immich(tmp_path / "m")
    cfg = json.loads((folder / "visual" / "preprocess_cfg.json").read_text())
    (folder / "visual" / "preprocess_cfg.json").write_text(json.dumps({**cfg, "resize_mode": "zoom"}))
    with pytest.raises(ModelUnavailableError, match="resize_mode 'zoom'"):
        OnnxClipEmbedder(str(folder), cache_dir=tmp_path)
    (folder / "visual" / "preprocess_cfg.json").write_text("{not json")
    with pytest.raises(ModelUnavailableError, match="not valid JSON"):
        OnnxClipEmbedder(str(folder), cache_dir=tmp_path)


def test_missing_folder(tmp_path) -> None:
    with pytest.raises(ModelUnavailableError, match="does not exist"):
        OnnxClipEmbedder(str(tmp_path / "nope"), cache_dir=tmp_path)


@pytest.mark.parametrize("layout", tiny_clip.LAYOUTS)
def test_incomplete_folder(tmp_path, folders, layout) -> None:
    image = "image.onnx" if layout == "flat" else "visual/model.onnx"
    (tmp_path / image).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / image).write_bytes((folders[layout] / image).read_bytes())
    with pytest.raises(
        ModelUnavailableError, match=r"no text encoder \(text.onnx, or Immich's textual/model.onnx\)"
    ):
        OnnxClipEmbedder(str(tmp_path), cache_dir=tmp_path)


def test_hub_id_offline(tmp_path) -> None:
    with pytest.raises(ModelUnavailableError, match=r"local folder.*textual/tokenizer.json"):
        OnnxClipEmbedder("immich-app/ViT-B-32__openai", cache_dir=tmp_path)


def test_hub_id_loads_the_snapshot_a_fetch_left_in_the_cache(tmp_path) -> None:
    """A hub id is fetched into the model cache once; later loads (here, offline) find the snapshot
    there, in huggingface_hub's layout (refs/main names the revision), and the revision is part of
    the model's name. No internet here: the download itself is not run."""
    revision = "0123456789abcdef0123456789abcdef01234567"
    storage = tmp_path / "hub" / "models--immich-app--ViT-Tiny__test"
    tiny_clip.write_immich(storage / "snapshots" / revision)
    (storage / "refs").mkdir()
    (storage / "refs" / "main").write_text(revision)
    clip = OnnxClipEmbedder("immich-app/ViT-Tiny__test", cache_dir=tmp_path)
    assert clip.name == f"clip-onnx/immich-app/ViT-Tiny__test@{revision[:12]}"
    images = clip.embed_images([_solid(RED), _solid(GREEN), _solid(BLUE)])
    assert (images @ clip.embed_texts(["red", "green", "blue"]).T).argmax(axis=1).tolist() == [0, 1, 2]
