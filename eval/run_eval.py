#!/usr/bin/env python3
"""Score Heimdex on a corpus made by eval/make_corpus.py.

    python eval/run_eval.py CORPUS_DIR [--heimdex "heimdex"] [--home DIR] [--skip-index] [--details FILE]

It indexes every video, enrols the corpus's people after indexing (so that matching faces in videos
already indexed is exercised), runs every query through `heimdex --home DIR search QUERY --limit 10
--json`, and reports hit@1, hit@5 and MRR@10 per query kind. A result hits when its time range and an
expected scene's contain each other's midpoint, in the expected video (matched by file name). A query
with "recall": true (say, every scene where a person appears) is also run with `--all --limit 50`,
and scores the share of its expected scenes found there (recall@50). The last line printed is JSON.

--details FILE writes one record per query (its kind, the rank of the first hit or null, the expected
scenes, the top results with the channels that found them, and recall for recall queries) as JSON,
for error analysis.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOP = 10  # ranked results scored per query
RECALL_LIMIT = 50
Result = dict[str, Any]


def heimdex(cmd: str, home: Path, *args: str) -> str:
    full = [*shlex.split(cmd), "--home", str(home), *args]
    proc = subprocess.run(full, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed: {shlex.join(full)}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc.stdout


def hits(result: Result, video_file: str, scene: Result) -> bool:
    """Whether a search result is the expected scene: same file, and either time range contains the
    other's midpoint (scene detection need not cut exactly where the corpus did)."""
    if Path(str(result.get("filename", ""))).name != Path(video_file).name:
        return False
    rs, re_ = float(result["start_s"]), float(result["end_s"])
    ss, se = scene["start_s"], scene["end_s"]
    return ss <= (rs + re_) / 2 <= se or rs <= (ss + se) / 2 <= re_


def brief(result: Result, wanted: list[tuple[str, Result]]) -> Result:
    """One result as --details records it."""
    channels = result.get("channels") or {}
    return {
        "filename": result.get("filename"),
        "scene_index": result.get("scene_index"),
        "start_s": result.get("start_s"),
        "end_s": result.get("end_s"),
        "score": result.get("score"),
        "hit": any(hits(result, f, s) for f, s in wanted),
        "channels": {name: _int(ch.get("rank")) for name, ch in channels.items()},
        "visual_labels": (channels.get("visual") or {}).get("labels"),
        "snippet": result.get("snippet"),
        "tags": (result.get("tags") or [])[:5],
    }


def _int(rank: Any) -> Any:
    return int(rank) if isinstance(rank, float) and rank.is_integer() else rank


@dataclass
class Kind:
    n: int = 0
    hit1: int = 0
    hit5: int = 0
    rr: float = 0.0
    recall_n: int = 0
    recall: float = 0.0

    def summary(self) -> dict[str, float]:
        out = {
            "n": self.n,
            "hit@1": round(self.hit1 / self.n, 3),
            "hit@5": round(self.hit5 / self.n, 3),
            "mrr@10": round(self.rr / self.n, 3),
        }
        if self.recall_n:
            out["recall@50"] = round(self.recall / self.recall_n, 3)
        return out


def index(corpus: Path, manifest: Result, cmd: str, home: Path) -> float:
    started = time.time()
    files = [str(corpus / v["file"]) for v in manifest["videos"].values()]
    heimdex(cmd, home, "index", *files)
    for name, photos in manifest["people"].items():
        heimdex(cmd, home, "people", "add", name, *[str(corpus / p) for p in photos])
    return time.time() - started


def evaluate(manifest: Result, cmd: str, home: Path) -> tuple[dict[str, Kind], list[Result], list[float]]:
    per_kind: dict[str, Kind] = defaultdict(Kind)
    details, latencies = [], []
    videos = manifest["videos"]
    for q in manifest["queries"]:
        wanted = [(videos[e["video"]]["file"], videos[e["video"]]["scenes"][e["scene"]]) for e in q["expect"]]
        started = time.time()
        results = json.loads(heimdex(cmd, home, "search", q["q"], "--limit", str(TOP), "--json"))
        latencies.append(time.time() - started)
        rank = next(
            (i + 1 for i, r in enumerate(results[:TOP]) if any(hits(r, f, s) for f, s in wanted)), None
        )
        k = per_kind[q["kind"]]
        k.n += 1
        k.hit1 += rank == 1
        k.hit5 += bool(rank and rank <= 5)
        k.rr += 1 / rank if rank else 0.0
        record: Result = {
            "q": q["q"],
            "kind": q["kind"],
            "rank": rank,
            "expect": [
                {**e, "start_s": s["start_s"], "end_s": s["end_s"]}
                for e, (_, s) in zip(q["expect"], wanted, strict=True)
            ],
            "top": brief(results[0], wanted) if results else None,
            "results": [brief(r, wanted) for r in results[:TOP]],
        }
        if q.get("recall"):
            every = json.loads(
                heimdex(cmd, home, "search", q["q"], "--all", "--limit", str(RECALL_LIMIT), "--json")
            )
            missing = [
                e
                for e, (f, s) in zip(q["expect"], wanted, strict=True)
                if not any(hits(r, f, s) for r in every)
            ]
            found = len(wanted) - len(missing)
            k.recall_n += 1
            k.recall += found / len(wanted)
            record["recall@50"] = {"found": found, "expected": len(wanted), "missing": missing}
        details.append(record)
    return per_kind, details, latencies


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus")
    ap.add_argument("--heimdex", default="heimdex", help="the command to run (split like a shell would)")
    ap.add_argument("--home", help="Heimdex home to index into (default: a new temporary folder)")
    ap.add_argument("--skip-index", action="store_true", help="search a home indexed before")
    ap.add_argument("--details", type=Path, help="write per-query results to this JSON file")
    args = ap.parse_args()
    corpus = Path(args.corpus).resolve()
    manifest = json.loads((corpus / "manifest.json").read_text())
    home = Path(args.home or tempfile.mkdtemp(prefix="heimdex-eval-"))

    index_s = 0.0 if args.skip_index else index(corpus, manifest, args.heimdex, home)
    per_kind, details, latencies = evaluate(manifest, args.heimdex, home)

    summary: dict[str, dict[str, float]] = {}
    for kind, k in sorted(per_kind.items()):
        s = summary[kind] = k.summary()
        line = f"{kind:8} n={k.n:3} hit@1={s['hit@1']:.3f} hit@5={s['hit@5']:.3f} mrr@10={s['mrr@10']:.3f}"
        print(line + (f" recall@50={s['recall@50']:.3f}" if k.recall_n else ""))
    n = sum(k.n for k in per_kind.values())
    summary["all"] = {
        "n": n,
        "hit@1": round(sum(k.hit1 for k in per_kind.values()) / n, 3),
        "hit@5": round(sum(k.hit5 for k in per_kind.values()) / n, 3),
        "mrr@10": round(sum(k.rr for k in per_kind.values()) / n, 3),
        "index_s": round(index_s, 1),
        "search_cli_median_s": round(sorted(latencies)[n // 2], 3),
    }
    for d in details:
        if d["rank"] != 1:
            print(f"miss: {d['kind']:8} rank={d['rank']} q={d['q']!r}")
        recall = d.get("recall@50")
        if recall and recall["found"] < recall["expected"]:
            print(f"miss: {d['kind']:8} recall={recall['found']}/{recall['expected']} q={d['q']!r}")
    if args.details:
        args.details.parent.mkdir(parents=True, exist_ok=True)
        args.details.write_text(json.dumps(details, indent=1, ensure_ascii=False) + "\n")
        print(f"per-query details: {args.details}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
