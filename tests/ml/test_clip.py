"""The CLIP-style ONNX plug, tested with a tiny model generated here (plumbing only, no quality claim).

The generated "CLIP" embeds an image as its mean colour and a text as the sum of its word vectors,
with red, green and blue words on the matching axes. If preprocessing, channel order, tokenising,
masking, output choice and normalisation are right, a red picture is nearest to "red".
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")  # test-only dependency: builds the tiny model
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from heimdex.errors import ModelUnavailableError  # noqa: E402
from heimdex.ml.base import ImageTextEmbedder  # noqa: E402
from heimdex.ml.clip import OnnxClipEmbedder  # noqa: E402
from tests import assets  # noqa: E402
from tests.ml.conftest import load_rgb  # noqa: E402

DIM = 8
SIDE = 16
VOCAB = {"[PAD]": 0, "[UNK]": 1, "red": 2, "green": 3, "blue": 4, "a": 5, "photo": 6, "of": 7}


def _save(graph: onnx.GraphProto, path: Path) -> None:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _image_model(path: Path) -> None:
    # (N,3,S,S) -> mean over H,W -> (N,3) -> x W(3,DIM): colour channels onto the first three axes.
    weights = np.zeros((3, DIM), np.float32)
    weights[0, 0] = weights[1, 1] = weights[2, 2] = 1.0
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["pixel_values"], ["mean"], axes=[2, 3], keepdims=0),
            helper.make_node("MatMul", ["mean", "W"], ["image_embeds"]),
        ],
        "tiny_image",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["N", 3, SIDE, SIDE])],
        [helper.make_tensor_value_info("image_embeds", TensorProto.FLOAT, ["N", DIM])],
        [numpy_helper.from_array(weights, "W")],
    )
    _save(graph, path)


def _text_model(path: Path) -> None:
    # Word vectors summed under the attention mask; a decoy first output checks the "*embeds" choice.
    table = np.zeros((len(VOCAB), DIM), np.float32)
    table[VOCAB["red"]] = [1, -1, -1, 0, 0, 0, 0, 0]
    table[VOCAB["green"]] = [-1, 1, -1, 0, 0, 0, 0, 0]
    table[VOCAB["blue"]] = [-1, -1, 1, 0, 0, 0, 0, 0]
    table[VOCAB["photo"]] = [0, 0, 0, 0.3, 0, 0, 0, 0]
    table[VOCAB["[PAD]"]] = [5, 5, 5, 5, 5, 5, 5, 5]  # must be masked out, or every text turns grey
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["E", "input_ids"], ["vectors"]),
            helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["maskf", "last"], ["mask3"]),
            helper.make_node("Mul", ["vectors", "mask3"], ["masked"]),
            helper.make_node("ReduceSum", ["masked", "one"], ["text_embeds"], keepdims=0),
            helper.make_node("Identity", ["vectors"], ["last_hidden_state"]),
        ],
        "tiny_text",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["N", "L"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["N", "L"]),
        ],
        [
            helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["N", "L", DIM]),
            helper.make_tensor_value_info("text_embeds", TensorProto.FLOAT, ["N", DIM]),
        ],
        [
            numpy_helper.from_array(table, "E"),
            numpy_helper.from_array(np.array([2], np.int64), "last"),
            numpy_helper.from_array(np.array([1], np.int64), "one"),
        ],
    )
    _save(graph, path)


def _tokenizer(path: Path) -> None:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel(VOCAB, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(path))


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-clip")
    _image_model(folder / "image.onnx")
    _text_model(folder / "text.onnx")
    _tokenizer(folder / "tokenizer.json")
    (folder / "clip.json").write_text(
        json.dumps(
            {"name": "tiny-test-clip", "context_length": 6, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
        )
    )
    return folder


@pytest.fixture(scope="module")
def clip(clip_folder, tmp_path_factory) -> OnnxClipEmbedder:
    return OnnxClipEmbedder(str(clip_folder), cache_dir=tmp_path_factory.mktemp("cache"), threads=1)


def _solid(rgb: tuple[int, int, int], h: int = 90, w: int = 160) -> np.ndarray:
    return np.broadcast_to(np.asarray(rgb, np.uint8), (h, w, 3)).copy()


def test_is_an_image_text_embedder(clip) -> None:
    assert isinstance(clip, ImageTextEmbedder)
    assert clip.name == "tiny-test-clip" and clip.dim == DIM and clip.image_size == SIDE


def test_colours_meet_their_words(clip) -> None:
    images = clip.embed_images([_solid((230, 20, 20)), _solid((20, 200, 30)), _solid((10, 30, 240))])
    texts = clip.embed_texts(["a photo of red", "GREEN", "blue photo"])
    assert images.dtype == texts.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1, atol=1e-5)
    assert (images @ texts.T).argmax(axis=1).tolist() == [0, 1, 2]


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


def test_missing_folder(tmp_path) -> None:
    with pytest.raises(ModelUnavailableError, match="does not exist"):
        OnnxClipEmbedder(str(tmp_path / "nope"), cache_dir=tmp_path)


def test_incomplete_folder(tmp_path, clip_folder) -> None:
    (tmp_path / "image.onnx").write_bytes((clip_folder / "image.onnx").read_bytes())
    with pytest.raises(ModelUnavailableError, match="text encoder"):
        OnnxClipEmbedder(str(tmp_path), cache_dir=tmp_path)


def test_hub_id_offline(tmp_path) -> None:
    with pytest.raises(ModelUnavailableError, match="local folder"):
        OnnxClipEmbedder("openai/clip-vit-base-patch32", cache_dir=tmp_path)
