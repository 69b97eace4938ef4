"""Indexing speed and memory on the 10-minute 720p benchmark video (benchmarks/make_long_video.py).

    .venv/bin/python benchmarks/bench_ingest.py [--seconds 600] [--asr-model base] [--parallel 2]
        [--no-ocr-korean]

Indexes the video into a fresh home with the real models, then prints the wall time, the real-time
factor, each stage's duration from the job ledger, the peak resident memory of the process, how
many text lines the OCR handed to Tesseract's Korean model, and JSON on the last line. Model
loading is timed separately (a warm worker pays it once).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.make_long_video import make_long_video  # noqa: E402
from heimdex.pipeline.graph import STAGES  # noqa: E402
from heimdex.service import Heimdex  # noqa: E402
from heimdex.settings import Settings  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=600)
    ap.add_argument("--asr-model", default="base")
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument(
        "--ocr-korean", action=argparse.BooleanOptionalAction, default=True, help="HEIMDEX_OCR_KOREAN"
    )
    args = ap.parse_args()
    video = make_long_video(args.seconds)
    home = Path(tempfile.mkdtemp(prefix="heimdex-bench-"))
    settings = Settings(home=home, asr_model=args.asr_model, pipeline_parallelism=args.parallel)
    app = Heimdex(settings.model_copy(update={"ocr_korean": args.ocr_korean}))

    started = time.perf_counter()
    for kind in ("asr", "text", "tagger", "ocr", "faces", "appearance"):
        getattr(app.models, kind)
    load_s = time.perf_counter() - started

    added = app.add_file(video)
    started = time.perf_counter()
    result = app.process(added.video.id)
    wall = time.perf_counter() - started
    if result.state.value != "indexed":
        sys.exit(f"indexing failed: {result.error}")
    stages = {r.stage: r.duration_s or 0.0 for r in app.stages(added.video.id)}
    duration = result.info.duration_s if result.info else float(args.seconds)

    print(
        f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, python {platform.python_version()}"
    )
    print(f"video: {video.name}, {duration:.0f} s, {result.scene_count} scenes; ASR {args.asr_model}")
    print(f"model load: {load_s:.1f} s")
    print(f"index wall time: {wall:.1f} s = {duration / wall:.1f}x real time (parallel {args.parallel})")
    print(f"peak RSS: {peak_rss_mb():.0f} MB")
    hangul = app.models.ocr.hangul
    korean_lines = hangul.calls if hangul is not None else None
    korean_s = round(hangul.seconds, 2) if hangul is not None else None
    print(f"OCR: {app.models.ocr.name}; lines read by Tesseract's Korean model: {korean_lines}, {korean_s} s")
    for stage in STAGES:
        print(f"  {stage:22} {stages.get(stage, 0):7.2f} s")
    print(
        json.dumps(
            {
                "video_s": duration,
                "wall_s": round(wall, 2),
                "x_realtime": round(duration / wall, 2),
                "model_load_s": round(load_s, 2),
                "peak_rss_mb": round(peak_rss_mb()),
                "scenes": result.scene_count,
                "asr_model": args.asr_model,
                "parallel": args.parallel,
                "ocr": app.models.ocr.name,
                "korean_ocr_lines": korean_lines,
                "korean_ocr_s": korean_s,
                "stages": {k: round(v, 2) for k, v in stages.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
