"""More like this, measured: a library holds one photo of each pair of photos of the same place or
subject (KPhotoAlbum's demo photos), among other photos (KPhotoAlbum's and scikit-image's); each
other photo of a pair is the query. The library is a real video (one silent scene a photo, letterboxed
into 640x360 as tests/assets.py makes them) indexed by the real pipeline into a real SQLite store.

    .venv/bin/python eval/more_like_this.py [--json] [--home DIR]

Reports hit@1 and hit@5 of search by image (`Heimdex.search(image=...)`): a query hits at k when its
pair's scene is among the first k scenes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests import assets  # noqa: E402

from heimdex.service import Heimdex  # noqa: E402
from heimdex.settings import Settings  # noqa: E402

# (photo in the library, photo of the same place or subject used as the query)
PAIRS = [
    ("grand_canyon_1", "grand_canyon_2"),
    ("grand_canyon_1", "grand_canyon_3"),
    ("skagen", "skagen_2"),
    ("pool", "pool_2"),
    ("bar55", "bar55_2"),
    ("spiff", "spiff_2"),
    ("new_wave_1", "new_wave_2"),
]
OTHERS_KPA = ["anne_helene", "blackie", "cold_water", "donna", "jesper", "snow", "sunset", "wayne"]
OTHERS_SKIMAGE = ["astronaut", "coffee", "chelsea", "camera", "rocket", "coins", "page", "moon", "retina"]


def library() -> tuple[Path, list[str]]:
    """The library video and the photo name of each of its scenes, in order."""
    names = list(dict.fromkeys(a for a, _ in PAIRS)) + OTHERS_KPA
    photos = [assets.kphotoalbum_photo(f"{n}.jpg") for n in names]
    photos += [assets.skimage_photo(n) for n in OTHERS_SKIMAGE]
    scenes = [{"image": p, "say": None, "text": None, "seconds": 2.5} for p in photos]
    return assets.narrated_video("more_like_this_library", scenes), names + OTHERS_SKIMAGE


def evaluate(home: Path) -> dict:
    app = Heimdex(Settings(home=home))
    try:
        video_path, names = library()
        video = app.process(app.add_file(video_path).video.id)
        scenes = app.scenes(video.owner_id, video.id)
        if len(scenes) != len(names):
            raise SystemExit(f"the library has {len(scenes)} scenes, expected {len(names)}")
        name_of = {s.id: names[s.index] for s in scenes}
        rows = []
        for wanted, query in PAIRS:
            result = app.search("", image=assets.kphotoalbum_photo(f"{query}.jpg"), all_scenes=True)
            ranked = [name_of[h.scene_id] for h in result.hits]
            rank = ranked.index(wanted) + 1 if wanted in ranked else None
            top = result.hits[0] if result.hits else None
            rows.append(
                {
                    "query": query,
                    "wanted": wanted,
                    "rank": rank,
                    "first": ranked[0] if ranked else None,
                    "first_score": round(top.score, 3) if top else None,
                    "confidence": top.confidence if top else None,
                    "took_ms": round(result.took_ms, 1),
                }
            )
        n = len(rows)
        return {
            "library_scenes": len(scenes),
            "queries": n,
            "hit@1": round(sum(r["rank"] == 1 for r in rows) / n, 3),
            "hit@5": round(sum(r["rank"] is not None and r["rank"] <= 5 for r in rows) / n, 3),
            "rows": rows,
        }
    finally:
        app.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--home", type=Path, help="a fresh Heimdex home (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = evaluate(args.home or Path(tmp))
    if args.json:
        print(json.dumps(report, indent=1))
        return
    for r in report["rows"]:
        print(
            f"{r['query']:>16} -> {r['wanted']:<16} rank {r['rank']}  first {r['first']} ({r['first_score']})"
        )
    counts = f"{report['queries']} queries, {report['library_scenes']} scenes"
    print(f"hit@1 {report['hit@1']}  hit@5 {report['hit@5']}  ({counts})")


if __name__ == "__main__":
    main()
