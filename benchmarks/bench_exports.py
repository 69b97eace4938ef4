"""Time what users take out of a video: clips (copied and exact) and a highlight reel.

    .venv/bin/python benchmarks/bench_exports.py [--seconds 600] [--repeat 3]

On the benchmark video (make_long_video.py): clips of 10, 30 and 120 s at distinct starts, copied
and exact, and a reel of eight 8 s parts with fades. Each figure is the median of --repeat runs,
each run at other times of the video (nothing is cached between them); the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from benchmarks.make_long_video import make_long_video  # noqa: E402
from heimdex.media.clips import Part, cut_clip, join_parts  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    video = make_long_video(args.seconds)
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "out.mp4"
        for length in (10, 30, 120):
            for exact in (False, True):
                runs = []
                for run in range(args.repeat):
                    start = (37.0 + 97.0 * run + length) % max(1.0, args.seconds - length - 1)
                    began = time.perf_counter()
                    cut_clip(video, start, start + length, out, exact=exact)
                    runs.append(time.perf_counter() - began)
                results[f"clip_{length}s_{'exact' if exact else 'copy'}_s"] = round(
                    statistics.median(runs), 3
                )
        runs = []
        for run in range(args.repeat):
            parts = [Part(video, 20.0 + 61.0 * i + 7.0 * run, 28.0 + 61.0 * i + 7.0 * run) for i in range(8)]
            began = time.perf_counter()
            join_parts(parts, out, fade=True)
            runs.append(time.perf_counter() - began)
        results["reel_8x8s_fades_s"] = round(statistics.median(runs), 3)
    load = [round(x, 2) for x in os.getloadavg()]
    for name, value in results.items():
        print(f"{name:28} {value:8.3f} s")
    print(f"{os.cpu_count()} CPUs, load average {load}")
    print(json.dumps({**results, "repeat": args.repeat, "video_s": args.seconds, "load_avg": load}))


if __name__ == "__main__":
    main()
