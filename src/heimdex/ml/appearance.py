"""Identity by appearance, for subjects without a human face: pets above all.

KPhotoAlbum files a dog under "People"; users enrol their pets too. No re-identification model for
animals ships in any reachable package, so the identity vector is what does ship: the ImageNet
classifier's probabilities for the animal's crop, square-rooted so that the runner-up classes count
(which breeds it resembles, and how much). Measured on KPhotoAlbum's demo photos: the two photos of
the dog Donna are 0.96 apart, every other pair of animals 1.29 or more (1.41 is the maximum). Colour
histograms were tried and dropped: the background dominates them. A look-alike of the same breed can
match, and the same animal photographed very differently may not: this is appearance, not identity.
"""

from __future__ import annotations

import numpy as np

from heimdex.domain import Box, DetectedFace, DetectedObject
from heimdex.matching import euclidean
from heimdex.ml.tagger import VisualTagger

ANIMALS = frozenset(
    {"bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "teddy bear"}
)
MIN_SCORE = 0.4
MIN_SIDE_PX = 48  # smaller crops carry too little detail to tell one animal from another
MARGIN = 0.08  # grow the box a little: detectors cut ears and tails


class AppearanceEmbedder:
    name = "appearance-v1/efficientnet-lite3-probs+hsv"

    def __init__(self, tagger: VisualTagger) -> None:
        self.tagger = tagger

    @property
    def dim(self) -> int:
        return len(self.tagger.labels)

    def analyze(self, image: np.ndarray, objects: list[DetectedObject] | None = None) -> list[DetectedFace]:
        """Animals in the image with their appearance vectors. Pass the tagger's detections to avoid
        running the detector twice."""
        if objects is None:
            objects = self.tagger.detect_objects(image)
        found = []
        for obj in objects:
            if obj.label not in ANIMALS or obj.score < MIN_SCORE:
                continue
            crop = _crop(image, obj.box)
            if min(crop.shape[:2]) < MIN_SIDE_PX:
                continue
            found.append(DetectedFace(box=obj.box, score=obj.score, embedding=self.embed(crop).tolist()))
        return found

    def embed(self, crop: np.ndarray) -> np.ndarray:
        probs = np.sqrt(np.maximum(self.tagger.class_probabilities(crop), 0.0))
        return _unit(probs.astype(np.float32))

    @staticmethod
    def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return euclidean(a, b)


def _unit(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


def _crop(image: np.ndarray, box: Box) -> np.ndarray:
    height, width = image.shape[:2]
    x0 = int(max(0.0, box.x - MARGIN * box.w) * width)
    y0 = int(max(0.0, box.y - MARGIN * box.h) * height)
    x1 = int(min(1.0, box.x + box.w * (1 + MARGIN)) * width)
    y1 = int(min(1.0, box.y + box.h * (1 + MARGIN)) * height)
    return image[y0:y1, x0:x1]
