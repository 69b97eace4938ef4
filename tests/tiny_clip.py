"""Tiny generated CLIP-style models, in both folder layouts Heimdex reads (plumbing only, no quality).

A model embeds an image as its mean colour (after its normalisation) on three of its axes, and a text
as the sum of its word vectors, with red, green and blue words on the matching axes. If
preprocessing, channel order, tokenising, padding or masking, output choice and normalisation are
right, a red picture is nearest to "red". Two models with different `axes`, dimensions and `bias`
(a constant added to every image vector, on an axis no word uses) make different vectors of the same
frames: which one served a search is visible in its scores.

- flat: image.onnx, text.onnx (input_ids + attention_mask, int64), tokenizer.json, clip.json;
- immich: config.json, visual/model.onnx (input "image", a batch of one), visual/preprocess_cfg.json,
  textual/model.onnx (input "text", int32, (1, CONTEXT), no mask: the pad token's vector is zero, and
  id 0's is not, so padding with the wrong id turns every text grey), textual/tokenizer.json and
  textual/tokenizer_config.json (its pad token).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")  # test-only dependency: builds the tiny models
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

DIM = 8
SIDE = 16
CONTEXT = 6
VOCAB = {
    "[PAD]": 0,
    "[UNK]": 1,
    "red": 2,
    "green": 3,
    "blue": 4,
    "a": 5,
    "photo": 6,
    "of": 7,
    "<|endoftext|>": 8,
}
LAYOUTS = ("flat", "immich")


def _save(graph: onnx.GraphProto, path: Path) -> None:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def image_model(
    path: Path,
    *,
    axes=(0, 1, 2),
    dim: int = DIM,
    bias: float = 0.0,
    input_name="pixel_values",
    side=SIDE,
    batch: int | str = "N",
) -> None:
    """(N,3,S,S) -> mean over H,W -> (N,3) -> x W(3,dim) + b: colour channels onto `axes`, `bias` on
    the last axis. With side None the graph takes any size (the config must say which); with batch 1
    it takes one picture at a time, as Immich's exports do."""
    weights = np.zeros((3, dim), np.float32)
    for channel, axis in enumerate(axes):
        weights[channel, axis] = 1.0
    offset = np.zeros(dim, np.float32)
    offset[dim - 1] = bias
    shape = [batch, 3, side, side] if side else [batch, 3, "H", "W"]
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", [input_name], ["mean"], axes=[2, 3], keepdims=0),
            helper.make_node("MatMul", ["mean", "W"], ["projected"]),
            helper.make_node("Add", ["projected", "b"], ["image_embeds"]),
        ],
        "tiny_image",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("image_embeds", TensorProto.FLOAT, [batch, dim])],
        [numpy_helper.from_array(weights, "W"), numpy_helper.from_array(offset, "b")],
    )
    _save(graph, path)


def _word_table(axes, dim: int) -> np.ndarray:
    table = np.zeros((len(VOCAB), dim), np.float32)
    for word, signs in (("red", (1, -1, -1)), ("green", (-1, 1, -1)), ("blue", (-1, -1, 1))):
        for axis, sign in zip(axes, signs, strict=True):
            table[VOCAB[word], axis] = sign
    table[VOCAB["photo"], (max(axes) + 1) % dim] = 0.3
    table[VOCAB["[PAD]"]] = 5.0  # must be masked out (or never used), or every text turns grey
    return table


def text_model(path: Path, *, axes=(0, 1, 2), dim: int = DIM) -> None:
    """Word vectors summed under the attention mask (int64 inputs); a decoy first output checks the
    "*embeds" choice."""
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
            helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["N", "L", dim]),
            helper.make_tensor_value_info("text_embeds", TensorProto.FLOAT, ["N", dim]),
        ],
        [
            numpy_helper.from_array(_word_table(axes, dim), "E"),
            numpy_helper.from_array(np.array([2], np.int64), "last"),
            numpy_helper.from_array(np.array([1], np.int64), "one"),
        ],
    )
    _save(graph, path)


