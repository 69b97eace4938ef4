"""On-screen text with RapidOCR (PP-OCRv4 detection + recognition, ONNX Runtime on CPU).

Its recogniser reads Latin script and Chinese; Korean is not in its alphabet. It often drops the
spaces of a caption, which ml/wordsplit.py puts back. A line the detector
finds but the recogniser cannot read goes to a second reader for Hangul (ml/hangul.py) when one is
given.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import cv2
import numpy as np

from heimdex.domain import Box, OcrLine
from heimdex.ml.wordsplit import restore_spaces

if TYPE_CHECKING:
    from heimdex.ml.hangul import HangulLineReader

MIN_SCORE = 0.5
# RapidOCR's default ("min" side >= 736) upscales a 640x360 frame to 1308x736 before detection: four
# times the pixels for text that is already legible. "max" with RapidOCR's 960 floor keeps video
# frames at their own size (they are <= 960 px wide here), which is what makes it fast.
_DET_LIMIT_TYPE = "max"
_DET_LIMIT_SIDE = 960
# Lines whose vertical centres are closer than this fraction of the line height count as one row.
_SAME_ROW = 0.5


class OcrReader:
    """TextReader over rapidocr_onnxruntime. Input RGB; RapidOCR itself wants BGR arrays."""

    name = "rapidocr-ppocrv4"

    def __init__(
        self,
        *,
        threads: int = 1,
        min_score: float = MIN_SCORE,
        use_angle_classifier: bool = False,
        hangul: HangulLineReader | None = None,
    ) -> None:
        from rapidocr_onnxruntime import RapidOCR

        self.min_score = min_score
        self.hangul = hangul
        if hangul is not None:
            self.name = f"{OcrReader.name}+{hangul.name}"
        # The 180-degree classifier costs a pass per line and upside-down captions are rare in video.
        self._engine = RapidOCR(
            det_limit_type=_DET_LIMIT_TYPE,
            det_limit_side_len=_DET_LIMIT_SIDE,
            use_cls=use_angle_classifier,
            intra_op_num_threads=threads,
            inter_op_num_threads=1,
            text_score=0.0,  # every detected line: the ones it cannot read may be Korean
        )
        self._lock = threading.Lock()  # RapidOCR keeps per-call state on the engine object

    def read(self, image: np.ndarray) -> list[OcrLine]:
        image = _to_rgb(np.asarray(image))
        h, w = image.shape[:2]
        if h < 8 or w < 8:
            return []
        bgr = cv2.cvtColor(np.ascontiguousarray(image[:, :, :3], dtype=np.uint8), cv2.COLOR_RGB2BGR)
        with self._lock:
            result, _elapsed = self._engine(bgr)
        lines = [_line(points, text, score, w, h) for points, text, score in (result or [])]
        if self.hangul is not None:
            lines = [self._or_hangul(line, image) for line in lines]
        return _reading_order([ln for ln in lines if _keep(ln, self.min_score)])

    def _or_hangul(self, line: OcrLine, image: np.ndarray) -> OcrLine:
        """The line as the Korean reader reads it, when the recogniser could not."""
        if line.box is None or (line.score >= self.min_score and _plausible(line.text)):
            return line
        h, w = image.shape[:2]
        pad = 0.15 * line.box.h * h  # a little margin: detector boxes hug the glyphs
        x0, y0 = max(0, int(line.box.x * w - pad)), max(0, int(line.box.y * h - pad))
        x1 = min(w, int((line.box.x + line.box.w) * w + pad))
        y1 = min(h, int((line.box.y + line.box.h) * h + pad))
        found = self.hangul.read(image[y0:y1, x0:x1])
        return line if found is None else OcrLine(text=found[0], score=found[1], box=line.box)


def _to_rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    return image


def _line(points: list[list[float]], text: str, score: float, width: int, height: int) -> OcrLine:
    pts = np.asarray(points, dtype=np.float32)
    x0, y0 = np.clip(pts.min(axis=0), 0, None)
    x1, y1 = pts.max(axis=0)
    x1, y1 = min(float(x1), width), min(float(y1), height)
    box = Box(
        x=round(float(x0) / width, 4),
        y=round(float(y0) / height, 4),
        w=round((x1 - float(x0)) / width, 4),
        h=round((y1 - float(y0)) / height, 4),
    )
    # Wide captions in tight fonts come out as one run of letters ("BLACKICEALERT").
    return OcrLine(text=restore_spaces(" ".join(str(text).split())), score=round(float(score), 4), box=box)


def _plausible(text: str) -> bool:
    """Whether a line read as Latin or Chinese may really be that: Hangul comes out of this
    recogniser as blanks, a lone glyph or a few Chinese characters, confidently."""
    return sum(ch.isalnum() for ch in text) >= 2 and not any("\u4e00" <= ch <= "\u9fff" for ch in text)


def _keep(line: OcrLine, min_score: float) -> bool:
    # One glyph alone is mostly a misread edge, an icon or a logo fragment.
    return line.score >= min_score and sum(ch.isalnum() for ch in line.text) >= 2


def _reading_order(lines: list[OcrLine]) -> list[OcrLine]:
    """Top to bottom, then left to right within a row (RapidOCR's own order breaks on tilted text)."""
    rows: list[list[OcrLine]] = []
    for line in sorted(lines, key=lambda ln: ln.box.y + ln.box.h / 2 if ln.box else 0.0):
        if rows and _same_row(rows[-1][-1], line):
            rows[-1].append(line)
        else:
            rows.append([line])
    return [line for row in rows for line in sorted(row, key=lambda ln: ln.box.x if ln.box else 0.0)]


def _same_row(a: OcrLine, b: OcrLine) -> bool:
    if a.box is None or b.box is None:
        return False
    centre_a, centre_b = a.box.y + a.box.h / 2, b.box.y + b.box.h / 2
    return abs(centre_a - centre_b) < _SAME_ROW * min(a.box.h, b.box.h)
