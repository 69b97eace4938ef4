"""Optional CLIP-style image-text embeddings from ONNX files (off unless settings.clip_model is set).

No CLIP-like model is installable offline here, so this is a plug for users who bring one. It has
only been tested with tiny generated models: they prove the plumbing, not any search quality.

Two folder layouts are read (a hub snapshot is searched for the same names):

Flat, Heimdex's own:
    image.onnx       image encoder: float pixels (N, 3, S, S), normalised -> (N, D)
                     (also found as vision_model.onnx, visual.onnx, or under onnx/)
    text.onnx        text encoder: integer token ids (N, L) [+ attention_mask] -> (N, D)
                     (also found as text_model.onnx, textual.onnx, or under onnx/)
    tokenizer.json   a Hugging Face `tokenizers` file
    clip.json        optional: {"image_size": 224, "context_length": 77, "pad_id": 0,
                     "mean": [r, g, b], "std": [r, g, b], "interpolation": "bicubic",
                     "resize_mode": "shortest", "name": "..."}; defaults are OpenAI CLIP's.

Immich's exports (immich-app/ViT-B-32__openai and its siblings: open_clip models in two halves):
    config.json                    open_clip's model config: text_cfg.context_length,
                                   vision_cfg.image_size (also read under a "model_cfg" key)
    visual/model.onnx              image encoder (input "image", a batch of one)
    visual/preprocess_cfg.json     {size, mean, std, interpolation, resize_mode, fill_color}
    textual/model.onnx             text encoder (input "text": int32 ids (1, L), no mask)
    textual/tokenizer.json
    textual/tokenizer_config.json  optional: its pad_token

A clip.json beside either layout overrides what it names. Each encoder input is fed in the dtype
its graph declares, in batches of the size it was exported with if fixed; an input whose name holds
"mask" gets the attention mask, the other the ids.
An output named like "*embeds" is used when the graph has several outputs, else the first output.

The model's name (clip.json's "name", else clip-onnx/<folder>, or clip-onnx/<hub id>@<revision>)
is recorded on every vector it makes: two models never mix, so a different model in the same
folder needs a different name.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from heimdex.errors import ModelUnavailableError

_IMAGE_NAMES = (
    "image.onnx",
    "vision_model.onnx",
    "visual.onnx",
    "onnx/image.onnx",
    "onnx/vision_model.onnx",
    "onnx/visual.onnx",
    "visual/model.onnx",
)
_TEXT_NAMES = (
    "text.onnx",
    "text_model.onnx",
    "textual.onnx",
    "onnx/text.onnx",
    "onnx/text_model.onnx",
    "onnx/textual.onnx",
    "textual/model.onnx",
)
_TOKENIZER_NAMES = ("tokenizer.json", "textual/tokenizer.json")
_CONFIG_NAMES = (
    "clip.json",
    "config.json",
    "visual/preprocess_cfg.json",
    "textual/tokenizer_config.json",
)
# What a hub snapshot fetches: both layouts' files, ONNX external weights ("model.onnx_data")
# included, and nothing else (Immich's repositories also hold ARM NN and RKNN builds).
HUB_PATTERNS = (
    *_IMAGE_NAMES,
    *_TEXT_NAMES,
    *_TOKENIZER_NAMES,
    *_CONFIG_NAMES,
    "visual/model.onnx*",
    "textual/model.onnx*",
)
_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_BATCH = 16
# Enlarging uses the named filter; shrinking uses INTER_AREA whatever the name, which averages like
# PIL's antialiased resize that open_clip's preprocessing runs (OpenCV's cubic would alias).
_INTERPOLATIONS = {"bicubic": cv2.INTER_CUBIC, "bilinear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST}
_RESIZE_MODES = ("shortest", "squash", "longest")
_INPUT_TYPES = {
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
}


def resolve_folder(spec: str, cache_dir: Path) -> tuple[Path, str]:
    """(folder, default model name): a local folder as is; anything else is a hub id fetched into
    cache_dir (needs internet the first time; later loads find the cached snapshot)."""
    folder = Path(spec).expanduser()
    if folder.is_dir():
        return folder, f"clip-onnx/{folder.name}"
    if spec.startswith((".", "/", "~")):
        raise ModelUnavailableError(f"CLIP model folder {folder} does not exist.")
    try:
        from huggingface_hub import snapshot_download

        snapshot = Path(
            snapshot_download(spec, cache_dir=str(cache_dir / "hub"), allow_patterns=HUB_PATTERNS)
        )
    except Exception as exc:  # offline, unknown repo, gated repo: all mean "not available"
        raise ModelUnavailableError(
            f"Cannot fetch CLIP model {spec!r} from the hub ({type(exc).__name__}). Without internet, "
            "point clip_model at a local folder: image.onnx, text.onnx and tokenizer.json, or "
            "Immich's visual/model.onnx, textual/model.onnx and textual/tokenizer.json."
        ) from exc
    # A snapshot's folder is named by its revision: a new revision is another model.
    return snapshot, f"clip-onnx/{spec}@{snapshot.name[:12]}"


def _find(folder: Path, names: Sequence[str], what: str) -> Path:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise ModelUnavailableError(f"CLIP folder {folder} has no {what} ({names[0]}, or Immich's {names[-1]}).")


@dataclass(frozen=True)
class Preprocessing:
    """How a picture becomes the image encoder's pixels (open_clip's preprocess config)."""

    size: int | None = None  # None: the graph's static input side, else 224
    mean: tuple[float, float, float] = _CLIP_MEAN
    std: tuple[float, float, float] = _CLIP_STD
    interpolation: str = "bicubic"
    resize_mode: str = "shortest"  # shorter side to S and centre crop; squash; longest and pad
    fill: int = 0  # the padding's grey level (resize_mode "longest")


@dataclass(frozen=True)
class ClipConfig:
    name: str | None = None
    context_length: int = 77
    pad_id: int | None = None
    pad_token: str | None = None
    preprocessing: Preprocessing = Preprocessing()


def read_config(folder: Path) -> ClipConfig:
    """The model's settings from whichever layout's files the folder holds; clip.json wins."""
    model_cfg = _json(folder / "config.json")
    model_cfg = model_cfg.get("model_cfg", model_cfg)  # open_clip_config.json nests it
    pre = _json(folder / "visual" / "preprocess_cfg.json")
    found: dict[str, Any] = {
        "image_size": (model_cfg.get("vision_cfg") or {}).get("image_size"),
        "context_length": (model_cfg.get("text_cfg") or {}).get("context_length"),
        "pad_token": _json(folder / "textual" / "tokenizer_config.json").get("pad_token"),
        "fill": pre.get("fill_color"),
        **{key: pre.get(key) for key in ("mean", "std", "interpolation", "resize_mode")},
    }
    if pre.get("size") is not None:
        found["image_size"] = pre["size"]
    found.update(_json(folder / "clip.json"))
    return _clip_config({k: v for k, v in found.items() if v is not None}, folder)


def _clip_config(found: dict[str, Any], folder: Path) -> ClipConfig:
    pad_token = found.get("pad_token")
    if isinstance(pad_token, dict):  # tokenizer_config.json may spell an added token out
        pad_token = pad_token.get("content")
    try:
        size = found.get("image_size")
        preprocessing = Preprocessing(
            size=int(size[0] if isinstance(size, (list, tuple)) else size) if size else None,
            mean=tuple(float(x) for x in found.get("mean", _CLIP_MEAN)),  # type: ignore[arg-type]
            std=tuple(float(x) for x in found.get("std", _CLIP_STD)),  # type: ignore[arg-type]
            interpolation=str(found.get("interpolation", "bicubic")),
            resize_mode=str(found.get("resize_mode", "shortest")),
            fill=int(np.mean(found.get("fill", 0))),
        )
        config = ClipConfig(
            name=str(found["name"]) if found.get("name") else None,
            context_length=int(found.get("context_length", 77)),
            pad_id=int(found["pad_id"]) if "pad_id" in found else None,
            pad_token=str(pad_token) if pad_token else None,
            preprocessing=preprocessing,
        )
    except (TypeError, ValueError) as exc:
        raise ModelUnavailableError(f"CLIP folder {folder} has a config Heimdex cannot read: {exc}") from exc
    if len(preprocessing.mean) != 3 or len(preprocessing.std) != 3:
        raise ModelUnavailableError(f"CLIP folder {folder}: mean and std need three values (R, G, B)")
    if preprocessing.interpolation not in _INTERPOLATIONS:
        raise ModelUnavailableError(
            f"CLIP folder {folder}: interpolation {preprocessing.interpolation!r} is not one of "
            + ", ".join(_INTERPOLATIONS)
        )
    if preprocessing.resize_mode not in _RESIZE_MODES:
        raise ModelUnavailableError(
            f"CLIP folder {folder}: resize_mode {preprocessing.resize_mode!r} is not one of "
            + ", ".join(_RESIZE_MODES)
        )
    return config


class OnnxClipEmbedder:
    """ImageTextEmbedder over two ONNX encoders; outputs float32, L2-normalised."""

    def __init__(self, spec: str, *, cache_dir: Path, threads: int = 1) -> None:
        folder, default_name = resolve_folder(spec, Path(cache_dir))
        config = read_config(folder)
        self.folder = folder
        self._image, self._text, self._tokenizer = _load(folder, threads)
        pre = config.preprocessing
        self.image_size = int(pre.size or _static_side(self._image) or 224)
        self.context_length = config.context_length
        self._pre = pre
        self._mean = np.asarray(pre.mean, dtype=np.float32).reshape(1, 1, 3)
        self._std = np.asarray(pre.std, dtype=np.float32).reshape(1, 1, 3)
        self._tokenizer.enable_truncation(self.context_length)
        self._tokenizer.enable_padding(length=self.context_length, pad_id=self._pad_id(config))
        self.name = config.name or default_name
        self.dim = int(self.embed_texts(["a photo"]).shape[1])  # ONNX Runtime sessions are thread-safe

    def _pad_id(self, config: ClipConfig) -> int:
        """clip.json's pad_id, else the id of tokenizer_config.json's pad token (Immich pads with it),
        else the tokenizer file's own padding, else 0."""
        if config.pad_id is not None:
            return config.pad_id
        if config.pad_token is not None:
            found = self._tokenizer.token_to_id(config.pad_token)
            if found is not None:
                return int(found)
        own = self._tokenizer.padding
        return int(own["pad_id"]) if own else 0

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        if not len(images):
            return np.zeros((0, self.dim), dtype=np.float32)
        pixels_input = self._image.get_inputs()[0]
        dtype = _INPUT_TYPES.get(pixels_input.type, np.float32)
        chunks = []
        batch = _batch_size(self._image)
        for start in range(0, len(images), batch):
            pixels = np.stack([self._pixels(img) for img in images[start : start + batch]])
            chunks.append(_run(self._image, {pixels_input.name: pixels.astype(dtype, copy=False)}))
        return _normalise(np.concatenate(chunks))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, getattr(self, "dim", 0)), dtype=np.float32)
        chunks = []
        batch = _batch_size(self._text)
        for start in range(0, len(texts), batch):
            encoded = self._tokenizer.encode_batch([str(t) for t in texts[start : start + batch]])
            chunks.append(_run(self._text, self._text_feeds(encoded)))
        return _normalise(np.concatenate(chunks))

    def _text_feeds(self, encoded: list[Any]) -> dict[str, np.ndarray]:
        """The ids to the first input that is not a mask (input_ids, Immich's "text"), the attention
        mask to any input named like one; each in the dtype its graph declares."""
        feeds: dict[str, np.ndarray] = {}
        ids_fed = False
        for spec in self._text.get_inputs():
            dtype = _INPUT_TYPES.get(spec.type, np.int64)
            if "mask" in spec.name.lower():
                feeds[spec.name] = np.asarray([e.attention_mask for e in encoded], dtype=dtype)
            elif not ids_fed:
                feeds[spec.name] = np.asarray([e.ids for e in encoded], dtype=dtype)
                ids_fed = True
            else:
                raise ModelUnavailableError(
                    f"the CLIP text encoder wants an input Heimdex lacks: {spec.name}"
                )
        return feeds

    def _pixels(self, image: np.ndarray) -> np.ndarray:
        """Resized as the config says, scaled to 0..1, normalised, HWC -> CHW (CLIP's recipe)."""
        image = np.asarray(image)
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        square = _square(image[:, :, :3], self.image_size, self._pre)
        return ((square.astype(np.float32) / 255.0 - self._mean) / self._std).transpose(2, 0, 1)


