"""The narrow interfaces the pipeline and search use. One adapter module per model family.

Images are RGB uint8 numpy arrays of shape (H, W, 3). Audio is float32 mono at 16 kHz.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from heimdex.domain import Box, DetectedFace, OcrLine, SpeechPlan, Tag, Transcript


@runtime_checkable
class SpeechRecognizer(Protocol):
    name: str

    def transcribe(self, audio: np.ndarray, *, language: str | None = None) -> Transcript:
        """Speech to text with word timestamps; the language is detected when not given."""
        ...

    def plan(self, audio: np.ndarray, pieces: int, *, language: str | None = None) -> SpeechPlan:
        """Where to cut `audio` at pauses into up to `pieces` pieces, and the language they share."""
        ...

    def transcribe_piece(self, audio: np.ndarray, plan: SpeechPlan, piece: int) -> Transcript:
        """One piece of `plan`, its times on the whole audio's clock."""
        ...


@runtime_checkable
class TextEmbedder(Protocol):
    name: str
    dim: int

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32, L2-normalised, for documents."""
        ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32, L2-normalised, for search queries."""
        ...


# "More like this": the bundled tagger's penultimate features (ml/tagger.py) are the image vectors.
IMAGE_VECTOR_MODEL = "efficientnet-lite3-int8-penultimate"
IMAGE_VECTOR_DIM = 1280


@runtime_checkable
class ImageTagger(Protocol):
    name: str

    def tag(self, images: Sequence[np.ndarray]) -> list[list[Tag]]:
        """Tags per image, best first, each with a score in 0..1."""
        ...

    def image_vector(self, image: np.ndarray) -> np.ndarray:
        """The image's vector for search by image (IMAGE_VECTOR_MODEL), L2-normalised."""
        ...


@runtime_checkable
class TextReader(Protocol):
    name: str

    def read(self, image: np.ndarray) -> list[OcrLine]:
        """Lines of on-screen text, in reading order."""
        ...


@runtime_checkable
class FaceAnalyzer(Protocol):
    name: str
    dim: int

    def analyze(self, image: np.ndarray, people: Sequence[Box] = ()) -> list[DetectedFace]:
        """Detect faces and return each with its identity embedding; `people` (boxes of persons in
        the image) are where a face too small for the whole image is looked for again."""
        ...

    def distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Distances between embeddings a (n, dim) and b (m, dim): (n, m); smaller is more alike."""
        ...


@runtime_checkable
class ImageTextEmbedder(Protocol):
    """A CLIP-style model: images and texts in one vector space."""

    name: str
    dim: int

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray: ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...
