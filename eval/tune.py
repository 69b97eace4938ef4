#!/usr/bin/env python3
"""Score search in process over an already indexed evaluation home: fast enough to compare fusion
settings (a CLI search is a new process of about a second; here a query takes milliseconds).

    python eval/tune.py CORPUS_DIR HOME [--details FILE] [--set NAME=VALUE ...]

CORPUS_DIR is made by eval/make_corpus.py, HOME indexed by eval/run_eval.py (`--home HOME`). The
scoring rules are run_eval.py's: a hit is a result whose time range and an expected scene's contain
each other's midpoint; recall queries are also scored at recall@50 with no per-video cap.
`--set` overrides a module constant of heimdex.search for this run (for example
`--set fusion.SEMANTIC_WEIGHT=1.2`), which is how settings are compared; it changes no file.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from heimdex.service import Heimdex
from heimdex.settings import Settings

KIND_ORDER = ["speech", "keyword", "ocr", "person", "visual", "mixed", "korean", "clip", "none"]


def hits(result: Any, video_file: str, scene: dict) -> bool:
    if Path(result.filename).name != Path(video_file).name:
        return False
    rs, re_ = float(result.start_s), float(result.end_s)
    ss, se = scene["start_s"], scene["end_s"]
    return ss <= (rs + re_) / 2 <= se or rs <= (ss + se) / 2 <= re_


def apply_overrides(pairs: list[str]) -> None:
    for pair in pairs:
        name, _, value = pair.partition("=")
        module_name, _, attr = name.rpartition(".")
        module = importlib.import_module(f"heimdex.search.{module_name}")
        old = getattr(module, attr)
        setattr(module, attr, type(old)(json.loads(value)) if not isinstance(old, str) else value)


def score(corpus: Path, heimdex: Heimdex, queries: list[dict] | None = None) -> tuple[dict, list[dict]]:
    manifest = json.loads((corpus / "manifest.json").read_text())
    queries = manifest["queries"] if queries is None else queries
    per_kind: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    details = []
    for q in queries:
        videos = manifest["videos"]
        wanted = [(videos[e["video"]]["file"], videos[e["video"]]["scenes"][e["scene"]]) for e in q["expect"]]
        result = heimdex.search(q["q"], limit=10).hits
        rank = next((i + 1 for i, r in enumerate(result[:10]) if any(hits(r, f, s) for f, s in wanted)), None)
        k = per_kind[q["kind"]]
        k["n"] += 1
        k["hit1"] += rank == 1
        k["hit5"] += bool(rank and rank <= 5)
        k["rr"] += 1 / rank if rank else 0.0
        detail = {
            "q": q["q"],
            "kind": q["kind"],
            "rank": rank,
            "top": [
                {
                    "file": Path(r.filename).stem,
                    "scene": r.scene_index,
                    "score": r.score,
                    "confidence": getattr(r, "confidence", None),
                    "channels": r.channels,
                }
                for r in result[:3]
            ],
        }
        if not wanted:  # a query with no answer: how confident were its hits?
            k["confident"] += any(getattr(r, "confidence", "low") != "low" for r in result)
        if q.get("recall"):
            every = heimdex.search(q["q"], limit=50, per_video=None).hits
            found = sum(any(hits(r, f, s) for r in every) for f, s in wanted)
            k["rn"] += 1
            k["recall"] += found / len(wanted)
            detail["recall"] = f"{found}/{len(wanted)}"
        details.append(detail)
    summary: dict[str, dict] = {}
    for kind in sorted(per_kind, key=lambda k: KIND_ORDER.index(k) if k in KIND_ORDER else 99):
        k = per_kind[kind]
        n = int(k["n"])
        summary[kind] = {
            "n": n,
            "hit@1": round(k["hit1"] / n, 3),
            "hit@5": round(k["hit5"] / n, 3),
            "mrr@10": round(k["rr"] / n, 3),
        }
        if k["rn"]:
            summary[kind]["recall@50"] = round(k["recall"] / k["rn"], 3)
    n = sum(int(k["n"]) for k in per_kind.values())
    summary["all"] = {
        "n": n,
        "hit@1": round(sum(k["hit1"] for k in per_kind.values()) / n, 3),
        "mrr@10": round(sum(k["rr"] for k in per_kind.values()) / n, 3),
    }
    return summary, details


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus", type=Path)
    ap.add_argument("home", type=Path)
    ap.add_argument("--details", type=Path)
    ap.add_argument("--set", action="append", default=[], dest="overrides")
    args = ap.parse_args()
    apply_overrides(args.overrides)
    heimdex = Heimdex(Settings(home=args.home))
    try:
        summary, details = score(args.corpus, heimdex)
    finally:
        heimdex.close()
    for kind, row in summary.items():
        extra = f" recall@50={row['recall@50']:.3f}" if "recall@50" in row else ""
        print(f"{kind:8} n={row['n']:3} hit@1={row['hit@1']:.3f} mrr@10={row['mrr@10']:.3f}{extra}")
    for d in details:
        if d["rank"] != 1:
            top = d["top"][0] if d["top"] else {}
            print(
                f"miss: {d['kind']:8} rank={d['rank']} top={top.get('file')}#{top.get('scene')} q={d['q']!r}"
            )
    if args.details:
        args.details.write_text(json.dumps(details, indent=1))
    print(json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())