def _load(folder: Path, threads: int) -> tuple[Any, Any, Any]:
    """The image and text encoders' sessions and the tokenizer, from either layout."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    image = _find(folder, _IMAGE_NAMES, "image encoder")
    text = _find(folder, _TEXT_NAMES, "text encoder")
    tokenizer = _find(folder, _TOKENIZER_NAMES, "tokenizer")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    cpu = ["CPUExecutionProvider"]
    try:
        return (
            ort.InferenceSession(str(image), options, providers=cpu),
            ort.InferenceSession(str(text), options, providers=cpu),
            Tokenizer.from_file(str(tokenizer)),
        )
    except Exception as exc:  # a corrupt or incompatible file
        raise ModelUnavailableError(f"Cannot load the CLIP model in {folder}: {exc}") from exc


def _square(image: np.ndarray, side: int, pre: Preprocessing) -> np.ndarray:
    """The picture as side x side pixels: "shortest" scales the shorter side to `side` and crops the
    centre (OpenAI CLIP's recipe), "squash" scales both sides, "longest" scales the longer side and
    pads the rest with pre.fill."""
    h, w = image.shape[:2]
    if pre.resize_mode == "squash":
        return _resize(image, (side, side), pre, side / min(h, w))
    if pre.resize_mode == "longest":
        scale = side / max(h, w)
        resized = _resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), pre, scale)
        canvas = np.full((side, side, 3), pre.fill, dtype=image.dtype)
        top, left = (side - resized.shape[0]) // 2, (side - resized.shape[1]) // 2
        canvas[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
        return canvas
    scale = side / min(h, w)
    resized = _resize(image, (max(side, round(w * scale)), max(side, round(h * scale))), pre, scale)
    top, left = (resized.shape[0] - side) // 2, (resized.shape[1] - side) // 2
    return resized[top : top + side, left : left + side]


def _resize(image: np.ndarray, size: tuple[int, int], pre: Preprocessing, scale: float) -> np.ndarray:
    nearest = pre.interpolation == "nearest"
    method = _INTERPOLATIONS[pre.interpolation] if scale > 1 or nearest else cv2.INTER_AREA
    return cv2.resize(image, size, interpolation=method)


def _json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ModelUnavailableError(f"{path} is not valid JSON: {exc}") from exc
    return dict(found) if isinstance(found, dict) else {}


def _batch_size(session: Any) -> int:
    """_BATCH, or the batch the graph was exported with (Immich's exports take one at a time)."""
    first = session.get_inputs()[0].shape[0]
    return first if isinstance(first, int) and first > 0 else _BATCH


def _static_side(session: Any) -> int | None:
    shape = session.get_inputs()[0].shape
    return shape[-1] if len(shape) == 4 and isinstance(shape[-1], int) else None


def _run(session: Any, feeds: dict[str, np.ndarray]) -> np.ndarray:
    outputs = session.get_outputs()
    chosen = next((o.name for o in outputs if o.name.endswith("embeds")), outputs[0].name)
    return np.asarray(session.run([chosen], feeds)[0], dtype=np.float32)


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = vectors.reshape(vectors.shape[0], -1)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
