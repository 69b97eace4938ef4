"""Unnamed people, measured: KPhotoAlbum's demo photos, whose People tags were written by its authors,
are cut into three videos (by year), indexed one after another by the real pipeline (each commit
clusters its new faces into the clusters the earlier videos made), and the clusters are scored
against the tags.

    .venv/bin/python eval/face_clusters.py [--json] [--frame-max-side N]

Labels: a face is a person's when its photo is tagged with that person alone, or when the tag's
marked area (KPhotoAlbum keeps them for qt-logo.jpg) holds the face's centre. A pair of faces is "the
same person" when both carry one label and it is the same; "different" when the labels differ, their
photos share no tagged person, or both are in one photo. Other pairs (two faces in group photos
without areas) are left out. Pairwise precision: of the labelled pairs put in one cluster, how many
are the same person; recall: of the same-person pairs, how many share a cluster.

Clicks to name everyone (each person tagged in the photos, whose faces were found): one "name" per
cluster whose faces are mostly that person (the second and later one merge by the same name), one
"move out" per labelled face in a cluster that is mostly someone else (and a name for a person who
is nowhere the majority), and one per labelled face left unclustered (an upper bound: once their
person is named, the matcher may find them as sure or possible matches). The sweep re-clusters the
same faces, video by video, at other distances.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "eval"))

from make_corpus import upright  # noqa: E402
from tests import assets  # noqa: E402

from heimdex import faceclusters  # noqa: E402
from heimdex.service import Heimdex  # noqa: E402
from heimdex.settings import Settings  # noqa: E402

SECONDS = 2.0  # each photo is one silent scene this long, so a face's time tells its photo
W, H = 1280, 720


@dataclass(frozen=True)
class Photo:
    file: str
    year: int
    people: tuple[str, ...]
    areas: dict[str, tuple[float, float, float, float]]  # person -> x, y, w, h in the upright photo
    size: tuple[int, int]  # upright width, height


def demo_photos() -> list[Photo]:
    """Every tagged JPEG of the demo album, in date order, from its index.xml."""
    import xml.etree.ElementTree as ET

    index = assets.kphotoalbum_photo("index.xml")
    photos = []
    for image in ET.parse(index).getroot().iter("image"):
        if not image.get("file", "").endswith(".jpg"):
            continue
        values = [v for o in image.iter("option") if o.get("name") == "People" for v in o.iter("value")]
        areas = {v.get("value"): tuple(map(float, v.get("area").split())) for v in values if v.get("area")}
        people = tuple(v.get("value") for v in values if v.get("value") != "Pets")
        size = (int(image.get("width")), int(image.get("height")))
        photos.append(Photo(image.get("file"), int(image.get("startDate")[:4]), people, areas, size))
    return photos


def videos(photos: list[Photo]) -> list[tuple[str, list[Photo]]]:
    """Three videos of the album, as three shoots years apart would come in."""
    parts = [
        ("kpa_1988_2003", [p for p in photos if p.year <= 2003]),
        ("kpa_2005", [p for p in photos if p.year in (2004, 2005)]),
        ("kpa_2006", [p for p in photos if p.year >= 2006]),
    ]
    return [(name, part) for name, part in parts if part]


def build(name: str, photos: list[Photo]) -> Path:
    cache = assets.CACHE / "eval-faces"
    cache.mkdir(parents=True, exist_ok=True)
    scenes = [
        {"image": upright(assets.kphotoalbum_photo(p.file), cache), "say": None, "seconds": SECONDS}
        for p in photos
    ]
    return assets.narrated_video(name, scenes, width=W, height=H)


def face_label(photo: Photo, box: dict) -> frozenset[str]:
    """The people a face may be: the one whose marked area holds its centre, else the photo's tags."""
    if photo.areas:
        pw, ph = photo.size
        scale = min(W / pw, H / ph)
        cx = ((box["x"] + box["w"] / 2) * W - (W - pw * scale) / 2) / scale
        cy = ((box["y"] + box["h"] / 2) * H - (H - ph * scale) / 2) / scale
        for person, (x, y, w, h) in photo.areas.items():
            if x <= cx <= x + w and y <= cy <= y + h:
                return frozenset([person])
    return frozenset(photo.people)


@dataclass
class Face:
    pk: int
    video: int
    photo: str
    label: frozenset[str]
    cluster: str | None
    vector: np.ndarray
    seed: bool
    box: tuple[float, float, float, float]
    quality: tuple[float, float]  # size (px), sharpness


def overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    w = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return w * h / (a[2] * a[3] + b[2] * b[3] - w * h)


def relation(a: Face, b: Face) -> bool | None:
    """True: the same person; False: different people; None: the tags cannot tell."""
    if a.photo == b.photo:  # one face seen in two frames of the photo's scene, or two people
        return overlap(a.box, b.box) > 0.5
    if not a.label or not b.label:
        return None
    if len(a.label) == 1 and a.label == b.label:
        return True
    if not a.label & b.label:
        return False
    return None


def score(faces: list[Face], clusters: list[str | None]) -> dict:
    tp = fp = fn = 0
    for (i, a), (j, b) in itertools.combinations(enumerate(faces), 2):
        same = relation(a, b)
        together = clusters[i] is not None and clusters[i] == clusters[j]
        if same is None:
            continue
        tp += same and together
        fp += (not same) and together
        fn += same and not together
    return {
        "pairs_same": tp + fn,
        "precision": round(tp / (tp + fp), 3) if tp + fp else None,
        "recall": round(tp / (tp + fn), 3) if tp + fn else None,
        **clicks(faces, clusters),
    }