def immich_text_model(path: Path, *, axes=(0, 1, 2), dim: int = DIM) -> None:
    """Immich's textual half: int32 ids named "text", one text of CONTEXT tokens at a time (the
    export's fixed shape), no mask; word vectors summed."""
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["E", "text"], ["vectors"]),
            helper.make_node("ReduceSum", ["vectors", "one"], ["embedding"], keepdims=0),
        ],
        "tiny_textual",
        [helper.make_tensor_value_info("text", TensorProto.INT32, [1, CONTEXT])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, dim])],
        [
            numpy_helper.from_array(_word_table(axes, dim), "E"),
            numpy_helper.from_array(np.array([1], np.int64), "one"),
        ],
    )
    _save(graph, path)


def tokenizer(path: Path) -> None:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    made = Tokenizer(models.WordLevel(VOCAB, unk_token="[UNK]"))
    made.normalizer = normalizers.Lowercase()
    made.pre_tokenizer = pre_tokenizers.Whitespace()
    path.parent.mkdir(parents=True, exist_ok=True)
    made.save(str(path))


def write_flat(
    folder: Path, name: str | None = "tiny-test-clip", *, axes=(0, 1, 2), dim: int = DIM, bias: float = 0.0
) -> Path:
    """Heimdex's own layout, with a clip.json naming the model (None: no name, the folder's is used)."""
    folder.mkdir(parents=True, exist_ok=True)
    image_model(folder / "image.onnx", axes=axes, dim=dim, bias=bias)
    text_model(folder / "text.onnx", axes=axes, dim=dim)
    tokenizer(folder / "tokenizer.json")
    config = {"context_length": CONTEXT, "mean": [0.5] * 3, "std": [0.5] * 3}
    (folder / "clip.json").write_text(json.dumps({**config, "name": name} if name else config))
    return folder


def write_immich(
    folder: Path,
    *,
    axes=(0, 1, 2),
    dim: int = DIM,
    bias: float = 0.0,
    resize_mode: str = "shortest",
    nested: bool = False,
) -> Path:
    """Immich's layout: no clip.json, the model named after its folder; the preprocessing and the
    context length only in its configs (the image graph takes any size). `nested`: config.json
    holds open_clip's config under "model_cfg"."""
    folder.mkdir(parents=True, exist_ok=True)
    image_model(
        folder / "visual" / "model.onnx",
        axes=axes,
        dim=dim,
        bias=bias,
        input_name="image",
        side=None,
        batch=1,
    )
    immich_text_model(folder / "textual" / "model.onnx", axes=axes, dim=dim)
    tokenizer(folder / "textual" / "tokenizer.json")
    model_cfg = {
        "embed_dim": dim,
        "vision_cfg": {"image_size": SIDE},
        "text_cfg": {"context_length": CONTEXT},
    }
    (folder / "config.json").write_text(json.dumps({"model_cfg": model_cfg} if nested else model_cfg))
    preprocess = {
        "size": [SIDE, SIDE],
        "mode": "RGB",
        "mean": [0.5] * 3,
        "std": [0.5] * 3,
        "interpolation": "bicubic",
        "resize_mode": resize_mode,
        "fill_color": 0,
    }
    (folder / "visual" / "preprocess_cfg.json").write_text(json.dumps(preprocess))
    (folder / "textual" / "tokenizer_config.json").write_text(json.dumps({"pad_token": "<|endoftext|>"}))
    return folder


def write(layout: str, folder: Path, **kwargs) -> Path:
    """A tiny model in `layout` ("flat" or "immich")."""
    if layout == "flat":
        return write_flat(folder, **kwargs)
    if layout == "immich":
        return write_immich(folder, **kwargs)
    raise ValueError(f"unknown layout {layout!r}: use one of {LAYOUTS}")
