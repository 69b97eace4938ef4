"""What reading Korean on screen costs on the 10-minute benchmark video (make_long_video.py).

    .venv/bin/python benchmarks/bench_ocr_korean.py [--seconds 600]

Runs the real stages up to vision_sample_frames on the video, then reads the very frames that
vision_embed_frames reads with PP-OCRv4 alone and with Tesseract's Korean model behind it
(ml/hangul.py), alternating the two frame by frame so that the machine's load weighs on both alike.
Prints the seconds of each, split between frames where PP-OCRv4 finds text and frames where it
finds none, the lines handed to Tesseract and their seconds, whether the two read the same text,
and JSON on the last line. The video's captions are English: the Korean reader should cost little.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.make_long_video import make_long_video  # noqa: E402
from heimdex.media import decode_image  # noqa: E402
from heimdex.ml.hangul import load_hangul_reader  # noqa: E402
from heimdex.ml.ocr import OcrReader  # noqa: E402
from heimdex.pipeline.artifacts import FRAMES  # noqa: E402
from heimdex.pipeline.assemble import distinct_frames, pick_frames  # noqa: E402
from heimdex.pipeline.context import Artifacts  # noqa: E402
from heimdex.pipeline.stages.frames import OCR_FRAMES_PER_SHOT  # noqa: E402
from heimdex.service import Heimdex  # noqa: E402
from heimdex.settings import Settings  # noqa: E402


def sampled_frames(video: Path, home: Path) -> list:
    """The frames vision_embed_frames reads, from the real stages before it."""
    app = Heimdex(Settings(home=home))
    video_id = app.add_file(video).video.id
    runner = app.runner()
    for stage in ("upload_validate", "scene_detect", "vision_sample_frames"):
        runner.run_stage(video_id, stage)
    frames = distinct_frames(pick_frames(Artifacts(app.blobs, video_id).load(FRAMES), OCR_FRAMES_PER_SHOT))
    return [decode_image(app.blobs.get_bytes(f.key)) for f in frames]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=600)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    images = sampled_frames(make_long_video(args.seconds), Path(tempfile.mkdtemp(prefix="heimdex-ocr-ko-")))
    hangul = load_hangul_reader()
    if hangul is None:
        sys.exit("install tesseract-ocr-kor and tesserocr")
    alone, korean = OcrReader(threads=args.threads), OcrReader(threads=args.threads, hangul=hangul)
    rows = []  # (has text, seconds alone, seconds with Korean, same text)
    for i, image in enumerate(images):
        order = (alone, korean) if i % 2 == 0 else (korean, alone)
        took, texts = {}, {}
        for reader in order:
            started = time.perf_counter()
            texts[reader.name] = [line.text for line in reader.read(image)]
            took[reader.name] = time.perf_counter() - started
        rows.append(
            (
                bool(texts[alone.name]),
                took[alone.name],
                took[korean.name],
                len(set(map(tuple, texts.values()))) == 1,
            )
        )
    report(rows, hangul, args)


def report(rows: list[tuple[bool, float, float, bool]], hangul, args) -> None:
    def part(with_text: bool) -> dict:
        picked = [r for r in rows if r[0] == with_text]
        return {
            "frames": len(picked),
            "alone_s": round(sum(r[1] for r in picked), 2),
            "korean_s": round(sum(r[2] for r in picked), 2),
            "median_alone_s": round(statistics.median([r[1] for r in picked]), 3) if picked else None,
            "median_korean_s": round(statistics.median([r[2] for r in picked]), 3) if picked else None,
        }

    out = {
        "video_s": args.seconds,
        "threads": args.threads,
        "frames": len(rows),
        "with_text": part(True),
        "without_text": part(False),
        "tesseract_lines": hangul.calls,
        "tesseract_s": round(hangul.seconds, 2),
        "same_text_frames": sum(r[3] for r in rows),
    }
    for name in ("with_text", "without_text"):
        p = out[name]
        print(
            f"{name:13} {p['frames']:3} frames: PP-OCRv4 {p['alone_s']:6.2f} s,"
            f" + Korean {p['korean_s']:6.2f} s"
            f" (median {p['median_alone_s']} / {p['median_korean_s']} s a frame)"
        )
    print(
        f"Tesseract: {hangul.calls} lines, {hangul.seconds:.2f} s; same text on {out['same_text_frames']}"
        f" of {len(rows)} frames"
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
