"""Time the media layer on the 10-minute benchmark video and print a table.

    .venv/bin/python benchmarks/bench_media.py [--seconds 600]

The video is built (once) by make_long_video.py. Cut detection is also scored against the true cut
times stored next to the video: a cut counts as found when one is reported within 0.2 s.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from benchmarks.make_long_video import make_long_video  # noqa: E402
from heimdex.media import decode_frames, detect_cuts, extract_audio, probe  # noqa: E402

TOLERANCE_S = 0.2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=600)
    args = parser.parse_args()
    video = make_long_video(args.seconds)
    truth = json.loads(video.with_suffix(".json").read_text())
    info = probe(video)
    seconds = _every_second(info.duration_s)
    rows = [
        _timed("probe", lambda: probe(video), lambda r: f"{r.width}x{r.height} {r.video_codec}"),
        _timed(
            "extract_audio (16 kHz)",
            lambda: extract_audio(video),
            lambda r: f"{len(r) / 16000:.1f} s of samples, {r.nbytes / 1e6:.0f} MB",
        ),
        _timed("detect_cuts (fast)", lambda: detect_cuts(video), lambda r: _score(r, truth["cuts"])),
        _timed("decode_frames (1 fps, 640 px)", lambda: decode_frames(video, seconds, 640), _frames),
        _timed("decode_frames exact", lambda: decode_frames(video, seconds, 640, exact=True), _frames),
    ]
    print(
        f"\n{video.name}: {info.duration_s:.0f} s, {info.width}x{info.height} @ {info.fps:g} fps, "
        f"{info.size_bytes / 1e6:.0f} MB\n"
    )
    print(f"{'step':32} {'seconds':>8} {'x realtime':>10}  result")
    for name, seconds, result in rows:
        print(f"{name:32} {seconds:8.2f} {info.duration_s / seconds:10.1f}  {result}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak resident memory: {peak:.0f} MB")
    steps = {
        name: {"s": round(s, 2), "x_realtime": round(info.duration_s / s, 1), "result": result}
        for name, s, result in rows
    }
    print(json.dumps({"video_s": round(info.duration_s, 1), "steps": steps, "peak_rss_mb": round(peak)}))


def _timed(name: str, work: Callable[[], Any], describe: Callable[[Any], str]) -> tuple[str, float, str]:
    started = time.perf_counter()
    result = work()
    return name, time.perf_counter() - started, describe(result)


def _frames(result: list) -> str:
    return f"{len(result)} frames"


def _every_second(duration: float) -> list[float]:
    return [t + 0.5 for t in range(int(duration))]


def _score(found: list[float], truth: list[float]) -> str:
    hits = [t for t in truth if any(abs(t - f) <= TOLERANCE_S for f in found)]
    extra = [f for f in found if not any(abs(t - f) <= TOLERANCE_S for t in truth)]
    return f"{len(hits)}/{len(truth)} true cuts found, {len(extra)} false"


if __name__ == "__main__":
    main()
