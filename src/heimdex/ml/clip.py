"""Optional CLIP-style image-text embeddings from ONNX files (off unless settings.clip_model is set).

No CLIP-like model is installable offline here, so this is a plug for users who bring one. It has
only been tested with a tiny generated model: it proves the plumbing, not any search quality.

Expected folder layout (a hub snapshot is searched for the same names):
    image.onnx       image encoder: float32 pixels (N, 3, S, S), normalised -> (N, D)
                     (also found as vision_model.onnx, visual.onnx, or under onnx/)
    text.onnx        text encoder: int64 input_ids (N, L) [+ attention_mask] -> (N, D)
                     (also found as text_model.onnx, textual.onnx, or under onnx/)
    tokenizer.json   a Hugging Face `tokenizers` file
    clip.json        optional: {"image_size": 224, "context_length": 77, "pad_id": 0,
                     "mean": [r, g, b], "std": [r, g, b], "name": "..."}; defaults are OpenAI CLIP's.
An output named like "*embeds" is used when the graph has several outputs, else the first output.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
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
)
_TEXT_NAMES = (
    "text.onnx",
    "text_model.onnx",
    "textual.onnx",
    "onnx/text.onnx",
    "onnx/text_model.onnx",
    "onnx/textual.onnx",
)
_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_BATCH = 16


def resolve_folder(spec: str, cache_dir: Path) -> Path:
    """A local folder as is; anything else is a hub id fetched into cache_dir (needs internet)."""
    folder = Path(spec).expanduser()
    if folder.is_dir():
        return folder
    if spec.startswith((".", "/", "~")):
        raise ModelUnavailableError(f"CLIP model folder {folder} does not exist.")
    try:
        from huggingface_hub import snapshot_download

        patterns = [*_IMAGE_NAMES, *_TEXT_NAMES, "tokenizer.json", "clip.json"]
        return Path(snapshot_download(spec, cache_dir=str(cache_dir / "hub"), allow_patterns=patterns))
    except Exception as exc:  # offline, unknown repo, gated repo: all mean "not available"
        raise ModelUnavailableError(
            f"Cannot fetch CLIP model {spec!r} from the hub ({type(exc).__name__}). Without internet, "
            "point clip_model at a local folder with image.onnx, text.onnx and tokenizer.json."
        ) from exc


def _find(folder: Path, names: Sequence[str], what: str) -> Path:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise ModelUnavailableError(f"CLIP folder {folder} has no {what} ({', '.join(names[:3])}).")


class OnnxClipEmbedder:
    """ImageTextEmbedder over two ONNX encoders; outputs float32, L2-normalised."""

    def __init__(self, spec: str, *, cache_dir: Path, threads: int = 1) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = resolve_folder(spec, Path(cache_dir))
        config = _config(folder)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self._image = ort.InferenceSession(
                str(_find(folder, _IMAGE_NAMES, "image encoder")), options, providers=["CPUExecutionProvider"]
            )
            self._text = ort.InferenceSession(
                str(_find(folder, _TEXT_NAMES, "text encoder")), options, providers=["CPUExecutionProvider"]
            )
            self._tokenizer = Tokenizer.from_file(str(_find(folder, ("tokenizer.json",), "tokenizer.json")))
        except ModelUnavailableError:
            raise
        except Exception as exc:  # a corrupt or incompatible file
            raise ModelUnavailableError(f"Cannot load the CLIP model in {folder}: {exc}") from exc
        self.image_size = int(config.get("image_size") or _static_side(self._image) or 224)
        self.context_length = int(config.get("context_length", 77))
        self._mean = np.asarray(config.get("mean", _CLIP_MEAN), dtype=np.float32).reshape(1, 1, 3)
        self._std = np.asarray(config.get("std", _CLIP_STD), dtype=np.float32).reshape(1, 1, 3)
        self._tokenizer.enable_truncation(self.context_length)
        self._tokenizer.enable_padding(length=self.context_length, pad_id=int(config.get("pad_id", 0)))
        self._text_inputs = {i.name for i in self._text.get_inputs()}
        self.name = str(config.get("name") or f"clip-onnx/{folder.name}")
        self.dim = int(self.embed_texts(["a photo"]).shape[1])  # ONNX Runtime sessions are thread-safe

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        if not len(images):
            return np.zeros((0, self.dim), dtype=np.float32)
        chunks = []
        for start in range(0, len(images), _BATCH):
            pixels = np.stack([self._pixels(img) for img in images[start : start + _BATCH]])
            chunks.append(_run(self._image, {self._image.get_inputs()[0].name: pixels}))
        return _normalise(np.concatenate(chunks))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, getattr(self, "dim", 0)), dtype=np.float32)
        chunks = []
        for start in range(0, len(texts), _BATCH):
            encoded = self._tokenizer.encode_batch([str(t) for t in texts[start : start + _BATCH]])
            feeds = {"input_ids": np.asarray([e.ids for e in encoded], dtype=np.int64)}
            if "attention_mask" in self._text_inputs:
                feeds["attention_mask"] = np.asarray([e.attention_mask for e in encoded], dtype=np.int64)
            if "input_ids" not in self._text_inputs:  # an export that named its only input differently
                feeds = {self._text.get_inputs()[0].name: feeds["input_ids"]}
            chunks.append(_run(self._text, feeds))
        return _normalise(np.concatenate(chunks))

    def _pixels(self, image: np.ndarray) -> np.ndarray:
        """Shorter side to S, centre crop S x S, scale to 0..1, normalise, HWC -> CHW (CLIP's recipe)."""
        image = np.asarray(image)
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        image = image[:, :, :3]
        h, w = image.shape[:2]
        scale = self.image_size / min(h, w)
        size = (max(self.image_size, round(w * scale)), max(self.image_size, round(h * scale)))
        resized = cv2.resize(image, size, interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
        top = (resized.shape[0] - self.image_size) // 2
        left = (resized.shape[1] - self.image_size) // 2
        crop = resized[top : top + self.image_size, left : left + self.image_size].astype(np.float32) / 255.0
        return ((crop - self._mean) / self._std).transpose(2, 0, 1)


def _config(folder: Path) -> dict[str, Any]:
    path = folder / "clip.json"
    if not path.is_file():
        return {}
    try:
        return dict(json.loads(path.read_text()))
    except ValueError as exc:
        raise ModelUnavailableError(f"{path} is not valid JSON: {exc}") from exc


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
