"""Faces: BlazeFace (mediapipe) finds them, dlib's HOG detector confirms them, dlib's ResNet turns
each into a 128-d identity vector.

BlazeFace is fast (a few ms per frame) but fires on some faceless patches, which a second detector
of another kind rules out; dlib's embedding is the one of face_recognition: Euclidean distance below
0.6 means the same person.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from heimdex.domain import Box, DetectedFace
from heimdex.errors import ModelUnavailableError
from heimdex.media.frames import face_crop

DIM = 128
# dlib aligns every face to a 150x150 chip, so a small face is upscaled blur. Measured on kphotoalbum's
# jesper_2.jpg scaled down: the distance to another photo of him was 0.52 at 60-300 px, 0.54 at 46 px,
# 0.59 at 30 px and 0.70 (a miss) at 21 px. Faces under 40 px (shorter box side) are skipped.
MIN_FACE_PX = 40
# BlazeFace boxes are tight around eyes-to-chin; dlib's 5-point model was trained on slightly looser
# boxes (its own HOG detector), so the box is grown a little before landmarking.
_GROW = 0.15
# Larger frames are scaled down for detection only (BlazeFace runs at 192x192 inside anyway).
_DETECT_MAX_SIDE = 1280
# A face is a small share of a wide frame, and BlazeFace sees the frame at 192x192: in a 1280x720
# frame it missed two people's 54 px and 38 px faces that it found in squares cut around their heads.
# The head is at the top of a person's box; the square is the box's width or half its height.
_HEAD_SHARE = 0.5
# BlazeFace also fires on a blurred light, a flower, an apple or a drawn face (scores 0.63-0.82), and
# dlib's vector of such a patch can lie within 0.6 of anyone: a wallpaper's flower matched as Wayne.
# A detector of another kind, dlib's HOG frontal-face one, must see a face in the crop as well; the
# crop is also tried turned by 30 degrees either way, for a tilted head. On the dev corpus and the
# photos of KPhotoAlbum, scikit-image, opencv-doc, the Ren'Py demo and the wallpaper packages it kept
# 34 of 35 real faces (not a profile in a grey calibration shot) and dropped 8 of 9 false ones
# (eval/face_check.py, docs/QUALITY.md), at about 3 ms a face against ~90 ms for the embedding it saves.
_CHECK_PX = 160
_CHECK_ADJUST = -0.5  # dlib's detection threshold moved down: a face it is unsure of still counts
_CHECK_TURNS = (0.0, 30.0, -30.0)


def _model_file(name: str) -> str:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError("The face models (face_recognition_models) are not installed.")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / name
    if not path.is_file():
        raise ModelUnavailableError(f"face_recognition_models has no {name}.")
    return str(path)


class FaceEmbedderDlib:
    """FaceAnalyzer: mediapipe BlazeFace (full range) + dlib 5-point alignment + dlib ResNet."""

    name = "blazeface-full+dlib-resnet-v1"
    dim = DIM

    def __init__(
        self, *, min_confidence: float = 0.6, min_face_px: int = MIN_FACE_PX, jitter: int = 0
    ) -> None:
        try:
            import dlib
            import mediapipe as mp
        except ImportError as exc:
            raise ModelUnavailableError(f"Face analysis needs mediapipe and dlib: {exc}") from exc
        self.min_face_px = min_face_px
        self.jitter = jitter  # dlib's resampling; 0 keeps it at ~one ResNet pass per face
        # model_selection=1 is the full-range model: faces up to ~5 m away, i.e. people in a scene.
        self._detector = mp.solutions.face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=min_confidence
        )
        self._shapes = dlib.shape_predictor(_model_file("shape_predictor_5_face_landmarks.dat"))
        resnet = _model_file("dlib_face_recognition_resnet_model_v1.dat")
        self._encoder = dlib.face_recognition_model_v1(resnet)
        self._second_opinion = dlib.get_frontal_face_detector()
        self._dlib = dlib
        # mediapipe graphs are not re-entrant; one image at a time goes through them.
        self._lock = threading.Lock()

    def analyze(self, image: np.ndarray, people: Sequence[Box] = ()) -> list[DetectedFace]:
        """Faces of the image; `people` are boxes where a person stands (the object detector's), and
        a person with no face found in the whole image is looked for in a square around their head."""
        rgb = _rgb(image)
        h, w = rgb.shape[:2]
        if h < 16 or w < 16:
            return []
        with self._lock:
            found = self._detect(rgb)
            for person in people:
                known = [box for box, _ in found]
                if min(person.w * w, person.h * h) >= self.min_face_px and not person.holds_any_centre(known):
                    found += [f for f in self._detect_in(rgb, person) if not _in_any(f[0], known)]
            faces = []
            for box, score in found:
                if min(box.w * w, box.h * h) < self.min_face_px or not self._confirmed(rgb, box):
                    continue
                faces.append(DetectedFace(box=box, score=round(score, 4), embedding=self._embed(rgb, box)))
        return faces

    def distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        # float64: in float32 the expansion below leaves ~1e-3 of rounding on a distance of zero.
        a = np.atleast_2d(np.asarray(a, dtype=np.float64))
        b = np.atleast_2d(np.asarray(b, dtype=np.float64))
        if a.shape[0] == 0 or b.shape[0] == 0:
            return np.zeros((a.shape[0], b.shape[0]), dtype=np.float32)
        # |a-b|^2 = |a|^2 + |b|^2 - 2ab, clipped: rounding can make it slightly negative.
        sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
        return np.sqrt(np.clip(sq, 0.0, None)).astype(np.float32)

    def _detect(self, rgb: np.ndarray) -> list[tuple[Box, float]]:
        small = _shrink(rgb, _DETECT_MAX_SIDE)
        result = self._detector.process(small)
        out = []
        for det in result.detections or []:
            rel = det.location_data.relative_bounding_box
            x0, y0 = max(rel.xmin, 0.0), max(rel.ymin, 0.0)
            x1, y1 = min(rel.xmin + rel.width, 1.0), min(rel.ymin + rel.height, 1.0)
            if x1 > x0 and y1 > y0:
                out.append(
                    (
                        Box(x=round(x0, 4), y=round(y0, 4), w=round(x1 - x0, 4), h=round(y1 - y0, 4)),
                        float(det.score[0]),
                    )
                )
        return out

    def _detect_in(self, rgb: np.ndarray, person: Box) -> list[tuple[Box, float]]:
        """Faces in the square at the top of a person's box, as boxes of the whole image."""
        h, w = rgb.shape[:2]
        side = max(person.w * w, person.h * h * _HEAD_SHARE)
        x0 = int(max(0.0, min(w - side, (person.x + person.w / 2) * w - side / 2)))
        y0 = int(max(0.0, person.y * h))
        x1, y1 = int(min(w, x0 + side)), int(min(h, y0 + side))
        if x1 - x0 < 16 or y1 - y0 < 16:
            return []
        square = np.ascontiguousarray(rgb[y0:y1, x0:x1])
        sw, sh = x1 - x0, y1 - y0
        return [
            (
                Box(
                    x=round((x0 + b.x * sw) / w, 4),
                    y=round((y0 + b.y * sh) / h, 4),
                    w=round(b.w * sw / w, 4),
                    h=round(b.h * sh / h, 4),
                ),
                score,
            )
            for b, score in self._detect(square)
        ]

    def _confirmed(self, rgb: np.ndarray, box: Box) -> bool:
        """Whether dlib's HOG detector also sees a face in the crop of `box` (upright or turned)."""
        import cv2

        crop = cv2.resize(face_crop(rgb, box), (_CHECK_PX, _CHECK_PX), interpolation=cv2.INTER_LINEAR)
        centre = (_CHECK_PX / 2, _CHECK_PX / 2)
        for angle in _CHECK_TURNS:
            turned = crop
            if angle:
                turn = cv2.getRotationMatrix2D(centre, angle, 1.0)
                turned = cv2.warpAffine(crop, turn, (_CHECK_PX, _CHECK_PX), borderMode=cv2.BORDER_REFLECT)
            found, _, _ = self._second_opinion.run(turned, 0, _CHECK_ADJUST)
            if len(found):
                return True
        return False

    def _embed(self, rgb: np.ndarray, box: Box) -> list[float]:
        h, w = rgb.shape[:2]
        grow_x, grow_y = box.w * _GROW, box.h * _GROW
        rect = self._dlib.rectangle(
            int(max(0.0, box.x - grow_x) * w),
            int(max(0.0, box.y - grow_y) * h),
            int(min(1.0, box.x + box.w + grow_x) * w),
            int(min(1.0, box.y + box.h + grow_y) * h),
        )
        shape = self._shapes(rgb, rect)
        vector = self._encoder.compute_face_descriptor(rgb, shape, self.jitter)
        return [round(float(v), 6) for v in vector]


def _in_any(face: Box, boxes: Sequence[Box]) -> bool:
    return any(box.holds_centre_of(face) for box in boxes)


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3], dtype=np.uint8)


def _shrink(rgb: np.ndarray, max_side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    if max(h, w) <= max_side:
        return rgb
    import cv2

    scale = max_side / max(h, w)
    return cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