def clicks(faces: list[Face], clusters: list[str | None]) -> dict:
    """Clicks to name every tagged person (see the module's docstring)."""
    labelled = [(f, c) for f, c in zip(faces, clusters, strict=True) if len(f.label) == 1]
    members: dict[str, Counter] = {}
    for face, cluster in labelled:
        if cluster is not None:
            members.setdefault(cluster, Counter())[next(iter(face.label))] += 1
    majority = {c: counts.most_common(1)[0][0] for c, counts in members.items()}
    names = len(set(majority.items()))  # one name per (cluster, person) it stands for
    # Someone whose faces are all in others' clusters: moved out, their new group needs its name.
    names += len({next(iter(f.label)) for f, c in labelled if c is not None} - set(majority.values()))
    moves = sum(1 for f, c in labelled if c is not None and majority[c] != next(iter(f.label)))
    waiting = sum(1 for _, c in labelled if c is None)
    return {
        "clusters": len({c for c in clusters if c is not None}),
        "names_and_merges": names,
        "moves": moves,
        "unclustered": waiting,
        "clicks": names + moves + waiting,
    }


def recluster(faces: list[Face], distance: float, weak_join: float) -> list[str | None]:
    """The same faces clustered again, video by video, as commit would at `distance`."""
    assigned: list[str | None] = [None] * len(faces)
    for video in sorted({f.video for f in faces}):
        new = [i for i, f in enumerate(faces) if f.video <= video and assigned[i] is None]
        old = [i for i, c in enumerate(assigned) if c is not None]
        vectors = np.stack([faces[i].vector for i in new])
        members = np.stack([faces[i].vector for i in old]) if old else np.zeros((0, vectors.shape[1]))
        plan = faceclusters.plan_clusters(
            vectors, [faces[i].seed for i in new], members, [assigned[i] for i in old], distance, weak_join
        )
        for row, cluster in plan.joins.items():
            assigned[new[row]] = cluster
        for g, rows in enumerate(plan.groups):
            for row in rows:
                assigned[new[row]] = f"{video}-{g}"
    return assigned


def index_library(app: Heimdex, parts: list[tuple[str, list[Photo]]]) -> list[Face]:
    faces: list[Face] = []
    model = app.models.faces.name
    for v, (name, photos) in enumerate(parts):
        video = app.process(app.add_file(build(name, photos)).video.id)
        assert video.state.value == "indexed", video.error
        rows = app.store.db.all(
            "SELECT pk, t_s, box, embedding, size_px, sharpness FROM faces WHERE video_id = ? AND model = ?",
            (video.id, model),
        )
        for row in rows:
            photo = photos[min(int(row["t_s"] // SECONDS), len(photos) - 1)]
            box = json.loads(row["box"]) if isinstance(row["box"], str) else row["box"]
            faces.append(
                Face(
                    pk=int(row["pk"]),
                    video=v,
                    photo=photo.file,
                    label=face_label(photo, box),
                    cluster=None,
                    vector=np.frombuffer(row["embedding"], dtype=np.float32).copy(),
                    seed=faceclusters.can_seed(row["size_px"], row["sharpness"]),
                    box=(box["x"], box["y"], box["w"], box["h"]),
                    quality=(float(row["size_px"]), float(row["sharpness"])),
                )
            )
    clustered = dict(app.store.db.all("SELECT pk, cluster_id FROM faces", ()))
    for face in faces:
        face.cluster = clustered.get(face.pk)
    return faces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--frame-max-side", type=int, default=None, help="frames' size (default: the setting's)"
    )
    args = parser.parse_args()
    photos = demo_photos()
    with tempfile.TemporaryDirectory() as home:
        extra = {"frame_max_side": args.frame_max_side} if args.frame_max_side else {}
        app = Heimdex(Settings(home=Path(home), **extra))
        try:
            faces = index_library(app, videos(photos))
            distance = app.settings.face_cluster_distance
        finally:
            app.close()
    people = Counter(p for f in faces if len(f.label) == 1 for p in f.label)
    report = {
        "photos": len(photos),
        "faces": len(faces),
        "labelled_faces": dict(sorted(people.items())),
        "seeds": sum(f.seed for f in faces),
        "product": {"distance": distance, **score(faces, [f.cluster for f in faces])},
        "sweep": {
            f"{d} weak x{w}": score(faces, recluster(faces, d, w))
            for d in (0.45, 0.5, 0.55, 0.6)
            for w in (1.0, 0.9, 0.8)
        },
    }
    if args.json:
        print(json.dumps(report, indent=1))
        return
    print(f"{report['faces']} faces in {report['photos']} photos; labelled: {report['labelled_faces']}")
    print(f"seeds (big and sharp enough): {report['seeds']}")
    for name, row in [("product", report["product"]), *report["sweep"].items()]:
        print(f"{name:>14}: {json.dumps(row)}")
    for face in faces:
        print(
            f"  face {face.pk} v{face.video} {face.photo:<20} {sorted(face.label)} {face.quality}"
            f" -> {face.cluster}"
        )


if __name__ == "__main__":
    main()
