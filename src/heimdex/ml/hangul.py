"""Korean on-screen text: Tesseract's Korean model (Debian's tesseract-ocr-kor, through tesserocr)
reads the text lines that PP-OCRv4's recogniser, which has no Hangul in its alphabet, gives up on.

Only lines the detector found and the Latin/Chinese recogniser could not read come here, so frames
without text, and frames with Latin text, cost nothing more.
"""

from __future__ import annotations

import glob
import os
import threading
import time

import numpy as np

from heimdex.logging import get_logger

log = get_logger(__name__)

LANGUAGES = "kor+eng"  # captions mix Hangul with Latin letters and digits
MIN_CONFIDENCE = 0.6
MIN_HANGUL = 2  # fewer Hangul syllables than this is noise read into a texture, not a caption
_TARGET_HEIGHT = 48  # Tesseract reads lines best at 30-60 px of height: smaller crops are scaled up


def is_hangul(ch: str) -> bool:
    return "\uac00" <= ch <= "\ud7a3" or "\u1100" <= ch <= "\u11ff" or "\u3130" <= ch <= "\u318f"


def tessdata_dir() -> str | None:
    """Where the Korean model is: TESSDATA_PREFIX, else Debian's tesseract-ocr-kor folders."""
    candidates = [os.environ.get("TESSDATA_PREFIX", "")]
    candidates += sorted(glob.glob("/usr/share/tesseract-ocr/*/tessdata"), reverse=True)
    candidates += ["/usr/share/tessdata"]
    for folder in candidates:
        if folder and os.path.isfile(os.path.join(folder, "kor.traineddata")):
            return folder.rstrip("/") + "/"
    return None


class HangulLineReader:
    """Reads one cropped text line (RGB) with Tesseract; None when it holds no Korean it is sure of."""

    name = "tesseract-kor"

    def __init__(self, tessdata: str) -> None:
        import tesserocr

        self._api = tesserocr.PyTessBaseAPI(path=tessdata, lang=LANGUAGES, psm=tesserocr.PSM.SINGLE_LINE)
        self._lock = threading.Lock()  # one Tesseract engine: one line at a time
        # What Korean costs (benchmarks/bench_ocr_korean.py, bench_ingest.py): lines handed to
        # Tesseract, and the seconds they took.
        self.calls = 0
        self.seconds = 0.0

    def read(self, crop: np.ndarray) -> tuple[str, float] | None:
        from PIL import Image

        h, w = crop.shape[:2]
        if h < 6 or w < 6:
            return None
        image = Image.fromarray(np.ascontiguousarray(crop[:, :, :3], dtype=np.uint8))
        if h < _TARGET_HEIGHT:
            scale = _TARGET_HEIGHT / h
            image = image.resize((round(w * scale), _TARGET_HEIGHT), Image.Resampling.BICUBIC)
        with self._lock:
            started = time.perf_counter()
            self._api.SetImage(image)
            text = " ".join(self._api.GetUTF8Text().split())
            confidence = self._api.MeanTextConf() / 100
            self.calls += 1
            self.seconds += time.perf_counter() - started
        if confidence < MIN_CONFIDENCE or sum(map(is_hangul, text)) < MIN_HANGUL:
            return None
        return text, round(confidence, 4)


def load_hangul_reader() -> HangulLineReader | None:
    """The Korean reader, or None (logged once) where tesserocr or the Korean model is missing."""
    folder = tessdata_dir()
    try:
        import tesserocr  # noqa: F401
    except ImportError:
        folder = None
    if folder is None:
        log.warning("ocr.no_korean", hint="install tesseract-ocr-kor and tesserocr to read Korean on screen")
        return None
    return HangulLineReader(folder)
