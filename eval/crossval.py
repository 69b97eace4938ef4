#!/usr/bin/env python3
"""Choose the fusion weights by k-fold cross-validation over an indexed evaluation home.

    python eval/crossval.py CORPUS_DIR HOME [--folds 5] [--seed 7]

Every combination of the grid below is scored on every query once (in process, eval/tune.py's
rules). Then, per fold, the combination with the best mean reciprocal rank on the other folds is
chosen and scored on the fold it never saw. The held-out figures are what to believe; the
combination chosen most often (and its neighbours' stability) is what to ship.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
from pathlib import Path

from tune import hits

from heimdex.search import fusion
from heimdex.service import Heimdex
from heimdex.settings import Settings

GRID = {
    "SEMANTIC_BAND": [0.06, 0.08, 0.1],
    "FULLTEXT_WEIGHT": [0.75, 1.0, 1.25],
    "VISUAL_WEIGHT": [0.3, 0.5, 0.8],
}


def ranks(heimdex: Heimdex, manifest: dict) -> list[int | None]:
    out = []
    for q in manifest["queries"]:
        videos = manifest["videos"]
        wanted = [(videos[e["video"]]["file"], videos[e["video"]]["scenes"][e["scene"]]) for e in q["expect"]]
        result = heimdex.search(q["q"], limit=10).hits
        out.append(next((i + 1 for i, r in enumerate(result) if any(hits(r, f, s) for f, s in wanted)), None))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus", type=Path)
    ap.add_argument("home", type=Path)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    manifest = json.loads((args.corpus / "manifest.json").read_text())
    heimdex = Heimdex(Settings(home=args.home))
    shipped = {name: getattr(fusion, name) for name in GRID}
    combos = [dict(zip(GRID, values, strict=True)) for values in itertools.product(*GRID.values())]
    if shipped not in combos:
        combos.append(shipped)
    table = []
    for combo in combos:
        for name, value in combo.items():
            setattr(fusion, name, value)
        table.append(ranks(heimdex, manifest))
    heimdex.close()
    n = len(manifest["queries"])
    order = list(range(n))
    random.Random(args.seed).shuffle(order)
    folds = [order[i :: args.folds] for i in range(args.folds)]

    def mrr(c: int, idx: list[int]) -> float:
        return sum(1 / r for i in idx if (r := table[c][i])) / len(idx)

    def hit1(c: int, idx: list[int]) -> float:
        return sum(table[c][i] == 1 for i in idx) / len(idx)

    held = []
    for k, fold in enumerate(folds):
        train = [i for i in order if i not in fold]
        best = max(range(len(combos)), key=lambda c: (mrr(c, train), hit1(c, train)))
        held.append((hit1(best, fold), mrr(best, fold)))
        print(
            f"fold {k}: chose {combos[best]}  train hit@1 {hit1(best, train):.3f}"
            f"  held-out hit@1 {hit1(best, fold):.3f} mrr {mrr(best, fold):.3f}"
        )
    everything = list(range(n))
    best = max(range(len(combos)), key=lambda c: (mrr(c, everything), hit1(c, everything)))
    held_hit1, held_mrr = (sum(row[i] for row in held) / len(held) for i in (0, 1))
    print(f"held-out mean hit@1 {held_hit1:.3f}  mrr {held_mrr:.3f}")
    now = combos.index(shipped)
    print(f"the shipped settings {shipped}: hit@1 {hit1(now, everything):.3f} mrr {mrr(now, everything):.3f}")
    all_hit1, all_mrr = hit1(best, everything), mrr(best, everything)
    print(f"best on all queries: {combos[best]} hit@1 {all_hit1:.3f} mrr {all_mrr:.3f}")
    for c in sorted(range(len(combos)), key=lambda c: -mrr(c, everything))[:8]:
        print(f"  {combos[c]} hit@1 {hit1(c, everything):.3f} mrr {mrr(c, everything):.3f}")


if __name__ == "__main__":
    main()
