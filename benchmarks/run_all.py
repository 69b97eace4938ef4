"""Run every benchmark once at a quick size and print one JSON line per benchmark (`make bench`).

    python benchmarks/run_all.py                      # all of them, about 10-15 minutes on 2 cores
    python benchmarks/run_all.py --only search store  # some of them
    python benchmarks/run_all.py --list               # what would run, with the commands

The quick sizes catch regressions and show the order of magnitude; they are not the figures of
docs/PERFORMANCE.md, which come from the full-size commands in each benchmark's docstring (100k
scenes, the 10-minute video, ...). Each benchmark runs in its own process; its human-readable output
goes to stderr as it runs, and its JSON result (its last JSON value on stdout) is printed as
{"benchmark": NAME, "command": ..., "wall_s": ..., "ok": ..., "result": ...}. The last line is a
summary with the machine's load before and after. The exit code is 1 when any benchmark failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

# name -> (script, quick arguments). Services (PostgreSQL, Redis, S3) are started by the benchmarks
# themselves through tests/services.py, as in the tests.
QUICK: dict[str, tuple[str, list[str]]] = {
    "search": ("bench_search.py", ["--scenes", "10000", "--queries", "200"]),
    "store": ("bench_store.py", ["--scenes", "20000", "--queries", "100"]),
    "api": ("bench_api.py", ["--scenes", "5000", "--clients", "10", "--seconds", "10"]),
    "models": ("bench_models.py", ["--repeat", "1"]),
    "media": ("bench_media.py", ["--seconds", "120"]),
    "exports": ("bench_exports.py", ["--seconds", "180", "--repeat", "1"]),
    "ingest": ("bench_ingest.py", ["--seconds", "120"]),
    "workers": ("bench_workers.py", ["--workers", "1", "2"]),
}


def last_json(stdout: str) -> Any:
    """The last JSON value a benchmark printed: its last line, or (pretty-printed JSON) the block
    from the last line that opens one at column 0 to the end."""
    lines = stdout.rstrip().splitlines()
    for start in range(len(lines) - 1, -1, -1):
        if lines[start][:1] in ("{", "["):
            try:
                return json.loads("\n".join(lines[start:]))
            except json.JSONDecodeError:
                continue
    return None


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run(name: str, script: str, args: list[str]) -> dict[str, Any]:
    command = [sys.executable, str(HERE / script), *args]
    print(f"== {name}: {shlex.join(command)}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=REPO, stdout=subprocess.PIPE, stderr=sys.stderr, text=True)
    wall = time.perf_counter() - started
    sys.stderr.write(proc.stdout)
    result = last_json(proc.stdout)
    record: dict[str, Any] = {
        "benchmark": name,
        "command": shlex.join(["python", f"benchmarks/{script}", *args]),
        "wall_s": round(wall, 1),
        "ok": proc.returncode == 0 and result is not None,
        "result": result,
    }
    if proc.returncode != 0:
        record["exit_code"] = proc.returncode
    return record


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", choices=list(QUICK), metavar="NAME", help=", ".join(QUICK))
    ap.add_argument("--list", action="store_true", help="print the commands and stop")
    args = ap.parse_args()
    names = args.only or list(QUICK)
    if args.list:
        for name in names:
            script, quick = QUICK[name]
            print(f"{name:8} python benchmarks/{script} {shlex.join(quick)}")
        return
    before = load_average()
    failed = []
    for name in names:
        record = run(name, *QUICK[name])
        if not record["ok"]:
            failed.append(name)
        print(json.dumps(record), flush=True)
    summary = {
        "benchmarks": names,
        "failed": failed,
        "nproc": os.cpu_count(),
        "load_avg_before": before,
        "load_avg_after": load_average(),
    }
    print(json.dumps(summary))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
